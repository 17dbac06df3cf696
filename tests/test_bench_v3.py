"""Reliability v3 of the benchmark's inputs and outputs (issue 33): question ids that repeat, JSONL split where JSON
allows a line break, ids of the wrong type, text a tokenizer cannot encode or that no context can hold, report.md
cells that carried Markdown and HTML, and bidi controls that reached the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from bad_input_rows_bench import playground_probe, probes
from project_scripts import ROOT

from specdec_lab.bench import read_questions, to_markdown
from specdec_lab.bench.compare import table_markdown
from specdec_lab.bench.markdown import markdown_text
from specdec_lab.bench.metrics import AR, median_records, summarize
from specdec_lab.core.text_checks import MAX_CHARS_PER_TOKEN, MAX_CONTEXT_TOKENS, MAX_TEXT_CHARS, check_text
from specdec_lab.lab.viz.text import BIDI, escape_controls


def _file(tmp_path: Path, *records, name: str = "q.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# -- every probe of the table gives its clear message -----------------------------------------------------------------


def test_every_bench_probe_gives_its_message(tmp_path):
    for where, label, run, expected in probes(tmp_path):
        kind, message = run()
        assert kind != "(no error)" and expected in message, (where, label, kind, message)


def test_the_playground_names_a_lone_surrogate_in_its_prompt():
    _, shown, expected = playground_probe()
    assert expected in shown and "TextEncodeInput" not in shown


# -- item 5: question ids are unique, and the medians never mix tasks --------------------------------------------------


def _record(task, q, method, seconds, tokens=10):
    return {"task": task, "question_id": q, "method": method, "seconds": seconds, "tokens": tokens, "peak_mib": None,
            "repeat": 0, "diverged_at": None, "compared": False}


def test_median_records_keep_each_tasks_questions_apart():
    """Two tasks that reuse id 1: each task keeps its own autoregressive and speculative record. Keyed by (id, method)
    alone, one task lost its rows and the other summarised two speculative prompts against one baseline."""
    records = [_record("qa", 1, AR, 2.0), _record("qa", 1, "m", 1.0),
               _record("rag", 1, AR, 4.0), _record("rag", 1, "m", 1.0)]
    kept = median_records(records)
    assert sorted((r["task"], r["method"]) for r in kept) == [("qa", AR), ("qa", "m"), ("rag", AR), ("rag", "m")]
    rows = {(r["task"], r["method"]): r for r in summarize(kept, [AR, "m"], 4)}
    assert rows["qa", "m"]["prompts"] == rows["rag", "m"]["prompts"] == rows["rag", AR]["prompts"] == 1
    assert rows["qa", "m"]["speedup"] == pytest.approx(2.0) and rows["rag", "m"]["speedup"] == pytest.approx(4.0)


@pytest.mark.parametrize("stored", sorted((ROOT / "benchmarks" / "measured").glob("spec_bench_*.json")),
                         ids=lambda p: p.stem)
def test_stored_runs_summarise_exactly_as_before(stored):
    """The stored runs have unique ids, so keying by the task too changes no number (the old key, recomputed here)."""
    result = json.loads(stored.read_text(encoding="utf-8"))
    groups = defaultdict(list)
    for r in result["records"]:
        groups[r["question_id"], r["method"]].append(r)  # the old key
    before = [sorted(rs, key=lambda r: r["seconds"])[(len(rs) - 1) // 2] for rs in groups.values()]
    gamma = result["header"]["gamma"]
    assert summarize(median_records(result["records"]), result["methods"], gamma) == \
        summarize(before, result["methods"], gamma)


def test_unique_ids_of_any_kind_are_read(tmp_path):
    path = _file(tmp_path, {"question_id": 1, "category": "a", "turns": ["x"]},
                 {"question_id": "q-1", "category": "a", "turns": ["y"]}, {"category": "b", "turns": ["z"]})
    assert [q.question_id for q in read_questions(path)] == [1, "q-1", 3]  # an id-less record gets its line number


# -- item 12: JSONL is split on "\n" only; ids are checked up front; --tasks "," ---------------------------------------


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])  # raw in a JSON string; splitlines splits there
def test_a_turn_holding_a_unicode_line_separator_is_read_whole(tmp_path, separator):
    turn = f"ROMEO.{separator}But soft"
    path = _file(tmp_path, {"question_id": 1, "category": "copy", "turns": [turn]},
                 {"question_id": 2, "category": "copy", "turns": ["JULIET."]})
    assert separator in path.read_text(encoding="utf-8")  # written raw (ensure_ascii=False), as JSON allows
    assert [q.prompt for q in read_questions(path)] == [turn, "JULIET."]


def test_crlf_and_a_byte_order_mark_are_read(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"question_id": 1, "category": "copy", "turns": ["a"]}\r\n'
                     b'{"question_id": 2, "category": "copy", "turns": ["b"]}\r\n')
    assert [q.prompt for q in read_questions(path)] == ["a", "b"]


def test_a_bad_id_is_refused_when_the_file_is_read_not_midway(tmp_path):
    """The record with the dict id comes after a task that is not even picked: refused all the same, by line."""
    path = _file(tmp_path, {"question_id": 1, "category": "copy", "turns": ["a"]},
                 {"question_id": {"n": 2}, "category": "code", "turns": ["b"]})
    with pytest.raises(ValueError, match=r"q.jsonl:2: question_id must be an int or a string, got the dict"):
        read_questions(path, tasks=["copy"])
    for bad in (True, None, "  "):
        with pytest.raises(ValueError, match="question_id"):
            read_questions(_file(tmp_path, {"question_id": bad, "category": "copy", "turns": ["a"]}))


def test_cli_tasks_with_no_names_says_so(capsys):
    from specdec_lab.cli import main

    assert main(["bench", "--tasks", " , ", "--no-hf", "--no-probe"]) == 2
    err = capsys.readouterr().err
    assert "names no task" in err and "holds no questions" not in err


# -- item 11: text longer than any context is refused before a tokenizer sees it ---------------------------------------


def test_the_text_bound_covers_every_context_we_load():
    from specdec_lab.models.loading import load_model

    target, _ = load_model("zoo:target", "cpu")
    assert MAX_TEXT_CHARS == MAX_CONTEXT_TOKENS * MAX_CHARS_PER_TOKEN
    assert MAX_CONTEXT_TOKENS >= max(8192, target.config.max_position_embeddings)  # SmolLM2, the zoo
    assert check_text("x" * MAX_TEXT_CHARS) == "x" * MAX_TEXT_CHARS  # at the bound: accepted
    with pytest.raises(ValueError, match="2,097,153 characters"):
        check_text("x" * (MAX_TEXT_CHARS + 1))


def test_a_long_turn_is_refused_before_any_model_loads(tmp_path, monkeypatch, capsys):
    """specdec-lab bench reads the question file before it loads a model, so nothing is tokenised (a 50 MB line took
    64 s and 6.5 GB in the tokenizer before the context check refused it)."""
    from specdec_lab import cli
    from specdec_lab.models import loading

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the question file was checked")

    for name in ("load_model", "load_pair"):
        monkeypatch.setattr(cli, name, refuse)
        monkeypatch.setattr(loading, name, refuse)
    path = _file(tmp_path, {"question_id": "big", "category": "copy", "turns": ["fine", "z" * (MAX_TEXT_CHARS + 1)]})
    assert cli.main(["bench", "--questions", str(path), "--no-hf", "--no-probe", "--out", str(tmp_path / "out")]) == 2
    assert "(question 'big'): turn 1 holds 2,097,153 characters" in capsys.readouterr().err


# -- item 13: a lone surrogate is named where text is encoded -------------------------------------------------------


def test_check_text_names_the_lone_surrogate_and_its_position():
    assert check_text("ROMEO ✓ שלום 👩‍💻") == "ROMEO ✓ שלום 👩‍💻"
    with pytest.raises(ValueError, match=r"the prompt holds a lone surrogate '\\ud800' \(U\+D800\) at character 2 "
                                         r"\(invalid UTF-8\?\)"):
        check_text("ab\ud800c")
    with pytest.raises(ValueError, match="the message holds a lone surrogate '\\\\udfff'"):
        check_text("\udfff", "the message")
    with pytest.raises(TypeError, match="the prompt must be a string, got int"):
        check_text(3)


def test_invalid_utf8_in_argv_is_named_not_a_tokenizer_error():
    """Real argv: the bytes b"\\xff" arrive as the surrogate U+DCFF (surrogateescape); refused before a model loads."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "LC_ALL": "C.UTF-8", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "specdec_lab.cli", "demo", "--prompt", b"ROMEO\xff"], cwd=ROOT,
                          capture_output=True, timeout=300, env=env)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and "lone surrogate '\\udcff' (U+DCFF) at character 5 (invalid UTF-8?)" in err, err
    assert "TextEncodeInput" not in err and "Traceback" not in err


