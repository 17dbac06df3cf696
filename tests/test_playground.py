"""The latency playground, driven headlessly on the zoo: set widget values, read the HTML and the figure data."""

from __future__ import annotations

import math
import re
import threading
from dataclasses import replace

import pytest

from specdec_lab import generate_autoregressive
from specdec_lab.core import config
from specdec_lab.lab.viz import playground as playground_module
from specdec_lab.models.loading import load_model
from specdec_lab.registry import DRAFTERS, VERIFIERS
from specdec_lab.core.theory import speedup
from specdec_lab.core.trace import GenerationOutput, StepRecord, summarize
from specdec_lab.verifiers.tree_shape import acceptance_by_rank, best_branching, rates, tree_nodes
from specdec_lab.lab.viz.baseline_cache import BaselineCache, baseline_key
from specdec_lab.lab.viz.keyboard import KeyboardScope
from specdec_lab.lab.viz.latest_worker import LatestWorker, Superseded
from specdec_lab.lab.viz.playground import SLIDER_MAX_GAMMA, Playground, Settings, metrics_html, summarize_run
from specdec_lab.lab.viz.tree_policy import TreeChoice, TreePolicy

PROMPT = "ROMEO.\nBut soft, what light"


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", device="cpu")


def playground(zoo, **kwargs) -> Playground:
    target, tokenizer = zoo
    kwargs.setdefault("background", False)
    kwargs.setdefault("max_new_tokens", 16)
    return Playground(target, tokenizer, prompt=PROMPT, **kwargs)


def markers(fig) -> list:
    return [t for t in fig.data if t.mode == "markers"]


def test_first_run_shows_tokens_metrics_and_one_point(zoo):
    pg = playground(zoo)
    assert pg.renders == 1 and pg.error is None and len(pg.runs) == 1
    assert pg.html.count('class="sdl-tok sdl-') > 16  # the prompt plus every drafted and emitted token
    for label in ("α (accepted ÷ checked)", "draft yield (accepted ÷ drafted)", "tokens per step τ", "ms/token", "measured speedup", "predicted speedup"):
        assert label in pg.html
    assert pg.output.value == pg.html
    (points,) = markers(pg.figure)
    assert list(points.x) == [4] and points.y[0] == pytest.approx(pg.runs[0].measured_speedup)
    curve = [t for t in pg.figure.data if t.mode == "lines"]
    assert len(curve) == 1 and list(curve[0].x) == list(range(1, 13))
    r = pg.runs[0]
    assert curve[0].y[3] == pytest.approx(speedup(r.alpha, 4, r.cost_ratio))


def test_sliders_rerun_and_greedy_output_is_the_targets(zoo):
    pg = playground(zoo)
    pg.gamma.value = 2
    pg.gamma.value = 6
    assert [r.settings.gamma for r in pg.runs] == [4, 2, 6] and pg.renders == 3
    assert sorted(x for t in markers(pg.figure) for x in t.x) == [2, 4, 6]
    assert len(pg.baselines) == 1  # γ changes reuse the baseline
    target, tokenizer = zoo
    alone = generate_autoregressive(target, tokenizer(PROMPT)["input_ids"], max_new_tokens=16)
    assert pg.last_output.token_ids == alone.token_ids  # temperature 0: the speculative output is the target's

    pg.temperature.value = 0.7
    pg.top_p.value = 0.9
    s = pg.runs[-1].settings
    assert (s.temperature, s.top_p) == (0.7, 0.9) and pg.last_output.settings["top_p"] == 0.9
    pg.top_p.value = 1.0
    assert pg.last_output.settings["top_p"] is None  # 1.0 means no filter
    assert len(pg.baselines) == 3  # (T 0, top-p 1), (T 0.7, top-p 1), (T 0.7, top-p 0.9); the last run reused the second


def test_controls_list_every_registry_method_and_do_not_update_while_dragging(zoo):
    pg = playground(zoo, run_now=False)
    assert list(pg.drafter.options) == list(DRAFTERS) and list(pg.verifier.options) == list(VERIFIERS)
    for slider in (pg.gamma, pg.temperature, pg.top_p, pg.max_new_tokens, pg.tree_budget):
        assert slider.continuous_update is False
    assert pg.renders == 0 and "No run yet" in pg.to_html()


def test_keys_stay_in_the_widget(zoo):
    """The widget carries a KeyboardScope for its own CSS class (the browser test presses the keys)."""
    pg = playground(zoo, run_now=False)
    scopes = [w for w in pg.widget.children if isinstance(w, KeyboardScope)]
    assert "sdl-playground" in pg.widget._dom_classes and [w.scope for w in scopes] == ["sdl-playground"]
    assert "data-lm-suppress-shortcuts" in scopes[0]._esm
    assert "sdl-pg-drafter" in pg.drafter._dom_classes and "sdl-pg-gamma" in pg.gamma._dom_classes


