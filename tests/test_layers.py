"""The package's layers, checked from its imports: each layer imports only those below it, and no module imports
itself back through others (no circles).

    core (1)  <  verifiers, drafters (2, peers that do not import each other)  <  models (3)  <  decode, registry (4)
              <  bench (5)  <  lab (6)  <  cli, __init__ (7)

Every import of a ``specdec_lab`` module counts, also those inside functions (a late import is still an arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import specdec_lab

PACKAGE = Path(specdec_lab.__file__).resolve().parent
LAYER = {"core": 1, "verifiers": 2, "drafters": 2, "models": 3, "decode": 4, "registry": 4, "bench": 5, "lab": 6,
         "cli": 7, "__init__": 7}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imports(path: Path) -> set[str]:
    """The specdec_lab modules a file imports (dotted, relative to the package; a name imported from a package
    counts as the submodule when one of that name exists)."""
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
            elif (node.module or "").startswith("specdec_lab"):
                base = []
            else:
                continue
            module = (node.module or "").removeprefix("specdec_lab").lstrip(".")
            target = ".".join(base + ([module] if module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}".lstrip(".")
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("specdec_lab.") for a in node.names if a.name.startswith("specdec_lab.")}
    return {m for m in found if m}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> tuple[int, str]:
    top = module.split(".")[0] or "__init__"
    assert top in LAYER, f"{module}: a top-level module or folder with no layer; add it to LAYER and the README"
    return LAYER[top], top


def test_every_import_goes_down_or_stays_in_its_own_folder():
    upward = []
    for module, targets in graph().items():
        (mine, home) = layer_of(module)
        for target in targets:
            (theirs, there) = layer_of(target)
            if there != home and theirs >= mine:
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_no_circles():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError(f"import circle: {' -> '.join(path + [node, nxt])}")
            if nxt in edges and not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for start in sorted(edges):
        if not state.get(start):
            visit(start, [])


def test_the_check_sees_imports():
    """The checker itself: decode's imports are found, and an upward import would be named."""
    found = imports(PACKAGE / "decode.py")
    assert {"core.checks", "core.config", "core.lm", "verifiers", "drafters.adapt"} <= found
    assert "registry" not in found  # the engine sits below the catalogue
    assert layer_of("core.types") < layer_of("decode") < layer_of("bench.runner")
