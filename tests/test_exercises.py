"""The exercises' three properties: blank as shipped, the solutions pass, known-wrong answers fail.

The notebooks are run as shipped by nbval (each check cell's saved output says "not done yet", and nbval compares
it); here each notebook's exercise and check cells run with the solutions injected, in the notebook's own kernel and
folder (every check must print "correct"). Those cells are self-contained (a test below checks that they read no name
another cell defines), so running them alone is the same as running them after the rest of the notebook, whose run
nbval already makes: the whole notebook twice took about 4 minutes of the suite's budget for nothing more.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import itertools
import json
import math
import re
import traceback
from pathlib import Path

import pytest
import torch

from specdec_lab.bench.costmodel import forward_time
from specdec_lab.lab.exercises import EXERCISES, WrongAnswer, check
from specdec_lab.core.theory import expected_tokens_per_step, speedup
from project_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
notebook_tool = load_script("tools/notebooks.py")


def _tau(alpha, gamma):
    return expected_tokens_per_step(alpha, gamma)


class AlwaysEqual:
    """An answer that claims to equal everything: a check that compares it unconverted would pass it."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = object.__hash__


def _at_least(alpha, c, max_gamma):  # a loop that keeps the later γ on a tie (>= where the docstring asks for >)
    best = 1
    for g in range(1, max_gamma + 1):
        if speedup(alpha, g, c) >= speedup(alpha, best, c):
            best = g
    return best


def _naive_accept(p, q):  # divides by zero where q(x) = 0: NaN where p(x) = 0 too
    return (p / q).clamp(max=1)


def _naive_residual(p, q):  # divides by zero where p = q: NaN everywhere
    return (p - q).clamp(min=0) / (p - q).clamp(min=0).sum()


def _right_accept(p, q):
    return (p / q.clamp_min(1e-300)).clamp(max=1)


