"""Greedy speculative decoding reproduces the target's own greedy output, token for token."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import GreedyMatch, generate_autoregressive, generate_speculative

from conftest import perturbed_copy, random_prompts, tiny_llama

PROMPTS = random_prompts(8, seed=1)


def hf_inputs(prompt):
    """transformers' generate with an explicit attention mask (it would otherwise mask every pad id in the prompt)."""
    ids = torch.tensor([prompt])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@pytest.mark.parametrize("gamma", range(1, 9))
def test_speculative_greedy_equals_autoregressive(pair, gamma):
    target, drafter = pair
    accepted = drafted = 0
    for prompt in PROMPTS:
        ref = generate_autoregressive(target, prompt, max_new_tokens=24)
        out = generate_speculative(target, drafter, prompt, gamma=gamma, max_new_tokens=24)
        assert out.token_ids == ref.token_ids
        assert len(out.token_ids) == 24
        accepted, drafted = accepted + out.stats.accepted, drafted + out.stats.drafted
    # drafts were both accepted and rejected, so the rollback paths ran
    assert 0 < accepted < drafted


def test_autoregressive_equals_transformers_generate(pair):
    target, _ = pair
    for prompt in PROMPTS:
        ref = target.generate(**hf_inputs(prompt), do_sample=False, max_new_tokens=24)[0, len(prompt):].tolist()
        assert generate_autoregressive(target, prompt, max_new_tokens=24).token_ids == ref


@pytest.mark.parametrize("gamma", [1, 3, 5])
def test_speculative_equals_transformers_assisted_generation(pair, gamma):
    target, drafter = pair
    drafter.generation_config.num_assistant_tokens = gamma
    drafter.generation_config.num_assistant_tokens_schedule = "constant"
    for prompt in PROMPTS[:4]:
        assisted = target.generate(
            **hf_inputs(prompt), assistant_model=drafter, do_sample=False, max_new_tokens=24
        )[0, len(prompt):].tolist()
        assert generate_speculative(target, drafter, prompt, gamma=gamma, max_new_tokens=24).token_ids == assisted


@pytest.mark.parametrize("gamma", [1, 2, 4, 8])
def test_eos_inside_a_draft_stops_like_the_baseline(pair, gamma):
    target, drafter = pair
    for prompt in PROMPTS:
        free = generate_autoregressive(target, prompt, max_new_tokens=24).token_ids
        for eos_pos in (0, 3, 9):
            eos = free[eos_pos]
            ref = generate_autoregressive(target, prompt, max_new_tokens=24, eos_token_id=eos)
            hf = target.generate(
                **hf_inputs(prompt), do_sample=False, max_new_tokens=24, eos_token_id=eos, pad_token_id=0
            )[0, len(prompt):].tolist()
            out = generate_speculative(target, drafter, prompt, gamma=gamma, max_new_tokens=24, eos_token_id=eos)
            assert out.token_ids == ref.token_ids == hf
            assert out.token_ids[-1] == eos and eos not in out.token_ids[:-1]


@pytest.mark.parametrize("max_new_tokens", range(1, 12))
def test_max_new_tokens_boundary_inside_a_draft(pair, max_new_tokens):
    target, drafter = pair
    prompt = PROMPTS[0]
    ref = generate_autoregressive(target, prompt, max_new_tokens=max_new_tokens).token_ids
    for gamma in (1, 4, 8):
        out = generate_speculative(target, drafter, prompt, gamma=gamma, max_new_tokens=max_new_tokens)
        assert out.token_ids == ref
        assert len(out.token_ids) == max_new_tokens
        assert all(len(s.draft) <= gamma for s in out.steps)


def test_min_new_tokens_masks_eos_like_transformers(pair):
    target, drafter = pair
    prompt = PROMPTS[2]
    free = generate_autoregressive(target, prompt, max_new_tokens=30).token_ids
    eos = free[2]
    for min_new in (0, 3, 6, 15):
        ref = generate_autoregressive(target, prompt, max_new_tokens=30, eos_token_id=eos, min_new_tokens=min_new)
        hf = target.generate(
            **hf_inputs(prompt), do_sample=False, max_new_tokens=30, eos_token_id=eos, pad_token_id=0,
            min_new_tokens=min_new,
        )[0, len(prompt):].tolist()
        assert ref.token_ids == hf
        assert eos not in ref.token_ids[:min_new]
        for gamma in (1, 4, 7):
            out = generate_speculative(
                target, drafter, prompt, gamma=gamma, max_new_tokens=30, eos_token_id=eos, min_new_tokens=min_new
            )
            assert out.token_ids == ref.token_ids


def test_greedy_verifier_equals_speculative_sampling_at_temperature_zero(pair):
    target, drafter = pair
    for prompt in PROMPTS[:4]:
        a = generate_speculative(target, drafter, prompt, gamma=4, max_new_tokens=20)
        b = generate_speculative(target, drafter, prompt, gamma=4, max_new_tokens=20, verifier=GreedyMatch())
        assert a.token_ids == b.token_ids
        assert [s.n_accepted for s in a.steps] == [s.n_accepted for s in b.steps]


def test_greedy_verifier_emits_target_argmax_at_any_temperature(pair):
    target, drafter = pair
    prompt = PROMPTS[3]
    ref = generate_autoregressive(target, prompt, max_new_tokens=20).token_ids
    out = generate_speculative(target, drafter, prompt, gamma=3, max_new_tokens=20, temperature=1.3, verifier="greedy")
    assert out.token_ids == ref


def test_drafter_equal_to_target_accepts_everything():
    target = tiny_llama(seed=3)
    out = generate_speculative(target, target, [5, 6, 7], gamma=4, max_new_tokens=20)
    assert out.stats.acceptance_rate == 1.0
    assert [len(s.emitted) for s in out.steps] == [5, 5, 5, 5]  # 4 drafts + 1 bonus each step


def test_drafter_object_is_reused_across_prompts():
    """A drafter keeps its cache between calls; a new prompt must not see the old one's keys."""
    target = tiny_llama(seed=4)
    from specdec_lab import ModelDrafter

    drafter = ModelDrafter(perturbed_copy(target, 0.05))
    for prompt in PROMPTS:
        ref = generate_autoregressive(target, prompt, max_new_tokens=16).token_ids
        assert generate_speculative(target, drafter, prompt, gamma=3, max_new_tokens=16).token_ids == ref
