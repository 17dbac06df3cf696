"""The benchmark: task files (ours and Spec-Bench's format), the report's structure and the metric definitions."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import specdec_lab
from specdec_lab import cli
from specdec_lab.bench import metrics
from specdec_lab.models import loading
from specdec_lab.bench import (
    MINIBENCH, BenchSettings, all_methods, default_methods, parse_methods, read_questions, run_benchmark, to_markdown,
    write_report,
)
from specdec_lab.bench import runner
from specdec_lab.bench.runner import AR, HF_ASSISTED, HF_GENERATE, HF_LOOKUP, forward_probe, summarize
from specdec_lab.cli import main as cli_main
from specdec_lab.models.loading import load_model
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
    assert cli_main(["bench", "--tasks", "copy", "--prompts-per-task", "1", "--methods", "distilled+heuristic-γ+greedy",
                     "--new-tokens", "4", "--no-hf", "--no-probe", "--out", str(out)]) == 0
    assert "distilled+heuristic-γ + greedy" in capsys.readouterr().out
    assert cli_main(["bench", "--new-tokens", "0", "--out", str(out)]) == 2


# -- failing early, keeping what was measured --------------------------------------------------------------------------


def _questions(tmp_path, *records) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("turns, message", [
    ("ROMEO", "turns must be a list of strings (the user turns), got the string 'ROMEO'"),
    ([], "turns must be a non-empty list of strings"),
    (None, "turns must be a non-empty list of strings"),
    ([["ROMEO"]], "turn 0 is not a string"),
    (["ROMEO", 3], "turn 1 is not a string"),
    (["  "], "the first turn is empty"),
])
def test_question_turns_must_be_a_list_of_strings(tmp_path, turns, message):
    """A bare string used to become its first letter ("ROMEO" -> the prompt "R"); now it is refused, by id."""
    path = _questions(tmp_path, {"question_id": 1, "category": "x", "turns": ["fine"]},
                      {"question_id": "q-7", "category": "x", "turns": turns})
    with pytest.raises(ValueError, match=r"questions.jsonl:2 \(question 'q-7'\)") as err:
        read_questions(path)
    assert message in str(err.value)


def test_method_names_with_a_plus_are_parsed_against_the_registry():
    assert parse_methods("distilled+heuristic-γ+speculative") == [("distilled+heuristic-γ", "speculative")]
    assert parse_methods("distilled+confidence+greedy, prompt-lookup+greedy") == [
        ("distilled+confidence", "greedy"), ("prompt-lookup", "greedy")]
    assert parse_methods("distilled+greedy") == [("distilled", "greedy")]  # not mistaken for distilled+confidence
    assert parse_methods("medusa + tree-greedy") == [("medusa", "tree-greedy")]  # the report's label reads back
    assert parse_methods("default") == default_methods() and parse_methods("all") == all_methods()
    for bad in ("distilled+heuristic-γ", "nope+greedy", "distilled+nope", "distilled", "+greedy"):
        with pytest.raises(ValueError, match="unknown method .*distilled, distilled\\+heuristic-γ.* greedy, speculative"):
            parse_methods(bad)
    with pytest.raises(ValueError, match="needs a drafter that branches, and 'distilled\\+heuristic-γ' cannot branch"):
        parse_methods("distilled+heuristic-γ+tree-greedy")


@pytest.fixture
def no_models(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(cli, "load_model", refuse, raising=False)
    monkeypatch.setattr(loading, "load_model", refuse)


BAD_BENCH_ARGS = [
    (["--gamma", "0"], "gamma must be between 1 and 64"),
    (["--gamma", "100"], "gamma must be between 1 and 64"),
    (["--new-tokens", "0"], "--new-tokens must be >= 1, got 0"),
    (["--temperature", "-1"], "temperature must be >= 0"),
    (["--temperature", "inf"], "temperature must be a finite number"),
    (["--seed", "-2"], "seed must be between 0 and"),
    (["--device", "foo"], "unknown device 'foo'"),
    (["--methods", "nope+greedy"], "unknown method 'nope+greedy'"),
    (["--methods", "distilled+heuristic-γ"], "unknown method 'distilled+heuristic-γ'"),
    (["--methods", "prompt-lookup+greedy,distilled+heuristic-γ+tree-speculative"], "cannot branch"),
    (["--prompts-per-task", "0"], "per_task must be >= 1"),
    (["--questions", "/no/such/questions.jsonl"], "no question file at /no/such/questions.jsonl"),
    (["--tasks", "poetry"], "no questions for task(s) ['poetry']"),
]


@pytest.mark.parametrize("args, message", BAD_BENCH_ARGS, ids=[" ".join(a) for a, _ in BAD_BENCH_ARGS])
def test_bench_refuses_bad_arguments_before_loading_a_model(tmp_path, capsys, no_models, args, message):
    assert cli_main(["bench", "--out", str(tmp_path / "r"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_bench_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys, no_models):
    out = tmp_path / "report"
    out.write_text("not a folder")
    assert cli_main(["bench", "--methods", "prompt-lookup+greedy", "--out", str(out)]) == 2
    assert "is an existing file, not a folder" in capsys.readouterr().err
    assert cli_main(["bench", "--methods", "prompt-lookup+greedy", "--out", str(out / "sub")]) == 2
    assert "is a file, so the folder cannot be created there" in capsys.readouterr().err
    assert out.read_text() == "not a folder"


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", "cpu")


def test_a_prompt_too_long_is_refused_before_the_first_forward_and_named(zoo, tmp_path, monkeypatch):
    target, tokenizer = zoo
    calls = []
    monkeypatch.setattr(runner, "generate_autoregressive", lambda *a, **k: calls.append("ar"))
    monkeypatch.setattr(runner, "generate_speculative", lambda *a, **k: calls.append("spec"))
    path = _questions(tmp_path, {"question_id": 1, "category": "copy", "turns": ["ROMEO."]},
                      {"question_id": "long-2", "category": "copy", "turns": ["word " * 600]})
    with pytest.raises(ValueError, match=r"question 'long-2' \(task 'copy'\): prompt \(\d+ tokens\) \+ max_new_tokens \(8\) "
                                         r"exceeds the target's context of 512 tokens"):
        run_benchmark(target, tokenizer, read_questions(path), [("prompt-lookup", "greedy")], max_new_tokens=8,
                      hf_baselines=False, progress=False)
    assert calls == []  # not even the warm-up ran


def test_an_interrupted_run_keeps_the_questions_it_measured(zoo, tmp_path, capsys, monkeypatch):
    """The partial result is written after each question: interrupting the second leaves the first on disk."""
    path = _questions(tmp_path, {"question_id": "a", "category": "copy", "turns": ["ROMEO.\nBut soft"]},
                      {"question_id": "b", "category": "copy", "turns": ["JULIET.\nO Romeo"]})
    real = runner.generate_speculative
    seen = []

    def interrupted_on_the_second_question(target, drafter, ids, **kwargs):
        seen.append(list(ids))
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(target, drafter, ids, **kwargs)

    monkeypatch.setattr(runner, "generate_speculative", interrupted_on_the_second_question)
    monkeypatch.setattr(cli, "load_model", lambda name, device=None: zoo, raising=False)
    monkeypatch.setattr(loading, "load_model", lambda name, device=None: zoo)
    out = tmp_path / "report"
    try:
        code = cli_main(["bench", "--questions", str(path), "--methods", "prompt-lookup+greedy", "--new-tokens", "4",
                         "--no-hf", "--no-probe", "--device", "cpu", "--out", str(out)])
    except KeyboardInterrupt:
        pytest.fail("the interrupt escaped the CLI, and nothing was written")
    assert code == 130 and "interrupted" in capsys.readouterr().err
    result = json.loads((out / "result.json").read_text())
    assert result["complete"] is False and result["questions_done"] == 1
    assert [(r["question_id"], r["method"]) for r in result["records"]] == [("a", AR), ("a", "prompt-lookup + greedy")]
    assert all(r["tokens"] == 4 for r in result["records"])
    assert {(row["task"], row["method"]) for row in result["summary"]} == {
        (t, m) for t in ("copy", "all") for m in (AR, "prompt-lookup + greedy")}
    assert "PARTIAL: 1 of 2 prompts" in (out / "report.md").read_text()
    assert not list(out.glob("*.tmp"))


def test_a_complete_run_says_so(tiny_result):
    assert tiny_result["complete"] is True and tiny_result["questions_done"] == 2


# -- layering: the metrics live below the benchmark, the widgets and compare ---------------------------------------


def _imports(path: Path) -> set[str]:
    """The specdec_lab modules (and names from them) a file imports, dotted, relative to the package."""
    package = Path(specdec_lab.__file__).parent
    here = list(path.relative_to(package).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("specdec_lab")):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = (node.module or "").removeprefix("specdec_lab").lstrip(".")
            name = ".".join(base + ([module] if module else []))
            found |= {name} if name else set()
            found |= {f"{name}.{a.name}".lstrip(".") for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("specdec_lab.") for a in node.names if a.name.startswith("specdec_lab.")}
    return found


def test_viz_and_compare_do_not_import_the_benchmark():
    package = Path(specdec_lab.__file__).parent
    for path in [package / "bench" / "compare.py", package / "bench" / "metrics.py", *sorted((package / "lab" / "viz").glob("*.py"))]:
        benchmark = ("bench", "bench.runner", "bench.report", "bench.tasks")  # the benchmark runner and its package
        assert not any(n in benchmark or n.startswith(("bench.runner.", "bench.report.", "bench.tasks."))
                       for n in _imports(path)), path.name
    assert _imports(package / "bench" / "metrics.py") == {"core.theory", "core.theory.expected_tokens_per_step",
                                                          "core.theory.speedup"}  # pure


def test_the_benchmark_uses_the_shared_metrics():
    for name in ("AR", "label", "measured_costs", "predictions", "trace_record", "summarize", "explain"):
        assert getattr(runner, name) is getattr(metrics, name)


def test_a_run_that_fails_midway_names_the_question_and_keeps_the_ones_before(zoo, tmp_path, capsys, monkeypatch):
    path = _questions(tmp_path, {"question_id": "a", "category": "copy", "turns": ["ROMEO.\nBut soft"]},
                      {"question_id": "b", "category": "code", "turns": ["def main():"]})
    real, seen = runner.generate_speculative, []

    def fails_on_the_second_question(target, drafter, ids, **kwargs):
        seen.append(1)
        if len(seen) == 2:
            raise ValueError("the drafter broke")
        return real(target, drafter, ids, **kwargs)

    monkeypatch.setattr(runner, "generate_speculative", fails_on_the_second_question)
    monkeypatch.setattr(cli, "load_model", lambda name, device=None: zoo, raising=False)
    monkeypatch.setattr(loading, "load_model", lambda name, device=None: zoo)
    out = tmp_path / "report"
    assert cli_main(["bench", "--questions", str(path), "--methods", "prompt-lookup+greedy", "--new-tokens", "4",
                     "--no-hf", "--no-probe", "--device", "cpu", "--out", str(out)]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "error" in x]  # (the rest: the progress bar)
    assert line.startswith("error: the drafter broke; while running prompt-lookup + greedy on question 'b' (task 'code'); "
                           "the 1 of 2 prompts measured so far are in ")
    assert [r["question_id"] for r in json.loads((out / "result.json").read_text())["records"]] == ["a", "a"]


# -- the caller's objects are left alone; settings; small functions ---------------------------------------------------


def test_run_benchmark_leaves_the_callers_models_and_global_random_state_as_they_were(zoo):
    """transformers' assisted generation reads γ from the assistant's generation_config, and its sampling draws from
    the global RNG: the run uses copies and a fork, so neither the models nor torch's random state change."""
    target, tokenizer = zoo
    drafter = load_model("zoo:drafter-small", "cpu")[0]
    configs = target.generation_config.to_dict(), drafter.generation_config.to_dict()
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    result = run_benchmark(target, tokenizer, read_questions(per_task=1, tasks=["copy"]),
                           [("medusa", "speculative"), ("prompt-lookup", "greedy")],  # medusa: heads built at random first
                           gamma=3, max_new_tokens=4, temperature=0.7, hf_drafter=drafter, progress=False)
    assert HF_ASSISTED in result["methods"] and all(rec["tokens"] == 4 for rec in result["records"])
    assert target.generation_config.to_dict() == configs[0]
    assert drafter.generation_config.to_dict() == configs[1]
    assert torch.equal(torch.get_rng_state(), state)


