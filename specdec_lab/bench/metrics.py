"""The metrics of a measured run, one definition for the benchmark, ``compare`` and the playground.

Pure functions of counts and seconds (no model, no decoding), so every layer above can import
them: ``bench.runner`` (the benchmark), ``compare`` (the notebooks' tables) and ``viz.playground``.

    speedup          mean over prompts of tokens/s  ÷  the same for the autoregressive baseline   (Spec-Bench)
    τ                new tokens / steps (the target's own token included)
    α                accepted ÷ checked drafts (Stats.alpha; Spec-Bench's and Leviathan's α)
    acceptance_rate  accepted ÷ drafted (unchecked drafts after a rejection count as not accepted)
    per_position     P(draft i accepted | draft i checked), i = 1..γ
    forwards/token   target forwards per new token
    c, v             measured cost of one drafted position / one verification forward, in baseline forwards
    predicted        (1 − α^(γ+1)) / ((1 − α)(γc + 1));   predicted_v: with v in place of 1
    accounting       τ / (γc + v): what the measured phases alone allow; measured / accounting − 1 is the loop's own overhead
    identical_share  share of prompts whose output equals our autoregressive output token for token
"""

from __future__ import annotations

import math
from collections import defaultdict

from ..core.theory import expected_tokens_per_step, speedup

AR = "autoregressive"  # the method label of the baseline


def label(drafter: str, verifier: str) -> str:
    """The method label of a drafter × verifier pair, as the reports print it."""
    return f"{drafter} + {verifier}"


def measured_costs(draft_s: float, verify_s: float, steps: int, gamma: int, baseline_s_per_token: float) -> tuple[float, float]:
    """(c, v) in units of one baseline target forward (the autoregressive time per token):

        c = (draft seconds per step / γ) / baseline seconds per token     one drafted position
        v = (verify seconds per step) / baseline seconds per token        one forward over γ'+1 tokens, verdict included
    """
    if steps == 0 or baseline_s_per_token <= 0:
        return float("nan"), float("nan")
    return (draft_s / steps / gamma) / baseline_s_per_token, (verify_s / steps) / baseline_s_per_token


def predictions(alpha: float, gamma: int, c: float, v: float) -> tuple[float, float]:
    """(Theorem 3.8's speedup at (α, γ, c), the same with the measured verification cost v); nan without α."""
    if math.isnan(alpha) or math.isnan(c):
        return float("nan"), float("nan")
    return speedup(alpha, gamma, c), speedup(alpha, gamma, c, v)


def trace_record(out, gamma: int) -> dict:
    """The counts and times of one run (a GenerationOutput) that :func:`summarize` needs (per-position acceptance up to γ)."""
    s = out.stats
    accepted_at, checked_at = [0] * gamma, [0] * gamma
    for step in out.steps:
        for i, decision in enumerate(step.decisions[:gamma]):
            if decision != "unchecked":
                checked_at[i] += 1
                accepted_at[i] += decision == "accepted"
    return {"tokens": s.new_tokens, "diverged_at": s.diverged_at, "compared": s.reference_given, "steps": s.steps, "accepted": s.accepted, "checked": s.checked, "drafted": s.drafted,
            "empty_steps": sum(1 for step in out.steps if not step.draft),
            "target_forwards": s.target_forwards, "draft_s": s.draft_time_s, "verify_s": s.verify_time_s,
            "accepted_at": accepted_at, "checked_at": checked_at}


