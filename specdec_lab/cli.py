"""The ``specdec-lab`` command: ``specdec-lab demo`` runs the bundled pair and prints every step."""

from __future__ import annotations

import argparse
import os
import sys

from .decode import generate_autoregressive, generate_speculative
from .drafters import ModelDrafter
from .loading import load_pair
from .viz.text import render_trace

DEFAULT_PROMPT = "ROMEO:\nBut soft, what light"
ZOO_ONLY = ("medusa", "eagle", "distilled+heuristic-γ")  # drafters tied to the bundled target


def demo(args) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep the demo's output to the steps themselves
    if not args.prompt.strip():
        raise ValueError("the prompt is empty or only whitespace: give some text to continue")
    target, drafter_model, tokenizer = load_pair(args.target, args.drafter, device=args.device)
    ids = tokenizer(args.prompt)["input_ids"]
    drafter = ModelDrafter(drafter_model, name=args.drafter)
    out = generate_speculative(
        target, drafter, ids, gamma=args.gamma, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, top_p=args.top_p, seed=args.seed,
    )
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    decode = lambda ids_: tokenizer.decode(ids_, clean_up_tokenization_spaces=False)  # noqa: E731
    print(render_trace(out, decode, color))
    if args.compare:
        base = generate_autoregressive(target, ids, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                       top_p=args.top_p, seed=args.seed)
        print(f"autoregressive baseline: {base.stats.ms_per_token:.1f} ms/token; "
              f"speculative: {out.stats.ms_per_token:.1f} ms/token "
              f"(speedup {base.stats.ms_per_token / out.stats.ms_per_token:.2f}x on this machine)")
    return 0


def bench(args) -> int:
    from .bench import all_methods, default_methods, read_questions, run_benchmark, write_report
    from .bench.runner import forward_probe
    from .loading import load_model

    if args.new_tokens < 1:
        raise ValueError(f"--new-tokens must be >= 1, got {args.new_tokens}")
    questions = read_questions(args.questions, per_task=args.prompts_per_task,
                               tasks=args.tasks.split(",") if args.tasks else None)
    target, tokenizer = load_model(args.target, args.device)
    if args.methods == "default":
        methods = default_methods()
    elif args.methods == "all":
        methods = all_methods()
    else:
        methods = [tuple(part.split("+", 1)) for part in args.methods.split(",")]
        if any(len(m) != 2 for m in methods):
            raise ValueError("--methods takes 'default', 'all' or DRAFTER+VERIFIER,... (e.g. distilled+greedy,prompt-lookup+greedy)")
    options = {}
    if not args.target.startswith("zoo:"):  # model drafters default to the zoo's; another target needs its own
        options = {d: {"model": args.drafter_model} for d in ("small-model", "distilled", "distilled+confidence")}
        if args.methods in ("default", "all"):  # heads trained for the zoo target only
            methods = [m for m in methods if m[0] not in ZOO_ONLY]
    hf_drafter = None if args.no_hf else load_model(args.drafter_model, target.device)[0]
    result = run_benchmark(target, tokenizer, questions, methods, gamma=args.gamma, max_new_tokens=args.new_tokens,
                           temperature=args.temperature, seed=args.seed, hf_drafter=hf_drafter, hf_baselines=not args.no_hf,
                           drafter_options=options)
    if not args.no_probe:
        result["probe"] = forward_probe(target)
    paths = write_report(result, args.out)
    for row in result["summary"]:
        if row["task"] == "all":
            print(f"{row['method']:42s} {row['speedup']:.2f}x  {row['tokens_per_s']:.1f} tokens/s")
    print("report: " + ", ".join(str(p) for p in paths.values()))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="specdec-lab", description="speculative decoding, step by step")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run a target/drafter pair on a prompt and print every draft-then-verify step")
    d.add_argument("--prompt", default=DEFAULT_PROMPT)
    d.add_argument("--target", default="zoo:target", help="zoo:NAME, a model folder, or a hub name")
    d.add_argument("--drafter", default="zoo:drafter-distilled")
    d.add_argument("--gamma", type=int, default=4)
    d.add_argument("--max-new-tokens", type=int, default=48)
    d.add_argument("--temperature", type=float, default=0.0)
    d.add_argument("--top-p", type=float, default=None)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    d.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    d.add_argument("--compare", action="store_true", help="also time the autoregressive baseline")
    b = sub.add_parser("bench", help="benchmark drafters x verifiers against the autoregressive baseline and transformers")
    b.add_argument("--questions", default=None, help="a question.jsonl file (Spec-Bench format; default: the bundled mini benchmark)")
    b.add_argument("--tasks", default=None, help="comma-separated tasks to run (default: all in the file)")
    b.add_argument("--prompts-per-task", type=int, default=5)
    b.add_argument("--methods", default="default", help="'default', 'all', or DRAFTER+VERIFIER,...")
    b.add_argument("--target", default="zoo:target")
    b.add_argument("--drafter-model", default="zoo:drafter-small", help="the drafter model for model drafters and transformers' assisted generation")
    b.add_argument("--gamma", type=int, default=4)
    b.add_argument("--new-tokens", type=int, default=128)
    b.add_argument("--temperature", type=float, default=0.0)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default=None)
    b.add_argument("--no-hf", action="store_true", help="skip transformers' generate / assisted / prompt lookup")
    b.add_argument("--no-probe", action="store_true", help="skip the forward-latency probe")
    b.add_argument("--out", default="bench-report", help="folder for result.json, report.md, report.html")
    args = ap.parse_args(argv)
    try:
        if args.command == "bench":
            from .bench import MINIBENCH

            args.questions = args.questions or MINIBENCH
            return bench(args)
        return demo(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
