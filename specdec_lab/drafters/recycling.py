"""Token Recycling: draft from a |V| × k table of the target's own top-k next tokens, kept from every forward.

Luo et al., "Turning Trash into Treasure: Accelerating Inference of Large Language Models with Token Recycling"
(ACL 2025; github.com/Luowaterbi/TokenRecycling). Every verification forward scores tokens the loop then throws
away: rejected drafts, branches not taken. Their top-k next tokens are still a good guess of what follows that token
next time. An adjacency matrix M (V, k) keeps, for each token t, the target's top-k next tokens the last time it
scored t:

  Update. After the prefill, M[x_i] ← top-k(logits after x_i) for every prompt token; after each verification,
          M[t] ← top-k(logits of row t) for the root and EVERY node of the draft tree, accepted or not (the loop hands
          the rows to ``observe_scores``; ``reads_scores`` asks for them). A token scored twice keeps its last row.
  Draft.  Breadth first along a static tree: the root's children are M[root][:b_1]; each child c at depth 1 gets
          M[c][:b_2]; and so on (b = the tree's branching, TR's own 80-node tree or one sized for this machine,
          verifiers/tree_shape.py). A chain is the tree (1, 1, ..): x_{i+1} = M[x_i][0]. A token whose row was never
          written gets no children; an unwritten root: propose nothing.

Drafts are deterministic (q = None), so every verifier stays exact.

State that outlives a call, BY DESIGN (TR's "hot start": the table is never cleared between questions, and shuffling
domains cost TR < 1%): the matrix belongs to the TARGET model, not to the drafter object or the call, in a
``WeakKeyDictionary`` keyed by the target (gone when the target is). Two drafters built for one target share it,
and ``reset()`` (the start of every call) does NOT clear it, so the same seed can give a different trace on a
second call (the output's law, and the greedy output, are unchanged). ``forget()`` clears it: after ``forget()`` the
same seed gives the same trace again. Threads on one target share it too (writes are locked), so concurrent sampled runs depend
on the order the threads run in, unlike every other drafter's (tests/test_concurrency.py); greedy output cannot. Memory: V · k int32 (SmolLM2: 49152 × 8 × 4 B = 1.5 MB) plus V bools.
"""

from __future__ import annotations

import threading
import weakref
from typing import ClassVar

import torch

from .base import Draft, Drafter, DraftTree, ToProbs
from .prompt_lookup import check_branching
from ..core.lm import vocab_size
from ..core.validate import is_int

TOP_K = 8  # TR's k


class AdjacencyMatrix:
    """M (V, k) int32 of top-k next tokens, and which rows were ever written."""

    def __init__(self, vocab: int, k: int):
        self.next = torch.zeros(vocab, min(k, vocab), dtype=torch.int32)  # (V, k); a vocabulary under k: all of it
        self.known = torch.zeros(vocab, dtype=torch.bool)  # (V,)
        self.lock = threading.Lock()  # a widget's worker thread may decode beside a notebook cell

    @property
    def nbytes(self) -> int:
        return self.next.numel() * self.next.element_size() + self.known.numel()

    def write(self, tokens: torch.Tensor, logits: torch.Tensor) -> None:
        """M[tokens[i]] ← top-k(logits[i]); (T,) tokens, (T, V) logits; the last row wins for a repeated token."""
        last = {t: i for i, t in enumerate(tokens.tolist())}  # token -> its last row
        rows = torch.tensor(list(last.values()), dtype=torch.long)
        keys = torch.tensor(list(last.keys()), dtype=torch.long)
        top = logits[rows.to(logits.device)].topk(self.next.shape[1], dim=-1).indices.to("cpu", torch.int32)  # (T', k)
        with self.lock:
            self.next[keys] = top
            self.known[keys] = True

    def clear(self) -> None:
        with self.lock:
            self.next.zero_()
            self.known.zero_()


_MATRICES: "weakref.WeakKeyDictionary[object, AdjacencyMatrix]" = weakref.WeakKeyDictionary()


def matrix_for(target, k: int = TOP_K) -> AdjacencyMatrix:
    """The target's adjacency matrix, made on first use (asking for another k replaces it with an empty one)."""
    matrix = _MATRICES.get(target)
    if matrix is None or matrix.next.shape[1] != min(k, vocab_size(target)):
        matrix = _MATRICES[target] = AdjacencyMatrix(vocab_size(target), k)
    return matrix


class RecyclingDrafter(Drafter):
    """Draft along a static tree read from the target's top-k adjacency matrix (Token Recycling)."""

    name: ClassVar[str] = "recycling"
    branches: ClassVar[bool] = True
    reads_scores: ClassVar[bool] = True  # observe_scores gets the logits of every token each forward scored
    may_abstain: ClassVar[bool] = True  # a root never scored before has no row

    def __init__(self, target, k: int = TOP_K, tree: tuple[int, ...] | None = None, chain: int | None = None,
                 name: str | None = None):
        if not is_int(k) or k < 1:
            raise ValueError(f"k (top tokens kept per row) must be an int >= 1, got {k!r}")
        if tree is not None:
            tree = check_branching(tree)
            if max(tree) > k:
                raise ValueError(f"tree {tree} asks for {max(tree)} children of a node, but rows keep only k = {k}")
        if chain is not None and (not is_int(chain) or chain < 1):
            raise ValueError(f"chain (the longest chain to draft) must be an int >= 1 or None, got {chain!r}")
        if name is not None:
            self.name = name
        self.chain = chain  # a chain verifier's draft length (None: γ), e.g. tree_shape.best_for_hardware(chain=True)
        self.matrix = matrix_for(target, k)
        self.tree = tree  # the static tree's branching (None: the verifier's); the verifier's γ bounds its depth
        self.vocab_size = None  # proposes ids only

    def forget(self) -> None:
        """Clear the target's matrix (every drafter of this target forgets it too)."""
        self.matrix.clear()

    def observe_scores(self, tokens: torch.Tensor, logits: torch.Tensor) -> None:
        """Update: (T,) scored tokens, (T, V) the logits after each (the prefill's, or [root, tree nodes])."""
        if tokens.numel():
            self.matrix.write(tokens.cpu(), logits)

    def _walk(self, root: int, shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
        """Draft: breadth first along ``shape``; (tokens, parents), parents first."""
        table, known = self.matrix.next, self.matrix.known
        tokens: list[int] = []
        parents: list[int] = []
        level = [(-1, root)]
        for width in shape:
            below = []
            for parent, token in level:
                if not bool(known[token]):
                    continue
                for child in table[token, :width].tolist():
                    below.append((len(tokens), child))
                    tokens.append(child)
                    parents.append(parent)
            level = below
        return tokens, parents

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        """A chain: x_{i+1} = M[x_i][0], min(γ, chain) tokens (fewer at a token never scored)."""
        length = gamma if self.chain is None else min(gamma, self.chain)
        tokens, _ = self._walk(int(ids[-1]), (1,) * max(length, 0))
        return Draft(tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device))  # (≤ γ,)

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """The static tree (``tree``, else the verifier's ``branching``), at most len(branching) levels deep."""
        shape = check_branching(branching)
        k = self.matrix.next.shape[1]
        shape = self.tree[: len(shape)] if self.tree is not None else tuple(min(b, k) for b in shape)
        tokens, parents = self._walk(int(ids[-1]), shape)
        return DraftTree(tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device),  # (N,)
                         parents=torch.tensor(parents, dtype=torch.long, device=ids.device))  # (N,)
