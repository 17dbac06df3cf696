"""How long each notebook takes, run top to bottom as shipped, and the runtime line each notebook prints from it.

    python benchmarks/bench_notebooks.py [NOTEBOOK ...] [--write]

Runs each notebook in a fresh kernel (nbclient, as nbval does) and records its wall time, the machine and the load
average before and after: a busy machine makes the figures meaningless, so they are stored with it.
Results go to ``benchmarks/measured/notebook_runtimes.json`` (merged by notebook name); ``--write`` also rewrites the
``**Runtime:**`` line of each notebook from that file (``runtime_line``), which a test compares.
Goals (issue "Curriculum v2"): each notebook ≤ 90 s on 2 idle cores, all of them ≤ 12 min. Not a test: timings
are never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "measured" / "notebook_runtimes.json"
RUNTIME = re.compile(r"^\*\*Runtime:\*\*.*?(?=\n\n|\Z)", re.M | re.S)
GOAL_EACH_S, GOAL_ALL_S = 90, 12 * 60


def runtime_line(seconds: float, machine: str) -> str:
    """The notebook's runtime sentence, from the measured seconds (rounded up to 5 s)."""
    rounded = max(5, 5 * -(-int(round(seconds)) // 5))
    return (f"**Runtime:** about {rounded} seconds, measured on {machine} by `python benchmarks/bench_notebooks.py` "
            "(a busy machine takes longer).")


def run_one(path: Path) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def machine() -> str:
    return f"{os.cpu_count()} CPU cores ({platform.machine()})"


def write_runtime_lines(result: dict) -> list[Path]:
    sys.path.insert(0, str(ROOT / "tools"))
    from notebooks import clean, dumps

    changed = []
    for name, entry in result["notebooks"].items():
        path = ROOT / "notebooks" / name
        nb = json.loads(path.read_text(encoding="utf-8"))
        first = "".join(nb["cells"][0]["source"])
        new = RUNTIME.sub(runtime_line(entry["seconds"], result["machine"]), first, count=1)
        if new != first:
            nb["cells"][0]["source"] = new.splitlines(keepends=True)
            path.write_text(dumps(clean(nb)), encoding="utf-8")
            changed.append(path)
    return changed


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--write", action="store_true", help="rewrite each notebook's runtime line from the result")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {"notebooks": {}}
    result["machine"] = machine()
    for path in paths:
        load_before = os.getloadavg()[0]
        seconds = run_one(path)
        entry = {"seconds": round(seconds, 1), "load_before": round(load_before, 2),
                 "load_after": round(os.getloadavg()[0], 2), "date": datetime.date.today().isoformat()}
        result["notebooks"][path.name] = entry
        flag = "" if seconds <= GOAL_EACH_S else f"  (goal ≤ {GOAL_EACH_S} s)"
        print(f"{path.name:40s} {seconds:6.1f} s  load {entry['load_before']:.2f} → {entry['load_after']:.2f}{flag}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    total = sum(e["seconds"] for e in result["notebooks"].values())
    print(f"all {len(result['notebooks'])} notebooks: {total:.0f} s (goal ≤ {GOAL_ALL_S} s)")
    if args.write:
        for path in write_runtime_lines(result):
            print(f"runtime line rewritten: {path.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
