"""One name and one definition per quantity (issue 36, item 2), in every view of one run.

    α            accepted ÷ checked            "α (accepted ÷ checked)"
    draft yield  accepted ÷ drafted            "draft yield (accepted ÷ drafted)"
    τ            new tokens ÷ steps            the prefill is not a step
    forwards     target forwards = prefill + steps: "12 target forwards = 1 prefill + 11 steps"
    c            drafting cost per drafted token in target forwards, shown for every drafter, with or without a model
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import pytest

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.bench import compare
from specdec_lab.bench.zoo_report import acceptance
from specdec_lab.core.trace import ALPHA, DRAFT_YIELD, GenerationOutput, StepRecord, summarize
from specdec_lab.lab.viz.html import token_view_html
from specdec_lab.lab.viz.player import StepPlayer
from specdec_lab.lab.viz.playground import Settings, metrics_html, summarize_run
from specdec_lab.lab.viz.text import render_stats, render_trace
from specdec_lab.models.loading import load_model
from specdec_lab.registry import build_drafter

GLOSSARY = Path(__file__).parent.parent / "notebooks" / "GLOSSARY.md"
# a text that repeats itself, so the copying drafters find n-grams to copy
PROMPT = ("KING RICHARD.\nNow is the winter of our discontent\nMade glorious summer by this sun of York;\n"
          "And all the clouds that lour'd upon our house\nNow is the winter of our discontent\nMade glorious")
FORWARDS = re.compile(r"(\d+) target forwards = (\d+) prefill \+ (\d+) steps")


@pytest.fixture(scope="module")
def zoo():
    target, tokenizer = load_model("zoo:target", "cpu")
    return target, tokenizer, tokenizer(PROMPT)["input_ids"]


@pytest.fixture(scope="module")
def runs(zoo):
    """One greedy run per kind of drafter: a model, a copying lookup, heads on the target, lookahead's side branch."""
    target, tokenizer, ids = zoo
    return {name: generate_speculative(target, build_drafter(name, target, tokenizer), ids, gamma=4, max_new_tokens=24)
            for name in ("distilled", "prompt-lookup", "eagle", "medusa", "lookahead")}


def _decode(tokenizer):
    return lambda ids: tokenizer.decode(ids, clean_up_tokenization_spaces=False)


def _figure(text: str, label: str) -> str:
    return re.search(re.escape(label) + r" = ([0-9.]+|n/a)", text).group(1)


def test_definitions(runs):
    for name, out in runs.items():
        s = out.stats
        assert s.checked <= s.drafted and s.drafted > 0, name
        assert s.alpha == s.accepted / s.checked and s.draft_yield == s.accepted / s.drafted, name
        assert s.draft_yield <= s.alpha and s.acceptance_rate == s.draft_yield, name  # the old name, the same number
        assert s.mean_tokens_per_step == s.new_tokens / s.steps, name  # τ: the prefill is no step
        assert s.checked == sum(d != "unchecked" for step in out.steps for d in step.decisions)


def test_target_forwards_are_one_prefill_plus_one_per_step_for_every_drafter(zoo, runs):
    """Lookahead's side branch rides inside the step's forward: its count is 1 + steps like any drafter's."""
    target, _, ids = zoo
    for name, out in runs.items():
        assert (out.stats.prefill_forwards, out.stats.target_forwards) == (1, 1 + out.stats.steps), name
        assert f"{out.stats.target_forwards} target forwards = 1 prefill + {out.stats.steps} steps" in render_stats(out)
    alone = generate_autoregressive(target, ids, max_new_tokens=24).stats
    assert alone.prefill_forwards == 0 and alone.target_forwards == alone.steps == alone.new_tokens == 24
    assert "24 target forwards = 24 steps (no separate prefill: the first step reads the prompt)" in alone.summary()
    one_token = generate_speculative(target, build_drafter("prompt-lookup", target), ids[:1], max_new_tokens=6).stats
    assert one_token.prefill_forwards == 0 and one_token.target_forwards == one_token.steps


def test_every_view_states_the_same_alpha_yield_tau_and_forward_split(zoo, runs):
    """The text view, the CLI's trace, the HTML token view, the player's last step and the playground's table."""
    target, tokenizer, ids = zoo
    decode = _decode(tokenizer)
    out = runs["distilled"]
    s = out.stats
    assert s.checked < s.drafted and round(s.alpha, 2) != round(s.draft_yield, 2)  # the two must be told apart here
    alpha, draft_yield, tau = f"{s.alpha:.2f}", f"{s.draft_yield:.2f}", f"{s.mean_tokens_per_step:.2f}"
    split = (str(s.target_forwards), "1", str(s.steps))
    player = StepPlayer(out, decode)
    player.show(len(out.steps) - 1)
    views = {"text": render_stats(out), "trace": render_trace(out, decode),
             "html": html.unescape(token_view_html(out, decode)), "player": html.unescape(player.html)}
    for view, text in views.items():
        assert FORWARDS.search(text).groups() == split, view
        if view == "player":  # the running figures with their counts; α̂: the estimate so far
            assert f"α̂ = accepted ÷ checked = {s.accepted}/{s.checked} = {alpha}" in text
            assert f"{DRAFT_YIELD} = {s.accepted}/{s.drafted} = {draft_yield}" in text
            assert f"τ̂ = new tokens ÷ steps = {tau}" in text
        else:
            assert _figure(text, ALPHA) == alpha and _figure(text, DRAFT_YIELD) == draft_yield, view
            assert _figure(text, "τ (new tokens ÷ steps)") == tau, view
        assert f"α = {draft_yield}" not in text and f"α {draft_yield}" not in text, view  # never the yield called α
    baseline = generate_autoregressive(target, ids, max_new_tokens=24)
    table = metrics_html(summarize_run(Settings("x", "distilled", "speculative", 4, 0.0, 1.0, 24), out, baseline))
    cells = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table))
    assert cells[ALPHA] == alpha and cells[DRAFT_YIELD] == draft_yield