# -- item 14: report.md escapes its cells; the terminal gets no bidi control ----------------------------------------


def test_markdown_text_escapes_what_would_break_a_cell():
    assert markdown_text("eagle + greedy") == "eagle + greedy" and markdown_text("math_reasoning") == "math_reasoning"
    assert markdown_text("a|b") == "a\\|b" and markdown_text("a\\|b") == "a\\\\\\|b"  # \| stays text, not an escape
    assert markdown_text("x\r\ny\nz\u2028w") == "x↵y↵z↵w"
    assert markdown_text("<img src=x onerror=alert(1)> & co") == "&lt;img src=x onerror=alert(1)&gt; &amp; co"


def _cells(row: str) -> list[str]:
    """The cells of a Markdown table row, split as GitHub does: at every | not escaped by a backslash."""
    cells, cell, i = [], "", 1
    while i < len(row) - 1:
        if row[i] == "\\":
            cell, i = cell + row[i:i + 2], i + 2
            continue
        if row[i] == "|":
            cells, cell = cells + [cell], ""
        else:
            cell += row[i]
        i += 1
    return cells + [cell]


def test_report_markdown_escapes_a_hostile_category():
    task = "evil | cell\n# heading <script>alert(1)</script>"
    summary = [{"task": task, "method": AR, "speedup": 1.0, "tokens_per_s": 10.0, "prompts": 1},
               {"task": "all", "method": AR, "speedup": 1.0, "tokens_per_s": 10.0, "prompts": 1}]
    header = {"processor": "cpu", "device": "cpu", "threads": 1, "machine": "x86_64", "python": "3", "torch": "2",
              "transformers": "5", "target_parameters": 1e6, "gamma": 4, "max_new_tokens": 8, "temperature": 0.0,
              "seed": 0, "questions": 1, "tasks": [task]}
    md = to_markdown({"header": header, "summary": summary, "methods": [AR]})
    assert "<script>" not in md and "\n# heading" not in md
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 4  # the header, the rule and two rows: the newline did not end a row
    widths = {len(_cells(line)) for line in table}
    assert widths == {len(_cells(table[0]))}, table  # the | did not add a cell
    assert _cells(table[2])[0].strip() == "evil \\| cell↵# heading &lt;script&gt;alert(1)&lt;/script&gt;"


