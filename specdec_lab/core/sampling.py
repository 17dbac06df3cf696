"""Logits -> the distribution actually sampled from, and the few idioms built on it.

Target and drafters both call :func:`probs_from_logits` with the same
:class:`SamplingConfig`, so the p (target) and q (drafter) that the verifiers
and the acceptance math talk about are exactly the distributions tokens are
drawn from.

    temperature T = 0   ->  one_hot(argmax(logits))              (greedy)
    temperature T > 0   ->  softmax(filter(logits) / T)
    filter              =   keep the top-k logits, then the smallest set of
                            tokens whose probability mass reaches top-p
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .validate import is_int, is_number


MIN_TEMPERATURE = 1e-4  # below this (but > 0), logits / T can overflow float32: use 0 for greedy decoding


@dataclass(frozen=True)
class SamplingConfig:
    """How logits become a distribution; validated on construction."""

    temperature: float = 0.0  # 0 = greedy (one-hot on the argmax); > 0 divides the logits
    top_k: int | None = None  # keep only the k most likely tokens (None = all)
    top_p: float | None = None  # nucleus: smallest set with mass >= top_p, in (0, 1] (None = 1)

    def __post_init__(self):
        t = self.temperature
        if not is_number(t) or math.isnan(t) or math.isinf(t):
            raise TypeError(f"temperature must be a finite number, got {t!r}")
        if t < 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {t}")
        if 0 < t < MIN_TEMPERATURE:
            raise ValueError(
                f"temperature {t} is too small to divide logits by (logits / T would overflow to inf and the "
                f"distribution to NaN); use a temperature >= {MIN_TEMPERATURE}, or 0 for greedy decoding"
            )
        if self.top_k is not None:
            if not is_int(self.top_k):
                raise TypeError(f"top_k must be an int or None, got {self.top_k!r}")
            if self.top_k <= 0:
                raise ValueError(f"top_k must be >= 1 (or None for no limit), got {self.top_k}")
        if self.top_p is not None:
            if not is_number(self.top_p):
                raise TypeError(f"top_p must be a number or None, got {self.top_p!r}")
            if not (0.0 < self.top_p <= 1.0):
                raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        # NumPy scalars (np.float32(0.5), np.int64(5)) pass as numbers; the engine holds Python numbers from here on
        object.__setattr__(self, "temperature", float(t))
        object.__setattr__(self, "top_k", None if self.top_k is None else int(self.top_k))
        object.__setattr__(self, "top_p", None if self.top_p is None else float(self.top_p))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def check_finite_logits(logits: torch.Tensor, who: str = "model") -> None:
    """Raise if logits hold NaN or +inf (-inf is a legitimate mask)."""
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError(
            f"the {who} produced NaN or +inf logits; refusing to sample from them "
            "(check the model's weights and dtype)"
        )


def one_hot(index: torch.Tensor, vocab_size: int, dtype=torch.float32) -> torch.Tensor:
    """(...,) token ids -> (..., V) one-hot distributions."""
    out = torch.zeros(*index.shape, vocab_size, dtype=dtype, device=index.device)
    return out.scatter_(-1, index.unsqueeze(-1), 1.0)


def probs_from_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """(..., V) logits -> (..., V) float32 probabilities actually sampled from.

    Rows are independent, so a target's (γ+1, V) block and a drafter's (V,) row
    go through the same code.
    """
    logits = logits.float()
    if cfg.greedy:
        if bool(torch.isneginf(logits).all(dim=-1).any()):  # argmax would pick token 0, a token with probability 0
            raise ValueError("every logit is -inf (every token masked): there is no token to pick greedily; "
                             "check the logits and the EOS mask (min_new_tokens)")
        return one_hot(logits.argmax(dim=-1), logits.shape[-1])
    logits = logits / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < logits.shape[-1]:
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p is not None and cfg.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = sorted_logits.softmax(dim=-1)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of strictly better tokens
        drop_sorted = mass_before >= cfg.top_p
        drop_sorted[..., 0] = False  # the top token always survives (even a top_p that rounds to 0 in float32)
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    if bool(torch.isnan(probs).any()):  # every logit -inf, or an overflow: never sample from NaN
        raise ValueError(
            f"the distribution became NaN after temperature {cfg.temperature}, top-k {cfg.top_k}, top-p {cfg.top_p} "
            "(all logits masked or overflowing); check the logits and the sampling settings"
        )
    return probs


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(..., V) probabilities -> (...,) token ids, one draw per row."""
    flat = probs.reshape(-1, probs.shape[-1])
    top, index = flat.max(dim=-1)
    if bool((top == 1.0).all()):  # one-hot rows (greedy, top_k=1): the draw is certain, skip the sampler
        return index.reshape(probs.shape[:-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


def accepted_prefix_len(accepted: torch.Tensor) -> int:
    """Length of the leading run of True in a 1-D bool mask: [T, T, F, T] -> 2."""
    return int(accepted.to(torch.int64).cumprod(dim=0).sum())
