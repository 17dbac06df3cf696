"""Verification rules: exact output distributions, greedy as the temperature-0 limit, the trace fields."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from specdec_lab.drafters import Draft
from specdec_lab.core.sampling import SamplingConfig, one_hot, probs_from_logits
from specdec_lab.verifiers import GreedyMatch, SpeculativeSampling


@st.composite
def distributions(draw, rows: int = 2):
    """(rows, V) probabilities from random logits through a random sampling config (so zeros occur)."""
    vocab = draw(st.integers(2, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    cfg = SamplingConfig(
        temperature=draw(st.floats(0.2, 2.0)),
        top_k=draw(st.one_of(st.none(), st.integers(1, vocab))),
        top_p=draw(st.one_of(st.none(), st.floats(0.3, 1.0))),
    )
    logits = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 2
    return probs_from_logits(logits, cfg)


def _first_token_distribution(p: torch.Tensor, q_row: torch.Tensor | None, draft_support) -> torch.Tensor:
    """Exact law of the first emitted token of one verification with γ = 1.

    Σ over the drafts x: P(draft = x) · [a(x) · δ_x + (1 − a(x)) · (what the verifier samples after rejecting x)],
    where a(x) and the rejection distribution are read off the verifier's own verdicts
    (u = 0 forces acceptance whenever a(x) > 0, u = 1 forces rejection).
    """
    verifier = SpeculativeSampling()
    law = torch.zeros(p.shape[-1], dtype=torch.float64)
    for x, weight in draft_support:
        draft = Draft(torch.tensor([x]), None if q_row is None else q_row[None])
        accept = verifier.verify(draft, p, None, uniforms=torch.tensor([0.0]))
        reject = verifier.verify(draft, p, None, uniforms=torch.tensor([1.0]))
        a = accept.accept_prob[0]
        assert 0.0 <= a <= 1.0
        assert reject.n_accepted == 0 and (a == 0 or accept.n_accepted == 1)
        law[x] += weight * a
        law += weight * (1 - a) * reject.next_dist.double()
    return law


@settings(max_examples=150, deadline=None)
@given(pq=distributions(rows=3))
def test_one_step_output_is_exactly_p(pq):
    p, q_row = pq[:2], pq[2]
    support = [(x, q_row[x].item()) for x in range(p.shape[-1]) if q_row[x] > 0]
    law = _first_token_distribution(p, q_row, support)
    assert torch.allclose(law, p[0].double(), atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(p=distributions(rows=2), x=st.integers(0, 9))
def test_deterministic_draft_output_is_exactly_p(p, x):
    x = x % p.shape[-1]
    law = _first_token_distribution(p, None, [(x, 1.0)])  # the draft is x with certainty; q is one-hot
    assert torch.allclose(law, p[0].double(), atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(pq=distributions(rows=9), gamma=st.integers(1, 4), seed=st.integers(0, 1000))
def test_verdict_fields_are_consistent(pq, gamma, seed):
    p, q = pq[: gamma + 1], pq[5 : 5 + gamma]
    g = torch.Generator().manual_seed(seed)
    tokens = torch.multinomial(q, 1, generator=g)[:, 0]
    v = SpeculativeSampling().verify(Draft(tokens, q), p, g)
    assert 0 <= v.n_accepted <= gamma
    assert v.tokens[: v.n_accepted] == tokens[: v.n_accepted].tolist()
    assert len(v.tokens) == v.n_accepted + 1
    assert all(0.0 <= a <= 1.0 for a in v.accept_prob)
    assert all(0.0 <= u < 1.0 for u in v.uniforms)
    for i in range(v.n_accepted):
        assert v.uniforms[i] < v.accept_prob[i] and v.decisions[i] == "accepted"
    if v.n_accepted < gamma:
        assert v.uniforms[v.n_accepted] >= v.accept_prob[v.n_accepted] and v.decisions[v.n_accepted] == "rejected"
    assert abs(v.next_dist.sum().item() - 1) < 1e-5 and not torch.isnan(v.next_dist).any()
    assert v.next_dist[v.tokens[-1]] > 0


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), vocab=st.integers(2, 12), gamma=st.integers(1, 6))
def test_speculative_sampling_at_temperature_zero_is_greedy_matching(seed, vocab, gamma):
    g = torch.Generator().manual_seed(seed)
    greedy = SamplingConfig(0.0)
    p = probs_from_logits(torch.randn(gamma + 1, vocab, generator=g), greedy)
    q = probs_from_logits(torch.randn(gamma, vocab, generator=g), greedy)
    tokens = q.argmax(-1)
    if seed % 2:  # make a long accepted prefix likely
        tokens = torch.where(torch.rand(gamma, generator=g) < 0.8, p[:gamma].argmax(-1), tokens)
        q = one_hot(tokens, vocab)
    a = SpeculativeSampling().verify(Draft(tokens, q), p, g)
    b = GreedyMatch().verify(Draft(tokens, q), p, g)
    assert a.tokens == b.tokens and a.n_accepted == b.n_accepted and a.decisions == b.decisions
    assert all(math.isnan(u) for u in b.uniforms)


def test_hand_worked_rejection():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    q = torch.tensor([[0.2, 0.5, 0.3]])
    v = SpeculativeSampling().verify(Draft(torch.tensor([1]), q), p, None, uniforms=torch.tensor([0.7]))
    assert abs(v.accept_prob[0] - 0.6) < 1e-6  # min(1, 0.3 / 0.5)
    assert v.decisions == ["rejected"] and v.n_accepted == 0
    assert v.next_dist.tolist() == [1.0, 0.0, 0.0] and v.tokens == [0]  # residual puts all mass on token 0
    v = SpeculativeSampling().verify(Draft(torch.tensor([1]), q), p, torch.Generator().manual_seed(0), uniforms=torch.tensor([0.5]))
    assert v.decisions == ["accepted"] and v.bonus and v.tokens[0] == 1 and torch.equal(v.next_dist, p[1])
