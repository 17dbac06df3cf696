"""The latency playground: slide γ, temperature and top-p, pick a drafter and a verifier, and watch the speed.

Every run decodes ``max_new_tokens`` with :func:`generate_speculative` and compares it with
the autoregressive baseline on the same prompt and settings, on this machine:

    measured speedup   S = (baseline ms/token) / (speculative ms/token)
    predicted speedup  Ŝ = (1 − α^(γ+1)) / ((1 − α)(γc + 1))        (Leviathan et al. 2023, Thm 3.8)

with α = accepted ÷ checked drafts (Stats.alpha; the acceptance rate, accepted ÷ drafted, is shown
beside it) and c the measured cost of one drafted position relative to one target forward:
c = (draft time per step / γ) / (baseline time per token). The theorem assumes verifying γ + 1
tokens costs one forward; the playground also shows Ŝ with the measured verification cost v in
place of that 1, and the rest of any gap is
the loop's own overhead (and timing noise: on a busy 2-core CPU about ±10%). The baseline is measured once per
(prompt, temperature, top-p) and reused, so moving γ or switching drafters costs one
speculative run only. A chart accumulates the runs: measured points against the
formula's curve over γ for the latest α and c.

Widgets call :meth:`Playground.request`; runs happen on a worker thread, newest request
wins: a change made while a run is in progress supersedes it (the run stops at its next
phase and its result is dropped), so however fast the sliders move, only the latest
settings are rendered. Errors show in the widget; the previous result stays.
``background=False`` runs requests synchronously (tests, scripts).

The **tree budget** slider applies to the tree verifiers: every tree run adds its steps to a count of how often the
rank-r candidate at depth d was accepted (:mod:`specdec_lab.verifiers.tree_shape`), and with a budget of N nodes the next tree
run uses the branching vector with the largest predicted tokens per step within N nodes. The first tree run, with
nothing measured yet, uses the verifier's default shape. The metrics show the shape, and its prediction next to
the measured τ.
"""

from __future__ import annotations

import html
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go

from ...core.checks import check_gamma
from ...core.config import MAX_GAMMA
from ...decode import generate_autoregressive, generate_speculative
from ...bench.metrics import measured_costs, predictions
from ...registry import DRAFTERS, VERIFIERS, build_drafter, build_verifier
from ...core.theory import expected_tokens_per_step, speedup
from ...core.trace import GenerationOutput
from ...verifiers.tree_shape import acceptance_by_rank, best_branching, rates, tree_nodes
from .charts import draw, make_chart
from .html import COLORS, STYLE, save_html, token_view_html
from .keyboard import scoped_vbox

# The γ slider's range (the theory curve spans it too): a UI choice, past 12 the curve is flat on every bundled pair.
# The engine's limit is config.MAX_GAMMA; the slider stays inside it.
SLIDER_MAX_GAMMA = 12
assert SLIDER_MAX_GAMMA <= MAX_GAMMA
PLAYGROUND_STYLE = """
<style>
.sdl-metrics{border-collapse:collapse;margin:6px 0}
.sdl-metrics th,.sdl-metrics td{border:1px solid #ddd;padding:1px 8px;text-align:right}
.sdl-metrics th{text-align:left;font-weight:normal;color:#333}
.sdl-error{color:#D55E00;border-left:4px solid #D55E00;padding:2px 8px;margin:4px 0;white-space:pre-wrap}
.sdl-busy{color:#555}
</style>
"""


class Superseded(Exception):
    """A newer request arrived while this run was in progress."""


@dataclass(frozen=True)
class Settings:
    prompt: str
    drafter: str
    verifier: str
    gamma: int
    temperature: float
    top_p: float  # 1.0: no top-p filter
    max_new_tokens: int
    tree_budget: int = 0  # tree verifiers: the node budget of the tree shape chosen from measured acceptance (0: default shape)


@dataclass(frozen=True)
class PlaygroundRun:
    """One point of the chart: the settings and what they measured."""

    settings: Settings
    alpha: float  # α = accepted / checked drafts, the formula's per-token probability (nan if none was checked)
    acceptance_rate: float  # accepted / drafted (unchecked drafts after a rejection count as not accepted)
    tau: float  # mean tokens per step, the target's own token included
    ms_per_token: float
    baseline_ms_per_token: float
    cost_ratio: float  # c: one drafted position / one target forward
    verify_cost: float  # v: one verification forward over γ+1 tokens / one target forward over 1 token
    measured_speedup: float
    predicted_speedup: float  # the theorem at (α, γ, c), v = 1; nan without α
    predicted_speedup_v: float  # the same with the measured v