# Answers students give (and bugs shipped elsewhere), each with a piece of the hint its check must fail with: the
# hint of the case that exposes that mistake, or the sentence about what kind of value it returned.
WRONG = {
    "acceptance": [
        (lambda p_x, q_x: min(1.0, q_x / p_x) if p_x > 0 else 1.0, "(p > q)"),  # the ratio upside down
        (lambda p_x, q_x: p_x / q_x, "a probability is at most 1"),  # no min: a "probability" above 1
        (lambda p_x, q_x: p_x * q_x, "p = q"),  # passes at T = 0, where p = q = 1
        (lambda p_x, q_x: 1.0, "x must sometimes be rejected"),  # the T = 0 answer
        (lambda p_x, q_x: min(p_x, q_x), "p = q"),  # the overlap, not the ratio
        (lambda p_x, q_x: 10 ** 400, "not a finite number"),  # an int no float holds: was a raw OverflowError
        (lambda p_x, q_x: float("nan"), "not a finite number"),
        (lambda p_x, q_x: AlwaysEqual(), "not a number"),
        (lambda p_x, q_x: "1.0", "not a number"),
    ],
    "weight-read": [
        (lambda params, b, bw: params * b / bw, "in milliseconds"),  # seconds, not ms
        (lambda params, b, bw: 1000 * params / bw, "2 bytes a number"),  # forgets the bytes per number
        (lambda params, b, bw: 1000 * params * 8 * b / bw, "in milliseconds"),  # bits
        (lambda params, b, bw: 1000 * params * 2 / bw, "4 bytes a number"),  # fp16 always
    ],
    "greedy-prefix": [
        (lambda p: sum(1 for x in p if x == 1.0), "the miss ends the accepted prefix"),  # every match, not the prefix
        (lambda p: len(p), "the miss ends the accepted prefix"),  # accepts everything
        (lambda p: next((i + 1 for i, x in enumerate(p) if x < 1.0), len(p)), "the miss ends"),  # counts the rejected
        (lambda p: next(i for i, x in enumerate(p) if x < 1.0), "every draft matches"),  # StopIteration when all match
        (lambda p: AlwaysEqual(), "not a whole number"),  # was passed: got != want is False for it
        (lambda p: 2.5, "a fraction"),
        (lambda p: True, "a bool"),
    ],
    "kernels": [
        ((lambda p, q: p / q, lambda p, q: (p - q).clamp(min=0) / (p - q).clamp(min=0).sum()),
         "differ in both directions"),  # no min(1, ·)
        ((lambda p, q: (p / q).clamp(max=1), lambda p, q: (p - q).clamp(min=0)),
         "differ in both directions"),  # residual left unnormalised
        ((lambda p, q: (p / q).clamp(max=1), lambda p, q: (q - p).clamp(min=0) / (q - p).clamp(min=0).sum()),
         "differ in both directions"),  # q − p
        ((lambda p, q: (q / p).clamp(max=1), lambda p, q: (p - q).clamp(min=0) / (p - q).clamp(min=0).sum()),
         "differ in both directions"),  # q/p
        ((lambda p, q: (p / q).clamp(max=1), lambda p, q: p), "differ in both directions"),  # resample from p
        ((_naive_accept, _naive_residual), "q(x) = 0 for some tokens"),  # the old reference solution: 0/0 at q = p = 0
        ((_right_accept, _naive_residual), "p = q = "),  # 0/0 where nothing is left to resample
        ((lambda p, q: AlwaysEqual(), _naive_residual), "not a tensor"),
    ],
    "bug-hunt": [
        (lambda lab, v: False, "'bug: ignores top-k in q' in the lab of the notebook"),  # "they all claim lossless"
        (lambda lab, v: True, "'bug: no min(1, p/q)' in the lab of the notebook"),  # suspicious of everything
        (lambda lab, v: not v.lossless, "'bug: ignores top-k in q' in the lab of the notebook"),  # trusting the label
        (lambda lab, v: lab.tv(v) > 0.01, "less than 0.01 in TV"),  # a tolerance that hides a small bug
        (lambda lab, v: lab.chi_square(v, runs=300) < 0.05, "in the lab of the notebook"),  # too little power
        (lambda lab, v: AlwaysEqual(), "not True or False"),
        (lambda lab, v: 1, "not True or False"),
    ],
    "best-gamma": [
        (lambda alpha, c, max_gamma: 4, "a costly drafter"),  # the usual default
        (lambda alpha, c, max_gamma: max(range(1, max_gamma + 1), key=lambda g: _tau(alpha, g)),
         "a costly drafter"),  # ignores the cost
        (lambda alpha, c, max_gamma: max(range(1, max_gamma), key=lambda g: speedup(alpha, g, c)),
         "up to max_gamma itself"),  # stops at max_gamma − 1
        (lambda alpha, c, max_gamma: min(max_gamma, max(1, round(1 / (1 - alpha)))), "a costly drafter"),  # run length
        (_at_least, "a tie"),  # the later γ on a tie
        (lambda alpha, c, max_gamma: AlwaysEqual(), "not a whole number"),  # was passed
        (lambda alpha, c, max_gamma: 10 ** 400, "is wrong: a costly drafter"),  # a whole number, just a wrong one
    ],
    "prompt-lookup": [
        (lambda ids, gamma: next(([ids[i + 2 + k] for k in range(gamma) if i + 2 + k < len(ids)]  # first occurrence
                                  for i in range(len(ids) - 2) if ids[i:i + 2] == ids[-2:]), []),
         "the most recent occurrence"),
        (lambda ids, gamma: next((ids[i + 2:i + 2 + gamma]  # most recent, but no periodic copy
                                  for i in reversed(range(len(ids) - 2)) if ids[i:i + 2] == ids[-2:]), []),
         "runs off the end"),
        (lambda ids, gamma: next(([ids[i + 2 + k % (len(ids) - i - 2)] for k in range(gamma)]  # first, periodic
                                  for i in range(len(ids) - 2) if ids[i:i + 2] == ids[-2:]), []),
         "the most recent occurrence"),
        (lambda ids, gamma: ids[-gamma:], "the most recent occurrence"),  # repeats the tail
        (lambda ids, gamma: itertools.repeat(1), "more tokens than gamma"),  # endless: list(got) grew to 23 GB
        (lambda ids, gamma: itertools.count(), "more tokens than gamma"),
        (lambda ids, gamma: [AlwaysEqual()] * gamma, "not a list of token ids"),
        (lambda ids, gamma: AlwaysEqual(), "not a list of token ids"),
        (lambda ids, gamma: "1 2", "not a list of token ids"),
    ],
    "typical-bar": [
        (lambda p, eps, delta: delta * math.exp(float(torch.special.entr(p).sum().neg())),
         "a confident target"),  # no min with ε
        (lambda p, eps, delta: min(eps, delta * math.exp(-sum(-x * math.log2(x) for x in p.tolist() if x > 0))),
         "a flat target"),  # bits
        (lambda p, eps, delta: max(eps, delta * math.exp(float(torch.special.entr(p).sum().neg()))),
         "a confident target"),  # max, not min
        (lambda p, eps, delta: min(eps, delta * math.exp(float(torch.special.entr(p).sum()))),
         "a flat target"),  # exp(+H)
    ],
    "speedup-formula": [
        (lambda alpha, gamma, c: (1 - alpha ** (gamma + 1)) / ((1 - alpha) * (gamma * c + 1)),
         "raised ZeroDivisionError"),  # divides by 0 at α = 1: the hint names α = 1
        (lambda alpha, gamma, c: (gamma + 1 if alpha == 1 else (1 - alpha ** gamma) / (1 - alpha)) / (gamma * c + 1),
         "one free draft token"),  # α^γ
        (lambda alpha, gamma, c: _tau(alpha, gamma) / (gamma * c), "never right (α = 0)"),  # no target forward
        (lambda alpha, gamma, c: _tau(alpha, gamma) / (c + 1), "never right (α = 0)"),  # one drafter forward per step
        (lambda alpha, gamma, c: 10 ** 400, "not a finite number"),
    ],
    "roofline-speedup": [
        (lambda a, g, t, d, hw, n: _tau(a, g) / (g * forward_time(d, 1, n, hw) / forward_time(t, 1, n, hw) + 1),
         "pass the CPU's ridge point"),  # v = 1
        (lambda a, g, t, d, hw, n: _tau(a, g) / (g * forward_time(d, 1, n, hw) / forward_time(t, 1, n, hw)
                                                 + forward_time(t, g, n, hw) / forward_time(t, 1, n, hw)),
         "pass the CPU's ridge point"),  # γ, not γ + 1
        (lambda a, g, t, d, hw, n: _tau(a, g) / (g * forward_time(d, 1, 0, hw) / forward_time(t, 1, 0, hw)
                                                 + forward_time(t, g + 1, 0, hw) / forward_time(t, 1, 0, hw)),
         "a long context"),  # no context
        (lambda a, g, t, d, hw, n: _tau(a, g) / (forward_time(d, g, n, hw) / forward_time(t, 1, n, hw)
                                                 + forward_time(t, g + 1, n, hw) / forward_time(t, 1, n, hw)),
         "the draft is sequential"),  # one batched draft
        (lambda a, g, t, d, hw, n: AlwaysEqual(), "not a number"),
    ],
}


