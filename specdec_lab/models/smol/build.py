"""Build SmolLM2's trained drafters from their folders in ``smol/weights`` (the registry calls these).

Only what was trained is stored; the rest is the target's own, shared at run time (never copied):

| drafter | stored | shared with the target |
|---|---|---|
| eagle | the head: fc + one decoder layer | embedding, output head (over the draft vocabulary) |
| medusa | K residual blocks | output head (over the draft vocabulary) |
| early-exit | one adapter decoder layer after layer E | embedding, layers 1..E, final norm, output head |
| distilled | its own decoder layers and final norm | embedding, output head |
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm

from ...drafters.draft_vocab import DraftVocabHead
from ...drafters.eagle import EagleDrafter
from ...drafters.early_exit import early_exit_model, stacked_model
from ...drafters.medusa import MedusaDrafter
from ...drafters.small_model import ModelDrafter
from ..trained import card, draft_vocab

ADAPTER, LAYERS = "adapter.safetensors", "layers.safetensors"


def load_module(module: nn.Module, path: Path, prefix: str = "") -> None:
    state = {k[len(prefix):]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if "rotary" not in k]
    if missing or unexpected:
        raise ValueError(f"{path} does not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")


def save_module(module: nn.Module, path: Path) -> None:
    """bf16 safetensors of a module's parameters (what ships in the repo)."""
    save_file({k: v.detach().bfloat16().contiguous() for k, v in module.state_dict().items() if "rotary" not in k}, str(path))


def _head(target, folder: Path):
    ids = draft_vocab(folder, target.lm_head.weight.device)
    return None if ids is None else DraftVocabHead(target.get_output_embeddings(), ids)


def _placed(module: nn.Module, target) -> nn.Module:
    w = target.get_output_embeddings().weight
    return module.to(device=w.device, dtype=w.dtype).eval()


def eagle(target, folder: Path) -> EagleDrafter:
    return EagleDrafter.from_folder(target, folder, draft_vocab(folder, target.device))


def medusa(target, folder: Path) -> MedusaDrafter:
    return MedusaDrafter.from_folder(target, folder, draft_vocab(folder, target.device))


def adapter_layer(target, exit_layer: int) -> LlamaDecoderLayer:
    """A fresh decoder layer shaped like the target's, writing cache slot ``exit_layer`` (after layers 0..E−1)."""
    return LlamaDecoderLayer(target.config, layer_idx=exit_layer)


def early_exit(target, folder: Path) -> ModelDrafter:
    exit_layer = int(card(folder)["exit_layer"])
    adapter = adapter_layer(target, exit_layer)
    load_module(adapter, Path(folder) / ADAPTER)
    model = early_exit_model(target, exit_layer, _placed(adapter, target), _head(target, folder))
    return ModelDrafter(model, name=f"early-exit@{exit_layer}+adapter")


class DistilledBody(nn.Module):
    """The distilled drafter's own parts: ``n`` decoder layers and a final norm (the rest is the target's)."""

    def __init__(self, target, n_layers: int):
        super().__init__()
        cfg = target.config
        self.layers = nn.ModuleList(LlamaDecoderLayer(cfg, layer_idx=i) for i in range(n_layers))
        self.norm = LlamaRMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)


def distilled(target, folder: Path) -> ModelDrafter:
    body = DistilledBody(target, int(card(folder)["layers"]))
    load_module(body, Path(folder) / LAYERS)
    body = _placed(body, target)
    return ModelDrafter(stacked_model(target, list(body.layers), body.norm, _head(target, folder)), name="distilled")


BUILDERS = {"eagle": eagle, "medusa": medusa, "early-exit": early_exit, "distilled": distilled}
