"""Lossy relaxed verifiers: Medusa's typical acceptance and SpecDec's top-β / τ matching.

Hand-worked rows where each rule's decision is known, the reduction to greedy
matching (β = 1, or any setting at temperature 0), option checks, and the
point of the whole family: the law of the first emitted token, enumerated
exactly, is NOT the target's p (while the same enumeration of speculative
sampling gives p back).
"""

from __future__ import annotations

import math

import pytest
import torch

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters import Draft
from specdec_lab.verifiers.laws import first_token_law
from specdec_lab.core.sampling import SamplingConfig, one_hot, probs_from_logits
from specdec_lab.core.theory import total_variation
from specdec_lab.verifiers import as_verifier
from specdec_lab.verifiers import GreedyMatch, SpeculativeSampling, TopKMatch, TypicalAcceptance

from conftest import perturbed_copy, random_prompts, tiny_llama

RELAXED = [TypicalAcceptance(), TopKMatch()]


def entropy(p: torch.Tensor) -> float:
    return -sum(x * math.log(x) for x in p.tolist() if x > 0)


# --- typical acceptance: p_i(x_i) > min(ε, δ · exp(−H(p_i))) ---------------------------------------------


def test_typical_threshold_is_medusas_formula():
    rule = TypicalAcceptance()
    assert (rule.epsilon, rule.delta) == (0.09, 0.3)  # Medusa's posterior_threshold, posterior_alpha
    for row in ([0.5, 0.3, 0.2], [0.9, 0.06, 0.04], [0.2] * 5, [1.0, 0.0, 0.0]):
        p = torch.tensor(row)
        assert rule.threshold(p).item() == pytest.approx(min(0.09, 0.3 * math.exp(-entropy(p))), rel=1e-5)


def test_typical_accepts_tokens_below_the_argmax_and_rejects_unlikely_ones():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.9, 0.06, 0.04], [0.1, 0.1, 0.8]])  # bars: 0.09, 0.09
    v = TypicalAcceptance().verify(Draft(torch.tensor([1, 1])), p, torch.Generator().manual_seed(0))
    # x_1 = 1 is not the argmax but p = 0.3 > 0.09; x_2 = 1 has p = 0.06 < 0.09
    assert v.n_accepted == 1 and v.decisions == ["accepted", "rejected"]
    assert v.accept_prob == [1.0, 0.0] and v.q_draft == [1.0, 1.0]
    assert v.p_draft == pytest.approx([0.3, 0.06])
    assert all(math.isnan(u) for u in v.uniforms)
    assert torch.equal(v.next_dist, p[1]) and v.tokens[0] == 1 and len(v.tokens) == 2  # the own token ~ p_2


def test_typical_bar_is_lower_where_the_target_is_unsure():
    p = torch.tensor([[0.26, 0.25, 0.22, 0.2, 0.07], [0.2] * 5])
    assert 0.3 * math.exp(-entropy(p[0])) < 0.07 < 0.09  # only the entropy term lets token 4 through
    v = TypicalAcceptance().verify(Draft(torch.tensor([4])), p, None)
    assert v.n_accepted == 1 and v.bonus
    assert TypicalAcceptance(delta=1.0).verify(Draft(torch.tensor([4])), p, None).n_accepted == 0


# --- top-β / τ matching: x_i in top-β of p_i and log p_i(top1) − log p_i(x_i) ≤ τ ---------------------


