"""Time one forward over k new tokens with a warm KV cache: the measurement behind "verifying k costs about one".

For each k the model first reads a ``context``-token prompt into its cache; then the
forward over k more tokens is timed ``repeats`` times, in rounds over all k (the cache is
cropped back after each), and the median is kept. The tokens are arbitrary ids: the cost does not depend on them.
"""

from __future__ import annotations

import statistics
import time
import weakref

import torch

from ..core.lm import CachedLM


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_latency(model, ks=(1, 2, 4, 8, 16, 32, 64), context: int = 128, repeats: int = 7, seed: int = 0) -> dict[int, float]:
    """{k: median seconds of one forward over k new tokens after ``context`` cached ones}."""
    if context < 1 or repeats < 1 or any(k < 1 for k in ks):
        raise ValueError(f"need context >= 1, repeats >= 1 and every k >= 1, got {context}, {repeats}, {list(ks)}")
    g = torch.Generator().manual_seed(seed)
    vocab = model.get_input_embeddings().num_embeddings
    lm = CachedLM(model)
    device = lm.device
    prompt = torch.randint(vocab, (context,), generator=g).to(device)
    lm.forward(prompt, last_only=True)
    new = {k: torch.randint(vocab, (k,), generator=g).to(device) for k in ks}
    times = {k: [] for k in ks}
    for round_ in range(repeats + 1):  # round 0 warms up the kernels for each shape and is not kept
        for k in ks:  # round robin over k: a burst of other work slows every k alike, not one of them
            _sync(device)
            start = time.perf_counter()
            lm.forward(new[k], last_only=True)
            _sync(device)
            if round_:
                times[k].append(time.perf_counter() - start)
            lm.rollback(k)
    return {k: statistics.median(t) for k, t in times.items()}


_COSTS: "weakref.WeakKeyDictionary[object, dict[int, float]]" = weakref.WeakKeyDictionary()


def verify_cost(model, ks=(1, 2, 4, 8, 16, 32, 64), context: int = 128) -> dict[int, float]:
    """{k: t(k)/t(1)} for ``model`` on this machine, probed once per process and model (later calls: the cached
    figures; a model's cost does not change within a process, only the machine's load does)."""
    cached = _COSTS.get(model)
    if cached is None or not set(ks) <= set(cached):
        times = forward_latency(model, tuple(sorted(set(ks) | {1})), context=context)
        cached = _COSTS[model] = {k: t / times[1] for k, t in times.items()}
    return dict(cached)
