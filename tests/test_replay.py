"""Replay: every linear verifier on the recorded steps of one run, with common random numbers."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import generate_speculative
from specdec_lab.lab.replay import accepted_grid, gains, linear_verifiers, mean_expected_accepted, replay
from specdec_lab.lab.viz.replay import replay_figure

from conftest import tiny_llama


@pytest.fixture(scope="module")
def run():
    target = tiny_llama(layers=1, seed=0, vocab=6, hidden=16, init=0.5)
    drafter = tiny_llama(layers=1, seed=7, vocab=6, hidden=16, init=0.5)
    return generate_speculative(target, drafter, [1, 3], gamma=3, max_new_tokens=24, temperature=1.0, seed=2,
                                verifier="speculative", keep_rows=True)


def test_rows_are_kept_only_on_request(run):
    assert all(s.rows["p"].shape == (len(s.draft) + 1, 6) for s in run.steps if s.draft)
    assert all(s.rows["q"].shape == (len(s.draft), 6) for s in run.steps if s.draft)
    plain = generate_speculative(*_models(), [1, 3], gamma=3, max_new_tokens=8, temperature=1.0)
    assert all(s.rows is None for s in plain.steps)


def _models():
    return tiny_llama(layers=1, seed=0, vocab=6, hidden=16, init=0.5), tiny_llama(layers=1, seed=7, vocab=6, hidden=16, init=0.5)


def test_replaying_the_runs_own_rule_reproduces_each_verdicts_probabilities(run):
    replayed = [r for r in replay(run, ["speculative"]) if r.verifier == "speculative"]
    drafted = [s for s in run.steps if s.draft]
    assert len(replayed) == len(drafted)
    for r, s in zip(replayed, drafted):
        assert r.accept_prob == pytest.approx(s.accept_prob, rel=1e-6)


def test_every_linear_verifier_sees_every_step_and_common_numbers_are_shared(run):
    replayed = replay(run)
    names, steps, counts = accepted_grid(replayed)
    assert names == linear_verifiers() and "block" in names and "greedy" in names
    assert len(steps) == sum(bool(s.draft) for s in run.steps)
    assert all(0 <= c <= 3 for row in counts for c in row)
    by = {(r.verifier, r.step): r for r in replayed}
    for s in steps:
        spec, block, greedy = by["speculative", s], by["block", s], by["greedy", s]
        assert spec.uniforms == block.uniforms  # common random numbers
        assert all(u != u for u in greedy.uniforms)  # greedy draws none (nan)
        assert 0 <= spec.expected_accepted <= spec.drafted and 0 <= block.expected_accepted <= block.drafted
        assert greedy.expected_accepted == greedy.n_accepted  # an outright rule: its count is its expectation
    assert len({tuple(by["speculative", s].uniforms) for s in steps}) == len(steps)  # fresh numbers each step


def test_block_gains_on_average_not_on_every_draft(run):
    """Theorem 3 of Sun et al. holds over drafts x ~ q (tested exactly in test_block_verification), not per draft:
    on some recorded drafts block expects fewer accepted tokens than token-level, on others more. Over the
    run's steps (a seeded sample of drafts) its mean is higher."""
    replayed = replay(run, ["speculative", "block"])
    per_step = gains(replayed)
    assert len(per_step) == sum(bool(s.draft) for s in run.steps)
    assert any(g < -1e-3 for g in per_step) and any(g > 1e-3 for g in per_step)
    means = mean_expected_accepted(replayed)
    assert means["block"] > means["speculative"]
    assert sum(per_step) / len(per_step) == pytest.approx(means["block"] - means["speculative"])


def test_replay_is_reproducible_and_seeded(run):
    a, b = replay(run, seed=1), replay(run, seed=1)
    assert [(r.n_accepted, r.tokens) for r in a] == [(r.n_accepted, r.tokens) for r in b]


def test_refuses_runs_without_rows_and_tree_verifiers(run):
    target, drafter = _models()
    plain = generate_speculative(target, drafter, [1, 3], gamma=3, max_new_tokens=8, temperature=1.0)
    with pytest.raises(ValueError, match="keep_rows=True"):
        replay(plain)
    with pytest.raises(ValueError, match="tree"):
        replay(run, ["tree-greedy"])


def test_the_grid_figure_has_one_row_per_verifier(run):
    fig = replay_figure(replay(run))
    assert list(fig.data[0].y) == linear_verifiers()
    assert len(fig.data[0].x) == sum(bool(s.draft) for s in run.steps)
