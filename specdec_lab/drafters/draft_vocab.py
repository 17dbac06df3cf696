"""A draft vocabulary: the drafter scores only the K tokens a target says most, not all V.

Zhao et al., "FR-Spec: Accelerating Large-Vocabulary Language Models via Frequency-Ranked
Speculative Sampling" (2025); EAGLE-3 (Li et al. 2025) ships the same idea as its draft vocabulary.
For a small drafter the output head is most of its cost: SmolLM2's head is a 49 152 × 576 matrix,
8× one of its decoder layers. Restricting the drafter's head to a subset V' ⊂ V of K tokens

    q(x) = softmax(W'_out h)(x)   for x ∈ V',      q(x) = 0   for x ∉ V'

keeps q a distribution over the whole vocabulary, so every verifier stays exactly as lossless as
before (speculative sampling only needs q(x) > 0 wherever x is drafted). What it costs is α: a token
outside V' is never drafted, so the target's choice of such a token always ends the accepted prefix.
V' is the K most frequent tokens of the target's own answers (smol/train.py writes it, with its coverage).
"""

from __future__ import annotations

import torch
from torch import nn


class DraftVocabHead(nn.Module):
    """Logits over the draft vocabulary only, laid out over the full vocabulary (the rest: the lowest float)."""

    def __init__(self, head: nn.Module, token_ids: torch.Tensor):
        super().__init__()
        full = head.weight  # (V, d) the target's output matrix (tied to its embedding in SmolLM2)
        token_ids = torch.as_tensor(token_ids, dtype=torch.long, device=full.device)
        if token_ids.ndim != 1 or token_ids.numel() == 0 or int(token_ids.max()) >= full.shape[0] or int(token_ids.min()) < 0:
            raise ValueError(f"a draft vocabulary must be a non-empty list of token ids below {full.shape[0]}")
        if token_ids.unique().numel() != token_ids.numel():
            raise ValueError("a draft vocabulary must not repeat a token id")
        self._full = [full]  # a plain list: the shared matrix is not this module's parameter (no copy, not saved)
        self.register_buffer("token_ids", token_ids)  # (K,)
        self.register_buffer("sub_weight", full.detach()[token_ids].clone())  # (K, d): the rows the drafter reads
        self.bias = None

    @property
    def weight(self) -> torch.Tensor:
        """The full (V, d) matrix, so that vocab_size() and shape checks see the real vocabulary."""
        return self._full[0]

    @property
    def vocab_size(self) -> int:
        return int(self._full[0].shape[0])

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        sub = nn.functional.linear(h, self.sub_weight.to(h.dtype))  # (..., K)
        out = sub.new_full((*sub.shape[:-1], self.vocab_size), torch.finfo(sub.dtype).min)  # (..., V)
        return out.index_copy_(-1, self.token_ids, sub)
