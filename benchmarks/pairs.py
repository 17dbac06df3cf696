"""Model pairs for benchmarks when no trained pair is given."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def synthetic_pair(layers: int = 6, hidden: int = 384, vocab: int = 4096, nudge: float = 0.3, seed: int = 0):
    """(target, drafter): random Llama models that compute almost the same function.

    The drafter is one decoder layer. The target copies the drafter's embeddings,
    first layer, final norm and head, and adds ``layers - 1`` random layers whose
    output projections are scaled by ``nudge``: they shift the drafter's prediction
    without replacing it, so drafts are often (not always) accepted while the
    target costs what a ``layers``-deep model costs. A stand-in for a trained
    family, for timing the loop.
    """
    torch.manual_seed(seed)

    def config(n_layers: int) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=n_layers,
            num_attention_heads=max(hidden // 64, 1), num_key_value_heads=max(hidden // 64, 1),
            max_position_embeddings=1024, initializer_range=0.08, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )

    drafter = LlamaForCausalLM(config(1)).eval()
    target = LlamaForCausalLM(config(layers)).eval()
    with torch.no_grad():
        target.model.embed_tokens.weight.copy_(drafter.model.embed_tokens.weight)
        target.lm_head.weight.copy_(drafter.lm_head.weight)
        target.model.norm.weight.copy_(drafter.model.norm.weight)
        target.model.layers[0].load_state_dict(drafter.model.layers[0].state_dict())
        for layer in target.model.layers[1:]:
            layer.self_attn.o_proj.weight.mul_(nudge)
            layer.mlp.down_proj.weight.mul_(nudge)
    return target, drafter
