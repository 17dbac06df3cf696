"""The drafter interface: propose only the NEW tokens, and observe the verdict.

A drafter's ``propose`` gets the whole sequence so far (prompt + accepted
output) and returns at most γ new tokens, with the drafter's distribution q
for each (or None when it proposes without one, e.g. a lookup table). It may
keep state (a KV cache, an n-gram pool); it keeps it consistent by comparing
the sequence it is given with the one it last saw, so nothing outside it
has to roll it back.

``to_probs(logits, i)`` is the loop's own logits -> distribution rule for the
i-th drafted position (temperature, top-k, top-p, and the EOS mask that
``min_new_tokens`` needs): a drafter that samples must use it, so q is built
exactly like the target's p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol

import torch

from ..sampling import accepted_prefix_len

ToProbs = Callable[[torch.Tensor, int], torch.Tensor]  # ((T, V) logits, index of first row) -> (T, V)


@dataclass
class Draft:
    """What a drafter proposes for one step."""

    tokens: torch.Tensor  # (γ,) int64, the new tokens only
    q: torch.Tensor | None = None  # (γ, V) the drafter's distributions, or None for a deterministic draft

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def truncated(self, n: int) -> "Draft":
        return Draft(self.tokens[:n], None if self.q is None else self.q[:n])


class Drafter(Protocol):
    name: ClassVar[str]
    may_abstain: ClassVar[bool]  # True if an empty draft is a normal answer (lookup found nothing)
    vocab_size: int | None  # width of q, checked against the target; None if it proposes ids only

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft: ...

    def observe(self, n_accepted: int, n_drafted: int) -> None: ...


def as_drafter(drafter):
    """A drafter object as is; a transformers causal LM wrapped as the independent small-model drafter."""
    if callable(getattr(drafter, "propose", None)):
        return drafter
    if isinstance(drafter, torch.nn.Module):
        from .small_model import ModelDrafter

        return ModelDrafter(drafter)
    raise TypeError(
        "drafter must be a drafter object (with .propose) or a transformers causal LM, "
        f"got {type(drafter).__name__}"
    )


def common_prefix_len(a: torch.Tensor, b: torch.Tensor) -> int:
    """Number of leading positions where two 1-D token sequences agree."""
    m = min(a.shape[0], b.shape[0])
    return accepted_prefix_len(a[:m] == b[:m])
