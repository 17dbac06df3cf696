"""Spec-Bench's six task types on SmolLM2-135M-Instruct: every drafter beside transformers' own methods, in one run.

    python benchmarks/bench_spec_bench.py [--per-task 8] [--new-tokens 128] [--threads 2] [--repeats 1] \
        [--out benchmarks/results/spec_bench_smollm2] [--write docs/catalogue.md]
    python benchmarks/bench_spec_bench.py --training-free [--temperature 0.7] --write docs/catalogue.md \
        --section training-free   # issue 37's side-by-side run (see TRAINING_FREE)

Questions: ``../shared/data/spec_bench/question.jsonl`` (Spec-Bench's file; never copied into the project).
Per task type, ``--per-task`` questions: for multi-turn conversation one from each of its eight MT-bench
categories (writing, roleplay, reasoning, math, coding, extraction, stem, humanities) in turn, for translation,
summarization, qa, math_reasoning and rag the first ones in the file. Questions are taken round-robin over the task
types, so an interrupted run still covers every type. Each prompt is the first turn through SmolLM2's chat template.

Settings (the issue's): greedy, bf16, 2 torch threads, 128 new tokens (min = max, so every method decodes the same
count), γ = 4. Per question, in one pass: our autoregressive loop, every drafter with the greedy verifier (and
EAGLE's tree with tree-greedy), then transformers' ``generate`` (greedy), its prompt lookup
(``prompt_lookup_num_tokens`` = γ and = 10), ``assistant_early_exit`` and ``assistant_model=`` our distilled drafter.
Speedups are Spec-Bench's: the ratio of mean tokens/s to our autoregressive loop on the same questions.

This script is the command line: it picks the questions, measures, and writes the Markdown section. Merging a run
measured in parts (``--from-result``) and the speed goals are the library's, :mod:`specdec_lab.bench.spec_bench`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from specdec_lab.bench.report import write_report, write_section  # noqa: E402
from specdec_lab.bench.runner import HF_LOOKUP, BenchSettings, run_benchmark  # noqa: E402
from specdec_lab.bench.spec_bench import (  # noqa: E402  (merge_results, goals: also this script's, for notebook 08)
    GOAL_OVER_AR, GOAL_OVER_TRANSFORMERS, GOAL_WORST_TASK, TASKS, goals, merge_results, step_cost,
)
from specdec_lab.bench.tasks import MT_BENCH, Question, question_records  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.registry import build_drafter  # noqa: E402
from specdec_lab.models.smollm2 import chat_ids  # noqa: E402

QUESTIONS = HERE.parent.parent / "shared" / "data" / "spec_bench" / "question.jsonl"
MT_ORDER = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]
LOSSLESS_OURS = [("eagle", "greedy"), ("eagle", "tree-greedy"), ("medusa", "greedy"), ("distilled", "greedy"),
                 ("early-exit", "greedy"), ("prompt-lookup", "greedy"), ("lookahead", "greedy"), ("retrieval", "greedy"),
                 ("lookup+retrieval", "greedy")]
HF_EARLY_EXIT_LAYERS = 4
TRAINING_FREE = [("prompt-lookup", "greedy"), ("lookup+retrieval", "greedy"), ("recycling", "greedy"),
                 ("recycling", "tree-greedy"), ("suffix", "greedy"), ("suffix", "tree-greedy"),
                 ("suffix+recycling", "greedy"), ("suffix+recycling", "tree-greedy")]  # issue 37, side by side
SAMPLED = {"greedy": "speculative", "tree-greedy": "tree-speculative"}  # T > 0: the same drafts, the sampling rules
CALIBRATION_TREE = (8, 3, 2, 1, 1, 1, 1, 1)  # cut to depth γ: ranks measured past any pick (γ = 4: 128 nodes)


def spec_bench_questions(path: Path, per_task: int) -> list[Question]:
    """``per_task`` questions of each of Spec-Bench's six task types, round-robin over the types. The file is read
    and checked by :func:`~specdec_lab.bench.tasks.question_records` (ids unique, turns encodable and bounded)."""
    records = question_records(path)
    by_task: dict[str, list[Question]] = {t: [] for t in TASKS}
    mt = {c: [r for r in records if r["category"] == c] for c in MT_ORDER}
    for i in range(max(map(len, mt.values()))):  # multi-turn: the categories in turn, so 8 questions span all eight
        for c in MT_ORDER:
            if i < len(mt[c]):
                r = mt[c][i]
                by_task["multi-turn"].append(Question(r["question_id"], "multi-turn", r["turns"][0]))
    for r in records:
        if r["category"] not in MT_BENCH and r["category"] in by_task:
            by_task[r["category"]].append(Question(r["question_id"], r["category"], r["turns"][0]))
    short = [t for t in TASKS if len(by_task[t]) < per_task]
    if short:
        raise ValueError(f"{path} has fewer than {per_task} questions for {short}")
    return [by_task[t][i] for i in range(per_task) for t in TASKS]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--per-task", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    ap.add_argument("--device", default=None)
    ap.add_argument("--no-hf-early-exit", action="store_true", help="skip assistant_early_exit (it runs at ~0.2x)")
    ap.add_argument("--hf-early-exit-only", action="store_true",
                    help="a short side run: our AR, prompt lookup and assistant_early_exit only (it is slow: see the note)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "spec_bench_smollm2")
    ap.add_argument("--write", type=Path, default=None, help="also write the section --section of this Markdown file")
    ap.add_argument("--section", default="smollm2", help="the section of --write to replace (default: smollm2)")
    ap.add_argument("--lookup-only", action="store_true",
                    help="a side run: our prompt lookup and lookup+retrieval against transformers' generate and prompt "
                         "lookup, all drafting --gamma tokens (and transformers' at 10 tokens, its best in the full run)")
    ap.add_argument("--training-free", action="store_true",
                    help="issue 37: AR, prompt lookup, lookup+retrieval, recycling, suffix, suffix+recycling (chain and "
                         "tree), transformers' prompt lookup at --gamma and 10 tokens; recycling's tree and chain sized "
                         "for this machine first (tree_shape.best_for_hardware on calibration questions outside the run)")
    ap.add_argument("--temperature", type=float, default=0.0,
                    help="> 0: sample (our speculative / tree-speculative rules, transformers do_sample=True)")
    ap.add_argument("--calibrate", type=int, default=6,
                    help="--training-free: calibration questions (the round after the measured ones, one per task type)")
    ap.add_argument("--quick", action="store_true", help="a side run: the trained heads and prompt lookup (greedy), "
                    "against transformers' generate and prompt lookup only (e.g. to compare dtypes)")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N questions (round-robin order): resume a run")
    ap.add_argument("--from-result", type=Path, nargs="+", default=None,
                    help="only rebuild the Markdown section from result.json files (an interrupted run and its resumption)")
    args = ap.parse_args(argv)
    command = "python benchmarks/bench_spec_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_result:
        result = merge_results([json.loads(path.read_text()) for path in args.from_result])
        section = catalogue_section(result)
        print(section)
        if args.write:
            write_section(args.write, args.section, section, title="The catalogue, measured")
        return result
    if not args.questions.exists():
        raise SystemExit(f"error: no Spec-Bench question file at {args.questions} (it lives in ../shared/data)")
    torch.set_num_threads(args.threads)
    questions = spec_bench_questions(args.questions, args.per_task)[args.skip:]
    target, tokenizer = load_model("smollm2", args.device, getattr(torch, args.dtype))
    distilled = build_drafter("distilled", target, tokenizer).model  # transformers runs it as assistant_model=
    hf_extra = {f"{HF_LOOKUP} (10 tokens)": {"prompt_lookup_num_tokens": 10}}
    early_exit = {f"transformers assistant_early_exit={HF_EARLY_EXIT_LAYERS}": {"assistant_early_exit": HF_EARLY_EXIT_LAYERS}}
    methods, hf_baselines = LOSSLESS_OURS, True
    if args.quick:
        methods = [m for m in LOSSLESS_OURS if m[1] == "greedy" and m[0] in ("eagle", "medusa", "distilled", "prompt-lookup")]
        hf_extra, distilled = {}, None
    elif args.lookup_only:
        methods, distilled = [("prompt-lookup", "greedy"), ("lookup+retrieval", "greedy")], None
        hf_extra = hf_extra if args.gamma != 10 else {}  # transformers' prompt lookup at γ, and at 10 (its best)
    elif args.training_free:
        methods, distilled = [(d, SAMPLED.get(v, v) if args.temperature > 0 else v) for d, v in TRAINING_FREE], None
        hf_extra = {} if args.gamma == 10 else hf_extra
    elif args.hf_early_exit_only:
        methods, hf_baselines, distilled, hf_extra = [("prompt-lookup", "greedy")], False, None, early_exit
    elif not args.no_hf_early_exit:
        hf_extra |= early_exit
    args.out.mkdir(parents=True, exist_ok=True)
    costs = verify_costs(target, args.device)
    print("forward cost t(k)/t(1):", json.dumps(costs), flush=True)
    sizing, drafter_options = {}, {}
    if args.training_free:
        calibration = spec_bench_questions(args.questions, args.per_task + 1)[len(TASKS) * args.per_task:][:args.calibrate]
        sizing = size_recycling(target, [chat_ids(tokenizer, q.prompt) for q in calibration], args.gamma, args.new_tokens)
        print("recycling sized for this machine:", json.dumps(sizing), flush=True)
        drafter_options = {name: {"tree": tuple(sizing["tree"]), "chain": len(sizing["chain"])}
                           for name in ("recycling", "suffix+recycling")}
    settings = BenchSettings(gamma=args.gamma, max_new_tokens=args.new_tokens, temperature=args.temperature,
                             repeats=args.repeats, hf_baselines=hf_baselines, hf_extra=hf_extra,
                             drafter_options=drafter_options,
                             header_extra={"command": command, "processor_flags": _cpu_flags(), "skip": args.skip,
                                           "verify_cost": costs, "tree_sizing": sizing})
    result = run_benchmark(target, tokenizer, questions, methods, settings=settings, hf_drafter=distilled,
                           prompt_ids=lambda text: chat_ids(tokenizer, text),
                           on_progress=lambda partial: write_report(partial, args.out))
    write_report(result, args.out)
    section = catalogue_section(result)
    print(section)
    if args.write:
        write_section(args.write, args.section, section, title="The catalogue, measured")
    return result


def size_recycling(target, prompts: list[list[int]], gamma: int, new_tokens: int) -> dict:
    """Recycling's tree and chain for this machine (Sequoia): acceptance by depth and rank a(d, r) counted on
    ``prompts`` with a wide tree (greedy, from a forgotten table), this process's t(k)/t(1) (bench/probe.verify_cost,
    probed once), and c = drafting seconds per level ÷ t(1); then tree_shape.best_for_hardware within depth γ."""
    from specdec_lab.bench.probe import verify_cost
    from specdec_lab.drafters.recycling import RecyclingDrafter
    from specdec_lab.verifiers.tree import TreeGreedy
    from specdec_lab.verifiers.tree_shape import acceptance_by_rank, best_for_hardware, rates, relative_cost, tree_nodes
    from specdec_lab import generate_speculative

    shape = CALIBRATION_TREE[:gamma]
    drafter = RecyclingDrafter(target, tree=shape)
    drafter.forget()
    runs = [generate_speculative(target, drafter, ids, gamma=gamma, max_new_tokens=new_tokens,
                                 verifier=TreeGreedy(branching=shape)) for ids in prompts]
    drafter.forget()  # the measured run starts cold, like every other method's state
    a = rates(acceptance_by_rank(runs))
    t_ratio = verify_cost(target)
    steps = [s for run in runs for s in run.steps if s.tree and s.tree["tokens"]]
    t1 = sorted(s.verify_time_s / relative_cost(t_ratio, len(s.tree["tokens"]) + 1) for s in steps)[len(steps) // 2]
    c = sum(s.draft_time_s for s in steps) / (len(steps) * len(shape) * t1)
    tree, tree_tau, tree_speed = best_for_hardware(a, t_ratio, c, max_depth=gamma)
    chain, chain_tau, chain_speed = best_for_hardware(a, t_ratio, c, max_depth=gamma, chain=True)
    return {"tree": list(tree), "nodes": tree_nodes(tree), "tree_tau": round(tree_tau, 3),
            "tree_predicted": round(tree_speed, 3), "chain": list(chain), "chain_tau": round(chain_tau, 3),
            "chain_predicted": round(chain_speed, 3), "c": round(c, 4), "t_ratio": {k: round(v, 3) for k, v in t_ratio.items()},
            "calibration_questions": len(prompts), "a": {f"{d},{r}": round(v, 3) for (d, r), v in a.items()}}


def verify_costs(target, device, ks=(1, 2, 4, 5, 8, 16)) -> dict:
    """Median seconds of one forward over k new tokens (128 cached), in the target's dtype and in fp32, and t(k)/t(1):
    the 'verifying k tokens costs about one forward' premise, measured on this machine."""
    from specdec_lab.bench.probe import forward_latency

    out = {}
    fp32 = target if target.dtype == torch.float32 else load_model("smollm2", device, torch.float32)[0]
    for name, model in ((str(target.dtype).replace("torch.", ""), target), ("float32", fp32)):
        times = forward_latency(model, ks, context=128)
        out[name] = {"ms": {k: round(1000 * t, 1) for k, t in times.items()},
                     "ratio": {k: round(t / times[1], 2) for k, t in times.items()}}
    return out


def _cpu_flags() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.processor()
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "none of avx2/avx512/amx"


def catalogue_section(result: dict) -> str:
    """The Markdown section of docs/catalogue.md for ``result``: settings, t(k), the goals' verdict and the tables."""
    h, g = result["header"], goals(result)
    sampling = f"T = {h['temperature']}" if h.get("temperature") else "greedy"
    cost = h.get("verify_cost", {})
    runs = h.get("verify_cost_runs") or [cost]  # a merged result: each run's own t(k)
    cost_lines = [f"| {dtype}{f', run {i}' if len(runs) > 1 else ''} | " +
                  " | ".join(f"{v['ms'][k]:.1f} ms ({v['ratio'][k]:.2f}×)" for k in v["ms"]) + " |"
                  for i, run in enumerate(runs, 1) for dtype, v in run.items()]
    ks = list(next(iter(cost.values()))["ms"]) if cost else []
    partial = "" if result.get("complete", True) else f"**PARTIAL**: {result['questions_done']} of {h['questions']} questions. "
    side_run = side_run_title(h, result["methods"])
    title = (f"Side run on SmolLM2-135M-Instruct in {h.get('dtype')}: {side_run}" if side_run
             else f"On SmolLM2-135M-Instruct in {h.get('dtype')} (Spec-Bench's six task types)")
    verdict = (f"A side run of the few methods below, not a judgement of the goals (the full run is that). "
               f"Here {g['best']} ran at {g['speedup']:.2f}× and {g['best_hf']} at {g['hf_speedup']:.2f}× our "
               f"autoregressive loop: the first {g['over_hf']:.2f}× the second." if side_run else
               f"Best lossless drafter: **{g['best']}**, {g['speedup']:.2f}× over our autoregressive loop "
               f"(goal ≥ {GOAL_OVER_AR}×), {g['over_hf']:.2f}× the best transformers method ({g['best_hf']}, "
               f"{g['hf_speedup']:.2f}×; goal ≥ {GOAL_OVER_TRANSFORMERS}×), worst task {g['worst_task']} at "
               f"{g['worst_speedup']:.2f}× (goal > {GOAL_WORST_TASK}×). "
               f"Its α = {g['alpha']:.2f}, τ = {g['tau']:.2f}, c = {g['c']:.3f}, v = {g['v']:.2f}: each step costs "
               f"γc + v = {step_cost(h['gamma'], g['c'], g['v']):.2f} forwards and yields τ tokens.")
    return "\n".join([
        f"## {title}", "",
        f"`{h.get('command', 'python benchmarks/bench_spec_bench.py')}`", "",
        f"{partial}{h['questions']} questions ({', '.join(h['tasks'])}; multi-turn = one per MT-bench category), first turn "
        f"through the chat template, {h['max_new_tokens']} new tokens, {sampling}, {h.get('dtype')}, {h['threads']} threads, "
        f"γ = {h['gamma']}, {h.get('repeats', 1)} repeat(s); {h['processor']} ({h.get('processor_flags', '')}), torch {h['torch']}, "
        f"transformers {h['transformers']}. Speedup: mean tokens/s ÷ that of our autoregressive loop on the same questions.",
        "", "**Why the goals are hard here: the cost of a forward over k tokens, t(k), measured on the machine that ran "
        "this** "
        "(128 cached tokens, median of 7):", "",
        "| dtype | " + " | ".join(f"k = {k}" for k in ks) + " |", "|---|" + "---|" * len(ks), *cost_lines, "",
        verdict, "", *sizing_lines(h.get("tree_sizing")), summary_markdown(result), "",
        "α = accepted ÷ checked drafts; α by position: α at draft positions 1..γ, each conditional (accepted ÷ checked "
        "there, a position being checked only when every draft before it was accepted); τ = tokens per target forward "
        "(the target's own token counted); c = cost of one drafted token and v = cost of the "
        "verification forward, both in autoregressive forwards, measured; predicted = τ-formula (1 − α^(γ+1)) / ((1 − α)(γc + v)).",
    ])


