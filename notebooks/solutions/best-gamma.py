# Exercise "best-gamma": fill in the body, then run the check below.
from specdec_lab.core.theory import speedup


def best_draft_length(alpha: float, c: float, max_gamma: int) -> int:
    """The γ in 1..max_gamma with the highest expected speedup E[τ] / (γc + 1) (the smaller γ on a tie)."""
    return max(range(1, max_gamma + 1), key=lambda g: (speedup(alpha, g, c), -g))
