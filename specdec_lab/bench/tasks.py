"""The benchmark's prompts, in Spec-Bench's ``question.jsonl`` format.

One JSON object per line: ``question_id``, ``category`` and ``turns`` (a list of user turns);
only the first turn is decoded. ``minibench.jsonl`` (shipped) holds five tasks for the bundled
models, 22 prompts each: ``continuation`` (open a scene), ``recall`` (a famous passage),
``copy`` (repeat a passage given in the prompt: where prompt lookup should shine), ``formulaic``
(character lists, stage directions) and ``code`` (Python). Spec-Bench's own file
(hemingkx/Spec-Bench, data/spec_bench/question.jsonl) reads the same way; its eight MT-bench
categories count as one task, "multi-turn", as in Spec-Bench's tables.

Every record is checked when the file is read, before any model loads (:func:`question_records`): lines are split
on "\\n" only (JSON strings may hold U+2028, U+2029 or U+0085, which ``str.splitlines`` would split at), a
``question_id`` is an int or a string and appears once in the file (the benchmark's medians and summaries are
keyed by it), and every turn is text a tokenizer can encode, at most
:data:`~specdec_lab.core.text_checks.MAX_TEXT_CHARS` characters (longer cannot fit any model's context, so it is
refused before it is tokenised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.text_checks import MAX_TEXT_CHARS, check_text

MINIBENCH = Path(__file__).with_name("minibench.jsonl")
MT_BENCH = {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}
MAX_LINE_CHARS = 8 * MAX_TEXT_CHARS  # one record: several turns of at most MAX_TEXT_CHARS, JSON escapes (\uXXXX)


@dataclass(frozen=True)
class Question:
    question_id: int | str
    task: str
    prompt: str


def task_of(category: str) -> str:
    """The benchmark task of a question's category: MT-bench's eight categories are one task, "multi-turn"."""
    return "multi-turn" if category in MT_BENCH else category


def question_records(path: str | Path) -> list[dict]:
    """Every record of a question.jsonl file, checked, in file order; a record without ``question_id`` gets its line
    number. Raises ValueError naming the line (and the question) for a line that is not such a record, a turn that
    is not encodable text or is too long, an id that is not an int or a string, or an id used twice."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no question file at {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark, if any, is not part of the first line
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the question file {path}: {err}") from err
    records, seen = [], {}
    for number, line in enumerate(text.split("\n"), start=1):  # "\n" only: JSONL's separator (not U+2028 etc.)
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            raise ValueError(f"{path}:{number}: the line holds {len(line):,} characters, more than the "
                             f"{MAX_LINE_CHARS:,} a question record needs (each turn at most {MAX_TEXT_CHARS:,}, "
                             "more than any model's context): shorten it")
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError(f"a JSON {type(record).__name__}, not an object")
            missing = next((key for key in ("turns", "category") if key not in record), None)
            if missing is not None:
                raise KeyError(missing)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{number}: not a question.jsonl record with category and turns ({err})") from err
        question_id = _question_id(record.get("question_id", number), f"{path}:{number}")
        where = f"{path}:{number} (question {question_id!r})"
        if str(question_id) in seen:  # 7 and "7" count as one: reports print both as 7
            raise ValueError(f"{where}: the question id {question_id!r} is used twice, here and on line "
                             f"{seen[str(question_id)]}; give every question its own id (the benchmark's records "
                             "are keyed by it)")
        seen[str(question_id)] = number
        _check_turns(record["turns"], where)
        category = record["category"]
        if not isinstance(category, str) or not category.strip():
            raise ValueError(f"{where}: category must be a non-empty string, got {category!r}"[:300])
        records.append(record | {"question_id": question_id})
    return records


def read_questions(path: str | Path = MINIBENCH, per_task: int | None = None,
                   tasks: list[str] | None = None) -> list[Question]:
    """The questions of a question.jsonl file, at most ``per_task`` of each task (in file order), optionally only
    ``tasks``; every record of the file is checked (:func:`question_records`), whichever are picked."""
    if per_task is not None and per_task < 1:
        raise ValueError(f"per_task must be >= 1, got {per_task}")
    if isinstance(tasks, str):  # `task in "code"` would match "co" and "de"
        raise TypeError(f"tasks must be a list of task names, got the string {tasks!r}; write tasks=[{tasks!r}]")
    records = question_records(path)
    found = list(dict.fromkeys(task_of(r["category"]) for r in records))
    if tasks is not None and not list(tasks):
        raise ValueError(f"no task names were given (tasks={tasks!r}): name at least one of the file's tasks: "
                         f"{sorted(found)}")
    questions, counts = [], {}
    for r in records:
        task = task_of(r["category"])
        if tasks is not None and task not in tasks:
            continue
        if per_task is None or counts.get(task, 0) < per_task:
            counts[task] = counts.get(task, 0) + 1
            questions.append(Question(r["question_id"], task, r["turns"][0]))
    if tasks is not None and set(tasks) - set(counts):
        raise ValueError(f"no questions for task(s) {sorted(set(tasks) - set(counts))}; the file has: {sorted(found)}")
    if not questions:
        raise ValueError(f"{path} holds no questions")
    return questions


def _question_id(question_id, where: str) -> int | str:
    """An id the records and reports can key by: an int or a non-empty string (a dict or a list would fail mid-run)."""
    if isinstance(question_id, bool) or not isinstance(question_id, (int, str)):
        raise ValueError(f"{where}: question_id must be an int or a string, got the {type(question_id).__name__} "
                         f"{question_id!r}"[:300])
    if isinstance(question_id, str) and not question_id.strip():
        raise ValueError(f"{where}: question_id is an empty string; give an int or a non-empty string")
    return question_id


def _check_turns(turns, where: str) -> None:
    """A non-empty list of strings whose first is not blank, each encodable and within MAX_TEXT_CHARS (a bare string
    would give its first letter)."""
    if isinstance(turns, str):
        raise ValueError(f"{where}: turns must be a list of strings (the user turns), got the string {turns[:40]!r}; "
                         'write "turns": ["..."]')
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: turns must be a non-empty list of strings, got {turns!r}"[:300])
    bad = [i for i, turn in enumerate(turns) if not isinstance(turn, str)]
    if bad:
        raise ValueError(f"{where}: turn {bad[0]} is not a string: {turns[bad[0]]!r}"[:300])
    for i, turn in enumerate(turns):
        check_text(turn, f"{where}: turn {i}")
    if not turns[0].strip():
        raise ValueError(f"{where}: the first turn is empty")
