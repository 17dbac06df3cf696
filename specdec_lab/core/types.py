"""The values that pass between the loop's four steps: a drafter's :class:`Draft` or :class:`DraftTree`, a verifier's
:class:`Verdict`. Nothing here computes; drafters, verifiers and the loop all import these, and nothing else of theirs.

Notation (Leviathan et al. 2023): p = target, q = drafter, γ = draft length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .tree import depths

ToProbs = Callable[[torch.Tensor, int], torch.Tensor]  # ((T, V) logits, index of first row) -> (T, V)


@dataclass
class Draft:
    """What a drafter proposes for one step."""

    tokens: torch.Tensor  # (γ,) int64, the new tokens only
    q: torch.Tensor | None = None  # (γ, V) the drafter's distributions, or None for a deterministic draft

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def truncated(self, n: int) -> "Draft":
        return Draft(self.tokens[:n], None if self.q is None else self.q[:n])


@dataclass
class DraftTree:
    """Several candidate continuations at once, as a tree rooted at the sequence's last token.

    Node j holds token ``tokens[j]``; its parent is node ``parents[j]`` (−1: the root, i.e.
    the last token of the sequence so far). Nodes are listed parents-first, so every path
    from the root reads left to right. ``q[j]`` is the drafter distribution node j was drawn
    from (the same row for siblings drawn i.i.d. at one parent); None means the children are
    chosen deterministically (top-k, a lookup table), which verifiers treat as one-hot draws.
    """

    tokens: torch.Tensor  # (N,) int64
    parents: torch.Tensor  # (N,) int64, parents[j] < j
    q: torch.Tensor | None = None  # (N, V) or None

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def row_depths(self) -> torch.Tensor:
        """(N+1,) for the rows of a verification forward [root, nodes]: 0 for the root, depth + 1 for a node.

        Row r predicts the token r's depth places after the root, i.e. new token n_new + depth.
        """
        return depths(torch.cat([self.parents.new_full((1,), -1), self.parents + 1]))  # parents + 1: root-first index

    @staticmethod
    def chain(draft: "Draft") -> "DraftTree":
        """A linear draft as a tree with one branch."""
        n = len(draft)
        return DraftTree(draft.tokens, torch.arange(-1, n - 1, device=draft.tokens.device), draft.q)


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
    # Where the decided tokens sit in the draft tree (a chain: node i is x_{i+1}). Linear verifiers leave
    # them empty and get path = 0..n−1, shown = 0..γ−1; tree verifiers fill them in.
    path: list[int] = field(default_factory=list)  # accepted node indices, top level first
    shown: list[int] = field(default_factory=list)  # node indices the linear fields above describe
    node_decisions: list[str] | None = None  # tree verifiers: accepted / rejected / unchecked for every node
    node_accept_prob: list[float] | None = None  # tree verifiers: the probability each tried node was kept with

    def __post_init__(self):
        if not self.path:
            self.path = list(range(self.n_accepted))
        if not self.shown:
            self.shown = list(range(len(self.decisions)))

    @property
    def bonus(self) -> bool:
        """True when every draft was accepted and the final token is a free extra."""
        return self.n_accepted == len(self.decisions)

    @property
    def n_drafted(self) -> int:
        """Drafts on the branch this verdict describes (a chain: all of them)."""
        return len(self.decisions)
