"""Run every method on every question, interleaved prompt by prompt with the autoregressive baseline.

For each question, in one pass: our autoregressive baseline, each drafter × verifier through
``generate_speculative``, then transformers' own ``generate`` (greedy or sampling), assisted
generation with a drafter model, and prompt lookup, all to the same number of new tokens
(min_new_tokens = max_new_tokens), so every method sees the same machine state. Metrics
(per task, and over all tasks):

    speedup          mean over prompts of tokens/s  ÷  the same for the autoregressive baseline   (Spec-Bench)
    τ                new tokens / steps (the target's own token included)
    α                accepted / checked drafts;  acceptance_rate = accepted / drafted
    per_position     P(draft i accepted | draft i checked), i = 1..γ
    forwards/token   target forwards per new token
    c, v             measured cost of one drafted position / one verification forward, in baseline forwards
    predicted        (1 − α^(γ+1)) / ((1 − α)(γc + 1));   predicted_v: with v in place of 1
    accounting       τ / (γc + v): what the measured phases alone allow; measured / accounting − 1 is the loop's own overhead
"""

from __future__ import annotations

import math
import platform
import time
from collections import defaultdict

import torch
import transformers

from ..decode import generate_autoregressive, generate_speculative
from ..registry import DRAFTERS, VERIFIERS, build_drafter
from ..theory import expected_tokens_per_step, speedup
from .tasks import Question

AR = "autoregressive"
HF_GENERATE, HF_ASSISTED, HF_LOOKUP = "transformers generate", "transformers assisted (γ fixed)", "transformers prompt lookup"


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


def all_methods() -> list[tuple[str, str]]:
    """Every drafter × verifier the registry allows (tree verifiers need a drafter that branches)."""
    return [(d, v) for d, de in DRAFTERS.items() for v, ve in VERIFIERS.items() if de.branches or not ve.tree]


def default_methods() -> list[tuple[str, str]]:
    """Each drafter once with speculative sampling, and each other verifier once with the distilled drafter."""
    return [(d, "speculative") for d in DRAFTERS] + [("distilled", v) for v in VERIFIERS if v != "speculative"]


def label(drafter: str, verifier: str) -> str:
    return f"{drafter} + {verifier}"


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return out, seconds, peak


def trace_record(out, gamma: int) -> dict:
    """The counts and times of one run that the summary needs (per-position acceptance up to γ)."""
    s = out.stats
    accepted_at, checked_at = [0] * gamma, [0] * gamma
    for step in out.steps:
        for i, decision in enumerate(step.decisions[:gamma]):
            if decision != "unchecked":
                checked_at[i] += 1
                accepted_at[i] += decision == "accepted"
    return {"tokens": s.new_tokens, "steps": s.steps, "accepted": s.accepted, "checked": s.checked, "drafted": s.drafted,
            "empty_steps": sum(1 for step in out.steps if not step.draft),
            "target_forwards": s.target_forwards, "draft_s": s.draft_time_s, "verify_s": s.verify_time_s,
            "accepted_at": accepted_at, "checked_at": checked_at}


def run_benchmark(target, tokenizer, questions: list[Question], methods: list[tuple[str, str]] | None = None, gamma: int = 4,
                  max_new_tokens: int = 128, temperature: float = 0.0, seed: int = 0, hf_drafter=None,
                  hf_baselines: bool = True, drafter_options: dict | None = None, progress: bool = True) -> dict:
    """Measure ``methods`` (default: :func:`default_methods`) on ``questions``; returns the JSON-able result."""
    from tqdm.auto import tqdm

    methods = default_methods() if methods is None else methods
    for d, v in methods:
        if d not in DRAFTERS or v not in VERIFIERS:
            raise ValueError(f"unknown method {d!r} + {v!r}; drafters: {', '.join(DRAFTERS)}; verifiers: {', '.join(VERIFIERS)}")
    device = target.device
    drafters = {d: build_drafter(d, target, tokenizer, **(drafter_options or {}).get(d, {})) for d in dict.fromkeys(d for d, _ in methods)}
    common = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, temperature=temperature)
    hf_runs = {}
    if hf_baselines:
        hf_runs[HF_GENERATE] = {}
        if hf_drafter is not None:
            hf_runs[HF_ASSISTED] = {"assistant_model": hf_drafter}
        hf_runs[HF_LOOKUP] = {"prompt_lookup_num_tokens": gamma}
        if hf_drafter is not None:  # the same algorithm as ours: exactly γ drafts per step, every step
            hf_drafter.generation_config.num_assistant_tokens = gamma
            hf_drafter.generation_config.num_assistant_tokens_schedule = "constant"
            hf_drafter.generation_config.assistant_confidence_threshold = 0.0  # 5.x default 0.4 stops drafts early, adaptively

    def hf(ids, i, **extra):
        x = torch.tensor([ids], device=device)
        sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=None) if temperature > 0 else dict(do_sample=False)
        torch.manual_seed(seed + i)
        with torch.inference_mode():
            out = target.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                  min_new_tokens=max_new_tokens, pad_token_id=target.config.eos_token_id, **sampling, **extra)
        return {"tokens": out.shape[1] - x.shape[1]}

    encoded = [tokenizer(q.prompt)["input_ids"] for q in questions]
    generate_autoregressive(target, encoded[0], max_new_tokens=4)  # warm-up: the first forward of a process is slow
    records = []
    bar = tqdm(total=len(questions) * (1 + len(methods) + len(hf_runs)), desc="bench", unit="run", disable=not progress)
    for i, (q, ids) in enumerate(zip(questions, encoded)):
        out, seconds, peak = _timed(lambda: generate_autoregressive(target, ids, seed=seed + i, **common), device)
        records.append({"task": q.task, "question_id": q.question_id, "method": AR, "seconds": seconds, "peak_mib": peak,
                        **trace_record(out, gamma)})
        bar.update()
        for d, v in methods:
            out, seconds, peak = _timed(lambda: generate_speculative(target, drafters[d], ids, gamma=gamma, verifier=v,
                                                                     seed=seed + i, **common), device)
            records.append({"task": q.task, "question_id": q.question_id, "method": label(d, v), "seconds": seconds,
                            "peak_mib": peak, **trace_record(out, gamma)})
            bar.update()
        for name, extra in hf_runs.items():
            out, seconds, peak = _timed(lambda: hf(ids, i, **extra), device)
            records.append({"task": q.task, "question_id": q.question_id, "method": name, "seconds": seconds, "peak_mib": peak, **out})
            bar.update()
    bar.close()
    header = {
        "machine": platform.platform(), "processor": platform.processor() or platform.machine(), "device": str(device),
        "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "target_parameters": sum(p.numel() for p in target.parameters()),
        "gamma": gamma, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
        "questions": len(questions), "tasks": list(dict.fromkeys(q.task for q in questions)),
    }
    labels = [AR] + [label(d, v) for d, v in methods] + list(hf_runs)
    return {"header": header, "methods": labels, "records": records, "summary": summarize(records, labels, gamma)}


