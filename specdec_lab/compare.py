"""Several drafter × verifier combinations on the same prompts, each timed side by side with the baseline.

For each method and each prompt an autoregressive run of the same prompt and settings
is timed right before the speculative run, so both see the same machine state; then

    speed = Σ baseline seconds / Σ speculative seconds        (equal token counts: min_new_tokens = max_new_tokens)
    α     = accepted / checked drafts (the formulas' per-token rate; trees: along the branch shown)
    acceptance_rate = accepted / drafted (drafts after a step's first rejection count as not accepted)
    τ     = new tokens / steps   (the target's own token included)
    c, v  = measured cost of one drafted position / of one verification forward, in baseline forwards
    predicted = (1 − α^(γ+1)) / ((1 − α)(γc + 1));  predicted_v: the same with v in place of 1

The notebooks and ``benchmarks/bench_catalogue.py`` use this; figures, not assertions.
"""

from __future__ import annotations

import html
import math
import time

from .decode import generate_autoregressive, generate_speculative
from .registry import DRAFTERS, VERIFIERS, build_drafter
from .theory import speedup


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


def lossless(verifier: str) -> bool:
    return VERIFIERS[verifier].lossless


def measure(target, tokenizer, drafter: str, verifier: str, prompts: list[list[int]], gamma: int = 4,
            max_new_tokens: int = 48, temperature: float = 0.0, drafter_options: dict | None = None) -> dict:
    """One method over ``prompts`` (token ids): α, τ, target forwards per 100 tokens, speed vs autoregressive, ms/token."""
    built = build_drafter(drafter, target, tokenizer, **(drafter_options or {}))
    t_base = t_spec = draft_s = verify_s = 0.0
    accepted = drafted = checked = steps = forwards = tokens = 0
    for seed, ids in enumerate(prompts):
        common = dict(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        start = time.perf_counter()
        generate_autoregressive(target, ids, **common)
        t_base += time.perf_counter() - start
        start = time.perf_counter()
        out = generate_speculative(target, built, ids, gamma=gamma, verifier=verifier, **common)
        t_spec += time.perf_counter() - start
        s = out.stats
        accepted, drafted, checked, steps = accepted + s.accepted, drafted + s.drafted, checked + s.checked, steps + s.steps
        forwards, tokens = forwards + s.target_forwards, tokens + s.new_tokens
        draft_s, verify_s = draft_s + s.draft_time_s, verify_s + s.verify_time_s
    alpha = accepted / checked if checked else float("nan")
    c, v = measured_costs(draft_s, verify_s, steps, gamma, t_base / tokens)
    predicted, predicted_v = predictions(alpha, gamma, c, v)
    return {"drafter": drafter, "verifier": verifier, "T": temperature, "gamma": gamma, "alpha": alpha,
            "acceptance_rate": accepted / drafted if drafted else float("nan"),
            "tau": tokens / steps, "forwards_per_100": 100 * forwards / tokens, "speed": t_base / t_spec,
            "ms_per_token": 1000 * t_spec / tokens, "c": c, "v": v, "predicted": predicted, "predicted_v": predicted_v}


def compare(target, tokenizer, methods: list[tuple[str, str]], prompts: list[str], **options) -> list[dict]:
    """:func:`measure` for each (drafter, verifier) pair, on prompts given as text; one warm-up run first."""
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    generate_autoregressive(target, ids[0], max_new_tokens=4)  # warm-up: the first forward is always slow
    return [measure(target, tokenizer, d, v, ids, **options) for d, v in methods]


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"


COLUMNS = ("T", "drafter", "family", "verifier", "lossless", "α", "τ", "target forwards / 100 tokens", "speed vs autoregressive")


def _cells(r: dict) -> list[str]:
    return [f"{r['T']:g}", r["drafter"], DRAFTERS[r["drafter"]].family, r["verifier"],
            "yes" if lossless(r["verifier"]) else "no (lossy)", _fmt(r["alpha"]), _fmt(r["tau"]),
            f"{r['forwards_per_100']:.0f}", f"{r['speed']:.2f}×"]


def table_markdown(rows: list[dict], first: tuple[str, ...] = ()) -> str:
    """The rows as a Markdown table; ``first`` names extra row keys shown as leading columns (e.g. "task")."""
    lines = ["| " + " | ".join(first + COLUMNS) + " |", "|" + "---|" * (len(first) + len(COLUMNS))]
    lines += ["| " + " | ".join([str(r[k]) for k in first] + _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def table_html(rows: list[dict], first: tuple[str, ...] = ()) -> str:
    """The rows as an HTML table (static: GitHub, nbviewer); ``first`` as in :func:`table_markdown`."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in first + COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in [str(r[k]) for k in first] + _cells(r)) + "</tr>"
                   for r in rows)
    return f'<table class="sdl-metrics"><tr>{head}</tr>{body}</table>'
