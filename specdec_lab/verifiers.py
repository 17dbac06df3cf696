"""Verifiers: given a draft and the target's distributions, decide what to keep.

Every verifier sees the γ drafted tokens x_1..x_γ, the drafter's rows q_1..q_γ
(or None for a deterministic draft) and the target's γ+1 rows p_1..p_{γ+1}
from ONE forward pass (row i is the target's distribution for the position of
x_i; row γ+1 is the position after the whole draft). It returns a
:class:`Verdict`: the accepted prefix plus exactly one token of the target's
own, so every step emits between 1 and γ+1 tokens.

Notation follows Leviathan et al. (2023): p = target, q = drafter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import torch

from .drafters.base import Draft
from .sampling import accepted_prefix_len, one_hot, sample
from .theory import accept_probability, residual

ACCEPTED, REJECTED, UNCHECKED = "accepted", "rejected", "unchecked"


@dataclass
class Verdict:
    """What one verification decided, with everything needed to explain it."""

    n_accepted: int  # length of the accepted prefix of the draft
    tokens: list[int]  # emitted: the accepted drafts, then the target's own token
    p_draft: list[float]  # p(x_i) for each drafted token
    q_draft: list[float]  # q(x_i); 1.0 for a deterministic draft
    accept_prob: list[float]  # the probability the rule kept x_i with
    uniforms: list[float]  # the uniform u_i drawn for x_i (nan where the rule draws none)
    decisions: list[str]  # per drafted token: accepted / rejected / unchecked (after a rejection)
    next_dist: torch.Tensor = field(repr=False)  # (V,) the distribution the final token came from

    @property
    def bonus(self) -> bool:
        """True when every draft was accepted and the final token is a free extra."""
        return self.n_accepted == len(self.decisions)


class Verifier(Protocol):
    name: ClassVar[str]
    lossless: ClassVar[bool]  # True: output has exactly the target's distribution

    def verify(self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None) -> Verdict: ...


class SpeculativeSampling:
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

    def verify(
        self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None, uniforms: torch.Tensor | None = None
    ) -> Verdict:
        """``uniforms`` replays chosen draws u_1..u_γ (to explain or test a decision); else they come from the generator."""
        tokens = draft.tokens  # (γ,)
        gamma = tokens.shape[0]
        q = draft.q if draft.q is not None else one_hot(tokens, p.shape[-1])  # (γ, V)
        rows = torch.arange(gamma, device=p.device)
        p_x = p[rows, tokens]  # (γ,)
        q_x = q[rows, tokens]  # (γ,)
        a = accept_probability(p_x, q_x)  # (γ,)
        if uniforms is None:
            uniforms = torch.rand(gamma, generator=generator, device=p.device)  # (γ,)
        u = torch.as_tensor(uniforms, dtype=p.dtype, device=p.device)  # (γ,)
        n = accepted_prefix_len(u < a)
        next_dist = residual(p[n], q[n]) if n < gamma else p[gamma]  # (V,)
        next_token = sample(next_dist, generator)
        p_list, q_list, a_list, u_list = torch.stack([p_x, q_x, a, u]).tolist()
        return Verdict(
            n_accepted=n,
            tokens=tokens[:n].tolist() + [int(next_token)],
            p_draft=p_list,
            q_draft=q_list,
            accept_prob=a_list,
            uniforms=u_list,
            decisions=_decisions(n, gamma),
            next_dist=next_dist,
        )


class GreedyMatch:
    """Greedy exact match: keep the longest prefix where x_i == argmax p_i, then add argmax p_{n+1}.

    Lossless with respect to greedy decoding (the output is the target's own
    greedy output whatever the temperature of p); draws no uniforms.
    """

    name: ClassVar[str] = "greedy"
    lossless: ClassVar[bool] = True

    def verify(self, draft: Draft, p: torch.Tensor, generator: torch.Generator | None) -> Verdict:
        tokens = draft.tokens  # (γ,)
        gamma = tokens.shape[0]
        best = p.argmax(dim=-1)  # (γ+1,)
        match = tokens == best[:gamma]  # (γ,)
        n = accepted_prefix_len(match)
        rows = torch.arange(gamma, device=p.device)
        q_x = draft.q[rows, tokens] if draft.q is not None else torch.ones(gamma, device=p.device)
        p_list, q_list, a_list = torch.stack([p[rows, tokens], q_x, match.float()]).tolist()
        return Verdict(
            n_accepted=n,
            tokens=tokens[:n].tolist() + [int(best[n])],
            p_draft=p_list,
            q_draft=q_list,
            accept_prob=a_list,
            uniforms=[math.nan] * gamma,
            decisions=_decisions(n, gamma),
            next_dist=one_hot(best[n], p.shape[-1]),
        )


def _decisions(n_accepted: int, gamma: int) -> list[str]:
    if n_accepted == gamma:
        return [ACCEPTED] * gamma
    return [ACCEPTED] * n_accepted + [REJECTED] + [UNCHECKED] * (gamma - n_accepted - 1)


VERIFIERS: dict[str, type] = {v.name: v for v in (SpeculativeSampling, GreedyMatch)}


def get_verifier(verifier) -> Verifier:
    """None -> speculative sampling; a name -> that verifier; an object with .verify -> itself."""
    if verifier is None:
        return SpeculativeSampling()
    if isinstance(verifier, str):
        if verifier not in VERIFIERS:
            raise ValueError(f"unknown verifier {verifier!r}; valid names: {', '.join(sorted(VERIFIERS))}")
        return VERIFIERS[verifier]()
    if not callable(getattr(verifier, "verify", None)):
        raise TypeError(f"verifier must be None, a name or an object with .verify(), got {type(verifier).__name__}")
    return verifier
