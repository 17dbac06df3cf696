"""Keep the notebooks clean in git, and refresh the outputs nbval checks.

    python tools/notebooks.py clean   [NOTEBOOK ...]   # strip: outputs only in '# NBVAL_CHECK_OUTPUT' cells
    python tools/notebooks.py execute [NOTEBOOK ...]   # run top to bottom (kernel python3), then clean
    python tools/notebooks.py check   [NOTEBOOK ...]   # exit 1 if any notebook is not clean (what the tests assert)
    python tools/notebooks.py blank   [NOTEBOOK ...]   # rewrite each exercise cell from its solution, bodies cut out
    python tools/notebooks.py solved DIR [NOTEBOOK ...] # write copies with the solutions filled in (for a teacher)

Clean means: kernel ``python3``; no widget state; no execution counts (a checked cell gets its position, as
nbval skips cells it thinks unrun); no cell metadata but
``tags``; code cells without outputs, except cells marked ``# NBVAL_CHECK_OUTPUT``, which
keep their stdout / results (never stderr, which nbval-lax does not compare reliably).
Small diffs follow: a re-run changes only the checked outputs that really changed.
Default: every notebook under notebooks/.

Exercises: a code cell tagged ``exercise`` starts with ``# Exercise "NAME"`` and holds the functions the learner
writes. Its solution is ``notebooks/solutions/NAME.py``, the one place answers live; the notebook ships
``blank(solution)``: every function body cut to its docstring and ``...``.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"
SOLUTIONS = ROOT / "notebooks" / "solutions"
EXERCISE_HEADER = re.compile(r'^# Exercise "([\w-]+)"')
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def clean(nb: dict) -> dict:
    nb["metadata"] = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    for number, cell in enumerate(nb["cells"], start=1):
        tags = cell.get("metadata", {}).get("tags")
        cell["metadata"] = {"tags": tags} if tags else {}
        cell.pop("id", None)
        if cell["cell_type"] != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        checked = MARK in "".join(cell["source"])
        # nbval skips a checked cell whose execution count is null ("unrun"): number it by its position
        cell["execution_count"] = number if checked else None
        cell["outputs"] = [_strip(o, number) for o in cell.get("outputs", []) if _keep(o)] if checked else []
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return nb


def _keep(output: dict) -> bool:
    return not (output["output_type"] == "stream" and output.get("name") == "stderr")


def _strip(output: dict, number: int) -> dict:
    output = {k: v for k, v in output.items() if k != "transient"}
    if output["output_type"] == "execute_result":
        output["execution_count"] = number
    if "metadata" in output:
        output["metadata"] = {}
    return output


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def execute(path: Path) -> dict:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return json.loads(nbformat.writes(nb))


def exercise_cells(nb: dict) -> list[tuple[int, str]]:
    """(cell index, exercise name) of every code cell tagged ``exercise``."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and "exercise" in cell.get("metadata", {}).get("tags", []):
            header = EXERCISE_HEADER.match("".join(cell["source"]))
            if not header:
                raise ValueError(f"exercise cell {index} does not start with '# Exercise \"NAME\"'")
            found.append((index, header.group(1)))
    return found


def solution(name: str) -> str:
    return (SOLUTIONS / f"{name}.py").read_text(encoding="utf-8")


def blank(source: str) -> str:
    """The exercise as shipped: each top-level function's body (after its docstring) replaced by ``...``."""
    lines = source.splitlines()
    functions = [node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)]
    for fn in reversed(functions):  # bottom up, so earlier line numbers stay valid
        first = fn.body[0]
        has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
        keep_to = first.end_lineno if has_doc else fn.body[0].lineno - 1  # 1-based, inclusive
        indent = " " * fn.body[0].col_offset
        lines[keep_to:fn.end_lineno] = [f"{indent}...  # your code here"]
    return "\n".join(lines) + "\n"


def with_exercises(nb: dict, solved: bool) -> dict:
    """nb with every exercise cell set to its blank (as shipped) or to its solution."""
    for index, name in exercise_cells(nb):
        text = solution(name) if solved else blank(solution(name))
        nb["cells"][index]["source"] = text.rstrip("\n").splitlines(keepends=True)
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["clean", "execute", "check", "blank", "solved"])
    ap.add_argument("notebooks", nargs="*", type=Path)
    args = ap.parse_args(argv)
    if args.command == "solved":
        if not args.notebooks:
            ap.error("solved needs a folder to write the solved copies to")
        out, *paths = args.notebooks
        out.mkdir(parents=True, exist_ok=True)
        for path in paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
            nb = with_exercises(json.loads(path.read_text(encoding="utf-8")), solved=True)
            (out / path.name).write_text(dumps(clean(nb)), encoding="utf-8")
            print(f"solved: {out / path.name}")
        return 0
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = execute(path) if args.command == "execute" else json.loads(path.read_text(encoding="utf-8"))
        if args.command == "blank":
            nb = with_exercises(nb, solved=False)
        text = dumps(clean(nb))
        if args.command == "check":
            if text != path.read_text(encoding="utf-8"):
                dirty.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{args.command}: {path}")
    for path in dirty:
        print(f"not clean: {path} (run: python tools/notebooks.py clean {path})", file=sys.stderr)
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main())
