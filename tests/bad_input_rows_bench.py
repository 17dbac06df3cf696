"""Bad-input probes of question files, the Spec-Bench reader, the CLI's text arguments and the playground's prompt
(issue 33, items 5, 11, 12, 13): each gives a clear error. ``probes`` is shared by the table (``rows``) and by
tests/test_bench_v3.py, which asserts each message."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from bad_input_outcome import outcome
from project_scripts import load_script

from specdec_lab.bench import read_questions
from specdec_lab.bench.tasks import MAX_LINE_CHARS
from specdec_lab.cli import main as cli_main
from specdec_lab.core.text_checks import MAX_TEXT_CHARS, check_text

FILE, SPEC_BENCH, CLI, API = "question file (v3)", "Spec-Bench reader (v3)", "CLI specdec-lab (v3)", "API (v3)"


def _file(folder: Path, name: str, *records, raw: str = "") -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + raw, encoding="utf-8")
    return path


def _q(question_id, category="copy", turns=("ROMEO.\n",)) -> dict:
    return {"question_id": question_id, "category": category, "turns": list(turns)}


def _cli(args: list[str]) -> tuple[str, str]:
    """(exit code, what it printed on stderr) of the command; a silent success is ("(no error)", "")."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli_main(args)
    return ("(no error)", "") if code == 0 else (f"exit code {code}", err.getvalue().strip())


def probes(tmp_path: Path) -> list[tuple[str, str, object, str]]:
    """(where, input, run, a part of the expected message); ``run()`` gives (error type, message)."""
    folder = tmp_path / "bench_v3"
    folder.mkdir(exist_ok=True)
    spec_bench = load_script("benchmarks/bench_spec_bench.py")
    shared = _file(folder, "shared", _q(7, "copy"), _q(8, "code"), _q(7, "code"))
    mixed = _file(folder, "mixed", _q(7), _q("7"))
    by_line = _file(folder, "by_line", {"category": "copy", "turns": ["a"]}, _q(1))  # line 1's default id is 1
    dict_id = _file(folder, "dict_id", _q(1), _q({"n": 2}))
    list_id = _file(folder, "list_id", _q([3]))
    float_id = _file(folder, "float_id", _q(1.5))
    surrogate = _file(folder, "surrogate", raw='{"question_id": 4, "category": "copy", "turns": ["ab\\ud800c"]}\n')
    long_turn = _file(folder, "long_turn", _q(5, turns=["x" * (MAX_TEXT_CHARS + 1)]))
    line = '{"question_id": 6, "category": "copy", "turns": ["' + "y" * MAX_LINE_CHARS + '"]}'
    long_line = _file(folder, "long_line", raw=line + "\n")
    spec_dup = _file(folder, "spec_dup", *[_q(i, c) for i, c in enumerate(spec_bench.MT_ORDER)],
                     *[_q(100, c) for c in ("translation", "summarization")])
    files = [
        ("one id in two tasks (7: copy and code)", shared, "the question id 7 is used twice, here and on line 1"),
        ("the ids 7 and \"7\"", mixed, "the question id '7' is used twice"),
        ("an id equal to an id-less line's number", by_line, "the question id 1 is used twice"),
        ('"question_id": {"n": 2}', dict_id, "question_id must be an int or a string, got the dict"),
        ('"question_id": [3]', list_id, "question_id must be an int or a string, got the list"),
        ('"question_id": 1.5', float_id, "question_id must be an int or a string, got the float"),
        ('a turn "ab\\ud800c" (a lone surrogate)', surrogate,
         "turn 0 holds a lone surrogate '\\ud800' (U+D800) at character 2"),
        (f"a turn of {MAX_TEXT_CHARS + 1:,} characters", long_turn, f"more than the {MAX_TEXT_CHARS:,} that could fit"),
        (f"a line of {len(line):,} characters", long_line, f"more than the {MAX_LINE_CHARS:,} a question record"),
    ]
    rows = [(FILE, label, lambda p=path: outcome(lambda: read_questions(p)), expected)
            for label, path, expected in files]
    bench_out = ["--no-hf", "--no-probe", "--out", str(folder / "out")]
    rows += [
        (FILE, "tasks=[] (no task names)", lambda: outcome(lambda: read_questions(tasks=[])),
         "no task names were given"),
        (FILE, 'tasks="code" (a string)', lambda: outcome(lambda: read_questions(tasks="code")),
         "tasks must be a list of task names, got the string 'code'"),
        (SPEC_BENCH, "one id in two tasks (100: translation and summarization)",
         lambda: outcome(lambda: spec_bench.spec_bench_questions(spec_dup, 1)), "the question id 100 is used twice"),
        (CLI, 'bench --tasks ","', lambda: _cli(["bench", "--tasks", ",", *bench_out]), "--tasks ',' names no task"),
        (CLI, "demo --prompt with invalid UTF-8 (b'ROMEO\\xff' in argv)",
         lambda: _cli(["demo", "--prompt", "ROMEO\udcff"]),
         "the prompt holds a lone surrogate '\\udcff' (U+DCFF) at character 5 (invalid UTF-8?)"),
        (API, "check_text(b'ROMEO')", lambda: outcome(lambda: check_text(b"ROMEO")),
         "the prompt must be a string, got bytes"),
    ]
    return rows


def playground_probe() -> tuple[str, str, str]:
    """(input, what the playground shows, the expected part): a prompt holding a lone surrogate, shown in the widget."""
    from specdec_lab.lab.viz.playground import Playground
    from specdec_lab.models.loading import load_model

    target, tokenizer = load_model("zoo:target", "cpu")
    pg = Playground(target, tokenizer, prompt="ROMEO.\n", max_new_tokens=8, background=False)
    pg.prompt.value = "ROMEO\ud800"
    pg.run_button.click()
    return "prompt 'ROMEO\\ud800' (a lone surrogate)", pg.error or "", "the prompt holds a lone surrogate '\\ud800'"


def rows(tmp_path, monkeypatch) -> list[tuple[str, str, str, str]]:
    table = [(where, label, *run()) for where, label, run, _ in probes(tmp_path)]
    label, shown, _ = playground_probe()
    return table + [("playground widget (v3)", label, "shown in the widget", shown)]