def summarize_run(settings: Settings, run: GenerationOutput, baseline: GenerationOutput) -> PlaygroundRun:
    """The playground's metrics for a speculative run and its baseline (see the module docstring)."""
    base_s = baseline.stats.wall_time_s / max(baseline.stats.new_tokens, 1)
    s = run.stats
    c, v = measured_costs(s.draft_time_s, s.verify_time_s, s.steps, settings.gamma, base_s)
    predicted, predicted_v = predictions(s.alpha, settings.gamma, c, v)
    return PlaygroundRun(
        settings=settings, alpha=s.alpha, acceptance_rate=s.acceptance_rate, tau=s.mean_tokens_per_step, ms_per_token=s.ms_per_token,
        baseline_ms_per_token=baseline.stats.ms_per_token, cost_ratio=c, verify_cost=v,
        measured_speedup=baseline.stats.ms_per_token / s.ms_per_token,
        predicted_speedup=predicted, predicted_speedup_v=predicted_v,
    )


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def metrics_html(point: PlaygroundRun) -> str:
    s = point.settings
    rows = [
        ("α (accepted ÷ checked drafts)", _fmt(point.alpha)),
        ("acceptance rate (accepted ÷ drafted)", _fmt(point.acceptance_rate)),
        ("tokens per step τ (formula at α: " + (_fmt(expected_tokens_per_step(point.alpha, s.gamma))
                                              if not math.isnan(point.alpha) else "n/a") + ")", _fmt(point.tau)),
        ("speculative ms/token", _fmt(point.ms_per_token, 1)),
        ("autoregressive ms/token (baseline)", _fmt(point.baseline_ms_per_token, 1)),
        ("drafter cost ratio c (one drafted position ÷ one target forward)", _fmt(point.cost_ratio, 3)),
        ("verification cost v (one forward over γ+1 tokens ÷ one over 1)", _fmt(point.verify_cost, 2)),
        ("<b>measured speedup</b>", f"<b>{_fmt(point.measured_speedup)}×</b>"),
        ("predicted speedup (1 − α<sup>γ+1</sup>) / ((1 − α)(γc + 1))", f"{_fmt(point.predicted_speedup)}×"),
        ("… with the measured v: (1 − α<sup>γ+1</sup>) / ((1 − α)(γc + v))", f"{_fmt(point.predicted_speedup_v)}×"),
    ]
    caption = (f"{html.escape(s.drafter)} + {html.escape(s.verifier)}, γ = {s.gamma}, T = {s.temperature:g}, "
               f"top-p = {s.top_p:g}, {s.max_new_tokens} new tokens")
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="sdl-metrics"><caption>{caption}</caption>{body}</table>'


def speedup_figure(runs: list[PlaygroundRun], max_gamma: int = SLIDER_MAX_GAMMA) -> go.Figure:
    """Measured speedups (points, by drafter) against the formula's curve over γ for the latest run's α and c."""
    fig = go.Figure()
    fig.add_hline(y=1.0, line_dash="dot", line_color="#999")
    if runs:
        last = runs[-1]
        if not math.isnan(last.predicted_speedup):
            gammas = list(range(1, max_gamma + 1))
            fig.add_scatter(x=gammas, y=[speedup(last.alpha, g, last.cost_ratio) for g in gammas], mode="lines",
                            name=f"formula (α = {last.alpha:.2f}, c = {last.cost_ratio:.2f})",
                            line=dict(color=COLORS["corrected"], dash="dash"))
        for i, name in enumerate(dict.fromkeys(r.settings.drafter for r in runs)):
            mine = [r for r in runs if r.settings.drafter == name]
            fig.add_scatter(
                x=[r.settings.gamma for r in mine], y=[r.measured_speedup for r in mine], mode="markers", name=name,
                marker=dict(size=9, symbol=["circle", "square", "diamond", "triangle-up", "x", "star"][i % 6]),
                text=[f"{r.settings.verifier}, T={r.settings.temperature:g}, α={_fmt(r.alpha)}" for r in mine],
                hovertemplate="γ=%{x}<br>speedup %{y:.2f}×<br>%{text}<extra>%{fullData.name}</extra>",
            )
    fig.update_layout(title="speedup over autoregressive decoding", xaxis_title="draft length γ",
                      yaxis_title="speedup (×)", height=340, margin=dict(l=50, r=10, t=40, b=40),
                      xaxis=dict(range=[0.5, max_gamma + 0.5], dtick=1), legend=dict(font=dict(size=10)))
    return fig


