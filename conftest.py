"""Print each notebook's run time in the CI log (nbval's cells summed per notebook, and the solved run), never failing.

The runtime goals (≤ 90 s per notebook, ≤ 12 min for all) are measured by ``benchmarks/bench_notebooks.py`` on an
idle machine; these figures come from the test run itself, on whatever else the machine is doing.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_collection_modifyitems(items):
    """nbval's notebook cells carry the ``notebook`` marker (tests/ marks its own notebook runs), so ``make check``
    can leave them out."""
    import pytest

    for item in items:
        if item.nodeid.split("::")[0].endswith(".ipynb"):
            item.add_marker(pytest.mark.notebook)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[f"{Path(path).name} (as shipped, nbval)"] += report.duration
    elif "test_notebook_with_its_solutions_passes_every_check" in report.nodeid:
        name = report.nodeid.rsplit("[", 1)[-1].rstrip("]")
        _notebook_seconds[f"{name} (solutions injected)"] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook run times (printed, not asserted)")
    for name, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {name}")
