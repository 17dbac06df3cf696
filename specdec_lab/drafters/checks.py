"""The drafter contract, enforced: what a drafter hands back is checked before the target sees it.

A draft that breaks the contract (too long, empty without ``may_abstain``, ids outside the target's vocabulary,
q rows of the wrong width, a tree deeper than asked) raises a ValueError / TypeError naming the drafter.
"""

from __future__ import annotations

import torch

from ..core.checks import check_token_range
from ..core.lm import max_context, vocab_size
from ..core.tree import check_parents, depths
from ..core.types import Draft, DraftTree


def drafted_chain(drafter, chain, ids: torch.Tensor, gamma: int, vocab: int):
    """A drafter's ``propose`` result: a Draft of at most γ in-vocabulary tokens (empty only if it may abstain)."""
    if not isinstance(chain, Draft):
        raise TypeError(f"drafter {drafter.name!r} returned {type(chain).__name__}, expected a Draft")
    if len(chain) > gamma:
        raise ValueError(f"drafter {drafter.name!r} proposed {len(chain)} tokens, more than the {gamma} asked for")
    if len(chain) == 0 and not drafter.may_abstain:
        raise ValueError(f"drafter {drafter.name!r} proposed no tokens when asked for {gamma}")
    if chain.q is not None and chain.q.shape[0] != len(chain):
        raise ValueError(f"drafter {drafter.name!r} gave {chain.q.shape[0]} q rows for {len(chain)} tokens")
    tokens = torch.as_tensor(chain.tokens).to(device=ids.device, dtype=torch.long)
    _check_drafted_ids(drafter, tokens, chain.q, vocab)
    return Draft(tokens, chain.q)


def drafted_tree(drafter, tree, ids: torch.Tensor, branching: tuple[int, ...], vocab: int):
    """A drafter's ``propose_tree`` result: parents first, no deeper than asked, in-vocabulary tokens."""
    if not isinstance(tree, DraftTree):
        raise TypeError(f"drafter {drafter.name!r} returned {type(tree).__name__} from propose_tree, expected a DraftTree")
    check_parents(tree.parents)
    if len(tree) and int(depths(tree.parents).max()) >= len(branching):
        raise ValueError(f"drafter {drafter.name!r} proposed a tree deeper than the {len(branching)} levels asked for")
    if len(tree) == 0 and not drafter.may_abstain:
        raise ValueError(f"drafter {drafter.name!r} proposed no tokens when asked for a tree")
    tokens = tree.tokens.to(device=ids.device, dtype=torch.long)
    _check_drafted_ids(drafter, tokens, tree.q, vocab)
    return DraftTree(tokens, tree.parents.to(device=ids.device, dtype=torch.long), tree.q)


def _check_drafted_ids(drafter, tokens: torch.Tensor, q: torch.Tensor | None, vocab: int) -> None:
    """Drafted ids must index the target's vocabulary (out of range they would crash inside torch, or assert on
    CUDA), and q rows must be as wide as it."""
    if q is not None and q.shape[-1] != vocab:
        raise ValueError(f"drafter {drafter.name!r} gave q rows over {q.shape[-1]} tokens; the target's vocabulary has {vocab}")
    check_token_range(tokens, vocab, f"the drafts of drafter {drafter.name!r}", "target's")


def side_branch(drafter, inputs, ids: torch.Tensor, model):
    """A side branch's (tokens, depth, attend), checked; None when a side token would pass the model's positions."""
    tokens, depth, attend = inputs
    m = tokens.shape[0]
    if tokens.dim() != 1 or tuple(depth.shape) != (m,) or tuple(attend.shape) != (m, m) or attend.dtype != torch.bool:
        raise ValueError(f"drafter {drafter.name!r} gave side-branch inputs of shapes {tuple(tokens.shape)}, "
                         f"{tuple(depth.shape)}, {tuple(attend.shape)} {attend.dtype}; expected (M,), (M,), (M, M)")
    vocab, context = vocab_size(model), max_context(model)
    if m and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab or int(depth.min()) < 1):
        raise ValueError(f"drafter {drafter.name!r} gave lookahead tokens outside [0, {vocab}) or at a depth < 1")
    if m and context is not None and ids.shape[0] - 1 + int(depth.max()) >= context:
        return None  # past the model's positions: skip the side branch this step (the drafter's window waits)
    return tokens.to(device=ids.device, dtype=torch.long), depth.to(device=ids.device, dtype=torch.long), attend.to(ids.device)
