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
* :mod:`.baseline_cache`: the baseline is measured once per (prompt, new tokens, temperature, top-p, seed, the
  target's dtype and device) and reused, so moving γ or switching drafters costs one speculative run only.
* Streaming: the run's tokens appear step by step as they are verified (the engine's ``on_step`` hook, which only
  observes), so the first coloured tokens show after one step rather than after the whole run. A newer request
  stops the run at its next step. The time spent drawing the partial views is measured and left out of the run's
  ms/token (``PlaygroundRun.view_s``), so streaming does not bias the speedup.
* :mod:`.playground_settings`: what code passes is checked as the engine checks it (the same messages), and a
  value outside a slider's range is an error, never clamped; ``drafter="nope"`` names the drafters offered.
* :mod:`.tree_policy`: the **tree budget** slider applies to the tree verifiers: every tree run adds its steps to a
  count of how often the rank-r candidate at depth d was accepted, and with a budget of N nodes the next tree run
  uses the branching vector with the largest predicted tokens per step within N nodes. The first tree run, with
  nothing measured yet, uses the verifier's default shape. The metrics show the shape, and its prediction next to
  the measured τ.
* :mod:`.playground_metrics` (the numbers, pure) and :mod:`.playground_view` (the tables and the chart, pure).
"""

from __future__ import annotations

from pathlib import Path

import time

import ipywidgets as widgets
import traitlets

from ...core.config import MAX_GAMMA
from ...core.text_checks import check_text
from ...core.trace import GenerationOutput
from ...decode import generate_autoregressive, generate_speculative
from ...models.smollm2 import prompt_ids as encode_prompt
from ...registry import DRAFTERS, VERIFIERS, build_drafter, build_verifier
from .baseline_cache import BaselineCache, model_place
from .charts import draw, make_chart
from .html import STYLE, pieces_view_html, prompt_html, save_html, step_html, token_view_html
from .keyboard import scoped_vbox
from .latest_worker import LatestWorker, Superseded
from .playground_metrics import PlaygroundRun, summarize_run
from .playground_settings import SLIDER_RANGES, Settings, check_arguments, check_choice, check_in_slider
from .playground_view import (BUSY_HTML, PLAYGROUND_STYLE, SLIDER_MAX_GAMMA, compact, error_html, metrics_html,
                              runs_table_html, speedup_figure, tree_choice_html)
from .tree_policy import TreeChoice, TreePolicy

# The engine's limit is config.MAX_GAMMA; the slider's range stays inside it (a γ past the range widens the slider).
assert SLIDER_MAX_GAMMA <= MAX_GAMMA

__all__ = ["Playground", "PlaygroundRun", "Settings", "Superseded", "summarize_run", "metrics_html", "speedup_figure",
           "PLAYGROUND_STYLE", "SLIDER_MAX_GAMMA"]


DEFAULT_DRAFTER = "prompt-lookup"  # the fastest measured on SmolLM2's chat prompts (benchmarks/bench_playground.py)
DEFAULT_NEW_TOKENS = 32  # an update within the latency goal on 2 CPU cores (benchmarks/measured/playground_smollm2.json)


def _check(stale) -> None:
    if stale():
        raise Superseded


class _StrictValue:
    """A slider whose value set from code must lie in its range: an error, where ipywidgets would clamp silently."""

    check_name = ""  # the SLIDER_RANGES entry (empty: the range is the slider's own, as for γ)

    @traitlets.validate("value")
    def _validate_value(self, proposal):
        value = proposal["value"]
        if self.check_name:
            check_in_slider(self.check_name, value)
        elif not self.min <= value <= self.max:
            raise ValueError(f"{self.description} = {value} is outside its slider ({self.min} to {self.max})")
        return value


class StrictIntSlider(_StrictValue, widgets.IntSlider):
    pass


class StrictFloatSlider(_StrictValue, widgets.FloatSlider):
    pass


def _slider(kind, name: str, value, description: str, **options):
    low, high, step = SLIDER_RANGES[name]
    slider = kind(value=value, min=low, max=high, step=step, description=description, **options)
    slider.check_name = name
    return slider


class _Stream:
    """The engine's ``on_step`` callback of one run: each verified step's tokens drawn into the widget at once.

    Raises :class:`Superseded` at the first step after a newer request; ``view_s`` is the time spent drawing.
    """

    def __init__(self, playground: "Playground", prompt: list[int], stale, total: int):
        self.pg, self.stale, self.total = playground, stale, total
        self.pieces = [prompt_html(prompt, playground.tokenizer.decode)]
        self.tokens, self.view_s, self.first_at = 0, 0.0, None

    def __call__(self, record) -> None:
        if self.stale():
            raise Superseded
        start = time.perf_counter()
        self.pieces.append(step_html(record, len(self.pieces) - 1, self.pg.tokenizer.decode))
        self.tokens += len(record.emitted)
        note = f'<div class="sdl-busy">verifying… {self.tokens} of {self.total} new tokens</div>'
        self.pg.output.value = compact(pieces_view_html(self.pieces, note))
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.view_s += time.perf_counter() - start


class Playground:
    """The widget: ``.widget`` to display; ``.runs``, ``.html``, ``.figure``, ``.error`` to read; ``.renders`` counts results shown.

    ``.baselines`` (:class:`BaselineCache`), ``.tree_policy`` (:class:`TreePolicy`) and ``.worker``
    (:class:`LatestWorker`) are the pieces it wires together; ``.tree_choice`` is the shape the latest tree run used.
    """

    def __init__(self, target, tokenizer, prompt: str = "ROMEO.\n", drafter: str = DEFAULT_DRAFTER,
                 verifier: str = "speculative", gamma: int = 4, temperature: float = 0.0, top_p: float = 1.0,
                 max_new_tokens: int = DEFAULT_NEW_TOKENS, seed: int = 0, drafters=None, verifiers=None,
                 drafter_options: dict | None = None, background: bool = True, run_now: bool = True):
        drafters, verifiers = list(drafters or DRAFTERS), list(verifiers or VERIFIERS)
        for what, names, known in (("drafter", drafters, DRAFTERS), ("verifier", verifiers, VERIFIERS)):
            for name in names:
                check_choice(what, name, known)  # a dropdown entry the registry cannot build
        checked = check_arguments(drafter=drafter, verifier=verifier, drafters=drafters, verifiers=verifiers, gamma=gamma,
                                  temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
        gamma, temperature, top_p, max_new_tokens = (checked[k] for k in ("gamma", "temperature", "top_p", "max_new_tokens"))
        self.target, self.tokenizer, self.seed = target, tokenizer, checked["seed"]
        self.drafter_options = drafter_options or {}  # name -> options for build_drafter (e.g. another model)
        self.runs: list[PlaygroundRun] = []
        self.last_output: GenerationOutput | None = None
        self.html, self.error, self.renders = "", None, 0
        self.latency: tuple[float, float] | None = None  # the last shown update: (s to its first tokens, s to the end)
        self._requested_at = self._first_tokens_s = time.perf_counter()
        self.baselines = BaselineCache(lambda prompt_ids, **sampling: generate_autoregressive(target, prompt_ids, **sampling),
                                       where=lambda: model_place(target))
        self.tree_policy = TreePolicy()
        self._drafters: dict[tuple, object] = {}  # (name, dtype, device) -> the drafter built for it, reused
        self.tree_choice: TreeChoice | None = None  # the shape the last tree run used (None: the default shape)
        # run looks self.measure up at call time, so a test can replace it
        self.worker = LatestWorker(run=lambda settings, stale: self.measure(settings, stale), on_result=self._show,
                                   on_error=self._show_error, on_queued=self._show_busy, background=background)

        slider = dict(continuous_update=False, style={"description_width": "90px"})
        self.prompt = widgets.Textarea(value=prompt, description="prompt", layout=widgets.Layout(width="98%", height="60px"))
        self.drafter = widgets.Dropdown(options=drafters, value=drafter, description="drafter")
        self.verifier = widgets.Dropdown(options=verifiers, value=verifier, description="verifier")
        # a γ past the slider's range widens it (the engine's limit is MAX_GAMMA); the other sliders refuse values
        # outside theirs
        self.gamma = StrictIntSlider(value=gamma, min=1, max=max(SLIDER_MAX_GAMMA, gamma), description="γ (draft)", **slider)
        self.temperature = _slider(StrictFloatSlider, "temperature", temperature, "temperature", **slider)
        self.top_p = _slider(StrictFloatSlider, "top_p", top_p, "top-p", **slider)
        self.max_new_tokens = _slider(StrictIntSlider, "max_new_tokens", max_new_tokens, "new tokens", **slider)
        self.tree_budget = _slider(StrictIntSlider, "tree_budget", 0, "tree budget", **slider)
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
        self._requested_at = time.perf_counter()
        self.worker.submit(self.settings())

    def wait(self) -> None:
        """Block until every request so far is done (for tests and scripts)."""
        self.worker.wait()

    # -- one run ----------------------------------------------------------------------------------------------

    def measure(self, settings: Settings, stale=lambda: False) -> tuple[PlaygroundRun, GenerationOutput]:
        """Decode with ``settings`` (and the baseline, once per prompt and sampling setting); raise on bad input.

        Raises :class:`Superseded` between phases, and at every streamed step, once ``stale()`` is true. A chat
        model's prompt goes through its chat template (``models.smollm2.prompt_ids``); the zoo's is plain text.
        """
        if not settings.prompt.strip():
            raise ValueError("the prompt is empty: type some text for the models to continue")
        prompt_ids = encode_prompt(self.tokenizer, check_text(settings.prompt, "the prompt"))
        sampling = settings.sampling(self.seed)
        drafter = self.drafter_for(settings.drafter)
        is_tree = VERIFIERS[settings.verifier].tree
        self.tree_choice = self.tree_policy.choose(settings.tree_budget, max_depth=settings.gamma) if is_tree else None
        shape = {"branching": self.tree_choice.branching} if self.tree_choice else {}
        verifier = build_verifier(settings.verifier, **shape)
        _check(stale)
        stream = _Stream(self, prompt_ids, stale, settings.max_new_tokens)
        run = generate_speculative(self.target, drafter, prompt_ids, gamma=settings.gamma, verifier=verifier,
                                   on_step=stream, **sampling)
        first_s = (stream.first_at or time.perf_counter()) - self._requested_at
        if is_tree:
            self.tree_policy.record(run)
        if not self.baselines.has(prompt_ids, sampling):
            _check(stale)
        baseline = self.baselines.get(prompt_ids, sampling)
        _check(stale)
        self._first_tokens_s = first_s
        return summarize_run(settings, run, baseline, view_s=stream.view_s), run

    def drafter_for(self, name: str):
        """The drafter ``name``, built once per target dtype and device and reused (each run resets its state, as
        generate_speculative does for every drafter), so an update costs no drafter build."""
        key = (name, *model_place(self.target))
        if key not in self._drafters:
            self._drafters[key] = build_drafter(name, self.target, self.tokenizer, **self.drafter_options.get(name, {}))
        return self._drafters[key]

    # -- showing outcomes (the worker calls these for the latest request only) ----------------------------------

    def _show_busy(self, settings: Settings) -> None:
        self.status.value = BUSY_HTML

    def _show_error(self, settings: Settings, err: Exception) -> None:
        self.error = f"{type(err).__name__}: {err}"
        self.status.value = error_html(self.error)
        self.output.value = self.html  # a run that failed while streaming leaves the previous result, not its part

    def _show(self, settings: Settings, result: tuple[PlaygroundRun, GenerationOutput]) -> None:
        point, run = result
        self.runs.append(point)
        self.last_output, self.error = run, None
        tree = tree_choice_html(self.tree_choice, self.tree_policy.runs_recorded - 1, point.tau)
        self.html = compact(token_view_html(run, self.tokenizer.decode, stats=False)) + metrics_html(point) + tree
        self.figure = speedup_figure(self.runs, self.gamma.max)
        self.output.value = self.html
        draw(self.chart, self.figure)
        self.status.value = ""
        self.renders += 1
        self.latency = (self._first_tokens_s, time.perf_counter() - self._requested_at)

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
