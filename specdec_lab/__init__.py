"""specdec_lab: speculative decoding, step by step.

Notation throughout (Leviathan et al., 2023): p = target distribution,
q = drafter distribution, γ = draft length, α = acceptance rate,
c = drafter cost relative to the target.
"""

from .decode import generate_autoregressive, generate_speculative
from .drafters import Draft, DraftTree, ModelDrafter
from .registry import DRAFTERS, VERIFIERS, build_drafter, build_verifier
from .sampling import SamplingConfig, probs_from_logits
from .trace import GenerationOutput, StepRecord, Stats
from .tree_verifiers import TreeGreedy, TreeSpeculative
from .verifiers import GreedyMatch, SpeculativeSampling, TopKMatch, TypicalAcceptance, Verdict

__all__ = [
    "DRAFTERS",
    "VERIFIERS",
    "Draft",
    "DraftTree",
    "GenerationOutput",
    "GreedyMatch",
    "ModelDrafter",
    "SamplingConfig",
    "SpeculativeSampling",
    "StepRecord",
    "Stats",
    "TopKMatch",
    "TreeGreedy",
    "TreeSpeculative",
    "TypicalAcceptance",
    "Verdict",
    "build_drafter",
    "build_verifier",
    "generate_autoregressive",
    "generate_speculative",
    "probs_from_logits",
]
__version__ = "0.1.0"
