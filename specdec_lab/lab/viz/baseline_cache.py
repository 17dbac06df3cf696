"""The autoregressive baseline each speculative run is compared against, measured once per setting that changes it.

The baseline depends on the prompt and the sampling settings (new tokens, temperature, top-p, seed) only, not on γ,
the drafter, the verifier or the tree budget: those reuse it, so moving γ or switching drafters costs one
speculative run. The key is (prompt token ids, the sampling arguments sorted by name).
"""

from __future__ import annotations

from typing import Callable

from ...core.trace import GenerationOutput


def baseline_key(prompt_ids, sampling: dict) -> tuple:
    """What the baseline depends on: the prompt's token ids and the sampling arguments (order-free)."""
    return tuple(prompt_ids), tuple(sorted(sampling.items()))


class BaselineCache:
    """Baseline runs by :func:`baseline_key`; ``measure(prompt_ids, **sampling)`` makes one on a miss."""

    def __init__(self, measure: Callable[..., GenerationOutput]):
        self.measure = measure
        self._runs: dict[tuple, GenerationOutput] = {}

    def has(self, prompt_ids, sampling: dict) -> bool:
        return baseline_key(prompt_ids, sampling) in self._runs

    def get(self, prompt_ids, sampling: dict) -> GenerationOutput:
        """The baseline for ``prompt_ids`` and ``sampling``: the stored one, else measured now and stored."""
        key = baseline_key(prompt_ids, sampling)
        if key not in self._runs:
            self._runs[key] = self.measure(list(prompt_ids), **sampling)
        return self._runs[key]

    def clear(self) -> None:
        """Forget every baseline (the next run of each setting measures it again)."""
        self._runs.clear()

    def __len__(self) -> int:
        return len(self._runs)
