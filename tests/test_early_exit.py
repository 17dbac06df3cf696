"""The early-exit drafter is the target's own first layers: same weights, exact readout, lossless drafting."""

from __future__ import annotations

import pytest
import torch

from specdec_lab import generate_autoregressive, generate_speculative
from specdec_lab.drafters.early_exit import early_exit_drafter, early_exit_model

from conftest import random_prompts, tiny_gpt2, tiny_llama


def test_view_shares_weights_and_reads_out_after_layer_e():
    target = tiny_llama(layers=4, seed=0)
    view = early_exit_model(target, 2)
    assert view.model.layers[1] is target.model.layers[1] and view.lm_head is target.lm_head
    assert target.config.num_hidden_layers == 4  # the target's config is untouched
    x = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        hidden = target(input_ids=x, output_hidden_states=True).hidden_states[2]
        assert torch.allclose(view(input_ids=x).logits, target.lm_head(target.model.norm(hidden)), atol=1e-5)


def test_early_exit_drafting_is_lossless():
    target = tiny_llama(layers=4, seed=1)
    drafter = early_exit_drafter(target, 1)
    for prompt in random_prompts(4, seed=3):
        ref = generate_autoregressive(target, prompt, max_new_tokens=16).token_ids
        out = generate_speculative(target, drafter, prompt, gamma=3, max_new_tokens=16)
        assert out.token_ids == ref and out.settings["drafter"] == "early-exit@1"


def test_bad_exit_layers_and_architectures():
    target = tiny_llama(layers=4)
    for bad in (0, 4, -1, 1.5):
        with pytest.raises(ValueError, match="exit_layer must be between 1 and 3"):
            early_exit_model(target, bad)
    with pytest.raises(TypeError, match="needs a Llama-style decoder"):
        early_exit_model(tiny_gpt2(), 1)


def test_a_one_layer_target_cannot_exit_early():
    """Not "exit_layer must be between 1 and 0": the target is too shallow, whatever exit_layer is."""
    for exit_layer in (1, 2):
        with pytest.raises(ValueError, match="early exit needs a target with at least 2 layers .* this target has 1"):
            early_exit_model(tiny_llama(layers=1), exit_layer)
    with pytest.raises(ValueError, match="at least 2 layers"):
        early_exit_drafter(tiny_llama(layers=1))
