"""Verifiers: given a draft and the target's distributions, decide what to keep.

Every verifier sees the γ drafted tokens x_1..x_γ, the drafter's rows q_1..q_γ
(or None for a deterministic draft) and the target's γ+1 rows p_1..p_{γ+1}
from ONE forward pass (row i is the target's distribution for the position of
x_i; row γ+1 is the position after the whole draft). It returns a
:class:`Verdict`: the accepted prefix plus exactly one token of the target's
own, so every step emits between 1 and γ+1 tokens.

Speculative sampling and greedy matching are lossless. Typical acceptance
(Medusa) and top-β / τ matching (SpecDec) are LOSSY relaxations: they accept
"good enough" drafts to emit more tokens per step, and the output is then no
longer the target's distribution (each says so with ``lossless = False``).

Notation follows Leviathan et al. (2023): p = target, q = drafter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.sampling import accepted_prefix_len, one_hot, sample
from ..core.theory import accept_probability, residual
from ..core.types import ACCEPTED, REJECTED, UNCHECKED, Draft, Verdict
from .base import Verifier
from ..core.validate import is_int, is_number


class SpeculativeSampling(Verifier):
    """Speculative (rejection) sampling, Leviathan et al. Algorithm 1; lossless.

    Step 1. For each drafted x_i: accept with probability min(1, p_i(x_i) / q_i(x_i)),
            i.e. accept if u_i < min(1, p_i(x_i) / q_i(x_i)) with u_i ~ U[0, 1).
    Step 2. n = length of the accepted prefix.
    Step 3. If n < γ, draw the target's token from the residual norm(max(0, p_{n+1} − q_{n+1}));
            otherwise draw a bonus token from p_{γ+1}.
    A deterministic draft (q is None) is the case q_i = one_hot(x_i): accept with
    probability p_i(x_i); on rejection draw from p_i with x_i zeroed and renormalised.
    At temperature 0 (p and q one-hot) this is exactly greedy matching.
    """

    name: ClassVar[str] = "speculative"
    lossless: ClassVar[bool] = True
    draws: ClassVar[bool] = True

    def verify(
        self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None, uniforms: torch.Tensor | None = None
    ) -> Verdict:
        """``uniforms`` replays chosen draws u_1..u_γ (to explain or test a decision); else they come from the generator."""
        tokens, gamma = draft.tokens, draft.tokens.shape[0]  # (γ,)
        q, p_x, q_x = draft_rows(draft, p)  # (γ, V), (γ,), (γ,)
        a = accept_probability(p_x, q_x)  # (γ,)
        u = draws(uniforms, gamma, generator, p)  # (γ,)
        n = accepted_prefix_len(u < a)
        next_dist = residual(p[n], q[n]) if n < gamma else p[gamma]  # (V,)
        return sampled_verdict(tokens, n, p_x, q_x, a, u, next_dist, generator)


    @staticmethod
    def length_law(accept_prob: list[float]) -> list[float]:
        """P(n = t) for t = 0..γ from the acceptance probabilities a_i: Π_{j≤t} a_j · (1 − a_{t+1})."""
        law, alive = [], 1.0
        for a in accept_prob:
            a = min(max(a, 0.0), 1.0)  # P(u < a) for u ~ U[0, 1), whatever a rule reports
            law.append(alive * (1 - a))
            alive *= a
        return law + [alive]

    @staticmethod
    def uniforms_for(n: int, gamma: int) -> torch.Tensor:
        """Draws that make the verdict keep exactly n drafts (where that has positive probability)."""
        return torch.tensor([0.0] * n + [1.0] * (gamma - n))


class GreedyMatch(Verifier):
    """Greedy exact match: keep the longest prefix where x_i == argmax p_i, then add argmax p_{n+1}.

    Lossless with respect to greedy decoding (the output is the target's own
    greedy output whatever the temperature of p); draws no uniforms.
    """

    name: ClassVar[str] = "greedy"
    lossless: ClassVar[bool] = True

    def verify(self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None, uniforms=None) -> Verdict:
        best = p.argmax(dim=-1)  # (γ+1,)
        match = draft.tokens == best[: draft.tokens.shape[0]]  # (γ,)
        n = accepted_prefix_len(match)
        return _rule_verdict(draft, p, match, n, int(best[n]), one_hot(best[n], p.shape[-1]))


@dataclass(frozen=True)
class TypicalAcceptance(Verifier):
    """LOSSY: Medusa's typical acceptance (Cai et al. 2024, section 2.3.1); the output is not the target's distribution.

    Step 1. For each drafted x_i: accept if p_i(x_i) > min(ε, δ · exp(−H(p_i))),
            H(p) = −Σ_x p(x) log p(x) the entropy (0 · log 0 = 0): a flat p_i lowers the bar.
    Step 2. n = length of the accepted prefix.
    Step 3. The target's own token is drawn from p_{n+1} with the loop's generator.
    q plays no part, so a deterministic draft (q is None) is verified the same way.

    p is the row the loop gives: the target's distribution after temperature, top-k and
    top-p (Medusa applies the rule to softmax(logits / T), without top-k / top-p). Medusa's
    reference code picks the target's own token by argmax; drawing it from p_{n+1} instead
    keeps the sampling temperature in the output. At T = 0 (p one-hot, H = 0) only the
    argmax passes (1 > min(ε, δ) as long as ε < 1 or δ < 1) and the next token is the argmax:
    exactly greedy matching.
    Defaults are Medusa's: ε = posterior_threshold = 0.09 and δ = posterior_alpha = 0.3
    ("recommended to be sqrt(posterior_threshold)") in ``medusa_generate``
    (FasterDecoding/Medusa, medusa/model/medusa_model.py), whose ``evaluate_posterior``
    thresholds at min(posterior_threshold, posterior_alpha · exp(−H)).
    """

    epsilon: float = 0.09  # ε, the hard threshold (Medusa's posterior_threshold)
    delta: float = 0.3  # δ, the scale of the entropy-dependent threshold (Medusa's posterior_alpha)

    name: ClassVar[str] = "typical"
    lossless: ClassVar[bool] = False

    def __post_init__(self):
        _check_positive("epsilon", self.epsilon)
        _check_positive("delta", self.delta)

    def threshold(self, p: torch.Tensor) -> torch.Tensor:
        """(..., V) distributions -> (...,) the bar min(ε, δ · exp(−H(p))) a drafted token must clear."""
        entropy = torch.special.entr(p).sum(dim=-1)  # (...,) entr(x) = −x log x, and 0 at x = 0
        return torch.clamp(self.delta * torch.exp(-entropy), max=self.epsilon)

    def verify(self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None, uniforms=None) -> Verdict:
        tokens = draft.tokens  # (γ,)
        gamma = tokens.shape[0]
        p_x = p[torch.arange(gamma, device=p.device), tokens]  # (γ,)
        accept = p_x > self.threshold(p[:gamma])  # (γ,)
        n = accepted_prefix_len(accept)
        next_dist = p[n]  # (V,)
        return _rule_verdict(draft, p, accept, n, int(sample(next_dist, generator)), next_dist)


@dataclass(frozen=True)
class TopKMatch(Verifier):
    """LOSSY: SpecDec's relaxed top-β verification (Xia et al. 2023); the output is not the target's distribution.

    Step 1. For each drafted x_i: accept if x_i is among the β most likely tokens of p_i
            AND log p_i(top1) − log p_i(x_i) ≤ τ (it is not much less likely than the best).
    Step 2. n = length of the accepted prefix.
    Step 3. The target's own token is argmax p_{n+1}, as in greedy matching.
    q plays no part, so a deterministic draft (q is None) is verified the same way.

    Ties in the ranking go to the lower token id (like argmax), and a token with
    p_i(x_i) = 0 is never accepted: its log-gap is +∞, and even τ = ∞ (pure top-β) does
    not let it through. So β = 1 is exactly greedy matching, and so is any β at T = 0,
    where every token but the argmax has probability 0. β = ``top_k`` (SpecDec's repository
    calls it --beta: "set beta=1 for vanilla GAD", i.e. greedy) and τ = ``tau``; the
    defaults (β = 2, τ = 1) are a mild relaxation for teaching, not tuned values.
    """

    top_k: int = 2  # β: the draft must be among the target's β most likely tokens
    tau: float = 1.0  # τ: largest allowed log-probability gap to the target's best token (nats; may be inf)

    name: ClassVar[str] = "topk-tau"
    lossless: ClassVar[bool] = False

    def __post_init__(self):
        if not is_int(self.top_k):
            raise TypeError(f"top_k must be an int, got {self.top_k!r}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 (1 is greedy matching), got {self.top_k}")
        if not is_number(self.tau):
            raise TypeError(f"tau must be a number, got {self.tau!r}")
        if math.isnan(self.tau) or self.tau < 0:
            raise ValueError(f"tau must be >= 0 (inf: no limit on the log-probability gap), got {self.tau}")

    def verify(self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None, uniforms=None) -> Verdict:
        tokens = draft.tokens  # (γ,)
        gamma = tokens.shape[0]
        rows = torch.arange(gamma, device=p.device)
        order = torch.sort(p[:gamma], dim=-1, descending=True, stable=True).indices  # (γ, V) best first, ties by id
        rank = order.argsort(dim=-1)[rows, tokens]  # (γ,) 0 = the target's argmax
        p_x = p[rows, tokens]  # (γ,)
        log_gap = p[:gamma].max(dim=-1).values.log() - p_x.log()  # (γ,) in [0, +inf]; +inf where p_x = 0
        accept = (p_x > 0) & (rank < self.top_k) & (log_gap <= self.tau)  # (γ,)
        n = accepted_prefix_len(accept)
        best = int(p[n].argmax())
        return _rule_verdict(draft, p, accept, n, best, one_hot(torch.tensor(best, device=p.device), p.shape[-1]))


def draft_rows(draft: Draft, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The drafter's rows q (γ, V) in p's dtype (one-hot for a deterministic draft), and p(x_i), q(x_i) (γ,) each."""
    tokens = draft.tokens
    q = (draft.q if draft.q is not None else one_hot(tokens, p.shape[-1])).to(p.dtype)
    rows = torch.arange(tokens.shape[0], device=p.device)
    return q, p[rows, tokens], q[rows, tokens]


