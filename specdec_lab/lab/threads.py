"""How many torch threads the workbook runs with, chosen once per kernel and said once.

On a shared machine the choice matters more than anything else in the workbook: with one CPU-bound neighbour on the
same 2 cores, two torch threads made forwards 10–70× slower (each thread waits for a core the neighbour holds at every
barrier of a matrix multiply), while one thread only slows in proportion to the share of the core it gets. The rule:

    threads = SPECDEC_LAB_THREADS                       if set (the reader's choice)
            = torch's own count                          if OMP_NUM_THREADS is set (already chosen)
            = 1                                          on ≤ 2 cores (the notebook server and browser share them)
            = max(1, min(torch's count, cores − ⌈load⌉)) otherwise: one per core the load average leaves idle

The load average is the 1-minute one (``os.getloadavg``), read once at import.
"""

from __future__ import annotations

import math
import os
import sys

import torch

_ANNOUNCED = False


def choose_threads(cores: int, load: float, default: int, env: dict) -> tuple[int, str]:
    """(thread count, why) by the module's rule, from the machine's ``cores``, its 1-minute ``load`` average,
    torch's ``default`` count and the environment ``env``."""
    named = env.get("SPECDEC_LAB_THREADS")
    if named is not None:
        if not named.strip().isdigit() or int(named) < 1:
            raise ValueError(f"SPECDEC_LAB_THREADS must be a whole number >= 1, got {named!r}")
        return int(named), "SPECDEC_LAB_THREADS"
    if env.get("OMP_NUM_THREADS"):
        return default, "OMP_NUM_THREADS"
    if cores <= 2:
        return 1, f"{cores} cores, shared with the notebook server"
    idle = cores - math.ceil(load)
    return max(1, min(default, idle)), f"{cores} cores, load average {load:.1f}"


def announce_once() -> int | None:
    """In a Jupyter kernel, set torch's thread count by :func:`choose_threads` and print one line saying so (once per
    process); elsewhere (scripts, tests, the CLI) change nothing. Returns the count set, or None."""
    global _ANNOUNCED
    if _ANNOUNCED or "ipykernel" not in sys.modules:
        return None
    _ANNOUNCED = True
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    threads, why = choose_threads(os.cpu_count() or 1, load, torch.get_num_threads(), dict(os.environ))
    torch.set_num_threads(threads)
    print(f"specdec_lab: torch runs {threads} thread{'s' if threads > 1 else ''} ({why}); one thread per busy core "
          "degrades gracefully on a shared machine. SPECDEC_LAB_THREADS=N chooses another count.")
    return threads
