"""Suffix drafting: the longest suffix of the sequence found in its own past or in a corpus, and what followed it.

SAM-Decoding (Hu et al., ACL 2025) keeps two suffix automata (suffix_automaton.py): a dynamic one over the prompt and
the output so far, and a static one over a corpus (here SmolLM2's own answers, the retrieval datastore). SuffixDecoding
(Oliaro et al., NeurIPS 2025; vLLM ``method="suffix"``) adds how much to draft and which branches to keep:

  Step 1. Per new token, advance both matches: (state, l) of the longest suffix of x that occurred before (dynamic:
          in x_1..x_{L−1}, so a token followed it) and in the corpus. Amortised O(1) per token.
  Step 2. Take the source with the longer match (the sequence's own past on a tie); l < min_match: propose nothing.
  Step 3. Draft at most ⌊l · max_spec_factor⌋ tokens (SuffixDecoding: a longer match is a better predictor).
  Step 4. Continuations are ranked by frequency: P(a | context) = (occurrences followed by a) / (occurrences);
          a node is kept while its path probability Π P stays ≥ min_token_prob. Chain: the most frequent child at
          each depth. Tree: the branching[d] most frequent children of every node at depth d.

The dynamic source's occurrences are the most recent ``max_candidates`` ends of the last min(l, 32) tokens (ties in
frequency: the most recent first); the static source reads counts off its automaton. Drafts are deterministic
(q = None), so every verifier stays exact.

Memory: the static automaton over SmolLM2's 289 k-token datastore is a few MB of numpy arrays (``automaton.nbytes``;
tests/test_training_free.py bounds it together with the recycling matrix), built once per process and shared, since
it never changes; the dynamic one lives per call and is rebuilt on reset.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from .base import Draft, Drafter, DraftTree, ToProbs, common_prefix_len
from .prompt_lookup import check_branching, copy_forward, match_starts
from .suffix_automaton import StaticAutomaton, SuffixAutomaton
from ..core.validate import is_int

SCAN = 32  # the dynamic source's occurrences are those of the last min(l, SCAN) tokens


class CountTrie:
    """Continuations of a match as a trie: node -> (token, P(token | node), child), most frequent first."""

    def __init__(self, paths: list[list[int]]):
        self.kids: list[dict[int, int]] = [{}]
        self.count = [len(paths)]
        for path in paths:  # most recent first: dict order keeps it for ties
            node = 0
            for token in path:
                child = self.kids[node].get(token)
                if child is None:
                    child = self.kids[node][token] = len(self.count)
                    self.kids.append({})
                    self.count.append(0)
                self.count[child] += 1
                node = child

    def children(self, node: int) -> list[tuple[int, float, int]]:
        total = sum(self.count[c] for c in self.kids[node].values())
        ranked = sorted(self.kids[node].items(), key=lambda item: -self.count[item[1]])  # stable: recency on ties
        return [(token, self.count[c] / total, c) for token, c in ranked]


def grow_tree(children, root, shape: tuple[int, ...], min_prob: float) -> tuple[list[int], list[int]]:
    """(tokens, parents), breadth first: every node at depth d keeps its shape[d] most frequent children whose path
    probability is ≥ min_prob. ``children(node)`` -> [(token, P, child node)], most frequent first."""
    tokens: list[int] = []
    parents: list[int] = []
    level = [(-1, root, 1.0)]
    for width in shape:
        below = []
        for parent, node, prob in level:
            for token, p, child in children(node)[:width]:
                if prob * p < min_prob:
                    break  # ranked: the rest are rarer still
                below.append((len(tokens), child, prob * p))
                tokens.append(token)
                parents.append(parent)
        level = below
    return tokens, parents


class SuffixDrafter(Drafter):
    """Draft from the longest suffix match in the sequence's own past or in a static corpus (SAM-Decoding)."""

    name: ClassVar[str] = "suffix"
    branches: ClassVar[bool] = True
    may_abstain: ClassVar[bool] = True  # no match (or a match shorter than min_match) is a normal answer

    def __init__(self, corpus: StaticAutomaton | None = None, min_match: int = 1, max_spec_factor: float = 1.0,
                 min_token_prob: float = 0.1, max_candidates: int = 16, name: str | None = None):
        if corpus is not None and not isinstance(corpus, StaticAutomaton):
            raise TypeError(f"corpus must be a StaticAutomaton (or None), got {type(corpus).__name__}")
        if not is_int(min_match) or min_match < 1:
            raise ValueError(f"min_match must be an int >= 1 (tokens of suffix matched), got {min_match!r}")
        if not isinstance(max_spec_factor, (int, float)) or not max_spec_factor > 0 or math.isinf(max_spec_factor):
            raise ValueError(f"max_spec_factor must be a finite number > 0 (drafts per matched token), "
                             f"got {max_spec_factor!r}")
        if not isinstance(min_token_prob, (int, float)) or not 0 <= min_token_prob <= 1:
            raise ValueError(f"min_token_prob must be a probability in [0, 1], got {min_token_prob!r}")
        if not is_int(max_candidates) or max_candidates < 1:
            raise ValueError(f"max_candidates must be an int >= 1, got {max_candidates!r}")
        if name is not None:
            self.name = name
        self.corpus, self.min_match, self.max_spec_factor = corpus, min_match, float(max_spec_factor)
        self.min_token_prob, self.max_candidates = float(min_token_prob), max_candidates
        self.vocab_size = None  # proposes ids only
        self.reset()

    def reset(self) -> None:
        self.seen = torch.empty(0, dtype=torch.long)  # the sequence the automata have read
        self.own = SuffixAutomaton()  # of seen[:-1]
        self.own_match = (0, 0)  # (state, l) of seen against self.own
        self.corpus_match = (0, 0)  # (state, l) of seen against the corpus
        self.used = {"own": 0, "corpus": 0}  # steps drafted from each source (since the last reset)

    def _read(self, ids: torch.Tensor) -> None:
        """Step 1: bring both matches up to ``ids`` (a sequence that does not extend the one seen starts over)."""
        ids = ids.cpu()
        if common_prefix_len(ids, self.seen) < self.seen.shape[0]:
            used = self.used
            self.reset()
            self.used = used
        new = ids[self.seen.shape[0]:].tolist()
        previous = int(self.seen[-1]) if self.seen.numel() else None
        for token in new:
            if previous is not None:  # the automaton covers all but the last token, so every match has a follower
                self.own.extend(previous)
                state, l = self.own_match
                self.own_match = (self.own.repair(state, l), l)
            self.own_match = self.own.match(*self.own_match, token)
            if self.corpus is not None:
                self.corpus_match = self.corpus.match(*self.corpus_match, token)
            previous = token
        self.seen = ids.clone()

    def matched(self, ids: torch.Tensor) -> tuple[str, int]:
        """Steps 1–2: the source to draft from ("own" or "corpus") and its match length l."""
        self._read(ids)
        own, corpus = self.own_match[1], self.corpus_match[1]
        return ("own", own) if own >= corpus else ("corpus", corpus)

    def _source(self, ids: torch.Tensor, depth: int):
        """(children, root) of the chosen source's continuations, and the draft length cap; None: abstain."""
        source, l = self.matched(ids)
        cap = min(depth, int(l * self.max_spec_factor))
        if l < self.min_match or cap < 1:
            return None
        if source == "corpus":
            state = self.corpus_match[0]
            return self.corpus.children, state, cap, source
        n = min(l, SCAN)
        starts = match_starts(ids.cpu(), n)[: self.max_candidates].tolist()  # most recent first
        trie = CountTrie([copy_forward(ids.cpu(), s + n, cap).tolist() for s in starts])
        return trie.children, 0, cap, source

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        """Steps 1–4 as a chain: the most frequent continuation, at most min(γ, ⌊l · max_spec_factor⌋) tokens."""
        found = self._source(ids, gamma) if gamma >= 1 else None
        if found is None:
            return Draft(tokens=ids.new_empty(0))
        children, root, cap, source = found
        tokens, _ = grow_tree(children, root, (1,) * cap, self.min_token_prob)
        self.used[source] += bool(tokens)
        return Draft(tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device))  # (≤ γ,)

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """Steps 1–4 as a tree of at most min(len(branching), ⌊l · max_spec_factor⌋) levels, breadth first."""
        shape = check_branching(branching)
        found = self._source(ids, len(shape))
        tokens, parents = [], []
        if found is not None:
            children, root, cap, source = found
            tokens, parents = grow_tree(children, root, shape[:cap], self.min_token_prob)
            self.used[source] += bool(tokens)
        return DraftTree(tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device),  # (N,)
                         parents=torch.tensor(parents, dtype=torch.long, device=ids.device))  # (N,)
