"""Engine v2: the drafter contract, the loop's shape, and the ten defects found by trying the engine as a new user.

Each defect test failed on the engine before v2 (see the issue "Engine v2") and passes now.
"""

from __future__ import annotations

import ast
import inspect
import warnings
from pathlib import Path

import pytest
import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

from specdec_lab import build_drafter, decode, generate_autoregressive, generate_speculative
from specdec_lab.core import checks
from specdec_lab.drafters import Draft, DraftTree, Drafter, DuckDrafter, HeuristicGamma, LookaheadDrafter
from specdec_lab.drafters.early_exit import early_exit_model
from specdec_lab.models.loading import load_model
from specdec_lab.core.sampling import SamplingConfig, probs_from_logits

from conftest import perturbed_copy, tiny_llama

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", "cpu")


# -- the loop reads like the paper ------------------------------------------------------------------------------


def test_the_loop_is_four_marked_steps_in_at_most_40_lines_and_asks_the_drafter_no_getattr():
    source = (ROOT / "specdec_lab" / "decode.py").read_text()
    tree = ast.parse(source)
    loop = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "speculative_loop")
    body = loop.body[1:]  # after the docstring
    assert body[-1].end_lineno - body[0].lineno + 1 <= 40
    text = ast.get_source_segment(source, loop)
    positions = [text.index(f"# Step {i}") for i in range(1, 5)]
    assert positions == sorted(positions)
    assert "getattr(drafter" not in source
    assert "tree_mode" not in source


def test_config_is_frozen_and_one_max_gamma():
    from specdec_lab.core.config import MAX_GAMMA, DecodeConfig
    import specdec_lab.lab.viz.playground as playground

    ids, cfg = checks.decode_config(tiny_llama(), [1, 2], gamma=3, max_new_tokens=4, min_new_tokens=0, temperature=0.5,
                                    top_k=None, top_p=None, seed=0, eos_token_id=None)
    assert isinstance(cfg, DecodeConfig)
    with pytest.raises(Exception):
        cfg.gamma = 5  # frozen
    assert not hasattr(decode, "MAX_GAMMA") or decode.MAX_GAMMA == MAX_GAMMA
    assert getattr(playground, "MAX_GAMMA", MAX_GAMMA) == MAX_GAMMA
    with pytest.raises(ValueError, match=f"gamma must be between 1 and {MAX_GAMMA}"):
        generate_speculative(tiny_llama(), tiny_llama(layers=1), [1, 2], gamma=MAX_GAMMA + 1, max_new_tokens=2)


# -- one drafter contract -------------------------------------------------------------------------------------


def test_registry_drafters_declare_their_abilities(zoo):
    target, tokenizer = zoo
    expect = {"medusa": (True, True, False), "eagle": (True, True, False), "lookahead": (True, False, True),
              "prompt-lookup": (True, False, False), "distilled": (True, False, False),
              "distilled+heuristic-γ": (False, False, False)}
    for name, (branches, reads_hidden, side_branch) in expect.items():
        drafter = build_drafter(name, target, tokenizer)
        assert isinstance(drafter, Drafter)
        assert (drafter.branches, drafter.reads_hidden, drafter.side_branch) == (branches, reads_hidden, side_branch), name


def test_adaptive_gamma_around_lookahead_keeps_its_side_branch(zoo):
    """Before v2, HeuristicGamma forwarded hooks by hand and dropped lookahead's side branch (no n-grams, no drafts)."""
    target, tokenizer = zoo
    ids = tokenizer("ROMEO.\nBut soft, what light through yonder window breaks? ROMEO.\nBut soft")["input_ids"]
    wrapped = HeuristicGamma(LookaheadDrafter())
    assert wrapped.side_branch and wrapped.may_abstain
    out = generate_speculative(target, wrapped, ids, gamma=4, max_new_tokens=40)
    assert out.token_ids == generate_autoregressive(target, ids, max_new_tokens=40).token_ids
    assert out.stats.drafted > 0  # the window produced n-grams, so the wrapped drafter drafted
    assert wrapped.inner.iterations > 0


class ThirdPartyDrafter:
    """A drafter that subclasses nothing but speaks the contract's vocabulary: abilities as attributes, the same hooks."""

    name, may_abstain, vocab_size, reads_hidden = "third-party", True, None, True

    def __init__(self):
        self.told, self.hidden_rows = [], 0

    def propose(self, ids, gamma, to_probs, generator):
        return Draft(ids[-gamma:].flip(0).clone())

    def observe(self, verdict, hidden=None):
        if verdict is not None:
            self.told.append((verdict.n_accepted, verdict.n_drafted))
        self.hidden_rows += hidden.shape[0]


