"""The Spec-Bench benchmark's pure parts: question choice, medians of repeats, output agreement, the goals and section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specdec_lab.bench import runner, spec_bench
from specdec_lab.bench.metrics import AR, median_records, summarize
from specdec_lab.bench.spec_bench import (
    GOAL_OVER_AR, GOAL_OVER_TRANSFORMERS, GOAL_WORST_TASK, TASKS, goals, merge_results, step_cost,
)
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
bench = load_script("benchmarks/bench_spec_bench.py")


def test_questions_cover_six_task_types_round_robin(tmp_path):
    lines = []
    qid = 0
    for category in bench.MT_ORDER + ["translation", "summarization", "qa", "math_reasoning", "rag"]:
        for _ in range(10):
            qid += 1
            lines.append(json.dumps({"question_id": qid, "category": category, "turns": [f"{category} {qid}", "again"]}))
    path = tmp_path / "question.jsonl"
    path.write_text("\n".join(lines))
    qs = bench.spec_bench_questions(path, 8)
    assert len(qs) == 48 and [q.task for q in qs[:6]] == TASKS  # round-robin: a partial run covers every type
    multi = [q.prompt.split()[0] for q in qs if q.task == "multi-turn"]
    assert multi == bench.MT_ORDER  # one per MT-bench category
    assert all(q.prompt.split()[0] == q.task for q in qs if q.task != "multi-turn")
    with pytest.raises(ValueError, match="fewer than 11"):
        bench.spec_bench_questions(path, 11)


def _record(q, method, seconds, tokens=10, diverged=None, repeat=0):
    return {"task": "qa", "question_id": q, "method": method, "seconds": seconds, "tokens": tokens, "peak_mib": None,
            "repeat": repeat, "diverged_at": diverged, "compared": method != AR}


def test_median_of_interleaved_repeats_and_agreement_share():
    records = [_record(1, AR, s, repeat=r) for r, s in enumerate([3.0, 1.0, 2.0])]
    records += [_record(1, "m", s, diverged=d, repeat=r) for r, (s, d) in enumerate([(9.0, 4), (1.0, None), (0.5, None)])]
    records += [_record(2, AR, 1.0), _record(2, "m", 2.0, diverged=7)]
    kept = median_records(records)
    assert sorted(r["seconds"] for r in kept if r["method"] == AR) == [1.0, 2.0]  # the median of 3.0, 1.0, 2.0 is 2.0
    assert sorted(r["seconds"] for r in kept if r["method"] == "m") == [1.0, 2.0]
    row = next(r for r in summarize(kept, [AR, "m"], 4) if r["task"] == "all" and r["method"] == "m")
    assert row["identical_share"] == 0.5 and row["compared"] == 2
    assert row["speedup"] == pytest.approx(((10 / 1.0 + 10 / 2.0) / 2) / ((10 / 2.0 + 10 / 1.0) / 2))


def test_goals_pick_the_best_lossless_drafter_and_compare_with_transformers():
    summary = []
    for task, (ours, other, hf) in {"qa": (1.5, 1.1, 1.2), "rag": (0.9, 1.0, 1.0), "all": (1.2, 1.05, 1.1)}.items():
        summary += [{"task": task, "method": AR, "speedup": 1.0},
                    {"task": task, "method": "eagle + greedy", "speedup": ours, "alpha": 0.5, "tau": 2.0, "c": 0.05, "v": 1.5},
                    {"task": task, "method": "prompt-lookup + greedy", "speedup": other},
                    {"task": task, "method": "transformers prompt lookup", "speedup": hf},
                    {"task": task, "method": "transformers generate", "speedup": 1.3}]  # the AR baseline, not a rival method
    result = {"summary": summary, "methods": [AR, "eagle + greedy", "prompt-lookup + greedy", "transformers prompt lookup",
                                              "transformers generate"]}
    g = goals(result)
    assert g["best"] == "eagle + greedy" and g["best_hf"] == "transformers prompt lookup"
    assert g["over_hf"] == pytest.approx(1.2 / 1.1) and g["worst_task"] == "rag" and g["worst_speedup"] == 0.9


def test_a_run_and_its_resumption_merge_into_one_summary():
    def result(qids, repeats, skip):
        records = [_record(q, m, s) for q in qids for m, s in ((AR, 2.0), ("m", 1.0))]
        header = {"gamma": 4, "questions": 4 - skip, "repeats": repeats, "skip": skip, "command": f"run {skip}"}
        return {"header": header, "methods": [AR, "m"], "records": records, "questions_done": len(qids),
                "summary": summarize(records, [AR, "m"], 4)}

    merged = merge_results([result([1, 2], 2, 0), result([3], 1, 2)])
    assert merged["questions_done"] == 3 and merged["header"]["questions"] == 4 and not merged["complete"]
    row = next(r for r in merged["summary"] if r["task"] == "all" and r["method"] == "m")
    assert row["prompts"] == 3 and row["speedup"] == pytest.approx(2.0)
    whole = merge_results([merged, result([4], 1, 3)])
    assert whole["questions_done"] == 4 and whole["complete"]  # every question measured: no PARTIAL label
    with pytest.raises(ValueError, match="overlap"):
        merge_results([merged, result([3], 1, 2)])
    other = result([4], 1, 3)
    other["methods"] = [AR]
    with pytest.raises(ValueError, match="different methods"):
        merge_results([merged, other])


def test_a_merged_run_shows_each_runs_forward_costs():
    """Runs made at different times can meet a different machine state: the section shows each run's t(k)."""
    parts = []
    for i, (t1, t4) in enumerate(((40.0, 41.6), (38.0, 41.0), (40.4, 42.4))):
        part = _measured(4)
        part["header"]["verify_cost"] = {"bfloat16": {"ms": {1: t1, 4: t4}, "ratio": {1: 1.0, 4: round(t4 / t1, 2)}}}
        part["header"]["skip"] = i
        part["records"] = [_record(i, m, 1.0) for m in part["methods"]]
        parts.append(part)
    merged = merge_results([merge_results(parts[:2]), parts[2]])
    assert [c["bfloat16"]["ms"][1] for c in merged["header"]["verify_cost_runs"]] == [40.0, 38.0, 40.4]
    section = bench.catalogue_section(merged | {"summary": parts[0]["summary"]})  # (the records here carry no trace)
    assert "| bfloat16, run 1 | 40.0 ms (1.00×) | 41.6 ms (1.04×) |" in section
    assert "| bfloat16, run 3 | 40.4 ms (1.00×) | 42.4 ms (1.05×) |" in section
    assert "| bfloat16 | 40.0 ms (1.00×) | 41.6 ms (1.04×) |" in bench.catalogue_section(parts[0])  # one run: no label


