"""The acceptance math of speculative decoding, as closed forms.

Notation (Leviathan, Kalman & Matias, "Fast Inference from Transformers via
Speculative Decoding", ICML 2023, section 3; the same letters as transformers):

    p   the target model's distribution over the next token
    q   the drafter's distribution over the next token
    γ   draft length (tokens proposed per step)
    α   acceptance rate: the probability a drafted token is accepted
    c   cost of one drafter forward relative to one target forward

Everything here is a pure function of numbers or of (V,) probability tensors;
the tests check each one against hand-worked values and Monte-Carlo estimates.
"""

from __future__ import annotations

import math

import torch


def acceptance_rate(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """α = Σ_x min(p(x), q(x)) = 1 − TV(p, q)   (Leviathan et al., Definition 3.1, Theorem 3.5).

    Works row-wise on (..., V) tensors.
    """
    return torch.minimum(p, q).sum(dim=-1)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """TV(p, q) = ½ Σ_x |p(x) − q(x)|."""
    return 0.5 * (p - q).abs().sum(dim=-1)


def accept_probability(p_x: torch.Tensor, q_x: torch.Tensor) -> torch.Tensor:
    """Probability of keeping a drafted token x: min(1, p(x) / q(x)).

    A token the drafter could not have sampled (q(x) = 0) is kept only if the
    target allows it at all, which is the limit of the formula as q(x) → 0.
    """
    ratio = p_x / q_x.clamp_min(torch.finfo(q_x.dtype).tiny)
    return torch.where(q_x > 0, ratio.clamp(max=1.0), (p_x > 0).to(p_x.dtype))


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Distribution sampled after a rejection: norm(max(0, p − q)).

    Its normaliser Σ max(0, p − q) equals 1 − α. Where that mass is zero
    (p ≤ q everywhere, so p = q and a rejection had probability 0 — it can
    only be reached through rounding), return p itself.
    """
    mass = (p - q).clamp_min(0.0)
    total = mass.sum(dim=-1, keepdim=True)
    safe = total > 1e-12
    return torch.where(safe, mass / total.clamp_min(1e-30), p)


def expected_tokens_per_step(alpha: float, gamma: int) -> float:
    """E[tokens per step] = (1 − α^(γ+1)) / (1 − α)   (Leviathan et al., Equation 1).

    Counts the accepted drafts plus the one token the target always adds;
    it runs from 1 (α = 0) to γ + 1 (α = 1).
    """
    _check_alpha_gamma(alpha, gamma)
    if alpha == 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speedup(alpha: float, gamma: int, c: float, verify_cost: float = 1.0) -> float:
    """Expected wall-time speedup = (1 − α^(γ+1)) / ((1 − α)(γc + v))   (Leviathan et al., Theorem 3.8: v = 1).

    One step costs γ drafter forwards (γc target-forward units) plus one target
    forward over γ+1 tokens, which costs v target forwards of one token; the
    theorem assumes v = 1 (verification is memory bound). Pass a measured v to
    account for what verifying γ+1 tokens really costs on this device.
    """
    if c < 0:
        raise ValueError(f"cost ratio c must be >= 0, got {c}")
    if not verify_cost > 0:
        raise ValueError(f"verify_cost must be > 0, got {verify_cost}")
    return expected_tokens_per_step(alpha, gamma) / (gamma * c + verify_cost)


def best_gamma(alpha: float, c: float, max_gamma: int = 32) -> int:
    """The γ in 1..max_gamma that maximises :func:`speedup` (ties go to the smaller γ)."""
    if max_gamma < 1:
        raise ValueError(f"max_gamma must be >= 1, got {max_gamma}")
    return max(range(1, max_gamma + 1), key=lambda g: (speedup(alpha, g, c), -g))


def _check_alpha_gamma(alpha: float, gamma: int) -> None:
    if not (0.0 <= alpha <= 1.0) or math.isnan(alpha):
        raise ValueError(f"acceptance rate alpha must be in [0, 1], got {alpha}")
    if int(gamma) != gamma or gamma < 0:
        raise ValueError(f"gamma must be a whole number >= 0, got {gamma}")
