"""Bad-input probes of the teaching layer (issue 33, items 6 and 8; issue 36, item 5): answers that would have fooled,
hung or crashed the exercise checker, and the bug lab's settings and rows. Each gives a clear error.

What now simply works (a row changed in place no longer changes later labs) is asserted in tests/test_bug_lab.py;
tests/test_exercises.py asserts each exercise message below.
"""

from __future__ import annotations

import itertools

from bad_input_outcome import outcome

from specdec_lab.core.theory import speedup
from specdec_lab.lab.bug_lab import Lab
from specdec_lab.lab.exercises import check

EXERCISE, BUG_LAB = "exercise check (v3)", "bug lab (v3)"


class AlwaysEqual:
    """Claims to equal everything."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


def _at_least(alpha, c, max_gamma):
    """best-gamma with >= : the later γ on a tie."""
    best = 1
    for g in range(1, max_gamma + 1):
        if speedup(alpha, g, c) >= speedup(alpha, best, c):
            best = g
    return best


def _quiet(fn):
    """Run a check without its printed outcome (the table records the error)."""
    import contextlib
    import io

    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()
    return run


def rows(tmp_path, monkeypatch) -> list[tuple[str, str, str, str]]:
    exercise = [
        ('check("acceptanse", ...): a misspelt name', lambda: check("acceptanse", lambda p_x, q_x: 1.0)),
        ('check("kernels", one function)', lambda: check("kernels", lambda p, q: p)),
        ('check("acceptance", 0.5): not a function', lambda: check("acceptance", 0.5)),
        ("greedy-prefix answer: an object whose __eq__ is always True",
         lambda: check("greedy-prefix", lambda p: AlwaysEqual())),
        ("best-gamma answer: an object whose __eq__ is always True",
         lambda: check("best-gamma", lambda alpha, c, max_gamma: AlwaysEqual())),
        ("best-gamma answer: >= keeps the later γ on a tie", lambda: check("best-gamma", _at_least)),
        ("prompt-lookup answer: itertools.repeat(1), endless",
         lambda: check("prompt-lookup", lambda ids, gamma: itertools.repeat(1))),
        ("speedup-formula answer: 10**400", lambda: check("speedup-formula", lambda alpha, gamma, c: 10 ** 400)),
        ("acceptance answer: nan", lambda: check("acceptance", lambda p_x, q_x: float("nan"))),
        ("kernels answer: p / q where q(x) = 0 (the old reference solution)",
         lambda: check("kernels", lambda p, q: (p / q).clamp(max=1),
                       lambda p, q: (p - q).clamp(min=0) / (p - q).clamp(min=0).sum())),
        ("kernels answer: the residual divides by its sum where p = q",
         lambda: check("kernels", lambda p, q: (p / q.clamp_min(1e-300)).clamp(max=1),
                       lambda p, q: (p - q).clamp(min=0) / (p - q).clamp(min=0).sum())),
    ]

    def vandal(lab, verifier):  # halves the rows it reads, then suspects everything
        lab.p_of(()).mul_(0.5)
        return True

    def scaled_then_always_true():
        Lab().p_of(()).mul_(0.5)  # with shared cached rows, this made every verifier look law-changing
        return check("bug-hunt", lambda lab, verifier: True)

    lab = Lab()
    bug_lab = [
        ("lab.p_of(()).mul_(0.5), then the bug hunt answered 'always True'", scaled_then_always_true),
        ("bug-hunt answer that halves every p row it reads, then says True", lambda: check("bug-hunt", vandal)),
        ("Lab(temperature=0.0)", lambda: Lab(temperature=0.0)),
        ("Lab(top_k=0)", lambda: Lab(top_k=0)),
        ("Lab(gamma=0)", lambda: Lab(gamma=0)),
        ("Lab(vocab=1)", lambda: Lab(vocab=1)),
        ("lab.dist('attacker', ())", lambda: lab.dist("attacker", ())),
        ("lab.p_of((7,)): a token outside the vocabulary", lambda: lab.p_of((7,))),
        ("lab.drafter_prefix(a q row scaled by 0.5)", lambda: lab.drafter_prefix(lab.q_of(()) * 0.5)),
    ]
    return ([(EXERCISE, label, *outcome(_quiet(fn))) for label, fn in exercise]
            + [(BUG_LAB, label, *outcome(_quiet(fn))) for label, fn in bug_lab])