@pytest.mark.parametrize("drafter", list(DRAFTERS))
def test_every_drafter_runs_from_the_dropdown(zoo, drafter):
    pg = playground(zoo, run_now=False, drafter="prompt-lookup" if drafter == "distilled" else "distilled")
    pg.drafter.value = drafter  # the change event runs it
    assert pg.error is None and pg.renders == 1 and pg.runs[-1].settings.drafter == drafter
    assert math.isfinite(pg.runs[-1].measured_speedup)


def test_tree_verifier_with_a_drafter_that_branches(zoo):
    pg = playground(zoo, run_now=False, drafter="medusa")
    pg.verifier.value = "tree-greedy"
    assert pg.error is None and pg.last_output.steps[0].tree is not None


def test_tree_budget_chooses_a_shape_from_the_acceptance_measured_so_far(zoo):
    pg = playground(zoo, run_now=False, drafter="distilled", gamma=3)
    pg.verifier.value = "tree-greedy"  # the first tree run: the default shape, and the first counts
    assert pg.tree_choice is None and pg.error is None
    first = pg.last_output
    pg.tree_budget.value = 6
    branching, predicted = pg.tree_choice
    assert tree_nodes(branching) <= 6 and len(branching) <= 3
    steps = [s for s in pg.last_output.steps if s.tree is not None and s.tree["tokens"]]
    assert max(len(s.tree["tokens"]) for s in steps) <= 6
    assert best_branching(rates(acceptance_by_rank([first])), 6, max_depth=3) == (branching, predicted)
    assert pg.tree_policy.runs_recorded == 2
    assert f"tree shape {branching}" in pg.html and "predicted τ" in pg.html
    pg.verifier.value = "speculative"  # a linear verifier ignores the budget
    assert pg.tree_choice is None and pg.error is None


def test_errors_show_in_the_widget_and_keep_the_previous_result(zoo):
    pg = playground(zoo)
    before = pg.html
    pg.prompt.value = "   \n"
    pg.run_button.click()
    assert "prompt is empty" in pg.error and "prompt is empty" in pg.status.value and "sdl-error" in pg.status.value
    assert pg.output.value == before and pg.renders == 1  # the previous result stays
    pg.prompt.value = PROMPT
    pg.verifier.value = "tree-speculative"  # the distilled drafter branches: a valid run
    assert pg.error is None and pg.status.value == "" and pg.renders == 2
    before = pg.html
    pg.drafter.value = "distilled+heuristic-γ"  # cannot branch
    assert "cannot branch" in pg.error and "cannot branch" in pg.status.value and pg.output.value == before
    pg.drafter.value = "medusa"  # a valid combination clears the error
    assert pg.error is None and pg.status.value == "" and pg.renders == 3


def test_a_new_change_supersedes_the_run_in_progress(zoo):
    """50 rapid changes while the first run is held: exactly one result, for the final settings."""
    pg = playground(zoo, background=True, run_now=False)
    release, started, real_measure = threading.Event(), threading.Event(), pg.measure
    calls = []

    def held_measure(settings, stale):
        calls.append(settings.gamma)
        started.set()
        release.wait(timeout=30)
        return real_measure(settings, stale)

    pg.measure = held_measure
    pg.gamma.value = 1
    assert started.wait(timeout=30)  # the first run is in progress (on a busy machine the worker may start late)
    for i in range(1, 50):
        pg.gamma.value = 1 + i % 12
    pg.temperature.value = 0.5
    release.set()
    pg.wait()
    assert pg.renders == 1 and len(pg.runs) == 1
    assert pg.runs[0].settings == pg.settings() and pg.runs[0].settings.temperature == 0.5
    assert calls == [1, 2]  # the run in progress (dropped) and the final one; the 48 in between never ran


