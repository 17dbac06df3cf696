"""Training an EAGLE head (the head itself, EagleHead, lives with its drafter in drafters/eagle_head.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...drafters.eagle_head import EagleConfig, EagleHead

__all__ = ["EagleConfig", "EagleHead", "eagle_loss"]


def eagle_loss(head: EagleHead, target, weight: float = 0.1, noise: float = 0.2, generator: torch.Generator | None = None):
    """The training loss on (B, T) windows x with next tokens y (see the module docstring).

    Row t of the head reads (f_t + u, e(y_t) = e(x_{t+1})) and is scored against f_{t+1}
    and against the target's distribution p at t + 1, for t = 0..T−2.
    """
    body, out_head, embed = target.model, target.get_output_embeddings(), target.get_input_embeddings()

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = body(input_ids=x).last_hidden_state  # (B, T, d), after the final norm
            p = out_head(f[:, 1:]).softmax(-1)  # (B, T-1, V) the target's next-token law at t + 1
            e = embed(y[:, :-1])  # (B, T-1, d) embeddings of x_{t+1}
            u = (torch.rand(f[:, :-1].shape, generator=generator, device=f.device) - 0.5) * noise
        f_hat = head(f[:, :-1] + u, e)  # (B, T-1, d)
        regression = F.smooth_l1_loss(f_hat, f[:, 1:])
        log_q = out_head(f_hat).log_softmax(-1)  # (B, T-1, V)
        classification = -(p * log_q).sum(-1).mean()
        loss.parts.append((regression.item(), classification.item()))
        return regression + weight * classification

    loss.parts = []  # (regression, classification) of every call, for the training record
    return loss
