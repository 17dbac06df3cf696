"""The project's scripts (tools/, benchmarks/) as modules, for the tests that check them; they are not a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str):
    """The module in ``ROOT / relative`` (e.g. ``"tools/notebooks.py"``), executed once per call."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
