"""The engine's behaviour is pinned: every drafter × verifier pair reproduces the traces recorded before engine v2.

tests/golden/record.py wrote tests/golden/traces.json.gz with the engine as it was; this test re-runs the same
grid (zoo target, two prompts, T = 0 and T = 1, fixed seed) and compares each run field by field, floats by repr.
A difference names the run and the first step that differs.
"""

from __future__ import annotations

import gzip
import json
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


def test_every_trace_identical(runs):
    expected, actual = runs
    actual = json.loads(json.dumps(actual, ensure_ascii=False))  # the same JSON round trip as the recording
    for key in sorted(expected):
        want, got = expected[key], actual[key]
        for i, (a, b) in enumerate(zip(want["steps"], got["steps"])):
            assert a == b, f"{key}: step {i} differs: recorded {a}, now {b}"
        assert want == got, f"{key}: differs after the common steps (tokens, step count or forward counts)"
