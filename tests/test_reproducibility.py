"""The same seed gives the same trace, token for token and decision for decision, on the same device."""

from __future__ import annotations

import pytest

from specdec_lab import build_drafter, generate_autoregressive, generate_speculative
from specdec_lab.models.loading import load_model

PROMPT = "ROMEO.\nBut soft, what light"


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", "cpu")


def fingerprint(out):
    return [(s.draft, s.decisions, [round(u, 12) for u in s.uniforms if u == u], s.emitted, s.tree and s.tree["tokens"])
            for s in out.steps]


@pytest.mark.parametrize("drafter, verifier", [("distilled", "speculative"), ("distilled", "tree-speculative"),
                                               ("lookahead", "speculative"), ("eagle", "typical")])
def test_same_seed_same_trace(zoo, drafter, verifier):
    target, tokenizer = zoo
    ids = tokenizer(PROMPT)["input_ids"]
    runs = [generate_speculative(target, build_drafter(drafter, target, tokenizer), ids, gamma=3, max_new_tokens=24,
                                 temperature=0.9, top_p=0.95, seed=seed, verifier=verifier) for seed in (7, 7, 8)]
    assert runs[0].token_ids == runs[1].token_ids and fingerprint(runs[0]) == fingerprint(runs[1])
    assert runs[0].token_ids != runs[2].token_ids or fingerprint(runs[0]) != fingerprint(runs[2])  # the seed matters


def test_same_seed_same_baseline(zoo):
    target, tokenizer = zoo
    ids = tokenizer(PROMPT)["input_ids"]
    a, b = (generate_autoregressive(target, ids, max_new_tokens=24, temperature=1.0, seed=5) for _ in range(2))
    assert a.token_ids == b.token_ids
