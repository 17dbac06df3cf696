"""Notebooks are stored clean: kernel python3, no widget state, outputs only where nbval checks them."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("notebook_tool", ROOT / "tools" / "notebooks.py")
notebook_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_tool)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb["metadata"]
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "# NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
            assert cell.get("execution_count") is None, f"{path.name}: stale execution count"
            assert cell.get("outputs") == [], f"{path.name}: stored outputs that nbval does not check"
    assert notebook_tool.dumps(notebook_tool.clean(json.loads(text))) == text, (
        f"{path.name} is not clean: run python tools/notebooks.py clean {path.relative_to(ROOT)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_the_parts_of_a_lesson(path):
    """Title, goal, what you will learn, runtime, a settings cell, a summary and an exercise with a check."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    prose = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert re.match(r"# \d+ · ", "".join(nb["cells"][0]["source"]))
    for part in ("**Goal.**", "**You will learn**", "**Runtime:**", "## Summary", "Exercise"):
        assert part in prose, f"{path.name} lacks {part}"
    assert re.search(r"^TARGET = ", code, re.M), f"{path.name} has no settings cell"
    assert "assert " in code, f"{path.name}: no exercise check"


def test_numbering_is_contiguous_from_start_here():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))]
    assert NOTEBOOKS[0].name.startswith("00_start_here")


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert path.name in readme, f"README does not list {path.name}"
