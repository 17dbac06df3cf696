# Exercise "roofline-speedup": fill in the body, then run the check below.
from specdec_lab.bench.costmodel import forward_time
from specdec_lab.core.theory import expected_tokens_per_step


def speedup_on(alpha: float, gamma: int, target, drafter, hw, context: int) -> float:
    """The roofline's speedup: c = t_drafter(1) / t_target(1), v = t_target(γ + 1) / t_target(1), then E[τ] / (γc + v)."""
    t1 = forward_time(target, 1, context, hw)
    c = forward_time(drafter, 1, context, hw) / t1
    v = forward_time(target, gamma + 1, context, hw) / t1
    return expected_tokens_per_step(alpha, gamma) / (gamma * c + v)
