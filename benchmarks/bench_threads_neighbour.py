"""Notebook 00 run through nbval with and without one CPU-bound neighbour, before (2 torch threads, torch's default on
2 cores) and after (the workbook's own choice, specdec_lab/lab/threads.py: 1 thread on 2 cores).

    python benchmarks/bench_threads_neighbour.py [--notebook notebooks/00_start_here.ipynb] [--out FILE]

The neighbour is one Python process spinning on a core (``while True: pass``). Each cell of the 2 x 2 grid is one
run, wall seconds; the load average before each run is stored beside it. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(notebook: str, threads: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SPECDEC_LAB_THREADS")}
    if threads is not None:
        env["SPECDEC_LAB_THREADS"] = threads
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", notebook], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notebook", default="notebooks/00_start_here.ipynb")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "measured" / "threads_neighbour.json")
    args = ap.parse_args(argv)
    result = provenance("bench_threads_neighbour.py", argv) | {"notebook": args.notebook, "runs": []}
    for neighbour in (False, True):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if neighbour else None
        try:
            for label, threads in (("before: 2 threads", "2"), ("after: the workbook's choice", None)):
                load = os.getloadavg()[0]
                seconds = run_notebook(args.notebook, threads)
                result["runs"].append({"threads": label, "neighbour": neighbour, "seconds": round(seconds, 1),
                                       "load_before": round(load, 2)})
                print(result["runs"][-1], flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"stored in {args.out}")


if __name__ == "__main__":
    main()
