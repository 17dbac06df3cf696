"""The token view as static HTML: a pure function of the trace, readable on GitHub, nbviewer and in slides.

Colours follow the survey's figure with the colour-blind-safe Okabe–Ito palette,
and every token also carries a glyph and a line style, so colour is never the
only carrier of meaning:

    accepted draft        bluish green, solid underline, ✓
    rejected draft        vermillion, struck through, ✗
    draft never checked   yellow, dotted underline, ·
    target's correction   blue, bold, ↻        bonus token   blue, bold, ★
    target alone          blue, ▸

Hovering or focusing (Tab) a drafted token shows p(x), q(x), min(1, p/q), the
uniform draw u and the decision. Spaces show as ␣ and newlines as ↵ (then break).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from ...core.trace import GenerationOutput, StepRecord
from .text import GLYPH

COLORS = {  # Okabe & Ito (2008)
    "accepted": "#009E73",
    "rejected": "#D55E00",
    "unchecked": "#E69F00",
    "corrected": "#0072B2",
    "bonus": "#0072B2",
    "plain": "#0072B2",
}
LABELS = {
    "accepted": "accepted draft",
    "rejected": "rejected draft",
    "unchecked": "drafted, not checked",
    "corrected": "target's correction",
    "bonus": "bonus token",
    "plain": "target alone",
}
STYLE = """
<style>
.sdl-view{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;line-height:2.1}
.sdl-tok{padding:1px 2px;margin:0 1px;border-radius:3px;border:1px solid #ccc;white-space:pre;position:relative}
.sdl-tok:focus{outline:2px solid #000}
.sdl-tok:hover::after,.sdl-tok:focus::after{content:attr(data-info);position:absolute;left:0;top:1.9em;z-index:9;
  background:#222;color:#fff;padding:2px 6px;border-radius:3px;white-space:pre;font-size:12px}
.sdl-prompt{color:#555;background:#f2f2f2}
.sdl-accepted{color:#009E73;background:#e6f5f0;text-decoration:underline solid}
.sdl-rejected{color:#D55E00;background:#fbece3;text-decoration:line-through}
.sdl-unchecked{color:#8a5a00;background:#fdf3dc;text-decoration:underline dotted}
.sdl-corrected,.sdl-bonus{color:#0072B2;background:#e3eef7;font-weight:bold}
.sdl-plain{color:#0072B2;background:#eef4fa}
.sdl-step{border-left:2px solid #bbb;padding-left:3px;margin-left:2px}
.sdl-legend{margin:4px 0 8px 0}
.sdl-stats{margin-top:6px;color:#333}
</style>
"""


def visible_html(text: str, breaks: bool = True) -> str:
    """Escape, and make whitespace visible: ␣ for a space, ↵ for a newline (followed by a real line break if ``breaks``)."""
    out = html.escape(text).replace(" ", "␣").replace("\t", "⇥")
    return out.replace("\n", "↵<br>" if breaks else "↵")


def visible_label(text: str) -> str:
    """Plain text with whitespace visible (␣ ↵ ⇥), for figure labels and tooltips."""
    return text.replace(" ", "␣").replace("\t", "⇥").replace("\n", "↵")


def _token(text: str, kind: str, info: str = "") -> str:
    attrs = f' tabindex="0" data-info="{html.escape(info)}"' if info else ""
    # a newline token keeps its verdict glyph on its own line: the line break comes after the token
    line_break = "<br>" if "\n" in text else ""
    return f'<span class="sdl-tok sdl-{kind}"{attrs}>{visible_html(text, breaks=False)}{GLYPH[kind]}</span>{line_break}'


def _info(step: StepRecord, i: int) -> str:
    u = "none" if math.isnan(step.uniforms[i]) else f"{step.uniforms[i]:.3f}"
    return (f"p(x) = {step.p_draft[i]:.3f}\nq(x) = {step.q_draft[i]:.3f}\nmin(1, p/q) = {step.accept_prob[i]:.3f}\n"
            f"u = {u}\n→ {step.decisions[i]}")


def step_html(step: StepRecord, index: int, decode) -> str:
    """One step: each drafted token with its verdict, then the target's own token."""
    pieces = [_token(decode([t]), d, _info(step, i)) for i, (t, d) in enumerate(zip(step.draft, step.decisions))]
    own = f"the target's own token ({step.next_kind}), drawn from " + (
        "p" if step.next_kind in ("bonus", "plain") else "the residual norm(max(0, p − q))")
    pieces.append(_token(decode([step.next_token]), step.next_kind, own))
    return f'<span class="sdl-step" data-step="{index}" title="step {index}">{"".join(pieces)}</span>'


def legend_html(kinds=tuple(LABELS)) -> str:
    return '<div class="sdl-legend">' + " ".join(_token(LABELS[k], k) for k in kinds) + "</div>"


def stats_html(out: GenerationOutput) -> str:
    """The run's figures under their one name each (``Stats.summary``, the same as the text view's)."""
    return f'<div class="sdl-stats">{html.escape(out.stats.summary())}</div>'


def token_view_html(out: GenerationOutput, decode, stats: bool = True) -> str:
    """The whole run as one self-contained HTML fragment (style included)."""
    body = [f'<span class="sdl-tok sdl-prompt">{visible_html(decode(out.prompt_ids))}</span>']
    body += [step_html(step, i, decode) for i, step in enumerate(out.steps)]
    return (STYLE + '<div class="sdl-view">' + legend_html() + "<div>" + "".join(body) + "</div>"
            + (stats_html(out) if stats else "") + "</div>")


def save_html(fragment: str, path: str | Path, title: str = "specdec_lab") -> Path:
    """Write a fragment as a standalone page (for nbviewer, GitHub, slides)."""
    path = Path(path)
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                    f"<body>{fragment}</body></html>\n", encoding="utf-8")
    return path


def prompt_html(prompt_ids: list[int], decode) -> str:
    """The prompt as the token view's first span."""
    return f'<span class="sdl-tok sdl-prompt">{visible_html(decode(prompt_ids))}</span>'


def pieces_view_html(pieces: list[str], footer: str = "") -> str:
    """A token view from its pieces (:func:`prompt_html`, then one :func:`step_html` per step), so a view can grow
    one step at a time while a run streams; with every step's piece it is :func:`token_view_html` without stats."""
    return STYLE + '<div class="sdl-view">' + legend_html() + "<div>" + "".join(pieces) + "</div>" + footer + "</div>"
