"""Token-tree verification: keep the longest acceptable path of a draft tree, from ONE target forward.

The target has scored the root r (the sequence's last token) and every node of the
tree in one pass (tree.py), so p_v = p(· | prefix, path to v) is known for every node v.
Both rules walk down from the root; each emits the accepted path plus one token of
the target's own, like the linear verifiers.

Greedy (Medusa, SpecInfer at temperature 0): at node v move to the child whose token
is argmax p_v; stop when no child matches and emit argmax p_v. The output is the
target's greedy output.

Stochastic (SpecInfer, Miao et al. 2024, multi-step speculative sampling): at node v
start from the target's distribution d = p_v and try the children c_1, c_2, .. in turn:

    accept c_i with probability min(1, d(x_i) / q_i(x_i));  on rejection d ← norm(max(0, d − q_i))

where q_i is the distribution c_i was drawn from (one_hot(x_i) for a deterministic child).
After the last rejection emit a token drawn from d; at a leaf emit a bonus token from p_v.
Lossless: the emitted token at every depth has exactly the target's distribution,
provided siblings were drawn independently from their q_i (or chosen deterministically).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..core.sampling import one_hot, sample
from ..core.theory import accept_probability, residual
from ..core.tree import MAX_TREE_NODES, check_tree_size, children, first_branch
from ..core.types import ACCEPTED, REJECTED, UNCHECKED, DraftTree, Verdict
from .base import Verifier
from ..core.validate import is_int

DEFAULT_WIDTH = 2  # candidates for the first drafted token; deeper levels follow each candidate's best branch


@dataclass
class TreeVerdict(Verdict):
    """A :class:`Verdict` whose linear fields describe the branch shown in token views:
    the accepted path, then (after a rejection) the drafter's preferred branch below the
    first rejected child. The whole tree's outcome is in the node fields (always set here)."""


class TreeVerifier(Verifier):
    """Shared walk of both tree rules; subclasses say how one child is tried."""

    name: ClassVar[str]
    lossless: ClassVar[bool] = True
    tree: ClassVar[bool] = True  # the loop asks the drafter for a DraftTree

    def __init__(self, width: int = DEFAULT_WIDTH, branching: tuple[int, ...] | None = None):
        if not is_int(width) or not 1 <= width <= MAX_TREE_NODES:
            raise ValueError(f"tree width must be an int between 1 and {MAX_TREE_NODES}, got {width!r}")
        if branching is not None:
            branching = tuple(branching)
            if not branching or any(not is_int(b) or b < 1 for b in branching):
                raise ValueError(f"tree branching must be a non-empty tuple of ints >= 1, got {branching!r}")
            branching = check_tree_size(tuple(int(b) for b in branching))  # before any tree is drafted
        self.width = int(width)
        self.branching = branching

    def branching_for(self, gamma: int) -> tuple[int, ...]:
        """Children per node at each depth, for a tree at most γ deep: (width, 1, 1, ..) unless set."""
        if gamma < 1:
            return ()
        if self.branching is not None:
            return self.branching[:gamma]
        return check_tree_size((self.width,) + (1,) * (gamma - 1), f"tree width {self.width} at γ = {gamma}:")

    def verify_step(self, tree: DraftTree, p: torch.Tensor, generator: torch.Generator | None) -> TreeVerdict:
        return self.verify(tree, p, generator)

    def verify(self, tree: DraftTree, p: torch.Tensor, generator: torch.Generator | None, uniforms=None) -> TreeVerdict:
        """``p`` (N + 1, V): row 0 is the root's distribution, row j + 1 node j's."""
        n_nodes = len(tree)
        kids = children(tree.parents)
        tokens = tree.tokens.tolist()
        decisions, tried_prob = [UNCHECKED] * n_nodes, [math.nan] * n_nodes
        uniforms = [math.nan] * n_nodes
        path, node = [], -1
        dist = p[0]
        while True:
            chosen = None
            for c in kids.get(node, []):
                kept, a, u, dist = self._try(tree, c, dist, generator)
                tried_prob[c], uniforms[c] = a, u
                if kept:
                    chosen = c
                    break
                decisions[c] = REJECTED
            if chosen is None:
                break
            decisions[chosen] = ACCEPTED
            path.append(chosen)
            node = chosen
            dist = p[chosen + 1]
        next_dist = self._final(dist)
        next_token = int(sample(next_dist, generator))
        return self._verdict(tree, p, path, decisions, tried_prob, uniforms, next_token, next_dist)

    def _verdict(self, tree, p, path, decisions, tried_prob, uniforms, next_token, next_dist) -> TreeVerdict:
        rejected = [c for c in children(tree.parents).get(path[-1] if path else -1, []) if decisions[c] == REJECTED]
        shown = path + (first_branch(tree.parents, rejected[0]) if rejected else [])
        rows = [0 if j == 0 else shown[j - 1] + 1 for j in range(len(shown))]  # p row at each shown node's parent
        p_x = [float(p[r, tree.tokens[node]]) for r, node in zip(rows, shown)]
        q_x = [1.0 if tree.q is None else float(tree.q[node, tree.tokens[node]]) for node in shown]
        return TreeVerdict(
            n_accepted=len(path),
            tokens=[int(tree.tokens[j]) for j in path] + [next_token],
            p_draft=p_x,
            q_draft=q_x,
            accept_prob=[tried_prob[j] for j in shown],
            uniforms=[uniforms[j] for j in shown],
            decisions=[decisions[j] for j in shown],
            next_dist=next_dist,
            path=path,
            shown=shown,
            node_decisions=decisions,
            node_accept_prob=tried_prob,
        )

    def _try(self, tree: DraftTree, child: int, dist: torch.Tensor, generator):
        raise NotImplementedError

    def _final(self, dist: torch.Tensor) -> torch.Tensor:
        return dist


class TreeGreedy(TreeVerifier):
    """Greedy tree verification: follow the child equal to argmax p; lossless for greedy decoding."""

    name: ClassVar[str] = "tree-greedy"

    def _try(self, tree, child, dist, generator):
        kept = int(tree.tokens[child]) == int(dist.argmax())
        return kept, float(kept), math.nan, dist

    def _final(self, dist):
        return one_hot(dist.argmax(), dist.shape[-1])


class TreeSpeculative(TreeVerifier):
    """SpecInfer's multi-candidate speculative sampling over a tree; lossless for any sampling settings."""

    name: ClassVar[str] = "tree-speculative"

    def _try(self, tree, child, dist, generator):
        x = tree.tokens[child]
        q = tree.q[child] if tree.q is not None else one_hot(x, dist.shape[-1])  # (V,)
        a = float(accept_probability(dist[x], q[x]))
        u = float(torch.rand((), generator=generator, device=dist.device))
        if u < a:
            return True, a, u, dist
        return False, a, u, residual(dist, q)
