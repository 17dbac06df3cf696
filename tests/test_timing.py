"""Timing honesty: medians with their range, and a warning when the machine is busy or the repeats disagree."""

from __future__ import annotations

import pytest

from specdec_lab.bench.timing import busy_warning, median_range, other_load, relative_spread


def test_median_range_and_spread():
    assert median_range([1.2, 0.9, 1.0]) == (1.0, 0.9, 1.2)
    assert relative_spread([1.2, 0.9, 1.0]) == pytest.approx(0.3)
    assert relative_spread([1.4]) == 0.0
    with pytest.raises(ValueError):
        median_range([])


def test_busy_warning_names_the_load_and_the_spread():
    assert busy_warning([1.0, 1.05, 0.98], load=1.0, cores=2) is None  # this process alone, repeats agree
    loaded = busy_warning(None, load=3.0, cores=2)  # two other busy cores on a 2-core machine
    assert loaded.startswith("⚠ timings unreliable") and "100% of the cores" in loaded
    spread = busy_warning([0.49, 1.63, 1.0], load=0.5, cores=2)
    assert "from 0.49 to 1.63" in spread and "load average" not in spread
    assert other_load(0.2, 2) == 0.0 and other_load(2.0, 2) == pytest.approx(0.5)


def test_measure_repeats_interleaved_with_median_and_range(monkeypatch):
    """repeats=3: three speedups (one per repeat), their median as speed; counts are identical across repeats."""
    from specdec_lab.bench import compare
    from specdec_lab.models.loading import load_model

    target, tokenizer = load_model("zoo:target", "cpu")
    ids = tokenizer("ROMEO.\n")["input_ids"]
    order = []
    real_ar, real_spec = compare.generate_autoregressive, compare.generate_speculative
    monkeypatch.setattr(compare, "generate_autoregressive", lambda *a, **k: order.append("ar") or real_ar(*a, **k))
    monkeypatch.setattr(compare, "generate_speculative", lambda *a, **k: order.append("spec") or real_spec(*a, **k))
    row = compare.measure(target, tokenizer, "prompt-lookup", "greedy", [ids], gamma=3, max_new_tokens=8, repeats=3)
    assert order == ["ar", "spec"] * 3  # interleaved, each speculative run right after its baseline
    assert len(row["speed_repeats"]) == 3
    assert row["speed"] == sorted(row["speed_repeats"])[1]
    assert row["speed_low"] == min(row["speed_repeats"]) and row["speed_high"] == max(row["speed_repeats"])
    assert f"{row['speed']:.2f}× ({row['speed_low']:.2f}–{row['speed_high']:.2f}, 3 repeats)" in compare.table_html([row])
    with pytest.raises(ValueError, match="repeats"):
        compare.measure(target, tokenizer, "prompt-lookup", "greedy", [ids], repeats=0)


def test_several_methods_share_one_baseline_per_prompt_and_round(monkeypatch):
    """compare / measure_many: per round and prompt one autoregressive run, then every method right after it."""
    from specdec_lab.bench import compare
    from specdec_lab.models.loading import load_model

    target, tokenizer = load_model("zoo:target", "cpu")
    ids = [tokenizer(t)["input_ids"] for t in ("ROMEO.\n", "HAMLET.\n")]
    order = []
    real_ar, real_spec = compare.generate_autoregressive, compare.generate_speculative
    monkeypatch.setattr(compare, "generate_autoregressive", lambda *a, **k: order.append("ar") or real_ar(*a, **k))
    monkeypatch.setattr(compare, "generate_speculative",
                        lambda *a, **k: order.append(k["verifier"]) or real_spec(*a, **k))
    rows = compare.measure_many(target, tokenizer, [("prompt-lookup", "greedy"), ("prompt-lookup", "speculative")], ids,
                                gamma=3, max_new_tokens=8, repeats=2)
    assert order == ["ar", "greedy", "speculative"] * 4  # 2 rounds × 2 prompts
    assert [r["verifier"] for r in rows] == ["greedy", "speculative"]
    assert all(len(r["speed_repeats"]) == 2 for r in rows)
