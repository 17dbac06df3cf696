# Exercise "kernels": fill in both bodies, then run the check below.
import torch


def accept_probability(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """min(1, p(x) / q(x)) for every token x of the vocabulary."""
    # q(x) = 0: x is never drafted, and p/0 is NaN where p(x) = 0 too; a tiny q keeps the limit (1 if p(x) > 0, else 0)
    return torch.clamp(p / q.clamp_min(torch.finfo(q.dtype).tiny), max=1.0)


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The distribution sampled after a rejection: max(0, p − q), normalised."""
    mass = torch.clamp(p - q, min=0.0)
    total = mass.sum()
    if total == 0:  # p = q: a rejection never happens, and 0/0 is NaN; any distribution will do, p is the natural one
        return p
    return mass / total
