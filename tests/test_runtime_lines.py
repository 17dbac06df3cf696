"""Each notebook's runtime line is generated from the measurement (benchmarks/bench_notebooks.py), never typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
bench = load_script("benchmarks/bench_notebooks.py")


def test_every_notebook_was_measured():
    measured = json.loads(bench.RESULT.read_text(encoding="utf-8"))["notebooks"]
    assert sorted(measured) == [p.name for p in NOTEBOOKS], "run python benchmarks/bench_notebooks.py --write"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_runtime_line_is_the_measured_one(path):
    result = json.loads(bench.RESULT.read_text(encoding="utf-8"))
    first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    lines = bench.RUNTIME.findall(first)
    assert lines == [bench.runtime_line(result["notebooks"][path.name]["seconds"], result["machine"])], (
        f"{path.name}: the runtime line is not the measured one; run python benchmarks/bench_notebooks.py --write")


def test_runtime_line_rounds_up_to_five_seconds():
    assert "about 45 seconds" in bench.runtime_line(41.2, "2 CPU cores (x86_64)")
    assert "about 5 seconds" in bench.runtime_line(0.3, "2 CPU cores (x86_64)")
    assert "2 CPU cores (x86_64)" in bench.runtime_line(61, "2 CPU cores (x86_64)")