def draws(uniforms, gamma: int, generator: torch.Generator | None, p: torch.Tensor) -> torch.Tensor:
    """(γ,) the uniforms a sampling rule decides with: the given ones (replayed), else fresh from the generator."""
    if uniforms is None:
        uniforms = torch.rand(gamma, generator=generator, device=p.device)
    return torch.as_tensor(uniforms, dtype=p.dtype, device=p.device)


def sampled_verdict(tokens: torch.Tensor, n: int, p_x: torch.Tensor, q_x: torch.Tensor, accept_prob: torch.Tensor,
                    uniforms: torch.Tensor, next_dist: torch.Tensor, generator: torch.Generator | None) -> Verdict:
    """The Verdict of a rule that draws uniforms: the first n drafts kept, then one token drawn from ``next_dist``."""
    next_token = sample(next_dist, generator)
    p_list, q_list, a_list, u_list = torch.stack([p_x, q_x, accept_prob, uniforms]).tolist()
    return Verdict(n_accepted=n, tokens=tokens[:n].tolist() + [int(next_token)], p_draft=p_list, q_draft=q_list,
                   accept_prob=a_list, uniforms=u_list, decisions=_decisions(n, tokens.shape[0]), next_dist=next_dist)


def _rule_verdict(draft: Draft, p: torch.Tensor, accept: torch.Tensor, n: int, next_token: int,
                  next_dist: torch.Tensor) -> Verdict:
    """The Verdict of a rule that decides each draft outright (accept_prob is 1 or 0, no uniforms drawn)."""
    tokens = draft.tokens  # (γ,)
    gamma = tokens.shape[0]
    rows = torch.arange(gamma, device=p.device)
    q_x = draft.q[rows, tokens] if draft.q is not None else torch.ones(gamma, device=p.device)  # (γ,)
    p_list, q_list, a_list = torch.stack([p[rows, tokens], q_x.to(p.dtype), accept.to(p.dtype)]).tolist()
    return Verdict(
        n_accepted=n,
        tokens=tokens[:n].tolist() + [next_token],
        p_draft=p_list,
        q_draft=q_list,
        accept_prob=a_list,
        uniforms=[math.nan] * gamma,
        decisions=_decisions(n, gamma),
        next_dist=next_dist,
    )


def _check_positive(option: str, value) -> None:
    if not is_number(value):
        raise TypeError(f"{option} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} must be a finite number > 0, got {value}")


def _decisions(n_accepted: int, gamma: int) -> list[str]:
    if n_accepted == gamma:
        return [ACCEPTED] * gamma
    return [ACCEPTED] * n_accepted + [REJECTED] + [UNCHECKED] * (gamma - n_accepted - 1)
