"""Notebooks are stored clean: kernel python3, no widget state, outputs only where nbval checks them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
notebook_tool = load_script("tools/notebooks.py")


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
    assert 'check("' in code, f"{path.name}: no exercise check"


def test_numbering_is_contiguous_from_start_here():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))]
    assert NOTEBOOKS[0].name.startswith("00_start_here")


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert path.name in readme, f"README does not list {path.name}"


GLOSSARY = ROOT / "notebooks" / "GLOSSARY.md"
# terms the notebooks use that a newcomer cannot be expected to know (the student's list, and more)
TERMS = ["KV cache", "α (alpha)", "τ (tau)", "E[τ]", "Total variation (TV)", "KL divergence", "nats", "One-hot",
         "Chi-square", "Ridge point", "Features", "Temperature", "On-policy", "DistillSpec", "Jacobi", "residual",
         "Bonus token", "Lossless", "Roofline", "Memory bound", "Prefill", "Argmax", "Top-k", "Exact law", "n-gram",
         "Token tree", "Timing noise", "bf16", "Entropy", "Spec-Bench", "Adaptive draft length", "Draft vocabulary"]


def test_glossary_defines_the_terms_and_every_notebook_links_it():
    text = GLOSSARY.read_text(encoding="utf-8")
    defined = " ".join(re.findall(r"\*\*([^*]+)\*\*", text))
    missing = [t for t in TERMS if t.lower() not in defined.lower()]
    assert not missing, f"the glossary does not define (in bold) {missing}"
    for path in NOTEBOOKS:
        first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
        assert "(GLOSSARY.md)" in first, f"{path.name}: the first cell does not link the glossary"


def test_notebook_03_writes_out_the_proof_before_the_numbers():
    """The losslessness algebra, per token and per step with the bonus token, in ≤ 10 display lines, before section 2."""
    nb = json.loads((ROOT / "notebooks" / "03_speculative_sampling_math.ipynb").read_text(encoding="utf-8"))
    prose = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    numbers = next(i for i, text in enumerate(prose) if text.startswith("## 2. Proof by numbers"))
    proof = next(text for text in prose[:numbers] if "the algebra" in text)
    display = re.findall(r"\$\$(.+?)\$\$", proof, re.S)
    assert 2 <= len(display) and sum(len(d.strip().splitlines()) for d in display) <= 10
    for step in (r"\min(p, q)(y) + \max(0,\, p - q)(y) = p(y)", r"\prod_{i=1}^{n} p(y_i \mid y_{<i})", "bonus token"):
        assert step in proof