def test_topk_tau_accepts_the_second_best_within_tau_only():
    close = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])  # gap log(0.5 / 0.3) = 0.51
    far = torch.tensor([[0.8, 0.15, 0.05], [0.1, 0.1, 0.8]])  # gap log(0.8 / 0.15) = 1.67
    second = Draft(torch.tensor([1]))
    v = TopKMatch(top_k=2, tau=1.0).verify(second, close, None)
    assert v.n_accepted == 1 and v.tokens == [1, 2] and v.next_dist.tolist() == [0.0, 0.0, 1.0]
    v = TopKMatch(top_k=2, tau=1.0).verify(second, far, None)
    assert v.n_accepted == 0 and v.tokens == [0] and v.decisions == ["rejected"]  # the target's argmax instead
    assert TopKMatch(top_k=2, tau=2.0).verify(second, far, None).n_accepted == 1
    third = Draft(torch.tensor([2]))  # within τ (gap 0.92) but third best
    assert TopKMatch(top_k=2, tau=1.0).verify(third, close, None).n_accepted == 0
    assert TopKMatch(top_k=3, tau=1.0).verify(third, close, None).n_accepted == 1


def test_topk_tau_never_accepts_an_impossible_token():
    p = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # temperature 0: log p = -inf off the argmax
    for rule in (TopKMatch(top_k=3, tau=math.inf), TopKMatch(top_k=2, tau=1e9)):
        v = rule.verify(Draft(torch.tensor([2])), p, None)
        assert v.n_accepted == 0 and v.tokens == [0]
        assert rule.verify(Draft(torch.tensor([0])), p, None).tokens == [0, 1]


def _random_case(seed: int, temperature: float):
    g = torch.Generator().manual_seed(seed)
    vocab, gamma = 2 + seed % 9, 1 + seed % 5
    p = probs_from_logits(torch.randn(gamma + 1, vocab, generator=g) * 2, SamplingConfig(temperature))
    q = probs_from_logits(torch.randn(gamma, vocab, generator=g) * 2, SamplingConfig(1.0))
    tokens = torch.multinomial(q, 1, generator=g)[:, 0]
    tokens = torch.where(torch.rand(gamma, generator=g) < 0.6, p[:gamma].argmax(-1), tokens)  # long prefixes too
    return p, Draft(tokens, q)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_top1_is_greedy_matching(temperature):
    for seed in range(100):
        p, draft = _random_case(seed, temperature)
        a, b = TopKMatch(top_k=1).verify(draft, p, None), GreedyMatch().verify(draft, p, None)
        assert (a.tokens, a.n_accepted, a.decisions, a.accept_prob) == (b.tokens, b.n_accepted, b.decisions, b.accept_prob)
        assert torch.equal(a.next_dist, b.next_dist)


@pytest.mark.parametrize("rule", RELAXED + [TopKMatch(top_k=5, tau=math.inf)], ids=repr)
def test_every_relaxed_rule_is_greedy_matching_at_temperature_zero(rule):
    for seed in range(100):
        p, draft = _random_case(seed, 0.0)
        a, b = rule.verify(draft, p, torch.Generator().manual_seed(seed)), GreedyMatch().verify(draft, p, None)
        assert (a.tokens, a.decisions) == (b.tokens, b.decisions)


@pytest.mark.parametrize("rule", RELAXED, ids=repr)
def test_a_deterministic_draft_gets_the_same_decisions(rule):
    for seed in range(30):
        p, draft = _random_case(seed, 1.0)
        a = rule.verify(draft, p, torch.Generator().manual_seed(1))
        b = rule.verify(Draft(draft.tokens), p, torch.Generator().manual_seed(1))
        assert (a.tokens, a.decisions, a.p_draft) == (b.tokens, b.decisions, b.p_draft)
        assert b.q_draft == [1.0] * len(draft)
        assert abs(a.next_dist.sum().item() - 1) < 1e-5 and a.next_dist[a.tokens[-1]] > 0


# --- options and registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, option",
    [
        (lambda: TypicalAcceptance(epsilon=0.0), "epsilon"),
        (lambda: TypicalAcceptance(epsilon=-0.1), "epsilon"),
        (lambda: TypicalAcceptance(epsilon=math.inf), "epsilon"),
        (lambda: TypicalAcceptance(delta=0.0), "delta"),
        (lambda: TypicalAcceptance(delta=math.nan), "delta"),
        (lambda: TopKMatch(top_k=0), "top_k"),
        (lambda: TopKMatch(tau=-0.5), "tau"),
        (lambda: TopKMatch(tau=math.nan), "tau"),
    ],
)
def test_bad_options_name_the_option(make, option):
    with pytest.raises(ValueError, match=option):
        make()


