"""Block verification (Sun et al. 2025): exactly lossless, never behind token-level verification, greedy at T = 0.

The exact laws enumerate every draft and every accepted length on a 4-token vocabulary whose target and
drafter distributions depend on the whole prefix; the chi-square tests run the real loop on tiny models.
"""

from __future__ import annotations

import functools

import pytest
import torch

from specdec_lab import generate_speculative
from specdec_lab.verifiers.block import BlockVerification, block_residual
from specdec_lab.drafters.base import Draft
from specdec_lab.verifiers.laws import emitted_law, expected_accepted, law_distance, step_law, target_law
from specdec_lab.registry import VERIFIERS, build_verifier
from specdec_lab.core.sampling import SamplingConfig, one_hot, probs_from_logits
from specdec_lab.verifiers import SpeculativeSampling

from test_distribution import CONFIGS, chi_square_pvalue, models  # noqa: F401 - the shared tiny pair and its test

V = 4


def table(seed: int, sharpness: float = 1.5, cfg: SamplingConfig | None = None):
    """A distribution for every prefix (a tuple of tokens), fixed by the seed and the prefix. With ``cfg``, the logits
    go through the loop's own rule (temperature, top-k, top-p: zeros in the rows), renormalised in float64."""
    @functools.lru_cache(maxsize=None)
    def dist(prefix: tuple[int, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(hash((seed,) + prefix) % 2**31)
        logits = sharpness * torch.randn(V, generator=g, dtype=torch.float64)
        if cfg is None:
            return torch.softmax(logits, -1)
        row = probs_from_logits(logits[None], cfg)[0].double()  # the rule computes in float32
        return row / row.sum()
    return dist


P, Q = table(0), table(1)


class BlockWithoutWeight(BlockVerification):
    """WRONG on purpose: after stopping at τ it draws from norm(max(p_τ − q_τ, 0)), forgetting the weight b_τ."""

    name = "wrong-block-residual"
    lossless = False

    def verify(self, draft, p, generator, uniforms=None):
        v = super().verify(draft, p, generator, uniforms)
        n = v.n_accepted
        if n < len(draft.tokens):
            v.next_dist = block_residual(torch.ones((), dtype=p.dtype), p[n], draft.q[n].to(p.dtype))
            v.tokens[-1] = int(torch.multinomial(v.next_dist.float(), 1, generator=generator))
        return v


class BlockWithoutCorrection(BlockVerification):
    """WRONG on purpose: keeps the prefix of length i with probability h_i = b_i, leaving out r_i / (r_i + 1 − b_i)."""

    name = "wrong-block-thresholds"
    lossless = False

    def thresholds(self, b, p, q):
        return b[1:].clone()


def test_block_is_registered_as_lossless():
    assert VERIFIERS["block"].lossless and isinstance(build_verifier("block"), BlockVerification)


@pytest.mark.parametrize("gamma", [1, 2, 3])
def test_exact_law_of_the_first_two_tokens_is_the_targets(gamma):
    law = emitted_law(BlockVerification(), P, Q, gamma, n_tokens=2)
    assert law_distance(law, target_law(P, 2)) < 1e-9
    assert abs(sum(law.values()) - 1) < 1e-9


def test_exact_law_catches_wrong_variants_even_a_tiny_error():
    """Leaving out the correction in h moves the law a lot; forgetting b_τ in the residual only by ~4e-5 in TV,
    far below what sampling can see, but the exact law still sees it."""
    truth = target_law(P, 2)
    assert law_distance(emitted_law(BlockWithoutCorrection(), P, Q, 2, n_tokens=2), truth) > 0.05
    assert law_distance(emitted_law(BlockWithoutWeight(), P, Q, 2, n_tokens=2), truth) > 1e-6


def test_one_step_never_accepts_fewer_than_token_level_and_sometimes_more():
    """E[accepted] of one step, exactly, over every draft: Theorem 3 of the paper, and a strict gain here."""
    gamma = 3
    block = sum(chance * len(out[:-1]) for out, chance in step_law(BlockVerification(), P, Q, (), gamma).items())
    token = sum(chance * len(out[:-1]) for out, chance in step_law(SpeculativeSampling(), P, Q, (), gamma).items())
    assert block >= token - 1e-12
    assert block > token + 1e-3


def test_hand_worked_block_keeps_what_token_level_rejects():
    """x_1 is over-drafted (p/q = 0.5) but x_2 under-drafted (p/q = 2): token-level stops at x_1 half the time,
    block carries x_2's surplus back and keeps both with probability b_2 = min(1, 0.5 · 2) = 1 when γ = 2."""
    p = torch.tensor([[0.2, 0.8], [0.8, 0.2], [0.5, 0.5]], dtype=torch.float64)
    q = torch.tensor([[0.4, 0.6], [0.4, 0.6]], dtype=torch.float64)
    draft = Draft(torch.tensor([0, 0]), q)
    verdict = BlockVerification().verify(draft, p, torch.Generator().manual_seed(0))
    assert verdict.accept_prob[-1] == pytest.approx(1.0)  # h_2 = b_2 = 1: the whole block always passes
    assert verdict.n_accepted == 2
    assert expected_accepted(BlockVerification(), p, draft) == pytest.approx(2.0)
    assert expected_accepted(SpeculativeSampling(), p, draft) == pytest.approx(0.5 * (1 + 1))  # 0.5 · 2 accepted


def test_deterministic_drafts_gain_nothing():
    """q one-hot: b_i = Π p(x_j) is already what token-level reaches, so the two laws of the length are equal."""
    p = torch.softmax(torch.randn(4, V, generator=torch.Generator().manual_seed(3), dtype=torch.float64), -1)
    draft = Draft(torch.tensor([1, 2, 0]), None)
    laws = []
    for verifier in (BlockVerification(), SpeculativeSampling()):
        first = verifier.verify(draft, p, None, uniforms=verifier.uniforms_for(0, 3))
        laws.append(verifier.length_law(first.accept_prob))
    assert laws[0] == pytest.approx(laws[1])


@pytest.mark.parametrize("seed", range(5))
def test_at_temperature_zero_it_is_greedy_matching(seed):
    g = torch.Generator().manual_seed(seed)
    p = one_hot(torch.randint(0, V, (4,), generator=g), V)
    q = one_hot(torch.randint(0, V, (3,), generator=g), V)
    draft = Draft(q.argmax(-1), q)
    block = BlockVerification().verify(draft, p, torch.Generator().manual_seed(0))
    greedy = build_verifier("greedy").verify(draft, p, None)
    assert block.tokens == greedy.tokens


def test_loop_at_temperature_zero_equals_greedy(models):  # noqa: F811 - the fixture
    target, drafter = models
    runs = [generate_speculative(target, drafter, [1, 3], gamma=3, max_new_tokens=12, verifier=v).token_ids
            for v in ("block", "greedy")]
    assert runs[0] == runs[1]


@pytest.mark.stat
@pytest.mark.parametrize("cfg", CONFIGS, ids=["T=1", "T=0.7,top_k=4,top_p=0.9"])
def test_full_loop_has_the_target_distribution(models, cfg):  # noqa: F811 - the fixture
    target, drafter = models
    assert chi_square_pvalue(target, drafter, cfg, verifier=BlockVerification()) > 1e-3


@pytest.mark.stat
def test_negative_control_fails_the_same_test(models):  # noqa: F811 - the fixture
    target, drafter = models
    assert chi_square_pvalue(target, drafter, CONFIGS[0], verifier=BlockWithoutCorrection()) < 1e-3
