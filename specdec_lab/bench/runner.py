"""Run every method on every question, interleaved prompt by prompt with the autoregressive baseline.

For each question, in one pass: our autoregressive baseline, each drafter × verifier through
``generate_speculative``, then transformers' own ``generate`` (greedy or sampling), assisted
generation with a drafter model, and prompt lookup, all to the same number of new tokens
(min_new_tokens = max_new_tokens), so every method sees the same machine state. The metrics
(speedup, τ, α = accepted ÷ checked, per-position acceptance, c, v, the predictions) are
defined once, in :mod:`specdec_lab.bench.metrics`, and shared with ``compare`` and the playground.

Every argument, method and question is checked before the first forward (a prompt too long for
the context names its question), and ``on_progress`` receives the partial result after each
question, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import platform
import time
from typing import Callable

import torch
import transformers

from ..core.checks import check_context, check_gamma, check_int, check_seed
from ..decode import generate_autoregressive, generate_speculative
from .export import assistant_generation_config
from .metrics import AR, _trace_metrics, explain, label, measured_costs, median_records, predictions, summarize, trace_record
from ..registry import DRAFTERS, VERIFIERS, build_drafter
from ..core.sampling import SamplingConfig
from ..core.trace import first_divergence
from .tasks import Question

__all__ = ["AR", "HF_ASSISTED", "HF_GENERATE", "HF_LOOKUP", "all_methods", "check_methods", "check_settings",
           "default_methods", "encode_questions", "explain", "forward_probe", "label", "measured_costs", "parse_method",
           "parse_methods", "predictions", "run_benchmark", "summarize", "trace_record", "_trace_metrics"]

HF_GENERATE, HF_ASSISTED, HF_LOOKUP = "transformers generate", "transformers assisted (γ fixed)", "transformers prompt lookup"


def all_methods() -> list[tuple[str, str]]:
    """Every drafter × verifier the registry allows (tree verifiers need a drafter that branches)."""
    return [(d, v) for d, de in DRAFTERS.items() for v, ve in VERIFIERS.items() if de.branches or not ve.tree]


def default_methods() -> list[tuple[str, str]]:
    """Each drafter once with speculative sampling, and each other verifier once with the distilled drafter."""
    return [(d, "speculative") for d in DRAFTERS] + [("distilled", v) for v in VERIFIERS if v != "speculative"]


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


def parse_method(text: str) -> tuple[str, str]:
    """'DRAFTER+VERIFIER' (or the report's 'DRAFTER + VERIFIER') -> (drafter, verifier).

    Drafter names may hold '+' themselves (``distilled+heuristic-γ``), so the text is matched against
    the registry: the longest drafter name it starts with that is followed by '+' and a known verifier.
    """
    part = text.strip()
    for drafter in sorted(DRAFTERS, key=len, reverse=True):
        if part.startswith(drafter):
            rest = part[len(drafter):].strip()
            if rest.startswith("+") and rest[1:].strip() in VERIFIERS:
                return drafter, rest[1:].strip()
    raise ValueError(f"unknown method {text!r}: write DRAFTER+VERIFIER with a drafter from {', '.join(DRAFTERS)} "
                     f"and a verifier from {', '.join(VERIFIERS)} (e.g. distilled+greedy, distilled+heuristic-γ+speculative)")


def parse_methods(spec: str) -> list[tuple[str, str]]:
    """'default', 'all', or comma-separated DRAFTER+VERIFIER -> the (drafter, verifier) pairs, each checked."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("--methods takes 'default', 'all' or DRAFTER+VERIFIER,... (e.g. distilled+greedy,prompt-lookup+greedy)")
    if spec.strip() == "default":
        return default_methods()
    if spec.strip() == "all":
        return all_methods()
    methods = [parse_method(part) for part in spec.split(",") if part.strip()]
    check_methods(methods)
    return list(dict.fromkeys(methods))


def check_methods(methods: list[tuple[str, str]]) -> None:
    """Every (drafter, verifier) pair is in the registry, and a tree verifier gets a drafter that branches."""
    if not methods:
        raise ValueError("no methods to benchmark")
    for pair in methods:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"a method is a (drafter, verifier) pair, got {pair!r}")
        d, v = pair
        if d not in DRAFTERS or v not in VERIFIERS:
            raise ValueError(f"unknown method {d!r} + {v!r}; drafters: {', '.join(DRAFTERS)}; verifiers: {', '.join(VERIFIERS)}")
        if VERIFIERS[v].tree and not DRAFTERS[d].branches:
            branching = ", ".join(name for name, e in DRAFTERS.items() if e.branches)
            raise ValueError(f"method {label(d, v)!r}: the tree verifier {v!r} needs a drafter that branches, and {d!r} "
                             f"cannot branch; drafters that branch: {branching}")


