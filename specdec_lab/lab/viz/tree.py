"""The tree view: one tree-verified step's candidate tree, with the accepted path highlighted.

A tree-verified step (SpecInfer, Miao et al. 2024; Medusa, Cai et al. 2024) drafts a
tree of candidates below the context's last token r and keeps the longest acceptable
path r → n_1 → .. → n_k, then adds one token of the target's own (↻ a correction after
the last rejection, ★ a bonus token at a leaf). Every node carries the same colour,
glyph and line style as in the token view (✓ accepted, ✗ rejected, · never tried), its
acceptance probability min(1, d(x)/q(x)) in a tooltip (d = p, or p's residual after
rejected siblings), and the accepted path is bold and outlined.

``tree_html`` is static HTML (nested lists, no JS) for JupyterLab, GitHub and nbviewer;
``tree_figure`` draws the same tree with plotly, node j at (depth, rank).
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go

from ...core.trace import StepRecord
from .html import COLORS, LABELS, STYLE, visible_html, visible_label
from .text import GLYPH

TREE_STYLE = """
<style>
ul.sdl-tree{list-style:none;margin:0;padding-left:1.4em;border-left:1px dotted #999}
ul.sdl-tree.sdl-top{border-left:none;padding-left:0}
.sdl-path{outline:2px solid #000;font-weight:bold}
</style>
"""
ROOT = -1  # the context's last token: every top-level candidate hangs below it
SYMBOLS = {"accepted": "circle", "rejected": "x", "unchecked": "circle-open", "corrected": "diamond",
           "bonus": "star", "plain": "square", "root": "square-open"}


def _own_title(step: StepRecord) -> str:
    source = "p" if step.next_kind == "bonus" else "the residual after the rejected candidates"
    return f"the target's own token ({step.next_kind}), drawn from {source}"


def _node_title(decision: str, accept_prob: float) -> str:
    if math.isnan(accept_prob):
        return f"→ {decision} (never tried: its parent was not accepted, or a sibling was)"
    return f"min(1, p/q) = {accept_prob:.3f}\n→ {decision}"


def _node_html(text: str, kind: str, title: str, on_path: bool) -> str:
    cls = f"sdl-tok sdl-{kind}" + (" sdl-path" if on_path else "")
    span = f'<span class="{cls}" title="{html.escape(title)}">{visible_html(text)}{GLYPH[kind]}</span>'
    return f"<strong>{span}</strong>" if on_path else span  # bold survives where the style sheet is stripped


def _children(parents: list[int]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for j, parent in enumerate(parents):
        kids.setdefault(parent, []).append(j)
    return kids


def tree_html(step: StepRecord, decode, style: bool = True) -> str:
    """The candidate tree of one step as nested lists; one ``data-node`` item per drafted node."""
    head = (STYLE + TREE_STYLE) if style else ""
    if not step.tree or not step.tree["tokens"]:
        return head + '<div class="sdl-view sdl-tree-view"><em>This step has no candidate tree '\
                      "(it was not tree-verified, or nothing was drafted).</em></div>"
    t = step.tree
    kids, on_path = _children(t["parents"]), set(t["path"])
    last = t["path"][-1] if t["path"] else ROOT  # the target's own token hangs below the end of the path

    def subtree(node: int) -> str:
        items = []
        for j in kids.get(node, []):
            label = _node_html(decode([t["tokens"][j]]), t["decisions"][j],
                               _node_title(t["decisions"][j], t["accept_prob"][j]), j in on_path)
            items.append(f'<li data-node="{j}">{label}{subtree(j)}</li>')
        if node == last:
            own = _node_html(decode([step.next_token]), step.next_kind, _own_title(step), True)
            items.append(f'<li data-own="{step.next_kind}">{own}</li>')
        return f'<ul class="sdl-tree">{"".join(items)}</ul>' if items else ""

    n, k = len(t["tokens"]), len(t["path"])
    caption = (f"candidate tree: {n} drafted nodes; accepted path of {k} (bold, outlined), "
               f"then the target's own token {GLYPH[step.next_kind]}")
    root = f'<span class="sdl-tok sdl-prompt" title="the context ({step.context_len} tokens)">context</span>'
    return (head + f'<div class="sdl-view sdl-tree-view"><div>{caption}</div>'
            f'<ul class="sdl-tree sdl-top"><li>{root}{subtree(ROOT)}</li></ul></div>')


def tree_layout(parents: list[int]) -> dict[int, tuple[int, int]]:
    """Node -> (depth, rank): depth 0 is the root (the context), rank counts leaves top to bottom.

    A node sits on the row of its first child, so a chain stays on one row and siblings fan out below.
    """
    kids, pos, next_row = _children(parents), {}, [0]

    def place(node: int, depth: int) -> int:
        rows = [place(c, depth + 1) for c in kids.get(node, [])]
        row = rows[0] if rows else next_row[0]
        if not rows:
            next_row[0] += 1
        pos[node] = (depth, row)
        return row

    place(ROOT, 0)
    return pos


def tree_figure(step: StepRecord, decode) -> go.Figure | None:
    """The candidate tree as a plotly figure (None for a step without a tree)."""
    if not step.tree or not step.tree["tokens"]:
        return None
    t = step.tree
    own = len(t["tokens"])  # the target's own token, as one more node below the end of the path
    parents = t["parents"] + [t["path"][-1] if t["path"] else ROOT]
    kinds = t["decisions"] + [step.next_kind]
    texts = [visible_label(decode([x])) for x in t["tokens"] + [step.next_token]]
    titles = [_node_title(d, a) for d, a in zip(t["decisions"], t["accept_prob"])] + [_own_title(step)]
    pos, path = tree_layout(parents), set(t["path"]) | {own}

    fig = go.Figure()
    for name, edges, width in (("edge", [j for j in range(own + 1) if j not in path], 1),
                               ("accepted path", sorted(path), 4)):
        xs, ys = [], []
        for j in edges:
            (x0, y0), (x1, y1) = pos[parents[j]], pos[j]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        fig.add_scatter(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", showlegend=name != "edge",
                        line=dict(color="#000" if width > 1 else "#999", width=width))
    fig.add_scatter(x=[0], y=[pos[ROOT][1]], mode="markers+text", text=["context"], textposition="middle left",
                    marker=dict(symbol=SYMBOLS["root"], size=14, color="#555"), name="context", showlegend=False)
    for kind in dict.fromkeys(kinds):
        nodes = [j for j in range(own + 1) if kinds[j] == kind]
        fig.add_scatter(
            x=[pos[j][0] for j in nodes], y=[pos[j][1] for j in nodes], mode="markers+text", name=LABELS[kind],
            text=[texts[j] + GLYPH[kind] for j in nodes], textposition="top center",
            hovertext=[titles[j].replace("\n", "<br>") for j in nodes], hoverinfo="text",
            marker=dict(symbol=SYMBOLS[kind], size=[18 if j in path else 12 for j in nodes], color=COLORS[kind],
                        line=dict(width=[3 if j in path else 0 for j in nodes], color="#000")),
        )
    depth = max(d for d, _ in pos.values())
    rows = max(r for _, r in pos.values())
    fig.update_layout(title=f"candidate tree ({own} drafted nodes, {len(t['path'])} accepted)",
                      xaxis=dict(title="depth", dtick=1, range=[-0.6, depth + 0.6]),
                      yaxis=dict(title="rank", autorange="reversed", dtick=1, showticklabels=False),
                      height=180 + 40 * rows, margin=dict(l=40, r=20, t=50, b=40), plot_bgcolor="white")
    return fig
