"""Exact laws of what draft-then-verify emits, and the chi-square test that compares samples with them.

First, the law of the first emitted token of one γ = 1 step (below); then, for any γ, the law
of one step's tokens and of the first n tokens of the whole loop, by enumerating every draft
and every accepted length (:func:`step_law`, :func:`emitted_law`), against the target's own
law (:func:`target_law`).

One step with γ = 1: the drafter draws x ~ q; the verifier keeps x with probability a(x),
otherwise the target supplies a token from the distribution r_x the verdict names. The
first emitted token therefore has the law

    P(y) = Σ_x q(x) · [ a(x) · 1{y = x} + (1 − a(x)) · r_x(y) ]

For speculative sampling a(x) = min(1, p(x)/q(x)) and r_x = norm(max(0, p − q)), and P = p
exactly (Leviathan et al. 2023, Theorem 3.5); the relaxed rules give some other P. The
chi-square test compares counts from the real verifier with any exact law, with no scipy:
its p-value is the regularised upper incomplete gamma function Q(dof/2, χ²/2).
"""

from __future__ import annotations

import itertools

import torch

from ..core.types import Draft
from ..core.sampling import sample


def first_token_law(verifier, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Exact (V,) float64 law of the first emitted token of one γ = 1 step, draft x ~ q, target rows ``p``.

    ``p`` is (V,) or (2, V) (the second row is only read after an acceptance). A sampling rule
    (speculative, block) is forced to reject (its ``uniforms_for(0, 1)``) to read r_x off its
    verdict; the relaxed rules decide outright, so a(x) is 0 or 1 for them.
    """
    rows = p if p.dim() == 2 else torch.stack([p, p])
    law = torch.zeros(rows.shape[-1], dtype=torch.float64)
    for x in range(rows.shape[-1]):
        if q[x] == 0:
            continue
        draft = Draft(torch.tensor([x]), q[None])
        forced = {"uniforms": verifier.uniforms_for(0, 1)} if verifier.draws else {}  # a rejection
        verdict = verifier.verify(draft, rows, torch.Generator().manual_seed(0), **forced)
        a = verdict.accept_prob[0]
        law[x] += q[x].item() * a
        law += q[x].item() * (1 - a) * verdict.next_dist.double()
    return law


def sample_first_tokens(verifier, p: torch.Tensor, q: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """(V,) counts of the first emitted token over ``n`` real γ = 1 steps: draw x ~ q, verify, emit."""
    rows = p if p.dim() == 2 else torch.stack([p, p])
    generator = torch.Generator().manual_seed(seed)
    counts = torch.zeros(rows.shape[-1], dtype=torch.long)
    for _ in range(n):
        x = sample(q, generator)
        verdict = verifier.verify(Draft(x.view(1), q[None]), rows, generator)
        counts[verdict.tokens[0]] += 1
    return counts


def chi_square_pvalue(counts: torch.Tensor, law: torch.Tensor, min_expected: float = 5.0) -> float:
    """P(χ² ≥ observed) for ``counts`` drawn from ``law``; cells expecting < min_expected are pooled."""
    if (counts[law == 0] > 0).any():
        return 0.0  # a token the law says is impossible
    n = counts.sum().item()
    expected = law.double() * n
    big = expected >= min_expected
    observed = torch.cat([counts[big].double(), counts[~big].double().sum().view(1)])
    expected = torch.cat([expected[big], expected[~big].sum().view(1)])
    if expected[-1] == 0:  # nothing to pool
        observed, expected = observed[:-1], expected[:-1]
    stat = ((observed - expected) ** 2 / expected).sum()
    dof = expected.numel() - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), stat / 2))


def step_law(verifier, p_of, q_of, prefix: tuple[int, ...], gamma: int) -> dict[tuple[int, ...], float]:
    """Exact law of the tokens ONE step emits after ``prefix``: drafts x_1..x_γ ~ q chained, then the verifier.

    ``p_of(prefix)`` and ``q_of(prefix)`` give the (V,) target and drafter distributions after a
    token tuple. A verifier that ``draws`` (speculative, block: it has ``length_law`` and ``uniforms_for``) is
    enumerated over its accepted lengths, each replayed with draws forcing it; a rule that
    decides outright (greedy, typical, top-k) is run once per draft.
    """
    vocab = p_of(prefix).shape[-1]
    law: dict[tuple[int, ...], float] = {}
    for drafts in itertools.product(range(vocab), repeat=gamma):
        q_rows = torch.stack([q_of(prefix + drafts[:i]) for i in range(gamma)])  # (γ, V)
        chance = float(torch.prod(q_rows[torch.arange(gamma), list(drafts)]))
        if chance == 0:
            continue
        p_rows = torch.stack([p_of(prefix + drafts[:i]) for i in range(gamma + 1)])  # (γ + 1, V)
        draft = Draft(torch.tensor(drafts), q_rows)
        for n, p_n, verdict in _outcomes(verifier, draft, p_rows):
            if len(verdict.tokens) == n:  # a (wrong) rule that added no token of the target's own
                key = tuple(verdict.tokens)
                law[key] = law.get(key, 0.0) + chance * p_n
                continue
            for y, p_y in enumerate(verdict.next_dist.double().tolist()):
                if p_y > 0:
                    key = tuple(verdict.tokens[:-1]) + (y,)
                    law[key] = law.get(key, 0.0) + chance * p_n * p_y
    return law


def _outcomes(verifier, draft: Draft, p_rows: torch.Tensor):
    """(n, P(n), the verdict that kept n) for every accepted length n the verifier can reach on this draft."""
    gamma = len(draft.tokens)
    if not verifier.draws:
        verdict = verifier.verify(draft, p_rows, torch.Generator().manual_seed(0))
        return [(verdict.n_accepted, 1.0, verdict)]
    first = verifier.verify(draft, p_rows, torch.Generator().manual_seed(0), uniforms=verifier.uniforms_for(0, gamma))
    return [(n, p_n, verifier.verify(draft, p_rows, torch.Generator().manual_seed(0), uniforms=verifier.uniforms_for(n, gamma)))
            for n, p_n in enumerate(verifier.length_law(first.accept_prob)) if p_n > 0]


def emitted_law(verifier, p_of, q_of, gamma: int, n_tokens: int, prefix: tuple[int, ...] = ()) -> dict[tuple[int, ...], float]:
    """Exact law of the first ``n_tokens`` the loop emits after ``prefix``, step after step (each step drafts γ)."""
    law: dict[tuple[int, ...], float] = {}
    for out, chance in step_law(verifier, p_of, q_of, prefix, gamma).items():
        if len(out) >= n_tokens:
            law[out[:n_tokens]] = law.get(out[:n_tokens], 0.0) + chance
            continue
        for rest, more in emitted_law(verifier, p_of, q_of, gamma, n_tokens - len(out), prefix + out).items():
            law[out + rest] = law.get(out + rest, 0.0) + chance * more
    return law


def target_law(p_of, n_tokens: int, prefix: tuple[int, ...] = ()) -> dict[tuple[int, ...], float]:
    """P(y_1..y_n | prefix) = Π p(y_i | prefix, y_<i): what a lossless loop must emit."""
    law = {(): 1.0}
    for _ in range(n_tokens):
        law = {seq + (y,): chance * p_y for seq, chance in law.items()
               for y, p_y in enumerate(p_of(prefix + seq).double().tolist()) if p_y > 0}
    return law


def expected_accepted(verifier, p_rows: torch.Tensor, draft: Draft) -> float:
    """E[accepted drafts] of one verification of a fixed draft, exactly (from the verifier's length law)."""
    return sum(n * p_n for n, p_n, _ in _outcomes(verifier, draft, p_rows))


def law_distance(law: dict, reference: dict) -> float:
    """Total variation ½ Σ |P(s) − R(s)| between two laws over token tuples."""
    keys = set(law) | set(reference)
    return 0.5 * sum(abs(law.get(k, 0.0) - reference.get(k, 0.0)) for k in keys)
