"""Say whether a speed just measured can be trusted, before showing it.

A notebook cell that prints a timing-derived number (a speedup, c, v, ms per token) first calls :func:`caveat` with
the repeats it measured and the values that cannot be true of a working loop, and prints the warning it returns
*before* the number; :func:`tag` marks the number itself. Two kinds of evidence, as in :mod:`.timing`:

- the repeats disagree, (max − min) / median > ``timing.SPREAD_LIMIT``, or the machine's load is high
  (:func:`~specdec_lab.bench.timing.busy_warning`);
- an impossible value: verifying k ≥ 2 tokens in one forward cheaper than one forward (v < 1), a drafter forward
  that costs nothing or more than the target's (c ≤ 0), a loop measured against itself away from 1×, a time ≤ 0.

Counts (α, τ, forwards) are deterministic and need none of this.
"""

from __future__ import annotations

from collections.abc import Mapping

from .timing import busy_warning, relative_spread

__all__ = ["UNRELIABLE", "caveat", "impossible", "tag"]

UNRELIABLE = "⚠ timings unreliable on this busy machine"
SELF_TOLERANCE = 0.25  # a loop timed against itself (AR vs AR) further than this from 1× says the clock is disturbed


def impossible(v: float | None = None, c: float | None = None, self_ratio: float | None = None,
               seconds: float | None = None) -> list[str]:
    """The measured values that cannot be true, each as a phrase: v < 1 (one forward over several tokens cheaper
    than over one), c ≤ 0, a loop's speed against itself off 1× by more than ``SELF_TOLERANCE``, a time ≤ 0."""
    found = []
    if v is not None and v < 1.0:
        found.append(f"v = {v:.2f} < 1 (verifying several tokens cannot cost less than one forward)")
    if c is not None and c <= 0.0:
        found.append(f"c = {c:.2f} ≤ 0 (a drafter forward costs something)")
    if self_ratio is not None and abs(self_ratio - 1.0) > SELF_TOLERANCE:
        found.append(f"the same loop ran {self_ratio:.2f}× against itself")
    if seconds is not None and seconds <= 0.0:
        found.append(f"a time of {seconds:.3g} s")
    return found


def caveat(repeats: list[float] | Mapping[str, list[float]] | None = None, load: float | None = None,
           **values: float | None) -> str | None:
    """The sentence to print before a timing, or None when the repeats agree and nothing measured is impossible.

    ``repeats``: one quantity measured several times (a list), or several (name -> list; the widest spread counts).
    ``values``: what :func:`impossible` checks (``v``, ``c``, ``self_ratio``, ``seconds``). ``load``: the 1-minute
    load average (read from the machine when None)."""
    series = list(repeats.values()) if isinstance(repeats, Mapping) else [repeats or []]
    widest = max(series, key=lambda s: relative_spread(s) if s else 0.0, default=[])
    busy, bad = busy_warning(widest, load), impossible(**values)
    if busy is None and not bad:
        return None
    said = [UNRELIABLE + ":"]
    if bad:
        said.append("impossible values measured: " + "; ".join(bad) + ".")
    if busy is not None:
        said.append(busy.removeprefix("⚠ timings unreliable: "))
    return " ".join(said)


def tag(warning: str | None) -> str:
    """What to write beside each number a warned cell prints: '' when there was no warning."""
    return "" if warning is None else " (⚠ unreliable)"
