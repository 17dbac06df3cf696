"""Anything a user may pass as a drafter -> a :class:`Drafter`: a causal LM, a Drafter, or a third party's object.

This is the one place that asks an object what it can do with ``getattr``: a third party's drafter that subclasses
nothing is read once here, in the contract's own vocabulary (the abilities and hooks of :class:`Drafter`), and the
loop then sees a Drafter like any other.
"""

from __future__ import annotations

import torch

from .base import Draft, Drafter, DraftTree
from .small_model import ModelDrafter

ABILITIES = ("name", "branches", "reads_hidden", "side_branch", "may_abstain", "vocab_size", "model", "lm")


class DuckDrafter(Drafter):
    """A drafter that subclasses nothing but speaks the contract: its abilities are read once, missing hooks are no-ops.

    Its hooks get copies of the loop's ``ids`` (propose gets one from the loop itself), so an object that writes into
    them cannot change the sequence; what it returns is checked like any drafter's (:mod:`.checks`).
    """

    def __init__(self, obj):
        self.obj = obj
        defaults = {ability: getattr(Drafter, ability) for ability in ABILITIES} | {"name": type(obj).__name__}
        for ability, default in defaults.items():
            setattr(self, ability, getattr(obj, ability, default))
        self._hooks = {h: getattr(obj, h) for h in ("reset", "propose_tree", "observe", "side_inputs", "observe_side")
                       if callable(getattr(obj, h, None))}
        if self.branches and "propose_tree" not in self._hooks:
            raise TypeError(f"drafter {self.name!r} says it branches but has no propose_tree")
        if self.side_branch and not {"side_inputs", "observe_side"} <= set(self._hooks):
            raise TypeError(f"drafter {self.name!r} says it has a side branch but lacks side_inputs / observe_side")

    def reset(self) -> None:
        if "reset" in self._hooks:
            self._hooks["reset"]()

    def propose(self, ids, gamma, to_probs, generator) -> Draft:
        return self.obj.propose(ids, gamma, to_probs, generator)

    def propose_tree(self, ids, branching, to_probs, generator) -> DraftTree:
        if not self.branches:
            return super().propose_tree(ids, branching, to_probs, generator)
        return self._hooks["propose_tree"](ids, branching, to_probs, generator)

    def observe(self, verdict, hidden=None) -> None:
        if "observe" in self._hooks:
            self._hooks["observe"](verdict, hidden)

    def side_inputs(self, ids):
        return self._hooks["side_inputs"](ids.clone()) if self.side_branch else None

    def observe_side(self, logits, ids) -> None:
        if self.side_branch:
            self._hooks["observe_side"](logits, ids.clone())


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
