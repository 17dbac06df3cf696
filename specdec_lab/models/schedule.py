"""The learning-rate schedule every training script here uses: cosine decay from the peak to a floor.

    lr = base_lr · (floor + (1 − floor) · ½ · (1 + cos(π · progress))),   progress = done / total ∈ [0, 1]

so lr(0) = base_lr and lr(1) = floor · base_lr (10% by default). Warm-up is the caller's: ``zoo/train.py``
ramps linearly and then starts the cosine at progress 0; ``smol/train.py`` multiplies its base rate by
min(1, (step + 1) / 10) while the cosine already runs.
"""

from __future__ import annotations

import math


def cosine_lr(base_lr: float, done: float, total: float = 1, floor: float = 0.1) -> float:
    """base_lr · (floor + (1 − floor) · ½ · (1 + cos(π · done / total))): from base_lr down to floor · base_lr.

    Pass steps done and steps in all (``cosine_lr(lr, step, steps)``), or a progress fraction alone
    (``cosine_lr(lr, progress)``). π · done / total is computed in that order (π · done first), so each caller's
    numbers stay bit for bit what its own formula gave.
    """
    return base_lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done / total)))
