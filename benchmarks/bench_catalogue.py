"""Every drafter × verifier of the registry on the zoo: acceptance, tokens per step, target calls, speed.

    python benchmarks/bench_catalogue.py [--prompts 4] [--new-tokens 64] [--gamma 4] [--write docs/catalogue.md]

For each temperature (0 and 1) and each combination the registry allows, the zoo target
decodes the same held-out prompts (half Shakespeare, half Python) to the same length; an
autoregressive run of the same prompt is timed right before each speculative run, and
``speed`` is the benchmark's (Spec-Bench's) ratio of mean tokens/s, measured side by side.
α = accepted / checked drafts (for trees: along the branch shown in the trace), τ = new
tokens per step (the target's own token included); see ``specdec_lab/bench/compare.py``. The greedy rules ignore the temperature (their
output is the target's greedy output), so they appear at T = 0 only. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
import transformers

from specdec_lab import DRAFTERS, VERIFIERS, generate_autoregressive
from specdec_lab.bench.report import write_section
from specdec_lab.bench.compare import measure, table_markdown
from specdec_lab.models.loading import load_model
from specdec_lab.bench.zoo_report import heldout_prompts


READING = """How to read it:
- α = accepted ÷ checked drafts; τ = new tokens per target forward step (its own token included); speed = Spec-Bench's
  ratio of mean tokens/s against autoregressive decoding of the same prompt, timed right before, on this machine.
- lossless "no" (typical, topk-tau) means the output law differs from the target's; the others are exact.
- At T = 1, drafters that pick their tokens deterministically (prompt lookup, lookahead, retrieval, and the top-k
  trees of EAGLE and Medusa) hand the verifier q = one_hot(x), so speculative sampling keeps x with probability p(x)
  instead of min(1, p(x)/q(x)): their α drops far below that of drafters that sample from their own q (small-model,
  distilled, linear EAGLE). Still exact, just slower.
- Speed below 1× with τ above 1: on a small CPU model the drafter's cost c and the verification of γ + 1 tokens are
  not free, so a few extra tokens per step do not pay for them (notebooks 3, 4 and 7 show the formula).
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--temperatures", default="0,1")
    ap.add_argument("--write", type=Path, default=None, help="also write the table as Markdown to this file")
    args = ap.parse_args()
    target, tokenizer = load_model("zoo:target", "cpu")
    texts = heldout_prompts()
    chosen = texts[: (args.prompts + 1) // 2] + texts[16 : 16 + args.prompts // 2]  # Shakespeare, then Python
    prompts = [tokenizer(t)["input_ids"] for t in chosen]
    generate_autoregressive(target, prompts[0], max_new_tokens=8)  # warm-up
    header = (f"zoo target on {platform.machine()} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
              f"transformers {transformers.__version__}; {len(prompts)} held-out prompts × {args.new_tokens} new tokens, "
              f"γ = {args.gamma}; trees: verifier default shape (2 candidates for the first token)")
    print("#", header)
    rows = []
    for temperature in (float(t) for t in args.temperatures.split(",")):
        for name, entry in DRAFTERS.items():
            for verifier, v_entry in VERIFIERS.items():
                if (v_entry.tree and not entry.branches) or (temperature > 0 and "greedy" in verifier):
                    continue  # greedy rules ignore the temperature: their T > 0 rows would repeat T = 0
                row = measure(target, tokenizer, name, verifier, prompts, args.gamma, args.new_tokens, temperature)
                rows.append(row)
                print(f"T={temperature:g} {name:24s} {verifier:18s} α={row['alpha']:.2f} τ={row['tau']:.2f} "
                      f"fwd/100={row['forwards_per_100']:.0f} speed={row['speed']:.2f}x", flush=True)
    md = table_markdown(rows)
    print(md)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        command = "python benchmarks/bench_catalogue.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)
        write_section(args.write, "zoo", f"## On the zoo (the 12 M-parameter toy)\n\n`{command}`\n\n{header}.\n\n{md}\n\n{READING}",
                      title="The catalogue, measured")


if __name__ == "__main__":
    main()
