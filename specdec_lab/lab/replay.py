"""One recorded draft under every verifier: rules compared step by step on identical drafts.

A run made with ``generate_speculative(..., keep_rows=True)`` keeps, for each step, the drafted
tokens and the full rows the verifier saw: the target's p_0..p_γ and the drafter's q_0..q_{γ−1}.
:func:`replay` hands each recorded step to every linear verifier of the registry (or the ones
named), with COMMON RANDOM NUMBERS: the same uniforms u_1..u_γ for every rule that draws them,
and the same seed for the draw of the target's own token. So two rules differ on a step only
where their rules differ, not by luck.

What this does and does not say: it compares the rules step by step, on drafts that one run
produced. Whole trajectories would diverge after the first step where two rules emit different
tokens (the next context, and so the next draft, would differ); the replay never follows them.
Alongside the sampled outcome it gives each rule's EXACT expected accepted count on the step,
from the rule's law of the accepted length (speculative and block sampling) or its outright
decision (greedy, typical, top-k), which is free of sampling noise. Block verification's
advantage (Sun et al. 2025, Theorem 3) holds on average over drafts x ~ q, not on every draft:
on a single recorded draft it can expect fewer accepted tokens than token-level verification,
so compare the means over many steps (:func:`mean_expected_accepted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.types import Draft
from ..verifiers.laws import expected_accepted
from ..registry import VERIFIERS, build_verifier
from ..core.trace import GenerationOutput


@dataclass
class ReplayedStep:
    """One verifier's verdict on one recorded step."""

    step: int  # index of the step in the run
    verifier: str
    drafted: int  # γ of that step
    n_accepted: int  # accepted drafts, with the step's common random numbers
    tokens: list[int]  # what the rule would have emitted
    accept_prob: list[float]  # the rule's per-draft probabilities (min(1, p/q), h_i, or 1/0)
    expected_accepted: float  # E[accepted] under the rule, exactly, for this draft
    uniforms: list[float]  # the draws the rule used (the step's common ones; nan for a rule that draws none)


def linear_verifiers() -> list[str]:
    """Registry names of the verifiers that check one chain (tree verifiers need a tree, not a recorded chain)."""
    return [name for name, entry in VERIFIERS.items() if not entry.tree]


def replay(run: GenerationOutput, verifiers: list[str] | None = None, seed: int = 0) -> list[ReplayedStep]:
    """Every recorded step with a draft under every verifier in ``verifiers`` (default: all linear ones).

    Step k uses uniforms drawn from a generator seeded with (seed, k), shared by every rule, and the
    same seed again for the draw of the target's own token.
    """
    names = verifiers or linear_verifiers()
    tree_ones = [n for n in names if VERIFIERS[n].tree]
    if tree_ones:
        raise ValueError(f"replay checks recorded chains; tree verifiers {tree_ones} need a tree: pick from {linear_verifiers()}")
    steps = [(k, s) for k, s in enumerate(run.steps) if s.draft]
    if steps and all(s.rows is None for _, s in steps):
        raise ValueError("this run kept no rows: make it with generate_speculative(..., keep_rows=True), "
                         "with a linear verifier (tree steps keep none)")
    built = {name: build_verifier(name) for name in names}
    out = []
    for k, step in steps:
        if step.rows is None:
            continue
        p, q = step.rows["p"], step.rows["q"]
        draft = Draft(torch.tensor(step.draft), q)
        gamma = len(step.draft)
        uniforms = torch.rand(gamma, generator=torch.Generator().manual_seed(seed * 100_003 + k))
        for name, verifier in built.items():
            generator = torch.Generator().manual_seed(seed * 100_003 + k)
            common = {"uniforms": uniforms} if verifier.draws else {}
            verdict = verifier.verify(draft, p, generator, **common)
            out.append(ReplayedStep(k, name, gamma, verdict.n_accepted, verdict.tokens, verdict.accept_prob,
                                    expected_accepted(verifier, p, draft), verdict.uniforms))
    return out


def accepted_grid(replayed: list[ReplayedStep]) -> tuple[list[str], list[int], list[list[int]]]:
    """(verifiers, steps, counts[verifier][step]): the accepted count of each rule on each replayed step."""
    names = list(dict.fromkeys(r.verifier for r in replayed))
    steps = list(dict.fromkeys(r.step for r in replayed))
    cell = {(r.verifier, r.step): r.n_accepted for r in replayed}
    return names, steps, [[cell[n, s] for s in steps] for n in names]


def mean_expected_accepted(replayed: list[ReplayedStep]) -> dict[str, float]:
    """Per verifier: the mean over steps of its exact E[accepted]; same drafts for every rule, so the gaps are the rules'."""
    names = list(dict.fromkeys(r.verifier for r in replayed))
    return {n: sum(r.expected_accepted for r in replayed if r.verifier == n) / sum(r.verifier == n for r in replayed)
            for n in names}


def gains(replayed: list[ReplayedStep], verifier: str = "block", baseline: str = "speculative") -> list[float]:
    """Per replayed step of ONE run, in step order: ``verifier``'s exact E[accepted] minus ``baseline``'s, on the
    same draft. Positive where the rule expects more; their mean over many steps is the rule's average gain."""
    by = {(r.verifier, r.step): r.expected_accepted for r in replayed}
    return [by[verifier, s] - by[baseline, s] for s in sorted({r.step for r in replayed})]
