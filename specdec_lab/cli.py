"""The ``specdec-lab`` command: ``specdec-lab demo`` runs the bundled pair and prints every step;
``specdec-lab bench`` runs the benchmark.

Every argument is checked before any model loads; a bad one prints ``error: <message>`` on stderr and exits
with 2. Text from the prompt, the model's output or a question file never reaches a terminal raw: when the
output is a terminal (or colour is forced with ``--color always``) control characters are shown as glyphs
(``viz.text.escape_controls``: ESC as ␛, BEL as ␇, a C1 byte such as U+009B as ``\\x9b``), so a prompt
holding an escape sequence cannot retitle, recolour or rewrite the terminal. The CLI's own colour codes are
added after that, around the escaped text.
"""

from __future__ import annotations

import argparse
import os
import sys

from .core.checks import check_device, check_gamma, check_int, check_seed
from .core.text_checks import check_text
from .decode import generate_autoregressive, generate_speculative
from .drafters import ModelDrafter
from .models.loading import load_model, load_pair
from .core.sampling import SamplingConfig
from .lab.viz.text import escape_controls, render_trace

DEFAULT_PROMPT = "ROMEO:\nBut soft, what light"
ZOO_ONLY = ("medusa", "eagle", "distilled+heuristic-γ")  # drafters tied to the bundled target


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _safe(text: str, stream=None, force: bool = False) -> str:
    """``text`` with its control characters made visible when it goes to a terminal (or ``force``)."""
    return escape_controls(text) if force or _terminal(stream or sys.stdout) else text


def check_demo_args(args):
    """Every demo argument, before any model loads; returns the torch.device to use."""
    if not isinstance(args.prompt, str) or not args.prompt.strip():
        raise ValueError("the prompt is empty or only whitespace: give some text to continue")
    check_text(args.prompt, "the prompt")  # invalid UTF-8 in argv arrives as lone surrogates (surrogateescape)
    device = check_device(args.device)
    check_gamma(args.gamma)
    check_int("--max-new-tokens", args.max_new_tokens, 1)
    SamplingConfig(temperature=args.temperature, top_p=args.top_p)  # the engine's own checks of T and top-p
    check_seed(args.seed)
    return device


def demo(args) -> int:
    device = check_demo_args(args)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep the demo's output to the steps themselves
    target, drafter_model, tokenizer = load_pair(args.target, args.drafter, device=device)
    ids = tokenizer(args.prompt)["input_ids"]
    drafter = ModelDrafter(drafter_model, name=args.drafter)
    out = generate_speculative(
        target, drafter, ids, gamma=args.gamma, max_new_tokens=args.max_new_tokens,
        temperature=args.temperature, top_p=args.top_p, seed=args.seed,
    )
    color = args.color == "always" or (args.color == "auto" and _terminal(sys.stdout) and "NO_COLOR" not in os.environ)
    terminal = color or _terminal(sys.stdout)  # colour codes are for a terminal: escape the text's own either way

    def decode(ids_) -> str:  # the prompt's and the model's text, escaped before render_trace colours it
        return _safe(tokenizer.decode(ids_, clean_up_tokenization_spaces=False), force=terminal)

    print(render_trace(out, decode, color))
    if args.compare:
        base = generate_autoregressive(target, ids, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                       top_p=args.top_p, seed=args.seed)
        print(f"autoregressive baseline: {base.stats.ms_per_token:.1f} ms/token; "
              f"speculative: {out.stats.ms_per_token:.1f} ms/token "
              f"(speedup {base.stats.ms_per_token / out.stats.ms_per_token:.2f}x on this machine)")
    return 0


def task_names(tasks: str | None) -> list[str] | None:
    """The task names of ``--tasks`` (comma-separated), None when it is not given (every task of the file)."""
    if tasks is None:
        return None
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise ValueError(f"--tasks {tasks!r} names no task: give comma-separated task names (e.g. --tasks copy,code), "
                         "or leave --tasks out to run every task of the question file")
    return names


def bench(args) -> int:
    from .bench import check_out_folder, parse_methods, read_questions
    from .bench.runner import check_settings

    # everything the run needs, checked before any model loads or any forward runs
    check_int("--new-tokens", args.new_tokens, 1)
    check_settings(args.gamma, args.new_tokens, args.temperature, args.seed)
    device = check_device(args.device)
    methods = parse_methods(args.methods)
    zoo_target = args.target.startswith("zoo:")
    if not zoo_target:
        if args.methods.strip() in ("default", "all"):  # heads trained for the zoo target only
            methods = [m for m in methods if m[0] not in ZOO_ONLY]
        elif any(d in ZOO_ONLY for d, _ in methods):
            raise ValueError(f"the drafters {', '.join(ZOO_ONLY)} are trained for the bundled target (zoo:target) only; "
                             f"with --target {args.target} pick others")
    out_folder = check_out_folder(args.out)
    questions = read_questions(args.questions, per_task=args.prompts_per_task, tasks=task_names(args.tasks))

    from .bench import run_benchmark, write_report
    from .bench.runner import forward_probe

    target, tokenizer = load_model(args.target, device)
    options = {}
    if not zoo_target:  # model drafters default to the zoo's; another target needs its own
        options = {d: {"model": args.drafter_model} for d in ("small-model", "distilled", "distilled+confidence")}
    hf_drafter = None if args.no_hf else load_model(args.drafter_model, target.device)[0]
    saved = []  # the questions done, as last written

    def save(partial: dict) -> None:
        write_report(partial, out_folder)
        saved[:] = [partial["questions_done"]]

    try:
        result = run_benchmark(target, tokenizer, questions, methods, gamma=args.gamma, max_new_tokens=args.new_tokens,
                               temperature=args.temperature, seed=args.seed, hf_drafter=hf_drafter,
                               hf_baselines=not args.no_hf, drafter_options=options, on_progress=save)
    except BaseException as err:
        kept = (f"the {saved[0]} of {len(questions)} prompts measured so far are in {out_folder / 'result.json'} "
                "(marked partial)") if saved else "no prompt was finished, so nothing was written"
        if isinstance(err, KeyboardInterrupt):
            print(_safe(f"interrupted: {kept}", sys.stderr), file=sys.stderr)
            return 130
        if getattr(err, "__notes__", None):  # failed while running a question (not in the up-front checks)
            err.add_note(kept)
        raise
    if not args.no_probe:
        result["probe"] = forward_probe(target)
    paths = write_report(result, out_folder)
    for row in result["summary"]:
        if row["task"] == "all":
            print(f"{row['method']:42s} {row['speedup']:.2f}x  {row['tokens_per_s']:.1f} tokens/s")
    print(_safe("report: " + ", ".join(str(p) for p in paths.values())))
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
        message = "; ".join([str(err), *getattr(err, "__notes__", [])])  # notes: which question failed, what was kept
        print(_safe(f"error: {message}", sys.stderr), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
