# Exercise "typical-bar": fill in the body, then run the check below.
import math

import torch


def typical_threshold(p: torch.Tensor, epsilon: float, delta: float) -> float:
    """Medusa's bar min(ε, δ·exp(−H(p))), with the entropy H(p) = −Σ p log p in nats (0·log 0 = 0)."""
    entropy = -sum(float(x) * math.log(float(x)) for x in p if x > 0)
    return min(epsilon, delta * math.exp(-entropy))
