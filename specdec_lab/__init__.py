"""specdec_lab: speculative decoding, step by step.

Notation throughout (Leviathan et al., 2023): p = target distribution,
q = drafter distribution, γ = draft length, α = acceptance rate,
c = drafter cost relative to the target.

The package in layers, each importing only those below it:
    core/       the values and kernels: sampling, theory, tree, types (Draft, DraftTree, Verdict), the cached target
                (lm), the run's config, trace and argument checks
    verifiers/  the acceptance rules and their exact laws
    drafters/   the drafting methods and the drafter contract
    models/     loading models (the bundled zoo, SmolLM2, any Hugging Face folder) and the trained drafters
    decode.py   the two loops;  registry.py  every method by name
    bench/      measuring: the benchmark runner, cost model, timing, side-by-side comparisons, settings export
    lab/        teaching: exercises, the bug lab, replay, and the widgets (viz/)
    cli.py      the command line
"""

from .decode import generate_autoregressive, generate_speculative
from .drafters import Draft, DraftTree, ModelDrafter
from .registry import DRAFTERS, VERIFIERS, build_drafter, build_verifier
from .core.sampling import SamplingConfig, probs_from_logits
from .core.trace import GenerationOutput, StepRecord, Stats
from .models.loading import load_model, load_pair
from .models.smollm2 import chat_ids
from .verifiers import (BlockVerification, GreedyMatch, SpeculativeSampling, TopKMatch, TreeGreedy, TreeSpeculative,
                        TypicalAcceptance, Verdict, Verifier)
from . import lab  # noqa: F401, E402 - in a notebook, the workbook picks its torch thread count once (lab/threads.py)

__all__ = [
    "BlockVerification",
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
    "Verifier",
    "build_drafter",
    "build_verifier",
    "chat_ids",
    "generate_autoregressive",
    "generate_speculative",
    "load_model",
    "load_pair",
    "probs_from_logits",
]
__version__ = "0.1.0"