def test_static_html_and_save(zoo, tmp_path):
    pg = playground(zoo)
    pg.gamma.value = 3
    page = pg.to_html()
    assert "all runs" in page and page.count("<tr><td>") == 2 and "<script" not in page
    path = pg.save(tmp_path / "playground.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "measured speedup" in text and "plotly" in text


def _step(draft_s: float, verify_s: float, n_draft: int, n_acc: int, emitted: int) -> StepRecord:
    decisions = (["accepted"] * n_acc + ["rejected"] + ["unchecked"] * n_draft)[:n_draft]
    return StepRecord(context_len=3, draft=[1] * n_draft, q_draft=[1.0] * n_draft, p_draft=[1.0] * n_draft,
                      accept_prob=[1.0] * n_draft, uniforms=[0.0] * n_draft, decisions=decisions,
                      n_accepted=n_acc, emitted=[1] * emitted, next_token=1, next_kind="corrected",
                      draft_time_s=draft_s, verify_time_s=verify_s)


def test_metric_definitions_on_a_made_up_run():
    """c, v, α, τ and both predictions follow the module's formulas, from the recorded times."""
    steps = [_step(0.004, 0.012, 4, 4, 5), _step(0.004, 0.012, 4, 1, 2)]  # 7 tokens in 0.032 s
    run = GenerationOutput([1], [1] * 7, steps, summarize(steps, 0.032, 3, 8), {})
    base_steps = [_step(0.0, 0.010, 0, 0, 1) for _ in range(10)]  # 10 ms per token
    baseline = GenerationOutput([1], [1] * 10, base_steps, summarize(base_steps, 0.100, 10, 0), {})
    point = summarize_run(Settings("x", "d", "v", 4, 0.0, 1.0, 7), run, baseline)
    assert run.stats.checked == 6 and run.stats.alpha == pytest.approx(5 / 6)
    assert point.alpha == pytest.approx(5 / 6) and point.acceptance_rate == pytest.approx(5 / 8)  # 6 checked, 8 drafted
    assert point.tau == pytest.approx(3.5)
    assert point.cost_ratio == pytest.approx((0.004 / 4) / 0.010)  # 0.1
    assert point.verify_cost == pytest.approx(0.012 / 0.010)  # 1.2
    assert point.measured_speedup == pytest.approx(10.0 / (32.0 / 7))
    assert point.predicted_speedup == pytest.approx(speedup(5 / 6, 4, 0.1))
    assert point.predicted_speedup_v == pytest.approx(speedup(5 / 6, 4, 0.1, 1.2))


def test_alpha_is_accepted_over_checked_and_the_acceptance_rate_is_named_apart():
    """One α everywhere (Stats.alpha, accepted ÷ checked); accepted ÷ drafted only as "draft yield (accepted ÷ drafted)"."""
    steps = [_step(0.004, 0.012, 4, 4, 5), _step(0.004, 0.012, 4, 1, 2)]  # 6 checked, 5 accepted, 8 drafted
    run = GenerationOutput([1], [1] * 7, steps, summarize(steps, 0.032, 3, 8), {})
    base_steps = [_step(0.0, 0.010, 0, 0, 1) for _ in range(10)]
    baseline = GenerationOutput([1], [1] * 10, base_steps, summarize(base_steps, 0.100, 10, 0), {})
    table = metrics_html(summarize_run(Settings("x", "d", "v", 4, 0.0, 1.0, 7), run, baseline))
    cells = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table))
    assert cells["α (accepted ÷ checked)"] == "0.83"  # 5 / 6
    assert cells["draft yield (accepted ÷ drafted)"] == "0.62"  # 5 / 8
    named = [k for k in cells if k.startswith(("α", "acceptance", "draft yield")) or "accepted" in k]
    assert named == ["α (accepted ÷ checked)", "draft yield (accepted ÷ drafted)"]


def test_the_slider_range_is_a_ui_choice_inside_the_engines_gamma_limit(zoo):
    assert playground_module.MAX_GAMMA == config.MAX_GAMMA == 64  # one engine limit, not a second constant of 12
    assert 1 < SLIDER_MAX_GAMMA <= config.MAX_GAMMA
    pg = playground(zoo, run_now=False)
    assert (pg.gamma.min, pg.gamma.max) == (1, SLIDER_MAX_GAMMA)
    wide = playground(zoo, run_now=False, gamma=20)  # a γ past the slider's range is kept, not clamped to 12
    assert wide.gamma.value == 20 and wide.gamma.max == 20
    for bad in (0, config.MAX_GAMMA + 1):
        with pytest.raises(ValueError, match="gamma must be between 1 and 64"):
            playground(zoo, run_now=False, gamma=bad)


# -- the pieces the widget wires together ---------------------------------------------------------------------


def test_the_baseline_cache_hits_for_equal_sampling_settings_and_misses_otherwise():
    """γ, drafter, verifier and tree budget share one baseline; prompt, new tokens, T, top-p and seed each get one."""
    calls = []

    def measure(prompt_ids, **sampling):
        calls.append((prompt_ids, sampling))
        return f"baseline {len(calls)}"

    cache = BaselineCache(measure)
    base = Settings("x", "distilled", "speculative", 4, 0.0, 1.0, 16)
    first = cache.get([1, 2, 3], base.sampling(seed=0))
    assert first == "baseline 1"
    assert calls == [([1, 2, 3], dict(max_new_tokens=16, temperature=0.0, top_p=None, seed=0))]
    same_baseline = (replace(base, gamma=2), replace(base, drafter="medusa"),
                     replace(base, verifier="tree-greedy", tree_budget=6))
    for same in same_baseline:
        assert cache.has((1, 2, 3), same.sampling(0)) and cache.get((1, 2, 3), same.sampling(0)) == first
    assert len(calls) == 1 and len(cache) == 1
    misses = [([1, 2, 4], base.sampling(0)), ([1, 2, 3], base.sampling(1))]
    misses += [([1, 2, 3], replace(base, **change).sampling(0))
               for change in (dict(temperature=0.7), dict(top_p=0.9), dict(max_new_tokens=32))]
    for ids, sampling in misses:
        assert not cache.has(ids, sampling)
        cache.get(ids, sampling)
        cache.get(ids, sampling)  # the second time: a hit
    assert len(calls) == 1 + len(misses) == len(cache)
    assert baseline_key([1], {"a": 1, "b": 2}) == baseline_key((1,), {"b": 2, "a": 1})  # argument order does not matter
    cache.clear()
    cache.get([1, 2, 3], base.sampling(0))
    assert len(calls) == 2 + len(misses)


