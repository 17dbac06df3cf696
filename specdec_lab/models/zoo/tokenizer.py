"""Byte-level BPE tokenizer for the lab model zoo, trained with the ``tokenizers`` library.

GPT-2 style: byte-level pre-tokenizer (no prefix space), so every string, including
newlines and indentation, round-trips exactly; one special token, ``<|endoftext|>``, used
as BOS, EOS and PAD (and as the document separator in the corpus files). The saved folder
loads with ``transformers.AutoTokenizer.from_pretrained(folder)`` or
``PreTrainedTokenizerFast(tokenizer_file=folder / "tokenizer.json")``.

Usage: ``python -m specdec_lab.models.zoo.tokenizer --corpus DIR --out DIR [--vocab-size 4096]``
(trains on every ``DIR/<domain>/train.txt`` produced by :mod:`specdec_lab.models.zoo.corpus`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .corpus import DOC_SEP, split_text

EOT = DOC_SEP


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE on ``texts`` (deterministic for the same texts in the same order).

    The vocabulary holds ``<|endoftext|>`` (id 0), the 256 byte symbols, then merges up to
    ``vocab_size`` (fewer if the text runs out of pairs seen ``min_frequency`` times).
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    # the trainer does not split on special tokens, so feed documents without separators
    docs = (doc for text in texts for doc in split_text(text))
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def to_transformers(tok: Tokenizer, model_max_length: int | None = None):
    """Wrap a ``tokenizers.Tokenizer`` as a transformers fast tokenizer with the special tokens set."""
    from transformers import PreTrainedTokenizerFast

    extra = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT, unk_token=None,
        clean_up_tokenization_spaces=False, add_prefix_space=False, **extra,
    )


def save_tokenizer(tok: Tokenizer, folder: Path, model_max_length: int | None = None) -> Path:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    to_transformers(tok, model_max_length).save_pretrained(str(folder))
    # the generic class name also resolves in transformers 4.x ("TokenizersBackend" is 5.x only)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    special = {"bos_token": EOT, "eos_token": EOT, "pad_token": EOT}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    return folder


def load_tokenizer(folder: Path):
    """Load a saved zoo tokenizer with ``transformers.AutoTokenizer``."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def round_trips(hf_tok, text: str) -> bool:
    """True when ``decode(encode(text)) == text`` (no special tokens added, none skipped)."""
    ids = hf_tok.encode(text, add_special_tokens=False)
    return hf_tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False) == text


def corpus_files(corpus: Path, split: str = "train") -> list[Path]:
    """The ``<domain>/<split>.txt`` files of a corpus folder, sorted by domain."""
    return sorted(Path(corpus).glob(f"*/{split}.txt"))


def count_tokens(tok: Tokenizer, text: str) -> int:
    """Tokens in a corpus file's text: document tokens plus one ``<|endoftext|>`` per document."""
    docs = split_text(text)
    return sum(len(enc.ids) for enc in tok.encode_batch(docs, add_special_tokens=False)) + len(docs)


def main(argv: list[str] | None = None) -> None:
    """CLI: train on a corpus folder, save, check loading and round trips, print token counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder written by specdec_lab.models.zoo.corpus")
    parser.add_argument("--out", type=Path, required=True, help="output folder (outside the repo)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--min-frequency", type=int, default=2)
    args = parser.parse_args(argv)
    files = corpus_files(args.corpus)
    if not files:
        parser.error(f"no */train.txt under {args.corpus}")
    tok = train_tokenizer((f.read_text(encoding="utf-8") for f in files), args.vocab_size, args.min_frequency)
    save_tokenizer(tok, args.out)
    hf_tok = load_tokenizer(args.out)
    print(f"saved {args.out} vocab={hf_tok.vocab_size} eos={hf_tok.eos_token!r}->{hf_tok.eos_token_id}")
    for path in corpus_files(args.corpus, "train") + corpus_files(args.corpus, "heldout"):
        text = path.read_text(encoding="utf-8")
        docs = split_text(text)
        ok = all(round_trips(hf_tok, doc[:20_000]) for doc in docs[:5])
        chars = len(text) - len(EOT) * len(docs)
        n = count_tokens(tok, text)
        print(f"{path.parent.name:12s} {path.stem:8s} {chars:>10,d} chars {n:>10,d} tokens "
              f"{chars / n:5.2f} chars/token round-trip={'ok' if ok else 'FAILED'}")


if __name__ == "__main__":
    main()
