"""The Spec-Bench run's arithmetic: merging a run measured in parts, and reading the speed goals off its summary.

``benchmarks/bench_spec_bench.py`` measures Spec-Bench's six task types with :func:`~specdec_lab.bench.runner.run_benchmark`;
a full run takes hours, so it is often measured in parts (a run, then its resumption with ``--skip``), each saved as a
``result.json``. These functions are pure (dicts in, dicts out, no model, no file), but for :func:`measured_smollm2`,
which reads the parts stored in ``benchmarks/measured``:

* :func:`merge_results` joins the parts into one result: the records concatenated, each (question, method)'s repeats
  reduced to their median seconds and the summary recomputed (:func:`~specdec_lab.bench.metrics.median_records`,
  :func:`~specdec_lab.bench.metrics.summarize`, which also gives each method's agreement with our autoregressive
  output). Parts that measured different methods, or the same question twice, are refused; the merged result is
  ``complete`` when the parts together cover every question of the run.
* :func:`goals` picks the best of our lossless drafters and compares it with the goals below: its speedup over our
  autoregressive loop, its ratio to the best of transformers' speculative methods in the same run, and its worst task.
* :func:`step_cost` is the cost of one speculative step, in autoregressive forwards, for the run's γ.
"""

from __future__ import annotations

import json
from pathlib import Path

from .metrics import AR, median_records, summarize

__all__ = ["GOAL_OVER_AR", "GOAL_OVER_TRANSFORMERS", "GOAL_WORST_TASK", "TASKS", "goals",
           "measured_smollm2", "merge_results", "step_cost"]

TASKS = ["multi-turn", "translation", "summarization", "qa", "math_reasoning", "rag"]
"""Spec-Bench's six task types, in the order of its tables."""

GOAL_OVER_AR = 1.8
"""Goal: the best lossless drafter's speedup over our autoregressive loop, at least this (mean tokens/s ratio)."""

GOAL_OVER_TRANSFORMERS = 1.3
"""Goal: its speedup divided by that of the best transformers speculative method in the same run, at least this."""

GOAL_WORST_TASK = 1.0
"""Goal: its speedup on its worst task type, strictly above this (no task type slowed down)."""

MAIN_RUN = "spec_bench_smollm2_bf16_main*.json"  # the full run in benchmarks/measured (parts of one, if it was resumed)
HF_PREFIX = "transformers"  # every transformers method's label starts so (runner.HF_GENERATE, HF_ASSISTED, HF_LOOKUP, ...)
HF_BASELINE = "transformers generate"  # = runner.HF_GENERATE: transformers' autoregressive loop, a baseline, not a rival


def merge_results(results: list[dict]) -> dict:
    """One result from several runs of the same methods on different questions (a run and its resumption with --skip):
    records concatenated, the summary recomputed from them (medians of each question's repeats).

    Raises ValueError when the runs measured different methods or overlap (a question measured in two of them).
    ``complete`` is True when the runs together measured every question of the whole run (the largest
    ``questions + skip`` of their headers)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    _check_mergeable(results)
    records = [rec for r in results for rec in r["records"]]
    done = sum(r["questions_done"] for r in results)
    header = _merged_header(results)
    return {"header": header, "methods": first["methods"], "records": records, "complete": done == header["questions"],
            "questions_done": done,
            "summary": summarize(median_records(records), first["methods"], header["gamma"])}


def _check_mergeable(results: list[dict]) -> None:
    """The runs measured the same methods, and no question twice (disjoint runs)."""
    first = results[0]
    if any(r["methods"] != first["methods"] for r in results):
        raise ValueError("these results measured different methods; they cannot be merged")
    done = sum(r["questions_done"] for r in results)
    asked = {(rec["task"], rec["question_id"]) for r in results for rec in r["records"]}
    if len(asked) != done:
        raise ValueError(f"these runs overlap: {done} questions reported, {len(asked)} distinct; merge disjoint runs")


def _merged_header(results: list[dict]) -> dict:
    """The first run's header, with every run's repeats, command and forward costs t(k) (``verify_cost_runs``: the
    machine's state can differ between runs), and the whole run's question count."""
    return dict(results[0]["header"]) | {
        "verify_cost_runs": [cost for r in results  # a merged result brings its runs' costs
                             for cost in r["header"].get("verify_cost_runs") or [r["header"].get("verify_cost", {})]],
        "repeats": " + ".join(f"{r['header'].get('repeats', 1)} ({r['questions_done']} questions)" for r in results),
        "command": " ; ".join(r["header"].get("command", "?") for r in results),
        "questions": max(r["header"]["questions"] + (r["header"].get("skip") or 0) for r in results)}


def goals(result: dict) -> dict:
    """The speed goals, computed: the best of our lossless drafters overall, its ratio to the best of transformers'
    speculative methods in the same run (its plain ``generate`` is the autoregressive baseline, shown beside ours), and
    its worst task. Compare ``speedup`` with :data:`GOAL_OVER_AR`, ``over_hf`` with :data:`GOAL_OVER_TRANSFORMERS` and
    ``worst_speedup`` with :data:`GOAL_WORST_TASK`. ``best_hf``, ``hf_speedup`` and ``over_hf`` are None when the run
    has no transformers speculative method."""
    rows = {(r["task"], r["method"]): r for r in result["summary"]}
    ours = [m for m in result["methods"] if m != AR and not m.startswith(HF_PREFIX) and ("all", m) in rows]
    hf = [m for m in result["methods"] if m.startswith(HF_PREFIX) and m != HF_BASELINE and ("all", m) in rows]
    best = max(ours, key=lambda m: rows["all", m]["speedup"])
    best_hf = max(hf, key=lambda m: rows["all", m]["speedup"]) if hf else None
    tasks = [t for t in TASKS if (t, best) in rows]
    worst = min(tasks, key=lambda t: rows[t, best]["speedup"])
    overall = rows["all", best]
    return {"best": best, "speedup": overall["speedup"], "best_hf": best_hf,
            "hf_speedup": rows["all", best_hf]["speedup"] if best_hf else None,
            "over_hf": overall["speedup"] / rows["all", best_hf]["speedup"] if best_hf else None,
            "worst_task": worst, "worst_speedup": rows[worst, best]["speedup"], "alpha": overall.get("alpha"),
            "tau": overall.get("tau"), "c": overall.get("c"), "v": overall.get("v")}


def step_cost(gamma: int, c: float, v: float) -> float:
    """The cost of one speculative step in autoregressive forwards: γ drafted tokens at ``c`` each, then one
    verification forward at ``v`` (γc + v); the step yields τ tokens."""
    return gamma * c + v


def measured_smollm2(start: Path | None = None) -> dict | None:
    """The stored bf16 Spec-Bench run on SmolLM2 (``benchmarks/measured/`` + ``MAIN_RUN``), its
    parts merged; looked for from ``start`` (default: the working directory) upwards, then in the checkout this
    package runs from (a notebook copied elsewhere still finds it). None where there is none (an installed wheel)."""
    for origin in (Path.cwd() if start is None else Path(start), Path(__file__).resolve().parents[2]):
        for folder in (origin, *origin.parents):
            parts = sorted((folder / "benchmarks" / "measured").glob(MAIN_RUN))
            if parts:
                return merge_results([json.loads(p.read_text(encoding="utf-8")) for p in parts])
    return None
