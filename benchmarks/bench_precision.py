"""Greedy speculative output vs the target's own greedy output, in float32 and in bfloat16: where do they part?

    python benchmarks/bench_precision.py [--prompts 8] [--new-tokens 96] [--write docs/precision.md]

For each held-out zoo prompt and each drafter, the target decodes greedily on its own (one token per
forward) and speculatively (γ + 1 tokens per verification forward), with ``reference=`` the former, so
``stats.diverged_at`` is the first position where the two outputs differ. Deterministic counts, not timings.
"""

from __future__ import annotations

import argparse
import platform
import warnings
from pathlib import Path

import torch
import transformers

from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.models.loading import load_model
from specdec_lab.bench.zoo_report import heldout_prompts

DRAFTERS = ("prompt-lookup", "distilled", "eagle")

EXPLANATION = """# Precision: why bf16 greedy speculative decoding can leave the target's greedy output

In float32, greedy speculative decoding gives exactly the target's own greedy output, token for token (the tests
check it for every drafter × verifier). In bfloat16 or float16 it may not, and that is expected behaviour, not a bug
in the acceptance rule:

- Autoregressive decoding scores each token in a forward over **one** new token; verification scores γ + 1 tokens
  in **one** forward. The matrix products add the same numbers in a different order (other kernel tiles, other
  reductions), and bf16 keeps only 8 bits of mantissa, so the logits differ in their last bits.
- Where two tokens are nearly tied, that rounding can flip the argmax. From there on the two outputs are different
  texts, each a valid greedy continuation of a model that is "the target up to rounding".
- The engine warns once per process when the target is not float32. Pass the target's own greedy output as
  `reference=` to `generate_speculative`, and `stats.diverged_at` gives the first position where the output left it
  (None: identical over the common length).

Use float32 when the lesson is exact equality (the workbook's tests do); use bf16 for speed on hardware that has
fast bf16 matrix units, and measure the divergence as below.
"""


def measure(prompts: int, new_tokens: int, gamma: int = 4) -> list[dict]:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="the target runs in")
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        target, tokenizer = load_model("zoo:target", "cpu", dtype=dtype)
        for d in DRAFTERS:
            drafter = build_drafter(d, target, tokenizer)
            positions = []
            for text in heldout_prompts(prompts):
                ids = tokenizer(text)["input_ids"]
                ref = generate_autoregressive(target, ids, max_new_tokens=new_tokens).token_ids
                out = generate_speculative(target, drafter, ids, gamma=gamma, max_new_tokens=new_tokens, reference=ref)
                positions.append(out.stats.diverged_at)
            rows.append({"dtype": str(dtype).removeprefix("torch."), "drafter": d, "prompts": len(positions),
                         "identical": sum(p is None for p in positions),
                         "first": sorted(p for p in positions if p is not None)})
    return rows


def to_markdown(rows: list[dict], new_tokens: int, gamma: int = 4) -> str:
    lines = [EXPLANATION, f"## Measured on the zoo target ({rows[0]['prompts']} held-out prompts, {new_tokens} new tokens, "
             f"greedy, γ = {gamma})", "",
             f"`python benchmarks/bench_precision.py --prompts {rows[0]['prompts']} --new-tokens {new_tokens} "
             f"--write docs/precision.md` (torch {torch.__version__}, transformers {transformers.__version__}, "
             f"{platform.machine()} CPU). Deterministic on one machine; other kernels round elsewhere.", "",
             "| dtype | drafter | outputs identical to the target's greedy | first divergence (new-token index) |",
             "|---|---|---|---|"]
    for r in rows:
        first = ", ".join(map(str, r["first"])) or "–"
        lines.append(f"| {r['dtype']} | {r['drafter']} | {r['identical']} of {r['prompts']} | {first} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--write", default=None, help="write the Markdown report here (e.g. docs/precision.md)")
    args = ap.parse_args()
    text = to_markdown(measure(args.prompts, args.new_tokens), args.new_tokens)
    print(text)
    if args.write:
        Path(args.write).write_text(text)


if __name__ == "__main__":
    main()
