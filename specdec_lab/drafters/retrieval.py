"""Retrieval drafting: look the sequence's last n tokens up in a corpus and propose what usually follows.

He et al. (2023), "REST: Retrieval-Based Speculative Decoding". No model is trained; the
drafter is a datastore of token ids (documents the user expects the output to resemble:
code, documentation, earlier answers), indexed here by n-gram instead of REST's suffix array:

  Index.  For every n in [min_ngram, max_ngram] and every n-gram of a document that is followed
          by at least one token, record where it ends (its continuation's first position). Each
          n-gram keeps its FIRST max_candidates occurrences in corpus order (documents in the
          order given), so the index, and every draft, is deterministic.
  Step 1. Take the longest suffix of the sequence, n = max_ngram down to min_ngram, found in the index.
  Step 2. Gather the continuations (up to γ tokens, never crossing a document's end) that follow
          its occurrences, at most max_candidates of them.
  Step 3. Merge them into a trie whose nodes count how many continuations pass through them.
  Step 4. Chain: from the root, follow the most frequent child at each level (ties: the smallest
          token id). Tree: keep the branching[d] most frequent children of every node at depth d.
  No suffix found: propose nothing (the loop then decodes one token as usual).

Drafts are deterministic (q = None): a verifier accepts x_j with probability p_j(x_j),
and at temperature 0 exactly when x_j is the target's argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .base import Draft, Drafter, DraftTree, ToProbs
from .prompt_lookup import check_branching, check_ngram_sizes
from ..core.validate import is_int


@dataclass
class TrieNode:
    """A token in a trie of continuations; count = how many continuations pass through it."""

    count: int = 0
    children: dict[int, "TrieNode"] = field(default_factory=dict)

    def ranked(self) -> list[tuple[int, "TrieNode"]]:
        """Children, most frequent first; ties broken by the smaller token id."""
        return sorted(self.children.items(), key=lambda item: (-item[1].count, item[0]))


def count_trie(paths: Sequence[Sequence[int]]) -> TrieNode:
    """Merge token sequences into a trie with a count on each node; the root holds no token."""
    root = TrieNode(count=len(paths))
    for path in paths:
        node = root
        for token in path:
            node = node.children.setdefault(token, TrieNode())
            node.count += 1
    return root


def as_documents(datastore_ids) -> list[list[int]]:
    """A 1-D tensor or list of ids (one document), or a list of documents (or a 2-D tensor) -> lists of ids."""
    if isinstance(datastore_ids, torch.Tensor):
        if datastore_ids.is_floating_point() or datastore_ids.is_complex() or datastore_ids.dtype == torch.bool:
            raise ValueError(f"datastore_ids must hold integer token ids, got dtype {datastore_ids.dtype}")
        if datastore_ids.dim() not in (1, 2):
            raise ValueError(
                f"datastore_ids must be 1-D (one document) or 2-D (one per row), got shape {tuple(datastore_ids.shape)}"
            )
        docs = datastore_ids.tolist() if datastore_ids.dim() == 2 else [datastore_ids.tolist()]
    elif isinstance(datastore_ids, (list, tuple)):
        if all(_is_token(t) for t in datastore_ids):
            docs = [list(datastore_ids)]
        else:
            docs = [doc.tolist() if isinstance(doc, torch.Tensor) else doc for doc in datastore_ids]
    else:
        raise ValueError(
            f"datastore_ids must be token ids or a list of documents of token ids, got {type(datastore_ids).__name__}"
        )
    for doc in docs:
        if not isinstance(doc, (list, tuple)) or not all(_is_token(t) for t in doc):
            raise ValueError(
                "datastore_ids must hold documents of integer token ids >= 0 (a list of ints, or a list of such lists)"
            )
    docs = [[int(t) for t in doc] for doc in docs]
    if sum(len(doc) for doc in docs) == 0:
        raise ValueError("datastore_ids is empty: give at least one document of token ids")
    return docs


def _is_token(t) -> bool:
    return is_int(t) and t >= 0


class RetrievalDrafter(Drafter):
    """Propose the most frequent continuation of the sequence's longest suffix found in a token datastore."""

    name: ClassVar[str] = "retrieval"
    branches: ClassVar[bool] = True
    may_abstain: ClassVar[bool] = True  # no suffix in the datastore is a normal answer

    def __init__(self, datastore_ids, max_ngram: int = 4, min_ngram: int = 1, max_candidates: int = 64,
                 name: str | None = None):
        check_ngram_sizes(max_ngram, min_ngram)
        if not is_int(max_candidates) or max_candidates < 1:
            raise ValueError(f"max_candidates must be an int >= 1, got {max_candidates!r}")
        if name is not None:
            self.name = name
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.max_candidates = max_candidates
        self.vocab_size = None  # proposes ids only; the datastore must share the target's tokenizer
        self.tokens: list[int] = []  # every document, concatenated
        self.doc_end: list[int] = []  # doc_end[i]: the end (exclusive) of the document holding position i
        self.index: dict[tuple[int, ...], list[int]] = {}  # n-gram -> where it ends (continuation starts)
        for doc in as_documents(datastore_ids):
            self._add(doc)
        if not self.index:
            raise ValueError(
                f"datastore_ids has no {min_ngram}-gram followed by a token: "
                f"give documents of at least {min_ngram + 1} ids"
            )

    @classmethod
    def from_texts(cls, texts: str | Sequence[str], tokenizer, **kwargs) -> "RetrievalDrafter":
        """A datastore of strings, one document each, tokenized without special tokens (BOS/EOS)."""
        if isinstance(texts, str):
            texts = [texts]
        docs = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
        return cls(docs, **kwargs)

    def _add(self, doc: list[int]) -> None:
        """Index one document: each n-gram followed by a token, first max_candidates occurrences only."""
        offset, end = len(self.tokens), len(self.tokens) + len(doc)
        self.tokens.extend(doc)
        self.doc_end.extend([end] * len(doc))
        for n in range(self.min_ngram, self.max_ngram + 1):
            for i in range(len(doc) - n):  # doc[i:i+n] is followed by doc[i+n]
                hits = self.index.setdefault(tuple(doc[i : i + n]), [])
                if len(hits) < self.max_candidates:
                    hits.append(offset + i + n)

    def candidates(self, ids: torch.Tensor, length: int) -> list[list[int]]:
        """Steps 1–2: continuations of up to ``length`` tokens after the longest suffix of ids in the index."""
        context = ids[-self.max_ngram :].tolist()
        for n in range(min(self.max_ngram, len(context)), self.min_ngram - 1, -1):
            starts = self.index.get(tuple(context[-n:]))
            if starts:
                return [self.tokens[s : min(s + length, self.doc_end[s])] for s in starts[: self.max_candidates]]
        return []

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        """Steps 1–4: the trie path that follows the most frequent child at each level."""
        draft: list[int] = []
        if gamma >= 1:
            node = count_trie(self.candidates(ids, gamma))
            while node.children:
                token, node = node.ranked()[0]
                draft.append(token)
        return Draft(tokens=torch.tensor(draft, dtype=torch.long, device=ids.device))  # (≤ γ,)

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """Steps 1–4 as a tree: at depth d every node keeps its branching[d] most frequent children.

        Nodes are listed level by level (breadth first), so parents come first.
        """
        shape = check_branching(branching)
        tokens: list[int] = []
        parents: list[int] = []
        level = [(-1, count_trie(self.candidates(ids, len(shape))))]  # (node number, trie node); −1: the root
        for width in shape:
            next_level = []
            for parent, node in level:
                for token, child in node.ranked()[:width]:
                    next_level.append((len(tokens), child))
                    tokens.append(token)
                    parents.append(parent)
            level = next_level
        return DraftTree(
            tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device),  # (N,)
            parents=torch.tensor(parents, dtype=torch.long, device=ids.device),  # (N,)
        )
