"""The benchmarks of training on a CPU (bench_train_speed.py, bench_cpu_finetune.py): their stored figures follow
from one another and from the scripts' settings, and the task-like chats are the ones the docstring names."""

from __future__ import annotations

import json

import numpy as np
import pytest

from project_scripts import ROOT, load_script

MEASURED = ROOT / "benchmarks" / "measured"
speed = load_script("benchmarks/bench_train_speed.py")
finetune = load_script("benchmarks/bench_cpu_finetune.py")


def test_train_speed_figures_follow_from_the_seconds_per_batch():
    stored = json.loads((MEASURED / "train_speed_cpu.json").read_text(encoding="utf-8"))
    assert stored["settings"] == {name: {"dtype": d, "law_vocab": k, "ttt_steps": s}
                                  for name, (d, k, s) in speed.SETTINGS.items()}
    seconds = stored["seconds_per_batch"]
    assert set(seconds) == set(speed.SETTINGS)
    for name, s in seconds.items():
        assert stored["tokens_per_s"][name] == pytest.approx(stored["batch_tokens"] / s, rel=0.005), name
        assert stored["speedup"][name] == pytest.approx(seconds["recipe"] / s, abs=0.006), name
    # each setting the trainer's help names as faster is faster on the machine that ran it
    assert seconds["recipe"] > seconds["bf16"] > seconds["bf16, 16k"] > seconds["bf16, 16k, 3"]


class Words:
    """A tokenizer whose ids are indices into a word list (decode joins them)."""

    words = ["hello", "please", "translate", "this", "summarize", "it", "what", "is", "x"]

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids)


def chat(opening: list[int], answer_len: int = 4) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array(opening + [8] * answer_len)
    return ids, np.r_[np.zeros(len(opening), bool), np.ones(answer_len, bool)]


def test_task_like_chats_are_long_openings_or_ask_for_a_task():
    rows = [chat([0, 2, 3]), chat([6, 7, 8]), chat([1, 4, 5]), chat([0] * (finetune.LONG_OPENING + 1)),
            chat([0] * finetune.LONG_OPENING), (np.array([0, 2]), np.zeros(2, bool))]  # the last: no answer at all
    task, other = finetune.task_like(rows, Words())
    assert [len(r[0]) for r in task] == [7, 7, finetune.LONG_OPENING + 5]
    assert [len(r[0]) for r in other] == [7, finetune.LONG_OPENING + 4, 2]


def test_cpu_finetune_figures_follow_from_before_and_after():
    path = MEASURED / "cpu_finetune_smollm2.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["settings"]["law_vocab"] == finetune.DRAFT_VOCAB and stored["settings"]["ttt_steps"] == finetune.TTT_STEPS
    assert set(stored["alpha_before"]) == set(stored["alpha_after"]) == set(stored["alpha1_change"])
    assert {"translation", "summarization", "rag", "sharegpt held-out"} <= set(stored["alpha_before"])
    for name, change in stored["alpha1_change"].items():
        assert change == pytest.approx(stored["alpha_after"][name][0] - stored["alpha_before"][name][0], abs=1e-4)
    assert stored["train"]["steps"] > 0 and stored["train"]["tokens_seen"] > 0
