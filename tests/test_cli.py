"""The ``specdec-lab`` command: bad arguments fail before any model loads, with one line and exit code 2;
text from the prompt or the model never reaches a terminal with its control characters live."""

from __future__ import annotations

import sys

import pytest
import torch

from specdec_lab import cli
from specdec_lab.models import loading
from specdec_lab.cli import main as cli_main
from specdec_lab.lab.viz.text import escape_controls

EVIL = "ROMEO\x1b]0;pwned\x07:\x1b[2J"  # an OSC that retitles the terminal (ended by BEL), then a clear-screen CSI


@pytest.fixture
def no_models(monkeypatch):
    """Loading a model fails the test: the checks must refuse the arguments before that."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    for name in ("load_pair", "load_model"):
        monkeypatch.setattr(cli, name, refuse, raising=False)
        monkeypatch.setattr(loading, name, refuse)


BAD_DEMO_ARGS = [
    (["--device", "foo"], "unknown device 'foo'"),
    (["--device", "cuda:7x"], "unknown device"),
    (["--temperature", "1e-40"], "temperature"),  # underflows the logits / T: refused by SamplingConfig
    (["--temperature", "-1"], "temperature must be >= 0"),
    (["--temperature", "nan"], "temperature must be a finite number"),
    (["--top-p", "0"], "top_p must be in (0, 1]"),
    (["--top-p", "1.5"], "top_p must be in (0, 1]"),
    (["--gamma", "0"], "gamma must be between 1 and 64"),
    (["--gamma", "65"], "gamma must be between 1 and 64"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be >= 1"),
    (["--seed", "-1"], "seed must be between 0 and"),
    (["--prompt", " \n "], "the prompt is empty"),
]


@pytest.mark.parametrize("args, message", BAD_DEMO_ARGS, ids=[" ".join(a).strip() for a, _ in BAD_DEMO_ARGS])
def test_demo_refuses_bad_arguments_before_loading_a_model(args, message, capsys, no_models):
    assert cli_main(["demo", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert err.count("\n") == 1  # one line, no traceback


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_demo_on_cuda_without_cuda_says_so(capsys, no_models):
    assert cli_main(["demo", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err == "error: device 'cuda' asked for, but CUDA is not available on this machine; use 'cpu'\n"


def test_escape_controls_shows_every_control_character_but_newline_and_tab():
    assert escape_controls("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓"
    assert escape_controls(EVIL) == "ROMEO␛]0;pwned␇:␛[2J"
    assert escape_controls("a\x00b\rc\x7fd\x9be\x85f\n\tg") == "a␀b␍c␡d\\x9be\\x85f\n\tg"
    every_cc = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))
    assert all(c in "\n\t" for c in escape_controls(every_cc) if c.isprintable() is False)


def _demo(capsys, *args) -> str:
    assert cli_main(["demo", "--prompt", EVIL, "--max-new-tokens", "4", "--gamma", "2", "--device", "cpu", *args]) == 0
    return capsys.readouterr().out


def test_demo_with_colour_escapes_the_prompts_control_characters_but_keeps_its_own_colours(capsys):
    out = _demo(capsys, "--color", "always")
    assert "ROMEO␛]0;pwned␇:␛[2J" in out  # the prompt, shown
    assert "\x07" not in out and "\x1b]" not in out and "\x1b[2J" not in out  # and not obeyed
    assert "\x1b[32m" in out or "\x1b[34m" in out  # the CLI's own colour codes are still there
    assert all(c in "\n" or c.isprintable() or c == "\x1b" for c in out)
    colour_codes_only = out.replace("\x1b[0m", "").replace("\x1b[32m", "").replace("\x1b[31;9m", "")
    for code in ("\x1b[33;2m", "\x1b[34;1m", "\x1b[34m"):
        colour_codes_only = colour_codes_only.replace(code, "")
    assert "\x1b" not in colour_codes_only  # every ESC left is one of the CLI's colours


def test_demo_on_a_terminal_escapes_control_characters(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")  # a terminal without colour: no ESC at all may reach it
    out = _demo(capsys)
    assert "ROMEO␛]0;pwned␇:␛[2J" in out and "\x1b" not in out and "\x07" not in out


def test_demo_into_a_pipe_keeps_the_text_as_it_is(capsys):
    """Not a terminal and no colour (a file, another program): the decoded text is written unchanged."""
    out = _demo(capsys, "--color", "never")
    assert EVIL in out and "␛" not in out


def test_error_messages_to_a_terminal_are_escaped(capsys, monkeypatch, tmp_path, no_models):
    bad = tmp_path / "report\x1b]0;pwned\x07"
    bad.write_text("a file, not a folder")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli_main(["bench", "--out", str(bad), "--methods", "prompt-lookup+greedy"]) == 2
    err = capsys.readouterr().err
    assert "report␛]0;pwned␇" in err and "\x1b" not in err and "\x07" not in err


def test_demo_stats_line_shows_alpha_as_accepted_over_checked(capsys, monkeypatch):
    runs = []
    real = cli.generate_speculative
    monkeypatch.setattr(cli, "generate_speculative", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    assert cli_main(["demo", "--max-new-tokens", "12", "--gamma", "3", "--device", "cpu", "--color", "never"]) == 0
    out = capsys.readouterr().out
    s = runs[0].stats
    assert s.checked < s.drafted or s.alpha == s.draft_yield  # the two differ once a draft is rejected early
    assert f"α (accepted ÷ checked) = {s.alpha:.2f}" in out
    assert f"draft yield (accepted ÷ drafted) = {s.draft_yield:.2f}" in out