def sizing_lines(sizing: dict | None) -> list[str]:
    """The tree and chain recycling ran with, chosen for the machine (none: an empty list)."""
    if not sizing:
        return []
    return [f"Recycling's tree, sized for this machine (Sequoia: max G / (t(N + 1)/t(1) + D·c) from a(d, r) on "
            f"{sizing['calibration_questions']} calibration questions outside the run, c = {sizing['c']:.3f}): branching "
            f"{tuple(sizing['tree'])} ({sizing['nodes']} nodes, predicted τ {sizing['tree_tau']:.2f}, speedup "
            f"{sizing['tree_predicted']:.2f}×); chain of {len(sizing['chain'])} (predicted τ {sizing['chain_tau']:.2f}, "
            f"speedup {sizing['chain_predicted']:.2f}×).", ""]


def side_run_title(header: dict, methods: list[str] = ()) -> str | None:
    """What a side run measured (from the flags of its command), or None for the full run."""
    command = header.get("command", "")
    if "--hf-early-exit-only" in command:
        return "transformers' assistant_early_exit"
    if "--training-free" in command:
        return "training-free drafters (issue 37) beside transformers' prompt lookup"
    if "--lookup-only" in command:
        cascade = " (and lookup+retrieval)" if any(m.startswith("lookup+retrieval") for m in methods) else ""
        return f"prompt lookup{cascade} drafting γ = {header['gamma']}, ours against transformers'"
    return None


