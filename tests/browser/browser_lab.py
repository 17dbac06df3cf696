"""A JupyterLab server on 127.0.0.1 for the browser tests, and where to find Chromium.

Screenshots, the browser console and the server's log go to ``test-artifacts/browser`` (or ``$SPECDEC_LAB_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SPECDEC_LAB_ARTIFACTS", REPO / "test-artifacts")) / "browser"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """``$SPECDEC_LAB_CHROMIUM``, else the first Chromium on PATH (Debian installs /usr/bin/chromium)."""
    named = os.environ.get("SPECDEC_LAB_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(settings_dir: Path) -> None:
    """User settings for a quiet, fully rendered lab: every cell in the DOM, no news or update checks."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, value in files.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


class Lab:
    """A JupyterLab server serving a copy of ``notebooks/``; ``url(path)`` opens a notebook with the token."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        settings = home / "settings"
        lab_settings(settings)
        env = os.environ | {
            "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_CONFIG_DIR": str(home / "config"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        args = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}", "--LabApp.news_url=None"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")  # CI machines run as root
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / "jupyterlab.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=root)
        self.wait_ready()

    def url(self, path: str = "", query: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}{query}"

    def notebook_url(self, notebook: str) -> str:
        """``notebook`` alone in a fresh workspace (no tabs restored from an earlier test)."""
        return self.url(f"lab/workspaces/{Path(notebook).stem}/tree/{notebook}", "&reset")

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout_s:.0f} s; see {self.log_path}")

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(self.url(f"api/{path}"), method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_kernel_ready(self, notebook: str, timeout_s: float = 120) -> None:
        """Wait until ``notebook``'s kernel is idle with the browser connected (the page says idle too early)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            kernels = [s["kernel"] for s in self.api("sessions") if s["path"] == notebook]
            if any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{notebook}'s kernel was not idle and connected within {timeout_s:.0f} s; see {self.log_path}")

    def shutdown_kernels(self) -> None:
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
