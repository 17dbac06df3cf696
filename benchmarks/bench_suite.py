"""How long do the test tiers take, and do they pass with every CPU kernel set? The stored figures behind the README.

    python benchmarks/bench_suite.py --tier check                       # make check's selection, default kernels
    python benchmarks/bench_suite.py --tier test --capability avx2      # everything, AVX2 kernels forced
    python benchmarks/bench_suite.py ... --write benchmarks/measured/test_suite_times.json   # add the run to the file

Each run is one pytest process over the tier's selection (the same arguments as ``make check`` / ``make test``),
timed as a whole, with ``ATEN_CPU_CAPABILITY`` set for 'avx2' (PyTorch then uses its AVX2 kernels on a CPU that has
AVX-512 or AMX: what a laptop or an older CI runner computes with). The result records pytest's closing line, the wall
time, the CPU's flags that matter and the load average before, so a figure from a busy machine is visible as such.
Tests never assert times; this file is where the tiers' budgets (check <= 3 min, test <= 15 min on 2 idle cores)
are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
TIERS = {  # the same selection as the Makefile's targets
    "check": ["-n", "2", "--dist", "worksteal", "-m", "not notebook and not browser and not stat", "tests"],
    "test": [],
}
BUDGET_S = {"check": 180, "test": 900}


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return sorted(set(flags) & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})


def run(tier: str, capability: str) -> dict:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability != "default":
        env["ATEN_CPU_CAPABILITY"] = capability
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *TIERS[tier]], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    failed = re.findall(r"^_{3,} (.+?) _{3,}$", done.stdout, flags=re.M)  # the failing tests' headers, if any
    return {"tier": tier, "capability": capability, "seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
            "budget_s": BUDGET_S[tier], "within_budget": seconds <= BUDGET_S[tier], "exit_code": done.returncode,
            "pytest_summary": lines[-1].strip("= ") if lines else done.stdout[-500:], "failed": failed}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="check")
    parser.add_argument("--capability", default="default", help="'default' (what the CPU has) or an ATEN_CPU_CAPABILITY value")
    parser.add_argument("--write", type=Path, help="append the result to this JSON file (a list of runs)")
    args = parser.parse_args(argv)
    result = {**provenance("bench_suite.py", argv), "cpu_flags": cpu_flags(), **run(args.tier, args.capability)}
    print(json.dumps(result, indent=1))
    if args.write:
        runs = json.loads(args.write.read_text()) if args.write.exists() else []
        args.write.write_text(json.dumps(runs + [result], indent=1, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