def summary_markdown(result: dict) -> str:
    """The overall table and a speedup-by-task table, as in docs/catalogue.md."""
    rows = result["summary"]
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    methods = result["methods"]
    get = {(r["task"], r["method"]): r for r in rows}
    lines = ["| method | α | α by position | τ | c | v | predicted | speedup | output = our AR's |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        r = get.get(("all", m))
        if r is None:
            continue
        f = lambda k: f"{r[k]:.2f}" if isinstance(r.get(k), float) and r[k] == r[k] else "–"  # noqa: E731
        by_position = " / ".join("–" if a is None else f"{a:.2f}" for a in r.get("per_position") or []) or "–"
        same = f"{r['identical_share']:.0%} of {r['compared']}" if "identical_share" in r else "–"
        lines.append(f"| {m} | {f('alpha')} | {by_position} | {f('tau')} | {f('c')} | {f('v')} | {f('predicted_v')} | "
                     f"{r['speedup']:.2f}× | {same} |")
    lines += ["", "| method | " + " | ".join(tasks) + " | overall |", "|---|" + "---|" * (len(tasks) + 1)]
    for m in methods:
        cells = [get.get((t, m)) for t in tasks + ["all"]]
        lines.append(f"| {m} | " + " | ".join(f"{c['speedup']:.2f}×" if c else "–" for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