def test_registered_by_name_and_marked_lossy():
    for name, cls in (("typical", TypicalAcceptance), ("topk-tau", TopKMatch)):
        rule = as_verifier(name)
        assert type(rule) is cls and rule == cls() and rule.name == name
        assert rule.lossless is False and cls.__doc__.startswith("LOSSY")


# --- lossy: the first emitted token does not follow p --------------------------------------------------


@pytest.fixture(scope="module")
def five_token_rows():
    """p and q for the same prompt from two unrelated 5-token models (as in test_distribution.py), at T = 1."""
    target = tiny_llama(layers=1, seed=0, vocab=5, hidden=16, init=0.5)
    drafter = tiny_llama(layers=1, seed=7, vocab=5, hidden=16, init=0.5)
    with torch.no_grad():
        p = probs_from_logits(target(torch.tensor([[1, 3]])).logits[0, -1], SamplingConfig(1.0))  # (V,)
        q = probs_from_logits(drafter(torch.tensor([[1, 3]])).logits[0, -1], SamplingConfig(1.0))  # (V,)
    return p, q


@pytest.mark.parametrize("rule", RELAXED, ids=repr)
def test_relaxed_rules_do_not_sample_from_the_target(rule, five_token_rows):
    p, q = five_token_rows
    rows = torch.stack([p, p])  # (γ+1, V): the second row is only read after an acceptance
    assert total_variation(first_token_law(SpeculativeSampling(), rows, q), p.double()) < 1e-6  # the harness works
    law = first_token_law(rule, rows, q)
    assert abs(law.sum().item() - 1) < 1e-5
    assert total_variation(law, p.double()) > 0.25  # would be 0 for any lossless rule


@pytest.mark.parametrize("rule", RELAXED, ids=repr)
def test_hand_worked_lossy_law(rule):
    """p and q reversed: q puts its mass where p has little; both rules move the output toward q or the argmax."""
    p = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05])
    q = p.flip(0)
    law = first_token_law(rule, torch.stack([p, p]), q)
    if isinstance(rule, TypicalAcceptance):  # bar 0.3 · exp(−H) = 0.075: only token 4 is rejected, then ~ p
        expected = q * (p > 0.075) + q[4] * p
    else:  # tokens 0 and 1 pass (top-2, gap 0.29); any other draft gives the argmax 0
        expected = q * (torch.arange(5) < 2) + q[2:].sum() * one_hot(torch.tensor(0), 5)
    assert torch.allclose(law, expected.double(), atol=1e-6)


# --- through the loop ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_pair():
    target = tiny_llama(layers=2, seed=0)
    return target, perturbed_copy(target, noise=0.05)


def test_greedy_output_through_the_loop_is_the_targets(llama_pair):
    target, drafter = llama_pair
    for prompt in random_prompts(2, seed=1):
        ref = generate_autoregressive(target, prompt, max_new_tokens=12).token_ids
        for rule in [TopKMatch(top_k=1)] + RELAXED:
            out = generate_speculative(target, drafter, prompt, gamma=4, max_new_tokens=12, verifier=rule)
            assert out.token_ids == ref, rule
            assert out.settings["verifier"] == rule.name


def test_sampling_through_the_loop_runs(llama_pair):
    target, drafter = llama_pair
    out = generate_speculative(target, drafter, [1, 2, 3], gamma=4, max_new_tokens=10, temperature=1.0, verifier="typical")
    assert len(out.token_ids) == 10
    assert all(a in (0.0, 1.0) for s in out.steps for a in s.accept_prob)
