"""A plotly chart inside a widget: a live ``FigureWidget`` where anywidget is installed, else a static figure in an Output."""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go


def make_chart():
    """An empty chart widget: plotly's FigureWidget (needs anywidget), or an Output to draw figures into."""
    try:
        return go.FigureWidget()
    except Exception:  # noqa: BLE001 - any failure to build the widget means: use the fallback
        return widgets.Output()


def draw(chart, fig: go.Figure | None) -> None:
    """Replace what ``chart`` (from :func:`make_chart`) shows by ``fig`` (None: nothing)."""
    if isinstance(chart, widgets.Output):
        from IPython.display import display

        chart.clear_output(wait=True)
        if fig is not None:
            with chart:
                display(fig)
        return
    with chart.batch_update():
        chart.data = []
        if fig is not None:
            chart.add_traces(list(fig.data))
            chart.layout = fig.layout
