"""How fast EAGLE's head trains on this machine's CPU, with the target alongside, for the trainer's settings.

    python benchmarks/bench_train_speed.py [--threads 2] [--batches 3] [--out benchmarks/measured/train_speed_cpu.json]

One training step of ``models/smol/train.py`` (the frozen target's forward ``teach``, then the head's loss, backward
and AdamW step) on the same ShareGPT batches of ``BATCH_TOKENS`` padded tokens, side by side in one run, for:

  recipe       the settings the shipped weights trained with on a GPU, as a CPU runs them by default: the target
               in fp32, the law on |V'| = 32,768, 5 unrolled steps (training-time test);
  bf16         the target in bf16 and the head's matmuls under bf16 autocast (``--dtype bfloat16``);
  bf16, 16k    also the law on the 16,384 ids drafting reads (``--train-vocab 16384``);
  bf16, 16k, 3 also 3 unrolled steps (``--ttt-steps 3``, the short end of EAGLE-3's 3-7).

Each gives seconds per batch and training tokens per second (answer and prompt tokens alike: what the target
reads), and its speedup over ``recipe``. The first batch of each setting is a warm-up and is not timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_suite import cpu_flags  # noqa: E402
from provenance import provenance  # noqa: E402
from specdec_lab.models.smol import train  # noqa: E402
from specdec_lab.models.smol.sharegpt import default_dir, load_split  # noqa: E402
from specdec_lab.models.trained import SMOL_WEIGHTS, ranked_vocab  # noqa: E402

BATCH_TOKENS = 3072
SETTINGS = {  # name -> (target dtype, |V'| the law covers, unrolled steps)
    "recipe": ("float32", train.VOCAB_KEPT, train.TTT_STEPS),
    "bf16": ("bfloat16", train.VOCAB_KEPT, train.TTT_STEPS),
    "bf16, 16k": ("bfloat16", 16384, train.TTT_STEPS),
    "bf16, 16k, 3": ("bfloat16", 16384, 3),
}


def seconds_per_batch(dtype: str, vocab: torch.Tensor, steps: int, chunks: list) -> float:
    """Mean seconds of one training step over ``chunks[1:]`` (``chunks[0]`` warms up)."""
    target = train.load_target("smollm2", "cpu", dtype)
    target.requires_grad_(False)
    recipe = train.EagleRecipe(target, vocab)
    recipe.ttt_steps = steps
    recipe.load_weights(SMOL_WEIGHTS / "eagle")
    opt = torch.optim.AdamW(recipe.model.parameters())
    times = []
    for chunk in chunks:
        start = time.perf_counter()
        train.train_step(recipe, opt, train.teach(target, chunk, vocab, greedy=False), lr=1e-6)  # (any rate costs the same)
        times.append(time.perf_counter() - start)
    return sum(times[1:]) / len(times[1:])


def measure(threads: int, batches: int) -> dict:
    torch.set_num_threads(threads)
    rows = train.first_tokens(load_split(default_dir(), "train"), 200_000)
    chunks = train.batches(rows, BATCH_TOKENS, torch.Generator().manual_seed(train.SEED))[: batches + 1]
    tokens = sum(len(r[0]) for chunk in chunks[1:] for r in chunk) / batches
    ranked = ranked_vocab(SMOL_WEIGHTS)
    seconds = {name: round(seconds_per_batch(dtype, ranked[:k], steps, chunks), 2)
               for name, (dtype, k, steps) in SETTINGS.items()}
    return {"settings": {n: {"dtype": d, "law_vocab": k, "ttt_steps": s} for n, (d, k, s) in SETTINGS.items()},
            "threads": threads, "cpu_flags": cpu_flags(), "batch_tokens": round(tokens), "seconds_per_batch": seconds,
            "tokens_per_s": {n: round(tokens / s, 1) for n, s in seconds.items()},
            "speedup": {n: round(seconds["recipe"] / s, 2) for n, s in seconds.items()}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=3, help="timed batches per setting (after one warm-up)")
    ap.add_argument("--out", type=Path, default=HERE / "measured" / "train_speed_cpu.json")
    args = ap.parse_args(argv)
    result = {**provenance("bench_train_speed.py", argv), **measure(args.threads, args.batches)}
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
