"""Timing honesty: a median with its spread, and a warning when the machine is too busy for timings to mean much.

A speedup is a ratio of two wall-clock times. On a shared 2-core machine another program can move one of them by
more than speculative decoding moves it (transformers' own ``generate`` was seen at 0.49–1.63× against itself), so
every speed cell repeats its runs interleaved, shows the median and the range, and says when to distrust it:

  - the 1-minute load average, less the one core this process keeps busy, is at least half of the cores; or
  - the repeats disagree: (max − min) / median > ``SPREAD_LIMIT``.

Counts (α, τ, target forwards) are deterministic and need none of this.
"""

from __future__ import annotations

import os
import statistics

SPREAD_LIMIT = 0.25  # (max − min) / median of the repeats above which a timing is called unreliable
BUSY_SHARE = 0.5  # other processes' load, as a share of the cores, above which the machine is called busy


def median_range(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of repeated measurements."""
    if not values:
        raise ValueError("no measurements")
    return statistics.median(values), min(values), max(values)


def relative_spread(values: list[float]) -> float:
    """(max − min) / median; 0 for a single measurement."""
    median, low, high = median_range(values)
    return 0.0 if len(values) < 2 or median == 0 else (high - low) / abs(median)


def other_load(load: float | None = None, cores: int | None = None) -> float | None:
    """The 1-minute load average not explained by this process (counted as one busy core), per core; None where
    the platform has no load average."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    cores = cores or os.cpu_count() or 1
    return max(0.0, load - 1.0) / cores


def busy_warning(repeats: list[float] | None = None, load: float | None = None, cores: int | None = None) -> str | None:
    """A sentence saying why the timings just taken may not mean much, or None when nothing suggests so.

    ``repeats``: the same quantity measured several times (e.g. the speedup of each interleaved repeat).
    ``load``, ``cores``: the 1-minute load average and core count (read from the machine when not given).
    """
    reasons = []
    share = other_load(load, cores)
    if share is not None and share >= BUSY_SHARE:
        reasons.append(f"other programs keep {share:.0%} of the cores busy (load average)")
    if repeats and len(repeats) > 1 and relative_spread(repeats) > SPREAD_LIMIT:
        median, low, high = median_range(repeats)
        reasons.append(f"the repeats range from {low:.2f} to {high:.2f} around a median of {median:.2f}")
    if not reasons:
        return None
    return ("⚠ timings unreliable: " + "; ".join(reasons) +
            ". Timing noise can be larger than the effect: re-run on an idle machine, or trust the counts (α, τ).")