def test_a_drafter_that_subclasses_nothing_still_works():
    target = tiny_llama()
    raw = ThirdPartyDrafter()
    out = generate_speculative(target, raw, [1, 2, 3, 4, 5], gamma=3, max_new_tokens=12)
    assert out.token_ids == generate_autoregressive(target, [1, 2, 3, 4, 5], max_new_tokens=12).token_ids
    assert len(raw.told) == out.stats.steps  # observe(verdict, hidden) once per step
    assert raw.hidden_rows == 4 + out.stats.new_tokens  # the prefill (4 rows), then root + accepted drafts per step
    adapted = DuckDrafter(raw)
    assert (adapted.branches, adapted.reads_hidden, adapted.side_branch, adapted.may_abstain) == (False, True, False, True)


def test_a_duck_drafter_that_claims_an_ability_it_lacks_is_refused():
    class Claims(ThirdPartyDrafter):
        branches = True  # but no propose_tree

    with pytest.raises(TypeError, match="branches but has no propose_tree"):
        generate_speculative(tiny_llama(), Claims(), [1, 2, 3], gamma=2, max_new_tokens=4)


def test_no_getattr_on_the_projects_verifiers_or_drafters_outside_the_one_adapter():
    import re

    found = []
    for path in sorted((ROOT / "specdec_lab").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "specdec_lab/drafters/adapt.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\b(getattr|hasattr)\((verifier|drafter|rule|v|d|self\.inner|inner)\b", line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, found


# -- defect 1: low precision is explained, and measured ------------------------------------------------------


BF16_PROMPTS = ("JULIET.\n", "ROMEO.\nBut soft, what light", "def main(args):\n    ", "First Citizen:\n", "import os\n")


def test_bf16_target_warns_once_and_stats_say_where_it_left_the_greedy_path(zoo):
    """Portable on every CPU: whether bf16 leaves the greedy path depends on the CPU's kernels (on an AVX-512 BF16 CPU
    these prompts may never do so, on an AVX2-only one "JULIET." does), so the test asserts what is always true:
    ``diverged_at`` is exactly the first position where the output differs from the reference, None where they agree,
    for every prompt searched; and a reference that is wrong at a known position (forced) is reported there. Checked
    green with the default kernels and with ``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512 BF16 CPU."""
    target, tokenizer = zoo
    bf16 = load_model("zoo:target", "cpu", dtype=torch.bfloat16)[0]
    checks._WARNED_DTYPES.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for prompt in BF16_PROMPTS:
            ids = tokenizer(prompt)["input_ids"]
            ref = generate_autoregressive(bf16, ids, max_new_tokens=40).token_ids
            out = generate_speculative(bf16, build_drafter("prompt-lookup", bf16, tokenizer), ids, gamma=4,
                                       max_new_tokens=40, reference=ref)
            first = next((i for i, (a, b) in enumerate(zip(out.token_ids, ref)) if a != b), None)
            assert out.stats.reference_given and out.stats.diverged_at == first, prompt
            # a reference wrong at a known position, before any rounding divergence: reported exactly there
            cut = 5 if first is None else min(5, first)
            wrong = ref[:cut] + [(ref[cut] + 1) % target.config.vocab_size] + ref[cut + 1:]
            forced = generate_speculative(bf16, build_drafter("prompt-lookup", bf16, tokenizer), ids, gamma=4,
                                          max_new_tokens=40, reference=wrong)
            assert forced.token_ids == out.token_ids and forced.stats.diverged_at == cut, prompt
    precision = [w for w in caught if "bfloat16" in str(w.message)]
    assert len(precision) == 1 and "docs/precision.md" in str(precision[0].message)  # once per process, not per call
    ids = tokenizer(BF16_PROMPTS[0])["input_ids"]
    fp32_ref = generate_autoregressive(target, ids, max_new_tokens=60).token_ids
    fp32 = generate_speculative(target, build_drafter("prompt-lookup", target, tokenizer), ids, gamma=4,
                                max_new_tokens=60, reference=fp32_ref)
    assert fp32.token_ids == fp32_ref and fp32.stats.diverged_at is None and fp32.stats.reference_given
    assert generate_autoregressive(target, ids, max_new_tokens=4).stats.reference_given is False
    assert (ROOT / "docs" / "precision.md").exists()


# -- defect 2: vanishing temperature / top_p ---------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1e-38, 1e-40, 1e-300, 5e-5])
def test_a_vanishing_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match="too small to divide logits by"):
        generate_speculative(tiny_llama(), tiny_llama(layers=1), [1, 2], temperature=temperature, max_new_tokens=4)
    with pytest.raises(ValueError, match="too small"):
        probs_from_logits(torch.randn(3, 8), SamplingConfig(temperature=temperature))


