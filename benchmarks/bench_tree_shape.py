"""The tree-shape optimiser on SmolLM2 with its EAGLE head: fit acceptance by depth and rank, choose, predict, run.

    python benchmarks/bench_tree_shape.py [--budgets 4,8,16] [--new-tokens 48] [--per-task 1] [--threads 2]

1. **Fit**: greedy tree verification (``tree-greedy``) with a wide tree (``--fit-branching``, default 4,3,2,2) on
   Spec-Bench questions (one per task type, ``bench_spec_bench.spec_bench_questions``), bf16; count how often the
   rank-r candidate at depth d is accepted when its parent was (``tree_shape.acceptance_by_rank``).
2. **Choose and predict**: for each node budget N, the branching vector with the largest predicted E[τ]
   (``tree_shape.best_branching``).
3. **Run**: that tree on DIFFERENT questions (the next one of each task type), and compare the measured tokens per
   step with the prediction. The goal: within 10%. Also the prediction from the run's own counts (same formula,
   acceptance counted on the test runs): its error is the model's (the positional assumption, the shorter trees of
   a run's last steps), the rest is the shift between the two sets of questions.

Result: ``benchmarks/measured/tree_shape_smollm2.json``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from provenance import provenance  # noqa: E402
from specdec_lab import build_drafter, generate_speculative  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.models.smollm2 import chat_ids  # noqa: E402
from specdec_lab.verifiers.tree_shape import acceptance_by_rank, best_branching, predicted_tau, rates, tree_nodes  # noqa: E402
from specdec_lab.verifiers.tree import TreeGreedy  # noqa: E402

RESULT = HERE / "measured" / "tree_shape_smollm2.json"


def run_all(target, drafter, prompts, branching, new_tokens):
    return [generate_speculative(target, drafter, ids, gamma=len(branching), max_new_tokens=new_tokens,
                                 verifier=TreeGreedy(branching=branching)) for ids in prompts]


def measured_tau(runs) -> float:
    """Tokens per step over the tree steps (steps with a tree; the last token of a run has none)."""
    steps = [s for r in runs for s in r.steps if s.tree is not None and s.tree["tokens"]]
    return sum(len(s.emitted) for s in steps) / len(steps)


def summary_markdown(result: dict) -> str:
    lines = [f"SmolLM2-135M-Instruct + EAGLE head, greedy tree verification, {result['settings']['new_tokens']} new tokens; "
             f"fitted on {result['settings']['fit_questions']} questions with branching {tuple(result['fit_branching'])}, "
             f"run on {result['settings']['test_questions']} others.", "",
             "| node budget | chosen branching | nodes | predicted τ | measured τ | error | prediction from the run's own counts | its error |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["budgets"]:
        lines.append(f"| {r['budget']} | {tuple(r['branching'])} | {r['nodes']} | {r['predicted_tau']:.3f} | "
                     f"{r['measured_tau']:.3f} | {100 * r['relative_error']:+.1f}% | {r['in_sample_predicted_tau']:.3f} | "
                     f"{100 * r['in_sample_error']:+.1f}% |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--budgets", default="4,8,16")
    ap.add_argument("--fit-branching", default="4,3,2,2")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--per-task", type=int, default=1, help="questions per task type, for the fit and again for the run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args(argv)
    if not args.questions.exists():
        raise SystemExit(f"error: no Spec-Bench question file at {args.questions} (it lives in ../shared/data)")
    torch.set_num_threads(args.threads)
    target, tokenizer = load_model("smollm2", None, torch.bfloat16)
    drafter = build_drafter("eagle", target, tokenizer)
    questions = spec_bench_questions(args.questions, 2 * args.per_task)
    half = len(questions) // 2  # round-robin order: the first half has per_task of each type, the second the next ones
    fit_prompts = [chat_ids(tokenizer, q.prompt) for q in questions[:half]]
    test_prompts = [chat_ids(tokenizer, q.prompt) for q in questions[half:]]
    fit_branching = tuple(int(b) for b in args.fit_branching.split(","))
    counts = acceptance_by_rank(run_all(target, drafter, fit_prompts, fit_branching, args.new_tokens))
    a = rates(counts)
    result = {"settings": {"new_tokens": args.new_tokens, "fit_questions": len(fit_prompts), "test_questions": len(test_prompts),
                           "dtype": "bfloat16", "threads": args.threads},
              **provenance("bench_tree_shape.py", argv), "fit_branching": fit_branching, "acceptance": {f"{d},{r}": [acc, tried] for (d, r), (acc, tried) in counts.items()},
              "budgets": []}
    for budget in (int(b) for b in args.budgets.split(",")):
        branching, predicted = best_branching(a, budget)
        runs = run_all(target, drafter, test_prompts, branching, args.new_tokens)
        tau = measured_tau(runs)
        in_sample = predicted_tau(branching, rates(acceptance_by_rank(runs)))  # the model's own error, without the shift
        result["budgets"].append({"budget": budget, "branching": branching, "nodes": tree_nodes(branching),
                                  "predicted_tau": predicted, "measured_tau": tau, "relative_error": (predicted - tau) / tau,
                                  "in_sample_predicted_tau": in_sample, "in_sample_error": (in_sample - tau) / tau})
        print(result["budgets"][-1], flush=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(summary_markdown(result))
    return result


if __name__ == "__main__":
    main()
