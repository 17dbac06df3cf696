"""The acceptance math: hand-worked values, identities, and Monte-Carlo estimates with the real verifier."""

from __future__ import annotations

import math

import pytest
import torch

from specdec_lab.drafters import Draft
from specdec_lab.core.theory import (
    acceptance_rate,
    accept_probability,
    best_gamma,
    expected_tokens_per_step,
    residual,
    speedup,
    total_variation,
)
from specdec_lab.verifiers import SpeculativeSampling

P = torch.tensor([0.5, 0.3, 0.2])
Q = torch.tensor([0.2, 0.5, 0.3])


def test_hand_worked_values():
    assert acceptance_rate(P, Q).item() == pytest.approx(0.2 + 0.3 + 0.2)
    assert total_variation(P, Q).item() == pytest.approx(0.3)
    assert torch.allclose(accept_probability(P, Q), torch.tensor([1.0, 0.6, 2 / 3]))
    assert torch.allclose(residual(P, Q), torch.tensor([1.0, 0.0, 0.0]))
    # Leviathan et al. Eq. 1 and Theorem 3.8 at alpha = 0.8, gamma = 4, c = 0.05
    assert expected_tokens_per_step(0.8, 4) == pytest.approx((1 - 0.8**5) / 0.2) == pytest.approx(3.3616)
    assert speedup(0.8, 4, 0.05) == pytest.approx(3.3616 / 1.2)


def test_limits():
    assert expected_tokens_per_step(0.0, 5) == 1.0  # only the target's own token
    assert expected_tokens_per_step(1.0, 5) == 6.0  # every draft plus the bonus
    assert expected_tokens_per_step(1 - 1e-12, 5) == pytest.approx(6.0)
    assert speedup(1.0, 3, 0.0) == 4.0
    assert accept_probability(torch.tensor([0.4]), torch.tensor([0.0])).item() == 1.0
    assert accept_probability(torch.tensor([0.0]), torch.tensor([0.0])).item() == 0.0


def test_alpha_is_one_minus_tv_and_residual_mass_is_one_minus_alpha():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(50, 17, generator=g).softmax(-1)
    q = torch.rand(50, 17, generator=g).pow(3).softmax(-1)
    assert torch.allclose(acceptance_rate(p, q), 1 - total_variation(p, q), atol=1e-6)
    assert torch.allclose((p - q).clamp_min(0).sum(-1), 1 - acceptance_rate(p, q), atol=1e-6)
    assert torch.allclose(residual(p, q).sum(-1), torch.ones(50), atol=1e-6)


def test_best_gamma_is_the_argmax_of_speedup():
    for alpha, c in [(0.8, 0.05), (0.6, 0.1), (0.9, 0.02), (0.3, 0.3)]:
        values = {g: speedup(alpha, g, c) for g in range(1, 33)}
        assert best_gamma(alpha, c) == max(values, key=values.get)
    # hand check: (1 - 0.8^9) / (0.2 * 1.4) = 3.0921 beats gamma = 7 (3.0823) and gamma = 9 (3.0780)
    assert best_gamma(0.8, 0.05) == 8
    assert speedup(0.8, 8, 0.05) == pytest.approx(3.0921, abs=1e-4)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="alpha"):
        expected_tokens_per_step(1.5, 3)
    with pytest.raises(ValueError, match="gamma"):
        expected_tokens_per_step(0.5, -1)
    with pytest.raises(ValueError, match="c must be"):
        speedup(0.5, 3, -0.1)
    with pytest.raises(ValueError, match="max_gamma"):
        best_gamma(0.5, 0.1, max_gamma=0)


def _monte_carlo_steps(p: torch.Tensor, q: torch.Tensor, gamma: int, n: int, seed: int = 0):
    """Run the real verifier n times on a stationary source (the same p, q at every position)."""
    g = torch.Generator().manual_seed(seed)
    verifier = SpeculativeSampling()
    p_rows, q_rows = p.expand(gamma + 1, -1), q.expand(gamma, -1)
    accepted, emitted = 0, 0
    for _ in range(n):
        tokens = torch.multinomial(q_rows, 1, generator=g)[:, 0]
        verdict = verifier.verify(Draft(tokens, q_rows), p_rows, g)
        accepted += verdict.n_accepted
        emitted += len(verdict.tokens)
    return accepted, emitted


@pytest.mark.stat
def test_acceptance_rate_and_tokens_per_step_match_monte_carlo():
    p = torch.tensor([0.4, 0.25, 0.2, 0.1, 0.05])
    q = torch.tensor([0.2, 0.4, 0.1, 0.2, 0.1])
    alpha = acceptance_rate(p, q).item()  # 0.2 + 0.25 + 0.1 + 0.1 + 0.05 = 0.7
    assert alpha == pytest.approx(0.7)

    n = 6000
    # gamma = 1: the accept frequency estimates alpha directly
    accepted, _ = _monte_carlo_steps(p, q, gamma=1, n=n)
    assert abs(accepted / n - alpha) < 4 * math.sqrt(alpha * (1 - alpha) / n)

    gamma = 4
    _, emitted = _monte_carlo_steps(p, q, gamma=gamma, n=n, seed=1)
    expected = expected_tokens_per_step(alpha, gamma)
    # tokens per step lie in [1, gamma + 1]: a loose but honest bound on their standard deviation
    assert abs(emitted / n - expected) < 4 * (gamma / 2) / math.sqrt(n)


# --- the first-token law and the chi-square test of specdec_lab.verifiers.laws ---------------------------------------

def test_first_token_law_is_p_for_speculative_sampling_and_not_for_a_relaxed_rule():
    from specdec_lab.verifiers.laws import first_token_law
    from specdec_lab.verifiers import SpeculativeSampling, TypicalAcceptance

    p, q = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05]), torch.tensor([0.05, 0.1, 0.15, 0.3, 0.4])
    assert torch.allclose(first_token_law(SpeculativeSampling(), p, q), p.double(), atol=1e-7)
    assert total_variation(first_token_law(TypicalAcceptance(), p, q), p.double()) > 0.2


def test_chi_square_pvalue_matches_scipy_and_has_power():
    from scipy.stats import chisquare

    from specdec_lab.verifiers.laws import chi_square_pvalue, sample_first_tokens
    from specdec_lab.verifiers import SpeculativeSampling

    counts, law = torch.tensor([30, 18, 52, 0]), torch.tensor([0.3, 0.2, 0.5, 0.0])
    assert chi_square_pvalue(counts, law) == pytest.approx(chisquare([30, 18, 52], [30, 20, 50]).pvalue, rel=1e-6)
    p, q = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05]), torch.tensor([0.05, 0.1, 0.15, 0.3, 0.4])
    counts = sample_first_tokens(SpeculativeSampling(), p, q, n=4000, seed=1)
    assert counts.sum() == 4000
    assert chi_square_pvalue(counts, p) > 1e-3
    assert chi_square_pvalue(counts, q) < 1e-6
    assert chi_square_pvalue(torch.tensor([5, 5, 1]), torch.tensor([0.5, 0.5, 0.0])) == 0.0
