"""Progress bars that leave their final state in a notebook's saved output.

In JupyterLab ``tqdm.auto`` draws a widget. A notebook saved without widget state (as this repository stores them,
and as nbviewer and GitHub show them) falls back to the widget's text at creation, "0/80", however far the run got.
:func:`finish` closes the bar and, in a notebook, also prints its final state as plain text, which every static
view shows. In a terminal the bar itself already ends in its final state, so nothing is printed twice.
"""

from __future__ import annotations


def progress_bar(**options):
    """``tqdm.auto.tqdm(**options)``: a widget in a notebook, a text bar in a terminal."""
    from tqdm.auto import tqdm

    return tqdm(**options)


def finish(bar) -> str | None:
    """Close ``bar``; in a notebook print (and return) its final state as one line of text."""
    state = dict(bar.format_dict)
    bar.close()
    if not type(bar).__module__.startswith("tqdm.notebook"):
        return None
    from tqdm.std import tqdm

    line = tqdm.format_meter(**{**state, "ncols": 80, "ascii": True})
    print(line)
    return line
