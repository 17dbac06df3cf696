"""The notebooks' exercise checks: one per exercise, run on cases where wrong answers differ.

Each notebook has an exercise cell (tagged ``exercise``) that ships a function with a blank body (``...``);
the cell below it calls ``check(name, your_function)``:

  - blank (the function returns None or raises NotImplementedError): prints "not done yet" and returns False,
    so Run All still finishes;
  - wrong on any case: raises :class:`WrongAnswer`, whose message names the case (its inputs) and what is special
    about it, never the expected value;
  - right on every case: prints "correct: ..." and returns True.

The cases are chosen so that the usual wrong answers fail: temperatures above 0 and unequal p and q (where
min(1, p/q), p·q, p/q and 1 differ), ties and edges (α = 1, no n-gram match, a draft that runs off the end),
and both branches of every min and max. The reference answers are the library's own functions.
Solutions live outside the notebooks, in ``notebooks/solutions/<name>.py``; ``tests/test_exercises.py``
checks that each solution passes, that each blank is "not done", and that known-wrong answers fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["EXERCISES", "NotDone", "WrongAnswer", "check"]


class NotDone(Exception):
    """The answer is still blank."""


class WrongAnswer(AssertionError):
    """The answer differs from the library's on a case; the message says which case, not the expected value."""


@dataclass(frozen=True)
class Exercise:
    name: str  # what check() is called with, and the file name of its solution
    notebook: str  # the notebook that holds it
    functions: tuple[str, ...]  # the names the learner writes, in the order check() takes them
    run: Callable[..., str]  # (*functions) -> a one-line summary when every case passes; raises otherwise


def check(name: str, *answers: Callable) -> bool:
    """Run exercise ``name``'s cases on the learner's functions: print "correct: ..." or "not done yet ...".

    Returns True when correct, False when not done yet; raises :class:`WrongAnswer` when wrong.
    """
    exercise = EXERCISES[name]
    if len(answers) != len(exercise.functions):
        raise TypeError(f"check({name!r}, ...) takes {len(exercise.functions)} function(s): {', '.join(exercise.functions)}")
    try:
        summary = exercise.run(*answers)
    except NotDone:
        print(f"not done yet: write {' and '.join(exercise.functions)} in the cell above, then run this cell again")
        return False
    print(f"correct: {summary}")
    return True


def _answer(fn: Callable, *args, first: bool = False):
    """fn(*args), with a blank answer (None, ``...`` or NotImplementedError) reported as NotDone on the first case."""
    call = f"{getattr(fn, '__name__', 'your function')}{_show(args)}"
    try:
        out = fn(*args)
    except NotImplementedError:
        raise NotDone from None
    except Exception as e:  # a crash is a wrong answer, and its message helps
        raise WrongAnswer(f"{call} raised {type(e).__name__}: {e}") from None
    if out is None or out is Ellipsis:
        if first:
            raise NotDone
        raise WrongAnswer(f"{call} returned {out!r}")
    return out


def _show(args) -> str:
    """Arguments as a learner would type them (tensors as lists, hardware and shapes by name)."""
    def one(a):
        if isinstance(a, torch.Tensor):
            return "[" + ", ".join(f"{x:g}" for x in a.tolist()) + "]"
        if isinstance(a, float):
            return f"{a:g}"
        if hasattr(a, "bandwidth"):
            return a.name
        if hasattr(a, "params"):
            return f"<{a.params:.3g}-parameter model>"
        return repr(a)
    return "(" + ", ".join(one(a) for a in args) + ")"


