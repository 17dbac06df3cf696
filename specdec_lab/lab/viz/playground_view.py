"""The playground's views of its runs: the metrics table, the tree-shape line, the runs table, the speedup chart.

Pure functions of :class:`~.playground_metrics.PlaygroundRun` values (HTML strings and plotly figures); the widget
(:mod:`.playground`) only puts them on screen. The chart draws the measured points against the theorem's curve over γ
for the latest run's α and c:

    Ŝ(γ) = (1 − α^(γ+1)) / ((1 − α)(γc + 1))
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from ...core.theory import expected_tokens_per_step, speedup
from ...verifiers.tree_shape import tree_nodes
from .html import COLORS
from .playground_metrics import PlaygroundRun
from .tree_policy import TreeChoice

# The γ slider's range, which the theory curve spans too: a UI choice, past 12 the curve is flat on every bundled pair.
SLIDER_MAX_GAMMA = 12
PLAYGROUND_STYLE = """
<style>
.sdl-metrics{border-collapse:collapse;margin:6px 0}
.sdl-metrics th,.sdl-metrics td{border:1px solid #ddd;padding:1px 8px;text-align:right}
.sdl-metrics th{text-align:left;font-weight:normal;color:#333}
.sdl-error{color:#D55E00;border-left:4px solid #D55E00;padding:2px 8px;margin:4px 0;white-space:pre-wrap}
.sdl-busy{color:#555}
.sdl-compact .sdl-view br{display:none}
.sdl-compact .sdl-prompt{white-space:pre-wrap}
.sdl-compact .sdl-view{line-height:1.9}
</style>
"""
BUSY_HTML = PLAYGROUND_STYLE + '<div class="sdl-busy">running…</div>'


def compact(fragment: str) -> str:
    """A token view with its newlines shown as ↵ in the line rather than as line breaks, and the prompt wrapped: a
    chat answer full of blank lines stays a few lines tall."""
    return PLAYGROUND_STYLE + f'<div class="sdl-compact">{fragment}</div>'


def fmt(x: float | None, digits: int = 2) -> str:
    """``x`` to ``digits`` decimals; "n/a" for None or nan."""
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def error_html(message: str) -> str:
    """An error message, shown in place of the status line."""
    return PLAYGROUND_STYLE + f'<div class="sdl-error">⚠ {html.escape(message)}</div>'


def metrics_html(point: PlaygroundRun) -> str:
    """One run's metrics as a table, captioned with its settings."""
    s = point.settings
    rows = [
        ("α (accepted ÷ checked)", fmt(point.alpha)),
        ("draft yield (accepted ÷ drafted)", fmt(point.acceptance_rate)),
        ("tokens per step τ (formula at α: " + (fmt(expected_tokens_per_step(point.alpha, s.gamma))
                                              if not math.isnan(point.alpha) else "n/a") + ")", fmt(point.tau)),
        ("speculative ms/token", fmt(point.ms_per_token, 1)),
        ("autoregressive ms/token (baseline)", fmt(point.baseline_ms_per_token, 1)),
        ("drafter cost ratio c (one drafted position ÷ one target forward)", fmt(point.cost_ratio, 3)),
        ("verification cost v (one forward over γ+1 tokens ÷ one over 1)", fmt(point.verify_cost, 2)),
        ("<b>measured speedup</b>", f"<b>{fmt(point.measured_speedup)}×</b>"),
        ("predicted speedup (1 − α<sup>γ+1</sup>) / ((1 − α)(γc + 1))", f"{fmt(point.predicted_speedup)}×"),
        ("… with the measured v: (1 − α<sup>γ+1</sup>) / ((1 − α)(γc + v))", f"{fmt(point.predicted_speedup_v)}×"),
    ]
    caption = (f"{html.escape(s.drafter)} + {html.escape(s.verifier)}, γ = {s.gamma}, T = {s.temperature:g}, "
               f"top-p = {s.top_p:g}, {s.max_new_tokens} new tokens")
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="sdl-metrics"><caption>{caption}</caption>{body}</table>'


def tree_choice_html(choice: TreeChoice | None, earlier_runs: int, measured_tau: float) -> str:
    """The tree shape a run used (chosen from ``earlier_runs`` tree runs), predicted τ against measured; "" if none."""
    if choice is None:
        return ""
    return (f'<div>tree shape {choice.branching} ({tree_nodes(choice.branching)} nodes), chosen from the acceptance '
            f'measured in {earlier_runs} earlier tree run(s): predicted τ {choice.predicted_tau:.2f}, '
            f'measured {fmt(measured_tau)}</div>')


def runs_table_html(runs: list[PlaygroundRun]) -> str:
    """Every run as one table row (the static fallback of the chart)."""
    head = "<tr><th>drafter</th><th>verifier</th><th>γ</th><th>T</th><th>α</th><th>τ</th><th>ms/token</th><th>speedup</th><th>predicted</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(r.settings.drafter)}</td><td>{html.escape(r.settings.verifier)}</td><td>{r.settings.gamma}</td>"
        f"<td>{r.settings.temperature:g}</td><td>{fmt(r.alpha)}</td><td>{fmt(r.tau)}</td><td>{fmt(r.ms_per_token, 1)}</td>"
        f"<td>{fmt(r.measured_speedup)}×</td><td>{fmt(r.predicted_speedup)}×</td></tr>"
        for r in runs)
    return PLAYGROUND_STYLE + f'<table class="sdl-metrics"><caption>all runs</caption>{head}{rows}</table>'


def series_key(run: PlaygroundRun) -> str:
    """The chart's series a run belongs to: its drafter, and its temperature where it is not 0."""
    s = run.settings
    return s.drafter if s.temperature == 0 else f"{s.drafter}, T = {s.temperature:g}"


def speedup_figure(runs: list[PlaygroundRun], max_gamma: int = SLIDER_MAX_GAMMA) -> go.Figure:
    """Measured speedups (points, one series per drafter and temperature) against the formula's curve over γ for the
    latest run's α and c. With several series, each is nudged sideways by a fixed offset (at most ±0.3 of a γ step)
    so runs at the same γ stay apart; the hover text gives the exact γ."""
    fig = go.Figure()
    fig.add_hline(y=1.0, line_dash="dot", line_color="#999")
    if runs:
        last = runs[-1]
        if not math.isnan(last.predicted_speedup):
            gammas = list(range(1, max_gamma + 1))
            fig.add_scatter(x=gammas, y=[speedup(last.alpha, g, last.cost_ratio) for g in gammas], mode="lines",
                            name=f"formula (α = {last.alpha:.2f}, c = {last.cost_ratio:.2f})",
                            line=dict(color=COLORS["corrected"], dash="dash"))
        names = list(dict.fromkeys(series_key(r) for r in runs))
        for i, name in enumerate(names):
            mine = [r for r in runs if series_key(r) == name]
            offset = 0.0 if len(names) == 1 else 0.6 * (i / (len(names) - 1) - 0.5)
            fig.add_scatter(
                x=[r.settings.gamma + offset for r in mine], y=[r.measured_speedup for r in mine], mode="markers",
                name=name, marker=dict(size=9, symbol=["circle", "square", "diamond", "triangle-up", "x", "star"][i % 6]),
                text=[f"γ={r.settings.gamma}, {r.settings.verifier}, T={r.settings.temperature:g}, α={fmt(r.alpha)}"
                      for r in mine],
                hovertemplate="%{text}<br>speedup %{y:.2f}×<extra>%{fullData.name}</extra>",
            )
    fig.update_layout(title="speedup over autoregressive decoding", xaxis_title="draft length γ",
                      yaxis_title="speedup (×)", height=340, margin=dict(l=50, r=10, t=40, b=40),
                      xaxis=dict(range=[0.5, max_gamma + 0.5], dtick=1), legend=dict(font=dict(size=10)))
    return fig
