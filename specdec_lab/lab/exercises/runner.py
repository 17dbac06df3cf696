"""One runner for every exercise: call the learner's function on each case, convert what it returns, compare.

An answer is converted before it is compared (``float``, ``int``, a bounded ``islice``, ``torch.as_tensor``), so an
object whose ``__eq__`` says True to everything, an endless iterator or ``10**400`` fails with a sentence instead of
passing, hanging or raising a raw OverflowError. The inputs are deep copies, so an answer that changes them in place
changes no later case.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...bench.costmodel import Hardware, ModelShape


class NotDone(Exception):
    """The answer is still blank."""


class WrongAnswer(AssertionError):
    """The answer differs from the right one on a case; the message says which case, not the expected value."""


class Unfit(Exception):
    """What an answer returned is not of the kind asked for (a number, a whole number, a list of ids, ...)."""

    def __init__(self, problem: str, with_hint: bool = False):
        super().__init__(problem)
        self.with_hint = with_hint  # True where the case says why (a NaN at q(x) = 0), False for a plain type error


@dataclass(frozen=True)
class Case:
    args: tuple  # what the learner's function is called with (each call gets a deep copy)
    want: object  # the right answer, or a predicate (converted answer -> bool) where several answers are right
    hint: str  # what is special about the case: shown when the answer is wrong, and never the answer itself
    function: int = 0  # which of the exercise's functions this case calls
    shown: str | None = None  # how the call's arguments are shown, where their repr would not read well


@dataclass(frozen=True)
class Kind:
    """What an exercise's answer is: how to convert what the learner returned, and when it equals the right one."""

    convert: Callable[[object, Case], object]  # (returned value, case) -> the answer; raises Unfit
    same: Callable[[object, object], bool]  # (converted answer, case.want) -> equal?


@dataclass(frozen=True)
class Exercise:
    name: str  # what check() is called with, and the file name of its solution
    notebook: str  # the notebook that holds it
    functions: tuple[str, ...]  # the names the learner writes, in the order check() takes them
    kind: Kind  # how an answer is converted and compared
    cases: Callable[[], list[Case]]  # built when checked (they import the library; the bug hunt's take seconds)
    summary: str  # printed after "correct: " when every case passes


def run(exercise: Exercise, answers: tuple[Callable, ...]) -> str:
    """Every case of the exercise on the learner's functions: the summary, or NotDone / WrongAnswer at the first miss.

    A blank answer (``...`` returns None, or NotImplementedError) is NotDone on the first call of each function.
    """
    called: set[int] = set()
    for case in exercise.cases():
        fn = answers[case.function]
        call = f"{getattr(fn, '__name__', 'your function')}{case.shown or _show(fn, case.args)}"
        got = _answer(fn, case, exercise.kind, call, first=case.function not in called)
        called.add(case.function)
        ok = case.want(got) if callable(case.want) else exercise.kind.same(got, case.want)
        if not ok:
            raise WrongAnswer(f"{call} is wrong: {case.hint}")
    return exercise.summary


def _answer(fn: Callable, case: Case, kind: Kind, call: str, first: bool):
    """fn(*case.args) converted to the exercise's kind; the learner's own errors (also while converting, as an
    iterator's code runs then) become WrongAnswer with their message."""
    try:
        out = fn(*copy.deepcopy(case.args))
        if out is None or out is Ellipsis:
            if first:
                raise NotDone
            raise WrongAnswer(f"{call} returned {out!r}")
        return kind.convert(out, case)
    except (NotDone, WrongAnswer):
        raise
    except NotImplementedError:
        raise NotDone from None
    except Unfit as unfit:
        raise WrongAnswer(f"{call} {unfit}" + (f": {case.hint}" if unfit.with_hint else "")) from None
    except Exception as e:  # a crash is a wrong answer, and its message helps
        raise WrongAnswer(f"{call} raised {type(e).__name__}: {e}; this case: {case.hint}") from None


# -- the kinds of answer --------------------------------------------------------------------------------------------

