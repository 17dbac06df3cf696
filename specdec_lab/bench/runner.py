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

import copy
import platform
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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

__all__ = ["AR", "BenchSettings", "HF_ASSISTED", "HF_GENERATE", "HF_LOOKUP", "all_methods", "check_methods", "check_settings",
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


@dataclass(frozen=True)
class BenchSettings:
    """The numbers and switches of one benchmark run, checked when made (so a bad one fails before any model loads).

    ``gamma``, ``max_new_tokens`` (= min_new_tokens: every method decodes the same count), ``temperature`` (0: greedy)
    and ``seed`` (question i decodes with seed + i) are the engine's; ``repeats``: every method runs this many times
    per question, interleaved (all methods, then all again), and the summary uses each (question, method)'s median
    seconds. ``hf_baselines``: also run transformers' generate, its assisted generation (given a drafter model) and
    its prompt lookup. ``drafter_options``: drafter name -> its build options (e.g. ``{"distilled": {"model": ...}}``).
    ``hf_extra``: more transformers ``generate`` runs, label -> keyword arguments (e.g. ``assistant_early_exit``).
    ``header_extra``: added to the result's header. ``progress``: show a progress bar.
    """

    gamma: int = 4
    max_new_tokens: int = 128
    temperature: float = 0.0
    seed: int = 0
    repeats: int = 1
    hf_baselines: bool = True
    progress: bool = True
    drafter_options: Mapping[str, dict] = field(default_factory=dict)
    hf_extra: Mapping[str, dict] = field(default_factory=dict)
    header_extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        check_settings(self.gamma, self.max_new_tokens, self.temperature, self.seed)
        check_int("repeats", self.repeats, 1)
        for name in ("drafter_options", "hf_extra", "header_extra"):  # None (the old default) -> {}; a copy of the caller's
            object.__setattr__(self, name, dict(getattr(self, name) or {}))


@dataclass(frozen=True)
class _Plan:
    """A checked run, ready to measure: the questions' ids, the drafters built, transformers' runs and the header."""

    target: object
    questions: list[Question]
    encoded: list[list[int]]
    methods: list[tuple[str, str]]
    drafters: dict
    hf_target: object  # the target with a generation_config of its own (see _with_own_generation_config)
    hf_runs: dict[str, dict]  # label -> keyword arguments of transformers' generate
    labels: list[str]
    header: dict
    settings: BenchSettings


def run_benchmark(target, tokenizer, questions: list[Question], methods: list[tuple[str, str]] | None = None, *,
                  settings: BenchSettings | None = None, hf_drafter=None, on_progress: Callable[[dict], None] | None = None,
                  prompt_ids: Callable[[str], list[int]] | None = None, **options) -> dict:
    """Measure ``methods`` (default: :func:`default_methods`) on ``questions``; returns the JSON-able result.

    ``settings``: a :class:`BenchSettings`; ``options`` are its fields as keyword arguments (``gamma=3,
    max_new_tokens=10, ...``), overriding those of ``settings``. ``hf_drafter``: the drafter model of transformers'
    assisted generation (γ drafts every step). ``prompt_ids`` turns a prompt into ids (e.g. through a chat template).
    Everything is checked before the first forward. ``on_progress(partial)`` is called after each question with
    the result so far (``"complete": False``), e.g. to write it to disk; the returned result has ``"complete": True``.

    The caller's objects are left as they were: the models' ``generation_config`` (transformers' runs use copies) and
    torch's global random state (sampling in transformers is seeded inside a fork of it).
    """
    settings = _settings(settings, options)
    plan = _plan(target, tokenizer, questions, methods, settings, hf_drafter, prompt_ids)
    return _measure(plan, on_progress)


def _settings(settings: BenchSettings | None, options: dict) -> BenchSettings:
    if settings is None:
        return BenchSettings(**options)
    if not isinstance(settings, BenchSettings):
        raise TypeError(f"settings must be a BenchSettings, got {type(settings).__name__}")
    return replace(settings, **options) if options else settings


def _plan(target, tokenizer, questions, methods, settings: BenchSettings, hf_drafter, prompt_ids) -> _Plan:
    """Check the methods and questions, build the drafters and encode every prompt: all before the first forward."""
    methods = default_methods() if methods is None else [tuple(m) for m in methods]
    check_methods(methods)
    if not questions:
        raise ValueError("no questions to benchmark")
    with _global_rng_kept(target.device):  # a drafter's heads (medusa, eagle) are initialised before their weights load
        drafters = {d: build_drafter(d, target, tokenizer, **settings.drafter_options.get(d, {}))
                    for d in dict.fromkeys(d for d, _ in methods)}
    encoded = encode_questions(target, tokenizer, questions, settings.max_new_tokens,
                               _drafter_models(target, drafters, hf_drafter), prompt_ids)
    hf_runs = _hf_runs(settings, hf_drafter)
    return _Plan(target=target, questions=list(questions), encoded=encoded, methods=methods, drafters=drafters,
                 hf_target=_with_own_generation_config(target) if hf_runs else None, hf_runs=hf_runs,
                 labels=[AR] + [label(d, v) for d, v in methods] + list(hf_runs),
                 header=_header(target, questions, settings), settings=settings)


def _hf_runs(settings: BenchSettings, hf_drafter) -> dict[str, dict]:
    """transformers' methods to run, label -> keyword arguments of its ``generate``."""
    runs = {}
    if settings.hf_baselines:
        runs[HF_GENERATE] = {}
        if hf_drafter is not None:  # the same algorithm as ours: exactly γ drafts per step, every step
            assistant = _with_own_generation_config(hf_drafter, **assistant_generation_config(settings.gamma))
            runs[HF_ASSISTED] = {"assistant_model": assistant}
        runs[HF_LOOKUP] = {"prompt_lookup_num_tokens": settings.gamma}
    return runs | settings.hf_extra


def _with_own_generation_config(model, **settings):
    """``model`` with a ``generation_config`` of its own: a shallow copy sharing its weights, modules and config, holding
    a deep copy of its generation_config with ``settings`` set on it. transformers reads an assistant's settings from
    the assistant model's generation_config (and writes its heuristic γ back there), so the caller's model is never
    edited."""
    own = copy.copy(model)
    own.generation_config = copy.deepcopy(model.generation_config)
    for key, value in settings.items():
        setattr(own.generation_config, key, value)
    return own


def _header(target, questions: list[Question], s: BenchSettings) -> dict:
    """The machine, the versions and the run's settings, for the report."""
    return {
        "machine": platform.platform(), "processor": platform.processor() or platform.machine(), "device": str(target.device),
        "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "target_parameters": sum(p.numel() for p in target.parameters()),
        "gamma": s.gamma, "max_new_tokens": s.max_new_tokens, "temperature": s.temperature, "seed": s.seed,
        "questions": len(questions), "tasks": list(dict.fromkeys(q.task for q in questions)), "repeats": s.repeats,
        "dtype": str(target.dtype).replace("torch.", ""),
    } | s.header_extra


def _measure(plan: _Plan, on_progress: Callable[[dict], None] | None) -> dict:
    """Every question in turn (a warm-up first), handing the partial result to ``on_progress`` after each."""
    from ..core.progress import finish, progress_bar as tqdm

    s = plan.settings
    generate_autoregressive(plan.target, plan.encoded[0], max_new_tokens=4)  # warm-up: the first forward of a process is slow
    records = []
    runs_per_question = s.repeats * (1 + len(plan.methods) + len(plan.hf_runs))
    bar = tqdm(total=len(plan.questions) * runs_per_question, desc="bench", unit="run", disable=not s.progress)
    try:
        for i, (q, ids) in enumerate(zip(plan.questions, plan.encoded)):
            records += _measure_question(plan, i, q, ids, bar)
            if on_progress is not None and i + 1 < len(plan.questions):
                on_progress(_result(plan, records, i + 1))
    finally:
        # also on an error or an interrupt: the bar's last line ends before the message; in a notebook its final
        # state is printed as text too, for views without widget state
        if s.progress:
            finish(bar)
        else:
            bar.close()
    return _result(plan, records, len(plan.questions))


def _measure_question(plan: _Plan, i: int, q: Question, ids: list[int], bar) -> list[dict]:
    """One record per method and repeat on question ``i``: our autoregressive loop first, every other method compared
    with its output."""
    reference = []  # our autoregressive output, filled by its first run
    records = []
    for repeat in range(plan.settings.repeats):
        for name, fn, ours in _question_runs(plan, i, ids, reference):
            try:
                out, seconds, peak = _timed(fn, plan.target.device)
            except Exception as err:
                if hasattr(err, "add_note"):  # Python 3.11+
                    err.add_note(f"while running {name} on question {q.question_id!r} (task {q.task!r})")
                raise
            if name == AR and not reference:
                reference.extend(out.token_ids)
            records.append({"task": q.task, "question_id": q.question_id, "method": name, "repeat": repeat,
                            "seconds": seconds, "peak_mib": peak,
                            **(trace_record(out, plan.settings.gamma) if ours else out)})
            bar.update()
    return records


def _question_runs(plan: _Plan, i: int, ids: list[int], reference: list[int]) -> list[tuple[str, Callable, bool]]:
    """(label, run, ours) for every method on question ``i``; ours return a trace, transformers' a record."""
    s, target, seed = plan.settings, plan.target, plan.settings.seed + i
    common = dict(max_new_tokens=s.max_new_tokens, min_new_tokens=s.max_new_tokens, temperature=s.temperature)
    runs = [(AR, lambda: generate_autoregressive(target, ids, seed=seed, **common), True)]
    runs += [(label(d, v), lambda d=d, v=v: generate_speculative(target, plan.drafters[d], ids, gamma=s.gamma, verifier=v,
                                                                  seed=seed, reference=reference, **common), True)
             for d, v in plan.methods]
    runs += [(name, lambda extra=extra: _hf_generate(plan.hf_target, ids, reference, s, seed, extra), False)
             for name, extra in plan.hf_runs.items()]
    return runs


def _hf_generate(model, ids: list[int], reference: list[int], s: BenchSettings, seed: int, extra: dict) -> dict:
    """transformers' ``generate`` on one prompt (sampling seeded with ``seed``, the global RNG left as it was)."""
    x = torch.tensor([ids], device=model.device)
    sampling = dict(do_sample=False)
    if s.temperature > 0:
        sampling = dict(do_sample=True, temperature=s.temperature, top_k=0, top_p=None)
    with _global_rng_kept(model.device, seed=seed), torch.inference_mode():
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=s.max_new_tokens,
                             min_new_tokens=s.max_new_tokens, pad_token_id=model.config.eos_token_id, **sampling, **extra)
    tokens = out[0, x.shape[1]:].tolist()
    return {"tokens": len(tokens), "diverged_at": first_divergence(tokens, reference) if reference else None,
            "compared": bool(reference)}


@contextmanager
def _global_rng_kept(device: torch.device, seed: int | None = None):
    """Inside, code may draw from torch's global RNGs (the CPU's and ``device``'s), seeded with ``seed`` if given
    (transformers samples from them); on leaving, both are back in the state they had, so the caller's stream is
    untouched."""
    accelerator = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if accelerator else [], device_type=device.type if accelerator else "cuda"):
        if seed is not None:
            torch.default_generator.manual_seed(seed)
            if device.type == "cuda":
                index = torch.cuda.current_device() if device.index is None else device.index
                torch.cuda.default_generators[index].manual_seed(seed)
            elif accelerator:
                torch.get_device_module(device.type).manual_seed(seed)
        yield


def _result(plan: _Plan, records: list[dict], done: int) -> dict:
    """The JSON-able result after ``done`` questions: the records and their summary (medians of the repeats)."""
    return {"header": plan.header, "methods": plan.labels, "records": records,
            "summary": summarize(median_records(records), plan.labels, plan.settings.gamma),
            "complete": done == len(plan.questions), "questions_done": done}


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
