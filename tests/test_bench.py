"""The benchmark: task files (ours and Spec-Bench's format), the report's structure and the metric definitions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from specdec_lab.bench import MINIBENCH, all_methods, default_methods, read_questions, run_benchmark, to_markdown, write_report
from specdec_lab.bench.runner import AR, HF_ASSISTED, HF_GENERATE, HF_LOOKUP, forward_probe, summarize
from specdec_lab.cli import main as cli_main
from specdec_lab.loading import load_model
from specdec_lab.registry import DRAFTERS, VERIFIERS

SPEC_BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "spec_bench" / "question.jsonl"


def test_minibench_has_five_tasks_of_twenty_prompts():
    questions = read_questions()
    tasks = {}
    for q in questions:
        tasks.setdefault(q.task, []).append(q)
    assert set(tasks) == {"continuation", "recall", "copy", "formulaic", "code"}
    assert all(len(qs) >= 20 for qs in tasks.values())
    assert len({q.question_id for q in questions}) == len(questions)
    assert [q.task for q in read_questions(per_task=2, tasks=["code", "copy"])] == ["copy", "copy", "code", "code"]


@pytest.mark.skipif(not SPEC_BENCH.exists(), reason=f"Spec-Bench's question.jsonl is not at {SPEC_BENCH}")
def test_reads_spec_bench_question_file():
    questions = read_questions(SPEC_BENCH)
    tasks = {q.task for q in questions}
    assert {"multi-turn", "translation", "summarization", "qa", "math_reasoning", "rag"} == tasks
    assert len(questions) == 480 and all(q.prompt.strip() for q in questions)
    assert len(read_questions(SPEC_BENCH, per_task=3)) == 18


def test_bad_question_files_say_what_is_wrong(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question_id": 1, "category": "x", "turns": ["hi"]}\n{"category": "x"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:2"):
        read_questions(bad)
    with pytest.raises(FileNotFoundError):
        read_questions(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="no questions for task"):
        read_questions(MINIBENCH, tasks=["poetry"])


def test_method_lists_follow_the_registry():
    every = all_methods()
    assert all(DRAFTERS[d].branches or not VERIFIERS[v].tree for d, v in every)
    assert len(every) == sum(1 for d in DRAFTERS for v in VERIFIERS if DRAFTERS[d].branches or not VERIFIERS[v].tree)
    assert set(default_methods()) <= set(every) and {d for d, _ in default_methods()} == set(DRAFTERS)


@pytest.fixture(scope="module")
def tiny_result():
    target, tokenizer = load_model("zoo:target", "cpu")
    drafter = load_model("zoo:drafter-small", "cpu")[0]
    questions = read_questions(per_task=1, tasks=["copy", "code"])
    return run_benchmark(target, tokenizer, questions, [("small-model", "speculative"), ("prompt-lookup", "greedy")],
                         gamma=3, max_new_tokens=10, hf_drafter=drafter, progress=False)


def test_report_structure(tiny_result, tmp_path):
    r = tiny_result
    assert r["methods"] == [AR, "small-model + speculative", "prompt-lookup + greedy", HF_GENERATE, HF_ASSISTED, HF_LOOKUP]
    assert len(r["records"]) == 2 * 6 and all(rec["tokens"] == 10 for rec in r["records"])
    for key in ("machine", "torch", "transformers", "seed", "gamma", "max_new_tokens", "tasks"):
        assert key in r["header"]
    assert {(row["task"], row["method"]) for row in r["summary"]} == {(t, m) for t in ("copy", "code", "all") for m in r["methods"]}
    paths = write_report(r, tmp_path)
    assert json.loads(paths["json"].read_text())["summary"]
    md = paths["markdown"].read_text()
    assert "| task | method | speedup ×" in md and "small-model + speculative" in md and "transformers assisted" in md
    page = paths["html"].read_text()
    assert page.startswith("<!doctype html>") and "plotly" in page and "<table" in page


def test_metric_definitions(tiny_result):
    """Recompute each metric of one summary row from the records it summarises."""
    r = tiny_result
    for task in ("copy", "all"):
        recs = [x for x in r["records"] if task in ("all", x["task"])]
        base = [x for x in recs if x["method"] == AR]
        mine = [x for x in recs if x["method"] == "small-model + speculative"]
        row = next(x for x in r["summary"] if (x["task"], x["method"]) == (task, "small-model + speculative"))
        mean_tps = lambda rs: sum(x["tokens"] / x["seconds"] for x in rs) / len(rs)  # noqa: E731
        assert row["speedup"] == pytest.approx(mean_tps(mine) / mean_tps(base))  # Spec-Bench: ratio of mean tokens/s
        assert row["tau"] == pytest.approx(sum(x["tokens"] for x in mine) / sum(x["steps"] for x in mine))
        assert row["alpha"] == pytest.approx(sum(x["accepted"] for x in mine) / sum(x["checked"] for x in mine))
        assert row["forwards_per_token"] == pytest.approx(sum(x["target_forwards"] for x in mine) / sum(x["tokens"] for x in mine))
        checked = [sum(x["checked_at"][i] for x in mine) for i in range(3)]
        accepted = [sum(x["accepted_at"][i] for x in mine) for i in range(3)]
        assert checked[0] == sum(x["steps"] - x["empty_steps"] for x in mine)  # every non-empty draft's first token is checked
        assert sum(accepted) == sum(x["accepted"] for x in mine) and sum(checked) == sum(x["checked"] for x in mine)
        assert row["per_position"] == [a / n if n else None for a, n in zip(accepted, checked)]
        assert all(p is None or 0 <= p <= 1 for p in row["per_position"])
        base_s = sum(x["seconds"] for x in base) / sum(x["tokens"] for x in base)
        steps = sum(x["steps"] for x in mine)
        assert row["c"] == pytest.approx(sum(x["draft_s"] for x in mine) / steps / 3 / base_s)
        assert row["v"] == pytest.approx(sum(x["verify_s"] for x in mine) / steps / base_s)
        assert row["accounting"] == pytest.approx(row["tau"] / (3 * row["c"] + row["v"]))
        assert isinstance(row["explanation"], str) and row["explanation"]
    ar = next(x for x in r["summary"] if (x["task"], x["method"]) == ("all", AR))
    assert ar["speedup"] == pytest.approx(1.0) and ar["forwards_per_token"] == pytest.approx(1.0)


def test_summary_of_made_up_records_is_spec_benchs_ratio_of_means():
    rec = lambda m, tokens, seconds: {"task": "t", "method": m, "tokens": tokens, "seconds": seconds, "peak_mib": None}  # noqa: E731
    rows = summarize([rec(AR, 10, 1.0), rec(AR, 10, 4.0), rec("x", 10, 0.5), rec("x", 10, 1.0)], [AR, "x"], 4)
    x = next(r for r in rows if r["method"] == "x" and r["task"] == "t")
    assert x["speedup"] == pytest.approx(((20 + 10) / 2) / ((10 + 2.5) / 2))  # not the ratio of total times (5 / 1.5)


def test_forward_probe_reports_the_cost_model_beside_the_measurement():
    target, _ = load_model("zoo:target", "cpu")
    probe = forward_probe(target, ks=(1, 64), context=16)
    assert probe["k"] == [1, 64] and len(probe["seconds"]) == len(probe["model_seconds"]) == 2 and "laptop CPU" in probe["note"]
    if probe["seconds"][1] > probe["seconds"][0]:  # 64 tokens take longer than 1 (always, but for a stalled machine)
        assert probe["model_seconds"] == pytest.approx(probe["seconds"], rel=1e-6)  # the fit reproduces both ends


def test_cli_bench_writes_a_report(tmp_path, capsys):
    out = tmp_path / "report"
    code = cli_main(["bench", "--tasks", "copy", "--prompts-per-task", "1", "--methods", "prompt-lookup+greedy",
                     "--new-tokens", "6", "--no-probe", "--out", str(out)])
    assert code == 0 and (out / "report.md").exists() and (out / "result.json").exists()
    assert "prompt-lookup + greedy" in capsys.readouterr().out
    assert cli_main(["bench", "--methods", "nope+greedy", "--prompts-per-task", "1", "--out", str(out)]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert cli_main(["bench", "--new-tokens", "0", "--out", str(out)]) == 2
