"""Cascade drafting: ask drafters in turn and keep the first draft that is not empty.

A lookup drafter abstains when it finds nothing: prompt lookup has no earlier match of the sequence's last n-gram
on about a third of the steps of SmolLM2's answers to Spec-Bench's questions (each record's ``empty_steps`` in
``benchmarks/measured/spec_bench_smollm2_bf16_lookup4.json``), and those steps then decode one token, at the price of
a full target forward. A second drafter can fill exactly those steps. With prompt lookup first and REST's datastore
second (``lookup+retrieval``), a step drafts

    d = PL(x)        if prompt lookup finds a match in the prompt or output,
        REST(x)      otherwise (the longest suffix of x found in a datastore of the target's own earlier answers).

Both are deterministic (q = None), so any verifier stays exact: greedy verification still yields the target's
greedy output, speculative sampling its distribution. The cascade costs nothing when the first drafter answers;
SuffixDecoding (Oliaro et al. 2024) merges the two sources into one suffix tree instead.

SAM-Decoding's cascade (``suffix+recycling``) is the same rule with a threshold in the first drafter: the suffix
drafter abstains when its longest match is shorter than ``min_match`` tokens, and Token Recycling's tree fills in:

    d = SUFFIX(x)    if the longest suffix of x found in x's past or the corpus has ≥ min_match tokens,
        TR(x)        otherwise (the target's top-k table read along a static tree).

Every member observes every verdict (a member that was not asked this step still sees the sequence grow, so a
stateful member, e.g. EAGLE's head cache, stays consistent). At most one member may own a model (the loop checks it
against the target), and none may ride a side branch (lookahead), since its side tokens would need every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import Draft, Drafter, DraftTree, ToProbs


class FirstNonEmpty(Drafter):
    """The first non-empty draft of ``drafters``, asked in order (a drafter that abstains passes to the next)."""

    def __init__(self, drafters: Sequence[Drafter], name: str | None = None):
        drafters = list(drafters)
        if len(drafters) < 2:
            raise ValueError(f"a cascade needs at least two drafters, got {len(drafters)}")
        for d in drafters:
            if not isinstance(d, Drafter):
                raise TypeError(f"a cascade takes Drafter objects, got {type(d).__name__}")
            if d.side_branch:
                raise ValueError(f"drafter {d.name!r} rides a side branch (lookahead), which a cascade cannot share")
        owners = [d for d in drafters if d.model is not None]
        if len(owners) > 1:
            raise ValueError(f"at most one drafter of a cascade may own a model, got {[d.name for d in owners]}")
        vocabs = {d.vocab_size for d in drafters} - {None}
        if len(vocabs) > 1:
            raise ValueError(f"the drafters' vocabularies differ: {sorted(vocabs)}")
        for d in drafters[:-1]:
            if not d.may_abstain:
                raise ValueError(f"drafter {d.name!r} never abstains, so the drafters after it would never be asked")
        self.drafters = drafters
        self.name = name or "+".join(d.name for d in drafters)
        self.vocab_size = vocabs.pop() if vocabs else None
        self.model = owners[0].model if owners else None
        self.lm = owners[0].lm if owners else None
        self.branches = all(d.branches for d in drafters)
        self.reads_hidden = any(d.reads_hidden for d in drafters)
        self.reads_scores = any(d.reads_scores for d in drafters)
        self.may_abstain = drafters[-1].may_abstain
        self.answered_by = [0] * len(drafters)  # steps whose draft came from member i (since the last reset)

    def reset(self) -> None:
        for d in self.drafters:
            d.reset()
        self.answered_by = [0] * len(self.drafters)

    def _first(self, ask):
        """ask(drafter) for each member in turn; the first answer with tokens (or the last member's, empty)."""
        for i, d in enumerate(self.drafters):
            out = ask(d)
            if out.tokens.numel() > 0 or i == len(self.drafters) - 1:
                self.answered_by[i] += out.tokens.numel() > 0
                return out

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        return self._first(lambda d: d.propose(ids, gamma, to_probs, generator))

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        if not self.branches:
            raise TypeError(f"drafter {self.name!r} cannot branch into token trees (a member cannot)")
        return self._first(lambda d: d.propose_tree(ids, branching, to_probs, generator))

    def observe(self, verdict, hidden: torch.Tensor | None = None) -> None:
        for d in self.drafters:
            if verdict is not None or d.reads_hidden:  # the prefill's call is only for drafters that read states
                d.observe(verdict, hidden if d.reads_hidden else None)

    def observe_scores(self, tokens: torch.Tensor, logits: torch.Tensor) -> None:
        for d in self.drafters:
            if d.reads_scores:
                d.observe_scores(tokens, logits)

    @property
    def forward_count(self) -> int:
        return sum(d.forward_count for d in self.drafters)
