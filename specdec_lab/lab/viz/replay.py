"""The verifiers × steps grid of a replay: one recorded draft per column, one rule per row, coloured by accepted count."""

from __future__ import annotations

import plotly.graph_objects as go

from ..replay import ReplayedStep, accepted_grid


def replay_figure(replayed: list[ReplayedStep], decode=None) -> go.Figure:
    """A heatmap of accepted drafts (0..γ) per verifier and step; hovering a cell shows what that rule emitted."""
    names, steps, counts = accepted_grid(replayed)
    by_cell = {(r.verifier, r.step): r for r in replayed}
    show = decode or (lambda ids: " ".join(map(str, ids)))
    hover = [[f"{n}, step {s}: kept {by_cell[n, s].n_accepted} of {by_cell[n, s].drafted}, "
              f"E[kept] {by_cell[n, s].expected_accepted:.2f}<br>emits {show(by_cell[n, s].tokens)!r}"
              for s in steps] for n in names]
    fig = go.Figure(go.Heatmap(z=counts, x=[str(s) for s in steps], y=names, text=counts, texttemplate="%{text}",
                               hovertext=hover, hoverinfo="text", colorscale="Greens", zmin=0,
                               colorbar=dict(title="accepted")))
    fig.update_layout(title="the same drafts under every verifier (common random numbers)", xaxis_title="step of the recorded run",
                      yaxis=dict(autorange="reversed"), height=120 + 40 * len(names))
    return fig
