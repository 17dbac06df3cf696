# Exercise "kernels": fill in both bodies, then run the check below.
import torch


def accept_probability(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """min(1, p(x) / q(x)) for every token x of the vocabulary."""
    return torch.clamp(p / q, max=1.0)


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The distribution sampled after a rejection: max(0, p − q), normalised."""
    mass = torch.clamp(p - q, min=0.0)
    return mass / mass.sum()
