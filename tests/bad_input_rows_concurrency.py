"""Bad-input rows for runs that share things: one drafter object driven by two runs at once (issue 33, item 1).

The run that holds the drafter is parked inside its first draft (test_concurrency.Gate), so the second run is
certain to overlap it; the second is refused before it touches the drafter's state.
"""

from __future__ import annotations

from bad_input_outcome import outcome
from specdec_lab.models.loading import load_model
from test_concurrency import refused_second_run


def _second_run_raises(zoo) -> None:
    _, (_, second) = refused_second_run(zoo)
    if isinstance(second, Exception):
        raise second


def rows(tmp_path, monkeypatch) -> list[tuple[str, str, str, str]]:
    zoo = load_model("zoo:target", "cpu")
    return [("API (v3)", "one drafter object used by two runs at once (EAGLE, a second thread)",
             *outcome(lambda: _second_run_raises(zoo)))]
