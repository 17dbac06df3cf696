"""KV caches are kept and rolled back, never rebuilt: every token is fed to each model as few times as the algorithm needs."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import ModelDrafter, generate_autoregressive, generate_speculative
from specdec_lab.core.lm import CachedLM

from conftest import BUILDERS, perturbed_copy, random_prompts


def count_fed_tokens(model) -> list[int]:
    """Record the number of input tokens of every forward call of a model."""
    calls: list[int] = []
    model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    return calls


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_target_sees_each_token_once_per_step(arch, gamma):
    target = BUILDERS[arch](seed=0)
    drafter_model = perturbed_copy(target, 0.05)
    target_calls, drafter_calls = count_fed_tokens(target), count_fed_tokens(drafter_model)
    for prompt in random_prompts(4, seed=2, low=2):
        target_calls.clear()
        drafter_calls.clear()
        out = generate_speculative(target, ModelDrafter(drafter_model), prompt, gamma=gamma, max_new_tokens=30)
        # prefill of all but the last prompt token, then per step: the last token + the draft
        assert target_calls == [len(prompt) - 1] + [len(s.draft) + 1 for s in out.steps]
        assert out.stats.target_forwards == len(target_calls)
        # the drafter is fed each token of the final sequence at most once, plus its own
        # drafts (a rejected draft's keys are dropped and the corrected token fed instead)
        assert sum(drafter_calls) <= len(prompt) + out.stats.new_tokens + out.stats.drafted
        assert drafter_calls[0] == len(prompt)  # the prompt once, never again
        assert max(drafter_calls[1:]) <= 2  # afterwards only the target's token (and the last accepted draft)


def test_autoregressive_feeds_one_token_per_step():
    target = BUILDERS["llama"](seed=0)
    calls = count_fed_tokens(target)
    out = generate_autoregressive(target, [4, 5, 6, 7], max_new_tokens=10)
    assert calls == [4] + [1] * 9
    assert out.stats.target_forwards == 10


def test_rollback_keeps_the_prefix_exact():
    """Cropping a cache gives the same logits as never having fed the dropped tokens."""
    model = BUILDERS["gpt2"](seed=0)
    lm = CachedLM(model)
    lm.forward(torch.tensor([1, 2, 3, 4]))
    lm.forward(torch.tensor([9, 9, 9]))
    lm.rollback(3)
    assert lm.length == 4
    after_rollback = lm.forward(torch.tensor([5]))
    fresh = CachedLM(model)
    reference = fresh.forward(torch.tensor([1, 2, 3, 4, 5]))[-1:]
    assert torch.allclose(after_rollback, reference, atol=1e-5)
    with pytest.raises(ValueError, match="cannot roll back 6 tokens from a cache of 5"):
        lm.rollback(6)


def test_drafter_cache_matches_what_it_has_seen():
    target = BUILDERS["llama"](seed=0)
    drafter = ModelDrafter(perturbed_copy(target, 0.05))
    out = generate_speculative(target, drafter, [3, 1, 4], gamma=4, max_new_tokens=25)
    assert drafter.lm.length == drafter.cached_ids.shape[0]
    full = out.prompt_ids + out.token_ids
    # everything the drafter cached, up to the last verified token, is the real sequence
    shared = min(len(full) - 1, drafter.lm.length)
    assert drafter.cached_ids[:shared].tolist() == full[:shared]