def summarize(records: list[dict], labels: list[str], gamma: int) -> list[dict]:
    """One row per (task, method), plus task "all"; see the module docstring for the definitions."""
    groups = defaultdict(list)
    for r in records:
        groups[r["task"], r["method"]].append(r)
        groups["all", r["method"]].append(r)
    tasks = list(dict.fromkeys(r["task"] for r in records)) + ["all"]
    rows = []
    for task in tasks:
        base = groups[task, AR]
        base_tps = sum(r["tokens"] / r["seconds"] for r in base) / len(base)
        base_s_per_token = sum(r["seconds"] for r in base) / sum(r["tokens"] for r in base)
        for method in labels:
            rs = groups[task, method]
            if not rs:
                continue
            tps = sum(r["tokens"] / r["seconds"] for r in rs) / len(rs)
            row = {"task": task, "method": method, "prompts": len(rs), "tokens_per_s": tps, "speedup": tps / base_tps,
                   "peak_mib": max((r["peak_mib"] for r in rs if r["peak_mib"] is not None), default=None)}
            if "steps" in rs[0]:
                row |= _trace_metrics(rs, gamma, base_s_per_token, row["speedup"], method != AR)
            rows.append(row)
    return rows


def _trace_metrics(rs: list[dict], gamma: int, base_s_per_token: float, measured: float, speculative: bool) -> dict:
    total = {k: sum(r[k] for r in rs) for k in ("tokens", "steps", "accepted", "checked", "drafted", "target_forwards",
                                                 "draft_s", "verify_s", "seconds", "empty_steps")}
    out = {"tau": total["tokens"] / total["steps"], "forwards_per_token": total["target_forwards"] / total["tokens"]}
    if not speculative:
        return out
    alpha = total["accepted"] / total["checked"] if total["checked"] else float("nan")
    accepted_at = [sum(r["accepted_at"][i] for r in rs) for i in range(gamma)]
    checked_at = [sum(r["checked_at"][i] for r in rs) for i in range(gamma)]
    c, v = measured_costs(total["draft_s"], total["verify_s"], total["steps"], gamma, base_s_per_token)
    predicted, predicted_v = predictions(alpha, gamma, c, v)
    accounting = out["tau"] / (gamma * c + v) if c == c else float("nan")
    out |= {
        "alpha": alpha, "acceptance_rate": total["accepted"] / total["drafted"] if total["drafted"] else float("nan"),
        "per_position": [a / n if n else None for a, n in zip(accepted_at, checked_at)], "c": c, "v": v,
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


def forward_probe(target, ks=(1, 2, 4, 8, 16, 32, 64), context: int = 128) -> dict:
    """The forward-latency probe with the cost model beside it: measured t(k), the model fitted to it, and the
    unfitted table entry for a laptop CPU, so the report shows how far a spec-sheet roofline is from this device."""
    from ..costmodel import HARDWARE, ModelShape, fit_hardware, forward_time
    from ..probe import forward_latency

    times = forward_latency(target, ks, context=context)
    shape = ModelShape.of(target)
    laptop = HARDWARE["laptop CPU"]
    spec_sheet = (f"the spec-sheet 'laptop CPU' entry predicts t(1) = {1000 * forward_time(shape, 1, context, laptop):.2f} ms "
                  f"against {1000 * times[min(times)]:.2f} ms measured; t({max(times)})/t({min(times)}) = "
                  f"{times[max(times)] / times[min(times)]:.2f}: a forward over many tokens costs little more than over one.")
    try:
        fitted = fit_hardware(shape, times, context)
    except ValueError:  # timings did not grow with k (a noisy machine): nothing to fit
        return {"k": list(times), "seconds": list(times.values()), "model_seconds": [None] * len(times), "context": context,
                "note": "The timings did not grow with k on this run (a busy machine?), so no model was fitted; " + spec_sheet}
    note = (f"Fitted: {1000 * fitted.overhead:.2f} ms fixed cost per forward and {fitted.peak / 1e9:.0f} GFLOP/s sustained; "
            + spec_sheet)
    return {"k": list(times), "seconds": list(times.values()),
            "model_seconds": [forward_time(shape, k, context, fitted) for k in times], "context": context, "note": note}
