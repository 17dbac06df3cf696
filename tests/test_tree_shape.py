"""The tree-shape optimiser: acceptance by depth and rank from recorded steps, E[τ] of a shape, the best shape."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import build_drafter, generate_speculative
from specdec_lab.models.loading import load_model
from specdec_lab.verifiers.tree_shape import acceptance_by_rank, best_branching, predicted_tau, rates, tree_nodes
from specdec_lab.verifiers.tree import TreeGreedy


def test_tree_nodes_and_hand_worked_tau():
    assert tree_nodes((3, 2, 1)) == 3 + 6 + 6
    a = {(1, 0): 0.6, (1, 1): 0.2, (2, 0): 0.5, (2, 1): 0.1}
    # depth 1 reached with 0.6 + 0.2, depth 2 with (0.8)(0.5 + 0.1)
    assert predicted_tau((2, 2), a) == pytest.approx(1 + 0.8 + 0.8 * 0.6)
    assert predicted_tau((1, 1, 1), a) == pytest.approx(1 + 0.6 + 0.3)  # depth 3 was never measured: 0


def test_best_branching_is_the_best_within_the_budget():
    a = {(1, 0): 0.6, (1, 1): 0.2, (1, 2): 0.1, (2, 0): 0.5, (2, 1): 0.1, (3, 0): 0.5}
    shape, tau = best_branching(a, budget=4)
    candidates = [(1,), (2,), (3,), (1, 1), (1, 2), (2, 1), (3, 1), (1, 1, 1), (1, 2, 1), (1, 1, 2), (1, 3), (2, 1, 1)]
    within = [c for c in candidates if tree_nodes(c) <= 4]
    assert tau == pytest.approx(max(predicted_tau(c, a) for c in within))
    assert tree_nodes(shape) <= 4
    assert best_branching(a, budget=1)[0] == (1,)
    with pytest.raises(ValueError, match="budget"):
        best_branching(a, budget=0)
    with pytest.raises(ValueError, match="no acceptance"):
        best_branching({}, budget=4)


def test_prediction_matches_a_process_that_meets_its_assumption():
    """Simulated greedy tree steps where each rank is right with fixed probabilities: predicted E[τ] = mean τ."""
    a = {(1, 0): 0.5, (1, 1): 0.25, (2, 0): 0.4, (2, 1): 0.2}
    g = torch.Generator().manual_seed(0)
    total, steps = 0, 20_000
    for _ in range(steps):
        tau = 1
        for depth, b in ((1, 2), (2, 2)):
            u = torch.rand((), generator=g).item()
            cumulative = [sum(a[depth, r] for r in range(k + 1)) for k in range(b)]
            if u >= cumulative[-1]:
                break
            tau += 1
        total += tau
    assert total / steps == pytest.approx(predicted_tau((2, 2), a), rel=0.02)


@pytest.fixture(scope="module")
def zoo_runs():
    target, tokenizer = load_model("zoo:target", "cpu", torch.float32)
    drafter = build_drafter("distilled", target, tokenizer)
    prompts = ["ROMEO.\n", "HAMLET.\nTo be, or not to be", "KING LEAR.\nMeantime we shall"]
    return [generate_speculative(target, drafter, tokenizer(p)["input_ids"], gamma=3, max_new_tokens=24,
                                 verifier=TreeGreedy(branching=(3, 2, 1))) for p in prompts]


def test_counts_from_recorded_tree_steps(zoo_runs):
    counts = acceptance_by_rank(zoo_runs)
    assert set(d for d, _ in counts) <= {1, 2, 3} and set(r for _, r in counts) <= {0, 1, 2}
    tried_top = counts[1, 0][1]
    assert tried_top == sum(bool(s.tree and s.tree["tokens"]) for r in zoo_runs for s in r.steps)  # once per tree step
    a = rates(counts)
    assert all(0 <= x <= 1 for x in a.values())
    assert sum(a.get((1, r), 0) for r in range(3)) <= 1 + 1e-9  # at most one child of a node is accepted
    assert a[1, 0] > a.get((1, 2), 0)  # the drafter's top candidate is right more often than its third
