"""Lookahead decoding: Jacobi iteration in a side branch of the verification forward feeds an n-gram pool.

Fu, Bailis, Stoica, Zhang (ICML 2024), "Break the Sequential Dependency of LLM Inference Using
Lookahead Decoding" (arXiv 2402.02057; github.com/hao-ai-lab/LookaheadDecoding, lade/decoding.py).
No draft model: the target itself, run on guessed future tokens, is the drafter.

The window. W columns × (N − 1) levels of guessed tokens s(l, w), l = 0..N−2, w = 0..W−1.
s(l, w) sits at depth l + w past the root r = ids[-1] (position len(ids) − 1 + l + w); the slot
s(0, 0) IS the root, so the branch adds M = (N − 1)·W − 1 tokens. For W = 3, N = 3:

    depth:    0     1     2     3
    level 1:        s10   s11   s12        s(1, w) at depth 1 + w
    level 0:  r     s01   s02              s(0, w) at depth w; s00 is the root r

The mask (the paper's Figure; lade's j_make_causal_mask_multilevel). s(l, w) attends to the cached
prefix, the root, s(0, w') for 1 <= w' <= w (the oldest level up to its own column) and s(l', w) for
1 <= l' <= l (its own column, lower levels and itself). So its context reads, at consecutive
positions, r, s01, .., s0w, s1w, .., slw: one Jacobi step over a contiguous guess. Side tokens
listed as [s01, s02, s10, s11, s12] (1 = attends; every row also sees the prefix and r):

            s01 s02 s10 s11 s12
      s01    1   .   .   .   .
      s02    1   1   .   .   .
      s10    .   .   1   .   .
      s11    1   .   .   1   .
      s12    1   1   .   .   1

One step (the side tokens ride in the verification forward, see drafters/base.py's SideBranch):
  Step 1. Verification branch: the pool's continuations of the key r are the drafts (a chain: the most
          recent; a trie: up to G of them). q = None: a deterministic draft.
  Step 2. Lookahead branch: the target scores the window; the last level's rows give the new guesses
          g_w = argmax p(· | prefix, r, s01..s0w, s1w..s(N−2)w), for the token at depth N − 1 + w.
          (N = 2: the last level is level 0, whose column 0 is the root; g_0 is then the token the
          target emitted after r.)
  Step 3. Harvest: for each column w the trajectory (s(0, w), s(1, w), .., s(N−2, w), g_w) is an
          N-gram; the pool stores its last N − 1 tokens under its first (most recent first, at most G
          per key, no duplicates). Only once the window holds Jacobi outputs (after N − 2 steps).
  Step 4. Jacobi update: drop the oldest level, s(l, w) <- s(l + 1, w), append g as the newest level.
          The window advances one position per step however many drafts were accepted (lade's
          default ALWAYS_FWD_ONE); after an acceptance it is off by the accepted count and re-aligns
          over the next steps, which only costs guess quality, never correctness.

The window starts as tokens drawn from the prompt with a fixed seed, so runs are reproducible.
Guesses always use argmax (lade: TEMP_FOR_GUESS = 0); verification makes any sampling exact.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from .base import Draft, Drafter, DraftTree, ToProbs, merge_into_trie
from .prompt_lookup import check_branching
from ..core.validate import is_int

INIT_SEED = 0  # the window's first guesses are prompt tokens drawn with this seed


MAX_WINDOW = 64  # W: columns of the Jacobi window (the paper's largest is 15)
MAX_NGRAM = 16  # N: n-gram size, so N − 1 levels (the paper's largest is 7); the side branch has (N − 1)·W − 1 tokens
MAX_GUESSES = 64  # G: continuations kept per key and verified per step


def _check_option(option: str, value, low: int, high: int) -> None:
    if not is_int(value) or not low <= value <= high:
        raise ValueError(f"{option} must be an int between {low} and {high}, got {value!r}")


def window_geometry(window: int, ngram: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, N) -> depth (M,), attend (M, M) bool of the side tokens.

    Listed level by level: s(0, 1..W−1), s(1, 0..W−1), .., s(N−2, 0..W−1).
    """
    cells = [(0, w) for w in range(1, window)] + [(l, w) for l in range(1, ngram - 1) for w in range(window)]
    depth = torch.tensor([l + w for l, w in cells], dtype=torch.long)  # (M,)
    attend = torch.zeros(len(cells), len(cells), dtype=torch.bool)  # (M, M)
    for i, (l, w) in enumerate(cells):
        for j, (l2, w2) in enumerate(cells):
            attend[i, j] = (l2 == 0 and w2 <= w) or (w2 == w and 1 <= l2 <= l)
    return depth, attend


