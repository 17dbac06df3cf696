"""Medusa-style heads: self-drafting parts that sit on a target (the zoo trains them, zoo/train.py).

Medusa (Cai et al., 2024, section 2.1.1): K extra heads read the target's last
hidden state h_t (after the final norm) and head k predicts the token at
position t + k + 1 (the model's own head already predicts t + 1):

    p_k(· | h_t) = softmax(W_head · (h_t + SiLU(W_k h_t)))      k = 1..K

Here every head reuses the target's frozen output matrix W_head (tied to its
embeddings), so a head costs one d×d matrix and the zoo stays small.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class MedusaHeads(nn.Module):
    """K residual blocks; ``forward`` maps (..., d) hidden states to (K, ..., d) head features."""

    def __init__(self, hidden: int, n_heads: int):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_heads))
        for block in self.blocks:  # start as the identity: each head first predicts like the base head
            nn.init.zeros_(block.weight)
            nn.init.zeros_(block.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.stack([h + nn.functional.silu(block(h)) for block in self.blocks])  # (K, ..., d)

    def save(self, folder: Path, meta: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.half().contiguous() for k, v in self.state_dict().items()}, str(folder / "heads.safetensors"))
        cfg = {"kind": "medusa", "hidden": self.blocks[0].in_features, "n_heads": len(self.blocks)} | meta
        (folder / "heads_config.json").write_text(json.dumps(cfg, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "MedusaHeads":
        cfg = json.loads((Path(folder) / "heads_config.json").read_text())
        heads = cls(cfg["hidden"], cfg["n_heads"])
        heads.load_state_dict({k: v.float() for k, v in load_file(str(Path(folder) / "heads.safetensors")).items()})
        return heads.eval()
