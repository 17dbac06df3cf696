"""The drafter and verifier contracts, enforced: what either hands back is checked before the loop uses it.

A draft that breaks the contract (too long, empty without ``may_abstain``, ids that are not integers or lie outside
the target's vocabulary, a tree deeper or larger than asked, q rows that are not distributions the drafted tokens could
have been drawn from) raises a ValueError / TypeError naming the drafter. A verdict that is not "the accepted path of
the tree plus exactly one token of the target's own" raises naming the verifier.

Why q is checked: speculative sampling accepts x with probability min(1, p(x) / q(x)), so a q(x) that is NaN, 0 or
negative accepts every draft, and a row that sums to 2 skews the residual: the output silently stops being the
target's. Every check here is a few tensor ops per step (no Python loop over the vocabulary).
"""

from __future__ import annotations

import torch

from ..core.checks import check_token_range
from ..core.lm import max_context, vocab_size
from ..core.tree import MAX_TREE_NODES, check_parents, depths
from ..core.types import Draft, DraftTree, Verdict
from ..core.validate import is_int


def drafted_chain(drafter, chain, ids: torch.Tensor, gamma: int, vocab: int):
    """A drafter's ``propose`` result: a Draft of at most γ in-vocabulary tokens (empty only if it may abstain)."""
    if not isinstance(chain, Draft):
        raise TypeError(f"drafter {drafter.name!r} returned {type(chain).__name__}, expected a Draft")
    tokens = _token_ids(drafter, chain.tokens, ids, "tokens")
    if len(tokens) > gamma:
        raise ValueError(f"drafter {drafter.name!r} proposed {len(tokens)} tokens, more than the {gamma} asked for")
    if len(tokens) == 0 and not drafter.may_abstain:
        raise ValueError(f"drafter {drafter.name!r} proposed no tokens when asked for {gamma}")
    check_token_range(tokens, vocab, f"the drafts of drafter {drafter.name!r}", "target's")
    return Draft(tokens, _checked_q(drafter, chain.q, tokens, vocab, "position"))


def drafted_tree(drafter, tree, ids: torch.Tensor, branching: tuple[int, ...], vocab: int):
    """A drafter's ``propose_tree`` result: parents first, no deeper than asked, at most MAX_TREE_NODES nodes."""
    if not isinstance(tree, DraftTree):
        raise TypeError(f"drafter {drafter.name!r} returned {type(tree).__name__} from propose_tree, expected a DraftTree")
    tokens = _token_ids(drafter, tree.tokens, ids, "tree tokens")
    parents = _token_ids(drafter, tree.parents, ids, "tree parents")
    if parents.shape != tokens.shape:
        raise ValueError(f"drafter {drafter.name!r} gave {len(parents)} parents for {len(tokens)} tree tokens")
    if len(tokens) > MAX_TREE_NODES:  # a drafter's own static tree may be wider than the branching, never this large
        raise ValueError(f"drafter {drafter.name!r} proposed a tree of {len(tokens)} nodes, more than the "
                         f"{MAX_TREE_NODES} one verification forward may score")
    check_parents(parents)
    if len(tokens) and int(depths(parents).max()) >= len(branching):
        raise ValueError(f"drafter {drafter.name!r} proposed a tree deeper than the {len(branching)} levels asked for")
    if len(tokens) == 0 and not drafter.may_abstain:
        raise ValueError(f"drafter {drafter.name!r} proposed no tokens when asked for a tree")
    check_token_range(tokens, vocab, f"the drafts of drafter {drafter.name!r}", "target's")
    return DraftTree(tokens, parents, _checked_q(drafter, tree.q, tokens, vocab, "node"))


def _token_ids(drafter, values, ids: torch.Tensor, what: str) -> torch.Tensor:
    """A drafter's ids -> a fresh (N,) int64 tensor on the loop's device; floats (416.7) would be truncated: refuse."""
    tokens = torch.as_tensor(values)
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        shown = [round(v, 4) if isinstance(v, float) else v for v in tokens.flatten()[:3].tolist()]  # 41.7, not 41.70000076
        raise TypeError(f"drafter {drafter.name!r} gave {what} of dtype {tokens.dtype} (e.g. {shown}); token ids must "
                        "be integers (torch.long)")
    if tokens.dim() != 1:
        raise ValueError(f"drafter {drafter.name!r} gave {what} of shape {tuple(tokens.shape)}; expected a 1-D (N,) tensor")
    return tokens.to(device=ids.device, dtype=torch.long, copy=True)  # the drafter may not change them later


