"""The verifier contract: declare abilities once, implement ``verify``; the loop and the laws ask the abilities.

A verifier sees the γ drafted tokens x_1..x_γ, the drafter's rows q_1..q_γ (or None for a deterministic draft) and
the target's γ+1 rows p_1..p_{γ+1} from ONE forward pass, and returns a :class:`Verdict`: the accepted prefix plus
exactly one token of the target's own.

Abilities (class attributes; never discovered with getattr):
  lossless    the output has exactly the target's distribution (greedy rules: its greedy output)
  tree        verifies a :class:`DraftTree` in one forward (the loop asks the drafter for a tree of
              ``branching_for(γ)``); otherwise the loop hands ``verify`` the single branch, a :class:`Draft`
  draws       decides by comparing uniforms u_1..u_γ with accept probabilities a_1..a_γ, and so implements
              ``uniforms_for(n, γ)`` (draws that force n accepted) and ``length_law(a)`` (the exact law of n):
              replay, the exact laws and the bug lab enumerate its outcomes instead of sampling them.
              A rule that decides outright (greedy, typical, top-k) has ``draws = False``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..core.types import Draft, DraftTree, Verdict


class Verifier:
    """Base of every verifier; see the module docstring for the abilities."""

    name: ClassVar[str] = "verifier"
    lossless: ClassVar[bool] = False
    tree: ClassVar[bool] = False
    draws: ClassVar[bool] = False

    def verify(self, draft, p: torch.Tensor, generator: torch.Generator | None, uniforms=None) -> Verdict:
        """A linear rule: (γ,) draft with q, (γ+1, V) p -> Verdict; ``uniforms`` replays chosen draws (``draws`` only)."""
        raise NotImplementedError(f"verifier {self.name!r} does not implement verify")

    def verify_step(self, tree: DraftTree, p: torch.Tensor, generator: torch.Generator | None) -> Verdict:
        """Step 3 of the loop: a tree rule gets the tree, a linear one its single branch (a chain)."""
        return self.verify(Draft(tree.tokens, tree.q), p, generator)

    def branching_for(self, gamma: int) -> tuple[int, ...]:
        """Children per node at each depth of the tree to draft (``tree`` only)."""
        raise TypeError(f"verifier {self.name!r} checks a chain, not a tree")

    def uniforms_for(self, n: int, gamma: int) -> torch.Tensor:
        """(γ,) draws that make the verdict keep exactly n drafts, where that has positive probability (``draws`` only)."""
        raise TypeError(f"verifier {self.name!r} decides outright: it draws no uniforms to force")

    def length_law(self, accept_prob: list[float]) -> list[float]:
        """P(n = t) for t = 0..γ from the verdict's accept probabilities (``draws`` only)."""
        raise TypeError(f"verifier {self.name!r} decides outright: its accepted length has no law to enumerate")