@pytest.mark.parametrize("top_p", [1e-46, 1e-40, 1e-30])
def test_a_vanishing_top_p_keeps_the_top_token(top_p):
    logits = torch.randn(4, 50)
    p = probs_from_logits(logits, SamplingConfig(temperature=1.0, top_p=top_p))
    assert not torch.isnan(p).any()
    assert torch.equal(p.argmax(-1), logits.argmax(-1)) and torch.allclose(p.max(-1).values, torch.ones(4))
    target = tiny_llama()
    out = generate_speculative(target, tiny_llama(layers=1, seed=3), [1, 2, 3], temperature=1.0, top_p=top_p,
                               max_new_tokens=6, seed=1)
    assert out.token_ids == generate_autoregressive(target, [1, 2, 3], max_new_tokens=6).token_ids  # = greedy


# -- defect 4: sliding-window models ---------------------------------------------------------------------


def _sliding(kind: str, window: int = 24):
    torch.manual_seed(0)
    common = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, sliding_window=window)
    if kind == "mistral":
        return MistralForCausalLM(MistralConfig(**common)).eval()
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common, use_sliding_window=True, max_window_layers=0,
                                            layer_types=["sliding_attention"] * 2)).eval()
    return Gemma2ForCausalLM(Gemma2Config(**common, head_dim=8, query_pre_attn_scalar=8)).eval()


@pytest.mark.parametrize("kind", ["mistral", "qwen2", "gemma2"])
def test_sliding_window_models_work_inside_their_window_and_are_refused_past_it(kind):
    target = _sliding(kind)
    assert checks.max_context(target) == 24
    prompt = [5, 17, 42, 8, 23, 5, 17, 42]
    ref = generate_autoregressive(target, prompt, max_new_tokens=16).token_ids
    drafter = perturbed_copy(target, noise=0.05)
    for verifier in ("speculative", "tree-greedy"):
        assert generate_speculative(target, drafter, prompt, gamma=3, max_new_tokens=16, verifier=verifier).token_ids == ref
    assert generate_speculative(target, LookaheadDrafter(), prompt, gamma=3, max_new_tokens=16).token_ids == ref
    for call in (lambda: generate_autoregressive(target, prompt, max_new_tokens=17),
                 lambda: generate_speculative(target, drafter, prompt, max_new_tokens=17, verifier="tree-greedy")):
        with pytest.raises(ValueError, match="sliding-window model"):
            call()


# -- defect 5: a reused drafter acts like a fresh one ----------------------------------------------------


@pytest.mark.parametrize("name", ["distilled+heuristic-γ", "medusa", "eagle", "lookahead", "distilled"])
def test_a_reused_drafter_gives_the_output_of_a_fresh_one(zoo, name):
    target, tokenizer = zoo
    a, b = (tokenizer(t)["input_ids"] for t in ("ROMEO.\nBut soft, what light", "JULIET.\nO Romeo, Romeo"))
    kwargs = dict(gamma=3, max_new_tokens=24, temperature=1.0, seed=5)
    reused = build_drafter(name, target, tokenizer)
    generate_speculative(target, reused, a, **kwargs)
    again = generate_speculative(target, reused, b, **kwargs)
    fresh = generate_speculative(target, build_drafter(name, target, tokenizer), b, **kwargs)
    assert again.token_ids == fresh.token_ids
    assert [s.decisions for s in again.steps] == [s.decisions for s in fresh.steps]


# -- defect 6: drafted ids outside the vocabulary -----------------------------------------------------------


class OutOfRange(Drafter):
    name, may_abstain = "out-of-range", False

    def __init__(self, token):
        self.token = token

    def propose(self, ids, gamma, to_probs, generator):
        return Draft(torch.tensor([1, self.token]))


