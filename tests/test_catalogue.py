"""The registry's catalogue: every drafter with every verifier it fits, exact where it claims to be.

Greedy: each combination reproduces the zoo target's own greedy output (lossy rules too:
at temperature 0 they reduce to exact matching). Sampling: each lossless verifier with each
kind of drafter (a model, a lookup table, the target's own layers, heads on its state) emits
exactly the target's law (chi-square on the 5-token model of test_distribution).
"""

from __future__ import annotations

import math

import pytest
import torch

from specdec_lab import DRAFTERS, VERIFIERS, build_drafter, build_verifier, generate_autoregressive, generate_speculative
from specdec_lab.drafters import (
    EagleDrafter, LookaheadDrafter, MedusaDrafter, ModelDrafter, PromptLookupDrafter, RetrievalDrafter, early_exit_drafter,
)
from specdec_lab.loading import load_model
from specdec_lab.registry import INDEPENDENT, SELF
from specdec_lab.sampling import SamplingConfig
from specdec_lab.zoo.heads import MedusaHeads

from conftest import tiny_llama
from test_distribution import V, chi_square_pvalue
from test_eagle import random_head

PROMPT = "def main(args):\n    parser = argparse.ArgumentParser("


def test_registry_entries_say_what_they_are():
    for entry in DRAFTERS.values():
        assert entry.family in (INDEPENDENT, SELF) and entry.summary
    for entry in VERIFIERS.values():
        verifier = build_verifier(entry.name)
        assert verifier.lossless == entry.lossless and getattr(verifier, "tree", False) == entry.tree
        if not entry.lossless:
            assert entry.summary.startswith("LOSSY") and type(verifier).__doc__.lstrip().startswith("LOSSY")
    assert {e.name for e in VERIFIERS.values() if not e.lossless} == {"typical", "topk-tau"}


@pytest.fixture(scope="module")
def zoo():
    target, tokenizer = load_model("zoo:target", "cpu")
    ids = tokenizer(PROMPT)["input_ids"]
    return target, tokenizer, ids, generate_autoregressive(target, ids, max_new_tokens=16).token_ids


@pytest.mark.parametrize("drafter_name", list(DRAFTERS))
def test_every_combination_is_the_targets_greedy_output_on_the_zoo(zoo, drafter_name):
    target, tokenizer, ids, reference = zoo
    for verifier_name, entry in VERIFIERS.items():
        if entry.tree and not DRAFTERS[drafter_name].branches:
            with pytest.raises(ValueError, match="cannot branch"):
                generate_speculative(target, build_drafter(drafter_name, target, tokenizer), ids, verifier=verifier_name)
            continue
        out = generate_speculative(target, build_drafter(drafter_name, target, tokenizer), ids, gamma=4,
                                   max_new_tokens=16, verifier=verifier_name)
        assert out.token_ids == reference, (drafter_name, verifier_name)
        if entry.tree:
            assert out.stats.target_forwards == out.stats.steps + 1  # one forward per step, the prefill aside


def test_unknown_names_list_the_valid_ones(zoo):
    target, tokenizer, ids, _ = zoo
    with pytest.raises(ValueError, match="valid names: small-model, distilled"):
        build_drafter("medussa", target, tokenizer)
    with pytest.raises(ValueError, match="valid names: greedy, speculative"):
        generate_speculative(target, build_drafter("prompt-lookup", target), ids, verifier="tree")
    with pytest.raises(ValueError, match="tokenizer"):
        build_drafter("retrieval", target)  # its datastore is text: it needs the tokenizer


def tiny_drafters(target):
    """One drafter of each kind that fits the 5-token model."""
    heads = MedusaHeads(hidden=16, n_heads=2)
    torch.manual_seed(3)
    for block in heads.blocks:
        torch.nn.init.normal_(block.weight, std=0.3)
    datastore = torch.randint(0, V, (400,), generator=torch.Generator().manual_seed(0))
    return {
        "small-model": ModelDrafter(tiny_llama(layers=1, seed=7, vocab=V, hidden=16, init=0.5)),
        "prompt-lookup": PromptLookupDrafter(max_ngram=2),
        "retrieval": RetrievalDrafter(datastore, max_ngram=2),
        "early-exit": early_exit_drafter(target, 1),
        "medusa": MedusaDrafter(target, heads),
        "lookahead": LookaheadDrafter(window=3, ngram=2, guesses=2),
        "eagle": EagleDrafter(target, random_head(target)),
    }


@pytest.mark.parametrize("verifier", ["speculative", "tree-speculative"])
@pytest.mark.parametrize("kind", ["small-model", "prompt-lookup", "retrieval", "early-exit", "medusa", "lookahead", "eagle"])
def test_lossless_combinations_sample_the_target_law(kind, verifier):
    target = tiny_llama(layers=2, seed=0, vocab=V, hidden=16, init=0.5)
    drafter = tiny_drafters(target)[kind]
    assert chi_square_pvalue(target, drafter, SamplingConfig(1.0), build_verifier(verifier)) > 1e-3


def test_compare_reports_alpha_as_accepted_over_checked(zoo, monkeypatch):
    """The catalogue's tables (compare.measure) use the shared metrics: α = accepted ÷ checked, as Stats.alpha."""
    from specdec_lab import compare

    target, tokenizer, ids, _ = zoo
    runs = []
    real = compare.generate_speculative
    monkeypatch.setattr(compare, "generate_speculative", lambda *a, **k: runs.append(real(*a, **k)) or runs[-1])
    row = compare.measure(target, tokenizer, "prompt-lookup", "speculative", [ids], gamma=4, max_new_tokens=12, temperature=1.0)
    (run,) = runs
    assert row["alpha"] == pytest.approx(run.stats.alpha) and row["acceptance_rate"] == pytest.approx(run.stats.acceptance_rate)
    table = compare.table_markdown([row])
    header, _, cells = table.splitlines()
    alpha_cell = cells.split(" | ")[header.split(" | ").index("α")]
    assert alpha_cell == ("–" if math.isnan(run.stats.alpha) else f"{run.stats.alpha:.2f}")
