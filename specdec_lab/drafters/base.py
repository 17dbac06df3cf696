"""The drafter interface: propose only the NEW tokens, and observe the verdict.

A drafter's ``propose`` gets the whole sequence so far (prompt + accepted
output) and returns at most γ new tokens, with the drafter's distribution q
for each (or None when it proposes without one, e.g. a lookup table). It may
keep state (a KV cache, an n-gram pool); it keeps it consistent by comparing
the sequence it is given with the one it last saw, so nothing outside it
has to roll it back.

``to_probs(logits, i)`` is the loop's own logits -> distribution rule for the
i-th drafted position (temperature, top-k, top-p, and the EOS mask that
``min_new_tokens`` needs): a drafter that samples must use it, so q is built
exactly like the target's p.

Optional hooks: ``observe_hidden`` (the target's hidden states, for self-drafting heads)
and ``lookahead_inputs`` / ``observe_lookahead`` (a side branch of extra tokens in the
verification forward, for lookahead decoding; see :class:`SideBranchDrafter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol

import torch

from ..sampling import accepted_prefix_len

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

    @staticmethod
    def chain(draft: "Draft") -> "DraftTree":
        """A linear draft as a tree with one branch."""
        n = len(draft)
        return DraftTree(draft.tokens, torch.arange(-1, n - 1, device=draft.tokens.device), draft.q)


class Drafter(Protocol):
    name: ClassVar[str]
    may_abstain: ClassVar[bool]  # True if an empty draft is a normal answer (lookup found nothing)
    vocab_size: int | None  # width of q, checked against the target; None if it proposes ids only

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft: ...

    def observe(self, n_accepted: int, n_drafted: int) -> None: ...


class TreeDrafter(Drafter, Protocol):
    """A drafter that can branch: ``branching[d]`` children per node at depth d + 1 (len = tree depth)."""

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree: ...


class SideBranchDrafter(Drafter, Protocol):
    """OPTIONAL hooks: extra tokens that ride along in the verification forward (lookahead decoding).

    If a drafter has ``lookahead_inputs``, each step the loop feeds, in the SAME target forward,

        [root, draft or tree tokens (as usual), side tokens s_1..s_M]

    where side token i sits at position len(ids) − 1 + depth[i] (the root, ids[-1], is at depth 0)
    and attends to the cached prefix, to the root, and to side token j iff attend[i, j]. Drafts never
    see side tokens and side tokens never see drafts, so verification is unchanged; only the draft
    rows are verified. The loop then drops the M side tokens from the target's cache and calls
    ``observe_lookahead`` with their (M, V) logits and the sequence after the step. Still one
    target forward per step. M may be 0. Near the end of the model's context (a side token past
    its positions) the loop skips the side branch for that step: no side tokens, no observe_lookahead.
    """

    def lookahead_inputs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(L,) sequence so far -> tokens (M,) int64, depth (M,) ints >= 1, attend (M, M) bool (True diagonal)."""
        ...

    def observe_lookahead(self, logits: torch.Tensor, ids: torch.Tensor) -> None:
        """(M, V) target logits of the side tokens, and the (L',) sequence after this step's verdict."""
        ...


def as_drafter(drafter):
    """A drafter object as is; a transformers causal LM wrapped as the independent small-model drafter."""
    if callable(getattr(drafter, "propose", None)):
        return drafter
    if isinstance(drafter, torch.nn.Module):
        from .small_model import ModelDrafter

        return ModelDrafter(drafter)
    raise TypeError(
        "drafter must be a drafter object (with .propose) or a transformers causal LM, "
        f"got {type(drafter).__name__}"
    )


def merge_into_trie(paths, shape: tuple[int, ...], max_paths: int | None = None) -> tuple[list[int], list[int]]:
    """Token paths from the root -> (tokens, parents) of their trie, parents first.

    A node at depth d (the root's children: d = 0) gets at most shape[d] children; a path that
    would add one more is cut there, and paths are cut to len(shape) tokens. With ``max_paths``,
    stop once that many paths have added a node (paths may be a lazy iterator).
    """
    tokens: list[int] = []
    parents: list[int] = []
    kids: list[dict[int, int]] = [{}]  # kids[j + 1]: token -> node, for node j (j = −1: the root)
    grown = 0
    for path in paths:
        path = path.tolist() if isinstance(path, torch.Tensor) else list(path)
        node, grew = -1, False
        for depth, token in enumerate(path[: len(shape)]):
            here = kids[node + 1]
            if token not in here:
                if len(here) >= shape[depth]:
                    break
                here[token] = len(tokens)
                tokens.append(token)
                parents.append(node)
                kids.append({})
                grew = True
            node = here[token]
        grown += grew
        if max_paths is not None and grown == max_paths:
            break
    return tokens, parents


def common_prefix_len(a: torch.Tensor, b: torch.Tensor) -> int:
    """Number of leading positions where two 1-D token sequences agree."""
    m = min(a.shape[0], b.shape[0])
    return accepted_prefix_len(a[:m] == b[:m])
