"""Choosing a draft tree's shape from measured acceptance, and predicting its tokens per step.

Trees are usually hand-written shapes. Sequoia (Chen et al. 2024) and EAGLE-2 (Li et al. 2024) choose the tree from
measured acceptance instead. This module does it for the trees the workbook's drafters grow: every node at depth d
gets its drafter's top-b_d candidates, so a shape is a branching vector (b_1, .., b_D) with
N = b_1 + b_1·b_2 + .. + b_1···b_D nodes.

Greedy tree verification follows the child equal to the target's argmax, so at most one child of an accepted node is
accepted. Measured from recorded tree steps (:func:`acceptance_by_rank`):

    a(d, r) = P(the candidate of rank r at depth d is accepted | its parent was accepted)

Under Sequoia's positional assumption (acceptance depends on depth and rank only, independently across depths), a
node on a path of ranks (r_1, .., r_d) is accepted with probability Π_j a(j, r_j), and for a branching vector

    E[accepted] = Σ_{d=1..D} Π_{j=1..d} A_j(b_j),   A_j(b) = Σ_{r<b} a(j, r)          E[τ] = 1 + E[accepted]

(the +1 is the target's own token). :func:`best_branching` searches every branching vector within a node budget and
returns the one with the largest E[τ]: an exact search over this family of shapes, not over all trees (Sequoia's
dynamic program also allows unequal subtrees). The prediction is checked against runs in
``benchmarks/bench_tree_shape.py`` and in the tests.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from ..core.trace import GenerationOutput
from ..core.tree import MAX_TREE_NODES, tree_nodes  # tree_nodes: re-exported, the views import it from here
from ..core.validate import is_int


def acceptance_by_rank(runs: list[GenerationOutput]) -> dict[tuple[int, int], tuple[int, int]]:
    """(depth, rank) -> (accepted, tried): how often the rank-r child (r = 0 is the drafter's top candidate) of an
    accepted node at depth d − 1 was accepted, counted over every tree-verified step of ``runs``."""
    counts: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for run in runs:
        for step in run.steps:
            if step.tree is None or not step.tree["tokens"]:
                continue
            parents, path = step.tree["parents"], step.tree["path"]
            accepted_nodes = [-1] + list(path)  # the root, then the accepted path
            for depth, node in enumerate(accepted_nodes, start=1):
                kids = [i for i, parent in enumerate(parents) if parent == node]
                for rank, kid in enumerate(kids):
                    counts[depth, rank][1] += 1
                    counts[depth, rank][0] += kid in path
    return {key: (a, t) for key, (a, t) in sorted(counts.items())}


def rates(counts: dict[tuple[int, int], tuple[int, int]]) -> dict[tuple[int, int], float]:
    """a(d, r) = accepted / tried for every measured (depth, rank)."""
    return {key: a / t for key, (a, t) in counts.items() if t > 0}


def predicted_tau(branching: tuple[int, ...], a: dict[tuple[int, int], float]) -> float:
    """E[τ] = 1 + Σ_d Π_{j≤d} A_j(b_j), A_j(b) = Σ_{r<b} a(j, r); an unmeasured (depth, rank) counts as never accepted."""
    tau, reach = 1.0, 1.0
    for depth, b in enumerate(branching, start=1):
        reach *= min(1.0, sum(a.get((depth, r), 0.0) for r in range(b)))
        tau += reach
    return tau


def best_branching(a: dict[tuple[int, int], float], budget: int, max_depth: int | None = None,
                   max_width: int | None = None) -> tuple[tuple[int, ...], float]:
    """The branching vector with at most ``budget`` nodes (depth ≤ max_depth, width ≤ max_width; both default to what
    ``a`` measured) that maximises :func:`predicted_tau`, and that E[τ]. Ties go to the smaller tree."""
    if not is_int(budget) or not 1 <= budget <= MAX_TREE_NODES:
        raise ValueError(f"the tree budget is a number of nodes between 1 and {MAX_TREE_NODES}, got {budget!r}")
    if not a:
        raise ValueError("no acceptance measured: collect tree-verified runs first (acceptance_by_rank)")
    max_depth = max_depth or max(d for d, _ in a)
    max_width = max_width or max(r for _, r in a) + 1
    best, best_tau = (1,), predicted_tau((1,), a)
    for depth in range(1, max_depth + 1):
        for branching in itertools.product(range(1, max_width + 1), repeat=depth):
            if tree_nodes(branching) > budget:
                continue
            tau = predicted_tau(branching, a)
            if tau > best_tau + 1e-12 or (abs(tau - best_tau) <= 1e-12 and tree_nodes(branching) < tree_nodes(best)):
                best, best_tau = branching, tau
    return best, best_tau


# Hardware-aware sizing (Sequoia, Chen et al. 2024, §4.2): the tree that yields the most tokens per unit of time.
#
#     speedup(b) = G(b) / (t(N + 1) / t(1) + D · c),    G(b) = predicted_tau(b), N = tree_nodes(b), D = len(b)
#
# t(k): one target forward over k new tokens (the root and N nodes), measured on this machine (bench/probe.py);
# c: one drafted level's cost in target forwards. An autoregressive step costs t(1) and yields one token, so this is
# the predicted speedup over it. Where t(k) is flat (a GPU) larger trees pay; where it climbs (a CPU), small ones.


def relative_cost(t_ratio: dict[int, float], k: int) -> float:
    """t(k)/t(1) from measured points {k: t(k)/t(1)}: linear between them, extended along the last two beyond."""
    if not t_ratio or 1 not in t_ratio:
        raise ValueError(f"measured forward costs need k = 1 among their points, got {sorted(t_ratio)}")
    ks = sorted(t_ratio)
    if k in t_ratio:
        return float(t_ratio[k])
    lo = max((x for x in ks if x < k), default=ks[0])
    hi = min((x for x in ks if x > k), default=None)
    if hi is None:  # beyond the largest measured k: the last segment's slope
        lo, hi = (ks[-2], ks[-1]) if len(ks) > 1 else (ks[-1], ks[-1])
    if hi == lo:
        return float(t_ratio[lo])
    slope = (t_ratio[hi] - t_ratio[lo]) / (hi - lo)
    return float(t_ratio[lo] + slope * (k - lo))


def shapes(budget: int, max_depth: int, max_width: int):
    """Every branching vector with at most ``budget`` nodes, depth <= max_depth and widths <= max_width."""
    def grow(prefix: tuple[int, ...], nodes: int, width: int):
        if prefix:
            yield prefix
        if len(prefix) == max_depth:
            return
        for b in range(1, max_width + 1):
            if nodes + width * b > budget:
                break
            yield from grow(prefix + (b,), nodes + width * b, width * b)

    return grow((), 0, 1)


def best_for_hardware(a: dict[tuple[int, int], float], t_ratio: dict[int, float], c: float = 0.0, budget: int = 64,
                      max_depth: int = 8, max_width: int = 8,
                      chain: bool = False) -> tuple[tuple[int, ...], float, float]:
    """(branching, predicted τ, predicted speedup) maximising G / (t(N + 1)/t(1) + D·c) (the block above); ``chain``:
    widths 1 only, i.e. the best draft length for a chain verifier. Ties go to the smaller tree."""
    if not a:
        raise ValueError("no acceptance measured: collect tree-verified runs first (acceptance_by_rank)")
    if not isinstance(c, (int, float)) or c < 0:
        raise ValueError(f"c (a drafted level's cost in target forwards) must be a number >= 0, got {c!r}")
    best, best_tau, best_speed = None, 0.0, -1.0
    for branching in shapes(budget, max_depth, 1 if chain else max_width):
        tau = predicted_tau(branching, a)
        speed = tau / (relative_cost(t_ratio, tree_nodes(branching) + 1) + len(branching) * c)
        if speed > best_speed + 1e-12:
            best, best_tau, best_speed = branching, tau, speed
    return best, best_tau, best_speed