def _checked_q(drafter, q, tokens: torch.Tensor, vocab: int, where: str) -> torch.Tensor | None:
    """q rows (N, V), one per drafted token x_j: finite, >= 0, each summing to 1, and q_j(x_j) > 0.

    q_j(x_j) > 0 because a drafter that samples x_j ~ q_j never draws a token of probability 0 (a deterministic
    drafter gives q = None instead). The sums are taken in float64 and may miss 1 by sqrt(eps) of q's dtype, never
    less than float32's (3.5e-4 in float32 and float64, 0.09 in bfloat16): rounding stays far inside that, a row
    summing to 2 does not.
    """
    if q is None:
        return None
    if not isinstance(q, torch.Tensor) or not q.is_floating_point():
        raise TypeError(f"drafter {drafter.name!r} gave q of type {type(q).__name__}"
                        f"{'' if not isinstance(q, torch.Tensor) else ' ' + str(q.dtype)}; q must be a float tensor "
                        "(N, V) of probabilities, or None for a deterministic draft")
    if q.dim() != 2 or q.shape[0] != len(tokens):
        raise ValueError(f"drafter {drafter.name!r} gave q of shape {tuple(q.shape)} for {len(tokens)} tokens; "
                         f"expected one row per token, ({len(tokens)}, {vocab})")
    if q.shape[1] != vocab:
        raise ValueError(f"drafter {drafter.name!r} gave q rows over {q.shape[1]} tokens; the target's vocabulary has {vocab}")
    q = q.to(tokens.device)
    q_x = q.gather(1, tokens[:, None])[:, 0]  # (N,) q_j(x_j)
    sums = q.sum(dim=-1, dtype=torch.float64)  # (N,)
    # sqrt(eps) of the row's dtype, never tighter than float32's (a float64 q is often softmax'd in fp32) nor looser
    # than 1% (bf16's sqrt(eps) is 0.088, which let a row summing to 1.05 through; rounding a bf16 softmax over 49k
    # tokens moves its sum far less than 1%)
    tolerance = min(max(torch.finfo(q.dtype).eps, torch.finfo(torch.float32).eps) ** 0.5, 0.01)
    flags = torch.stack([~torch.isfinite(q).all(), (q < 0).any(), ((sums - 1).abs() > tolerance).any(), (q_x <= 0).any()])
    if not bool(flags.any()):  # the common case: one sync
        return q
    not_finite, negative, off_one, _ = flags.tolist()  # else: q(x) = 0
    name = f"drafter {drafter.name!r}"
    if not_finite or negative:
        j, x = (~torch.isfinite(q) if not_finite else q < 0).nonzero()[0].tolist()
        kind = "finite" if not_finite else ">= 0"
        raise ValueError(f"{name} gave q[{x}] = {float(q[j, x])} at draft {where} {j}; q rows must be probabilities "
                         f"({kind}), the distribution each token was drawn from")
    if off_one:
        j = int(((sums - 1).abs() > tolerance).nonzero()[0])
        raise ValueError(f"{name} gave a q row summing to {float(sums[j]):.6g} at draft {where} {j}; each row must sum "
                         f"to 1 (within {tolerance:.2g} for {q.dtype}): normalise it, e.g. with softmax")
    j = int((q_x <= 0).nonzero()[0])
    raise ValueError(f"{name} drafted token {int(tokens[j])} at {where} {j} with q = {float(q_x[j])} there: a token "
                     "drawn from q has q(x) > 0; sample x from the q row you return, or return q = None for a "
                     "deterministic draft")