def median_records(records: list[dict]) -> list[dict]:
    """One record per (task, question, method): the repeat with the median seconds (the lower middle of an even count).

    Interleaved repeats see the same machine state; the median drops the runs another process slowed down. The task
    is part of the key, so two tasks' questions that share an id are never mixed (question files refuse shared ids).
    """
    groups = defaultdict(list)
    for r in records:
        groups[r["task"], r["question_id"], r["method"]].append(r)
    return [sorted(rs, key=lambda r: r["seconds"])[(len(rs) - 1) // 2] for rs in groups.values()]


def summarize(records: list[dict], labels: list[str], gamma: int) -> list[dict]:
    """One row per (task, method), plus task "all"; see the module docstring for the definitions.

    Tasks without an autoregressive record (a run interrupted inside a task's first question) are left out.
    """
    groups = defaultdict(list)
    for r in records:
        groups[r["task"], r["method"]].append(r)
        groups["all", r["method"]].append(r)
    tasks = list(dict.fromkeys(r["task"] for r in records)) + ["all"]
    rows = []
    for task in tasks:
        base = groups[task, AR]
        if not base:
            continue
        base_tps = sum(r["tokens"] / r["seconds"] for r in base) / len(base)
        base_s_per_token = sum(r["seconds"] for r in base) / sum(r["tokens"] for r in base)
        for method in labels:
            rs = groups[task, method]
            if not rs:
                continue
            tps = sum(r["tokens"] / r["seconds"] for r in rs) / len(rs)
            row = {"task": task, "method": method, "prompts": len(rs), "tokens_per_s": tps, "speedup": tps / base_tps,
                   "peak_mib": max((r["peak_mib"] for r in rs if r["peak_mib"] is not None), default=None)}
            compared = [r for r in rs if r.get("compared")]
            if compared:  # how many outputs equal our autoregressive output token for token (bf16: rounding can differ)
                row["identical_share"] = sum(r["diverged_at"] is None for r in compared) / len(compared)
                row["compared"] = len(compared)
            if "steps" in rs[0]:
                row |= _trace_metrics(rs, gamma, base_s_per_token, row["speedup"], method != AR)
            rows.append(row)
    return rows


def per_position(records: list[dict], gamma: int) -> list[float | None]:
    """Conditional α at draft positions 1..γ over ``records`` (:func:`trace_record`'s): accepted ÷ checked at each."""
    accepted_at = [sum(r["accepted_at"][i] for r in records) for i in range(gamma)]
    checked_at = [sum(r["checked_at"][i] for r in records) for i in range(gamma)]
    return [a / n if n else None for a, n in zip(accepted_at, checked_at)]


def _trace_metrics(rs: list[dict], gamma: int, base_s_per_token: float, measured: float, speculative: bool) -> dict:
    total = {k: sum(r[k] for r in rs) for k in ("tokens", "steps", "accepted", "checked", "drafted", "target_forwards",
                                                 "draft_s", "verify_s", "seconds", "empty_steps")}
    out = {"tau": total["tokens"] / total["steps"], "forwards_per_token": total["target_forwards"] / total["tokens"]}
    if not speculative:
        return out
    alpha = total["accepted"] / total["checked"] if total["checked"] else float("nan")
    c, v = measured_costs(total["draft_s"], total["verify_s"], total["steps"], gamma, base_s_per_token)
    predicted, predicted_v = predictions(alpha, gamma, c, v)
    accounting = out["tau"] / (gamma * c + v) if c == c else float("nan")
    out |= {
        "alpha": alpha, "acceptance_rate": total["accepted"] / total["drafted"] if total["drafted"] else float("nan"),
        "per_position": per_position(rs, gamma), "c": c, "v": v,
        "predicted": predicted, "predicted_v": predicted_v, "accounting": accounting,
        "overhead_share": 1 - (total["draft_s"] + total["verify_s"]) / total["seconds"],
        "empty_share": total["empty_steps"] / total["steps"],
    }
    out["explanation"] = explain(out, alpha, gamma, measured)
    return out


def explain(row: dict, alpha: float, gamma: int, measured: float) -> str:
    """Which overhead separates the measured speedup from the formula's, in words."""
    if alpha != alpha or row.get("empty_share", 0) == 1:
        return "nothing was drafted (the drafter abstained throughout): the loop ran as plain decoding"
    notes = []
    formula_tau = expected_tokens_per_step(alpha, gamma)
    if row["empty_share"] > 0.05:
        notes.append(f"the drafter proposed nothing in {row['empty_share']:.0%} of the steps (plain decoding steps)")
    if abs(row["tau"] / formula_tau - 1) > 0.1:
        notes.append(f"τ = {row['tau']:.2f}, not the {formula_tau:.2f} of independent draws at α = {alpha:.2f} "
                     "(acceptances are correlated, drafts end early, or steps are empty)")
    if row["v"] > 1.1:
        notes.append(f"verifying γ+1 tokens costs v = {row['v']:.2f} forwards, not 1")
    if row["c"] > 0.1:
        notes.append(f"drafting costs c = {row['c']:.2f} forwards per position")
    if abs(measured / row["accounting"] - 1) > 0.1:
        notes.append(f"{row['overhead_share']:.0%} of the time is outside drafting and verifying (loop overhead, timing noise)")
    return "; ".join(notes) if notes else "within 10% of the formula"
