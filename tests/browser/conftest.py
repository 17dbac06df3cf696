"""Fixtures for the browser tests: a JupyterLab server and headless Chromium (Debian's package, driven by Playwright).

The tests skip, saying why, where Chromium or Playwright is missing; `make test` installs both where it can
(Playwright from the test extras, Chromium by ``tools/install_chromium.sh``).
"""

from __future__ import annotations

import os
import shutil

import pytest
from browser_lab import REPO, Lab, find_chromium


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        named = os.environ.get("SPECDEC_LAB_CHROMIUM")
        pytest.skip(f"browser tests skipped: SPECDEC_LAB_CHROMIUM={named} does not exist" if named else
                    "browser tests skipped: no Chromium on PATH. `make test` installs Debian's package where it runs "
                    "as root with apt-get; elsewhere `sudo apt-get install -y chromium`, or set SPECDEC_LAB_CHROMIUM")
    pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright's Python package (`pip install -e .[test]`)")
    return path


@pytest.fixture(scope="session")
def lab(chromium_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, root / notebook.name)  # the lab may save what it runs; never into the repo
    server = Lab(root, tmp_path_factory.mktemp("lab-home"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=["--disable-dev-shm-usage", "--disable-gpu"])
        yield chromium
        chromium.close()
