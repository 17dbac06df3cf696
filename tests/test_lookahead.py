"""Lookahead decoding: the Jacobi window rides in the verification forward without disturbing it.

The side tokens' mask and positions match the paper's layout; each side row equals a plain forward
over the context the mask lets it see; the loop stays one target forward per step, drops the side
tokens from the cache, and reproduces the target's greedy output with chain and tree verifiers.
"""

from __future__ import annotations

import pytest
import torch

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters.lookahead import LookaheadDrafter, window_geometry
from specdec_lab.core.lm import CachedLM, with_side_branch
from specdec_lab.verifiers.tree import TreeGreedy, TreeSpeculative

from conftest import BUILDERS, random_prompts, tiny_gpt2, tiny_llama

REPETITIVE = [5, 17, 42, 8, 23] * 6
PROMPTS = [REPETITIVE] + random_prompts(3, seed=1)  # includes a one-token prompt (no prefill)
T, F = True, False


def test_window_mask_and_positions_match_the_paper_layout():
    # W = 3, N = 3; side tokens [s01, s02, s10, s11, s12]; s(l, w) sits at depth l + w, s00 is the root
    depth, attend = window_geometry(3, 3)
    assert depth.tolist() == [1, 2, 1, 2, 3]
    assert attend.tolist() == [
        [T, F, F, F, F],  # s01: the root, itself
        [T, T, F, F, F],  # s02: level 0 up to its column
        [F, F, T, F, F],  # s10: column 0 of level 0 is the root
        [T, F, F, T, F],  # s11: s01 (level 0 up to column 1), then its own column
        [T, T, F, F, T],  # s12: s01, s02, then its own column
    ]
    # a chain [root, d1, d2] plus the W = 2, N = 3 window [s01, s10, s11]: no attention across the two parts
    depth, attend = window_geometry(2, 3)
    full, positions = with_side_branch(torch.tensor([-1, 0, 1]), depth, attend)
    assert positions.tolist() == [0, 1, 2, 1, 1, 2]
    assert full.tolist() == [
        [T, F, F, F, F, F],  # root
        [T, T, F, F, F, F],  # d1
        [T, T, T, F, F, F],  # d2
        [T, F, F, T, F, F],  # s01
        [T, F, F, F, T, F],  # s10
        [T, F, F, T, F, T],  # s11
    ]
    assert window_geometry(1, 2)[0].numel() == 0  # W = 1, N = 2: the window is the root alone
    lm = CachedLM(tiny_llama(layers=1))
    with pytest.raises(ValueError, match="diagonal"):
        lm.forward(torch.tensor([1, 2]), attend=torch.zeros(2, 2, dtype=torch.bool), depth=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="not both"):
        lm.forward(torch.tensor([1, 2]), parents=torch.tensor([-1, 0]), attend=torch.eye(2, dtype=torch.bool),
                   depth=torch.tensor([0, 1]))


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_one_forward_scores_tree_and_window_as_separate_forwards_would(arch):
    model = BUILDERS[arch](layers=2, seed=0)
    prefix = torch.tensor(random_prompts(1, low=7, high=7)[0])
    tree, parents = torch.tensor([5, 11, 12, 13]), torch.tensor([-1, 0, 0, 1])  # root 5 → {11 → 13, 12}
    depth, attend = window_geometry(3, 4)  # M = 2 + 2·3 = 8 side tokens
    side = torch.arange(20, 20 + depth.numel())
    lm = CachedLM(model)
    lm.forward(prefix)
    full, positions = with_side_branch(parents, depth, attend)
    logits = lm.forward(torch.cat([tree, side]), attend=full, depth=positions)  # (4 + 8, V)

    alone = CachedLM(model)
    alone.forward(prefix)
    torch.testing.assert_close(logits[:4], alone.forward(tree, parents=parents), atol=1e-5, rtol=1e-5)
    for i in range(side.numel()):  # row i = a plain forward over prefix, root, the side tokens it sees
        seen = torch.cat([tree[:1], side[attend[i]]])
        plain = CachedLM(model)
        plain.forward(prefix)
        torch.testing.assert_close(logits[4 + i], plain.forward(seen)[-1], atol=1e-5, rtol=1e-5)
    # dropping the side tokens (they come last) leaves the cache of a tree-only forward
    lm.rollback(side.numel())
    lm.keep(len(prefix), [len(prefix), len(prefix) + 1, len(prefix) + 3])  # the path 5 → 11 → 13
    fresh = CachedLM(model)
    fresh.forward(torch.cat([prefix, tree[[0, 1, 3]]]))
    nxt = torch.tensor([7, 8])
    torch.testing.assert_close(lm.forward(nxt), fresh.forward(nxt), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("verifier", [None, "greedy", TreeGreedy(branching=(4, 2, 1, 1))],
                         ids=["default", "greedy", "tree"])
def test_lookahead_greedy_equals_autoregressive(arch, verifier):
    target = BUILDERS[arch](layers=2, seed=0)
    for window, ngram, guesses in ((4, 3, 4), (2, 2, 1)):
        for prompt in PROMPTS:
            out = generate_speculative(target, LookaheadDrafter(window, ngram, guesses), prompt, gamma=4,
                                       max_new_tokens=32, verifier=verifier)
            assert out.token_ids == generate_autoregressive(target, prompt, max_new_tokens=32).token_ids
            assert out.stats.target_forwards == out.stats.steps + (len(prompt) > 1)  # prefill + ONE per step
            if prompt is REPETITIVE:
                assert out.stats.accepted > 0


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_side_tokens_never_stay_in_the_cache(arch):
    target = BUILDERS[arch](layers=2, seed=0)
    drafter = LookaheadDrafter(window=4, ngram=3, guesses=4)
    m = drafter.depth.numel()  # 3 + 4 = 7 side tokens per step
    caches, calls = [], []  # the target's cache; (its length, tokens fed) before every target forward

    def record(module, args, kwargs):
        caches.append(kwargs.get("past_key_values", kwargs.get("cache")))
        calls.append((caches[-1].get_seq_length(), kwargs["input_ids"].shape[1]))

    target.register_forward_pre_hook(record, with_kwargs=True)
    out = generate_speculative(target, drafter, REPETITIVE, gamma=4, max_new_tokens=32)
    # each step starts from the invariant: the cache holds every token but the last
    assert [length for length, _ in calls[1:]] == [s.context_len - 1 for s in out.steps]
    assert [fed for _, fed in calls[1:]] == [1 + len(s.draft) + m for s in out.steps]  # root + drafts + window
    assert caches[-1].get_seq_length() == len(REPETITIVE) + len(out.token_ids) - 1  # and so does the end
    assert out.stats.accepted > 0


def test_a_reused_drafter_starts_over_on_a_new_sequence():
    target = tiny_llama(layers=2, seed=0)
    reused = LookaheadDrafter()
    for prompt in PROMPTS[:2] + PROMPTS[:1]:
        again = generate_speculative(target, reused, prompt, gamma=4, max_new_tokens=24)
        fresh = generate_speculative(target, LookaheadDrafter(), prompt, gamma=4, max_new_tokens=24)
        assert [s.draft for s in again.steps] == [s.draft for s in fresh.steps]


def test_window_past_the_context_is_skipped_not_fed():
    target = tiny_gpt2(layers=2, seed=0, context=40)  # GPT-2 has no positions past n_positions
    prompt = REPETITIVE[:28]
    out = generate_speculative(target, LookaheadDrafter(window=4, ngram=4), prompt, gamma=4, max_new_tokens=12)
    assert out.token_ids == generate_autoregressive(target, prompt, max_new_tokens=12).token_ids


def test_lookahead_samples_with_one_forward_per_step_and_is_seeded():
    # exactness under sampling rests on the draft rows being untouched by the window (tested above)
    # and on the verifiers' own tests: lookahead drafts are deterministic (q = None)
    target = tiny_llama(layers=2, seed=0)
    for verifier in (None, TreeSpeculative(branching=(3, 1, 1))):
        runs = [generate_speculative(target, LookaheadDrafter(), REPETITIVE, gamma=3, max_new_tokens=24,
                                     temperature=0.8, seed=seed, verifier=verifier) for seed in (3, 3, 4)]
        assert runs[0].token_ids == runs[1].token_ids != runs[2].token_ids
        assert all(r.stats.target_forwards == r.stats.steps + 1 for r in runs)


@pytest.mark.parametrize("option, value",
                         [("window", 0), ("ngram", 1), ("guesses", 0), ("window", 2.5), ("ngram", True)])
def test_bad_options_are_refused_by_name(option, value):
    with pytest.raises(ValueError, match=option):
        LookaheadDrafter(**{option: value})
