"""The engine's behaviour is pinned: every drafter × verifier pair reproduces the traces recorded before engine v2.

tests/golden/record.py wrote tests/golden/traces.json.gz with the engine as it was; this test re-runs the same
grid (zoo target, two prompts, T = 0 and T = 1, fixed seed) and compares each run field by field: tokens,
decisions, counts and shapes exactly; probabilities to a relative REL_TOL = 1e-4. Why that figure: fp32 sums differ
in their last bits from one CPU to another (AVX-512 against AVX2 kernels add in another order), and a 12 M model's
logits carry that through softmax. ``benchmarks/bench_cpu_drift.py`` records the whole grid with the default and
with ``ATEN_CPU_CAPABILITY=avx2`` kernels on one CPU: the largest relative difference is 1.5e-5 (124 float32 ε),
with no token, decision or count differing (benchmarks/measured/golden_cpu_drift.json); a recording made on another
CPU differed by 2e-5. 1e-4 leaves 5-7x margin over both, while a changed rule moves a probability by far more (the
test below: 4%). Green on an AVX-512 BF16 CPU with the default kernels and with ATEN_CPU_CAPABILITY=avx2.
A difference names the run, the step and the field.
A verifier added later (block verification) was added to the file by re-recording, after every earlier run
compared equal under this test's rule.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
import record  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    expected = json.loads(gzip.decompress(record.GOLDEN.read_bytes()))
    return expected, record.record_all()


def test_same_runs(runs):
    expected, actual = runs
    assert sorted(actual) == sorted(expected)


REL_TOL = 1e-4  # measured CPU-kernel drift: 1.5e-5 (bench_cpu_drift.py); a changed rule moves probabilities far more


def differences(want, got, where: str = "") -> list[str]:
    """Where ``got`` differs from ``want``: floats (recorded as repr strings) within REL_TOL, all else exactly."""
    if isinstance(want, dict) and isinstance(got, dict):
        if sorted(want) != sorted(got):
            return [f"{where}: fields {sorted(want)} != {sorted(got)}"]
        return [d for k in sorted(want) for d in differences(want[k], got[k], f"{where}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: length {len(want)} != {len(got)}"]
        return [d for i, (a, b) in enumerate(zip(want, got)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(want, str) and isinstance(got, str) and want != got:
        try:
            a, b = float(want), float(got)
        except ValueError:
            return [f"{where}: {want!r} != {got!r}"]
        return [] if math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9) else [f"{where}: {a} != {b}"]
    return [] if want == got else [f"{where}: {want!r} != {got!r}"]


def test_differences_catches_what_matters():
    step = {"draft": [5, 7], "p": ["0.25"], "decisions": ["accepted"]}
    assert differences(step, {**step, "p": ["0.2500001"]}) == []  # rounding
    assert differences(step, {**step, "p": ["0.250005"]}) == []  # the measured kernel drift (2e-5 relative)
    assert differences(step, {**step, "p": ["0.2501"]})  # 4e-4: more than kernels move it
    assert differences(step, {**step, "p": ["0.26"]})  # a changed probability
    assert differences(step, {**step, "draft": [5, 8]})  # a changed token
    assert differences(step, {**step, "decisions": ["rejected"]})
    assert differences(step, {"draft": [5, 7], "p": ["0.25"]})  # a missing field


def test_tolerance_is_the_measured_drift_with_margin():
    """REL_TOL comes from benchmarks/bench_cpu_drift.py's stored run, not from a guess: at least 5x the largest
    drift between CPU kernels it measured (which changed no token or decision), and far below a changed rule's."""
    drift = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "measured" / "golden_cpu_drift.json").read_text())
    assert drift["exact_differences"] == 0 and drift["traces"] == len(record.pairs()) * 4 + 4
    runs = [drift] + drift.get("earlier", [])  # the latest grid, and earlier runs on CPUs with other kernels
    assert all(run["exact_differences"] == 0 for run in runs)
    assert 5 * max(run["max_relative"] for run in runs) <= REL_TOL <= 1e-3


def test_every_trace_identical(runs):
    expected, actual = runs
    actual = json.loads(json.dumps(actual, ensure_ascii=False))  # the same JSON round trip as the recording
    for key in sorted(expected):
        want, got = expected[key], actual[key]
        for i, (a, b) in enumerate(zip(want["steps"], got["steps"])):
            found = differences(a, b, f"step {i}")
            assert not found, f"{key}: {found[:5]}"
        found = differences(want, got)
        assert not found, f"{key}: differs after the common steps (tokens, step count or forward counts): {found[:5]}"
