"""The review of issue 33's fixes: the gaps it found, each closed and tested (scores hooks get copies of ids, a bf16
q row 5% off 1 is refused, a NumPy reference, a one-element NumPy answer). Zero-width
characters stay as text on purpose: Thai and Khmer separate words with U+200B (tests/test_bench_v3.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import VOCAB, tiny_llama

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.core import checks
from specdec_lab.core.types import Draft
from specdec_lab.drafters import Drafter
from specdec_lab.lab.exercises import WrongAnswer, check


class ScoreScribbler(Drafter):
    """Reads the target's scores (as token recycling does) and zeroes the tokens it is handed with them."""

    name, may_abstain, reads_scores = "score-scribbler", False, True

    def propose(self, ids, gamma, to_probs, generator):
        return Draft(ids[-1:].repeat(gamma).clone())

    def observe_scores(self, tokens, logits):
        tokens.fill_(0)


def test_a_drafter_that_writes_into_the_scored_tokens_cannot_change_the_run():
    target, prompt = tiny_llama(), [7, 3, 9, 3]
    out = generate_speculative(target, ScoreScribbler(), prompt, gamma=2, max_new_tokens=10)
    assert out.prompt_ids == prompt
    assert out.token_ids == generate_autoregressive(target, prompt, max_new_tokens=10).token_ids


class SkewedBf16(Drafter):
    """A uniform bf16 q row scaled by 1.05: 5% more mass than a distribution has."""

    name, may_abstain = "skewed-bf16", False

    def propose(self, ids, gamma, to_probs, generator):
        q = torch.full((gamma, VOCAB), 1.0 / VOCAB, dtype=torch.bfloat16) * 1.05
        return Draft(ids[-1:].repeat(gamma).clone(), q)


def test_a_bf16_q_row_five_percent_off_one_is_refused():
    with pytest.raises(ValueError, match="within 0.01 for torch.bfloat16"):
        generate_speculative(tiny_llama(), SkewedBf16(), [1, 2], gamma=2, max_new_tokens=4, temperature=1.0)


def test_a_numpy_reference_is_read_like_a_tensor():
    assert checks.check_reference(np.array([3, 4]), VOCAB) == [3, 4]
    with pytest.raises(ValueError, match="outside the target's vocabulary"):
        checks.check_reference(np.array([3, 500]), VOCAB)


def test_a_one_element_numpy_answer_is_its_number_and_a_numpy_bool_is_not():
    assert check("acceptance", lambda p, q: np.array([min(1.0, p / q)]))
    with pytest.raises(WrongAnswer, match="NumPy bool"):
        check("acceptance", lambda p, q: np.True_)
