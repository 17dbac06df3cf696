"""Block verification against token-level speculative sampling on SmolLM2, side by side, on Spec-Bench questions.

    python benchmarks/bench_block.py [--per-task 2] [--new-tokens 64] [--drafters distilled,eagle] \
        [--temperature 1.0] [--threads 2]

Questions: Spec-Bench's six task types (``bench_spec_bench.spec_bench_questions``, from ``../shared/data``), each
prompt through SmolLM2's chat template, bf16. For each drafter two measurements:

- **Timed, side by side** (``compare.measure_many``): per question our autoregressive loop, then speculative
  sampling, then block verification, same seed and settings. τ, α and the speedup over the loop, per rule.
  Each rule samples its own trajectory, so these carry sampling noise as well as timing noise.
- **Replayed on identical drafts** (``specdec_lab.lab.replay``): one speculative run per question keeps its p and q
  rows; every recorded step is verified again under both rules and each rule's EXACT expected accepted count is
  averaged over the steps. No sampling noise on the rules' side: the gap is the rules' own.

Result: ``benchmarks/measured/block_vs_token_smollm2.json`` (notebook 06 reads it). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from provenance import provenance  # noqa: E402
from specdec_lab import build_drafter, generate_speculative  # noqa: E402
from specdec_lab.bench.compare import measure_many  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.lab.replay import gains, mean_expected_accepted, replay  # noqa: E402
from specdec_lab.models.smollm2 import chat_ids  # noqa: E402

RESULT = HERE / "measured" / "block_vs_token_smollm2.json"
KEEP = ("drafter", "verifier", "T", "gamma", "alpha", "tau", "speed", "speed_low", "speed_high", "ms_per_token", "prompts")


def replayed_gain(target, tokenizer, drafter: str, prompts: list[list[int]], gamma: int, new_tokens: int,
                  temperature: float) -> dict:
    """Mean exact E[accepted] per step under speculative and block, on the drafts of speculative runs; and on how many
    steps block expects more, or fewer (the theorem holds over drafts, not per draft)."""
    built = build_drafter(drafter, target, tokenizer)
    replayed, per_step = [], []
    for seed, ids in enumerate(prompts):
        run = generate_speculative(target, built, ids, gamma=gamma, max_new_tokens=new_tokens, temperature=temperature,
                                   seed=seed, verifier="speculative", keep_rows=True)
        mine = replay(run, ["speculative", "block"], seed=seed)
        per_step += gains(mine)
        replayed += mine
    means = mean_expected_accepted(replayed)
    return {"steps": len(per_step), "expected_accepted": means,
            "block_minus_token": means["block"] - means["speculative"],
            "steps_block_ahead": sum(g > 1e-9 for g in per_step), "steps_block_behind": sum(g < -1e-9 for g in per_step)}


def summary_markdown(result: dict) -> str:
    """The result as a short Markdown table: per drafter, replayed E[accepted] and the timed τ and speed of each rule."""
    s = result["settings"]
    lines = [f"SmolLM2-135M-Instruct, {s['dtype']}, T = {s['temperature']:g}, γ = {s['gamma']}, {s['new_tokens']} new tokens, "
             f"{s['questions']} Spec-Bench questions ({s['per_task']} per task type), {result['machine']}.", "",
             "| drafter | E[accepted]/step, token-level (replayed) | block (replayed) | steps | τ token-level (timed) | τ block | "
             "speed token-level | speed block |", "|---|---|---|---|---|---|---|---|"]
    for d, entry in result["drafters"].items():
        r, t = entry["replay"], {row["verifier"]: row for row in entry["timed"]}
        lines.append(f"| {d} | {r['expected_accepted']['speculative']:.3f} | {r['expected_accepted']['block']:.3f} | {r['steps']} | "
                     f"{t['speculative']['tau']:.2f} | {t['block']['tau']:.2f} | {t['speculative']['speed']:.2f}× | {t['block']['speed']:.2f}× |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--per-task", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--drafters", default="distilled,eagle")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args(argv)
    if not args.questions.exists():
        raise SystemExit(f"error: no Spec-Bench question file at {args.questions} (it lives in ../shared/data)")
    torch.set_num_threads(args.threads)
    target, tokenizer = load_model("smollm2", None, torch.bfloat16)
    questions = spec_bench_questions(args.questions, args.per_task)
    prompts = [chat_ids(tokenizer, q.prompt) for q in questions]
    start = time.time()
    result = {"settings": {"dtype": "bfloat16", "temperature": args.temperature, "gamma": args.gamma,
                           "new_tokens": args.new_tokens, "per_task": args.per_task, "questions": len(questions),
                           "threads": args.threads},
              **provenance("bench_block.py", argv), "drafters": {}}
    for drafter in args.drafters.split(","):
        rows = measure_many(target, tokenizer, [(drafter, "speculative"), (drafter, "block")], prompts, args.gamma,
                            args.new_tokens, args.temperature)
        result["drafters"][drafter] = {
            "timed": [{k: row[k] for k in KEEP} for row in rows],
            "replay": replayed_gain(target, tokenizer, drafter, prompts, args.gamma, args.new_tokens, args.temperature)}
        print(json.dumps({drafter: result["drafters"][drafter]}, indent=1), flush=True)
    result["seconds"] = round(time.time() - start)
    result["load_after"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(summary_markdown(result))
    return result


if __name__ == "__main__":
    main()