def test_the_script_uses_the_librarys_merge_and_goals():
    """The script is a thin command line: the merge and the goals are the library's (notebook 08 reaches them through
    the script, so it keeps the names)."""
    assert bench.merge_results is merge_results and bench.goals is goals and bench.TASKS is TASKS
    assert (GOAL_OVER_AR, GOAL_OVER_TRANSFORMERS, GOAL_WORST_TASK) == (1.8, 1.3, 1.0)
    assert spec_bench.HF_BASELINE == runner.HF_GENERATE  # transformers' plain generate: a baseline, not a rival method
    assert all(m.startswith(spec_bench.HF_PREFIX) for m in (runner.HF_GENERATE, runner.HF_ASSISTED, runner.HF_LOOKUP))


def _measured(gamma: int) -> dict:
    methods = [AR, "eagle + greedy", "transformers prompt lookup", "transformers generate"]
    summary = []
    for task in ("qa", "all"):
        summary += [{"task": task, "method": AR, "speedup": 1.0},
                    {"task": task, "method": "eagle + greedy", "speedup": 1.2, "alpha": 0.5, "tau": 2.0, "c": 0.05, "v": 1.5},
                    {"task": task, "method": "transformers prompt lookup", "speedup": 1.1},
                    {"task": task, "method": "transformers generate", "speedup": 1.3}]
    header = {"gamma": gamma, "command": f"python benchmarks/bench_spec_bench.py --gamma {gamma}", "dtype": "bfloat16",
              "questions": 1, "tasks": ["qa"], "max_new_tokens": 8, "threads": 2, "processor": "x86_64", "torch": "2",
              "transformers": "5", "repeats": 1}
    return {"header": header, "methods": methods, "summary": summary, "records": [], "complete": True, "questions_done": 1}


@pytest.mark.parametrize("gamma, cost", [(4, "1.70"), (6, "1.80"), (1, "1.55")])
def test_the_step_cost_uses_the_runs_gamma(gamma, cost):
    """γc + v with the run's γ (--gamma), not a fixed 4: c = 0.05, v = 1.5."""
    assert step_cost(gamma, 0.05, 1.5) == pytest.approx(float(cost))
    section = bench.catalogue_section(_measured(gamma))
    assert f"γ = {gamma}," in section and f"each step costs γc + v = {cost} forwards" in section
    assert "(goal ≥ 1.8×)" in section and "goal ≥ 1.3×)" in section and "(goal > 1.0×)" in section


