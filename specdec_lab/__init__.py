"""specdec_lab: speculative decoding, step by step.

Notation throughout (Leviathan et al., 2023): p = target distribution,
q = drafter distribution, γ = draft length, α = acceptance rate,
c = drafter cost relative to the target.
"""

from .decode import generate_autoregressive, generate_speculative
from .drafters import Draft, ModelDrafter
from .sampling import SamplingConfig, probs_from_logits
from .trace import GenerationOutput, StepRecord, Stats
from .verifiers import GreedyMatch, SpeculativeSampling, Verdict

__all__ = [
    "Draft",
    "GenerationOutput",
    "GreedyMatch",
    "ModelDrafter",
    "SamplingConfig",
    "SpeculativeSampling",
    "StepRecord",
    "Stats",
    "Verdict",
    "generate_autoregressive",
    "generate_speculative",
    "probs_from_logits",
]
__version__ = "0.1.0"
