"""Token-tree geometry: what one forward pass over a tree of drafts needs.

SpecInfer (Miao et al., 2024) and Medusa (Cai et al., 2024) verify several
candidate continuations in ONE target forward. The tree's nodes are fed as a
flat sequence r, n_1, .., n_N (r = the root, the sequence's last token), and
two things make each row see only its own branch:

    position(n_j) = position(r) + depth(n_j)                         (tree position ids)
    n_j attends to the cached prefix, and to n_i iff n_i is n_j or an ancestor of n_j
                                                                     (tree attention mask)

so output row j is exactly what a plain forward over the path r → n_j would give
at n_j. Trees are given by ``parents``: parents[j] < j is the index of node j's
parent within the same flat list, −1 for the node that continues the cached prefix.
"""

from __future__ import annotations

import torch

MAX_TREE_NODES = 1024  # the most nodes a draft tree may have: well past Sequoia's largest trees (768 nodes on an A100),
# and small enough that the (N + 1)² attention mask and the drafter's N candidate rows fit any machine


def tree_nodes(branching: tuple[int, ...]) -> int:
    """N = b_1 + b_1·b_2 + ... + b_1···b_D: the nodes of a tree with branching[d] children per node at depth d + 1."""
    total, width = 0, 1
    for b in branching:
        width *= b
        total += width
    return total


def check_tree_size(branching: tuple[int, ...], what: str = "tree branching") -> tuple[int, ...]:
    """A branching vector whose full tree has at most MAX_TREE_NODES nodes; checked before anything is drafted."""
    n = tree_nodes(branching)
    if n > MAX_TREE_NODES:
        raise ValueError(
            f"{what} {tuple(branching)} makes a tree of {n} nodes (b_1 + b_1·b_2 + ...), more than the "
            f"{MAX_TREE_NODES} one verification forward may score; use fewer children per node or fewer levels"
        )
    return branching


def check_parents(parents: torch.Tensor) -> None:
    """Parents must come first: parents[j] in [-1, j)."""
    index = torch.arange(parents.shape[0], device=parents.device)
    if parents.dim() != 1 or bool(((parents < -1) | (parents >= index)).any()):
        raise ValueError(f"tree parents must list every parent before its children (parents[j] in [-1, j)), got {parents.tolist()}")


def depths(parents: torch.Tensor) -> torch.Tensor:
    """(N,) parents -> (N,) depths, 0 for a node whose parent is -1."""
    out = []
    for j, parent in enumerate(parents.tolist()):
        out.append(0 if parent < 0 else out[parent] + 1)
    return torch.tensor(out, dtype=torch.long, device=parents.device)


def ancestor_mask(parents: torch.Tensor) -> torch.Tensor:
    """(N,) parents -> (N, N) bool, [j, i] True iff node i is node j or one of its ancestors."""
    n = parents.shape[0]
    mask = torch.eye(n, dtype=torch.bool, device=parents.device)
    for j, parent in enumerate(parents.tolist()):
        if parent >= 0:
            mask[j] |= mask[parent]
    return mask


def children(parents: torch.Tensor) -> dict[int, list[int]]:
    """Node -> its children in listed order; key -1 holds the top-level nodes."""
    kids: dict[int, list[int]] = {}
    for j, parent in enumerate(parents.tolist()):
        kids.setdefault(parent, []).append(j)
    return kids


def path_to(parents: torch.Tensor, node: int) -> list[int]:
    """Indices from the top level down to ``node`` (empty for node -1)."""
    path, parent_of = [], parents.tolist()
    while node >= 0:
        path.append(node)
        node = parent_of[node]
    return path[::-1]


def first_branch(parents: torch.Tensor, start: int) -> list[int]:
    """``start`` then its first child, that child's first child, ... (the drafter's preferred branch)."""
    kids, branch = children(parents), []
    node = start
    while node is not None:
        branch.append(node)
        node = kids.get(node, [None])[0]
    return branch
