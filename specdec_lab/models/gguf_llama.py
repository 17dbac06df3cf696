"""A Llama GGUF file as a transformers ``LlamaForCausalLM``, with the ``gguf`` package and numpy alone.

transformers can read GGUF too (``from_pretrained(folder, gguf_file=...)``), but what it returns depends on its
version (5.24 keeps the weights packed and computes through de-quantizing kernels). This reader always gives plain
weights: each tensor de-quantized by ``gguf.quants.dequantize`` and rounded to ``dtype``. llama.cpp stores the
query and key projections with each head's rows interleaved for its rotary kernel,

    gguf row (h, i, j) = transformers row (h, j, i)      h: head, i < 2: which half, j < head_dim / 2

so ``unpermute`` swaps the two inner axes back. For SmolLM2's wheel the result equals, bit for bit, the bf16
folder ``smollm2.converted_folder`` caches (a test checks); the drafter trainer uses it on machines where only
the GGUF file travels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

LAYER_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """(heads · head_dim, d) rows in llama.cpp's rotary order -> transformers' order."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _field(reader, key: str):
    return reader.fields[key].contents()


def llama_config(reader):
    """The LlamaConfig a GGUF file's metadata describes (tied embeddings: the file has no separate output)."""
    from transformers import LlamaConfig

    names = {t.name for t in reader.tensors}
    eos = int(_field(reader, "tokenizer.ggml.eos_token_id"))
    return LlamaConfig(
        vocab_size=int(_field(reader, "llama.vocab_size")), hidden_size=int(_field(reader, "llama.embedding_length")),
        intermediate_size=int(_field(reader, "llama.feed_forward_length")),
        num_hidden_layers=int(_field(reader, "llama.block_count")),
        num_attention_heads=int(_field(reader, "llama.attention.head_count")),
        num_key_value_heads=int(_field(reader, "llama.attention.head_count_kv")),
        max_position_embeddings=int(_field(reader, "llama.context_length")),
        rms_norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_parameters={"rope_type": "default", "rope_theta": float(_field(reader, "llama.rope.freq_base"))},
        bos_token_id=int(_field(reader, "tokenizer.ggml.bos_token_id")), eos_token_id=eos,
        pad_token_id=int(_field(reader, "tokenizer.ggml.padding_token_id")) if "tokenizer.ggml.padding_token_id" in reader.fields else eos,
        tie_word_embeddings="output.weight" not in names,
    )


def state_dict(reader, dtype=torch.bfloat16) -> dict[str, torch.Tensor]:
    """Every tensor de-quantized, renamed to transformers' Llama names, rounded to ``dtype``."""
    import gguf

    heads = int(_field(reader, "llama.attention.head_count"))
    kv_heads = int(_field(reader, "llama.attention.head_count_kv"))
    out = {}
    for t in reader.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)])
        if t.name == "token_embd.weight":
            name = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            name = "model.norm.weight"
        elif t.name == "output.weight":
            name = "lm_head.weight"
        else:
            _, layer, kind, _ = t.name.split(".")
            name = f"model.layers.{layer}.{LAYER_NAMES[kind]}.weight"
            w = unpermute(w, heads) if kind == "attn_q" else unpermute(w, kv_heads) if kind == "attn_k" else w
        out[name] = torch.from_numpy(np.array(w, dtype=np.float32)).to(dtype)
    return out


def load_gguf_llama(path: str | Path, dtype=torch.bfloat16):
    """(LlamaForCausalLM in eval mode, its config) from a Llama GGUF file."""
    import gguf
    from transformers import LlamaForCausalLM

    reader = gguf.GGUFReader(str(path))
    config = llama_config(reader)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.load_state_dict(state_dict(reader, dtype), strict=False, assign=True)
    model.tie_weights()
    missing = [n for n, p in model.named_parameters() if p.is_meta]
    if missing:
        raise ValueError(f"{path} lacks {missing[:3]}")
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)  # its buffers were made on the meta device
    return model.eval()