class LookaheadDrafter(Drafter):
    """Draft n-grams harvested from a Jacobi window that the target evaluates alongside verification."""

    name: ClassVar[str] = "lookahead"
    branches: ClassVar[bool] = True
    side_branch: ClassVar[bool] = True  # the Jacobi window rides in the verification forward
    may_abstain: ClassVar[bool] = True  # no n-gram starts with the last token: an empty draft

    def __init__(self, window: int = 4, ngram: int = 3, guesses: int = 4, name: str | None = None):
        _check_option("window", window, 1, MAX_WINDOW)  # bounded: every step's forward carries the whole window
        _check_option("ngram", ngram, 2, MAX_NGRAM)
        _check_option("guesses", guesses, 1, MAX_GUESSES)
        if name is not None:
            self.name = name
        self.window = window  # W: columns, how far ahead the window guesses
        self.ngram = ngram  # N: n-gram size; the window has N − 1 levels
        self.guesses = guesses  # G: continuations kept per key, and verified per step in a tree
        self.vocab_size = None  # proposes ids only
        self.depth, self.attend = window_geometry(window, ngram)  # (M,), (M, M)
        self.reset()

    def reset(self) -> None:
        """Forget the window and the pool (a new sequence)."""
        self.levels: torch.Tensor | None = None  # (N − 1, W) guesses; levels[0, 0] is the root's slot
        self.pool: dict[int, list[tuple[int, ...]]] = {}  # first token -> continuations of N − 1 tokens, newest first
        self.iterations = 0  # Jacobi updates since the window was initialised
        self._seen: torch.Tensor | None = None  # the sequence the state belongs to
        self._root_at = 0  # index of the root in the sequence the side branch was built for

    def _sync(self, ids: torch.Tensor) -> None:
        """Start over unless ids continues the sequence last seen; then remember ids."""
        seen = self._seen
        continues = seen is not None and ids.shape[0] >= seen.shape[0] and bool((ids[: seen.shape[0]] == seen).all())
        if not continues:
            self.reset()
            g = torch.Generator().manual_seed(INIT_SEED)
            picks = torch.randint(0, ids.shape[0], (self.ngram - 1, self.window), generator=g)
            self.levels = ids.cpu()[picks]  # (N − 1, W)
        self._seen = ids.cpu()

    def candidates(self, ids: torch.Tensor) -> list[tuple[int, ...]]:
        """The pool's continuations of the sequence's last token, most recent first."""
        self._sync(ids)
        return self.pool.get(int(ids[-1]), [])

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        """Step 1 (chain): the most recent continuation of the last token, cut to γ."""
        found = self.candidates(ids)
        if gamma < 1 or not found:
            return Draft(tokens=ids.new_empty(0))
        return Draft(tokens=torch.tensor(found[0][:gamma], dtype=torch.long, device=ids.device))  # (≤ γ,)

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """Step 1 (tree): up to G continuations merged into a trie within ``branching``."""
        shape = check_branching(branching)
        tokens, parents = merge_into_trie([list(c) for c in self.candidates(ids)[: self.guesses]], shape)
        return DraftTree(tokens=torch.tensor(tokens, dtype=torch.long, device=ids.device),  # (T,)
                         parents=torch.tensor(parents, dtype=torch.long, device=ids.device))  # (T,)

    def side_inputs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step 2 (inputs): the window minus the root's slot, its depths and mask (see the module docstring)."""
        self._sync(ids)
        self._root_at = ids.shape[0] - 1
        tokens = torch.cat([self.levels[0, 1:], self.levels[1:].flatten()])  # (M,)
        return tokens, self.depth, self.attend

    def observe_side(self, logits: torch.Tensor, ids: torch.Tensor) -> None:
        """Steps 2–4: new guesses from the last level's rows, harvest the columns' N-grams, shift the window."""
        guess = logits.argmax(dim=-1).cpu()  # (M,)
        if self.ngram > 2:
            new = guess[-self.window:]  # (W,) rows of level N − 2
        else:  # the only level is level 0: column 0 is the root, whose next token the target just chose
            new = torch.cat([ids[self._root_at + 1: self._root_at + 2].cpu(), guess])  # (W,)
        if self.iterations >= self.ngram - 2:  # levels 1..N−2 are Jacobi outputs by now
            trajectories = torch.cat([self.levels, new[None]])  # (N, W): column w is an N-gram
            trajectories[0, 0] = int(ids[self._root_at])
            for column in trajectories.t().tolist():
                self._remember(column[0], tuple(column[1:]))
        self.levels = torch.cat([self.levels[1:], new[None]])  # (N − 1, W)
        self.iterations += 1
        self._seen = ids.cpu()

    def _remember(self, key: int, continuation: tuple[int, ...]) -> None:
        """Put a continuation first in its key's list; drop its older copy and anything past G."""
        kept = [c for c in self.pool.get(key, []) if c != continuation]
        self.pool[key] = [continuation] + kept[: self.guesses - 1]
