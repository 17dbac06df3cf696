"""logits -> the distribution actually sampled from."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from specdec_lab.core.sampling import SamplingConfig, accepted_prefix_len, check_finite_logits, one_hot, probs_from_logits, sample

LOGITS = torch.tensor([2.0, 1.0, 0.5, -1.0, 3.0])


def test_temperature_zero_is_one_hot_on_argmax():
    p = probs_from_logits(LOGITS, SamplingConfig(0.0))
    assert p.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_temperature_one_is_softmax():
    assert torch.allclose(probs_from_logits(LOGITS, SamplingConfig(1.0)), LOGITS.softmax(-1))


def test_top_k_keeps_exactly_k_tokens():
    p = probs_from_logits(LOGITS, SamplingConfig(1.0, top_k=2))
    assert (p > 0).tolist() == [True, False, False, False, True]
    assert p.sum().item() == pytest.approx(1.0)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = LOGITS.softmax(-1)  # order: 4 (0.61), 0 (0.22), 1 (0.08), 2 (0.05), 3 (0.01)
    p = probs_from_logits(LOGITS, SamplingConfig(1.0, top_p=0.7))
    assert (p > 0).tolist() == [True, False, False, False, True]  # 0.61 < 0.7 <= 0.61 + 0.22
    assert torch.allclose(p[[0, 4]], probs[[0, 4]] / probs[[0, 4]].sum())
    assert (probs_from_logits(LOGITS, SamplingConfig(1.0, top_p=0.5)) > 0).sum() == 1  # top token always stays


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    vocab=st.integers(2, 40),
    temperature=st.floats(0.05, 3.0),
    top_k=st.one_of(st.none(), st.integers(1, 50)),
    top_p=st.one_of(st.none(), st.floats(0.05, 1.0)),
)
def test_matches_transformers_warpers(seed, vocab, temperature, top_k, top_p):
    logits = torch.randn(3, vocab, generator=torch.Generator().manual_seed(seed)) * 3
    ours = probs_from_logits(logits, SamplingConfig(temperature, top_k, top_p))
    theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k is not None:
        theirs = TopKLogitsWarper(top_k)(None, theirs)
    if top_p is not None:
        theirs = TopPLogitsWarper(top_p)(None, theirs)
    theirs = theirs.softmax(-1)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert torch.allclose(ours.sum(-1), torch.ones(3), atol=1e-5)
    assert not torch.isnan(ours).any()


def test_masked_logits_keep_zero_probability():
    logits = torch.tensor([float("-inf"), 0.0, 1.0])
    for cfg in (SamplingConfig(0.0), SamplingConfig(1.0), SamplingConfig(0.5, top_k=2, top_p=0.9)):
        assert probs_from_logits(logits, cfg)[0] == 0


def test_sample_draws_from_the_distribution():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.1, 0.0, 0.6, 0.3])
    draws = sample(p.expand(20000, -1), g)
    freq = torch.bincount(draws, minlength=4).float() / 20000
    assert freq[1] == 0
    assert torch.allclose(freq, p, atol=0.015)


def test_idioms():
    assert one_hot(torch.tensor([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert accepted_prefix_len(torch.tensor([True, True, False, True])) == 2
    assert accepted_prefix_len(torch.tensor([False, True])) == 0
    assert accepted_prefix_len(torch.tensor([True, True])) == 2
    assert accepted_prefix_len(torch.tensor([], dtype=torch.bool)) == 0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(temperature=-0.5), ValueError, "temperature must be >= 0"),
        (dict(temperature=math.nan), TypeError, "finite"),
        (dict(temperature="hot"), TypeError, "temperature"),
        (dict(top_k=0), ValueError, "top_k must be >= 1"),
        (dict(top_k=2.5), TypeError, "top_k"),
        (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
        (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\]"),
    ],
)
def test_bad_sampling_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        SamplingConfig(**kwargs)


def test_nan_and_inf_logits_are_refused():
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        check_finite_logits(torch.tensor([0.0, math.nan]))
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        check_finite_logits(torch.tensor([0.0, math.inf]))
    check_finite_logits(torch.tensor([0.0, -math.inf]))  # a mask is fine
