"""The latency playground: slide γ, temperature and top-p, pick a drafter and a verifier, and watch the speed.

Every run decodes ``max_new_tokens`` with :func:`generate_speculative` and compares it with the autoregressive
baseline on the same prompt and settings, on this machine:

    measured speedup   S = (baseline ms/token) / (speculative ms/token)
    predicted speedup  Ŝ = (1 − α^(γ+1)) / ((1 − α)(γc + 1))        (Leviathan et al. 2023, Thm 3.8)

with α = accepted ÷ checked drafts and c the measured cost of one drafted position relative to one target forward;
Ŝ is also shown with the measured verification cost v in place of the theorem's 1, and the rest of any gap is the
loop's own overhead (and timing noise: on a busy 2-core CPU about ±10%). A chart accumulates the runs: measured
points against the formula's curve over γ for the latest α and c.

The widget only builds the controls and wires them to one-job pieces:

* :mod:`.latest_worker`: runs happen on a worker thread, newest request wins: a change made while a run is in
  progress supersedes it (the run stops at its next phase and its result is dropped), so however fast the sliders
  move, only the latest settings are rendered. Errors show in the widget; the previous result stays.
  ``background=False`` runs requests synchronously (tests, scripts).
* :mod:`.baseline_cache`: the baseline is measured once per (prompt, new tokens, temperature, top-p, seed) and
  reused, so moving γ or switching drafters costs one speculative run only.
* :mod:`.tree_policy`: the **tree budget** slider applies to the tree verifiers: every tree run adds its steps to a
  count of how often the rank-r candidate at depth d was accepted, and with a budget of N nodes the next tree run
  uses the branching vector with the largest predicted tokens per step within N nodes. The first tree run, with
  nothing measured yet, uses the verifier's default shape. The metrics show the shape, and its prediction next to
  the measured τ.
* :mod:`.playground_metrics` (the numbers, pure) and :mod:`.playground_view` (the tables and the chart, pure).
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets

from ...core.checks import check_gamma
from ...core.config import MAX_GAMMA
from ...core.trace import GenerationOutput
from ...decode import generate_autoregressive, generate_speculative
from ...registry import DRAFTERS, VERIFIERS, build_drafter, build_verifier
from .baseline_cache import BaselineCache
from .charts import draw, make_chart
from .html import STYLE, save_html, token_view_html
from .keyboard import scoped_vbox
from .latest_worker import LatestWorker, Superseded
from .playground_metrics import PlaygroundRun, summarize_run
from .playground_settings import Settings
from .playground_view import (BUSY_HTML, PLAYGROUND_STYLE, SLIDER_MAX_GAMMA, error_html, metrics_html, runs_table_html,
                              speedup_figure, tree_choice_html)
from .tree_policy import TreeChoice, TreePolicy

# The engine's limit is config.MAX_GAMMA; the slider's range stays inside it (a γ past the range widens the slider).
assert SLIDER_MAX_GAMMA <= MAX_GAMMA

__all__ = ["Playground", "PlaygroundRun", "Settings", "Superseded", "summarize_run", "metrics_html", "speedup_figure",
           "PLAYGROUND_STYLE", "SLIDER_MAX_GAMMA"]


def _check(stale) -> None:
    if stale():
        raise Superseded


class Playground:
    """The widget: ``.widget`` to display; ``.runs``, ``.html``, ``.figure``, ``.error`` to read; ``.renders`` counts results shown.

    ``.baselines`` (:class:`BaselineCache`), ``.tree_policy`` (:class:`TreePolicy`) and ``.worker``
    (:class:`LatestWorker`) are the pieces it wires together; ``.tree_choice`` is the shape the latest tree run used.
    """

    def __init__(self, target, tokenizer, prompt: str = "ROMEO.\n", drafter: str = "distilled", verifier: str = "speculative",
                 gamma: int = 4, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 48, seed: int = 0,
                 drafters=None, verifiers=None, drafter_options: dict | None = None, background: bool = True,
                 run_now: bool = True):
        self.target, self.tokenizer, self.seed = target, tokenizer, seed
        self.drafter_options = drafter_options or {}  # name -> options for build_drafter (e.g. another model)
        self.runs: list[PlaygroundRun] = []
        self.last_output: GenerationOutput | None = None
        self.html, self.error, self.renders = "", None, 0
        self.baselines = BaselineCache(lambda prompt_ids, **sampling: generate_autoregressive(target, prompt_ids, **sampling))
        self.tree_policy = TreePolicy()
        self.tree_choice: TreeChoice | None = None  # the shape the last tree run used (None: the default shape)
        # run looks self.measure up at call time, so a test can replace it
        self.worker = LatestWorker(run=lambda settings, stale: self.measure(settings, stale), on_result=self._show,
                                   on_error=self._show_error, on_queued=self._show_busy, background=background)

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

    @property
    def background(self) -> bool:
        """Whether requests run on the worker thread (False: on the caller's)."""
        return self.worker.background

    # -- requests -------------------------------------------------------------------------------------------

    def settings(self) -> Settings:
        return Settings(self.prompt.value, self.drafter.value, self.verifier.value, int(self.gamma.value),
                        float(self.temperature.value), float(self.top_p.value), int(self.max_new_tokens.value),
                        int(self.tree_budget.value))

    def request(self) -> None:
        """Run the widgets' current settings; supersedes any run in progress."""
        self.worker.submit(self.settings())

    def wait(self) -> None:
        """Block until every request so far is done (for tests and scripts)."""
        self.worker.wait()

    # -- one run ----------------------------------------------------------------------------------------------

    def measure(self, settings: Settings, stale=lambda: False) -> tuple[PlaygroundRun, GenerationOutput]:
        """Decode with ``settings`` (and the baseline, once per prompt and sampling setting); raise on bad input.

        Raises :class:`Superseded` between phases once ``stale()`` is true.
        """
        if not settings.prompt.strip():
            raise ValueError("the prompt is empty: type some text for the models to continue")
        prompt_ids = self.tokenizer(settings.prompt)["input_ids"]
        sampling = settings.sampling(self.seed)
        drafter = build_drafter(settings.drafter, self.target, self.tokenizer, **self.drafter_options.get(settings.drafter, {}))
        is_tree = VERIFIERS[settings.verifier].tree
        self.tree_choice = self.tree_policy.choose(settings.tree_budget, max_depth=settings.gamma) if is_tree else None
        shape = {"branching": self.tree_choice.branching} if self.tree_choice else {}
        verifier = build_verifier(settings.verifier, **shape)
        _check(stale)
        run = generate_speculative(self.target, drafter, prompt_ids, gamma=settings.gamma, verifier=verifier, **sampling)
        if is_tree:
            self.tree_policy.record(run)
        if not self.baselines.has(prompt_ids, sampling):
            _check(stale)
        baseline = self.baselines.get(prompt_ids, sampling)
        _check(stale)
        return summarize_run(settings, run, baseline), run

    # -- showing outcomes (the worker calls these for the latest request only) ----------------------------------

    def _show_busy(self, settings: Settings) -> None:
        self.status.value = BUSY_HTML

    def _show_error(self, settings: Settings, err: Exception) -> None:
        self.error = f"{type(err).__name__}: {err}"
        self.status.value = error_html(self.error)

    def _show(self, settings: Settings, result: tuple[PlaygroundRun, GenerationOutput]) -> None:
        point, run = result
        self.runs.append(point)
        self.last_output, self.error = run, None
        tree = tree_choice_html(self.tree_choice, self.tree_policy.runs_recorded - 1, point.tau)
        self.html = token_view_html(run, self.tokenizer.decode, stats=False) + PLAYGROUND_STYLE + metrics_html(point) + tree
        self.figure = speedup_figure(self.runs, self.gamma.max)
        self.output.value = self.html
        draw(self.chart, self.figure)
        self.status.value = ""
        self.renders += 1

    # -- static fallbacks -----------------------------------------------------------------------------------

    def runs_table_html(self) -> str:
        return runs_table_html(self.runs)

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