def _tree_run(paths: list[tuple[list[int], list[int]]]) -> GenerationOutput:
    """A made-up tree-verified run: one step per (parents, accepted path)."""
    steps = []
    for parents, path in paths:
        step = _step(0.001, 0.001, 0, 0, len(path) + 1)
        step.tree = {"tokens": list(range(len(parents))), "parents": parents, "path": path}
        steps.append(step)
    tokens = sum(len(path) + 1 for _, path in paths)
    return GenerationOutput([1], [1] * tokens, steps, summarize(steps, 0.01, len(steps), 0), {})


def test_the_tree_policy_picks_the_branching_the_optimiser_gives_for_the_recorded_acceptance():
    policy = TreePolicy()
    assert policy.choose(6, max_depth=3) is None  # nothing measured yet: the verifier's default shape
    # root -> nodes 0, 1 (ranks 0, 1); node 0 -> 2, 3; node 1 -> 4; node 2 -> 5
    parents = [-1, -1, 0, 0, 1, 2]
    runs = [_tree_run([(parents, [0, 2, 5]), (parents, [1, 4]), (parents, [0, 3])]),
            _tree_run([(parents, [0]), (parents, []), (parents, [1])])]
    for run in runs:
        policy.record(run)
    assert policy.runs_recorded == 2
    assert policy.counts == acceptance_by_rank(runs)  # the counts add up over runs
    for budget, depth in ((1, 3), (3, 2), (6, 3), (12, 1)):
        choice = policy.choose(budget, max_depth=depth)
        assert isinstance(choice, TreeChoice)
        assert choice == best_branching(rates(acceptance_by_rank(runs)), budget, max_depth=depth)
        assert tree_nodes(choice.branching) <= budget and len(choice.branching) <= depth
    assert policy.choose(0, max_depth=3) is None  # no budget: the default shape


def test_the_worker_drops_a_waiting_request_and_the_result_of_a_superseded_run():
    release, started = threading.Event(), threading.Event()
    ran, shown, errors, queued, stale_when_done = [], [], [], [], {}

    def run(request, stale):
        ran.append(request)
        if request in ("first", "failing"):
            started.set()
            release.wait(timeout=30)
            stale_when_done[request] = stale()
            if request == "failing":
                raise ValueError("dropped: a newer request exists")
        return f"result of {request}"

    worker = LatestWorker(run, on_result=lambda r, result: shown.append(result), on_error=lambda r, e: errors.append(e),
                          on_queued=queued.append)
    worker.submit("first")
    assert started.wait(timeout=30)
    worker.submit("second")  # waits, then is superseded by "third" before it runs
    worker.submit("third")
    release.set()
    worker.wait()
    assert ran == ["first", "third"] and shown == ["result of third"] and not errors
    assert stale_when_done == {"first": True} and queued == ["first", "second", "third"]

    release.clear(), started.clear()
    worker.submit("failing")
    assert started.wait(timeout=30)
    worker.submit("fourth")
    release.set()
    worker.wait()
    assert stale_when_done["failing"] and not errors  # a superseded run's error is dropped too
    assert shown[-1] == "result of fourth"


def test_the_worker_in_the_foreground_reports_the_latest_outcome_and_skips_a_superseded_run():
    events = []

    def run(request, stale):
        if request == "bad":
            raise ValueError("bad request")
        if request == "superseded":
            raise Superseded
        return request.upper()

    worker = LatestWorker(run, on_result=lambda r, result: events.append(("result", result)),
                          on_error=lambda r, e: events.append(("error", str(e))),
                          on_queued=lambda r: events.append(("queued", r)), background=False)
    for request in ("ok", "bad", "superseded"):
        worker.submit(request)
    worker.wait()  # nothing in flight: returns at once
    assert events == [("queued", "ok"), ("result", "OK"), ("queued", "bad"), ("error", "bad request"),
                      ("queued", "superseded")]
