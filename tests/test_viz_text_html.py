"""The token view: plain text, ANSI and HTML renderings of a trace; an HTML snapshot."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from specdec_lab import generate_speculative
from specdec_lab.core.trace import GenerationOutput, StepRecord, summarize
from specdec_lab.lab.viz.html import save_html, token_view_html
from specdec_lab.lab.viz.text import render_output, render_trace

from conftest import perturbed_copy, tiny_llama

SNAPSHOT = Path(__file__).parent / "snapshots" / "token_view.html"
WORDS = {0: "To", 1: " be", 2: ",", 3: " or", 4: " not", 5: "\n", 6: " to", 7: " that"}


def decode(ids):
    return "".join(WORDS[i] for i in ids)


def hand_trace() -> GenerationOutput:
    """Two steps written out by hand: a rejection at position 2, then a full acceptance with a bonus."""
    steps = [
        StepRecord(context_len=1, draft=[1, 2, 6], q_draft=[0.9, 0.8, 0.7], p_draft=[0.95, 0.2, 0.1],
                   accept_prob=[1.0, 0.25, 0.142857], uniforms=[0.31, 0.62, 0.05], decisions=["accepted", "rejected", "unchecked"],
                   n_accepted=1, emitted=[1, 3], next_token=3, next_kind="corrected", draft_time_s=0.0, verify_time_s=0.0),
        StepRecord(context_len=3, draft=[4, 5], q_draft=[0.6, 0.5], p_draft=[0.7, 0.4], accept_prob=[1.0, 0.8],
                   uniforms=[0.5, 0.7], decisions=["accepted", "accepted"], n_accepted=2, emitted=[4, 5, 6],
                   next_token=6, next_kind="bonus", draft_time_s=0.0, verify_time_s=0.0),
    ]
    return GenerationOutput([0], [1, 3, 4, 5, 6], steps, summarize(steps, 1.0, 3, 5), {})


def test_html_snapshot():
    fragment = token_view_html(hand_trace(), decode, stats=False)
    if not SNAPSHOT.exists():
        SNAPSHOT.write_text(fragment, encoding="utf-8")
        pytest.fail(f"no snapshot yet: wrote {SNAPSHOT}; review it in a browser and commit it")
    assert fragment == SNAPSHOT.read_text(encoding="utf-8")


def test_html_marks_every_token_with_class_glyph_and_numbers():
    fragment = token_view_html(hand_trace(), decode)
    body = fragment.split('<div class="sdl-legend">')[1].split("</div>", 1)[1]
    classes = re.findall(r'class="sdl-tok sdl-(\w+)"', body)
    assert classes == ["prompt", "accepted", "rejected", "unchecked", "corrected", "accepted", "accepted", "bonus"]
    assert "␣be✓" in body and "␣to·" in body and "↵✓</span><br>" in body  # whitespace made visible
    assert 'data-info="p(x) = 0.200\nq(x) = 0.800\nmin(1, p/q) = 0.250\nu = 0.620\n→ rejected"' in fragment
    assert "text-decoration:line-through" in fragment  # not colour alone
    assert "5 new tokens in 2 steps" in fragment


def test_plain_text_rendering():
    out = hand_trace()
    assert render_output(out, decode) == "To be✓ or↻ not✓↵✓ to★"
    text = render_trace(out, decode)
    assert "p=0.200  q=0.800  min(1,p/q)=0.250  u=0.620  ✗ rejected" in text
    assert "\x1b[" not in text and "\x1b[31;9m" in render_trace(out, decode, color=True)


def test_real_run_has_one_span_per_drafted_and_target_token(tmp_path):
    target = tiny_llama(seed=0)
    out = generate_speculative(target, perturbed_copy(target, 0.05), [1, 2, 3], gamma=3, max_new_tokens=20, temperature=1.0)
    fragment = token_view_html(out, lambda ids: " ".join(map(str, ids)))
    body = fragment.split('<div class="sdl-legend">')[1].split("</div>", 1)[1]
    assert body.count('class="sdl-tok ') == 1 + sum(len(s.draft) + 1 for s in out.steps)
    page = save_html(fragment, tmp_path / "run.html")
    assert page.read_text().startswith("<!doctype html>") and not math.isnan(out.stats.acceptance_rate)
