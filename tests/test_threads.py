"""The workbook's torch thread count: the rule of specdec_lab.lab.threads, and that it acts (once) only in a kernel."""

from __future__ import annotations

import sys
import types

import pytest

from specdec_lab.lab.threads import choose_threads


@pytest.mark.parametrize("cores, load, default, env, threads", [
    (2, 0.0, 2, {}, 1),  # 2 cores: the notebook server and the browser share them
    (1, 0.0, 1, {}, 1),
    (8, 0.2, 8, {}, 7),  # one busy core's worth of load: the other 7
    (8, 6.5, 8, {}, 1),  # a busy machine: one thread
    (8, 20.0, 8, {}, 1),
    (64, 0.0, 32, {}, 32),  # never more than torch's own count
    (8, 0.0, 8, {"OMP_NUM_THREADS": "3"}, 8),  # already chosen: torch's count (which OMP_NUM_THREADS set)
    (2, 5.0, 2, {"SPECDEC_LAB_THREADS": "2"}, 2),  # the reader's choice wins
])
def test_the_rule(cores, load, default, env, threads):
    assert choose_threads(cores, load, default, env)[0] == threads


@pytest.mark.parametrize("bad", ["0", "two", "-1", ""])
def test_a_bad_override_is_refused(bad):
    with pytest.raises(ValueError, match="SPECDEC_LAB_THREADS must be a whole number"):
        choose_threads(4, 0.0, 4, {"SPECDEC_LAB_THREADS": bad})


def test_only_a_kernel_is_told_and_only_once(monkeypatch, capsys):
    import torch

    from specdec_lab.lab import threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_ANNOUNCED", False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert threads.announce_once() is None and capsys.readouterr().out == ""  # scripts, tests, the CLI: untouched
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setenv("SPECDEC_LAB_THREADS", "1")
    try:
        assert threads.announce_once() == 1 and torch.get_num_threads() == 1
        assert threads.announce_once() is None  # once per process
    finally:
        torch.set_num_threads(before)
    assert capsys.readouterr().out.count("specdec_lab: torch runs 1 thread (SPECDEC_LAB_THREADS)") == 1
