"""Block verification: judge the draft as a whole block instead of token by token; lossless.

Sun, Mendlovic, Leviathan, Aharoni, Ro, Beirami & Suresh, "Block Verification Accelerates
Speculative Decoding", ICLR 2025 (arXiv:2403.10444), Algorithm 2. Notation as in
:mod:`specdec_lab.verifiers.token`: drafts x_1..x_γ, drafter rows q_0..q_{γ−1}, target rows
p_0..p_γ from one forward, where p_i (q_i) is the distribution of the token after x_1..x_i.

    b_0 = 1,   b_i = min(1, b_{i−1} · p_{i−1}(x_i) / q_{i−1}(x_i))              (Alg. 2, the weights p_i)
    r_i = Σ_y max(b_i · p_i(y) − q_i(y), 0)                                    (the residual mass at i)
    h_i = r_i / (r_i + 1 − b_i)   for i < γ,      h_γ = b_γ                     (Alg. 2, the h_i)
    τ   = max{ i ≥ 1 : η_i < h_i },  τ = 0 if there is none,   η_i ~ U(0, 1) independent
    emit x_1..x_τ, then y ~ p_γ if τ = γ (the bonus token), else y ~ norm(max(b_τ · p_τ − q_τ, 0))

(The paper writes r_i + 1 − b_i as Σ_y max{b_i p_i(y), q_i(y)} − b_i and r_i as that sum − 1.)
Token-level speculative sampling stops at the first rejection; block verification instead keeps
the LONGEST prefix whose event fires, and its weights b_i carry an early token's surplus
(p > q) forward to pay for a later deficit. The paper proves it lossless (Theorem 2) and never
worse in expected accepted length than token-level verification (Theorem 3); the tests check
both exactly on small vocabularies.

Deterministic drafts (q None: prompt lookup, greedy heads) are q = one-hot, as the paper's
analysis allows. Then b_i = Π_{j≤i} p_{j−1}(x_j), the most any lossless rule may accept the
prefix with, which token-level verification already reaches: block verification gains nothing
there, and the tests check the two laws of the accepted length are equal.
At temperature 0 (p one-hot) b_i is 1 along the matching prefix and 0 after it, so block
verification is greedy matching. Where r_i + 1 − b_i = 0 (b_i = 1 and p_i = q_i: the block
can always be extended), h_i = 1.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..core.types import Draft, Verdict
from .base import Verifier
from .token import draft_rows, draws, sampled_verdict


def block_weights(p_x: torch.Tensor, q_x: torch.Tensor) -> torch.Tensor:
    """(γ,) p_{i−1}(x_i) and q_{i−1}(x_i) -> (γ + 1,) b_0..b_γ, b_i = min(1, b_{i−1} p/q); q = 0 < p counts as p/q = ∞."""
    b = [1.0]
    for pi, qi in zip(p_x.tolist(), q_x.tolist()):
        b.append(0.0 if b[-1] == 0 or pi == 0 else 1.0 if qi <= 0 else min(1.0, b[-1] * pi / qi))
    return torch.tensor(b, dtype=p_x.dtype, device=p_x.device)


def block_thresholds(b: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """(γ,) h_1..h_γ from the weights b (γ + 1,), target rows p (γ + 1, V) and drafter rows q (γ, V)."""
    gamma = q.shape[0]
    if gamma == 0:  # nothing drafted (the last token of a run)
        return p.new_empty(0)
    h = []
    for i in range(1, gamma):
        r = (b[i] * p[i] - q[i]).clamp_min(0.0).sum()
        denom = r + 1 - b[i]
        h.append(r / denom if denom > 1e-12 else torch.ones((), dtype=p.dtype, device=p.device))
    h.append(b[gamma])
    return torch.stack(h)


def block_residual(b_tau: torch.Tensor, p_row: torch.Tensor, q_row: torch.Tensor) -> torch.Tensor:
    """norm(max(b_τ · p_τ − q_τ, 0)); p_τ itself where that mass is zero (reachable only through rounding)."""
    mass = (b_tau * p_row - q_row).clamp_min(0.0)
    total = mass.sum()
    return mass / total if total > 1e-12 else p_row


class BlockVerification(Verifier):
    """Block verification (Sun et al., ICLR 2025, Algorithm 2); lossless. See the module docstring for the math.

    ``accept_prob[i]`` is h_{i+1}, the probability that the block event at position i + 1 fires;
    ``uniforms`` are the η_i. A token can be kept although its own event did not fire, when a
    later one did: the decision is for the whole prefix.
    """

    name: ClassVar[str] = "block"
    lossless: ClassVar[bool] = True
    draws: ClassVar[bool] = True

    @staticmethod
    def length_law(accept_prob: list[float]) -> list[float]:
        """P(τ = t) for t = 0..γ from h_1..h_γ: τ is the LAST fired event, so P(τ = t) = h_t · Π_{j>t} (1 − h_j)."""
        law, none_later = [], 1.0
        for h in reversed(accept_prob):
            law.append(h * none_later)
            none_later *= 1 - h
        return [none_later] + law[::-1]

    @staticmethod
    def uniforms_for(n: int, gamma: int) -> torch.Tensor:
        """Draws η that make τ = n (where that has positive probability): event n fires, none after it."""
        return torch.tensor([1.0] * gamma if n == 0 else [1.0] * (n - 1) + [0.0] + [1.0] * (gamma - n))

    def thresholds(self, b: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """h_1..h_γ (:func:`block_thresholds`); a method so that a deliberately wrong variant can replace it."""
        return block_thresholds(b, p, q)

    def verify(
        self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None, uniforms: torch.Tensor | None = None
    ) -> Verdict:
        """``uniforms`` replays chosen draws η_1..η_γ (to explain or test a decision); else they come from the generator."""
        tokens, gamma = draft.tokens, draft.tokens.shape[0]  # (γ,)
        q, p_x, q_x = draft_rows(draft, p)  # (γ, V), (γ,), (γ,)
        b = block_weights(p_x, q_x)  # (γ + 1,)
        h = self.thresholds(b, p, q)  # (γ,)
        eta = draws(uniforms, gamma, generator, p)  # (γ,)
        fired = (eta < h).nonzero()
        tau = int(fired[-1]) + 1 if fired.numel() else 0
        next_dist = p[gamma] if tau == gamma else block_residual(b[tau], p[tau], q[tau])  # (V,)
        return sampled_verdict(tokens, tau, p_x, q_x, h, eta, next_dist, generator)
