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
import inspect
import io
import json
import math
import re
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


# Answers students give (and bugs shipped elsewhere): each must make its check fail.
WRONG = {
    "acceptance": [
        lambda p_x, q_x: min(1.0, q_x / p_x) if p_x > 0 else 1.0,  # the ratio upside down
        lambda p_x, q_x: p_x / q_x,  # no min: a "probability" above 1
        lambda p_x, q_x: p_x * q_x,  # passes at T = 0, where p = q = 1
        lambda p_x, q_x: 1.0,  # the T = 0 answer
        lambda p_x, q_x: min(p_x, q_x),  # the overlap, not the ratio
    ],
    "weight-read": [
        lambda params, b, bw: params * b / bw,  # seconds, not ms
        lambda params, b, bw: 1000 * params / bw,  # forgets the bytes per number
        lambda params, b, bw: 1000 * params * 8 * b / bw,  # bits
        lambda params, b, bw: 1000 * params * 2 / bw,  # fp16 always
    ],
    "greedy-prefix": [
        lambda p: sum(1 for x in p if x == 1.0),  # counts every match, not the prefix
        lambda p: len(p),  # accepts everything
        lambda p: next((i + 1 for i, x in enumerate(p) if x < 1.0), len(p)),  # counts the rejected one
        lambda p: next(i for i, x in enumerate(p) if x < 1.0),  # fails when every draft matches
    ],
    "kernels": [
        (lambda p, q: p / q, lambda p, q: (p - q).clamp(min=0) / (p - q).clamp(min=0).sum()),  # no min(1, ·)
        (lambda p, q: (p / q).clamp(max=1), lambda p, q: (p - q).clamp(min=0)),  # residual left unnormalised
        (lambda p, q: (p / q).clamp(max=1), lambda p, q: (q - p).clamp(min=0) / (q - p).clamp(min=0).sum()),  # q − p
        (lambda p, q: (q / p).clamp(max=1), lambda p, q: (p - q).clamp(min=0) / (p - q).clamp(min=0).sum()),  # q/p
        (lambda p, q: (p / q).clamp(max=1), lambda p, q: p),  # resample from p after a rejection
    ],
    "bug-hunt": [
        lambda lab, v: False,  # "they all claim lossless = True"
        lambda lab, v: True,  # suspicious of everything
        lambda lab, v: not v.lossless,  # trusting the label
        lambda lab, v: lab.tv(v) > 0.01,  # a tolerance that hides a small bug
        lambda lab, v: lab.chi_square(v, runs=300) < 0.05,  # a sampled test with too little power
    ],
    "best-gamma": [
        lambda alpha, c, max_gamma: 4,  # the usual default
        lambda alpha, c, max_gamma: max(range(1, max_gamma + 1), key=lambda g: _tau(alpha, g)),  # ignores the cost
        lambda alpha, c, max_gamma: max(range(1, max_gamma), key=lambda g: speedup(alpha, g, c)),  # stops at max_gamma − 1
        lambda alpha, c, max_gamma: min(max_gamma, max(1, round(1 / (1 - alpha)))),  # the mean run length
    ],
    "prompt-lookup": [
        lambda ids, gamma: next(([ids[i + 2 + k] for k in range(gamma) if i + 2 + k < len(ids)]  # first occurrence
                                 for i in range(len(ids) - 2) if ids[i:i + 2] == ids[-2:]), []),
        lambda ids, gamma: next((ids[i + 2:i + 2 + gamma]  # most recent, but no periodic copy
                                 for i in reversed(range(len(ids) - 2)) if ids[i:i + 2] == ids[-2:]), []),
        lambda ids, gamma: next(([ids[i + 2 + k % (len(ids) - i - 2)] for k in range(gamma)]  # first occurrence, periodic
                                 for i in range(len(ids) - 2) if ids[i:i + 2] == ids[-2:]), []),
        lambda ids, gamma: ids[-gamma:],  # repeats the tail
    ],
    "typical-bar": [
        lambda p, eps, delta: delta * math.exp(float(torch.special.entr(p).sum().neg())),  # no min with ε
        lambda p, eps, delta: min(eps, delta * math.exp(-sum(-x * math.log2(x) for x in p.tolist() if x > 0))),  # bits
        lambda p, eps, delta: max(eps, delta * math.exp(float(torch.special.entr(p).sum().neg()))),  # max, not min
        lambda p, eps, delta: min(eps, delta * math.exp(float(torch.special.entr(p).sum()))),  # exp(+H)
    ],
    "speedup-formula": [
        lambda alpha, gamma, c: (1 - alpha ** (gamma + 1)) / ((1 - alpha) * (gamma * c + 1)),  # divides by 0 at α = 1
        lambda alpha, gamma, c: (gamma + 1 if alpha == 1 else (1 - alpha ** gamma) / (1 - alpha)) / (gamma * c + 1),  # α^γ
        lambda alpha, gamma, c: _tau(alpha, gamma) / (gamma * c),  # forgets the target's own forward
        lambda alpha, gamma, c: _tau(alpha, gamma) / (c + 1),  # one drafter forward per step
    ],
    "roofline-speedup": [
        lambda a, g, t, d, hw, n: _tau(a, g) / (g * forward_time(d, 1, n, hw) / forward_time(t, 1, n, hw) + 1),  # v = 1
        lambda a, g, t, d, hw, n: _tau(a, g) / (g * forward_time(d, 1, n, hw) / forward_time(t, 1, n, hw)
                                                + forward_time(t, g, n, hw) / forward_time(t, 1, n, hw)),  # γ, not γ + 1
        lambda a, g, t, d, hw, n: _tau(a, g) / (g * forward_time(d, 1, 0, hw) / forward_time(t, 1, 0, hw)
                                                + forward_time(t, g + 1, 0, hw) / forward_time(t, 1, 0, hw)),  # no context
        lambda a, g, t, d, hw, n: _tau(a, g) / (forward_time(d, g, n, hw) / forward_time(t, 1, n, hw)
                                                + forward_time(t, g + 1, n, hw) / forward_time(t, 1, n, hw)),  # one batched draft
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
def test_known_wrong_answers_fail(name):
    wrong = WRONG[name]
    assert len(wrong) >= 3
    source = notebook_tool.solution(name)
    for i, answer in enumerate(wrong):
        answers = answer if isinstance(answer, tuple) else (answer,)
        with pytest.raises(WrongAnswer) as failure:
            _run_check(name, *answers)
        # the message names the case, never the answer: every number in it is one of the check's own inputs
        # (or appears in the exercise's statement, i.e. its solution's docstrings)
        allowed = _numbers(inspect.getsource(EXERCISES[name].run) + source)
        for number in _numbers(str(failure.value)):
            assert any(math.isclose(number, a, rel_tol=1e-9) for a in allowed), (
                f"{name}, wrong answer {i}: the message prints {number:g}: {failure.value}")


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
    cells = [nbformat.v4.new_code_cell(source) for _, exercise, check_source in pairs for source in (exercise, check_source)]
    node = nbformat.v4.new_notebook(cells=cells, metadata=nb.get("metadata", {}))
    nbclient.NotebookClient(node, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for k, (name, _, _) in enumerate(pairs):
        printed = "".join(o.get("text", "") for o in node.cells[2 * k + 1].outputs)
        assert printed.startswith("correct:"), f"{path.name}: check {name!r} printed {printed!r}"
