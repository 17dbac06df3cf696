"""A progress bar leaves its final state as text in a notebook (saved outputs have no widget state)."""

from __future__ import annotations

import io

from specdec_lab.core.progress import finish


def test_finish_prints_the_final_state_of_a_notebook_bar(capsys):
    from tqdm.notebook import tqdm

    bar = tqdm(total=4, desc="bench", unit="run")
    for _ in range(4):
        bar.update()
    capsys.readouterr()
    line = finish(bar)
    assert "bench" in line and "4/4" in line and "0/4" not in line
    assert capsys.readouterr().out == line + "\n"


def test_finish_prints_nothing_for_a_terminal_bar(capsys):
    from tqdm.std import tqdm

    bar = tqdm(total=3, desc="train", file=io.StringIO())
    bar.update(3)
    assert finish(bar) is None and capsys.readouterr().out == ""
