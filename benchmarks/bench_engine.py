"""ms/token of the autoregressive baseline, generate_speculative and transformers, side by side in one run.

    python benchmarks/bench_engine.py                       # a synthetic pair (random, nearly agreeing models)
    python benchmarks/bench_engine.py --target DIR_OR_NAME --drafter DIR_OR_NAME --gamma 4

Every method decodes the same prompts to the same length (greedy, no EOS); the
methods are interleaved over repeats so machine noise hits them alike; the
median per method is reported, with its ratio to our autoregressive baseline.
Figures, not assertions: tests never check wall-clock times.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import transformers

from specdec_lab import generate_autoregressive, generate_speculative

from pairs import synthetic_pair


def load_pair(args):
    if args.target is None:
        return synthetic_pair(nudge=args.nudge)
    from transformers import AutoModelForCausalLM

    target = AutoModelForCausalLM.from_pretrained(args.target).eval()
    drafter = AutoModelForCausalLM.from_pretrained(args.drafter).eval()
    return target, drafter


def timed(fn) -> float:
    start = time.perf_counter()
    n_tokens = fn()
    return (time.perf_counter() - start) * 1000 / n_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target")
    ap.add_argument("--drafter")
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nudge", type=float, default=0.03, help="synthetic pair: how far the target's extra layers move it")
    args = ap.parse_args()
    torch.manual_seed(0)
    target, drafter = load_pair(args)
    vocab = target.config.vocab_size
    prompts = [torch.randint(0, vocab, (8,), generator=torch.Generator().manual_seed(i)).tolist() for i in range(args.prompts)]
    n, gamma = args.new_tokens, args.gamma
    drafter.generation_config.num_assistant_tokens = gamma
    drafter.generation_config.num_assistant_tokens_schedule = "constant"

    def hf(prompt, **kw):
        ids = torch.tensor([prompt])
        with torch.inference_mode():
            out = target.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                min_new_tokens=n, pad_token_id=0, **kw,
            )
        return out.shape[1] - ids.shape[1]

    methods = {
        "autoregressive (ours)": lambda p: len(generate_autoregressive(target, p, max_new_tokens=n, min_new_tokens=n).token_ids),
        "transformers generate": lambda p: hf(p),
        f"speculative γ={gamma} (ours)": lambda p: len(
            generate_speculative(target, drafter, p, gamma=gamma, max_new_tokens=n, min_new_tokens=n).token_ids
        ),
        f"transformers assisted γ={gamma}": lambda p: hf(p, assistant_model=drafter),
    }
    for fn in methods.values():  # warm-up
        fn(prompts[0])
    times = {name: [] for name in methods}
    for _ in range(args.repeats):
        for prompt in prompts:
            for name, fn in methods.items():
                times[name].append(timed(lambda: fn(prompt)))

    spec = generate_speculative(target, drafter, prompts[0], gamma=gamma, max_new_tokens=n, min_new_tokens=n)
    print(f"# engine benchmark: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"# target {sum(p.numel() for p in target.parameters()) / 1e6:.1f} M params, "
          f"drafter {sum(p.numel() for p in drafter.parameters()) / 1e6:.1f} M; {n} new tokens, greedy, "
          f"{args.prompts} prompts x {args.repeats} repeats; draft yield (accepted ÷ drafted) {spec.stats.draft_yield:.2f}, "
          f"tokens/step {spec.stats.mean_tokens_per_step:.2f}")
    base = statistics.median(times["autoregressive (ours)"])
    print(f"{'method':34s} {'ms/token':>9s} {'speedup vs AR':>14s}")
    for name, ts in times.items():
        ms = statistics.median(ts)
        print(f"{name:34s} {ms:9.2f} {base / ms:13.2f}x")


if __name__ == "__main__":
    main()
