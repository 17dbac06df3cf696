"""SmolLM2's own greedy answers to ``prompts.json``: the retrieval (REST) datastore, and the first drafters' data.

The drafters are now trained on ShareGPT (``sharegpt.py``, ``train.py``); these answers remain the datastore that the
``retrieval`` drafter searches (``weights/retrieval_answers.json.gz``: the answers of the first 90% of sequences,
written by ``write_datastore``).

    python -m specdec_lab.models.smol.selfdistill --out ~/.cache/specdec_lab/smol-data

Step 1 (answers.jsonl): each ``--every``-th prompt of ``prompts.json`` goes through the chat template and
SmolLM2 answers it greedily (in fp32: on a CPU without bf16 instructions batched bf16 is 1.5-5x slower; the answers
are the same model's, whose bf16 greedy output differs only by rounding), up to 128 new tokens, in length-sorted batches (left-padded). Resumable.
Step 2 (features.pt): one forward over every prompt + answer keeps, per token t,
  - ``final``: the target's final hidden state f_t (after its final norm: what EAGLE and Medusa read),
  - ``mid``:   the output of layer ``MID_LAYER`` (what the early-exit adapter reads),
  - ``top_ids`` / ``top_p``: the target's 8 most likely next tokens and their probabilities
    (p_{t+1} restricted to its top 8: full rows for every token would take ~100 KB each).
Everything is bf16 / int32; ~1.2 KB per token and feature.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..loading import load_model
from ..smollm2 import cache_root, chat_ids
from ..trained import DATASTORE
from .prompts import PROMPTS

MID_LAYER = 4  # early exit reads the output of the target's first 4 layers (of 30)
TOP = 8
MAX_NEW = 128


def default_dir() -> Path:
    return cache_root() / "smol-data"


@torch.inference_mode()
def answer(model, tokenizer, prompts: list[str], out: Path, batch: int = 16) -> None:
    done = {json.loads(line)["prompt"] for line in out.open()} if out.exists() else set()
    todo = sorted((p for p in prompts if p not in done), key=lambda p: len(chat_ids(tokenizer, p)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    start = time.time()
    for b in range(0, len(todo), batch):
        chunk = todo[b:b + batch]
        rows = [chat_ids(tokenizer, p) for p in chunk]
        width = max(map(len, rows))
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                             pad_token_id=pad)[:, width:]
        with out.open("a") as f:
            for p, r, g in zip(chunk, rows, gen.tolist()):
                ans = []
                for t in g:
                    ans.append(t)
                    if t == tokenizer.eos_token_id:
                        break
                f.write(json.dumps({"prompt": p, "prompt_ids": r, "answer_ids": ans}) + "\n")
        print(f"answers {b + len(chunk)}/{len(todo)}  {time.time() - start:.0f} s", flush=True)


@torch.inference_mode()
def features(model, answers: Path, out: Path) -> None:
    rows = [json.loads(line) for line in answers.open()]
    captured = {}
    hook = model.model.layers[MID_LAYER - 1].register_forward_hook(
        lambda mod, inp, output: captured.__setitem__("mid", output[0] if isinstance(output, tuple) else output))
    ids, starts, prompt_lens, final, mid, top_ids, top_p = [], [], [], [], [], [], []
    start, n = time.time(), 0
    for i, row in enumerate(rows):
        seq = torch.tensor(row["prompt_ids"] + row["answer_ids"])
        hidden = model.model(input_ids=seq[None]).last_hidden_state[0]  # (L, d) after the final norm
        probs = model.lm_head(hidden).float().softmax(-1)  # (L, V)
        top = probs.topk(TOP, dim=-1)
        ids.append(seq)
        starts.append(n)
        prompt_lens.append(len(row["prompt_ids"]))
        final.append(hidden.bfloat16())
        mid.append(captured["mid"][0].bfloat16())
        top_ids.append(top.indices.int())
        top_p.append(top.values.half())
        n += len(seq)
        if i % 50 == 0:
            print(f"features {i}/{len(rows)}  {n} tokens  {time.time() - start:.0f} s", flush=True)
    hook.remove()
    torch.save({"ids": torch.cat(ids), "starts": torch.tensor(starts), "prompt_lens": torch.tensor(prompt_lens),
                "final": torch.cat(final), "mid": torch.cat(mid), "top_ids": torch.cat(top_ids),
                "top_p": torch.cat(top_p), "mid_layer": MID_LAYER, "kinds": [r.get("kind") for r in rows]}, out)


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
    features(model, args.out / "answers.jsonl", args.out / "features.pt")
    write_datastore(args.out / "answers.jsonl", DATASTORE)


if __name__ == "__main__":
    main()
