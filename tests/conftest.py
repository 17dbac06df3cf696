"""Tiny randomly initialised models for the engine's tests (Llama-style and GPT-2-style)."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

VOCAB = 96

if os.environ.get("PYTEST_XDIST_WORKER"):  # make check's workers, one per core: one torch thread each (two threads
    torch.set_num_threads(1)  # on cores that are both busy ran 10-70x slower; one thread degrades gracefully)


def tiny_llama(layers: int = 2, seed: int = 0, vocab: int = VOCAB, hidden: int = 32, context: int = 256, init: float = 0.2):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
        initializer_range=init, bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_gpt2(layers: int = 2, seed: int = 0, vocab: int = VOCAB, hidden: int = 32, context: int = 256, init: float = 0.2):
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=vocab, n_embd=hidden, n_layer=layers, n_head=4, n_positions=context,
        initializer_range=init, bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )
    return GPT2LMHeadModel(cfg).eval()


def perturbed_copy(model, noise: float, seed: int = 123):
    """A drafter that mostly agrees with the target: its weights plus Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    twin = type(model)(model.config).eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        for w in twin.parameters():
            w.add_(noise * w.std() * torch.randn(w.shape, generator=g))
    return twin


BUILDERS = {"llama": tiny_llama, "gpt2": tiny_gpt2}


@pytest.fixture(params=sorted(BUILDERS))
def arch(request):
    return request.param


@pytest.fixture
def pair(arch):
    """(target, drafter): a 2-layer target and a noisy copy of it, so drafts are often but not always right."""
    target = BUILDERS[arch](layers=2, seed=0)
    return target, perturbed_copy(target, noise=0.05)


def random_prompts(n: int, vocab: int = VOCAB, seed: int = 0, low: int = 1, high: int = 12) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high + 1, (n,), generator=g).tolist()
    return [torch.randint(0, vocab, (k,), generator=g).tolist() for k in lengths]
