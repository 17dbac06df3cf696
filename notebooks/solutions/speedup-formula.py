# Exercise "speedup-formula": fill in the body, then run the check below.
def predicted_speedup(alpha: float, gamma: int, c: float) -> float:
    """E[τ] / (γc + 1): tokens per step over the cost of a step, in target forwards."""
    tau = gamma + 1 if alpha == 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)
    return tau / (gamma * c + 1)