class Playground:
    """The widget: ``.widget`` to display; ``.runs``, ``.html``, ``.figure``, ``.error`` to read; ``.renders`` counts results shown."""

    def __init__(self, target, tokenizer, prompt: str = "ROMEO.\n", drafter: str = "distilled", verifier: str = "speculative",
                 gamma: int = 4, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 48, seed: int = 0,
                 drafters=None, verifiers=None, drafter_options: dict | None = None, background: bool = True,
                 run_now: bool = True):
        self.target, self.tokenizer, self.seed, self.background = target, tokenizer, seed, background
        self.drafter_options = drafter_options or {}  # name -> options for build_drafter (e.g. another model)
        self.runs: list[PlaygroundRun] = []
        self.last_output: GenerationOutput | None = None
        self.html, self.error, self.renders = "", None, 0
        self._baselines: dict[tuple, GenerationOutput] = {}
        self._tree_runs: list[GenerationOutput] = []  # every tree-verified run so far: the shape optimiser's data
        self.tree_choice: tuple[tuple[int, ...], float] | None = None  # the last chosen (branching, predicted τ)
        self._lock = threading.Lock()
        self._latest, self._pending, self._worker = 0, None, None

        slider = dict(continuous_update=False, style={"description_width": "90px"})
        self.prompt = widgets.Textarea(value=prompt, description="prompt", layout=widgets.Layout(width="98%", height="60px"))
        self.drafter = widgets.Dropdown(options=list(drafters or DRAFTERS), value=drafter, description="drafter")
        self.verifier = widgets.Dropdown(options=list(verifiers or VERIFIERS), value=verifier, description="verifier")
        self.gamma = widgets.IntSlider(value=check_gamma(gamma), min=1, max=max(SLIDER_MAX_GAMMA, gamma),
                                       description="γ (draft)", **slider)
        self.temperature = widgets.FloatSlider(value=temperature, min=0.0, max=1.5, step=0.1, description="temperature", **slider)
        self.top_p = widgets.FloatSlider(value=top_p, min=0.05, max=1.0, step=0.05, description="top-p", **slider)
        self.max_new_tokens = widgets.IntSlider(value=max_new_tokens, min=8, max=256, step=8, description="new tokens", **slider)
        self.tree_budget = widgets.IntSlider(value=0, min=0, max=32, step=1, description="tree budget", **slider)
        self.run_button = widgets.Button(description="run", button_style="primary", icon="play")
        self.run_button.on_click(lambda _: self.request())
        for w in (self.drafter, self.verifier, self.gamma, self.temperature, self.top_p, self.max_new_tokens, self.tree_budget):
            w.observe(lambda _: self.request(), names="value")
        self.status = widgets.HTML()
        self.output = widgets.HTML()
        self.chart = make_chart()
        self.figure = speedup_figure([])
        draw(self.chart, self.figure)
        self.widget = scoped_vbox([  # arrow keys on a dropdown pick, not move cells
            self.prompt,
            widgets.HBox([self.drafter, self.verifier, self.run_button]),
            widgets.HBox([self.gamma, self.temperature]),
            widgets.HBox([self.top_p, self.max_new_tokens]),
            self.tree_budget,
            self.status, self.output, self.chart,
        ], "sdl-playground", {
            "prompt": self.prompt, "drafter": self.drafter, "verifier": self.verifier, "gamma": self.gamma,
            "temperature": self.temperature, "top-p": self.top_p, "new-tokens": self.max_new_tokens, "tree-budget": self.tree_budget,
            "status": self.status, "run": self.run_button, "output": self.output, "chart": self.chart,
        }, part_prefix="sdl-pg-")
        if run_now:
            self.request()

    # -- requests -------------------------------------------------------------------------------------------

    def settings(self) -> Settings:
        return Settings(self.prompt.value, self.drafter.value, self.verifier.value, int(self.gamma.value),
                        float(self.temperature.value), float(self.top_p.value), int(self.max_new_tokens.value),
                        int(self.tree_budget.value))

    def request(self) -> None:
        """Run the widgets' current settings; supersedes any run in progress."""
        with self._lock:
            self._latest += 1
            self._pending = (self._latest, self.settings())
            self.status.value = PLAYGROUND_STYLE + '<div class="sdl-busy">running…</div>'
            if self.background:
                if self._worker is None:  # else the running worker picks the request up when its run ends
                    self._worker = threading.Thread(target=self._work, daemon=True)
                    self._worker.start()
                return
        self._work()

    def wait(self) -> None:
        """Block until every request so far is done (for tests and scripts)."""
        while (worker := self._worker) is not None:
            worker.join()

    def _work(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._worker = None
                    return
            number, settings = job
            try:
                result = self.measure(settings, stale=lambda: number != self._latest)
            except Superseded:
                continue
            except Exception as err:  # noqa: BLE001 - any failure is the user's to see, in the widget
                with self._lock:
                    if number == self._latest:
                        self.error = f"{type(err).__name__}: {err}"
                        self.status.value = PLAYGROUND_STYLE + f'<div class="sdl-error">⚠ {html.escape(self.error)}</div>'
                continue
            with self._lock:
                if number == self._latest:
                    self._render(*result)

    # -- one run ----------------------------------------------------------------------------------------------

    def measure(self, settings: Settings, stale=lambda: False) -> tuple[PlaygroundRun, GenerationOutput]:
        """Decode with ``settings`` (and the baseline, once per prompt and sampling setting); raise on bad input."""
        if not settings.prompt.strip():
            raise ValueError("the prompt is empty: type some text for the models to continue")
        prompt_ids = self.tokenizer(settings.prompt)["input_ids"]
        sampling = dict(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                        top_p=None if settings.top_p >= 1.0 else settings.top_p, seed=self.seed)
        drafter = build_drafter(settings.drafter, self.target, self.tokenizer, **self.drafter_options.get(settings.drafter, {}))
        verifier = self._verifier(settings)
        if stale():
            raise Superseded
        run = generate_speculative(self.target, drafter, prompt_ids, gamma=settings.gamma, verifier=verifier, **sampling)
        if VERIFIERS[settings.verifier].tree:
            self._tree_runs.append(run)
        key = (tuple(prompt_ids), tuple(sorted(sampling.items())))
        if key not in self._baselines:
            if stale():
                raise Superseded
            self._baselines[key] = generate_autoregressive(self.target, prompt_ids, **sampling)
        if stale():
            raise Superseded
        return summarize_run(settings, run, self._baselines[key]), run

    def _verifier(self, settings: Settings):
        """The verifier; a tree verifier with a budget gets the best shape for the acceptance measured so far."""
        self.tree_choice = None
        if not VERIFIERS[settings.verifier].tree or settings.tree_budget < 1:
            return build_verifier(settings.verifier)
        counts = acceptance_by_rank(self._tree_runs)
        if not counts:  # nothing measured yet: the default shape, whose steps start the count
            return build_verifier(settings.verifier)
        branching, predicted = best_branching(rates(counts), settings.tree_budget, max_depth=settings.gamma)
        self.tree_choice = (branching, predicted)
        return build_verifier(settings.verifier, branching=branching)

    def _render(self, point: PlaygroundRun, run: GenerationOutput) -> None:
        self.runs.append(point)
        self.last_output, self.error = run, None
        tree = ""
        if self.tree_choice is not None:
            branching, predicted = self.tree_choice
            tree = (f'<div>tree shape {branching} ({tree_nodes(branching)} nodes), chosen from the acceptance measured in '
                    f'{len(self._tree_runs) - 1} earlier tree run(s): predicted τ {predicted:.2f}, measured {_fmt(point.tau)}</div>')
        self.html = token_view_html(run, self._decode, stats=False) + PLAYGROUND_STYLE + metrics_html(point) + tree
        self.figure = speedup_figure(self.runs, self.gamma.max)
        self.output.value = self.html
        draw(self.chart, self.figure)
        self.status.value = ""
        self.renders += 1

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids)

    # -- static fallbacks -----------------------------------------------------------------------------------

    def runs_table_html(self) -> str:
        head = "<tr><th>drafter</th><th>verifier</th><th>γ</th><th>T</th><th>α</th><th>τ</th><th>ms/token</th><th>speedup</th><th>predicted</th></tr>"
        rows = "".join(
            f"<tr><td>{html.escape(r.settings.drafter)}</td><td>{html.escape(r.settings.verifier)}</td><td>{r.settings.gamma}</td>"
            f"<td>{r.settings.temperature:g}</td><td>{_fmt(r.alpha)}</td><td>{_fmt(r.tau)}</td><td>{_fmt(r.ms_per_token, 1)}</td>"
            f"<td>{_fmt(r.measured_speedup)}×</td><td>{_fmt(r.predicted_speedup)}×</td></tr>"
            for r in self.runs)
        return PLAYGROUND_STYLE + f'<table class="sdl-metrics"><caption>all runs</caption>{head}{rows}</table>'

    def to_html(self, figures: bool = False) -> str:
        """The latest result, every run as a table, and (``figures=True``, needs JS) the chart: static HTML."""
        if not self.runs:
            return STYLE + '<div class="sdl-view"><em>No run yet.</em></div>'
        chart = self.figure.to_html(full_html=False, include_plotlyjs="cdn") if figures else ""
        return self.html + self.runs_table_html() + chart

    def save(self, path: str | Path, figures: bool = True) -> Path:
        return save_html(self.to_html(figures=figures), path, title="specdec_lab playground")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