def _functions(name: str, source: str) -> tuple:
    namespace: dict = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return tuple(namespace[f] for f in EXERCISES[name].functions)


def _run_check(name: str, *answers) -> tuple[bool, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        done = check(name, *answers)
    return done, out.getvalue()


@pytest.mark.parametrize("name", EXERCISES)
def test_blank_is_not_done(name):
    done, printed = _run_check(name, *_functions(name, notebook_tool.blank(notebook_tool.solution(name))))
    assert not done and printed.startswith("not done yet") and "correct" not in printed


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_is_correct(name):
    done, printed = _run_check(name, *_functions(name, notebook_tool.solution(name)))
    assert done and printed.startswith("correct:")


@pytest.mark.parametrize("name", EXERCISES)
def test_known_wrong_answers_fail_with_their_hint(name):
    wrong = WRONG[name]
    assert len(wrong) >= 3
    # the message names the case, never the answer: every number in it is one of the check's own inputs
    # (or appears in the exercise's statement, i.e. its solution's docstrings)
    allowed = _numbers(inspect.getsource(EXERCISES[name].cases) + notebook_tool.solution(name))
    allowed += [x for case in EXERCISES[name].cases() for x in _inputs(case.args)]
    for i, (answer, hint) in enumerate(wrong):
        answers = answer if isinstance(answer, tuple) else (answer,)
        with pytest.raises(WrongAnswer) as failure:
            _run_check(name, *answers)
        assert hint in str(failure.value), f"{name}, wrong answer {i}: {failure.value}"
        for number in _numbers(str(failure.value)):
            assert any(math.isclose(number, a, rel_tol=1e-9) for a in allowed), (
                f"{name}, wrong answer {i}: the message prints {number:g}: {failure.value}")


def test_the_old_kernels_solution_now_fails():
    """The reference solution divided by zero where q(x) = 0 (NaN at p(x) = q(x) = 0) and where p = q (0/0), and passed:
    the cases that expose it are in the check now, and the shipped solution handles both."""
    with pytest.raises(WrongAnswer, match="divides by zero"):
        _run_check("kernels", _naive_accept, _naive_residual)
    accept, residual = _functions("kernels", notebook_tool.solution("kernels"))
    p = torch.tensor([0.4, 0.3, 0.3, 0.0, 0.0], dtype=torch.float64)
    q = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert accept(p, q).tolist() == [0.8, 0.6, 1.0, 0.0, 0.0]
    assert torch.equal(residual(p, p), p)


def test_a_misspelt_name_says_the_valid_names():
    with pytest.raises(ValueError) as failure:
        check("acceptanse", lambda p_x, q_x: 1.0)
    assert "did you mean 'acceptance'?" in str(failure.value)
    assert all(name in str(failure.value) for name in EXERCISES)
    with pytest.raises(ValueError, match="the exercises are"):
        check(None, lambda p_x, q_x: 1.0)
    with pytest.raises(TypeError, match="takes 2 function"):
        check("kernels", _right_accept)
    with pytest.raises(TypeError, match="got float"):
        check("acceptance", 0.5)


def test_an_endless_iterator_is_read_only_as_far_as_gamma():
    """islice with a bound: an iterator that never ends is refused after γ + 1 items, not read into a list."""
    pulled = []

    def endless(ids, gamma):
        return (pulled.append(k) or 1 for k in itertools.count())

    with pytest.raises(WrongAnswer, match="more tokens than gamma"):
        check("prompt-lookup", endless)
    assert len(pulled) <= 5 + 1  # the first case's γ is 4; at most one case ran


def test_a_wrong_answer_shows_no_line_of_the_answer_key():
    """The traceback ends at check(): no frame of the runner or the cases, whose lines hold the right answers, and no
    chained exception that would print them."""
    with pytest.raises(WrongAnswer) as failure:
        check("speedup-formula", lambda alpha, gamma, c: 1.0)
    err = failure.value
    assert err.__cause__ is None and err.__context__ is None
    frames = traceback.extract_tb(err.__traceback__)
    assert frames[-1].name == "check" and frames[-1].filename.endswith("exercises/__init__.py")
    shown = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    for answer_key in ("speedup(", "predicted_speedup", "runner.py", "cases.py", "want"):
        assert answer_key not in shown, shown


def test_a_learner_crash_is_a_wrong_answer_naming_the_case():
    with pytest.raises(WrongAnswer, match=r"raised ZeroDivisionError.*this case: a drafter that is never right"):
        check("speedup-formula", lambda alpha, gamma, c: 1 / alpha)


def test_an_answer_that_changes_its_inputs_changes_no_later_case():
    """Each call gets a copy of the case's inputs: an answer that empties the ids list it was given still fails on
    its own wrong result, and the right answer, run after it, still passes."""
    def vandal(ids, gamma):
        ids.clear()
        return []

    with pytest.raises(WrongAnswer):
        _run_check("prompt-lookup", vandal)
    assert _run_check("prompt-lookup", *_functions("prompt-lookup", notebook_tool.solution("prompt-lookup")))[0]


def test_numbers_of_another_type_are_accepted():
    """Conversion, not a type check: NumPy scalars, one-element tensors and 3.0 for 3 are right answers."""
    np = pytest.importorskip("numpy")
    from specdec_lab.core.theory import best_gamma, speedup as library_speedup
    assert _run_check("speedup-formula", lambda alpha, gamma, c: np.float64(library_speedup(alpha, gamma, c)))[0]
    assert _run_check("speedup-formula", lambda alpha, gamma, c: torch.tensor(library_speedup(alpha, gamma, c)))[0]
    assert _run_check("best-gamma", lambda alpha, c, max_gamma: float(best_gamma(alpha, c, max_gamma)))[0]
    assert _run_check("best-gamma", lambda alpha, c, max_gamma: np.int64(best_gamma(alpha, c, max_gamma)))[0]


def _inputs(value) -> list[float]:
    """Every number inside a case's arguments (lists, tensors, dataclasses such as the hardware)."""
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, torch.Tensor):
        return [float(x) for x in value.reshape(-1).tolist()]
    if dataclasses.is_dataclass(value):
        return _inputs(dataclasses.astuple(value))
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _inputs(v)]
    return []


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?", text)]


