"""The EAGLE feature drafter: lossless through the loop, a cache that equals recomputation, the zoo head drafts well."""

from __future__ import annotations

import pytest
import torch

from conftest import random_prompts, tiny_llama
from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters.eagle import EagleDrafter
from specdec_lab.models.loading import ZOO_DIR, load_model
from specdec_lab.verifiers.tree import TreeGreedy
from specdec_lab.models.zoo.eagle import EagleConfig, EagleHead
from specdec_lab.bench.zoo_report import acceptance, heldout_prompts


def random_head(target, seed: int = 3, std: float = 0.2) -> EagleHead:
    """An untrained head with weights large enough that its guesses depend on features and tokens."""
    torch.manual_seed(seed)
    head = EagleHead(EagleConfig.like(target))
    with torch.no_grad():
        for name, w in head.named_parameters():
            if w.dim() == 2:
                w.normal_(0, std)
    return head.eval()


def test_greedy_output_equals_the_target_for_every_gamma_and_verifier():
    target = tiny_llama(layers=2, seed=0)
    head = random_head(target)
    for prompt in random_prompts(3, seed=2) + [[7]]:
        ref = generate_autoregressive(target, prompt, max_new_tokens=16).token_ids
        for gamma, verifier in ((1, None), (3, None), (5, "greedy"), (3, TreeGreedy(branching=(2, 2, 1)))):
            out = generate_speculative(target, EagleDrafter(target, head), prompt, gamma=gamma, max_new_tokens=16,
                                       verifier=verifier)
            assert out.token_ids == ref, (prompt, gamma, verifier)
            assert out.steps[1].draft, "drafts once a feature is known"
            if len(prompt) == 1:
                assert out.steps[0].draft == []  # no target feature before the first target forward


def scratch_logits(drafter: EagleDrafter, features: torch.Tensor, ids: torch.Tensor, draft: torch.Tensor) -> torch.Tensor:
    """(γ, V) logits of every draft position, recomputed with no cache: one causal pass per position.

    Rows t = 0..n−1 read true features; row n−1+i reads the head's own guess from the previous pass.
    """
    n = ids.shape[0] - 1
    feats, tokens, logits = features, ids[1:], []
    for i in range(draft.shape[0]):
        f_hat = drafter.head(feats[None], drafter.embed(tokens)[None])[0]  # (n + i, d), fresh causal pass
        logits.append(drafter.output_head(f_hat[-1]))
        feats = torch.cat([features, f_hat[n - 1 : n + i]])  # true rows, then the guesses so far
        tokens = torch.cat([ids[1:], draft[: i + 1]])
    return torch.stack(logits)


class Checked(EagleDrafter):
    """An EAGLE drafter that compares each draft with a from-scratch recomputation."""

    checks = 0

    def propose(self, ids, gamma, to_probs, generator):
        draft = super().propose(ids, gamma, to_probs, generator)
        if len(draft):
            with torch.inference_mode():
                ref = to_probs(scratch_logits(self, self.features, ids, draft.tokens), 0)  # (γ, V)
            assert self.features.shape[0] == ids.shape[0] - 1  # a feature for every consumed token
            torch.testing.assert_close(draft.q, ref, atol=1e-5, rtol=1e-4)
            self.checks += 1
        return draft


def test_the_cache_after_rejections_equals_recomputation():
    target = tiny_llama(layers=2, seed=0, init=0.1)
    drafter = Checked(target, random_head(target, std=0.1))
    partial = 0
    for i, prompt in enumerate(random_prompts(3, seed=5, low=2)):
        out = generate_speculative(target, drafter, prompt, gamma=4, max_new_tokens=24, temperature=1.0, seed=i)
        partial += sum(0 < s.n_accepted < len(s.draft) for s in out.steps)
        assert out.stats.accepted > 0
    assert drafter.checks > 10 and partial > 0  # drafts after partial rejections were checked too


def test_one_drafter_serves_many_prompts_like_fresh_ones():
    target = tiny_llama(layers=2, seed=1)
    head = random_head(target, seed=4)
    shared = EagleDrafter(target, head)
    for prompt in random_prompts(4, seed=3) + [[5]]:
        again = generate_speculative(target, shared, prompt, gamma=3, max_new_tokens=12, temperature=1.0, seed=2)
        fresh = generate_speculative(target, EagleDrafter(target, head), prompt, gamma=3, max_new_tokens=12, temperature=1.0, seed=2)
        assert again.token_ids == fresh.token_ids
        assert [s.draft for s in again.steps] == [s.draft for s in fresh.steps]


def test_save_and_load_round_trip(tmp_path):
    target = tiny_llama(layers=1, seed=0)
    head = random_head(target)
    head.save(tmp_path / "eagle", {"note": "test"})
    loaded = EagleHead.load(tmp_path / "eagle")
    f, e = torch.randn(1, 5, 32), torch.randn(1, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(f, e), head.half().float()(f, e), atol=1e-4, rtol=1e-3)
    drafter = EagleDrafter.from_folder(target, tmp_path / "eagle")
    assert drafter.vocab_size == 96 and drafter.name == "eagle"


def test_bad_input_is_refused_with_a_reason(tmp_path):
    target = tiny_llama(layers=1, seed=0)
    wide = EagleHead(EagleConfig.like(tiny_llama(layers=1, seed=0, hidden=48)))
    with pytest.raises(ValueError, match="hidden size 48"):
        EagleDrafter(target, wide)
    with pytest.raises(FileNotFoundError, match="no EAGLE head"):
        EagleHead.load(tmp_path)
    drafter = EagleDrafter(target, random_head(target))  # never given the target's features
    with pytest.raises(ValueError, match="hands it the target's hidden states"):
        drafter.propose(torch.tensor([1, 2, 3]), 2, lambda logits, i: logits.softmax(-1), None)


@pytest.fixture(scope="module")
def zoo_target():
    return load_model("zoo:target", "cpu")


def test_the_zoo_head_drafts_the_zoo_target_well(zoo_target):
    target, tokenizer = zoo_target
    drafter = EagleDrafter.from_folder(target, ZOO_DIR / "eagle")
    prompts = [tokenizer(text)["input_ids"] for text in heldout_prompts(2)]
    result = acceptance(target, drafter, prompts, gamma=4, temperature=0.0, max_new_tokens=24)
    assert result["alpha"] > 0.2
    ref = generate_autoregressive(target, prompts[0], max_new_tokens=24).token_ids
    assert generate_speculative(target, drafter, prompts[0], gamma=4, max_new_tokens=24).token_ids == ref