def _a(value) -> str:
    """'a float', 'an AlwaysEqual': what the learner returned, by type only (its repr could be anything)."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def to_number(value, noun: str = "a number") -> float:
    """A finite float from an int, float, NumPy scalar or one-element tensor; Unfit for anything else."""
    if isinstance(value, (bool, str, bytes)):
        raise Unfit(f"returned {_a(value)}, not {noun}")
    if type(value).__module__ == "numpy" and getattr(value, "dtype", None) is not None and value.dtype.kind == "b":
        raise Unfit(f"returned a NumPy bool, not {noun}")
    if type(value).__module__ == "numpy" and getattr(value, "size", None) == 1 and value.dtype.kind in "iuf":
        value = value.item()  # a one-element array, as a one-element tensor is: its number
    try:
        number = float(value)
    except OverflowError:  # an int beyond float's range, e.g. 10**400
        raise Unfit("returned an int too large for a float: not a finite number", with_hint=True) from None
    except (TypeError, ValueError, RuntimeError):
        raise Unfit(f"returned {_a(value)}, not {noun}") from None
    if not math.isfinite(number):
        raise Unfit("returned nan or inf: not a finite number", with_hint=True)
    return number


def to_whole(value, noun: str = "a whole number") -> int:
    """An int from an int, NumPy int or a float that is whole (3.0); Unfit for a bool, a fraction or anything else."""
    if isinstance(value, bool):
        raise Unfit(f"returned a bool, not {noun}")
    try:
        return operator.index(value)
    except TypeError:
        number = to_number(value, noun)
    if not number.is_integer():
        raise Unfit(f"returned a fraction, not {noun}")
    return int(number)


def to_truth(value) -> bool:
    """True or False (also NumPy's bool and a one-element bool tensor); Unfit for anything else, 0 and 1 included."""
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool and value.numel() == 1:
        return bool(value)
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy.bool_, without importing NumPy for it
        return bool(value)
    raise Unfit(f"returned {_a(value)}, not True or False")


def to_ids(value, limit: int) -> list[int]:
    """At most ``limit`` whole numbers from a list, tuple, tensor or iterator (read with islice, so an endless one
    stops); Unfit when there are more."""
    if isinstance(value, torch.Tensor):
        if value.dim() > 1:
            raise Unfit("returned a tensor with more than one dimension, not a list of token ids")
        value = value.tolist()
    if isinstance(value, (str, bytes, dict, set)) or not hasattr(value, "__iter__"):
        raise Unfit(f"returned {_a(value)}, not a list of token ids")
    items = list(itertools.islice(iter(value), limit + 1))
    if len(items) > limit:
        raise Unfit("returned more tokens than gamma asks for", with_hint=True)
    return [to_whole(x, "a list of token ids (whole numbers)") for x in items]


def to_row(value, like: torch.Tensor) -> torch.Tensor:
    """A finite float64 tensor of ``like``'s shape (a list of numbers will do)."""
    try:
        row = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise Unfit(f"returned {_a(value)}, not a tensor") from None
    if row.numel() != like.numel():
        raise Unfit("should return a tensor with one entry per token of the vocabulary, like p")
    if not torch.isfinite(row).all():
        raise Unfit("returned NaN or inf for some token (a division by zero?)", with_hint=True)
    return row.reshape(like.shape)


def close(got: float, want: float, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    return abs(got - want) <= max(abs_, rel * abs(want))


def number(rel: float = 1e-6) -> Kind:
    """A number, equal to the right one within ``rel``."""
    return Kind(lambda value, case: to_number(value), lambda got, want: close(got, want, rel))


WHOLE = Kind(lambda value, case: to_whole(value), lambda got, want: got == want)
TRUTH = Kind(lambda value, case: to_truth(value), lambda got, want: got == want)
IDS = Kind(lambda value, case: to_ids(value, limit=case.args[1]), lambda got, want: got == want)  # args: (ids, γ)
ROW = Kind(lambda value, case: to_row(value, like=case.args[0]),  # args: (p, q)
           lambda got, want: bool(torch.allclose(got, want, rtol=0.0, atol=1e-9)))


# -- how a call is shown ---------------------------------------------------------------------------------------------

def _show(fn: Callable, args: tuple) -> str:
    """The call as a learner would type it, with their parameter names where their function has exactly that many
    (tensors as lists, hardware by name, model shapes by size)."""
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    shown = [_one(a) for a in args]
    if len(names) == len(args):
        shown = [f"{n}={s}" for n, s in zip(names, shown)]
    return "(" + ", ".join(shown) + ")"


def _one(a) -> str:
    if isinstance(a, torch.Tensor):
        return "[" + ", ".join(f"{x:g}" for x in a.tolist()) + "]"
    if isinstance(a, float):
        return f"{a:g}"
    if isinstance(a, Hardware):
        return a.name
    if isinstance(a, ModelShape):
        return f"<{a.params:.3g}-parameter model>"
    return repr(a)
