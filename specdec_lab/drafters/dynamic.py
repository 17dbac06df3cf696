"""Dynamic draft length: let the drafter's recent success set the next γ.

transformers' ``num_assistant_tokens_schedule="heuristic"``
(``AssistedCandidateGenerator.update_candidate_strategy`` in
transformers/generation/candidate_generator.py), after each verification:

    γ ← γ + 2            if every drafted token was accepted
    γ ← max(1, γ − 1)    otherwise

Long runs of agreement buy longer drafts; each rejection shortens the next one.
The draft length changes only how many tokens a step may emit, never which
tokens are emitted, so a lossless verifier stays lossless. The loop's own
``gamma`` is the ceiling of every step: give ``generate_speculative`` a large
one (up to config.MAX_GAMMA) and let the schedule pick below it.
"""

from __future__ import annotations

import torch

from .adapt import as_drafter
from .base import Draft, ToProbs, WrappedDrafter
from ..core.validate import check_int


class HeuristicGamma(WrappedDrafter):
    """Wrap any drafter; draft min(γ, the γ the loop asks) tokens, then adapt γ from the verdict.

    Every ability of the wrapped drafter (hidden states, a side branch, abstaining) is kept through
    :class:`WrappedDrafter`; only branching is off, since the schedule is one of chain lengths.
    """

    branches = False  # the schedule sets a chain's length; a tree's shape is the tree verifier's

    def __init__(self, drafter, start: int = 5, max_gamma: int | None = None):
        _check_gamma("start", start)
        if max_gamma is not None:
            _check_gamma("max_gamma", max_gamma)
            if max_gamma < start:
                raise ValueError(f"max_gamma ({max_gamma}) must be >= start ({start})")
        super().__init__(as_drafter(drafter))
        self.start = start  # γ before the first step (transformers' num_assistant_tokens, 5 in 4.x)
        self.max_gamma = max_gamma  # ceiling on the schedule's growth (None: only the loop's γ limits a step)
        self.reset_schedule()

    @property
    def name(self) -> str:
        return f"{self.inner.name}+heuristic-γ"

    def reset_schedule(self) -> None:
        self.gamma = self.start  # the schedule's current γ
        self.gamma_history: list[int] = []  # γ asked of the inner drafter at each step, for plots

    def reset(self) -> None:
        """A new sequence: the inner drafter forgets it, and the schedule starts again from ``start``."""
        self.inner.reset()
        self.reset_schedule()

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        gamma_step = min(self.gamma, gamma)
        self.gamma_history.append(gamma_step)
        return self.inner.propose(ids, gamma_step, to_probs, generator)

    def observe(self, verdict, hidden: torch.Tensor | None = None) -> None:
        """transformers' heuristic: +2 after a fully accepted draft, −1 (never below 1) otherwise."""
        self.inner.observe(verdict, hidden)
        if verdict is None or verdict.n_drafted == 0:  # the prefill, or nothing drafted: no evidence
            return
        if verdict.n_accepted == verdict.n_drafted:
            self.gamma += 2
            if self.max_gamma is not None:
                self.gamma = min(self.gamma, self.max_gamma)
        else:
            self.gamma = max(1, self.gamma - 1)


def _check_gamma(option: str, value) -> None:
    check_int(option, value, 1)
