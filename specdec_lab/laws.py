"""The law of the first emitted token of one draft-then-verify step, exactly and by sampling.

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

import torch

from .drafters.base import Draft
from .sampling import sample
from .verifiers import SpeculativeSampling


def first_token_law(verifier, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Exact (V,) float64 law of the first emitted token of one γ = 1 step, draft x ~ q, target rows ``p``.

    ``p`` is (V,) or (2, V) (the second row is only read after an acceptance). Speculative
    sampling is forced to reject (u = 1) to read r_x off its verdict; the relaxed rules
    decide outright, so a(x) is 0 or 1 for them.
    """
    rows = p if p.dim() == 2 else torch.stack([p, p])
    law = torch.zeros(rows.shape[-1], dtype=torch.float64)
    for x in range(rows.shape[-1]):
        if q[x] == 0:
            continue
        draft = Draft(torch.tensor([x]), q[None])
        forced = {"uniforms": torch.tensor([1.0])} if isinstance(verifier, SpeculativeSampling) else {}
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
