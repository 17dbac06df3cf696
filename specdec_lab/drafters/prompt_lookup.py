"""Prompt lookup decoding: draft by copying what followed the last n tokens earlier in the sequence.

Saxena (2023), "Prompt Lookup Decoding" (github.com/apoorvumang/prompt-lookup-decoding);
transformers' ``PromptLookupCandidateGenerator`` (``prompt_lookup_num_tokens``).
Text that quotes its prompt (summaries, code edits, question answering over a
document) repeats long spans, and no model is needed to guess them:

  Step 1. For n = max_ngram down to min_ngram, let s = x_{L−n+1..L} be the last n tokens of
          the sequence x_1..x_L (prompt + output so far).
  Step 2. Find the most recent earlier occurrence x_{i+1..i+n} = s with i + n < L.
  Step 3. Propose the γ tokens that followed it, x_{i+n+1..i+n+γ}, copying LZ77-style: past the
          end of the sequence, x_{L+k} = x_{i+n+k}, i.e. the text repeats with period L − i − n.
          Stop at the first n that matches.
  No match for any n: propose nothing (the loop then decodes one token as usual).

The draft is deterministic (q = None): a verifier accepts x_j with probability p_j(x_j),
and at temperature 0 exactly when x_j is the target's argmax.
Unlike transformers (which takes the FIRST occurrence), the most recent one is used here:
it is the one closest to the text being written. A longer match wins over a more recent
shorter one, since it constrains the context more. The overlapping copy of Step 3 makes a
loop (the most recent match sits right before the suffix) still yield a full draft.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch

from .base import Draft, Drafter, DraftTree, ToProbs, merge_into_trie
from ..core.tree import check_tree_size
from ..core.validate import is_int


MAX_NGRAM = 64  # the longest n-gram a lookup tries: every size up to it is tried per step (and indexed, in retrieval)


def check_ngram_sizes(max_ngram, min_ngram) -> None:
    """n-gram sizes must be ints with 1 <= min_ngram <= max_ngram <= MAX_NGRAM."""
    for option, value in (("max_ngram", max_ngram), ("min_ngram", min_ngram)):
        if not is_int(value):
            raise ValueError(f"{option} must be an int >= 1, got {value!r}")
        if value < 1:
            raise ValueError(f"{option} must be >= 1 (an n-gram size of {value} matches nothing), got {value}")
        if value > MAX_NGRAM:
            raise ValueError(f"{option} must be <= {MAX_NGRAM} (each size up to it is tried at every step, and a "
                             f"match that long is decided by its last {MAX_NGRAM} tokens anyway), got {value}")
    if min_ngram > max_ngram:
        raise ValueError(f"min_ngram ({min_ngram}) must be <= max_ngram ({max_ngram})")


def check_branching(branching) -> tuple[int, ...]:
    """A tree shape: a non-empty sequence of ints >= 1, children per node at each depth, within MAX_TREE_NODES."""
    shape = tuple(branching)
    if not shape or any(not is_int(b) or b < 1 for b in shape):
        raise ValueError(f"branching must be a non-empty sequence of ints >= 1, got {branching!r}")
    return check_tree_size(tuple(int(b) for b in shape), "branching")


def copy_forward(ids: torch.Tensor, begin: int, length: int) -> torch.Tensor:
    """(length,) tokens from ids[begin:], continued periodically past the end (an overlapping LZ77 copy)."""
    period = ids.shape[0] - begin  # >= 1
    offsets = torch.arange(length, device=ids.device) % period
    return ids[begin + offsets]


def match_starts(ids: torch.Tensor, n: int) -> torch.Tensor:
    """Start positions i, most recent first, where ids[i:i+n] equals the last n tokens and a token follows.

    The suffix itself (i = L − n) is excluded, because nothing follows it.
    """
    length = ids.shape[0]
    if length <= n:
        return ids.new_empty(0)
    windows = ids[:-1].unfold(0, n, 1)  # (L−n, n): window i is ids[i:i+n], always followed by ids[i+n]
    hits = (windows == ids[-n:]).all(dim=1)  # (L−n,)
    return hits.nonzero().flatten().flip(0)  # (matches,) most recent first


class PromptLookupDrafter(Drafter):
    """Propose the continuation of the longest, most recent earlier match of the sequence's last n-gram."""

    name: ClassVar[str] = "prompt-lookup"
    branches: ClassVar[bool] = True
    may_abstain: ClassVar[bool] = True  # no match is a normal answer

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1, name: str | None = None):
        check_ngram_sizes(max_ngram, min_ngram)
        if name is not None:
            self.name = name
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self.vocab_size = None  # proposes ids only, so any target vocabulary will do

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        """Steps 1–3: the first continuation found, longest n first, most recent first; cut to γ."""
        if gamma < 1:
            return Draft(tokens=ids.new_empty(0))
        for n in range(min(self.max_ngram, ids.shape[0] - 1), self.min_ngram - 1, -1):  # n >= L matches nothing
            starts = match_starts(ids, n)  # (matches,)
            if starts.numel() > 0:
                begin = int(starts[0]) + n
                return Draft(tokens=copy_forward(ids, begin, gamma))  # (γ,)
        return Draft(tokens=ids.new_empty(0))

    def continuations(self, ids: torch.Tensor, length: int) -> Iterator[torch.Tensor]:
        """Every continuation of up to ``length`` tokens, in propose's order of preference, each start once.

        A position that matches a long n-gram also matches every shorter one; it is yielded only for its longest.
        """
        seen: set[int] = set()
        for n in range(min(self.max_ngram, ids.shape[0] - 1), self.min_ngram - 1, -1):  # n >= L matches nothing
            for start in match_starts(ids, n).tolist():
                begin = start + n
                if begin not in seen:
                    seen.add(begin)
                    yield copy_forward(ids, begin, length)  # (length,)

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """Up to branching[0] distinct continuations of len(branching) tokens, merged into a trie.

        Continuations are inserted in order of preference (longest n, then most recent). A node at
        depth d (root = depth 0) may get at most branching[d] children; a continuation that would add
        one more is cut there. A continuation counts toward branching[0] only if it added a node.
        Nodes are numbered in the order they are created, so parents come first.
        """
        shape = check_branching(branching)
        tokens, parents = merge_into_trie(self.continuations(ids, len(shape)), shape, max_paths=shape[0])
        return DraftTree(
            tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device),  # (N,)
            parents=torch.tensor(parents, dtype=torch.long, device=ids.device),  # (N,)
        )
