"""How long one playground update takes, and whether memory grows over many updates.

    python benchmarks/bench_playground.py [--updates 30] [--new-tokens 48] [--threads 2]

Builds the latency playground on the zoo (synchronous mode, exactly the code the widget
runs on a slider change), then cycles γ, drafter, verifier and temperature through
``--updates`` changes, timing each from the widget change to the rendered HTML and
chart. A change of temperature or prompt also measures a new autoregressive baseline
(reported separately: those updates cost two generations). Resident memory (RSS) is
read after a warm-up and at the end; ``--updates 200`` is the memory check. Figures,
not assertions.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from pathlib import Path

import torch

from specdec_lab.models.loading import load_model
from specdec_lab.lab.viz.playground import Playground

CHANGES = [  # (widget attribute, value): γ and method changes reuse the baseline, temperature changes do not
    ("gamma", 2), ("gamma", 6), ("drafter", "prompt-lookup"), ("gamma", 4), ("drafter", "eagle"),
    ("verifier", "typical"), ("drafter", "distilled"), ("verifier", "speculative"), ("temperature", 0.8),
    ("gamma", 3), ("temperature", 0.0), ("drafter", "medusa"), ("verifier", "tree-greedy"), ("drafter", "distilled"),
    ("verifier", "speculative"),
]


def rss_mib() -> float:
    """Current resident set size of this process (Linux), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    target, tokenizer = load_model("zoo:target", "cpu")
    pg = Playground(target, tokenizer, prompt="ROMEO.\nBut soft, what light through yonder window breaks?\n",
                    max_new_tokens=args.new_tokens, background=False)
    for attr, value in CHANGES:  # warm-up: every method built once, every baseline measured once
        getattr(pg, attr).value = value
    rss_start = rss_mib()
    reuse, fresh = [], []
    for attr, value in itertools.islice(itertools.cycle(CHANGES), args.updates):
        widget = getattr(pg, attr)
        t0 = time.perf_counter()
        widget.value = value
        elapsed = time.perf_counter() - t0
        if pg.error:
            raise SystemExit(f"update {attr}={value!r} failed: {pg.error}")
        (fresh if attr == "temperature" else reuse).append(elapsed)
    pg.baselines.clear()  # temperature updates after the first cycle hit the cache; measure cold baselines too
    for value in (0.5, 0.0):
        t0 = time.perf_counter()
        pg.temperature.value = value
        fresh.append(time.perf_counter() - t0)
    rss_end = rss_mib()
    print(f"# playground update, {args.new_tokens} new tokens, zoo pair, {args.threads} threads, "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print(f"updates reusing the baseline: n = {len(reuse)}, median {1000 * statistics.median(reuse):.0f} ms, "
          f"max {1000 * max(reuse):.0f} ms")
    print(f"updates that also time a new baseline: n = {len(fresh)}, median {1000 * statistics.median(fresh):.0f} ms, "
          f"max {1000 * max(fresh):.0f} ms")
    print(f"memory: {rss_start:.0f} MiB after warm-up, {rss_end:.0f} MiB after {args.updates} more updates "
          f"({rss_end - rss_start:+.1f} MiB); {len(pg.runs)} runs kept for the chart")


if __name__ == "__main__":
    main()
