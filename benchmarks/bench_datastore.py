"""Which datastore makes retrieval pay on SmolLM2: the target's own answers, or more human-written text?

    python benchmarks/bench_datastore.py [--per-task 2] [--out benchmarks/measured/datastore_smollm2.json]

On Spec-Bench questions (greedy, γ 4, 128 new tokens, bf16), side by side with our autoregressive loop on each
question: prompt lookup alone, and ``lookup+retrieval`` (prompt lookup, then REST where it finds no match) with

  own         the shipped datastore: SmolLM2's own greedy answers (``weights/retrieval_answers.json.gz``,
              ``python -m specdec_lab.models.smol.selfdistill --sharegpt 2500 --dtype bfloat16 --batch 32``);
  sharegpt    ShareGPT's answers (ChatGPT's text, from ``sharegpt.py``'s training shards), as many tokens as ``own``;
  sharegpt×4  four times as many.

Reported per datastore: τ (tokens per target forward, the bonus token counted), the share of steps that drafted
nothing, and the speedup over our loop (ratio of summed times). If ``own`` beats ``sharegpt`` at equal size, what
retrieval needs is the target's phrasing, not more text.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_spec_bench import QUESTIONS, spec_bench_questions  # noqa: E402
from specdec_lab.models.loading import load_model  # noqa: E402
from specdec_lab.models.smol.sharegpt import default_dir, load_split  # noqa: E402
from specdec_lab.models.trained import retrieval_datastore  # noqa: E402
from specdec_lab.registry import build_drafter  # noqa: E402
from smol_bench import measure_and_store, side_by_side  # noqa: E402

GAMMA = 4


def sharegpt_answers(tokens: int, folder: Path) -> list[list[int]]:
    """ShareGPT's answer spans (training split), in file order, until ``tokens`` answer tokens."""
    docs, total = [], 0
    for ids, answer in load_split(folder, "train"):
        edges = torch.diff(torch.tensor([0, *answer.astype(int), 0])).nonzero().flatten().tolist()
        for begin, end in zip(edges[::2], edges[1::2]):
            docs.append(ids[begin:end].tolist())
            total += end - begin
            if total >= tokens:
                return docs
    raise SystemExit(f"only {total} ShareGPT answer tokens in {folder}: run python -m specdec_lab.models.smol.sharegpt")


def measure(per_task: int, threads: int, shards: Path) -> dict:
    torch.set_num_threads(threads)
    questions = spec_bench_questions(QUESTIONS, per_task)
    target, tokenizer = load_model("smollm2", None, torch.bfloat16)
    own = retrieval_datastore()
    size = sum(map(len, own))
    drafters = {"prompt lookup alone": build_drafter("prompt-lookup", target, tokenizer),
                "own": build_drafter("lookup+retrieval", target, tokenizer, datastore_ids=own),
                "sharegpt": build_drafter("lookup+retrieval", target, tokenizer, datastore_ids=sharegpt_answers(size, shards)),
                "sharegpt×4": build_drafter("lookup+retrieval", target, tokenizer,
                                            datastore_ids=sharegpt_answers(4 * size, shards))}
    result = side_by_side(target, tokenizer, questions, {n: (d, GAMMA, None) for n, d in drafters.items()})
    return {"gamma": GAMMA, "own_datastore_tokens": size, **result}


def main(argv=None) -> dict:
    shards = {"--shards": dict(type=Path, default=default_dir(), help="sharegpt.py's shards")}
    return measure_and_store(__doc__, HERE / "measured" / "datastore_smollm2.json", measure, argv, shards)


if __name__ == "__main__":
    main()
