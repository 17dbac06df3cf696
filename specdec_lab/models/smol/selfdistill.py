"""SmolLM2's own greedy answers: the retrieval (REST) datastore, and the first drafters' data.

The drafters are now trained on ShareGPT (``sharegpt.py``, ``train.py``); these answers remain the datastore that the
``retrieval`` drafter searches (``weights/retrieval_answers.json.gz``: the answers of the first 90% of sequences,
written by ``write_datastore``).

    python -m specdec_lab.models.smol.selfdistill --sharegpt 2500 --dtype bfloat16 --batch 32

Each ``--every``-th prompt of ``prompts.json``, then (``--sharegpt N``) the opening questions of N ShareGPT chats
(training split, decontaminated against Spec-Bench: ``sharegpt.py``), goes through the chat template and SmolLM2
answers it greedily (up to 128 new tokens, length-sorted left-padded batches: ``train.regenerate``) into
``answers.jsonl`` (resumable). The shipped datastore is that command's (bf16, batches of 32; 26 min on 2 cores):
2,593 answers, 289 k tokens, 0.3 MB.

The datastore must be the target's own text (``benchmarks/bench_datastore.py`` ->
``benchmarks/measured/datastore_smollm2.json``: 12 Spec-Bench questions, γ 4, bf16, prompt lookup falling back to
retrieval): SmolLM2's own answers gave 1.98 tokens per target forward (1.73× our loop), ShareGPT's answers of the
same size 1.79 (1.60×) and four times that size 1.79 (1.57×); prompt lookup alone 1.66 (1.53×).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..loading import load_model
from ..smollm2 import cache_root, chat_ids
from ..trained import DATASTORE
from .prompts import PROMPTS
from .train import regenerate

MAX_NEW = 128


def default_dir() -> Path:
    return cache_root() / "smol-data"


@torch.inference_mode()
def answer(model, tokenizer, prompts: list[str], out: Path, batch: int = 16) -> None:
    """Append SmolLM2's greedy answer to every prompt not yet in ``out`` (answers.jsonl), a batch at a time."""
    done = {json.loads(line)["prompt"] for line in out.open()} if out.exists() else set()
    todo = sorted((p for p in prompts if p not in done), key=lambda p: len(chat_ids(tokenizer, p)))
    start = time.time()
    for b in range(0, len(todo), batch):
        chunk = todo[b:b + batch]
        ids = [np.asarray(chat_ids(tokenizer, p), dtype=np.int64) for p in chunk]
        rows = regenerate(model, ids, tokenizer.eos_token_id, MAX_NEW, batch, float("inf"))
        with out.open("a") as f:
            for p, r, (seq, _) in zip(chunk, ids, rows):
                f.write(json.dumps({"prompt": p, "prompt_ids": r.tolist(), "answer_ids": seq[len(r):].tolist()}) + "\n")
        print(f"answers {b + len(chunk)}/{len(todo)}  {time.time() - start:.0f} s", flush=True)


def sharegpt_questions(count: int, max_chars: int = 1000) -> list[str]:
    """The opening questions of the first ``count`` ShareGPT chats of the training split (a chat's first part only,
    not held out, not contaminated by Spec-Bench), each at most ``max_chars`` long and mostly ASCII (SmolLM2 answers
    English), without repeats, in file order."""
    from .sharegpt import SPEC_BENCH, chat_base_id, contaminated, conversations, held_out, spec_bench_keys, turns

    keys, found = spec_bench_keys(SPEC_BENCH), {}  # a dict: unique, and in the order found
    for record in conversations():
        if len(found) >= count:
            break
        base = chat_base_id(record)
        if str(record.get("id", "")) not in (base, f"{base}_0"):
            continue  # a later part of a long chat: its first turn is not an opening
        chat = turns(record)
        if not chat or len(chat[0]["content"]) > max_chars or held_out(record) or contaminated(record, keys):
            continue
        question = chat[0]["content"]
        if sum(c.isascii() for c in question) >= 0.95 * len(question):
            found[question] = None
    return list(found)


def write_datastore(answers: Path, out: Path, heldout: float = 0.1) -> Path:
    """The REST datastore: the answer token ids of the first (1 − heldout) of ``answers.jsonl``, gzipped JSON."""
    import gzip

    rows = [json.loads(line)["answer_ids"] for line in answers.open()]
    keep = rows[: len(rows) - max(1, int(len(rows) * heldout))]
    out.write_bytes(gzip.compress(json.dumps(keep, separators=(",", ":")).encode(), mtime=0))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--every", type=int, default=2, help="use every k-th prompt (the file is shuffled)")
    parser.add_argument("--sharegpt", type=int, default=0, help="also answer the opening questions of N ShareGPT chats")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_model("smollm2", "cpu", getattr(torch, args.dtype))
    prompts = [p["text"] for p in json.loads(PROMPTS.read_text())][:: args.every]
    if args.sharegpt:
        known = set(prompts)
        prompts += [q for q in sharegpt_questions(args.sharegpt) if q not in known]
    answer(model, tokenizer, prompts, args.out / "answers.jsonl", args.batch)
    write_datastore(args.out / "answers.jsonl", DATASTORE)


if __name__ == "__main__":
    main()
