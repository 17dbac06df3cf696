"""The benchmark's prompts, in Spec-Bench's ``question.jsonl`` format.

One JSON object per line: ``question_id``, ``category`` and ``turns`` (a list of user turns);
only the first turn is decoded. ``minibench.jsonl`` (shipped) holds five tasks for the bundled
models, 22 prompts each: ``continuation`` (open a scene), ``recall`` (a famous passage),
``copy`` (repeat a passage given in the prompt: where prompt lookup should shine), ``formulaic``
(character lists, stage directions) and ``code`` (Python). Spec-Bench's own file
(hemingkx/Spec-Bench, data/spec_bench/question.jsonl) reads the same way; its eight MT-bench
categories count as one task, "multi-turn", as in Spec-Bench's tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MINIBENCH = Path(__file__).with_name("minibench.jsonl")
MT_BENCH = {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}


@dataclass(frozen=True)
class Question:
    question_id: int
    task: str
    prompt: str


def read_questions(path: str | Path = MINIBENCH, per_task: int | None = None, tasks: list[str] | None = None) -> list[Question]:
    """The questions of a question.jsonl file, at most ``per_task`` of each task (in file order), optionally only ``tasks``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no question file at {path}")
    if per_task is not None and per_task < 1:
        raise ValueError(f"per_task must be >= 1, got {per_task}")
    questions, counts = [], {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the question file {path}: {err}") from err
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError(f"a JSON {type(record).__name__}, not an object")
            missing = next((key for key in ("turns", "category") if key not in record), None)
            if missing is not None:
                raise KeyError(missing)
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{number}: not a question.jsonl record with category and turns ({err})") from err
        question_id = record.get("question_id", number)
        where = f"{path}:{number} (question {question_id!r})"
        prompt, category = _first_turn(record["turns"], where), record["category"]
        if not isinstance(category, str) or not category.strip():
            raise ValueError(f"{where}: category must be a non-empty string, got {category!r}")
        task = "multi-turn" if category in MT_BENCH else category
        if tasks is not None and task not in tasks:
            continue
        if per_task is None or counts.get(task, 0) < per_task:
            counts[task] = counts.get(task, 0) + 1
            questions.append(Question(question_id, task, prompt))
    if tasks is not None and set(tasks) - set(counts):
        raise ValueError(f"no questions for task(s) {sorted(set(tasks) - set(counts))}; the file has: {sorted(_tasks(path))}")
    if not questions:
        raise ValueError(f"{path} holds no questions")
    return questions


def _first_turn(turns, where: str) -> str:
    """The first user turn, refusing what is not a list of strings (a bare string would give its first letter)."""
    if isinstance(turns, str):
        raise ValueError(f"{where}: turns must be a list of strings (the user turns), got the string {turns[:40]!r}; "
                         'write "turns": ["..."]')
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: turns must be a non-empty list of strings, got {turns!r}"[:300])
    bad = [i for i, turn in enumerate(turns) if not isinstance(turn, str)]
    if bad:
        raise ValueError(f"{where}: turn {bad[0]} is not a string: {turns[bad[0]]!r}"[:300])
    if not turns[0].strip():
        raise ValueError(f"{where}: the first turn is empty")
    return turns[0]


def _tasks(path: Path) -> set[str]:
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            category = json.loads(line).get("category", "?")
            found.add("multi-turn" if category in MT_BENCH else category)
    return found
