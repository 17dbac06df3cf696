"""The autoregressive baseline each speculative run is compared against, measured once per setting that changes it.

The baseline depends on the prompt, the sampling settings (new tokens, temperature, top-p, seed) and where the target
runs (its dtype and device: a bf16 target is another baseline than the fp32 one it was converted from), not on γ,
the drafter, the verifier or the tree budget: those reuse it, so moving γ or switching drafters costs one
speculative run. The key is (where, prompt token ids, the sampling arguments sorted by name).
"""

from __future__ import annotations

from typing import Callable

from ...core.trace import GenerationOutput


def baseline_key(prompt_ids, sampling: dict, where: tuple = ()) -> tuple:
    """What the baseline depends on: where the target runs, the prompt's token ids and the sampling arguments
    (order-free)."""
    return tuple(where), tuple(prompt_ids), tuple(sorted(sampling.items()))


def model_place(model) -> tuple[str, str]:
    """(dtype, device) of ``model`` as read now: ``model.to(torch.bfloat16)`` changes it, so it is read per call."""
    return str(getattr(model, "dtype", "")), str(getattr(model, "device", ""))


class BaselineCache:
    """Baseline runs by :func:`baseline_key`; ``measure(prompt_ids, **sampling)`` makes one on a miss.

    ``where()`` says where the target runs now (e.g. ``lambda: model_place(target)``); it is part of the key.
    """

    def __init__(self, measure: Callable[..., GenerationOutput], where: Callable[[], tuple] = tuple):
        self.measure, self.where = measure, where
        self._runs: dict[tuple, GenerationOutput] = {}

    def key(self, prompt_ids, sampling: dict) -> tuple:
        return baseline_key(prompt_ids, sampling, self.where())

    def has(self, prompt_ids, sampling: dict) -> bool:
        return self.key(prompt_ids, sampling) in self._runs

    def get(self, prompt_ids, sampling: dict) -> GenerationOutput:
        """The baseline for ``prompt_ids`` and ``sampling``: the stored one, else measured now and stored."""
        key = self.key(prompt_ids, sampling)
        if key not in self._runs:
            self._runs[key] = self.measure(list(prompt_ids), **sampling)
        return self._runs[key]

    def clear(self) -> None:
        """Forget every baseline (the next run of each setting measures it again)."""
        self._runs.clear()

    def __len__(self) -> int:
        return len(self._runs)
