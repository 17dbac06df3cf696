"""How far do the drafters that need no training go on SmolLM2: does drafting deeper, or a tree, lift τ?

    python benchmarks/bench_lookup_shapes.py [--per-task 2] [--out benchmarks/measured/lookup_shapes_smollm2.json]

``lookup+retrieval`` (prompt lookup, then SmolLM2's own answers) on Spec-Bench questions (greedy, 128 new tokens,
bf16), side by side with our autoregressive loop on each question, drafting

  chain γ        one continuation of γ tokens, greedy verification (γ = 4, 6, 8);
  tree w×d       up to w continuations, d deep, merged into a trie and verified in one forward (tree-greedy:
                 w candidates for the first token, each followed by its most frequent branch).

Each shape's τ (new tokens per target forward) and step cost s (seconds per step ÷ our loop's seconds per token) give
its speedup τ / s. The issue's goal is 1.3× transformers' best method, whose speedup is read from the stored γ-4 side
run (``spec_bench_smollm2_bf16_lookup4.json``); ``tau_needed`` = that goal × s is the τ a shape would need, at its
measured cost, to meet it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from specdec_lab.bench.spec_bench import GOAL_OVER_TRANSFORMERS, goals  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.registry import build_drafter  # noqa: E402
from specdec_lab.verifiers.tree import TreeGreedy  # noqa: E402
from smol_bench import measure_and_store, side_by_side  # noqa: E402

SIDE_RUN = HERE / "measured" / "spec_bench_smollm2_bf16_lookup4.json"
CHAINS = (4, 6, 8)
TREES = ((2, 4), (3, 4), (3, 6), (2, 8))  # (w, d)


def measure(per_task: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    questions = spec_bench_questions(QUESTIONS, per_task)
    target, tokenizer = load_model("smollm2", None, torch.bfloat16)
    drafter = build_drafter("lookup+retrieval", target, tokenizer)
    runs = {f"chain γ {g}": (drafter, g, None) for g in CHAINS}
    runs |= {f"tree {w}×{d}": (drafter, d, TreeGreedy(width=w)) for w, d in TREES}
    result = side_by_side(target, tokenizer, questions, runs)
    stored = goals(json.loads(SIDE_RUN.read_text(encoding="utf-8")))
    goal = GOAL_OVER_TRANSFORMERS * stored["hf_speedup"]
    return {**result, "drafter": "lookup+retrieval",
            "goal": {"transformers_best": stored["best_hf"], "its_speedup": round(stored["hf_speedup"], 3),
                     "speedup_needed": round(goal, 3), "from": SIDE_RUN.name},
            "tau_needed": {n: round(goal * s, 2) for n, s in result["step_cost"].items()}}


def main(argv=None) -> dict:
    return measure_and_store(__doc__, HERE / "measured" / "lookup_shapes_smollm2.json", measure, argv)


if __name__ == "__main__":
    main()
