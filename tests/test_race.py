"""The race view, headless: both runs complete, their tokens are the loops' own, the stamps are the steps', and the
static HTML holds both lanes, their meters, the speedup and the replay switch."""

from __future__ import annotations

import re

import pytest

from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.core.trace import StepRecord
from specdec_lab.lab.viz.race import Lane, Race, timed
from specdec_lab.lab.viz.race_view import race_html, speedup
from specdec_lab.models.loading import load_model
from specdec_lab.registry import DRAFTERS

PROMPT = "ROMEO.\nBut soft, what light"


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", device="cpu")


@pytest.mark.parametrize("drafter, verifier", [(name, "speculative") for name in DRAFTERS]
                         + [("medusa", "tree-greedy"), ("distilled", "typical"), ("prompt-lookup", "greedy")])
def test_both_streams_complete_with_the_loops_own_tokens(zoo, drafter, verifier):
    target, tokenizer = zoo
    race = Race(target, tokenizer, PROMPT, drafter=drafter, verifier=verifier, gamma=3, max_new_tokens=10)
    ids = tokenizer(PROMPT)["input_ids"]
    assert race.autoregressive.token_ids == generate_autoregressive(target, ids, max_new_tokens=10).token_ids
    alone = generate_speculative(target, build_drafter(drafter, target, tokenizer), ids, gamma=3, verifier=verifier,
                                 max_new_tokens=10)
    assert race.speculative.token_ids == alone.token_ids
    ar, spec = race.lanes
    assert ar.tokens == 10 == spec.tokens and len(ar.at) == len(ar.steps) == 10 and len(spec.at) == len(spec.steps)
    for lane in race.lanes:
        assert lane.at == sorted(lane.at) and lane.at[0] > 0
    assert race.speedup == pytest.approx((spec.tokens / spec.at[-1]) / (ar.tokens / ar.at[-1]))


def test_sampling_races_follow_the_seed(zoo):
    target, tokenizer = zoo
    race = Race(target, tokenizer, PROMPT, drafter="distilled", max_new_tokens=12, temperature=0.8, seed=3)
    ids = tokenizer(PROMPT)["input_ids"]
    assert race.speculative.token_ids == generate_speculative(
        target, build_drafter("distilled", target, tokenizer), ids, max_new_tokens=12, temperature=0.8, seed=3).token_ids
    assert race.autoregressive.token_ids == generate_autoregressive(target, ids, max_new_tokens=12, temperature=0.8,
                                                                    seed=3).token_ids


def test_timed_stamps_one_time_per_step(zoo):
    target, tokenizer = zoo
    out, at = timed(generate_autoregressive, target, tokenizer(PROMPT)["input_ids"], max_new_tokens=5)
    assert len(at) == len(out.steps) == 5 and at == sorted(at)


def test_the_static_html_holds_both_streams_the_meters_and_the_speedup(zoo, tmp_path):
    target, tokenizer = zoo
    race = Race(target, tokenizer, PROMPT, drafter="distilled", max_new_tokens=16)
    page = race.to_html()
    lanes = re.findall(r'<div class="sdl-race-lane" data-lane="(\w+)">(.*?)</div></div></div>', page, re.S)
    assert [name for name, _ in lanes] == ["autoregressive", "speculative"]
    ar_lane, spec_lane = (body for _, body in lanes)
    assert ar_lane.count("sdl-plain") == 16  # one plain token per autoregressive step
    spec_steps = race.speculative.steps
    drafted = sum(len(s.draft) for s in spec_steps)
    assert spec_lane.count('class="sdl-step"') == len(spec_steps)
    assert len(re.findall(r'class="sdl-tok sdl-(?:accepted|rejected|unchecked)"', spec_lane)) == drafted
    assert "sdl-accepted" in spec_lane and "<script" not in page
    assert f"{race.speedup:.2f}×" in page and f'data-speedup="{race.speedup:.4f}"' in page
    assert ar_lane.count("sdl-race-tick") == 15 and "tokens/s" in ar_lane  # a reading between every two steps
    delays = [float(d) for d in re.findall(r'class="sdl-at" style="animation-delay:([\d.]+)s"', ar_lane)]
    assert delays == [round(t, 3) for t in race.lanes[0].at]  # the recorded pace
    finish = max(lane.seconds for lane in race.lanes)
    assert f'class="sdl-at sdl-race-speedup" style="animation-delay:{finish:.3f}s"' in page
    assert 'class="sdl-race-toggle"' in page and "▶ replay" in page
    assert race._repr_html_() != page  # each showing gets its own replay switch
    text = race.save(tmp_path / "race.html").read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "sdl-race-lane" in text


def test_the_view_is_pure_and_escapes_what_it_shows():
    step = StepRecord(context_len=1, draft=[], q_draft=[], p_draft=[], accept_prob=[], uniforms=[], decisions=[],
                      n_accepted=0, emitted=[1], next_token=1, next_kind="plain", draft_time_s=0.0, verify_time_s=0.1)
    slow, fast = Lane("<b>ar</b>", [step] * 4, [0.1, 0.2, 0.3, 0.4]), Lane("spec", [step] * 4, [0.05, 0.1, 0.15, 0.2])
    assert speedup(slow, fast) == pytest.approx(2.0)
    page = race_html(slow, fast, lambda ids: "<x>", prompt="<script>", note="busy machine")
    assert "<script>" not in page and "&lt;b&gt;ar&lt;/b&gt;" in page and "2.00×" in page and "busy machine" in page


def test_an_unknown_drafter_names_the_registry(zoo):
    with pytest.raises(ValueError, match="unknown drafter 'nope'; the registry's drafters: small-model"):
        Race(*zoo, PROMPT, drafter="nope")