def test_compare_markdown_tables_escape_their_leading_columns():
    row = {"task": "a|b<i>", "T": 0.0, "drafter": "prompt-lookup", "verifier": "greedy", "alpha": 0.5, "tau": 2.0,
           "forwards_per_100": 50.0, "speed": 1.5}
    head, _, line = table_markdown([row], first=("task",)).splitlines()
    assert len(_cells(line)) == len(_cells(head)) and _cells(line)[0].strip() == "a\\|b&lt;i&gt;"


def test_escape_controls_shows_every_bidi_control():
    assert len(BIDI) == 12
    for char in BIDI:
        assert escape_controls(f"a{char}b") == f"a\\u{ord(char):04x}b"
    trojan = "access = 'user\u202e \u2066// admin\u2069\u2066'"
    assert escape_controls(trojan) == "access = 'user\\u202e \\u2066// admin\\u2069\\u2066'"
    assert escape_controls("x\ud800y") == "x\\ud800y"  # a lone surrogate cannot be written to a terminal


def test_escape_controls_keeps_ordinary_text():
    for text in ("plain text, ünïcödé ✓", "שלום עולם", "مرحبا", "👩‍💻 👍🏽 🏳️‍🌈", "soft\u00adhyphen", "a\u200bb",
                 "line\nand\ttab", "日本語"):
        assert escape_controls(text) == text
    assert escape_controls("ROMEO\x1b[2J\u202e") == "ROMEO␛[2J\\u202e"  # the C0 glyphs as before, bidi beside them
