"""Suffix automata over token sequences: the longest suffix of the text so far that occurred before, in O(1) a token.

A suffix automaton (Blumer et al. 1985) of a text x is the smallest automaton that accepts every substring of x. Its
states are the classes of substrings with the same set of end positions; state s holds the strings of lengths
(len(link(s)), len(s)], where link(s) is the state of the longest suffix that ends at more positions. It has at most
2|x| − 1 states and 3|x| − 4 transitions, and grows online:

  extend(a).  Make a state cur with len = len(last) + 1; walk the suffix links from last, adding the transition a → cur
              to every state that lacks one; at the first state p that has one, to q: if len(q) = len(p) + 1, link
              cur → q; else clone q (same transitions, len(p) + 1), point cur and q at the clone, and redirect p's
              chain's a-transitions from q to the clone. Amortised O(1) per token.

  match(a).   With (s, l) the state and length of the longest suffix of the query that is a substring of x: follow the
              suffix links from s until a state has a transition on a (l ← len of that state), then take it (l ← l + 1);
              none at the root: l ← 0. Amortised O(1) per query token (SAM-Decoding, Hu et al. 2025, Algorithm 1).

:class:`SuffixAutomaton` is the online one (a Python list per field: prompt + output, a few thousand tokens).
:class:`StaticAutomaton` is a generalised automaton over a corpus of documents, built once and frozen into numpy
arrays (CSR transitions): ``nbytes`` is its memory. Each state's end positions are counted (how often its strings
occur), so the continuations of a match are ranked by frequency: P(a | s) = count(δ(s, a)) / Σ_b count(δ(s, b)).
"""

from __future__ import annotations

import numpy as np


class SuffixAutomaton:
    """The online suffix automaton of a growing token sequence (lists: len, link, transitions per state)."""

    def __init__(self):
        self.length = [0]  # len(s): the longest string of state s
        self.link = [-1]  # suffix link; the root's is −1
        self.next: list[dict[int, int]] = [{}]  # transitions: token -> state
        self.last = 0  # the state of the whole text
        self.size = 0  # tokens added

    def extend(self, token: int) -> None:
        """Append one token (the construction of the module docstring)."""
        cur = len(self.length)
        self.length.append(self.length[self.last] + 1)
        self.link.append(0)
        self.next.append({})
        p = self.last
        while p != -1 and token not in self.next[p]:
            self.next[p][token] = cur
            p = self.link[p]
        if p != -1:
            q = self.next[p][token]
            if self.length[p] + 1 == self.length[q]:
                self.link[cur] = q
            else:
                clone = self._clone(q, self.length[p] + 1)
                while p != -1 and self.next[p].get(token) == q:
                    self.next[p][token] = clone
                    p = self.link[p]
                self.link[q] = self.link[cur] = clone
        self.last = cur
        self.size += 1

    def _clone(self, q: int, length: int) -> int:
        clone = len(self.length)
        self.length.append(length)
        self.link.append(self.link[q])
        self.next.append(dict(self.next[q]))
        return clone

    def match(self, state: int, matched: int, token: int) -> tuple[int, int]:
        """(state, length) of the longest suffix of query + token that occurs in the text (match(a) above)."""
        while state and token not in self.next[state]:
            state = self.link[state]
            matched = self.length[state]
        if token in self.next[state]:
            return self.next[state][token], matched + 1
        return 0, 0

    def repair(self, state: int, matched: int) -> int:
        """The state of a match of ``matched`` tokens after the text grew: a clone may now hold the shorter strings."""
        while state and self.length[self.link[state]] >= matched:
            state = self.link[state]
        return state