def test_the_table_gives_conditional_alpha_by_position():
    """The issue's n-α: one conditional α per draft position; a position no draft reached is "–", a method without
    traces (transformers') has none."""
    result = _measured(4)
    for row in result["summary"]:
        if row["method"] == "eagle + greedy":
            row["per_position"] = [0.5, 0.25, None]
    table = bench.summary_markdown(result)
    assert "| method | α | α by position | τ |" in table
    assert "| eagle + greedy | 0.50 | 0.50 / 0.25 / – | 2.00 |" in table
    assert "| transformers prompt lookup | – | – | – |" in table


def test_a_lookup_only_side_run_is_titled_as_one_and_not_judged_against_the_goals():
    result = _measured(10)
    result["header"]["command"] += " --lookup-only"
    section = bench.catalogue_section(result)
    assert section.startswith("## Side run on SmolLM2-135M-Instruct in bfloat16: prompt lookup drafting γ = 10, ours "
                              "against transformers'")
    assert "not a judgement of the goals" in section and "(goal ≥" not in section
    assert bench.side_run_title({"command": "python benchmarks/bench_spec_bench.py", "gamma": 4}) is None
    with_cascade = bench.side_run_title(result["header"], [*result["methods"], "lookup+retrieval + greedy"])
    assert with_cascade == "prompt lookup (and lookup+retrieval) drafting γ = 10, ours against transformers'"


def test_measured_smollm2_is_found_from_anywhere(tmp_path):
    """A notebook copied out of the repository (the browser tests' lab root) still finds the stored run."""
    from specdec_lab.bench.spec_bench import measured_smollm2

    run = measured_smollm2(tmp_path)
    assert run is not None and run["summary"] and run["questions_done"] > 0


STORED_SECTIONS = {"smollm2": spec_bench.MAIN_RUN, "smollm2-lookup10": "spec_bench_smollm2_bf16_lookup10.json",
                   "smollm2-lookup4": "spec_bench_smollm2_bf16_lookup4.json",
                   "smollm2-fp32": "spec_bench_smollm2_fp32_quick.json",
                   "smollm2-early-exit": "spec_bench_smollm2_hf_early_exit.json"}


@pytest.mark.parametrize("section", STORED_SECTIONS)
def test_catalogue_sections_are_the_stored_runs(section):
    """Every SmolLM2 figure in docs/catalogue.md is computed from a run in benchmarks/measured, none typed: the section
    equals what ``--from-result`` makes of the stored files."""
    import re

    files = sorted((ROOT / "benchmarks" / "measured").glob(STORED_SECTIONS[section]))
    assert files, f"no stored run for section {section}"
    text = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    stored = re.search(f"<!-- begin:{section} -->\n(.*?)\n<!-- end:{section} -->", text, re.S)
    assert stored is not None, f"docs/catalogue.md has no section {section}"
    made = bench.catalogue_section(merge_results([json.loads(f.read_text(encoding="utf-8")) for f in files]))
    assert stored.group(1).strip() == made.strip()


def test_lookup_shapes_figures_follow_from_their_measurements():
    """bench_lookup_shapes.py's stored run: speedup = τ / s for every shape, and the τ each shape would need is the
    goal (1.3× transformers' best in the stored γ-4 side run) times its measured step cost."""
    shapes = json.loads((ROOT / "benchmarks" / "measured" / "lookup_shapes_smollm2.json").read_text(encoding="utf-8"))
    side = goals(json.loads((ROOT / "benchmarks" / "measured" / shapes["goal"]["from"]).read_text(encoding="utf-8")))
    assert shapes["goal"]["transformers_best"] == side["best_hf"]
    assert shapes["goal"]["speedup_needed"] == pytest.approx(GOAL_OVER_TRANSFORMERS * side["hf_speedup"], abs=1e-3)
    assert set(shapes["tau"]) == set(shapes["speedup"]) == set(shapes["step_cost"]) == set(shapes["tau_needed"])
    for name, tau in shapes["tau"].items():
        cost = shapes["step_cost"][name]
        assert shapes["speedup"][name] == pytest.approx(tau / cost, rel=0.005), name  # both rounded to 3 places
        assert shapes["tau_needed"][name] == pytest.approx(shapes["goal"]["speedup_needed"] * cost, abs=0.006), name
