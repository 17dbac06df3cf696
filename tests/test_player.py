"""The step-through player and the tree view, driven headlessly on real traces of the tiny models."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest
import torch

from specdec_lab import generate_speculative
from specdec_lab.core.theory import residual
from specdec_lab.core.trace import GenerationOutput, summarize
from specdec_lab.verifiers.tree import TreeSpeculative
from specdec_lab.lab.viz.html import save_html
from specdec_lab.lab.viz.keyboard import KeyboardScope
from specdec_lab.verifiers import GreedyMatch, TypicalAcceptance
from specdec_lab.lab.viz.player import StepPlayer
from specdec_lab.lab.viz.text import GLYPH
from specdec_lab.lab.viz.tree import tree_figure, tree_html

from conftest import perturbed_copy, tiny_llama


def decode(ids):
    return "".join(chr(65 + i % 26) for i in ids)


@pytest.fixture(scope="module")
def linear():
    """Chain drafts from a noisy copy at temperature 1: rejections at several positions, and bonus steps."""
    target = tiny_llama(seed=0)
    out = generate_speculative(target, perturbed_copy(target, 0.1), [1, 2, 3], gamma=4, max_new_tokens=16,
                               temperature=1.0, seed=0)
    kinds = {s.next_kind for s in out.steps}
    assert {"bonus", "corrected"} <= kinds and any(s.n_accepted > 0 and s.next_kind == "corrected" for s in out.steps)
    return out


@pytest.fixture(scope="module")
def tree():
    """Tree drafts (2 candidates, then chains): accepted paths, double rejections, a bonus at a leaf."""
    target = tiny_llama(seed=0)
    out = generate_speculative(target, perturbed_copy(target, 0.05), [1, 2, 3], gamma=3, max_new_tokens=16,
                               temperature=0.4, seed=0, verifier=TreeSpeculative(width=2))
    assert all(s.tree is not None for s in out.steps)
    assert any(s.tree["path"] and s.next_kind == "corrected" for s in out.steps)
    assert any(s.next_kind == "bonus" for s in out.steps)
    return out


def test_keys_stay_in_the_player(linear):
    """The player carries a KeyboardScope for its own CSS class, and its parts the classes the browser test finds."""
    player = StepPlayer(linear, decode)
    scopes = [w for w in player.widget.children if isinstance(w, KeyboardScope)]
    assert "sdl-player" in player.widget._dom_classes and [w.scope for w in scopes] == ["sdl-player"]
    assert "sdl-player-step" in player._slider._dom_classes and "sdl-player-panel" in player._panel._dom_classes


def test_next_previous_show_move_and_clamp(linear):
    player, last = StepPlayer(linear, decode), len(linear.steps) - 1
    assert player.index == 0
    player.previous()
    assert player.index == 0  # clamped, no error
    player.next()
    assert player.index == 1 and 'data-step="1"' in player.html
    player.show(10_000)
    assert player.index == last
    player.next()
    assert player.index == last
    player.show(-3)
    assert player.index == 0
    player._slider.value = 2  # what dragging the slider or the Play widget does
    assert player.index == 2
    player._play.value = 1  # Play is linked to the slider (kernel side, so it works headless)
    assert player.index == 1 and player._slider.value == 1
    player._next.click()
    assert player.index == 2


def test_panel_shows_context_verdicts_and_running_metrics(linear):
    player = StepPlayer(linear, decode)
    for i, step in enumerate(linear.steps):
        player.show(i)
        for k, decision in enumerate(step.decisions):
            assert f"{GLYPH[decision]} {decision}" in player.html
            numbers = f"<td>{step.p_draft[k]:.3f}</td><td>{step.q_draft[k]:.3f}</td><td>{step.accept_prob[k]:.3f}</td>"
            assert numbers in player.html
        so_far = summarize(linear.steps[: i + 1], 0.0, 0, 0)
        assert f"so far: {so_far.new_tokens} tokens in {i + 1} steps" in player.html
        assert f"α̂ = accepted ÷ checked = {so_far.accepted}/{so_far.checked}" in player.html
        assert f"draft yield (accepted ÷ drafted) = {so_far.accepted}/{so_far.drafted}" in player.html
        context = decode(linear.prompt_ids + [t for s in linear.steps[:i] for t in s.emitted])
        assert f'context: <span class="sdl-tok sdl-prompt">{context}</span>' in player.html


def test_chart_at_a_rejection_is_p_q_min_and_the_residual(linear):
    player = StepPlayer(linear, decode)
    rejected = [i for i, s in enumerate(linear.steps) if s.next_kind == "corrected"]
    for i in rejected:
        player.show(i)
        step, fig = linear.steps[i], player.figure
        assert [t.type for t in fig.data] == ["bar"] * 4
        tokens, p, q = (list(c) for c in zip(*step.top_at_stop))
        for trace in fig.data:
            assert [int(re.search(r"\[(\d+)\]$", x).group(1)) for x in trace.x] == tokens
        bars = {t.name.split()[0]: torch.tensor(t.y, dtype=torch.float64) for t in fig.data}
        p_t, q_t = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
        assert torch.allclose(bars["p"], p_t) and torch.allclose(bars["q"], q_t)
        assert torch.allclose(bars["min(p,"], torch.minimum(p_t, q_t))
        assert torch.allclose(bars["residual"], residual(p_t, q_t)) and math.isclose(float(bars["residual"].sum()), 1.0)
        # a rejected x had p(x) < q(x), so the residual cannot draw it again; the correction came from where p > q
        x_rejected = step.draft[step.n_accepted]
        if x_rejected in tokens:
            assert float(bars["residual"][tokens.index(x_rejected)]) == 0.0
        if step.next_token in tokens:
            assert float(bars["residual"][tokens.index(step.next_token)]) > 0.0
        assert f"first rejection (position {step.n_accepted + 1})" in player.html
        assert player._chart_box.layout.display is None and len(player._chart.data) == 4  # the widget shows it


def test_no_chart_without_a_rejection(linear):
    """A step whose draft was fully accepted has no residual to show: figure None, a note about the bonus."""
    player = StepPlayer(linear, decode)
    player.show(next(i for i, s in enumerate(linear.steps) if s.next_kind == "bonus"))
    assert player.figure is None
    assert "bonus token ★ was drawn from p" in player.html
    assert player._chart_box.layout.display == "none" and len(player._chart.data) == 0


def li_parents(fragment: str) -> dict[str, str | None]:
    """Each list item's data-node (or "own") -> the data-node of the item it is nested in (None: the context)."""
    parents, stack = {}, []

    class Walk(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "li":
                a = dict(attrs)
                name = a.get("data-node") or ("own" if "data-own" in a else None)
                if name is not None:
                    parents[name] = next((n for n in reversed(stack) if n is not None), None)
                stack.append(name)

        def handle_endtag(self, tag):
            if tag == "li":
                stack.pop()

    Walk().feed(fragment)
    return parents


NODE = re.compile(r'<li data-node="(\d+)">(?:<strong>)?<span class="sdl-tok sdl-(\w+)( sdl-path)?" title="([^"]*)"')


def test_tree_html_one_node_per_token_with_decisions_and_path(tree):
    for step in tree.steps:
        t = step.tree
        fragment = tree_html(step, decode)
        if not t["tokens"]:
            assert "no candidate tree" in fragment
            continue
        nodes = NODE.findall(fragment)
        assert sorted(int(j) for j, *_ in nodes) == list(range(len(t["tokens"])))
        for j, kind, on_path, title in nodes:
            assert kind == t["decisions"][int(j)]
            assert bool(on_path) == (int(j) in t["path"])
            a = t["accept_prob"][int(j)]
            assert (f"min(1, p/q) = {a:.3f}" in title) != math.isnan(a)
        own = re.search(r'<li data-own="(\w+)"><strong><span class="sdl-tok sdl-(\w+) sdl-path"[^>]*>([^<]*)</span>',
                        fragment)
        assert own.group(1) == own.group(2) == step.next_kind
        assert own.group(3) == decode([step.next_token]) + GLYPH[step.next_kind]
        parent_of = li_parents(fragment)  # the nesting of the lists is the tree
        expected = [str(j) if j >= 0 else None for j in t["parents"]]
        assert [parent_of[str(j)] for j in range(len(t["tokens"]))] == expected
        assert parent_of["own"] == (str(t["path"][-1]) if t["path"] else None)  # below the end of the accepted path


def test_tree_figure_nodes_and_highlighted_path(tree):
    step = next(s for s in tree.steps if s.tree["path"])
    fig = tree_figure(step, decode)
    nodes = [tr for tr in fig.data if tr.mode == "markers+text" and tr.name != "context"]
    assert sum(len(tr.x) for tr in nodes) == len(step.tree["tokens"]) + 1  # the drafts and the target's own token
    path = next(tr for tr in fig.data if tr.name == "accepted path")
    assert sum(x is None for x in path.x) == len(step.tree["path"]) + 1  # one segment per path edge, own token included
    assert list(path.x[:2]) == [0, 1]  # from the context to depth 1
    assert all(tree_figure(s, decode) is None for s in tree.steps if not s.tree["tokens"])


def test_player_on_a_tree_run_shows_the_tree(tree):
    player = StepPlayer(tree, decode)
    i = next(i for i, s in enumerate(tree.steps) if s.tree["path"] and s.next_kind == "corrected")
    player.show(i)
    assert "candidate tree:" in player.html and player.figure is not None
    assert player.html.count('<li data-node="') == len(tree.steps[i].tree["tokens"])


def test_not_a_tree_step_and_empty_trace(linear):
    assert "no candidate tree" in tree_html(linear.steps[0], decode) and tree_figure(linear.steps[0], decode) is None
    empty = GenerationOutput([1, 2], [], [], summarize([], 0.0, 0, 0), {})
    player = StepPlayer(empty, decode)
    player.next()
    player.previous()
    player.show(4)
    assert player.index == 0 and player.figure is None and "no steps" in player.html
    assert "no steps" in player.to_html()


def test_to_html_has_every_step_and_saves(linear, tmp_path):
    player = StepPlayer(linear, decode)
    page = player.to_html()
    panels = re.findall(r'class="sdl-view sdl-panel" data-step="(\d+)"', page)
    assert [int(i) for i in panels] == list(range(len(linear.steps)))
    assert page.count("<style>") == 3 and "<script" not in page  # static: style once, no JS
    assert "<script" in player.to_html(figures=True)
    assert save_html(page, tmp_path / "steps.html").read_text(encoding="utf-8").startswith("<!doctype html>")


ALPHA = re.compile(r"α̂ = accepted ÷ checked = (\d+)/(\d+) = ([0-9.]+|n/a)")


def test_alpha_is_accepted_over_checked_as_in_stats(linear):
    """α̂ in the player is Stats.alpha (accepted ÷ checked, Spec-Bench's α), not accepted ÷ drafted.

    The run has drafts left unchecked after a rejection, so the two differ; accepted ÷ drafted is
    shown only under its own name, "draft yield".
    """
    assert linear.stats.checked < linear.stats.drafted
    assert round(linear.stats.alpha, 2) != round(linear.stats.draft_yield, 2)
    player = StepPlayer(linear, decode)
    player.show(len(linear.steps) - 1)
    accepted, checked, shown = ALPHA.search(player.html).groups()
    assert (int(accepted), int(checked)) == (linear.stats.accepted, linear.stats.checked)
    assert float(shown) == round(linear.stats.alpha, 2)
    rate = f"draft yield (accepted ÷ drafted) = {linear.stats.accepted}/{linear.stats.drafted} = "
    assert rate + f"{linear.stats.draft_yield:.2f}" in player.html
    assert f"α̂ = {linear.stats.accepted}/{linear.stats.drafted}" not in player.html
    for i, step in enumerate(linear.steps):  # every step: the running α̂ is the running Stats.alpha
        player.show(i)
        so_far = summarize(linear.steps[: i + 1], 0.0, 0, 0)
        expected = "n/a" if math.isnan(so_far.alpha) else f"{so_far.alpha:.2f}"
        assert ALPHA.search(player.html).group(3) == expected


SAMPLING_RULE = "keep x<sub>i</sub> iff u<sub>i</sub> &lt; min(1, p/q)"
GREEDY_RULE = "keep x<sub>i</sub> iff x<sub>i</sub> = argmax p"


def _drafted_steps(out):
    return [i for i, s in enumerate(out.steps) if s.draft]


def test_the_rule_shown_is_the_rule_that_applied(linear):
    """Sampling runs show u < min(1, p/q); greedy runs (temperature 0, or a greedy verifier drawing no
    uniforms) show x = argmax p; a lossy verifier shows its own rule."""
    target = tiny_llama(seed=0)
    drafter = perturbed_copy(target, 0.1)
    greedy_runs = {
        "temperature 0": generate_speculative(target, drafter, [1, 2, 3], gamma=4, max_new_tokens=12, temperature=0.0),
        "greedy verifier": generate_speculative(target, drafter, [1, 2, 3], gamma=4, max_new_tokens=12,
                                                temperature=1.0, seed=0, verifier=GreedyMatch()),
    }
    nan_only = GenerationOutput(greedy_runs["greedy verifier"].prompt_ids, greedy_runs["greedy verifier"].token_ids,
                                greedy_runs["greedy verifier"].steps, greedy_runs["greedy verifier"].stats, {})
    greedy_runs["no uniforms drawn, no settings"] = nan_only
    for label, out in greedy_runs.items():
        player = StepPlayer(out, decode)
        assert _drafted_steps(out), label
        for i in _drafted_steps(out):
            player.show(i)
            assert GREEDY_RULE in player.html and SAMPLING_RULE not in player.html, label
            assert "drawn from argmax p" in player.html, label
    player = StepPlayer(linear, decode)
    for i in _drafted_steps(linear):
        player.show(i)
        assert SAMPLING_RULE in player.html and GREEDY_RULE not in player.html
    typical = generate_speculative(target, drafter, [1, 2, 3], gamma=4, max_new_tokens=12, temperature=1.0, seed=0,
                                   verifier=TypicalAcceptance())
    player = StepPlayer(typical, decode)
    player.show(_drafted_steps(typical)[0])
    assert "typical acceptance, lossy" in player.html
    assert SAMPLING_RULE not in player.html and GREEDY_RULE not in player.html
