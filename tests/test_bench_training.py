"""The benchmarks of training on a CPU (bench_train_speed.py): their stored figures follow from one another and
from the scripts' settings."""

from __future__ import annotations

import json

import pytest

from project_scripts import ROOT, load_script

MEASURED = ROOT / "benchmarks" / "measured"
speed = load_script("benchmarks/bench_train_speed.py")


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

