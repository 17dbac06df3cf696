"""Which datastore makes retrieval pay on SmolLM2: the target's own answers, or more human-written text?

    python benchmarks/bench_datastore.py [--per-task 2] [--out benchmarks/measured/datastore_smollm2.json]

On Spec-Bench questions (greedy, γ 4, 128 new tokens, bf16), side by side with our autoregressive loop on each
question: prompt lookup alone, and ``lookup+retrieval`` (prompt lookup, then REST where it finds no match) with

  own         the shipped datastore: SmolLM2's own greedy answers (``weights/retrieval_answers.json.gz``,
              ``python -m specdec_lab.models.smol.selfdistill --sharegpt 2500 --dtype bfloat16 --batch 32``);
  sharegpt    ShareGPT's answers (ChatGPT's text, from ``sharegpt.py``'s training shards), as many tokens as ``own``;
  sharegpt×4  four times as many.

Reported per datastore: τ (tokens per target forward, the bonus token counted), the share of steps that drafted
nothing, and the speedup over our loop (ratio of summed times). If ``own`` beats ``sharegpt`` at equal size, what
retrieval needs is the target's phrasing, not more text.
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

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from specdec_lab.decode import generate_autoregressive, generate_speculative  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.models.smol.sharegpt import default_dir, load_split  # noqa: E402
from specdec_lab.models.smollm2 import chat_ids  # noqa: E402
from specdec_lab.models.trained import retrieval_datastore  # noqa: E402
from specdec_lab.registry import build_drafter  # noqa: E402

GAMMA, NEW_TOKENS = 4, 128


def sharegpt_answers(tokens: int, folder: Path) -> list[list[int]]:
    """ShareGPT's answer spans (training split), in file order, until ``tokens`` answer tokens."""
    docs, total = [], 0
    for ids, answer in load_split(folder, "train"):
        edges = torch.diff(torch.tensor([0, *answer.astype(int), 0])).nonzero().flatten().tolist()
        for begin, end in zip(edges[::2], edges[1::2]):
            docs.append(ids[begin:end].tolist())
            total += end - begin
            if total >= tokens:
                return docs
    raise SystemExit(f"only {total} ShareGPT answer tokens in {folder}: run python -m specdec_lab.models.smol.sharegpt")


def side_by_side(target, tokenizer, questions, runs: dict, threads: int) -> dict:
    """Time our autoregressive loop and each run (name -> (drafter, γ, verifier or None)) on every question, in turn.

    Returns per run τ (new tokens per target forward, the bonus counted), the share of steps that drafted nothing,
    the speedup over our loop (ratio of summed times) and the step cost s (seconds per step ÷ the loop's seconds per
    token, so speedup = τ / s)."""
    seconds = {name: 0.0 for name in ["autoregressive", *runs]}
    steps, empty = {name: 0 for name in runs}, {name: 0 for name in runs}
    generate_autoregressive(target, chat_ids(tokenizer, questions[0].prompt), max_new_tokens=4)  # warm-up
    for q in questions:
        ids = chat_ids(tokenizer, q.prompt)
        start = time.perf_counter()
        generate_autoregressive(target, ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
        seconds["autoregressive"] += time.perf_counter() - start
        for name, (drafter, gamma, verifier) in runs.items():
            start = time.perf_counter()
            run = generate_speculative(target, drafter, ids, gamma=gamma, max_new_tokens=NEW_TOKENS,
                                       min_new_tokens=NEW_TOKENS, verifier=verifier)
            seconds[name] += time.perf_counter() - start
            steps[name] += len(run.steps)
            empty[name] += sum(not s.draft for s in run.steps)
        print(q.task, {n: steps[n] for n in runs}, flush=True)
    tokens = len(questions) * NEW_TOKENS
    ar_per_token = seconds["autoregressive"] / tokens
    return {"questions": len(questions), "new_tokens": NEW_TOKENS, "dtype": str(target.dtype).removeprefix("torch."),
            "threads": threads,
            "tau": {n: round(tokens / steps[n], 3) for n in runs},
            "empty_step_share": {n: round(empty[n] / steps[n], 3) for n in runs},
            "speedup": {n: round(seconds["autoregressive"] / seconds[n], 3) for n in runs},
            "step_cost": {n: round(seconds[n] / steps[n] / ar_per_token, 3) for n in runs}}


def measure(per_task: int, threads: int, shards: Path) -> dict:
    torch.set_num_threads(threads)
    questions = spec_bench_questions(QUESTIONS, per_task)
    target, tokenizer = load_model("smollm2", None, torch.bfloat16)
    own = retrieval_datastore()
    size = sum(map(len, own))
    drafters = {"prompt lookup alone": build_drafter("prompt-lookup", target, tokenizer),
                "own": build_drafter("lookup+retrieval", target, tokenizer, datastore_ids=own),
                "sharegpt": build_drafter("lookup+retrieval", target, tokenizer, datastore_ids=sharegpt_answers(size, shards)),
                "sharegpt×4": build_drafter("lookup+retrieval", target, tokenizer,
                                            datastore_ids=sharegpt_answers(4 * size, shards))}
    result = side_by_side(target, tokenizer, questions, {n: (d, GAMMA, None) for n, d in drafters.items()}, threads)
    return {"gamma": GAMMA, "own_datastore_tokens": size, **result}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-task", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shards", type=Path, default=default_dir(), help="sharegpt.py's shards")
    ap.add_argument("--out", type=Path, default=HERE / "measured" / "datastore_smollm2.json")
    args = ap.parse_args(argv)
    result = measure(args.per_task, args.threads, args.shards)
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
