"""The registry's catalogue: every drafter with every verifier it fits, exact where it claims to be.

Greedy: each combination reproduces the zoo target's own greedy output (lossy rules too:
at temperature 0 they reduce to exact matching). Sampling: each lossless verifier with each
kind of drafter (a model, a lookup table, the target's own layers, heads on its state) emits
exactly the target's law: exactly, as the rows every step hands the verifier (the target's and the drafter's true
conditionals) plus the rule's exact law by enumeration; and end to end by chi-square for the tree rule (marked stat).
"""

from __future__ import annotations

import math

import pytest
import torch

from specdec_lab import DRAFTERS, VERIFIERS, build_drafter, build_verifier, generate_autoregressive, generate_speculative
from specdec_lab.drafters import (
    EagleDrafter, FirstNonEmpty, LookaheadDrafter, MedusaDrafter, ModelDrafter, PromptLookupDrafter, RecyclingDrafter,
    RetrievalDrafter, SuffixDrafter, early_exit_drafter,
)
from specdec_lab.drafters.suffix_automaton import StaticAutomaton
from specdec_lab.models.loading import load_model
from specdec_lab.registry import INDEPENDENT, SELF
from specdec_lab.core.sampling import SamplingConfig, probs_from_logits
from specdec_lab.verifiers.laws import emitted_law, law_distance, target_law
from specdec_lab.models.zoo.heads import MedusaHeads

from conftest import tiny_llama
from test_block_verification import table
from test_distribution import PROMPT as PROMPT_IDS
from test_distribution import V, chi_square_pvalue
from test_eagle import random_head

PROMPT = "def main(args):\n    parser = argparse.ArgumentParser("


def test_registry_entries_say_what_they_are():
    for entry in DRAFTERS.values():
        assert entry.family in (INDEPENDENT, SELF) and entry.summary
    for entry in VERIFIERS.values():
        verifier = build_verifier(entry.name)
        assert verifier.lossless == entry.lossless and verifier.tree == entry.tree
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
        "lookup+retrieval": FirstNonEmpty([PromptLookupDrafter(max_ngram=2), RetrievalDrafter(datastore, max_ngram=2)]),
        "lookup+eagle": FirstNonEmpty([PromptLookupDrafter(max_ngram=2), EagleDrafter(target, random_head(target))]),
        "recycling": RecyclingDrafter(target),
        "suffix": SuffixDrafter(StaticAutomaton([datastore.tolist()])),
        "suffix+recycling": FirstNonEmpty([SuffixDrafter(StaticAutomaton([datastore.tolist()]), min_match=2),
                                           RecyclingDrafter(target)]),
    }


KINDS = ["small-model", "prompt-lookup", "retrieval", "early-exit", "medusa", "lookahead", "eagle", "lookup+retrieval",
         "lookup+eagle", "recycling", "suffix", "suffix+recycling"]
CFG = SamplingConfig(0.9, top_k=4, top_p=0.95)  # temperature, top-k and top-p all active: q is built like p


def fresh_probs(model, context: list[int], tokens: list[int]) -> torch.Tensor:
    """(len(tokens) + 1, V): the model's distribution after context, context + x_1, …, from ONE uncached forward."""
    seq = torch.tensor(context + tokens)
    with torch.no_grad():
        logits = model(seq[None]).logits[0, len(context) - 1:]  # (len(tokens) + 1, V)
    return probs_from_logits(logits, CFG)


@pytest.mark.parametrize("verifier", ["speculative", "block"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_drafter_hands_the_verifier_the_targets_true_rows(kind, verifier):
    """Losslessness, the exact and deterministic way: the loop with each kind of drafter is lossless if (1) the rows p
    the verifier saw are the target's true conditionals at the context and after each draft prefix (the KV cache kept
    and rolled back right), (2) each draft was drawn from the q row it came with (a model drafter's true conditionals;
    a deterministic draft is q = one-hot), and (3) the rule is exact for any p and q, which
    test_every_lossless_rule_has_the_target_law_exactly checks by enumeration. (1) and (2) are checked here on
    every step of seeded runs, with γ = 3 and T, top-k and top-p all active."""
    target = tiny_llama(layers=2, seed=0, vocab=V, hidden=16, init=0.5)
    drafter = tiny_drafters(target)[kind]
    steps = 0
    for seed in range(4):
        out = generate_speculative(target, drafter, PROMPT_IDS, gamma=3, max_new_tokens=10, temperature=CFG.temperature,
                                   top_k=CFG.top_k, top_p=CFG.top_p, seed=seed, verifier=verifier, keep_rows=True)
        sequence = PROMPT_IDS + out.token_ids
        for step in out.steps:
            if not step.draft:
                continue
            steps += 1
            context = sequence[: step.context_len]
            assert torch.allclose(step.rows["p"], fresh_probs(target, context, step.draft), atol=1e-5), (kind, seed)
            q = step.rows["q"]
            if q is None:
                continue  # a deterministic draft: q = one-hot(x), which the verifier builds itself
            assert torch.allclose(q.sum(-1), torch.ones(len(step.draft)), atol=1e-5)
            assert bool((q[torch.arange(len(step.draft)), step.draft] > 0).all()), (kind, "a draft q says is impossible")
            if kind in ("small-model", "early-exit"):  # a model drafter: q is its own true conditionals
                assert torch.allclose(q, fresh_probs(drafter.model, context, step.draft)[:-1], atol=1e-5), (kind, seed)
    assert steps >= 8


@pytest.mark.parametrize("verifier", ["speculative", "block"])
@pytest.mark.parametrize("draft_kind", ["sampled", "deterministic"])
def test_every_lossless_rule_has_the_target_law_exactly(verifier, draft_kind):
    """(3) above, by enumeration (laws.emitted_law): the law of the first three emitted tokens, drafts x ~ q chained
    (a deterministic drafter: q one-hot on its pick), equals the target's own, to rounding, for γ = 1..3."""
    p_of, sampled = table(0, cfg=CFG), table(1, cfg=CFG)
    q_of = sampled if draft_kind == "sampled" else (lambda prefix: torch.nn.functional.one_hot(
        sampled(prefix).argmax(), 4).double())
    rule = build_verifier(verifier)
    for gamma in (1, 2, 3):
        assert law_distance(emitted_law(rule, p_of, q_of, gamma, n_tokens=3), target_law(p_of, 3)) < 1e-12


def test_the_exact_check_catches_a_wrong_rule():
    """The negative control of the exact check: resampling from p after a rejection changes the law."""
    from test_distribution import ResampleFromP

    p_of, q_of = table(0, cfg=CFG), table(1, cfg=CFG)
    assert law_distance(emitted_law(ResampleFromP(), p_of, q_of, 2, n_tokens=3), target_law(p_of, 3)) > 1e-3


@pytest.mark.stat
@pytest.mark.parametrize("kind", ["small-model", "prompt-lookup"])
def test_tree_speculative_samples_the_target_law(kind):
    """Monte-Carlo end to end (tree steps keep no rows, so the exact check above does not reach them): a sampled and a
    deterministic drafter; the negative control is test_distribution's wrong rule, which the same test rejects."""
    target = tiny_llama(layers=2, seed=0, vocab=V, hidden=16, init=0.5)
    drafter = tiny_drafters(target)[kind]
    assert chi_square_pvalue(target, drafter, SamplingConfig(1.0), build_verifier("tree-speculative")) > 1e-3


def test_compare_reports_alpha_as_accepted_over_checked(zoo, monkeypatch):
    """The catalogue's tables (compare.measure) use the shared metrics: α = accepted ÷ checked, as Stats.alpha."""
    from specdec_lab.bench import compare

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
