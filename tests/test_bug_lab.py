"""The bug-hunting lab: which of its five verifiers change the output law, and what the two others break instead."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from specdec_lab.verifiers.block import BlockVerification
from specdec_lab.lab.bug_lab import ForgetsBonus, IgnoresTopKInQ, Lab, NoMin, UnnormalisedResidual, WrongTemperatureQ, suspects
from specdec_lab.drafters.base import Draft
from specdec_lab.verifiers import SpeculativeSampling


@pytest.fixture(scope="module")
def lab():
    return Lab()


def test_three_bugs_change_the_law_and_two_do_not(lab):
    tv = {type(v): lab.tv(v) for v in suspects(lab).values()}
    assert all(tv[c] > 0.04 for c in (IgnoresTopKInQ, UnnormalisedResidual, WrongTemperatureQ))
    assert all(tv[c] < 1e-12 for c in (NoMin, ForgetsBonus))
    assert lab.tv(SpeculativeSampling()) < 1e-12 and lab.tv(BlockVerification()) < 1e-12


def test_the_exact_law_is_a_law(lab):
    for v in list(suspects(lab).values()) + [SpeculativeSampling()]:
        assert sum(lab.exact_law(v).values()) == pytest.approx(1.0, abs=1e-12)
    assert sum(lab.truth().values()) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.stat
def test_chi_square_finds_the_law_changing_bugs_and_clears_the_exact_rule(lab):
    for bug in (IgnoresTopKInQ(lab), UnnormalisedResidual(), WrongTemperatureQ(lab)):
        assert lab.chi_square(bug, runs=1000) < 0.01
    assert lab.chi_square(SpeculativeSampling(), runs=1000) > 0.05


def test_what_the_lossless_bugs_break(lab):
    """NoMin reports "probabilities" above 1; ForgetsBonus emits fewer tokens after a full acceptance."""
    p = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], dtype=torch.float64)
    q = torch.tensor([[0.3, 0.4, 0.3]], dtype=torch.float64)
    draft = Draft(torch.tensor([0]), q)
    assert max(NoMin().verify(draft, p, None, uniforms=torch.tensor([0.5])).accept_prob) == pytest.approx(2.0)
    assert len(ForgetsBonus().verify(draft, p, torch.Generator().manual_seed(0), uniforms=torch.tensor([0.0])).tokens) == 1
    assert len(SpeculativeSampling().verify(draft, p, torch.Generator().manual_seed(0), uniforms=torch.tensor([0.0])).tokens) == 2


def test_the_lab_is_the_same_in_every_process():
    """The tables come from a seeded CRC of the prefix, not from hash(), which Python salts per process for str."""
    code = "from specdec_lab.lab.bug_lab import Lab; print(Lab().logits('target', (1, 2)).tolist())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=os.environ | {"PYTHONHASHSEED": "123"}).stdout
    assert eval(other) == Lab().logits("target", (1, 2)).tolist()


def test_a_row_changed_in_place_changes_nothing_later():
    """The lab's tables are cached per process; what it hands out is a copy, so a caller that scales a row in place
    (or zeroes the logits) changes no later law: a fresh lab's exact rule still has TV 0, and the bug hunt's
    "always True" answer still fails."""
    from specdec_lab.lab.exercises import WrongAnswer, check

    lab = Lab()
    before = (lab.p_of(()).clone(), lab.q_of(()).clone(), lab.logits("target", ()).clone(),
              lab.dist("drafter", (1,), temperature=1.0, top_k=None).clone())
    lab.p_of(()).mul_(0.5)
    lab.q_of(()).zero_()
    lab.logits("target", ()).fill_(float("nan"))
    lab.dist("drafter", (1,), temperature=1.0, top_k=None).add_(1.0)
    after = (lab.p_of(()), lab.q_of(()), lab.logits("target", ()),
             lab.dist("drafter", (1,), temperature=1.0, top_k=None))
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert Lab().tv(SpeculativeSampling()) < 1e-12
    with pytest.raises(WrongAnswer):
        check("bug-hunt", lambda lab, verifier: True)


def test_an_answer_that_changes_the_rows_it_reads_cannot_pass_the_bug_hunt():
    """An answer that halves every p row it reads, then says True, would make every verifier look law-changing if the
    check's labs shared those rows."""
    from specdec_lab.lab.exercises import WrongAnswer, check

    def vandal(lab, verifier):
        for prefix in [(), (0,), (1,), (2,)]:
            lab.p_of(prefix).mul_(0.5)
        return True

    with pytest.raises(WrongAnswer):
        check("bug-hunt", vandal)
    assert Lab().tv(SpeculativeSampling()) < 1e-12


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=0.0), "temperature must be a finite number > 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number > 0"),
    (dict(top_k=0), "top_k must be between 1 and 5"),
    (dict(top_k=6), "top_k must be between 1 and 5"),
    (dict(gamma=0), "gamma must be >= 1"),
    (dict(vocab=1), "vocab must be >= 2"),
])
def test_a_lab_refuses_settings_it_cannot_sample(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Lab(**kwargs)
    with pytest.raises(TypeError, match="seed must be an int"):
        Lab(seed="a")
    assert Lab(top_k=None).top_k is None  # no top-k at all is a setting


def test_a_lab_names_a_bad_prefix_model_or_row(lab):
    with pytest.raises(ValueError, match=r"token ids in \[0, 5\), got \(7,\)"):
        lab.p_of((7,))
    with pytest.raises(ValueError, match="a 'target' and a 'drafter', not 'attacker'"):
        lab.dist("attacker", ())
    with pytest.raises(ValueError, match="not one the lab handed out"):
        lab.drafter_prefix(lab.q_of(()) * 0.5)
    assert torch.equal(lab.p_of([1, 2]), lab.p_of((1, 2)))  # a list prefix is the same prefix
