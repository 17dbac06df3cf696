"""The playground v3: arguments checked like the engine's (no silent clamp), the baseline keyed by where the target
runs, tokens streamed step by step through the engine's ``on_step`` hook (which changes no output), and the latency
it records."""

from __future__ import annotations

import copy
import threading

import pytest
import torch

from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.lab.viz.baseline_cache import BaselineCache, model_place
from specdec_lab.lab.viz.playground import DEFAULT_DRAFTER, Playground
from specdec_lab.registry import DRAFTERS, VERIFIERS

from test_playground import PROMPT, playground, zoo  # noqa: F401 - zoo is a fixture


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(temperature=-1), ValueError, "temperature must be >= 0"),
    (dict(temperature=float("nan")), (TypeError, ValueError), "temperature must be a finite number"),
    (dict(temperature=5), ValueError, "outside the playground's temperature slider"),
    (dict(top_p=0), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_p=0.01), ValueError, "outside the playground's top_p slider"),
    (dict(max_new_tokens=0), ValueError, "max_new_tokens must be >= 1"),
    (dict(max_new_tokens=3), ValueError, "outside the playground's max_new_tokens slider"),
    (dict(max_new_tokens=1000), ValueError, "outside the playground's max_new_tokens slider"),
    (dict(max_new_tokens=8.5), TypeError, "max_new_tokens must be an int"),
    (dict(gamma=0), ValueError, "gamma must be between 1 and 64"),
    (dict(seed=-1), ValueError, "seed must be between"),
    (dict(drafter="nope"), ValueError, "unknown drafter 'nope'; the playground offers: small-model, distilled"),
    (dict(verifier="nope"), ValueError, "unknown verifier 'nope'; the playground offers: greedy, speculative"),
    (dict(drafters=["prompt-lookup", "nope"]), ValueError, "unknown drafter 'nope'"),
])
def test_constructor_refuses_what_the_engine_or_a_slider_cannot_take(zoo, kwargs, error, message):
    with pytest.raises(error, match=message):
        playground(zoo, run_now=False, **kwargs)


def test_the_engine_gives_the_same_messages_for_what_both_refuse(zoo):
    target, tokenizer = zoo
    for kwargs in (dict(temperature=-1), dict(top_p=1.5), dict(max_new_tokens=0)):
        with pytest.raises(ValueError) as engine:
            generate_speculative(target, build_drafter("prompt-lookup", target), [1, 2, 3], **(dict(max_new_tokens=8) | kwargs))
        with pytest.raises(ValueError) as widget:
            playground(zoo, run_now=False, **kwargs)
        assert str(widget.value) == str(engine.value)


def test_values_inside_the_sliders_are_kept_exactly(zoo):
    pg = playground(zoo, run_now=False, temperature=1.5, top_p=0.05, max_new_tokens=256, gamma=20)
    assert (pg.temperature.value, pg.top_p.value, pg.max_new_tokens.value, pg.gamma.value) == (1.5, 0.05, 256, 20)
    assert playground(zoo, run_now=False, top_p=None).top_p.value == 1.0  # the engine's "no filter"


@pytest.mark.parametrize("slider, value", [("temperature", 5.0), ("temperature", -1.0), ("top_p", 0.01),
                                           ("max_new_tokens", 1000), ("max_new_tokens", 3), ("gamma", 13)])
def test_a_slider_set_from_code_outside_its_range_raises_and_keeps_its_value(zoo, slider, value):
    pg = playground(zoo, run_now=False)
    widget = getattr(pg, slider)
    before = widget.value
    with pytest.raises(ValueError, match="outside"):
        widget.value = value
    assert widget.value == before and pg.renders == 0  # nothing ran on the refused value


def test_the_default_drafter_is_prompt_lookup_and_every_registered_drafter_is_offered(zoo):
    pg = playground(zoo, run_now=False)
    assert DEFAULT_DRAFTER == "prompt-lookup" == pg.drafter.value
    assert list(pg.drafter.options) == list(DRAFTERS) and list(pg.verifier.options) == list(VERIFIERS)


def test_the_baseline_is_keyed_by_the_targets_dtype_and_device(zoo, monkeypatch):
    from specdec_lab.core import checks

    monkeypatch.setattr(checks, "_WARNED_DTYPES", set())  # the bf16 warning comes once per process: not yet, here
    target = copy.deepcopy(zoo[0])
    pg = Playground(target, zoo[1], prompt=PROMPT, max_new_tokens=16, background=False)
    assert len(pg.baselines) == 1
    fp32 = pg.runs[-1].baseline_ms_per_token
    target.to(torch.bfloat16)
    with pytest.warns(UserWarning, match="bfloat16"):
        pg.gamma.value = 3
    assert len(pg.baselines) == 2 and pg.error is None  # a new baseline, measured on the bf16 target
    (key32, key16) = list(pg.baselines._runs)
    assert key32[0] == ("torch.float32", "cpu") and key16[0] == ("torch.bfloat16", "cpu")
    bf16_alone = generate_autoregressive(target, zoo[1](PROMPT)["input_ids"], max_new_tokens=16)
    assert pg.baselines._runs[key16].token_ids == bf16_alone.token_ids
    assert fp32 > 0


