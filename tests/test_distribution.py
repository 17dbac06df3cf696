"""The full speculative loop samples from the target's own distribution (chi-square over seeded runs).

A tiny-vocabulary target and an unrelated drafter; the exact law of the first
three new tokens is computed from the target by enumeration, and the loop's
empirical law over many seeds is compared with it. A deliberately wrong
verifier (it resamples from p instead of the residual after a rejection) is
the negative control: the same test must reject it.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy.stats import chisquare

from specdec_lab import generate_speculative
from specdec_lab.core.sampling import SamplingConfig, probs_from_logits, sample
from specdec_lab.verifiers import SpeculativeSampling, Verdict

from conftest import tiny_llama

V, N_NEW, GAMMA, RUNS = 5, 3, 2, 2000
PROMPT = [1, 3]


def exact_law(target, cfg: SamplingConfig) -> dict[tuple[int, ...], float]:
    """P(x1, x2, x3 | prompt) under the target, by enumerating every prefix."""
    law = {(): 1.0}
    for _ in range(N_NEW):
        prefixes = list(law)
        batch = torch.tensor([PROMPT + list(pre) for pre in prefixes])
        with torch.no_grad():
            probs = probs_from_logits(target(batch).logits[:, -1], cfg)  # (prefixes, V)
        law = {pre + (x,): law[pre] * probs[i, x].item() for i, pre in enumerate(prefixes) for x in range(V)}
    return law


def chi_square_pvalue(target, drafter, cfg: SamplingConfig, verifier) -> float:
    law = exact_law(target, cfg)
    counts = dict.fromkeys(law, 0)
    for seed in range(RUNS):
        out = generate_speculative(
            target, drafter, PROMPT, gamma=GAMMA, max_new_tokens=N_NEW, temperature=cfg.temperature,
            top_k=cfg.top_k, top_p=cfg.top_p, seed=seed, verifier=verifier,
        )
        counts[tuple(out.token_ids)] += 1
    # cells with a small expectation are pooled so the chi-square approximation holds
    big = [k for k in law if law[k] * RUNS >= 5]
    small = [k for k in law if law[k] * RUNS < 5]
    observed = [counts[k] for k in big] + [sum(counts[k] for k in small)]
    expected = [law[k] * RUNS for k in big] + [sum(law[k] for k in small) * RUNS]
    total = sum(expected)
    expected = [e * RUNS / total for e in expected]
    return chisquare(observed, expected).pvalue


class ResampleFromP(SpeculativeSampling):
    """WRONG on purpose: after a rejection it samples from p, not from the residual max(0, p − q)."""

    name = "wrong-resample-from-p"
    lossless = False

    def verify(self, draft, p, generator, uniforms=None) -> Verdict:
        v = super().verify(draft, p, generator, uniforms)
        if v.n_accepted < len(draft):
            v.next_dist = p[v.n_accepted]
            v.tokens[-1] = int(sample(v.next_dist, generator))
        return v


@pytest.fixture(scope="module")
def models():
    target = tiny_llama(layers=1, seed=0, vocab=V, hidden=16, init=0.5)
    drafter = tiny_llama(layers=1, seed=7, vocab=V, hidden=16, init=0.5)  # unrelated: alpha well below 1
    return target, drafter


CONFIGS = [SamplingConfig(1.0), SamplingConfig(0.7, top_k=4, top_p=0.9)]


@pytest.mark.stat
@pytest.mark.parametrize("cfg", CONFIGS, ids=["T=1", "T=0.7,top_k=4,top_p=0.9"])
def test_speculative_sampling_has_the_target_distribution(models, cfg):
    target, drafter = models
    assert chi_square_pvalue(target, drafter, cfg, verifier=None) > 1e-3


@pytest.mark.stat
def test_wrong_verifier_fails_the_same_test(models):
    target, drafter = models
    assert chi_square_pvalue(target, drafter, CONFIGS[0], verifier=ResampleFromP()) < 1e-3


@pytest.mark.stat
def test_drafts_are_really_rejected_in_this_setting(models):
    """The test has power only if rejections (and so residual draws) are frequent."""
    target, drafter = models
    rates = [
        generate_speculative(target, drafter, PROMPT, gamma=GAMMA, max_new_tokens=N_NEW, temperature=1.0, seed=s).stats.acceptance_rate
        for s in range(200)
    ]
    assert 0.2 < sum(rates) / len(rates) < 0.8
