"""Drafters: anything that proposes the next γ tokens. One file per method."""

from .base import Draft, Drafter, as_drafter
from .small_model import ModelDrafter

__all__ = ["Draft", "Drafter", "ModelDrafter", "as_drafter"]
