"""Contracts v3 (issue 33, items 3, 4, 9, 11, 13): every object a drafter or verifier returns is checked, a fully
masked row is an error at every temperature, options are bounded, and NumPy scalars are numbers.

Each bad input of tests/bad_input_rows_engine.py is asserted here by type and message; the right answers (a copy of
ids for the drafter, valid q rows in every dtype, NumPy scalars, the masked EOS never emitted) are tested below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bad_input_rows_engine import probes
from conftest import VOCAB, perturbed_copy, tiny_llama

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.core import checks
from specdec_lab.core.tree import MAX_TREE_NODES, check_tree_size, tree_nodes
from specdec_lab.core.types import Draft
from specdec_lab.drafters import Drafter, PromptLookupDrafter
from specdec_lab.drafters.prompt_lookup import MAX_NGRAM
from specdec_lab.verifiers import RULES

PROBES = probes()


@pytest.mark.parametrize("where, label, call, error, match", PROBES, ids=[p[1][:50] for p in PROBES])
def test_each_bad_input_gets_its_clear_error(where, label, call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- item 3: what a drafter may do to ids, and which q rows pass ---------------------------------------------------


class Scribbler(Drafter):
    """Drafts the last token twice (q = None), and zeroes the ids it was given: the loop's copy must not change."""

    name, may_abstain = "scribbler", False

    def propose(self, ids, gamma, to_probs, generator):
        draft = ids[-1:].repeat(gamma).clone()
        ids.zero_()
        return Draft(draft)


class DuckScribbler:
    """A third party's drafter (no base class) with a side branch of no tokens, zeroing ids in every hook it has."""

    name, may_abstain, vocab_size, side_branch = "duck-scribbler", False, None, True

    def propose(self, ids, gamma, to_probs, generator):
        draft = ids[-1:].repeat(gamma).clone()
        ids.zero_()
        return Draft(draft)

    def side_inputs(self, ids):
        ids.zero_()
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), torch.empty(0, 0, dtype=torch.bool)

    def observe_side(self, logits, ids):
        ids.zero_()


@pytest.mark.parametrize("scribbler", [Scribbler, DuckScribbler])
def test_a_drafter_that_writes_into_ids_cannot_change_the_run(scribbler):
    target, prompt = tiny_llama(), [7, 3, 9, 3]
    reference = generate_autoregressive(target, prompt, max_new_tokens=10)
    out = generate_speculative(target, scribbler(), prompt, gamma=2, max_new_tokens=10)
    assert out.prompt_ids == prompt
    assert out.token_ids == reference.token_ids  # greedy: exactly the target's own output


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_valid_q_rows_pass_in_every_dtype(dtype):
    """q rows built by the loop's own rule, stored in a lower or higher precision, are still distributions."""

    class Sampler(Drafter):
        name, vocab_size = "sampler", VOCAB

        def propose(self, ids, gamma, to_probs, generator):
            logits = torch.linspace(-2.0, 2.0, VOCAB).repeat(gamma, 1)  # (γ, V)
            q = to_probs(logits, 0).to(dtype)  # (γ, V)
            return Draft(torch.multinomial(q.float(), 1, generator=generator)[:, 0], q)

    out = generate_speculative(tiny_llama(), Sampler(), [1, 2], gamma=3, max_new_tokens=8, temperature=1.0)
    assert len(out.token_ids) == 8


def test_lossless_runs_pass_every_check_with_each_project_verifier():
    """The checks refuse only what breaks the contract: every rule of the project still runs on a real pair."""
    target = tiny_llama(seed=0)
    drafter = perturbed_copy(target, noise=0.05)
    for name in RULES:
        for temperature in (0.0, 1.0):
            out = generate_speculative(target, drafter, [1, 2, 3], gamma=3, max_new_tokens=10, verifier=name,
                                       temperature=temperature, seed=1)
            assert len(out.token_ids) == 10
    greedy = generate_autoregressive(target, [1, 2, 3], max_new_tokens=10).token_ids
    assert generate_speculative(target, drafter, [1, 2, 3], gamma=3, max_new_tokens=10).token_ids == greedy


# -- item 9: the EOS mask of min_new_tokens -------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_masked_eos_is_never_emitted_at_either_temperature(temperature):
    """Every token but 0 is an EOS: the first two new tokens can only be token 0, greedy or sampled, then EOS stops."""
    target = tiny_llama()
    eos = list(range(1, VOCAB))
    kwargs = dict(max_new_tokens=6, min_new_tokens=2, eos_token_id=eos, temperature=temperature, seed=3)
    plain = generate_autoregressive(target, [4, 5], **kwargs).token_ids
    spec = generate_speculative(target, tiny_llama(layers=1, seed=1), [4, 5], gamma=3, **kwargs).token_ids
    for out in (plain, spec):
        assert out[:2] == [0, 0] and (len(out) == 6 or out[-1] in eos)
    if temperature == 0.0:
        assert spec == plain


# -- item 11: bounds ------------------------------------------------------------------------------------------------