def test_blank_cuts_every_body_and_keeps_the_docstrings():
    for name in EXERCISES:
        shipped = ast.parse(notebook_tool.blank(notebook_tool.solution(name)))
        functions = [node for node in shipped.body if isinstance(node, ast.FunctionDef)]
        assert [f.name for f in functions] == list(EXERCISES[name].functions)
        for fn in functions:
            assert ast.get_docstring(fn), f"{name}.{fn.name} lost its docstring"
            assert len(fn.body) == 2 and isinstance(fn.body[1].value, ast.Constant) and fn.body[1].value.value is Ellipsis


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_ships_its_exercise_blank(path):
    """An exercise cell per notebook, equal to blank(solution), followed by a check cell whose saved output
    (compared by nbval on every run) says "not done yet"."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook_tool.exercise_cells(nb)
    assert cells, f"{path.name} has no cell tagged 'exercise'"
    for index, name in cells:
        assert EXERCISES[name].notebook == path.stem
        assert "".join(nb["cells"][index]["source"]) == notebook_tool.blank(notebook_tool.solution(name)).rstrip("\n"), (
            f"{path.name}: exercise {name!r} is not blank(solution): run python tools/notebooks.py blank")
        check_cell = nb["cells"][index + 1]
        source = "".join(check_cell["source"])
        assert f'check("{name}"' in source
        assert notebook_tool.MARK in [line.strip() for line in source.splitlines()], "nbval reads its marker on a line of its own"
        printed = "".join("".join(o.get("text", "")) for o in check_cell["outputs"])
        assert printed.startswith("not done yet") and "correct" not in printed


def _free_names(source: str) -> set[str]:
    """Names a piece of code reads but neither defines, imports nor gets from builtins."""
    import builtins

    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    defined = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    defined |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defined |= {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    defined |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
                for a in n.posonlyargs + n.args + n.kwonlyargs + [x for x in (n.vararg, n.kwarg) if x]}
    return {u for u in used - defined if not hasattr(builtins, u)}


def _exercise_and_check(nb: dict) -> list[tuple[str, str, str]]:
    """(name, exercise source, check source) of every exercise of a notebook (the check is the next cell)."""
    return [(name, "".join(nb["cells"][i]["source"]), "".join(nb["cells"][i + 1]["source"]))
            for i, name in notebook_tool.exercise_cells(nb)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_exercise_cells_are_self_contained(path):
    """What makes running them alone equivalent: solved or blank, an exercise and its check read no other cell's name."""
    for solved in (True, False):
        nb = notebook_tool.with_exercises(json.loads(path.read_text(encoding="utf-8")), solved=solved)
        for name, exercise, check_source in _exercise_and_check(nb):
            assert not _free_names(exercise + "\n" + check_source), f"{path.name}: {name!r} reads {_free_names(exercise + chr(10) + check_source)}"
    assert _free_names("y = x + 1") == {"x"}  # the analysis sees a free name


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_with_its_solutions_passes_every_check(path):
    """The notebook's exercise and check cells, solutions injected, run in its kernel and folder: every check prints
    "correct"."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = notebook_tool.with_exercises(json.loads(path.read_text(encoding="utf-8")), solved=True)
    pairs = _exercise_and_check(nb)
    cells = [nbformat.v4.new_code_cell("import specdec_lab  # as each notebook's first cells do: a one-time notice lands here")]
    cells += [nbformat.v4.new_code_cell(source) for _, exercise, check_source in pairs for source in (exercise, check_source)]
    node = nbformat.v4.new_notebook(cells=cells, metadata=nb.get("metadata", {}))
    nbclient.NotebookClient(node, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for k, (name, _, _) in enumerate(pairs):
        printed = "".join(o.get("text", "") for o in node.cells[2 * k + 2].outputs)
        assert printed.startswith("correct:"), f"{path.name}: check {name!r} printed {printed!r}"
