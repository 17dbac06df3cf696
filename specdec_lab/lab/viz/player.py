"""The step-through player: previous / next / play over the steps of a trace.

For the current step it shows the context so far (dimmed), the draft x_1..x_γ with the
verdict at each position and the rule that decided it. Speculative sampling (Leviathan
et al. 2023, Algorithm 1):

    keep x_i  iff  u_i < min(1, p(x_i) / q(x_i)),   u_i ~ U(0, 1);   stop at the first rejection

and on a greedy run (temperature 0, or a greedy verifier: no uniform is drawn, or none matters)

    keep x_i  iff  x_i = argmax p;   stop at the first rejection

(the lossy verifiers show their own rule). Then the running metrics, under the names every view
uses (core/trace.py): tokens, steps, α̂ = accepted ÷ checked (``Stats.alpha``, the α of Leviathan's
formulas and Spec-Bench: drafts left unchecked after a rejection do not count), the draft yield
accepted ÷ drafted (``Stats.draft_yield``, which does count them), τ̂ = new tokens ÷ steps, and the
target forwards so far = the prefill + one per step. At the first rejected position it shows the four
distributions that explain the correction, over the most likely tokens there
(``StepRecord.top_at_stop``):

    p,  q,  min(p, q)  (the mass the draft keeps: Σ min(p, q) = α),
    norm(max(0, p − q))  (the residual the correction ↻ is drawn from)

The residual is renormalised over the tokens shown (the trace keeps only the top
tokens), so it matches the true residual's ratios, not its normaliser. Tree-verified
steps also show their candidate tree.

Everything the widget shows is a pure function of the trace (``step_panel_html``,
``stop_figure``), so the player works headless and ``to_html`` renders every step
as static HTML for nbviewer, GitHub and ``save_html``.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from ...core.theory import residual
from ...core.trace import BONUS, CORRECTED, DRAFT_YIELD, GenerationOutput, StepRecord, two_decimals, summarize
from .charts import draw, make_chart
from .html import COLORS, STYLE, _token, legend_html, step_html, visible_html, visible_label
from .keyboard import scoped_vbox
from .text import GLYPH
from .tree import TREE_STYLE, tree_html

CONTEXT_CHARS = 400  # the context line shows at most this many trailing characters
PLAYER_STYLE = """
<style>
.sdl-panel h4{margin:4px 0}
.sdl-panel table{border-collapse:collapse;margin:6px 0;line-height:1.6}
.sdl-panel th,.sdl-panel td{border:1px solid #ddd;padding:1px 8px;text-align:right}
.sdl-panel caption{text-align:left;color:#333}
.sdl-context{color:#666}
.sdl-note{color:#333;margin:4px 0}
</style>
"""
BARS = (  # name, colour, pattern: colour is never the only carrier
    ("p (target)", COLORS["corrected"], ""),
    ("q (drafter)", COLORS["unchecked"], "/"),
    ("min(p, q): kept mass", COLORS["accepted"], "x"),
    ("residual norm(max(0, p − q))", COLORS["rejected"], "."),
)


def _num(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def stop_distributions(step: StepRecord) -> dict[str, list] | None:
    """At a step's first rejection: tokens and p, q, min(p, q), residual over ``top_at_stop``; else None."""
    if step.next_kind != CORRECTED or not step.top_at_stop:
        return None
    tokens, p, q = (list(c) for c in zip(*step.top_at_stop))
    p_t, q_t = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
    return {"tokens": tokens, "p": p, "q": q, "min": torch.minimum(p_t, q_t).tolist(),
            "residual": residual(p_t, q_t).tolist()}


def _stop_glyph(token: int, step: StepRecord) -> str:
    """✗ on the rejected draft, ↻ on the correction: the two tokens the chart is about."""
    rejected = step.draft[step.n_accepted] if step.n_accepted < len(step.draft) else None
    return (GLYPH["rejected"] if token == rejected else "") + (GLYPH[CORRECTED] if token == step.next_token else "")


def token_label(token: int, step: StepRecord, decode) -> str:
    """A token's text (whitespace visible) with its glyph and id, unique per token: 'the↻ [262]'."""
    return f"{visible_label(decode([token]))}{_stop_glyph(token, step)} [{token}]"


def stop_figure(step: StepRecord, decode, index: int | None = None) -> go.Figure | None:
    """Bars of p, q, min(p, q) and the residual at the first rejection; None when nothing was rejected."""
    d = stop_distributions(step)
    if d is None:
        return None
    x = [token_label(t, step, decode) for t in d["tokens"]]
    fig = go.Figure()
    for (name, color, pattern), key in zip(BARS, ("p", "q", "min", "residual")):
        fig.add_bar(x=x, y=d[key], name=name, marker=dict(color=color, pattern=dict(shape=pattern)))
    where = "" if index is None else f"step {index}: "
    note = ""
    if step.tree and sum(dec == "rejected" for dec in step.tree["decisions"]) > 1:
        note = ("<br><sup>several candidates were rejected here; "
                "the correction came from the residual after each in turn</sup>")
    fig.update_layout(
        title=f"{where}first rejection at position {step.n_accepted + 1}; residual over the tokens shown{note}",
        barmode="group", height=340, margin=dict(l=50, r=20, t=60, b=60), yaxis_title="probability",
        legend=dict(orientation="h", y=-0.25), plot_bgcolor="white",
    )
    return fig


GREEDY_VERIFIERS = ("greedy", "tree-greedy")
LOSSY_RULES = {  # verifier name -> (its rule, where the target's own token comes from)
    "typical": ("keep x<sub>i</sub> iff p(x<sub>i</sub>) &gt; min(ε, δ·exp(−H(p))) (Medusa's typical acceptance, lossy; "
                "no uniform is drawn)", "p"),
    "topk-tau": ("keep x<sub>i</sub> iff it is among the β most likely tokens of p and "
                 "log p(argmax) − log p(x<sub>i</sub>) ≤ λ, the tolerance (SpecDec's relaxed check, lossy; no uniform is drawn)",
                 "argmax p"),
}


def step_rule(step: StepRecord, settings: dict | None = None) -> str:
    """Which rule decided a step: "greedy", "sampling", "block", or a lossy verifier's name (a key of ``LOSSY_RULES``).

    Greedy when the run was at temperature 0 or used a greedy verifier, or when the step drew no
    uniform (all NaN) and no lossy rule explains that; speculative sampling otherwise.
    """
    settings = settings or {}
    verifier, temperature = settings.get("verifier"), settings.get("temperature")
    if temperature == 0 or verifier in GREEDY_VERIFIERS:
        return "greedy"
    if verifier in LOSSY_RULES or verifier == "block":
        return verifier
    if step.uniforms and all(isinstance(u, float) and math.isnan(u) for u in step.uniforms):
        return "greedy"
    return "sampling"


def _verdict_table(step: StepRecord, decode, settings: dict | None = None) -> str:
    rule = step_rule(step, settings)
    rows = []
    for i, (t, dec) in enumerate(zip(step.draft, step.decisions)):
        rows.append(f"<tr><td>{i + 1}</td><td>{_token(decode([t]), dec)}</td><td>{_num(step.p_draft[i])}</td>"
                    f"<td>{_num(step.q_draft[i])}</td><td>{_num(step.accept_prob[i])}</td>"
                    f"<td>{_num(step.uniforms[i])}</td><td>{GLYPH[dec]} {dec}</td></tr>")
    if rule == "greedy":
        source = "argmax p"
    elif rule in LOSSY_RULES:
        source = LOSSY_RULES[rule][1]
    elif rule == "block":
        source = "p" if step.next_kind in (BONUS, "plain") else "norm(max(0, b·p − q))"
    else:
        source = "p" if step.next_kind in (BONUS, "plain") else "norm(max(0, p − q))"
    rows.append(f"<tr><td>{step.n_accepted + 1}</td><td>{_token(decode([step.next_token]), step.next_kind)}</td>"
                f'<td colspan="4">drawn from {source}</td><td>{GLYPH[step.next_kind]} {step.next_kind}</td></tr>')
    if rule == "greedy":
        keep, check = "keep x<sub>i</sub> iff x<sub>i</sub> = argmax p (greedy)", "1 if x = argmax p"
    elif rule in LOSSY_RULES:
        keep, check = LOSSY_RULES[rule][0], "kept (1 / 0)"
    elif rule == "block":
        keep, check = ("block verification: keep x<sub>1</sub>..x<sub>τ</sub> for the LAST i with u<sub>i</sub> &lt; h<sub>i</sub>, "
                       "a token may be kept although its own event did not fire"), "h"
    else:
        keep, check = "keep x<sub>i</sub> iff u<sub>i</sub> &lt; min(1, p/q)", "min(1, p/q)"
    stop = "" if rule == "block" else "; stop at the first rejection"
    caption = f"{keep}{stop}, then the target adds its own token"
    if step.tree:
        caption += " (tree step: the accepted path, then the first rejected candidate's branch)"
    head = f"<tr><th>#</th><th>token</th><th>p(x)</th><th>q(x)</th><th>{check}</th><th>u</th><th>decision</th></tr>"
    return f"<table><caption>{caption}</caption>{head}{''.join(rows)}</table>"


def _stop_table(step: StepRecord, decode) -> str:
    d = stop_distributions(step)
    if d is None:
        if step.next_kind == BONUS:
            return '<div class="sdl-note">Every draft was accepted: the bonus token ★ was drawn from p.</div>'
        return ""
    rows = "".join(
        f"<tr><td>{visible_html(decode([t]))}{_stop_glyph(t, step)} [{t}]</td><td>{_num(p)}</td><td>{_num(q)}</td>"
        f"<td>{_num(m)}</td><td>{_num(r)}</td></tr>"
        for t, p, q, m, r in zip(d["tokens"], d["p"], d["q"], d["min"], d["residual"]))
    head = "<tr><th>token</th><th>p</th><th>q</th><th>min(p, q)</th><th>residual</th></tr>"
    return (f"<table><caption>at the first rejection (position {step.n_accepted + 1}): the top tokens; "
            f"residual = norm(max(0, p − q)) over these tokens</caption>{head}{rows}</table>")


def _metrics(out: GenerationOutput, i: int) -> str:
    """The running figures after step i, under the names every view uses (``core/trace.py``): α̂, the draft
    yield, τ̂, and the target forwards so far, split into the run's prefill and one per step."""
    s = summarize(out.steps[: i + 1], 0.0, out.stats.prefill_forwards + i + 1, 0)
    return (f'<div class="sdl-stats">so far: {s.new_tokens} tokens in {s.steps} steps · '
            f"α̂ = accepted ÷ checked = {s.accepted}/{s.checked} = {two_decimals(s.alpha)} · "
            f"{DRAFT_YIELD} = {s.accepted}/{s.drafted} = {two_decimals(s.draft_yield)} · "
            f"τ̂ = new tokens ÷ steps = {s.mean_tokens_per_step:.2f} · {html.escape(s.forwards_text())}</div>")


def _context(out: GenerationOutput, i: int, decode) -> str:
    ids = out.prompt_ids + [t for s in out.steps[:i] for t in s.emitted]
    text = decode(ids)
    if len(text) > CONTEXT_CHARS:
        text = "…" + text[-CONTEXT_CHARS:]
    return f'<div class="sdl-context">context: <span class="sdl-tok sdl-prompt">{visible_html(text)}</span></div>'


def step_panel_html(out: GenerationOutput, i: int, decode) -> str:
    """One step's panel (no style sheet): context, draft and verdicts, metrics, the stop table, the tree."""
    step = out.steps[i]
    parts = [f"<h4>step {i} · {len(out.steps)} steps in this run</h4>", _context(out, i, decode),
             f"<div>this step: {step_html(step, i, decode)}</div>", _verdict_table(step, decode, out.settings),
             _metrics(out, i), _stop_table(step, decode)]
    if step.tree is not None:
        parts.append(tree_html(step, decode, style=False))
    return f'<div class="sdl-view sdl-panel" data-step="{i}">{"".join(parts)}</div>'


EMPTY = '<div class="sdl-view"><em>This trace has no steps.</em></div>'
STYLES = STYLE + TREE_STYLE + PLAYER_STYLE


class StepPlayer:
    """Previous / next / play over a trace; ``.widget`` is the box to display.

    ``.index`` is the current step, ``.html`` its panel (style included), ``.figure`` the
    bar chart at its first rejection (None at a step without a rejection).
    """

    def __init__(self, out: GenerationOutput, decode, interval_ms: int = 1500):
        self.out, self.decode = out, decode
        self.index, self.html, self.figure = 0, STYLES + EMPTY, None
        last = max(len(out.steps) - 1, 0)
        self._prev = widgets.Button(description="◀ previous", layout=widgets.Layout(width="110px"))
        self._next = widgets.Button(description="next ▶", layout=widgets.Layout(width="110px"))
        self._play = widgets.Play(min=0, max=last, interval=interval_ms, description="play")
        self._slider = widgets.IntSlider(min=0, max=last, description="step")
        widgets.link((self._play, "value"), (self._slider, "value"))  # kernel-side, so it also works headless
        self._prev.on_click(lambda _: self.previous())
        self._next.on_click(lambda _: self.next())
        self._slider.observe(self._on_slider, names="value")
        self._panel = widgets.HTML()
        self._chart = make_chart()
        self._chart_box = widgets.Box([self._chart])
        controls = widgets.HBox([self._prev, self._play, self._slider, self._next])
        self.widget = scoped_vbox(  # keys pressed on its buttons and slider stay with them
            [controls, self._panel, self._chart_box], "sdl-player",
            {"previous": self._prev, "next": self._next, "step": self._slider, "panel": self._panel},
            part_prefix="sdl-player-")
        if not out.steps:
            for w in (self._prev, self._next, self._play, self._slider):
                w.disabled = True
        self.show(0)

    def _on_slider(self, change) -> None:
        if change["new"] != self.index:
            self.show(change["new"])

    def show(self, i: int) -> None:
        """Go to step i (clamped to the trace)."""
        if not self.out.steps:
            self.index, self.html, self.figure = 0, STYLES + EMPTY, None
            self._panel.value = self.html
            self._draw(None)
            return
        self.index = i = min(max(int(i), 0), len(self.out.steps) - 1)
        self.html = STYLES + step_panel_html(self.out, i, self.decode)
        self.figure = stop_figure(self.out.steps[i], self.decode, i)
        self._panel.value = self.html
        self._draw(self.figure)
        self._slider.value = i  # the observer ignores it: self.index is already i
        self._prev.disabled, self._next.disabled = i == 0, i == len(self.out.steps) - 1

    def next(self) -> None:
        self.show(self.index + 1)

    def previous(self) -> None:
        self.show(self.index - 1)

    def _draw(self, fig: go.Figure | None) -> None:
        self._chart_box.layout.display = None if fig is not None else "none"  # no empty axes
        draw(self._chart, fig)

    def to_html(self, figures: bool = False) -> str:
        """Every step's panel one after the other (static; ``figures=True`` embeds the plotly charts, which need JS)."""
        if not self.out.steps:
            return STYLES + EMPTY
        parts = [STYLES, '<div class="sdl-view">', legend_html(), "</div>"]
        first = True
        for i, step in enumerate(self.out.steps):
            parts.append(step_panel_html(self.out, i, self.decode))
            fig = stop_figure(step, self.decode, i) if figures else None
            if fig is not None:
                parts.append(fig.to_html(full_html=False, include_plotlyjs="cdn" if first else False))
                first = False
            parts.append("<hr>")
        return "".join(parts)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
