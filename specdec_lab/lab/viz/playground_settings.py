"""What one playground run asks for: the widgets' values, frozen."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    prompt: str
    drafter: str
    verifier: str
    gamma: int
    temperature: float
    top_p: float  # 1.0: no top-p filter
    max_new_tokens: int
    tree_budget: int = 0  # tree verifiers: the node budget of the tree shape chosen from measured acceptance (0: default shape)

    def sampling(self, seed: int) -> dict:
        """The decoding arguments the speculative run and its autoregressive baseline share (top-p 1.0: None, no filter)."""
        return dict(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                    top_p=None if self.top_p >= 1.0 else self.top_p, seed=seed)
