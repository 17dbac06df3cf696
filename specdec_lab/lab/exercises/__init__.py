"""The notebooks' exercise checks: one per exercise, run on cases where wrong answers differ.

Each notebook has an exercise cell (tagged ``exercise``) that ships a function with a blank body (``...``);
the cell below it calls ``check(name, your_function)``:

  - blank (the function returns None or raises NotImplementedError): prints "not done yet" and returns False,
    so Run All still finishes;
  - wrong on any case: raises :class:`WrongAnswer`, whose message names the case (its inputs) and what is special
    about it, never the expected value; the traceback ends at ``check``, so it shows no line of the answer key;
  - right on every case: prints "correct: ..." and returns True.

The cases are data (:mod:`.cases`: per exercise a list of Case(args, right answer, hint)) and one runner walks them
(:mod:`.runner`), converting every answer before comparing it. They are chosen so that the usual wrong answers fail,
each on the case whose hint speaks to it: temperatures above 0 and unequal p and q (where min(1, p/q), p·q, p/q and 1
differ), q(x) = 0 and p = q (where a kernel divides by zero), ties (the smaller γ), edges (α = 0 and 1, no n-gram
match, a draft that runs off the end), and both branches of every min and max.
Solutions live outside the notebooks, in ``notebooks/solutions/<name>.py``; ``tests/test_exercises.py``
checks that each solution passes, that each blank is "not done", and that known-wrong answers fail with their hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from .cases import EXERCISES
from .runner import Case, Exercise, NotDone, WrongAnswer, run

__all__ = ["EXERCISES", "Case", "Exercise", "NotDone", "WrongAnswer", "check"]


def check(name: str, *answers: Callable) -> bool:
    """Run exercise ``name``'s cases on the learner's functions: print "correct: ..." or "not done yet ...".

    Returns True when correct, False when not done yet; raises :class:`WrongAnswer` when wrong, and ValueError or
    TypeError for a name that is no exercise or the wrong number of functions.
    """
    __tracebackhide__ = True  # IPython and pytest hide this frame too: the learner sees their cell and the hint
    exercise = _exercise(name)
    if len(answers) != len(exercise.functions) or not all(callable(a) for a in answers):
        given = ", ".join(type(a).__name__ for a in answers) or "nothing"
        raise TypeError(f"check({name!r}, ...) takes {len(exercise.functions)} function(s): "
                        f"{', '.join(exercise.functions)}; got {given}")
    try:
        summary = run(exercise, answers)
    except NotDone:
        print(f"not done yet: write {' and '.join(exercise.functions)} in the cell above, then run this cell again")
        return False
    except WrongAnswer as wrong:
        failure = WrongAnswer(str(wrong))
    else:
        print(f"correct: {summary}")
        return True
    # Raised here, outside the handler, as a fresh exception: its traceback starts at this frame and carries no
    # context, so it shows neither the runner's comparison nor the library function that holds the right answer.
    raise failure


def _exercise(name) -> Exercise:
    if isinstance(name, str) and name in EXERCISES:
        return EXERCISES[name]
    close = difflib.get_close_matches(name, list(EXERCISES), n=1) if isinstance(name, str) else []
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"no exercise is called {name!r}{guess}; the exercises are: {', '.join(EXERCISES)}")
