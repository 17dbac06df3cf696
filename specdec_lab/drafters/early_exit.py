"""Early exit (self-drafting): draft with the target's own first layers, its final norm and its head.

Elhoushi et al., "LayerSkip" (2024); Zhang et al., "Draft & Verify" (2023): the
first E of the target's L layers, read out through the target's norm and head,
form a model of their own that costs about E / L of the target. The view built
here shares every weight with the target (no copy); it keeps its own KV cache
for those E layers. The zoo target was trained with an early-exit loss at
layer 2, so its first layers predict well on their own.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .small_model import ModelDrafter
from ..core.validate import is_int


def stacked_model(target, layers, norm: nn.Module | None = None, head: nn.Module | None = None):
    """A causal LM made of the target's embedding, then ``layers``, then ``norm`` and ``head`` (the target's by default).

    Nothing is copied: the result shares every module it is given, and keeps only its own KV cache.
    Layer i must carry ``self_attn.layer_idx == i`` (the cache slot it writes).
    """
    body = getattr(target, "model", None)
    if getattr(body, "layers", None) is None or not hasattr(body, "norm") or not hasattr(body, "embed_tokens"):
        raise TypeError(f"this needs a Llama-style decoder (model.layers, model.norm), got {type(target).__name__}")
    config = copy.deepcopy(target.config)  # a new config; the target's own is never touched
    config.num_hidden_layers = len(layers)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = (list(config.layer_types) * 2)[: len(layers)]
    with torch.device("meta"):
        view = type(target)(config)
    view.model.embed_tokens = body.embed_tokens
    view.model.layers = nn.ModuleList(layers)
    view.model.norm = body.norm if norm is None else norm
    if hasattr(body, "rotary_emb"):
        view.model.rotary_emb = body.rotary_emb
    view.lm_head = target.lm_head if head is None else head
    leftover = [n for n, t in list(view.named_parameters()) + list(view.named_buffers()) if t.is_meta]
    if leftover:
        raise TypeError(f"cannot build a model sharing {type(target).__name__}'s parts: unshared parts {leftover[:3]}")
    view.generation_config = copy.deepcopy(target.generation_config)
    return view.eval()


def early_exit_model(target, exit_layer: int, adapter: nn.Module | None = None, head: nn.Module | None = None):
    """The target's embeddings, first ``exit_layer`` layers (+ a trained ``adapter`` layer), final norm and head."""
    layers = getattr(getattr(target, "model", None), "layers", None)
    if layers is None:
        raise TypeError(f"early exit needs a Llama-style decoder (model.layers, model.norm), got {type(target).__name__}")
    if len(layers) < 2:
        raise ValueError(f"early exit needs a target with at least 2 layers (the draft uses the first E < L of its "
                         f"L layers), but this target has {len(layers)}; use another drafter or a deeper target")
    if not is_int(exit_layer) or not 1 <= exit_layer < len(layers):
        raise ValueError(f"exit_layer must be between 1 and {len(layers) - 1} for this {len(layers)}-layer target, got {exit_layer!r}")
    return stacked_model(target, list(layers[:exit_layer]) + ([adapter] if adapter is not None else []), head=head)


def early_exit_drafter(target, exit_layer: int = 2) -> ModelDrafter:
    """The early-exit drafter: the target's first ``exit_layer`` layers, drafting autoregressively."""
    return ModelDrafter(early_exit_model(target, exit_layer), name=f"early-exit@{exit_layer}")
