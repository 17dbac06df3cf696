"""An EAGLE feature head: one decoder layer that runs the target's top feature forward by one token.

Li et al., "EAGLE: Speculative Sampling Requires Rethinking Feature Uncertainty" (2024),
sections 3-4. Drafting tokens is hard; drafting the target's *features* (the hidden state
its output head reads) is easier, and the next token removes the feature's uncertainty,
so the head reads the feature AND the token that was actually sampled from it:

    g_t     = W_fc [f_t ; e(x_{t+1})] + b_fc            (2d -> d; e = the target's own embedding)
    f̂_{t+1} = Decoder(g_≤t)_t                           (one Llama layer, causal, rotary position t)
    q_{t+2} = softmax(W_out f̂_{t+1})                     (W_out = the target's own output head)

f_t is the target's final hidden state at token t (after its final norm, which is what
the speculative loop hands drafters; EAGLE itself reads the layer below the head).
Drafting feeds the head its own f̂ in place of f, one token at a time, with its own KV cache.
As in EAGLE's code (cnets.py), the one layer has no input norm: W_fc's output goes in as is.
The target's embedding and output head stay frozen and are not stored here.

Training (EAGLE eq. 1-3, zoo/eagle.py's eagle_loss): teacher-forced on the frozen target's features,

    L = SmoothL1(f̂_{t+1}, f_{t+1}) + w · CE(p_{t+2}, softmax(W_out f̂_{t+1}))      w = 0.1

where p_{t+2} = softmax(W_out f_{t+1}) is the target's own next-token distribution, and the
input features get uniform noise U(−a/2, a/2) so the head learns to read imperfect ones
(its own predictions, at drafting time).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import DynamicCache, LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

WEIGHTS, CONFIG = "head.safetensors", "head_config.json"


@dataclass(frozen=True)
class EagleConfig:
    hidden: int  # d: the target's width (the feature size)
    heads: int  # attention heads of the one layer
    kv_heads: int  # key/value heads (= heads: plain multi-head attention)
    intermediate: int  # MLP width of the one layer
    context: int  # longest position the rotary table is meant for (the target's context)
    rope_theta: float  # rotary base, the target's
    rms_norm_eps: float  # epsilon of the layer's RMSNorm

    @staticmethod
    def like(target, intermediate: int | None = None) -> "EagleConfig":
        """A head shaped like one of the target's own layers."""
        cfg = target.config
        rope = getattr(cfg, "rope_parameters", None) or {}
        return EagleConfig(
            hidden=cfg.hidden_size, heads=cfg.num_attention_heads,
            kv_heads=getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
            intermediate=intermediate or cfg.intermediate_size, context=cfg.max_position_embeddings,
            rope_theta=float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))),
            rms_norm_eps=float(getattr(cfg, "rms_norm_eps", 1e-6)),
        )

    def llama(self) -> LlamaConfig:
        """The config of a 1-layer Llama body (what LlamaDecoderLayer and the KV cache read)."""
        cfg = LlamaConfig(
            vocab_size=1, hidden_size=self.hidden, intermediate_size=self.intermediate, num_hidden_layers=1,
            num_attention_heads=self.heads, num_key_value_heads=self.kv_heads, max_position_embeddings=self.context,
            rms_norm_eps=self.rms_norm_eps, rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )
        cfg._attn_implementation = "sdpa"
        return cfg


class EagleHead(nn.Module):
    """fc(2d -> d) + one Llama decoder layer; ``forward`` maps (f_t, e(x_{t+1})) rows to f̂_{t+1} rows."""

    def __init__(self, config: EagleConfig):
        super().__init__()
        self.config = config
        self.llama_config = config.llama()
        self.fc = nn.Linear(2 * config.hidden, config.hidden)
        self.layer = LlamaDecoderLayer(self.llama_config, layer_idx=0)
        self.layer.input_layernorm = nn.Identity()  # EAGLE: the fused input is not normalised again
        self.rotary = LlamaRotaryEmbedding(self.llama_config)
        self._cache_kw = "cache" if "cache" in inspect.signature(self.layer.forward).parameters else "past_key_values"
        for module in self.modules():  # Llama's initialisation: N(0, 0.02), zero biases
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    @property
    def hidden(self) -> int:
        return self.config.hidden

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.llama_config)

    def forward(self, features: torch.Tensor, next_embeds: torch.Tensor, cache: DynamicCache | None = None,
                positions: torch.Tensor | None = None, visible: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d) features f_t and (B, T, d) embeddings e(x_{t+1}) -> (B, T, d) predicted f̂_{t+1}.

        With a ``cache`` the rows continue it: ``positions`` (T,) default to cache length + 0..T−1,
        ``visible`` (T, cached + T) bool says which cached and new rows each new row attends to
        (default causal). Without one the rows are a fresh causal sequence at positions 0..T−1.
        """
        past = cache.get_seq_length() if cache is not None else 0
        T = features.shape[1]
        if positions is None:
            positions = past + torch.arange(T, device=features.device)
        g = self.fc(torch.cat([features, next_embeds], dim=-1))  # (B, T, d)
        mask = None  # no cache, no tree: plain causal attention (sdpa's is_causal)
        if cache is not None or visible is not None:
            if visible is None:
                visible = torch.ones(T, past + T, dtype=torch.bool, device=g.device).tril(past)
            mask = torch.zeros(visible.shape, dtype=g.dtype, device=g.device).masked_fill(~visible, torch.finfo(g.dtype).min)
            mask = mask[None, None]  # (1, 1, T, past + T)
        position_ids = positions.to(g.device).unsqueeze(0)  # (1, T)
        rope = self.rotary(g, position_ids=position_ids)
        kwargs = {self._cache_kw: cache, "use_cache": cache is not None}
        return self.layer(g, attention_mask=mask, position_ids=position_ids, position_embeddings=rope, **kwargs)

    def save(self, folder: Path, meta: dict) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.half().contiguous() for k, v in self.state_dict().items() if not k.startswith("rotary.")}
        save_file(state, str(folder / WEIGHTS))
        cfg = {"kind": "eagle"} | asdict(self.config) | meta
        (folder / CONFIG).write_text(json.dumps(cfg, indent=1) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> "EagleHead":
        folder = Path(folder)
        if not (folder / CONFIG).exists():
            raise FileNotFoundError(f"no EAGLE head in {folder} (missing {CONFIG})")
        cfg = json.loads((folder / CONFIG).read_text())
        if cfg.get("kind") != "eagle":
            raise ValueError(f"{folder / CONFIG} describes a {cfg.get('kind')!r} head, not an EAGLE head")
        head = cls(EagleConfig(**{k: cfg[k] for k in EagleConfig.__dataclass_fields__}))
        state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()}
        head.load_state_dict(state, strict=False)  # the rotary table is rebuilt, not stored
        missing = set(k for k in head.state_dict() if not k.startswith("rotary.")) - set(state)
        if missing:
            raise ValueError(f"{folder / WEIGHTS} lacks {sorted(missing)[:3]}")
        return head.eval()