def checked_verdict(verifier, verdict, tree: DraftTree, p: torch.Tensor) -> Verdict:
    """A verifier's ``verify_step`` result: the accepted path of the tree, then exactly one token of the target's own.

    With path = (v_1, .., v_n): parents[v_1] = −1 and parents[v_i] = v_{i−1} (a path from the root),
    tokens = [x_{v_1}, .., x_{v_n}, y] (n + 1 ints in [0, V)), and every emitted token has p > 0 in the row that
    predicts it (rows 0, v_1 + 1, .., v_n + 1 of p): no rule may emit what the target cannot, e.g. a masked EOS.
    """
    name = f"verifier {verifier.name!r}"
    if not isinstance(verdict, Verdict):
        raise TypeError(f"{name} returned {type(verdict).__name__}, expected a Verdict")
    tokens, path = verdict.tokens, verdict.path
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"{name} emitted {tokens!r:.60}; a verdict emits a list of the accepted drafts and then one "
                         "token of the target's own (at least one token)")
    if not all(is_int(t) for t in tokens) or not all(is_int(j) for j in path):
        raise TypeError(f"{name} emitted tokens {tokens!r:.80} on path {path!r:.60}; both must be lists of ints")
    if len(tokens) != len(path) + 1 or verdict.n_accepted != len(path):
        raise ValueError(f"{name} emitted {len(tokens)} tokens for {verdict.n_accepted} accepted drafts on a path of "
                         f"{len(path)} nodes; it must emit the accepted drafts and exactly one token of the target's "
                         "own (n + 1)")
    outside = [int(t) for t in tokens if not 0 <= t < p.shape[-1]]
    if outside:
        raise ValueError(f"{name} emitted token ids outside the target's vocabulary [0, {p.shape[-1]}), e.g. {outside[:3]}")
    parents, parent = tree.parents.tolist(), -1
    for node in path:
        if not 0 <= node < len(parents) or parents[node] != parent:
            raise ValueError(f"{name} accepted path {list(path)}, which is not a path from the root of the draft tree "
                             f"(parents {parents[:16]}{'...' if len(parents) > 16 else ''})")
        parent = node
    drafted = tree.tokens[list(path)].tolist()
    if tokens[:-1] != drafted:
        raise ValueError(f"{name} emitted {tokens[:-1]} as its accepted drafts, but the tree holds {drafted} on that path")
    rows = torch.tensor([0] + [j + 1 for j in path], device=p.device)
    p_emitted = p[rows, torch.tensor(tokens, device=p.device)]  # (n + 1,) p of each emitted token, in its own row
    if not bool((p_emitted > 0).all()):
        i = int((p_emitted <= 0).nonzero()[0])
        raise ValueError(f"{name} emitted token {tokens[i]} at position {i} of the step, where the target gives it "
                         "probability 0 (e.g. an EOS masked by min_new_tokens, or outside top-k / top-p); "
                         "a verifier may only emit tokens the target can produce")
    return verdict


def side_branch(drafter, inputs, ids: torch.Tensor, model):
    """A side branch's (tokens, depth, attend), checked; None when a side token would pass the model's positions."""
    tokens, depth, attend = inputs
    m = tokens.shape[0]
    if tokens.is_floating_point() or depth.is_floating_point() or tokens.dtype == torch.bool:
        raise TypeError(f"drafter {drafter.name!r} gave side-branch tokens of dtype {tokens.dtype} and depths of dtype "
                        f"{depth.dtype}; both must be integers (torch.long)")
    if tokens.dim() != 1 or tuple(depth.shape) != (m,) or tuple(attend.shape) != (m, m) or attend.dtype != torch.bool:
        raise ValueError(f"drafter {drafter.name!r} gave side-branch inputs of shapes {tuple(tokens.shape)}, "
                         f"{tuple(depth.shape)}, {tuple(attend.shape)} {attend.dtype}; expected (M,), (M,), (M, M)")
    vocab, context = vocab_size(model), max_context(model)
    if m and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab or int(depth.min()) < 1):
        raise ValueError(f"drafter {drafter.name!r} gave lookahead tokens outside [0, {vocab}) or at a depth < 1")
    if m and context is not None and ids.shape[0] - 1 + int(depth.max()) >= context:
        return None  # past the model's positions: skip the side branch this step (the drafter's window waits)
    return tokens.to(device=ids.device, dtype=torch.long), depth.to(device=ids.device, dtype=torch.long), attend.to(ids.device)