def _number(value, call: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise WrongAnswer(f"{call} should return a number, got {type(value).__name__}") from None


def _close(got: float, want: float, rel: float = 1e-6, abs_: float = 1e-9) -> bool:
    return math.isfinite(got) and abs(got - want) <= max(abs_, rel * abs(want))


# -- 00 start here: the acceptance test -------------------------------------------------------------------------

def _acceptance(accept_probability) -> str:
    from ..core.theory import accept_probability as library

    cases = [  # (p(x), q(x), what is special)
        (0.2, 0.5, "the drafter likes x more than the target does (q > p)"),
        (0.6, 0.3, "the target likes x more than the drafter (p > q)"),
        (0.45, 0.45, "p = q"),
        (0.0, 0.4, "the target never says x"),
        (0.05, 0.8, "q much larger than p"),
        (0.9, 1.0, "a drafter that is sure of x"),
    ]
    for i, (p_x, q_x, why) in enumerate(cases):
        got = _number(_answer(accept_probability, p_x, q_x, first=i == 0), "accept_probability")
        want = float(library(torch.tensor(p_x), torch.tensor(q_x)))
        if not _close(got, want):
            raise WrongAnswer(f"accept_probability(p_x={p_x}, q_x={q_x}) is wrong: {why}")
    return "x is kept with probability min(1, p(x)/q(x)) on all 6 cases"


# -- 01 why decoding is slow: the bytes of one forward ---------------------------------------------------------

def _weight_read(weight_read_ms) -> str:
    from ..bench.costmodel import HARDWARE

    cases = [  # (parameters, bytes per number, hardware)
        (6.7e9, 2, HARDWARE["H100-SXM"]),
        (6.7e9, 4, HARDWARE["A100-80GB"]),
        (1.345e8, 2, HARDWARE["laptop CPU"]),
        (7.0e10, 2, HARDWARE["RTX 4090"]),
    ]
    for i, (params, b, hw) in enumerate(cases):
        got = _number(_answer(weight_read_ms, params, b, hw.bandwidth, first=i == 0), "weight_read_ms")
        want = 1000 * params * b / hw.bandwidth
        if not _close(got, want, rel=1e-3):
            raise WrongAnswer(f"weight_read_ms({params:g} parameters, {b} bytes each, the bandwidth of {hw.name}) is wrong: "
                              "milliseconds, and every parameter's bytes are read once")
    return "reading the weights once takes P·b / bandwidth on all 4 cases"


# -- 02 draft then verify: the greedy rule --------------------------------------------------------------------

def _greedy_prefix(accepted_count) -> str:
    cases = [  # p_draft at T = 0: 1.0 where the draft is the target's argmax, 0.0 elsewhere
        ([1.0, 1.0, 0.0, 1.0], "a draft that matches again after a miss"),
        ([0.0, 1.0, 1.0], "the first draft is already wrong"),
        ([1.0, 1.0, 1.0], "every draft matches"),
        ([1.0, 0.0], "one match, then a miss"),
        ([], "an empty draft"),
    ]
    for i, (p_draft, why) in enumerate(cases):
        got = _answer(accepted_count, list(p_draft), first=i == 0)
        want = next((j for j, p in enumerate(p_draft) if p < 1.0), len(p_draft))
        if got != want:
            raise WrongAnswer(f"accepted_count({p_draft}) is wrong: {why}")
    return "the accepted prefix ends at the first draft that is not the target's argmax, on all 5 cases"


# -- 03 speculative sampling math: the two kernels ------------------------------------------------------------

def _kernels(accept_probability, residual) -> str:
    from ..core.theory import accept_probability as library_accept
    from ..core.theory import residual as library_residual

    pairs = [  # (p, q, what is special)
        ([0.5, 0.2, 0.1, 0.1, 0.1], [0.2, 0.4, 0.1, 0.25, 0.05], "p and q differ in both directions"),
        ([0.05, 0.05, 0.6, 0.2, 0.1], [0.3, 0.3, 0.1, 0.2, 0.1], "the target puts its mass where the drafter does not"),
        ([0.25, 0.25, 0.25, 0.25, 0.0], [0.1, 0.2, 0.3, 0.2, 0.2], "a token the target never says"),
    ]
    for i, (p, q, why) in enumerate(pairs):
        p, q = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
        for fn, library, first in ((accept_probability, library_accept, i == 0), (residual, library_residual, False)):
            got = _answer(fn, p.clone(), q.clone(), first=first)
            try:
                got = torch.as_tensor(got, dtype=torch.float64).reshape(p.shape)
            except (TypeError, ValueError, RuntimeError):
                raise WrongAnswer(f"{fn.__name__} should return a tensor of p's shape {tuple(p.shape)}") from None
            if not torch.allclose(got, library(p, q), atol=1e-9):
                raise WrongAnswer(f"{fn.__name__}(p, q) is wrong for p = {_show((p,))[1:-1]}, q = {_show((q,))[1:-1]}: {why}")
    return "min(1, p/q) and norm(max(0, p − q)) equal the library's on all 3 pairs"


# -- 04 independent drafters: the best draft length ----------------------------------------------------------

def _best_gamma(best_draft_length) -> str:
    from ..core.theory import best_gamma

    cases = [  # (α, c, max γ, what is special)
        (0.8, 0.05, 16, "a good, cheap drafter"),
        (0.5, 0.3, 16, "a costly drafter"),
        (0.9, 0.0, 16, "a free drafter: longer drafts never hurt"),
        (0.3, 0.6, 16, "a drafter barely worth running"),
        (0.95, 0.02, 8, "a smaller search range"),
    ]
    for i, (alpha, c, max_gamma, why) in enumerate(cases):
        got = _answer(best_draft_length, alpha, c, max_gamma, first=i == 0)
        if got != best_gamma(alpha, c, max_gamma):
            raise WrongAnswer(f"best_draft_length(alpha={alpha}, c={c}, max_gamma={max_gamma}) is wrong: {why}")
    return "the best γ maximises E[τ] / (γc + 1) on all 5 cases"


# -- 05 self drafting: prompt lookup in a few lines ----------------------------------------------------------

def _prompt_lookup(lookup_draft) -> str:
    from ..drafters.prompt_lookup import PromptLookupDrafter

    library = PromptLookupDrafter(max_ngram=2, min_ngram=2)
    cases = [  # (ids, γ, what is special)
        ([5, 6, 1, 2, 3, 9, 9, 1, 2, 8, 4, 7, 1, 2], 4, "the last two tokens occurred twice before"),
        ([4, 1, 2, 3, 1, 2], 5, "the match is so recent that the copy runs off the end"),
        ([1, 2, 3, 4, 5], 3, "the last two tokens never occurred before"),
        ([7, 7, 7], 4, "a run of one token"),
        ([3, 8, 6, 1, 2, 5, 5, 5, 5, 5, 1, 2], 2, "an old match with a long continuation"),
    ]
    for i, (ids, gamma, why) in enumerate(cases):
        got = _answer(lookup_draft, list(ids), gamma, first=i == 0)
        want = library.propose(torch.tensor(ids), gamma, None, None).tokens.tolist()
        got = got.tolist() if isinstance(got, torch.Tensor) else got
        if list(got) != want:
            raise WrongAnswer(f"lookup_draft({ids}, gamma={gamma}) is wrong: {why}")
    return "most recent 2-gram match, copied periodically, nothing without a match: all 5 cases"


# -- 06 verification strategies: Medusa's typical-acceptance bar ---------------------------------------------

def _typical_bar(typical_threshold) -> str:
    from ..verifiers import TypicalAcceptance

    cases = [  # (p, ε, δ, what is special)
        ([0.97, 0.01, 0.01, 0.005, 0.005], 0.09, 0.3, "a confident target (low entropy)"),
        ([0.2, 0.2, 0.2, 0.2, 0.2], 0.09, 0.3, "a flat target (high entropy)"),
        ([0.5, 0.3, 0.1, 0.1, 0.0], 0.3, 0.5, "a token with probability 0, and other ε and δ"),
        ([0.4, 0.3, 0.2, 0.05, 0.05], 0.2, 0.25, "a middling target"),
    ]
    for i, (p, epsilon, delta, why) in enumerate(cases):
        p = torch.tensor(p, dtype=torch.float64)
        got = _number(_answer(typical_threshold, p.clone(), epsilon, delta, first=i == 0), "typical_threshold")
        want = float(TypicalAcceptance(epsilon, delta).threshold(p))
        if not _close(got, want):
            raise WrongAnswer(f"typical_threshold(p = {_show((p,))[1:-1]}, epsilon={epsilon}, delta={delta}) is wrong: {why}")
    return "the bar min(ε, δ·exp(−H(p))) in nats, on all 4 cases"


# -- 03 speculative sampling math: the bug hunt -------------------------------------------------------------

def _bug_hunt(changes_the_law) -> str:
    from ..verifiers.block import BlockVerification
    from .bug_lab import Lab, changes_the_law as reference, suspects
    from ..verifiers import SpeculativeSampling

    labs = [(Lab(), "the lab of the notebook"),
            (Lab(seed=0), "a lab where one bug moves the law by less than 0.01 in TV"),
            (Lab(vocab=4, temperature=1.0, top_k=2, seed=9), "a 4-token lab at T = 1")]
    first = True
    for lab, why in labs:
        cases = list(suspects(lab).items()) + [("speculative sampling", SpeculativeSampling()), ("block", BlockVerification())]
        for name, verifier in cases:
            got = _answer(changes_the_law, lab, verifier, first=first)
            first = False
            if not isinstance(got, bool):
                raise WrongAnswer(f"changes_the_law should return True or False, got {type(got).__name__}")
            if got != reference(lab, verifier):
                raise WrongAnswer(f"changes_the_law(lab, {name!r}) is wrong in {why}")
    return "the exact law finds every bug that changes the output, and clears the others, in 3 labs"


# -- 07 latency playground: the speedup formula --------------------------------------------------------------

def _speedup_formula(predicted_speedup) -> str:
    from ..core.theory import speedup

    cases = [  # (α, γ, c, what is special)
        (0.7, 4, 0.1, "a typical drafter"),
        (0.0, 3, 0.2, "a drafter that is never right"),
        (1.0, 5, 0.05, "a drafter that is always right (α = 1)"),
        (0.5, 1, 0.0, "one free draft token"),
        (0.9, 8, 0.3, "a long draft from a costly drafter"),
    ]
    for i, (alpha, gamma, c, why) in enumerate(cases):
        got = _number(_answer(predicted_speedup, alpha, gamma, c, first=i == 0), "predicted_speedup")
        if not _close(got, speedup(alpha, gamma, c)):
            raise WrongAnswer(f"predicted_speedup(alpha={alpha}, gamma={gamma}, c={c}) is wrong: {why}")
    return "E[τ] / (γc + 1) with E[τ] = (1 − α^(γ+1)) / (1 − α), α = 1 included, on all 5 cases"


# -- 08 benchmark: a roofline prediction by hand -------------------------------------------------------------

def _roofline_speedup(speedup_on) -> str:
    from ..bench.costmodel import HARDWARE, ModelShape, predicted_speedup

    target, drafter = ModelShape.dense(6.7e9, layers=32, width=4096), ModelShape.dense(6.8e7, layers=2, width=768)
    big = ModelShape.dense(7.0e10, layers=80, width=8192, kv_width=1024)
    cases = [  # (α, γ, target, drafter, hardware, context, what is special)
        (0.7, 4, target, drafter, HARDWARE["H100-SXM"], 512, "a 7B target and a 68M drafter on an H100"),
        (0.6, 6, target, drafter, HARDWARE["laptop CPU"], 512, "the same pair on a laptop CPU"),
        (0.8, 5, big, drafter, HARDWARE["A100-80GB"], 4096, "a 70B target with a long context"),
        (0.5, 16, target, drafter, HARDWARE["RTX 4090"], 0, "a long draft and no context"),
    ]
    for i, (alpha, gamma, t, d, hw, context, why) in enumerate(cases):
        got = _number(_answer(speedup_on, alpha, gamma, t, d, hw, context, first=i == 0), "speedup_on")
        if not _close(got, predicted_speedup(alpha, gamma, t, d, hw, context)):
            raise WrongAnswer(f"speedup_on(alpha={alpha}, gamma={gamma}, context={context}) is wrong for {why}")
    return "c and v from forward_time, then E[τ] / (γc + v), on all 4 cases"


EXERCISES = {e.name: e for e in [
    Exercise("acceptance", "00_start_here", ("accept_probability",), _acceptance),
    Exercise("weight-read", "01_why_decoding_is_slow", ("weight_read_ms",), _weight_read),
    Exercise("greedy-prefix", "02_draft_then_verify", ("accepted_count",), _greedy_prefix),
    Exercise("kernels", "03_speculative_sampling_math", ("accept_probability", "residual"), _kernels),
    Exercise("bug-hunt", "03_speculative_sampling_math", ("changes_the_law",), _bug_hunt),
    Exercise("best-gamma", "04_independent_drafters", ("best_draft_length",), _best_gamma),
    Exercise("prompt-lookup", "05_self_drafting", ("lookup_draft",), _prompt_lookup),
    Exercise("typical-bar", "06_verification_strategies", ("typical_threshold",), _typical_bar),
    Exercise("speedup-formula", "07_latency_playground", ("predicted_speedup",), _speedup_formula),
    Exercise("roofline-speedup", "08_benchmark", ("speedup_on",), _roofline_speedup),
]}