def check_settings(gamma, max_new_tokens, temperature, seed) -> None:
    """The benchmark's numbers, with the engine's own checks (so a bad one fails before any model loads)."""
    check_gamma(gamma)
    check_int("max_new_tokens (--new-tokens)", max_new_tokens, 1)
    SamplingConfig(temperature=temperature)
    check_seed(seed)


def encode_questions(target, tokenizer, questions: list[Question], max_new_tokens: int, models=(),
                     prompt_ids: Callable[[str], list[int]] | None = None) -> list[list[int]]:
    """Each question's prompt ids, refusing (with its id and task) a prompt that is empty or too long for the context
    of the target or of any of ``models`` (drafter models), with ``max_new_tokens`` new tokens after it.
    ``prompt_ids`` turns a prompt into ids (e.g. through a chat template); default: the plain tokenizer."""
    encoded = []
    for q in questions:
        ids = list(prompt_ids(q.prompt) if prompt_ids is not None else tokenizer(q.prompt)["input_ids"])
        where = f"question {q.question_id!r} (task {q.task!r})"
        if not ids:
            raise ValueError(f"{where}: the prompt has no tokens")
        try:
            check_context(target, len(ids), max_new_tokens, "target")
            for role, model in models:
                check_context(model, len(ids), max_new_tokens, role)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        encoded.append(ids)
    return encoded


def _drafter_models(target, drafters: dict, hf_drafter) -> list[tuple[str, object]]:
    """(role, model) of every drafter that runs a model of its own (its context may be shorter than the target's)."""
    models = [] if hf_drafter is None else [("drafter model of transformers' assisted generation", hf_drafter)]
    for name, drafter in drafters.items():
        model = drafter.model  # declared by every Drafter (a wrapper's is its inner drafter's); None: no model of its own
        if model is not None and model is not target:
            models.append((f"{name} drafter", model))
    return models


