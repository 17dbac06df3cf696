"""The command line of the small SmolLM2 benchmarks: measure on ``--per-task`` Spec-Bench questions of each task type,
print the result, and store it as one JSON file (``--out``, under benchmarks/measured by default)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def measure_and_store(doc: str, default_out: Path, measure: Callable[[int, int], dict], argv=None) -> dict:
    """Parse --per-task, --threads and --out; ``measure(per_task, threads)``; write its result to --out."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-task", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=default_out)
    args = ap.parse_args(argv)
    result = measure(args.per_task, args.threads)
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result
