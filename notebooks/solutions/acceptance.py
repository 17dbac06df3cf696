# Exercise "acceptance": fill in the body, then run the check below.
def accept_probability(p_x: float, q_x: float) -> float:
    """The probability of keeping a drafted token x, from p(x) (the target's) and q(x) (the drafter's)."""
    return min(1.0, p_x / q_x)