def test_tree_size_is_the_prod_sum_of_the_branching_and_bounded():
    assert tree_nodes((2, 3, 4)) == 2 + 6 + 24
    assert check_tree_size((4, 4, 4)) == (4, 4, 4)  # 84 nodes: fine
    assert tree_nodes((MAX_TREE_NODES,)) == MAX_TREE_NODES and check_tree_size((MAX_TREE_NODES,))
    with pytest.raises(ValueError, match=r"branching \(32, 32\) makes a tree of 1056 nodes"):
        check_tree_size((32, 32))


def test_prompt_lookup_at_its_longest_n_gram_drafts_what_a_shorter_bound_does():
    """n-grams as long as the sequence or longer match nothing, so the bound changes no draft."""
    ids = torch.tensor([4, 5, 6, 7, 4, 5, 6, 7, 4, 5])
    longest = PromptLookupDrafter(max_ngram=MAX_NGRAM)
    assert torch.equal(longest.propose(ids, 3, None, None).tokens, PromptLookupDrafter(max_ngram=9).propose(ids, 3, None, None).tokens)
    assert longest.propose(ids, 3, None, None).tokens.tolist() == [6, 7, 4]


# -- item 13: NumPy scalars and the reference -----------------------------------------------------------------------


def test_numpy_scalars_are_numbers_and_give_the_same_run():
    target, drafter = tiny_llama(), tiny_llama(layers=1, seed=1)
    python = dict(gamma=3, max_new_tokens=8, temperature=0.5, top_k=20, top_p=0.9, seed=4)
    numpy = dict(gamma=np.int64(3), max_new_tokens=np.int64(8), temperature=np.float32(0.5), top_k=np.int64(20),
                 top_p=np.float32(0.9), seed=np.uint64(4))
    assert generate_speculative(target, drafter, [1, 2], **numpy).token_ids == \
        generate_speculative(target, drafter, [1, 2], **python).token_ids
    ids, cfg = checks.decode_config(target, np.array([1, 2], dtype=np.uint64), gamma=3, max_new_tokens=np.int64(8),
                                    min_new_tokens=0, temperature=np.float32(0.5), top_k=None, top_p=None, seed=0,
                                    eos_token_id=[np.int64(3)])
    assert ids.tolist() == [1, 2] and type(cfg.temperature) is float and type(cfg.max_new_tokens) is int
    assert cfg.eos_ids == (3,) and type(cfg.eos_ids[0]) is int


def test_numpy_bools_are_not_numbers():
    with pytest.raises(TypeError, match="gamma must be an int"):
        checks.check_gamma(np.bool_(True))


@pytest.mark.parametrize("reference, error, match", [
    ("abc", TypeError, r"reference must be a list of token ids .*got str: 'abc'"),
    (12, TypeError, "reference must be a list of token ids"),
    ([1, 1.5], TypeError, r"reference must hold int token ids, got 1.5 \(float\)"),
    ([1, 500], ValueError, r"reference holds token ids outside the target's vocabulary \[0, 96\), e.g. \[500\]"),
    ([-1], ValueError, r"e.g. \[-1\]"),
    (torch.tensor([[1, 2]]), TypeError, "1-D tensor of integer token ids"),
    (torch.tensor([1.0]), TypeError, "1-D tensor of integer token ids"),
    (torch.tensor([2**64 - 1], dtype=torch.uint64), ValueError, r"past the int64 range, e.g. \[18446744073709551615\]"),
])
def test_a_bad_reference_is_refused_by_its_check(reference, error, match):
    with pytest.raises(error, match=match):
        checks.check_reference(reference, VOCAB)


def test_a_good_reference_comes_back_as_python_ints():
    assert checks.check_reference(None, VOCAB) is None
    assert checks.check_reference(torch.tensor([1, 2]), VOCAB) == [1, 2]
    assert checks.check_reference([np.int64(3), 4], VOCAB) == [3, 4]
    assert type(checks.check_reference((np.int64(3),), VOCAB)[0]) is int


class VerdictScribbler(Scribbler):
    """Also edits the verdict it observes (tokens, path, the final distribution): the loop's own must not change."""

    name = "verdict-scribbler"

    def observe(self, verdict, hidden):
        if verdict is not None:
            verdict.tokens[:] = [0] * len(verdict.tokens)
            verdict.path.clear()
            verdict.next_dist.zero_()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_drafter_that_edits_the_verdict_cannot_change_the_run_or_its_trace(temperature):
    target, prompt = tiny_llama(), [7, 3, 9, 3]
    clean = generate_speculative(target, Scribbler(), prompt, gamma=2, max_new_tokens=10, temperature=temperature)
    out = generate_speculative(target, VerdictScribbler(), prompt, gamma=2, max_new_tokens=10, temperature=temperature)
    assert out.token_ids == clean.token_ids
    assert [(s.emitted, s.decisions, s.n_accepted, s.next_token) for s in out.steps] == \
           [(s.emitted, s.decisions, s.n_accepted, s.next_token) for s in clean.steps]


def test_a_bad_reference_is_refused_before_the_run(monkeypatch):
    target = tiny_llama()
    calls = []
    monkeypatch.setattr(target, "forward", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="outside the target's vocabulary"):
        generate_speculative(target, PromptLookupDrafter(), [1, 2], max_new_tokens=4, reference=[1, 500])
    assert calls == []  # refused before the first forward
