"""Anything a user may pass as a drafter -> a :class:`Drafter`: a causal LM, a Drafter, or a third party's object."""

from __future__ import annotations

import torch

from .base import Draft, Drafter, DraftTree
from .small_model import ModelDrafter


class DuckDrafter(Drafter):
    """The one adapter for a drafter that subclasses nothing (a third party's, written to the first contract).

    Its abilities are read once, here: ``propose_tree`` -> branches, ``observe_hidden`` -> reads_hidden,
    ``lookahead_inputs`` / ``observe_lookahead`` -> side_branch; ``observe(n_accepted, n_drafted)`` gets the counts.
    """

    def __init__(self, obj):
        self.obj = obj
        self.name = getattr(obj, "name", type(obj).__name__)
        self.branches = callable(getattr(obj, "propose_tree", None))
        self.reads_hidden = callable(getattr(obj, "observe_hidden", None))
        self.side_branch = callable(getattr(obj, "lookahead_inputs", None))
        self.may_abstain = bool(getattr(obj, "may_abstain", False))
        self.vocab_size = getattr(obj, "vocab_size", None)
        self.model = getattr(obj, "model", None)
        self.lm = getattr(obj, "lm", None)

    def reset(self) -> None:
        if callable(getattr(self.obj, "reset", None)):
            self.obj.reset()

    def propose(self, ids, gamma, to_probs, generator) -> Draft:
        return self.obj.propose(ids, gamma, to_probs, generator)

    def propose_tree(self, ids, branching, to_probs, generator) -> DraftTree:
        if not self.branches:
            return super().propose_tree(ids, branching, to_probs, generator)
        return self.obj.propose_tree(ids, branching, to_probs, generator)

    def observe(self, verdict, hidden=None) -> None:
        if verdict is not None and callable(getattr(self.obj, "observe", None)):
            self.obj.observe(verdict.n_accepted, verdict.n_drafted)
        if hidden is not None and self.reads_hidden:
            self.obj.observe_hidden(hidden)

    def side_inputs(self, ids):
        return self.obj.lookahead_inputs(ids) if self.side_branch else None

    def observe_side(self, logits, ids) -> None:
        if self.side_branch:
            self.obj.observe_lookahead(logits, ids)


def as_drafter(drafter) -> Drafter:
    """A Drafter as is; a transformers causal LM as the small-model drafter; any object with .propose adapted."""
    if isinstance(drafter, Drafter):
        return drafter
    if isinstance(drafter, torch.nn.Module):
        return ModelDrafter(drafter)
    if callable(getattr(drafter, "propose", None)):
        return DuckDrafter(drafter)
    raise TypeError(
        "drafter must be a drafter object (with .propose) or a transformers causal LM, "
        f"got {type(drafter).__name__}"
    )