def test_transformers_assistant_gets_gamma_on_a_copy_of_its_generation_config(zoo):
    drafter = load_model("zoo:drafter-small", "cpu")[0]
    before = drafter.generation_config.to_dict()
    runs = runner._hf_runs(BenchSettings(gamma=5), drafter)
    assert list(runs) == [HF_GENERATE, HF_ASSISTED, HF_LOOKUP] and runs[HF_LOOKUP] == {"prompt_lookup_num_tokens": 5}
    assistant = runs[HF_ASSISTED]["assistant_model"]
    assert assistant is not drafter and assistant.generation_config is not drafter.generation_config
    assert assistant.generation_config.num_assistant_tokens == 5
    assert assistant.generation_config.num_assistant_tokens_schedule == "constant"
    assert assistant.generation_config.assistant_confidence_threshold == 0.0
    assert all(a is b for a, b in zip(assistant.parameters(), drafter.parameters()))  # the same weights, not a copy
    assert drafter.generation_config.to_dict() == before


def test_bench_settings_are_checked_when_made_and_keywords_override_them():
    with pytest.raises(ValueError, match="gamma must be between 1 and 64"):
        BenchSettings(gamma=0)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        BenchSettings(repeats=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        BenchSettings(temperature=-1.0)
    base = BenchSettings(gamma=3, max_new_tokens=10, drafter_options=None)
    assert base.drafter_options == {} and base.hf_extra == {} and base.header_extra == {}
    assert runner._settings(base, {}) is base
    assert runner._settings(base, {"seed": 7}) == BenchSettings(gamma=3, max_new_tokens=10, seed=7)
    assert runner._settings(None, {"gamma": 2}) == BenchSettings(gamma=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'gama'"):
        runner._settings(None, {"gama": 2})
    with pytest.raises(TypeError, match="settings must be a BenchSettings"):
        run_benchmark(None, None, [], settings={"gamma": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.gamma = 5


def test_the_runners_functions_are_short():
    """run_benchmark is split into functions with one job each: none longer than 40 lines."""
    tree = ast.parse(Path(runner.__file__).read_text(encoding="utf-8"))
    lengths = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert lengths["run_benchmark"] <= 40 and max(lengths.values()) <= 40, lengths