class StaticAutomaton:
    """A frozen suffix automaton of several documents (no match crosses a document's end), transitions by frequency.

    Arrays (S states, E transitions): ``length`` (S,), ``link`` (S,), ``offsets`` (S + 1,); per transition, grouped by
    state and most frequent first: ``edge_token`` (E,), ``edge_to`` (E,), ``edge_prob`` (E,) P(a | s) in 1/255 steps.
    Every array is as narrow as its values allow (token ids and lengths < 2^16: uint16).
    """

    def __init__(self, documents):
        sam = SuffixAutomaton()
        ends = [0]  # end positions counted at each state (before they are summed up the links)
        for doc in documents:
            sam.last = 0  # a generalised automaton: each document starts from the root
            for token in doc:
                self._extend_generalised(sam, int(token), ends)
        n = len(sam.length)
        ends += [0] * (n - len(ends))
        length = np.asarray(sam.length, dtype=np.int64)
        count = np.asarray(ends, dtype=np.int64)
        for s in np.argsort(-length, kind="stable"):  # longest first: a state's ends are its link's too
            if sam.link[s] >= 0:
                count[sam.link[s]] += count[s]
        src = np.repeat(np.arange(n), [len(t) for t in sam.next])
        token = np.fromiter((a for t in sam.next for a in t), dtype=np.int64, count=src.shape[0])
        to = np.fromiter((b for t in sam.next for b in t.values()), dtype=np.int64, count=src.shape[0])
        order = np.lexsort((token, -count[to], src))  # by state, then most frequent first, then smaller token
        src, token, to = src[order], token[order], to[order]
        self.offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(src, minlength=n), out=self.offsets[1:])
        followers = np.bincount(src, weights=count[to], minlength=n)  # Σ_b count(δ(s, b)) per state
        # P(a | s), rounded to 1/255: enough for the min_token_prob cut; the exact order is the edges' order
        self.edge_prob = np.rint(255 * count[to] / np.maximum(followers[src], 1)).astype(np.uint8)
        self.edge_token = token.astype(np.uint16 if token.size == 0 or token.max() < 2**16 else np.int32)
        self.edge_to = to.astype(np.int32)
        self.length = length.astype(np.uint16 if length.max() < 2**16 else np.int32)
        self.link = np.asarray(sam.link, dtype=np.int32)
        self.tokens = sum(len(doc) for doc in documents)

    @staticmethod
    def _extend_generalised(sam: SuffixAutomaton, token: int, ends: list[int]) -> None:
        """extend(a) for a document after the first: reuse an existing transition from last instead of a new state."""
        q = sam.next[sam.last].get(token)
        if q is None:
            sam.extend(token)
        elif sam.length[q] == sam.length[sam.last] + 1:
            sam.last = q
        else:  # split q so that the new end position is counted only where it belongs
            clone = sam._clone(q, sam.length[sam.last] + 1)
            p = sam.last
            while p != -1 and sam.next[p].get(token) == q:
                sam.next[p][token] = clone
                p = sam.link[p]
            sam.link[q] = clone
            sam.last = clone
        ends.extend([0] * (len(sam.length) - len(ends)))
        ends[sam.last] += 1

    @property
    def states(self) -> int:
        return int(self.link.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory of the frozen arrays, in bytes."""
        arrays = (self.offsets, self.edge_token, self.edge_to, self.edge_prob, self.length, self.link)
        return sum(a.nbytes for a in arrays)

    def step(self, state: int, token: int) -> int:
        """δ(state, token), or −1 if there is no such transition."""
        lo, hi = int(self.offsets[state]), int(self.offsets[state + 1])
        if hi - lo <= 8:  # most states have one or two transitions
            for i in range(lo, hi):
                if int(self.edge_token[i]) == token:
                    return int(self.edge_to[i])
            return -1
        hit = np.flatnonzero(self.edge_token[lo:hi] == token)
        return int(self.edge_to[lo + hit[0]]) if hit.size else -1

    def match(self, state: int, matched: int, token: int) -> tuple[int, int]:
        """(state, length) of the longest suffix of query + token found in the corpus."""
        while True:
            nxt = self.step(state, token)
            if nxt >= 0:
                return nxt, matched + 1
            if state == 0:
                return 0, 0
            state = int(self.link[state])
            matched = int(self.length[state])

    def children(self, state: int) -> list[tuple[int, float, int]]:
        """(token, P(token | state), next state), most frequent first (ties: the smaller token id)."""
        lo, hi = int(self.offsets[state]), int(self.offsets[state + 1])
        return [(int(t), int(p) / 255, int(s)) for t, p, s in
                zip(self.edge_token[lo:hi], self.edge_prob[lo:hi], self.edge_to[lo:hi])]
