"""Several drafter × verifier combinations on the same prompts, each timed side by side with the baseline.

For each prompt an autoregressive run of the same prompt and settings is timed right
before the speculative runs of every method (``repeats`` times, interleaved), so all see
the same machine state; then

the metrics are the benchmark's (``specdec_lab.bench.metrics``, one definition for both):
speed = mean tokens/s over prompts ÷ the baseline's (Spec-Bench), α = accepted / checked
drafts, τ = tokens per step, c and v the measured costs of a drafted position and of a
verification forward, and the formula's predictions from them.

The notebooks and ``benchmarks/bench_catalogue.py`` use this; figures, not assertions.
"""

from __future__ import annotations

import html
import math
import time

from ..decode import generate_autoregressive, generate_speculative
from .markdown import markdown_text
from .timing import busy_warning, median_range, relative_spread
from .metrics import AR, label, summarize, trace_record
from ..registry import DRAFTERS, VERIFIERS, build_drafter
from ..models.smollm2 import prompt_ids


def lossless(verifier: str) -> bool:
    return VERIFIERS[verifier].lossless


def measure(target, tokenizer, drafter: str, verifier: str, prompts: list[list[int]], gamma: int = 4,
            max_new_tokens: int = 48, temperature: float = 0.0, drafter_options: dict | None = None,
            repeats: int = 1) -> dict:
    """One method over ``prompts`` (token ids), each prompt right after its baseline, ``repeats`` times interleaved;
    the benchmark's metrics (``metrics.summarize``) plus the short names the tables use: speed (the median of the
    repeats' speedups), speed_low / speed_high (their range), speed_repeats, forwards_per_100, ms_per_token, drafted_per_step."""
    return measure_many(target, tokenizer, [(drafter, verifier)], prompts, gamma, max_new_tokens, temperature,
                        drafter_options, repeats)[0]


def measure_many(target, tokenizer, methods: list[tuple[str, str]], prompts: list[list[int]], gamma: int = 4,
                 max_new_tokens: int = 48, temperature: float = 0.0, drafter_options: dict | None = None,
                 repeats: int = 1) -> list[dict]:
    """:func:`measure` for several (drafter, verifier) pairs that share one baseline: for each repeat and prompt, one
    autoregressive run, then every method right after it. Each method's speedup is over the baseline runs of its own
    repeat, so a burst of load in one repeat shows as spread instead of moving one method."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    built = [(label(d, v), v, build_drafter(d, target, tokenizer, **(drafter_options or {}))) for d, v in methods]
    records = []
    for repeat in range(repeats):
        for seed, ids in enumerate(prompts):
            common = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
            runs = [(AR, lambda: generate_autoregressive(target, ids, **common))]
            runs += [(name, lambda d=drafter, v=verifier: generate_speculative(target, d, ids, gamma=gamma, verifier=v, **common))
                     for name, verifier, drafter in built]
            for name, run in runs:
                start = time.perf_counter()
                out = run()
                records.append({"task": "prompts", "question_id": seed, "method": name, "repeat": repeat,
                                "seconds": time.perf_counter() - start, "peak_mib": None, **trace_record(out, gamma)})
    return [_method_row(records, drafter, verifier, method, gamma, temperature, repeats)
            for (drafter, verifier), (method, _, _) in zip(methods, built)]


def _method_row(records: list[dict], drafter: str, verifier: str, method: str, gamma: int, temperature: float,
                repeats: int) -> dict:
    per_repeat = [_row([r for r in records if r["repeat"] == k], method, gamma)["speedup"] for k in range(repeats)]
    speed, low, high = median_range(per_repeat)
    row = _row(records, method, gamma)
    mine = [r for r in records if r["method"] == method]
    tokens = sum(r["tokens"] for r in mine)
    return row | {"drafter": drafter, "verifier": verifier, "T": temperature, "gamma": gamma, "speed": speed,
                  "speed_low": low, "speed_high": high, "speed_repeats": per_repeat,
                  "forwards_per_100": 100 * row["forwards_per_token"], "ms_per_token": 1000 * sum(r["seconds"] for r in mine) / tokens,
                  "prefill_per_100": 100 * sum(r["target_forwards"] - r["steps"] for r in mine) / tokens,
                  "drafted_per_step": sum(r["drafted"] for r in mine) / sum(r["steps"] for r in mine)}


def _row(records: list[dict], method: str, gamma: int) -> dict:
    return next(r for r in summarize(records, [AR, method], gamma) if (r["task"], r["method"]) == ("all", method))


def compare(target, tokenizer, methods: list[tuple[str, str]], prompts: list[str], **options) -> list[dict]:
    """:func:`measure_many` on prompts given as text (through the chat template when the tokenizer has one;
    ``repeats=`` among the options); one warm-up run first."""
    ids = [prompt_ids(tokenizer, p) for p in prompts]
    generate_autoregressive(target, ids[0], max_new_tokens=4)  # warm-up: the first forward is always slow
    return measure_many(target, tokenizer, methods, ids, **options)


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"


COLUMNS = ("T", "drafter", "family", "verifier", "lossless", "α", "τ", "target forwards / 100 tokens", "speed vs autoregressive")


def _cells(r: dict) -> list[str]:
    return [f"{r['T']:g}", r["drafter"], DRAFTERS[r["drafter"]].family, r["verifier"],
            "yes" if lossless(r["verifier"]) else "no (lossy)", _fmt(r["alpha"]), _fmt(r["tau"]),
            _forwards(r), _speed(r)]


def _forwards(r: dict) -> str:
    """'106 = 6 prefill + 100 steps': one target forward per step (a side branch, lookahead's, rides inside it), and
    each prompt's prefill, which the autoregressive baseline folds into its first step."""
    total = round(r["forwards_per_100"])
    if "prefill_per_100" not in r:
        return f"{total}"
    prefill = round(r["prefill_per_100"])
    return f"{total} = {prefill} prefill + {total - prefill} steps"


def _speed(r: dict) -> str:
    """The median speedup, with the range of the repeats when there were several."""
    repeats = r.get("speed_repeats", [])
    spread = f" ({r['speed_low']:.2f}–{r['speed_high']:.2f}, {len(repeats)} repeats)" if len(repeats) > 1 else ""
    return f"{r['speed']:.2f}×{spread}"


def timing_warning(rows: list[dict]) -> str | None:
    """:func:`specdec_lab.bench.timing.busy_warning` for a table: the machine's load now, and the widest spread of repeats."""
    widest = max((r.get("speed_repeats") or [] for r in rows), key=lambda v: relative_spread(v) if v else 0.0, default=[])
    return busy_warning(widest)


def table_markdown(rows: list[dict], first: tuple[str, ...] = ()) -> str:
    """The rows as a Markdown table; ``first`` names extra row keys shown as leading columns (e.g. "task")."""
    lines = ["| " + " | ".join(first + COLUMNS) + " |", "|" + "---|" * (len(first) + len(COLUMNS))]
    lines += ["| " + " | ".join(markdown_text(c) for c in [str(r[k]) for k in first] + _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def table_html(rows: list[dict], first: tuple[str, ...] = ()) -> str:
    """The rows as an HTML table (static: GitHub, nbviewer); ``first`` as in :func:`table_markdown`. Below it, a
    warning when the machine is busy or the repeats disagree (:func:`timing_warning`)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in first + COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in [str(r[k]) for k in first] + _cells(r)) + "</tr>"
                   for r in rows)
    warning = timing_warning(rows)
    note = f'<p class="sdl-warning">{html.escape(warning)}</p>' if warning else ""
    return f'<table class="sdl-metrics"><tr>{head}</tr>{body}</table>{note}'
