"""The draft vocabulary's trade: EAGLE's cost c against its held-out coverage, for K of SmolLM2's 49,152 tokens.

    python benchmarks/bench_draft_vocab.py [--threads 2] [--write benchmarks/measured/draft_vocab_smollm2.json] \
        [--catalogue docs/catalogue.md]

c(K) = median time of one EAGLE draft step (the head's one layer with its KV cache + the output rows of the K most
frequent tokens + argmax) / median time of one target forward over one token (128 cached), both bf16, on this
machine. Coverage(K) = the share of held-out greedy tokens inside the K most frequent (from the eagle card, measured
by the trainer). A token outside V' can never be drafted, so α ≤ coverage; four drafts cost 4·c target forwards.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from specdec_lab.bench.report import write_section  # noqa: E402
from specdec_lab.drafters.draft_vocab import DraftVocabHead  # noqa: E402
from specdec_lab.drafters.eagle_head import EagleHead  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.models.trained import SMOL_WEIGHTS, card, ranked_vocab  # noqa: E402


def median_ms(step, n: int = 40) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[n // 2] * 1000


@torch.no_grad()
def measure(threads: int) -> dict:
    from transformers import DynamicCache

    torch.set_num_threads(threads)
    target, _ = load_model("smollm2", "cpu", torch.bfloat16)
    head = EagleHead.load(SMOL_WEIGHTS / "eagle").to(torch.bfloat16)
    ranked = ranked_vocab()
    coverage = card(SMOL_WEIGHTS / "eagle")["coverage_by_k"]
    ids = torch.randint(0, target.config.vocab_size, (1, 128), generator=torch.Generator().manual_seed(0))
    cache = DynamicCache(config=target.config)
    target(ids, past_key_values=cache)

    def target_step():
        target(ids[:, :1], past_key_values=cache)
        cache.crop(-1)

    t1 = median_ms(target_step)
    head_cache, f = head.new_cache(), torch.randn(1, 128, head.hidden, dtype=torch.bfloat16)
    head(f, f, cache=head_cache)
    rows = {}
    for k in [int(k) for k in coverage] + [target.config.vocab_size]:
        out = DraftVocabHead(target.get_output_embeddings(), ranked[:k] if k <= ranked.numel() else torch.arange(k))

        def draft_step():
            h = head(f[:, :1], f[:, :1], cache=head_cache)
            head_cache.crop(-1)
            out(h).argmax(-1)

        ms = median_ms(draft_step)
        rows[str(k)] = {"draft_ms": round(ms, 2), "c": round(ms / t1, 4), "coverage": coverage.get(str(k), 1.0)}
        print(f"K = {k:6d}: c = {ms / t1:.3f}, coverage {rows[str(k)]['coverage']:.4f}", flush=True)
    return {"machine": platform.platform(), "threads": threads, "torch": torch.__version__,
            "target_forward_ms": round(t1, 2), "chosen": card(SMOL_WEIGHTS / "eagle")["draft_vocab"], "by_k": rows}


def section(result: dict) -> str:
    """The catalogue's Markdown section: c against coverage, one row per K."""
    rows = ["## SmolLM2's draft vocabulary: EAGLE's cost c against its coverage", "",
            f"`python benchmarks/bench_draft_vocab.py` ({result['threads']} threads, bf16, one target forward "
            f"{result['target_forward_ms']:.1f} ms). Coverage: held-out greedy tokens inside the K most frequent (eagle's "
            f"card). Four drafts cost 4·c target forwards; α ≤ coverage. The drafters read K = {result['chosen']}.", "",
            "| K | draft step (ms) | c | coverage |", "|---|---|---|---|"]
    for k, row in result["by_k"].items():
        mark = " (chosen)" if int(k) == result["chosen"] else ""
        rows.append(f"| {k}{mark} | {row['draft_ms']:.2f} | {row['c']:.3f} | {row['coverage']:.1%} |")
    return "\n".join(rows)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", type=Path, default=None, help="the measurement as JSON")
    ap.add_argument("--catalogue", type=Path, default=None, help="also write the section draft-vocab of this file")
    ap.add_argument("--from-result", type=Path, default=None, help="only rebuild the section from a stored JSON")
    args = ap.parse_args(argv)
    result = json.loads(args.from_result.read_text()) if args.from_result else measure(args.threads)
    if args.write:
        args.write.write_text(json.dumps(result, indent=1) + "\n")
    if args.catalogue:
        write_section(args.catalogue, "draft-vocab", section(result))
    return result


if __name__ == "__main__":
    main()