class OutOfRangeTree(OutOfRange):
    branches = True

    def propose_tree(self, ids, branching, to_probs, generator):
        return DraftTree(torch.tensor([self.token]), torch.tensor([-1]))


@pytest.mark.parametrize("token", [96, 10**6, -1])
def test_drafted_ids_outside_the_vocabulary_are_refused(token):
    target = tiny_llama()
    with pytest.raises(ValueError, match=r"drafts of drafter 'out-of-range' hold token ids outside the target's vocabulary \[0, 96\)"):
        generate_speculative(target, OutOfRange(token), [1, 2], gamma=2, max_new_tokens=4)
    with pytest.raises(ValueError, match="outside the target.s vocabulary"):
        generate_speculative(target, OutOfRangeTree(token), [1, 2], gamma=2, max_new_tokens=4, verifier="tree-greedy")
    from specdec_lab.drafters import RetrievalDrafter

    with pytest.raises(ValueError, match="outside the target's vocabulary"):  # a datastore tokenized with another tokenizer
        generate_speculative(target, RetrievalDrafter([[1, 2, 500, 501]]), [1, 2], gamma=2, max_new_tokens=4)


# -- defect 9: tokenizer output as input_ids --------------------------------------------------------------


def test_tokenizer_output_is_accepted_as_input_ids(zoo):
    target, tokenizer = zoo
    encoded = tokenizer("ROMEO:")
    ids = encoded["input_ids"]
    drafter = build_drafter("prompt-lookup", target, tokenizer)
    ref = generate_speculative(target, drafter, ids, max_new_tokens=8).token_ids
    assert generate_speculative(target, drafter, encoded, max_new_tokens=8).token_ids == ref
    assert generate_speculative(target, drafter, tokenizer("ROMEO:", return_tensors="pt"), max_new_tokens=8).token_ids == ref
    assert generate_autoregressive(target, encoded, max_new_tokens=8).token_ids == ref
    assert generate_speculative(target, drafter, tokenizer.backend_tokenizer.encode("ROMEO:"), max_new_tokens=8).prompt_ids \
        == tokenizer.backend_tokenizer.encode("ROMEO:").ids
    with pytest.raises(TypeError, match="without an 'input_ids' entry"):
        generate_speculative(target, drafter, {"ids": ids}, max_new_tokens=8)


# -- defect 10: seeds, EOS ids, early exit on a 1-layer model ---------------------------------------------


@pytest.mark.parametrize("seed, error, match", [
    (2**64, ValueError, "seed must be between 0"), (-1, ValueError, "seed must be between 0"),
    (1.5, TypeError, "seed must be an int"), ("7", TypeError, "seed must be an int"),
])
def test_seeds_out_of_range_are_refused(seed, error, match):
    with pytest.raises(error, match=match):
        generate_speculative(tiny_llama(), tiny_llama(layers=1), [1, 2], max_new_tokens=2, seed=seed)
    generate_speculative(tiny_llama(), tiny_llama(layers=1), [1, 2], max_new_tokens=2, seed=2**64 - 1)  # the largest


@pytest.mark.parametrize("eos, error, match", [
    ("2", TypeError, "eos_token_id must be an int or a list of ints"), (2.0, TypeError, "eos_token_id must be an int"),
    (-1, ValueError, r"eos_token_id -1 is outside the vocabulary \[0, 96\)"),
    (10**6, ValueError, "eos_token_id 1000000 is outside the vocabulary"), ([3, 10**6], ValueError, "outside the vocabulary"),
])
def test_bad_eos_ids_are_refused(eos, error, match):
    for run in (lambda: generate_speculative(tiny_llama(), tiny_llama(layers=1), [1, 2], max_new_tokens=2, eos_token_id=eos),
                lambda: generate_autoregressive(tiny_llama(), [1, 2], max_new_tokens=2, eos_token_id=eos)):
        with pytest.raises(error, match=match):
            run()


def test_early_exit_on_a_one_layer_model_says_why():
    with pytest.raises(ValueError, match="at least 2 layers") as err:
        early_exit_model(tiny_llama(layers=1), 1)
    assert "between 1 and 0" not in str(err.value)


def test_no_getattr_on_drafters_anywhere_in_the_loop_helpers():
    helpers = [decode.draft, decode.side_inputs, decode.speculative_loop]
    assert all("getattr(drafter" not in inspect.getsource(f) for f in helpers)
