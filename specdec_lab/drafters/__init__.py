"""Drafters: anything that proposes the next γ tokens. One file per method."""

from .adapt import DuckDrafter, as_drafter
from .cascade import FirstNonEmpty
from .base import Draft, Drafter, DraftTree, WrappedDrafter
from .dynamic import HeuristicGamma
from .eagle import EagleDrafter
from .early_exit import early_exit_drafter
from .lookahead import LookaheadDrafter
from .medusa import MedusaDrafter
from .prompt_lookup import PromptLookupDrafter
from .recycling import RecyclingDrafter
from .retrieval import RetrievalDrafter
from .small_model import ModelDrafter
from .suffix import SuffixDrafter

__all__ = [
    "Draft", "DraftTree", "Drafter", "EagleDrafter", "FirstNonEmpty", "HeuristicGamma", "LookaheadDrafter", "MedusaDrafter", "ModelDrafter", "PromptLookupDrafter",
    "RecyclingDrafter", "RetrievalDrafter", "SuffixDrafter", "DuckDrafter", "WrappedDrafter", "as_drafter", "early_exit_drafter",
]
