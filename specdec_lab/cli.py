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


def demo(args) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep the demo's output to the steps themselves
    target, drafter_model, tokenizer = load_pair(args.target, args.drafter, device=args.device)
    if not args.prompt.strip():
        raise SystemExit("error: the prompt is empty or only whitespace")
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
    args = ap.parse_args(argv)
    try:
        return demo(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
