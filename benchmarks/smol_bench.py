"""The shared parts of the small SmolLM2 benchmarks (datastore, lookup shapes, alpha gap, CPU fine-tune): timing
drafters side by side with our autoregressive loop on Spec-Bench questions, the target's own answers as rows the
training script counts α on, and the command line that measures on ``--per-task``
questions of each task type, prints the result and stores it as one JSON file (``--out``, under benchmarks/measured
by default)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from specdec_lab.decode import generate_autoregressive, generate_speculative
from specdec_lab.models.smollm2 import chat_ids

NEW_TOKENS = 128  # every run decodes exactly this many (min = max), as in bench_spec_bench.py


def own_answer(target, prompt_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, answer) for ``train.evaluate``: the prompt, then the target's greedy NEW_TOKENS tokens (marked answer)."""
    answer = generate_autoregressive(target, prompt_ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS).token_ids
    return np.array(prompt_ids + answer), np.r_[np.zeros(len(prompt_ids), bool), np.ones(len(answer), bool)]


def side_by_side(target, tokenizer, questions, runs: dict) -> dict:
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
            "threads": torch.get_num_threads(),
            "tau": {n: round(tokens / steps[n], 3) for n in runs},
            "empty_step_share": {n: round(empty[n] / steps[n], 3) for n in runs},
            "speedup": {n: round(seconds["autoregressive"] / seconds[n], 3) for n in runs},
            "step_cost": {n: round(seconds[n] / steps[n] / ar_per_token, 3) for n in runs}}


def measure_and_store(doc: str, default_out: Path, measure: Callable[..., dict], argv=None,
                      options: dict[str, dict] | None = None) -> dict:
    """Parse --per-task, --threads, --out and ``options`` (flag -> add_argument's keywords); call
    ``measure(per_task, threads, *options' values)``; print its result and write it to --out."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-task", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=default_out)
    for flag, keywords in (options or {}).items():
        ap.add_argument(flag, **keywords)
    args = ap.parse_args(argv)
    extra = [getattr(args, flag.lstrip("-").replace("-", "_")) for flag in options or {}]
    result = measure(args.per_task, args.threads, *extra)
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result
