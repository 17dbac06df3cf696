"""Drafters: anything that proposes the next γ tokens. One file per method."""

from .base import Draft, Drafter, DraftTree, TreeDrafter, as_drafter
from .small_model import ModelDrafter

__all__ = ["Draft", "DraftTree", "Drafter", "TreeDrafter", "ModelDrafter", "as_drafter"]
