"""Greedy speedup of every bundled drafter over the autoregressive baseline, at each drafter's best γ.

    python benchmarks/bench_zoo.py [--new-tokens 128] [--prompts 6] [--gammas 1,2,3,4,5,6] [--drafters drafter-distilled]

All runs decode the zoo's held-out prompts (Shakespeare and Python) to the same length,
greedy. For each drafter and γ the speculative run and a baseline run alternate prompt by
prompt, so both see the same machine state; the speedup is the ratio of their total times
(Spec-Bench's definition on equal token counts). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import transformers

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.models.loading import load_model
from specdec_lab.bench.zoo_report import drafters, heldout_prompts


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--gammas", default="1,2,3,4,5,6")
    ap.add_argument("--drafters", default=None, help="comma-separated subset of the zoo's drafters (default: all)")
    args = ap.parse_args()
    target, tokenizer = load_model("zoo:target", "cpu")
    prompts = heldout_prompts()
    # half Shakespeare, half Python: the file lists 16 Shakespeare prompts, then 8 Python ones
    chosen = prompts[: (args.prompts + 1) // 2] + prompts[16 : 16 + args.prompts // 2]
    ids = [tokenizer(p)["input_ids"] for p in chosen]
    n = args.new_tokens
    gammas = [int(g) for g in args.gammas.split(",")]
    base = lambda p: generate_autoregressive(target, p, max_new_tokens=n, min_new_tokens=n)  # noqa: E731
    base(ids[0])
    print(f"# zoo benchmark: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"transformers {transformers.__version__}; {len(ids)} held-out prompts x {n} new tokens, greedy")
    print(f"{'drafter':20s} {'γ':>3s} {'α':>5s} {'τ':>5s} {'ms/token':>9s} {'AR ms/token':>12s} {'speedup':>8s}")
    chosen_drafters = drafters(target)
    if args.drafters:
        chosen_drafters = {name: chosen_drafters[name] for name in args.drafters.split(",")}
    for name, drafter in chosen_drafters.items():
        best = None
        for gamma in gammas:
            spec = lambda p: generate_speculative(target, drafter, p, gamma=gamma, max_new_tokens=n, min_new_tokens=n)  # noqa: E731
            spec(ids[0])
            t_spec = t_base = 0.0
            accepted = drafted = steps = 0
            for p in ids:
                t_base += seconds(lambda: base(p))
                start = time.perf_counter()
                out = spec(p)
                t_spec += time.perf_counter() - start
                accepted, drafted, steps = accepted + out.stats.accepted, drafted + out.stats.drafted, steps + out.stats.steps
            row = (t_base / t_spec, gamma, accepted / drafted, len(ids) * n / steps, 1000 * t_spec / (len(ids) * n), 1000 * t_base / (len(ids) * n))
            print(f"{name:20s} {gamma:3d} {row[2]:5.2f} {row[3]:5.2f} {row[4]:9.2f} {row[5]:12.2f} {row[0]:7.2f}x")
            best = max(best or row, row)
        print(f"{name:20s} best γ = {best[1]}: {best[0]:.2f}x over the autoregressive baseline")


if __name__ == "__main__":
    main()
