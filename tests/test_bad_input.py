"""Bad input gets a clear error naming the problem, never a silent wrong answer."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from specdec_lab import ModelDrafter, generate_autoregressive, generate_speculative
from specdec_lab.drafters import Draft
from specdec_lab.core.lm import check_same_tokenizer

from conftest import tiny_gpt2, tiny_llama


@pytest.fixture(scope="module")
def target():
    return tiny_llama(seed=0, context=64)


@pytest.fixture(scope="module")
def drafter(target):
    return tiny_llama(layers=1, seed=1, context=64)


CASES = [
    (dict(gamma=0), ValueError, "gamma must be between 1 and 64"),
    (dict(gamma=-2), ValueError, "gamma must be between 1 and 64"),
    (dict(gamma=65), ValueError, "gamma must be between 1 and 64"),
    (dict(gamma=2.5), TypeError, "gamma must be an int"),
    (dict(temperature=-0.1), ValueError, "temperature must be >= 0"),
    (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.01), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_k=0), ValueError, "top_k must be >= 1"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens must be >= 1"),
    (dict(min_new_tokens=9, max_new_tokens=8), ValueError, "min_new_tokens must be between 0 and 8"),
    (dict(input_ids=[]), ValueError, "prompt is empty"),
    (dict(input_ids=torch.empty(1, 0, dtype=torch.long)), ValueError, "prompt is empty"),
    (dict(input_ids="To be or not"), TypeError, "tokenize the prompt first"),
    (dict(input_ids=[[1, 2], [3, 4]]), ValueError, "batch size 1"),
    (dict(input_ids=[1.0, 2.0]), TypeError, "integer token ids"),
    (dict(input_ids=[1, 500]), ValueError, "outside the model's vocabulary"),
    (dict(input_ids=list(range(60)), max_new_tokens=8), ValueError, "exceeds the target's context of 64 tokens"),
    (dict(verifier="lenient"), ValueError, "unknown verifier 'lenient'; valid names: greedy, speculative"),
    (dict(seed=-1), ValueError, "seed must be between 0 and 18446744073709551615"),
]


@pytest.mark.parametrize("kwargs, error, match", CASES, ids=[str(c[0])[:40] for c in CASES])
def test_speculative_refuses(target, drafter, kwargs, error, match):
    args = dict(input_ids=[1, 2, 3], gamma=4, max_new_tokens=8) | kwargs
    with pytest.raises(error, match=match):
        generate_speculative(target, drafter, **args)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [c for c in CASES if "gamma" not in c[0] and "verifier" not in c[0]],
)
def test_autoregressive_refuses(target, kwargs, error, match):
    args = dict(input_ids=[1, 2, 3], max_new_tokens=8) | kwargs
    with pytest.raises(error, match=match):
        generate_autoregressive(target, **args)


def test_drafter_with_another_vocabulary(target):
    other = tiny_llama(layers=1, vocab=120, context=64)
    with pytest.raises(ValueError, match=r"different vocabularies \(120 vs 96 tokens\)"):
        generate_speculative(target, other, [1, 2], max_new_tokens=4)


def test_drafter_with_a_shorter_context(target):
    short = tiny_llama(layers=1, context=16)
    with pytest.raises(ValueError, match="exceeds the drafter's context of 16 tokens"):
        generate_speculative(target, short, list(range(10)), max_new_tokens=10)


def _word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")


def test_mismatched_tokenizers_are_refused(drafter):
    a = _word_tokenizer(["<unk>", "<eos>", "to", "be", "or", "not"])
    b = _word_tokenizer(["<unk>", "<eos>", "be", "to", "or", "not"])  # same words, other ids
    check_same_tokenizer(a, _word_tokenizer(["<unk>", "<eos>", "to", "be", "or", "not"]))
    with pytest.raises(ValueError, match="tokenizers differ .*2 with other ids"):
        check_same_tokenizer(a, b)
    with pytest.raises(ValueError, match="tokenizers differ"):
        ModelDrafter(drafter, tokenizer=b, target_tokenizer=a)


def test_models_that_are_not_causal_lms(target, drafter):
    bert = BertModel(BertConfig(vocab_size=96, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32))
    with pytest.raises(TypeError, match="not a causal language model"):
        generate_autoregressive(bert, [1, 2], max_new_tokens=4)
    with pytest.raises(TypeError, match="not a causal language model"):
        generate_speculative(target, bert, [1, 2], max_new_tokens=4)
    with pytest.raises(TypeError, match="must be a transformers causal LM"):
        generate_autoregressive(torch.nn.Linear(3, 3), [1, 2], max_new_tokens=4)
    with pytest.raises(TypeError, match="drafter must be a drafter object"):
        generate_speculative(target, "small-model", [1, 2], max_new_tokens=4)


class EmptyDrafter:
    name, may_abstain, vocab_size = "empty", False, None

    def propose(self, ids, gamma, to_probs, generator):
        return Draft(ids.new_empty(0))

    def observe(self, verdict, hidden=None):
        pass


class GreedyListDrafter(EmptyDrafter):
    name = "returns-a-list"

    def propose(self, ids, gamma, to_probs, generator):
        return [1, 2, 3]


class TooLongDrafter(EmptyDrafter):
    name = "too-long"

    def propose(self, ids, gamma, to_probs, generator):
        return Draft(ids.new_zeros(gamma + 1))


def test_drafters_that_misbehave(target):
    with pytest.raises(ValueError, match="drafter 'empty' proposed no tokens when asked for 4"):
        generate_speculative(target, EmptyDrafter(), [1, 2], gamma=4, max_new_tokens=8)
    with pytest.raises(TypeError, match="returned list, expected a Draft"):
        generate_speculative(target, GreedyListDrafter(), [1, 2], gamma=4, max_new_tokens=8)
    with pytest.raises(ValueError, match="proposed 5 tokens, more than the 4 asked for"):
        generate_speculative(target, TooLongDrafter(), [1, 2], gamma=4, max_new_tokens=8)


def test_an_abstaining_drafter_falls_back_to_plain_target_steps(target):
    """A drafter that declares it may find nothing (a lookup) gives the target's own output."""

    class Abstains(EmptyDrafter):
        may_abstain = True

    ref = generate_autoregressive(target, [1, 2, 3], max_new_tokens=6)
    out = generate_speculative(target, Abstains(), [1, 2, 3], max_new_tokens=6)
    assert out.token_ids == ref.token_ids
    assert all(s.next_kind == "plain" for s in out.steps)


def test_nan_logits_are_an_error_not_a_sample():
    broken = tiny_gpt2(seed=0)
    with torch.no_grad():
        broken.lm_head.weight[3, 0] = float("nan")
    with pytest.raises(ValueError, match="target produced NaN or \\+inf logits"):
        generate_autoregressive(broken, [1, 2], max_new_tokens=3, temperature=1.0)


def test_an_encoder_with_a_causal_lm_head_is_refused(target):
    """BERT loads through AutoModelForCausalLM (BertLMHeadModel) but attends both ways unless is_decoder is set."""
    from transformers import BertLMHeadModel

    config = BertConfig(vocab_size=96, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    with pytest.raises(TypeError, match="is an encoder \\(bert\\) whose attention sees later tokens"):
        generate_speculative(target, BertLMHeadModel(config), [1, 2], max_new_tokens=4)
    config.is_decoder = True
    generate_autoregressive(BertLMHeadModel(config).eval(), [1, 2], max_new_tokens=2)  # a decoder-configured BERT is fine
