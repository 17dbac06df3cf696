"""The tree verifiers' shape, learned from the playground's own tree runs.

Every tree-verified run adds its steps to the counts of how often the rank-r candidate at depth d was accepted
(:func:`~specdec_lab.verifiers.tree_shape.acceptance_by_rank`; the counts add up over runs), giving

    a(d, r) = accepted / tried

With a budget of N nodes and draft length γ the next tree run uses the branching vector (b_1, .., b_D), D ≤ γ, with
at most N nodes that maximises

    E[τ] = 1 + Σ_{d=1..D} Π_{j=1..d} A_j(b_j),   A_j(b) = Σ_{r<b} a(j, r)

(:func:`~specdec_lab.verifiers.tree_shape.best_branching`). With no budget (N = 0), or before any tree step was
measured, the verifier's default shape (the first tree run's steps then start the counts).
"""

from __future__ import annotations

from typing import NamedTuple

from ...core.trace import GenerationOutput
from ...verifiers.tree_shape import acceptance_by_rank, best_branching, rates


class TreeChoice(NamedTuple):
    """A chosen tree shape and the tokens per step it is predicted to give."""

    branching: tuple[int, ...]
    predicted_tau: float


class TreePolicy:
    """Acceptance counts by (depth, rank) over the recorded tree runs, and the best shape for a node budget."""

    def __init__(self):
        self.counts: dict[tuple[int, int], tuple[int, int]] = {}  # (depth, rank) -> (accepted, tried)
        self.runs_recorded = 0

    def record(self, run: GenerationOutput) -> None:
        """Add a tree-verified run's steps to the counts."""
        for key, (accepted, tried) in acceptance_by_rank([run]).items():
            a, t = self.counts.get(key, (0, 0))
            self.counts[key] = (a + accepted, t + tried)
        self.runs_recorded += 1

    def choose(self, budget: int, max_depth: int) -> TreeChoice | None:
        """The shape with the largest E[τ] within ``budget`` nodes and ``max_depth`` levels.

        None (the verifier's default shape) without a budget or before any tree step was recorded.
        """
        if budget < 1 or not self.counts:
            return None
        return TreeChoice(*best_branching(rates(self.counts), budget, max_depth=max_depth))
