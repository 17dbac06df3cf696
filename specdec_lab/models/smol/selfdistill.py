"""SmolLM2's own greedy answers to ``prompts.json``: the retrieval (REST) datastore, and the first drafters' data.

The drafters are now trained on ShareGPT (``sharegpt.py``, ``train.py``); these answers remain the datastore that the
``retrieval`` drafter searches (``weights/retrieval_answers.json.gz``: the answers of the first 90% of sequences,
written by ``write_datastore``).

    python -m specdec_lab.models.smol.selfdistill --out ~/.cache/specdec_lab/smol-data

Each ``--every``-th prompt of ``prompts.json`` goes through the chat template and SmolLM2 answers it greedily (fp32;
up to 128 new tokens, length-sorted left-padded batches: ``train.regenerate``) into ``answers.jsonl`` (resumable).
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_model("smollm2", "cpu", torch.float32)
    prompts = [p["text"] for p in json.loads(PROMPTS.read_text())][:: args.every]
    answer(model, tokenizer, prompts, args.out / "answers.jsonl", args.batch)
    write_datastore(args.out / "answers.jsonl", DATASTORE)


if __name__ == "__main__":
    main()
