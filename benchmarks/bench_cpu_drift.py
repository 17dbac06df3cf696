"""How far do the golden traces' probabilities move between CPU kernels? The measurement behind the tests' tolerance.

    python benchmarks/bench_cpu_drift.py [--write benchmarks/measured/golden_cpu_drift.json]

PyTorch picks its CPU kernels at start-up (AVX-512, AVX2, ...); ``ATEN_CPU_CAPABILITY=avx2`` forces the AVX2 ones on a
CPU that has more. The same fp32 forward then adds its products in another order, and every logit moves in its last
bits. This script records the golden grid (tests/golden/record.py: every drafter x verifier on the zoo, T = 0 and 1)
once per capability in a fresh process, and reports, over every probability the traces hold (p, q, a, the tree's
accept probabilities and the top-at-stop rows), the largest relative difference, and whether any token, decision or
count differs (it must not: the tests compare those exactly). The golden test's REL_TOL is set from this figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
CAPABILITIES = ("default", "avx2")


def record(capability: str) -> dict:
    """The golden grid recorded in a fresh process whose kernels are ``capability`` ('default': what the CPU has)."""
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability != "default":
        env["ATEN_CPU_CAPABILITY"] = capability
    code = ("import json, sys; sys.path.insert(0, 'tests/golden'); import record; "
            "print(json.dumps(record.record_all(), ensure_ascii=False))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def drift(a, b, found: dict) -> None:
    """Walk two recordings side by side: the largest relative float difference, and every non-float difference."""
    if isinstance(a, dict) and isinstance(b, dict) and sorted(a) == sorted(b):
        for k in a:
            drift(a[k], b[k], found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for x, y in zip(a, b):
            drift(x, y, found)
    elif isinstance(a, str) and isinstance(b, str) and a != b:
        try:
            x, y = float(a), float(b)
        except ValueError:
            found["exact_differences"] += 1
            return
        rel = abs(x - y) / max(abs(x), abs(y), 1e-30)
        found["max_relative"] = max(found["max_relative"], rel)
        found["floats_differing"] += 1
    elif a != b:
        found["exact_differences"] += 1


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="store the result as JSON here")
    args = parser.parse_args(argv)
    runs = {c: record(c) for c in CAPABILITIES}
    found = {"max_relative": 0.0, "floats_differing": 0, "exact_differences": 0}
    drift(runs["default"], runs["avx2"], found)
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    result = {**provenance("bench_cpu_drift.py", argv), "capabilities": list(CAPABILITIES),
              "cpu_bf16_or_avx512": sorted(set(flags) & {"avx512f", "avx512_bf16", "amx_bf16"}),
              "traces": len(runs["default"]), **found,
              "float32_epsilon": 2.0 ** -23, "max_relative_in_epsilons": found["max_relative"] / 2.0 ** -23}
    print(json.dumps(result, indent=1))
    if args.write:
        args.write.write_text(json.dumps(result, indent=1) + "\n")
    if found["exact_differences"] or not math.isfinite(found["max_relative"]):
        sys.exit("tokens, decisions or counts differ between CPU kernels: the golden test's exact fields would fail")
    return result


if __name__ == "__main__":
    main()