def test_a_drafter_without_a_model_shows_its_drafting_cost(runs):
    """Prompt lookup copies, EAGLE and Medusa run heads on the target, lookahead harvests n-grams: none has a model
    of its own, so its drafter forwards are 0, and the summary says why and gives c, the cost model's unit."""
    for name in ("prompt-lookup", "eagle", "medusa", "lookahead"):
        s = runs[name].stats
        assert s.drafter_forwards == 0 and s.drafted > 0, name
        assert math.isfinite(s.draft_cost) and s.draft_cost >= 0, name
        text = s.summary()
        assert f"drafting: {s.drafted} tokens at c = {s.draft_cost:.2f} target forwards each (timed)" in text, name
        assert "0 drafter forwards (no drafter model: a lookup, or heads on the target's hidden states)" in text, name
    model = runs["distilled"].stats
    assert model.drafter_forwards > 0 and f"; {model.drafter_forwards} drafter forwards" in model.summary()


def test_draft_cost_is_drafting_seconds_per_drafted_token_over_one_verification_forward():
    step = StepRecord(context_len=3, draft=[1, 1, 1, 1], q_draft=[1.0] * 4, p_draft=[1.0] * 4, accept_prob=[1.0] * 4,
                      uniforms=[0.0] * 4, decisions=["accepted"] * 4, n_accepted=4, emitted=[1] * 5, next_token=1,
                      next_kind="bonus", draft_time_s=0.002, verify_time_s=0.010)
    stats = summarize([step, step], 0.03, 3, 0)
    assert stats.draft_cost == pytest.approx((0.004 / 8) / (0.020 / 2))  # 0.05 target forwards per drafted token
    assert "drafting: 8 tokens at c = 0.05" in stats.summary()
    assert "3 target forwards = 1 prefill + 2 steps" in stats.summary()
    nothing = summarize([], 0.0, 0, 0)
    assert math.isnan(nothing.draft_cost) and "nothing drafted" in nothing.summary()


def test_zoo_report_alpha_is_accepted_over_checked(zoo):
    target, tokenizer, ids = zoo
    drafter = build_drafter("distilled", target, tokenizer)
    pooled = acceptance(target, drafter, [ids], gamma=4, temperature=0.0, max_new_tokens=24)
    s = generate_speculative(target, drafter, ids, gamma=4, max_new_tokens=24, seed=0).stats
    assert pooled["alpha"] == s.alpha and pooled["draft_yield"] == s.draft_yield
    assert "alpha_checked" not in pooled  # one key per quantity


def test_compare_table_splits_target_forwards_into_prefill_and_steps(zoo):
    target, tokenizer, ids = zoo
    row = compare.measure(target, tokenizer, "lookahead", "speculative", [ids, ids[:40]], gamma=4, max_new_tokens=16)
    cell = compare._forwards(row)
    total, prefill, steps = map(int, re.fullmatch(r"(\d+) = (\d+) prefill \+ (\d+) steps", cell).groups())
    assert total == round(row["forwards_per_100"]) == prefill + steps
    assert prefill == round(100 * 2 / 32)  # two prompts: one prefill each per 32 tokens
    assert cell in compare.table_markdown([row])


def _entry(text: str, term: str) -> str:
    """A glossary entry's text, whitespace collapsed."""
    return " ".join(text.split(f"- **{term}**", 1)[1].split("\n- **", 1)[0].split())


def test_the_glossary_defines_each_quantity_once_and_keeps_alpha_apart_from_the_draft_yield():
    text = GLOSSARY.read_text(encoding="utf-8")
    entries = re.findall(r"^\s*- \*\*([^*]+)\*\*", text, flags=re.M)
    for term in ("α (alpha)", "Draft yield", "Prefill", "τ (tau), tokens per step", "c, drafting cost",
                 "v, verification cost"):
        assert entries.count(term) == 1, term
    assert "accepted ÷ checked" in _entry(text, "α (alpha)") and "acceptance rate**" not in text
    assert "accepted ÷ drafted" in _entry(text, "Draft yield") and "at most α" in _entry(text, "Draft yield")
    assert "target forwards = 1 prefill + steps" in _entry(text, "Prefill")
    tau = _entry(text, "τ (tau), tokens per step")
    assert "new tokens ÷ steps" in tau and "τ does not count it" in tau
    assert "0 drafter forwards" in _entry(text, "c, drafting cost")
