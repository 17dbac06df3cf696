"""Verifiers: given a draft and the target's rows p, decide what to keep (see :mod:`.base` for the contract).

    token.py   chain rules: speculative sampling and greedy match (lossless); typical and top-k (lossy)
    block.py   block verification (Sun et al. 2025): lossless, never fewer accepted than token-level
    tree.py    token-tree rules: greedy and SpecInfer's multi-candidate speculative sampling
    laws.py    exact laws of what a verifier emits, and the chi-square test against them
    tree_shape.py  acceptance by depth and rank from recorded tree steps; the best tree shape in a budget
"""

from __future__ import annotations

from ..core.types import ACCEPTED, REJECTED, UNCHECKED, Verdict
from .base import Verifier
from .block import BlockVerification
from .token import GreedyMatch, SpeculativeSampling, TopKMatch, TypicalAcceptance
from .tree import TreeGreedy, TreeSpeculative, TreeVerifier

RULES: dict[str, type[Verifier]] = {cls.name: cls for cls in (
    GreedyMatch, SpeculativeSampling, BlockVerification, TypicalAcceptance, TopKMatch, TreeGreedy, TreeSpeculative)}


def as_verifier(verifier) -> Verifier:
    """None -> speculative sampling; a rule's name -> that rule with its default options; a Verifier -> itself."""
    if verifier is None:
        return SpeculativeSampling()
    if isinstance(verifier, str):
        if verifier not in RULES:
            raise ValueError(f"unknown verifier {verifier!r}; valid names: {', '.join(RULES)}")
        return RULES[verifier]()
    if not isinstance(verifier, Verifier):
        raise TypeError(f"verifier must be None, a name or a specdec_lab.verifiers.Verifier (subclass it and "
                        f"declare its abilities), got {type(verifier).__name__}")
    return verifier


__all__ = ["ACCEPTED", "REJECTED", "RULES", "UNCHECKED", "BlockVerification", "GreedyMatch", "SpeculativeSampling",
           "TopKMatch", "TreeGreedy", "TreeSpeculative", "TreeVerifier", "TypicalAcceptance", "Verdict", "Verifier",
           "as_verifier"]