def test_the_cache_reads_where_on_every_call():
    where, calls = ["a"], []
    cache = BaselineCache(lambda ids, **s: calls.append(ids) or len(calls), where=lambda: tuple(where))
    assert cache.get([1], {"t": 0}) == 1 and cache.get([1], {"t": 0}) == 1
    where[0] = "b"
    assert not cache.has([1], {"t": 0}) and cache.get([1], {"t": 0}) == 2 and len(cache) == 2
    assert model_place(torch.nn.Linear(2, 2)) == ("", "")  # a module without dtype/device attributes: no crash


# -- streaming ---------------------------------------------------------------------------------------------------


def _same_steps(a, b) -> None:
    assert a.token_ids == b.token_ids
    assert [(s.draft, s.decisions, s.emitted, s.next_token, s.uniforms) for s in a.steps] == \
           [(s.draft, s.decisions, s.emitted, s.next_token, s.uniforms) for s in b.steps]


@pytest.mark.parametrize("drafter", ["prompt-lookup", "distilled", "eagle", "medusa", "lookahead"])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_on_step_only_observes(zoo, drafter, temperature):
    """The callback sees every step once, in order, and the run equals the run without it, token for token."""
    target, tokenizer = zoo
    ids = tokenizer(PROMPT)["input_ids"]
    seen = []
    args = dict(gamma=3, max_new_tokens=20, temperature=temperature, seed=7)
    with_hook = generate_speculative(target, build_drafter(drafter, target, tokenizer), ids, on_step=seen.append, **args)
    without = generate_speculative(target, build_drafter(drafter, target, tokenizer), ids, **args)
    _same_steps(with_hook, without)
    assert seen == with_hook.steps
    plain_seen = []
    plain = generate_autoregressive(target, ids, max_new_tokens=12, temperature=temperature, seed=7, on_step=plain_seen.append)
    assert plain.token_ids == generate_autoregressive(target, ids, max_new_tokens=12, temperature=temperature, seed=7).token_ids
    assert plain_seen == plain.steps


def test_the_view_grows_one_step_at_a_time_and_ends_as_the_whole_run(zoo):
    pg = playground(zoo, run_now=False, max_new_tokens=24)
    views = []
    pg.output.observe(lambda change: views.append(change["new"]), names="value")
    pg.gamma.value = 3
    run = pg.last_output
    partial, final = views[:-1], views[-1]
    assert len(partial) == len(run.steps) and final == pg.html
    counts = [v.count('class="sdl-tok sdl-') for v in partial]
    assert counts == sorted(counts) and counts[0] < counts[-1]  # each step adds its tokens
    assert all("verifying…" in v for v in partial) and f"of 24 new tokens" in partial[0]
    first, total = pg.latency
    assert 0 < first <= total and pg.runs[-1].view_s > 0


def test_a_newer_request_stops_the_streaming_run_at_its_next_step(zoo):
    pg = playground(zoo, background=True, run_now=False, max_new_tokens=48, gamma=1, drafter="distilled")
    first_step, steps_seen = threading.Event(), []
    original = pg.output

    def on_view(change):
        steps_seen.append(pg.settings().gamma)
        first_step.set()

    original.observe(on_view, names="value")
    pg.gamma.value = 2
    assert first_step.wait(timeout=60)
    pg.gamma.value = 3  # supersedes the run in progress
    pg.wait()
    assert pg.renders == 1 and pg.runs[-1].settings.gamma == 3 and pg.error is None
    assert pg.last_output.stats.new_tokens == 48


def test_a_failed_run_leaves_the_previous_result(zoo):
    pg = playground(zoo, drafter="distilled+heuristic-γ")
    before = pg.html
    pg.verifier.value = "tree-greedy"  # cannot branch: refused before any step
    assert "cannot branch" in pg.error and pg.output.value == before


# -- layout (issue 36 item 7) ------------------------------------------------------------------------------------


def test_newlines_render_in_the_line_and_the_view_is_compact(zoo):
    pg = playground(zoo)
    assert pg.html.count('<div class="sdl-compact">') == 1 and ".sdl-compact .sdl-view br{display:none}" in pg.html
    assert "↵" in pg.html  # the prompt's newline is shown as a glyph in the line


def test_runs_at_other_temperatures_get_their_own_series_apart_on_the_axis(zoo):
    pg = playground(zoo, gamma=2)
    pg.temperature.value = 0.7
    pg.drafter.value = "distilled"
    series = {t.name: list(t.x) for t in pg.figure.data if t.mode == "markers"}
    assert list(series) == ["prompt-lookup", "prompt-lookup, T = 0.7", "distilled, T = 0.7"]
    xs = [x for xs in series.values() for x in xs]
    assert len(set(xs)) == 3 and all(abs(x - 2) <= 0.3 + 1e-9 for x in xs)  # the same γ, three places
    texts = [t.text[0] for t in pg.figure.data if t.mode == "markers"]
    assert all(text.startswith("γ=2,") for text in texts)


def test_drafters_are_built_once_per_place_and_reused_with_the_same_outputs(zoo):
    target = copy.deepcopy(zoo[0])
    pg = Playground(target, zoo[1], prompt=PROMPT, max_new_tokens=16, background=False, drafter="eagle")
    first = pg.last_output.token_ids
    built = pg.drafter_for("eagle")
    pg.gamma.value = 3
    pg.gamma.value = 4
    assert pg.drafter_for("eagle") is built and pg.last_output.token_ids == first  # a reused drafter: the same run
    assert len(pg._drafters) == 1
    target.to(torch.bfloat16)
    assert pg.drafter_for("eagle") is not built  # another dtype: built again