def run_benchmark(target, tokenizer, questions: list[Question], methods: list[tuple[str, str]] | None = None, gamma: int = 4,
                  max_new_tokens: int = 128, temperature: float = 0.0, seed: int = 0, hf_drafter=None,
                  hf_baselines: bool = True, drafter_options: dict | None = None, progress: bool = True,
                  on_progress: Callable[[dict], None] | None = None, prompt_ids: Callable[[str], list[int]] | None = None,
                  hf_extra: dict[str, dict] | None = None, repeats: int = 1, header_extra: dict | None = None) -> dict:
    """Measure ``methods`` (default: :func:`default_methods`) on ``questions``; returns the JSON-able result.

    Everything is checked before the first forward. ``on_progress(partial)`` is called after each question with
    the result so far (``"complete": False``), e.g. to write it to disk; the returned result has ``"complete": True``.
    ``hf_extra``: more transformers ``generate`` runs, label -> keyword arguments (e.g. ``assistant_early_exit``).
    ``repeats``: every method runs this many times per question, interleaved (all methods, then all again); the
    summary uses each (question, method)'s median seconds.
    """
    from ..core.progress import finish, progress_bar as tqdm

    methods = default_methods() if methods is None else [tuple(m) for m in methods]
    check_methods(methods)
    check_settings(gamma, max_new_tokens, temperature, seed)
    if not questions:
        raise ValueError("no questions to benchmark")
    device = target.device
    drafters = {d: build_drafter(d, target, tokenizer, **(drafter_options or {}).get(d, {})) for d in dict.fromkeys(d for d, _ in methods)}
    check_int("repeats", repeats, 1)
    encoded = encode_questions(target, tokenizer, questions, max_new_tokens, _drafter_models(target, drafters, hf_drafter),
                               prompt_ids)
    common = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, temperature=temperature)
    hf_runs = {}
    if hf_baselines:
        hf_runs[HF_GENERATE] = {}
        if hf_drafter is not None:
            hf_runs[HF_ASSISTED] = {"assistant_model": hf_drafter}
        hf_runs[HF_LOOKUP] = {"prompt_lookup_num_tokens": gamma}
        if hf_drafter is not None:  # the same algorithm as ours: exactly γ drafts per step, every step
            for key, value in assistant_generation_config(gamma).items():
                setattr(hf_drafter.generation_config, key, value)
    hf_runs |= hf_extra or {}

    def hf(ids, i, reference, **extra):
        x = torch.tensor([ids], device=device)
        sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=None) if temperature > 0 else dict(do_sample=False)
        torch.manual_seed(seed + i)
        with torch.inference_mode():
            out = target.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                  min_new_tokens=max_new_tokens, pad_token_id=target.config.eos_token_id, **sampling, **extra)
        tokens = out[0, x.shape[1]:].tolist()
        return {"tokens": len(tokens), "diverged_at": first_divergence(tokens, reference) if reference else None,
                "compared": bool(reference)}

    header = {
        "machine": platform.platform(), "processor": platform.processor() or platform.machine(), "device": str(device),
        "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "target_parameters": sum(p.numel() for p in target.parameters()),
        "gamma": gamma, "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
        "questions": len(questions), "tasks": list(dict.fromkeys(q.task for q in questions)), "repeats": repeats,
        "dtype": str(target.dtype).replace("torch.", ""),
    } | (header_extra or {})
    labels = [AR] + [label(d, v) for d, v in methods] + list(hf_runs)

    def result(records: list[dict], done: int) -> dict:
        return {"header": header, "methods": labels, "records": records,
                "summary": summarize(median_records(records), labels, gamma),
                "complete": done == len(questions), "questions_done": done}

    generate_autoregressive(target, encoded[0], max_new_tokens=4)  # warm-up: the first forward of a process is slow
    records = []
    bar = tqdm(total=len(questions) * repeats * (1 + len(methods) + len(hf_runs)), desc="bench", unit="run", disable=not progress)
    try:
        for i, (q, ids) in enumerate(zip(questions, encoded)):
            reference = []  # our autoregressive output: every other method's output is compared with it
            runs = [(AR, lambda: generate_autoregressive(target, ids, seed=seed + i, **common), True)]
            runs += [(label(d, v), lambda d=d, v=v: generate_speculative(target, drafters[d], ids, gamma=gamma, verifier=v,
                                                                          seed=seed + i, reference=reference, **common), True)
                     for d, v in methods]
            runs += [(name, lambda extra=extra: hf(ids, i, reference, **extra), False) for name, extra in hf_runs.items()]
            for repeat, (name, fn, ours) in ((r, run) for r in range(repeats) for run in runs):
                try:
                    out, seconds, peak = _timed(fn, device)
                except Exception as err:
                    if hasattr(err, "add_note"):  # Python 3.11+
                        err.add_note(f"while running {name} on question {q.question_id!r} (task {q.task!r})")
                    raise
                if name == AR and not reference:
                    reference.extend(out.token_ids)
                records.append({"task": q.task, "question_id": q.question_id, "method": name, "repeat": repeat,
                                "seconds": seconds, "peak_mib": peak,
                                **(trace_record(out, gamma) if ours else out)})
                bar.update()
            if on_progress is not None and i + 1 < len(questions):
                on_progress(result(records, i + 1))
    finally:
        # also on an error or an interrupt: the bar's last line ends before the message; in a notebook its final
        # state is printed as text too, for views without widget state
        if progress:
            finish(bar)
        else:
            bar.close()
    return result(records, len(questions))


def forward_probe(target, ks=(1, 2, 4, 8, 16, 32, 64), context: int = 128) -> dict:
    """The forward-latency probe with the cost model beside it: measured t(k), the model fitted to it, and the
    unfitted table entry for a laptop CPU, so the report shows how far a spec-sheet roofline is from this device."""
    from .costmodel import HARDWARE, ModelShape, fit_hardware, forward_time
    from .probe import forward_latency

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
