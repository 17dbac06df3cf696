"""The settings translator: every drafter × linear verifier translates or says why not; the transformers form runs
and gives the same greedy output as the workbook's own loop."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import build_drafter, generate_speculative
from specdec_lab.bench.export import ServeSettings, to_sglang, to_transformers, to_vllm, transformers_generate_kwargs, translate
from specdec_lab.models.loading import load_model
from specdec_lab.registry import DRAFTERS, VERIFIERS


@pytest.mark.parametrize("verifier", list(VERIFIERS))
@pytest.mark.parametrize("drafter", list(DRAFTERS))
def test_every_setting_translates_or_says_why_not(drafter, verifier):
    for t in translate(ServeSettings(drafter, verifier, gamma=3, temperature=0.7, top_p=0.9)):
        text = t.text()
        assert text.startswith(f"# {t.engine} (")
        assert all(f"# no equivalent: {m}" in text for m in t.missing)
        assert t.config or t.missing


def test_names_are_the_engines_own():
    s = ServeSettings("distilled", "block", gamma=5, temperature=1.0, top_p=0.9, drafter_path="me/draft")
    hf = to_transformers(s)
    assert hf.config["generate"] == {"assistant_model": "drafter_model", "do_sample": True, "temperature": 1.0, "top_p": 0.9}
    assert hf.config["assistant_generation_config"]["num_assistant_tokens"] == 5
    assert any("block" in m for m in hf.missing)  # transformers verifies token by token only
    vllm = to_vllm(s).config
    assert vllm["speculative_config"] == {"method": "draft_model", "model": "me/draft", "num_speculative_tokens": 5,
                                          "rejection_sample_method": "block"}
    sglang = to_sglang(s)
    assert sglang.config["command"][-8:] == ["--speculative-draft-model-path", "me/draft", "--speculative-num-steps", "5",
                                             "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", "6"]
    assert any("36516" in m for m in sglang.missing)


def test_greedy_ignores_sampling_settings_and_lossy_rules_are_never_dropped():
    greedy = to_vllm(ServeSettings("prompt-lookup", "greedy", temperature=0.8, top_p=0.5)).config
    assert greedy["sampling_params"] == {"temperature": 0.0}
    assert greedy["speculative_config"] == {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 3,
                                            "prompt_lookup_min": 1}
    for t in translate(ServeSettings("distilled", "typical", temperature=0.7)):
        assert any("typical" in m for m in t.missing)
    assert all(not t.complete for t in translate(ServeSettings("lookahead", "greedy")))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown drafter"):
        ServeSettings("nope")
    with pytest.raises(ValueError, match="gamma"):
        ServeSettings("distilled", gamma=0)
    with pytest.raises(ValueError, match="no equivalent"):
        transformers_generate_kwargs(ServeSettings("medusa"))
    with pytest.raises(ValueError, match="drafter_model"):
        transformers_generate_kwargs(ServeSettings("distilled", "greedy"))


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo:target", "cpu", torch.float32)


@pytest.mark.parametrize("drafter", ["distilled", "prompt-lookup"])
def test_transformers_form_runs_and_matches_our_greedy_output(zoo, drafter):
    target, tokenizer = zoo
    ids = tokenizer("ROMEO.\nBut soft, what light through yonder window breaks?\n")["input_ids"]
    ours = generate_speculative(target, build_drafter(drafter, target, tokenizer), ids, gamma=4, max_new_tokens=24,
                                verifier="greedy").token_ids
    settings = ServeSettings(drafter, "greedy", gamma=4)
    model = build_drafter(drafter, target, tokenizer).model if drafter == "distilled" else None
    kwargs = transformers_generate_kwargs(settings, model)
    theirs = target.generate(torch.tensor([ids]), max_new_tokens=24, min_new_tokens=24, **kwargs)[0, len(ids):].tolist()
    assert theirs == ours
