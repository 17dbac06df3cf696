"""Causal LMs with their KV cache, and the checks that a target and drafter fit together.

:class:`CachedLM` is the only place that touches the transformers cache API,
which moved during 5.x: 5.17 models take ``past_key_values=``, newer ones
prefer ``cache=``; ``Cache.crop(-n)`` removes n tokens in both, so rollback
always passes a negative count.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .tree import ancestor_mask, check_parents, depths


def _forward_params(model) -> set[str]:
    return set(inspect.signature(model.forward).parameters)


def check_causal_lm(model, role: str = "target") -> None:
    """Refuse anything that is not a transformers model able to generate text left to right."""
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"the {role} must be a transformers causal LM (an nn.Module with a config), got {type(model).__name__}")
    can_generate = getattr(model, "can_generate", None)
    if not callable(can_generate) or not can_generate() or getattr(model.config, "is_encoder_decoder", False):
        raise TypeError(
            f"the {role} ({type(model).__name__}) is not a causal language model; "
            "load it with AutoModelForCausalLM"
        )
    if getattr(model.config, "model_type", None) in _ENCODERS and not getattr(model.config, "is_decoder", False):
        raise TypeError(
            f"the {role} ({type(model).__name__}) is an encoder ({model.config.model_type}) whose attention sees later "
            "tokens, not a left-to-right language model; use a decoder model (or set config.is_decoder=True)"
        )


def _encoder_types() -> frozenset[str]:
    """Model types that are bidirectional encoders first (masked LMs), yet also offer a causal-LM head class."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return frozenset(set(MODEL_FOR_MASKED_LM_MAPPING_NAMES) & set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES))


_ENCODERS = _encoder_types()


def vocab_size(model) -> int:
    """Width of the model's logits (the output embedding), which is what p and q range over."""
    head = model.get_output_embeddings()
    return int(head.weight.shape[0]) if head is not None else int(model.config.vocab_size)


def _text_config(model):
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def sliding_window(model) -> int | None:
    """The attention window of a sliding-window model (Mistral, Qwen2 with use_sliding_window, Gemma2), else None.

    Such a model attends only to the last W tokens in some or all layers, and transformers' cache for those
    layers keeps only W tokens, so a rejected draft could not be rolled back once older tokens have left
    it. The engine therefore keeps a full cache and refuses sequences longer than W (checks.check_context):
    within the window, sliding and full attention are the same computation.
    """
    cfg = _text_config(model)
    window = getattr(cfg, "sliding_window", None)
    if not isinstance(window, int) or window <= 0:
        return None
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types is not None:
        return window if any("sliding" in str(t) for t in layer_types) else None
    if getattr(cfg, "use_sliding_window", True) is False:
        return None
    return window


def max_context(model) -> int | None:
    """The longest sequence the model can decode here: its positions, or its sliding window if smaller; None if unset."""
    cfg = _text_config(model)
    limit = None
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            limit = value
            break
    window = sliding_window(model)
    if window is not None:
        limit = window if limit is None else min(limit, window)
    return limit


def check_same_vocabulary(target, drafter_model) -> None:
    """Target and drafter must score the same token ids."""
    v_target, v_drafter = vocab_size(target), vocab_size(drafter_model)
    if v_target != v_drafter:
        raise ValueError(
            f"drafter and target have different vocabularies ({v_drafter} vs {v_target} tokens); "
            "speculative decoding needs a drafter that shares the target's tokenizer"
        )


def check_same_tokenizer(target_tokenizer, drafter_tokenizer) -> None:
    """Two tokenizers agree when they map the same strings to the same ids and share special tokens."""
    va, vb = target_tokenizer.get_vocab(), drafter_tokenizer.get_vocab()
    if va != vb:
        only_a = len(va.keys() - vb.keys())
        only_b = len(vb.keys() - va.keys())
        moved = sum(1 for k in va.keys() & vb.keys() if va[k] != vb[k])
        raise ValueError(
            "drafter and target tokenizers differ "
            f"({only_a} tokens only in the target's, {only_b} only in the drafter's, {moved} with other ids); "
            "speculative decoding needs one shared tokenizer"
        )
    for attr in ("eos_token_id", "bos_token_id"):
        a, b = getattr(target_tokenizer, attr, None), getattr(drafter_tokenizer, attr, None)
        if a != b:
            raise ValueError(f"drafter and target tokenizers disagree on {attr} ({b} vs {a})")


def check_mask(attend: torch.Tensor, depth: torch.Tensor, n: int) -> None:
    """A general mask over n new tokens: (n, n) bool ``attend`` that lets each token see itself, (n,) ``depth`` >= 0."""
    if attend is None or depth is None:
        raise ValueError("a general mask needs both attend (T, T) and depth (T,)")
    if attend.dtype != torch.bool or tuple(attend.shape) != (n, n):
        raise ValueError(f"attend must be a ({n}, {n}) bool tensor, got {tuple(attend.shape)} {attend.dtype}")
    if not bool(attend.diagonal().all()):
        raise ValueError("attend must let every new token attend to itself (a True diagonal)")
    if depth.dim() != 1 or depth.shape[0] != n or depth.is_floating_point() or bool((depth < 0).any()):
        raise ValueError(f"depth must be ({n},) ints >= 0, got {depth.tolist()}")


def with_side_branch(parents: torch.Tensor, side_depth: torch.Tensor, side_attend: torch.Tensor):
    """A tree [root, n_1..n_N] (``parents``, root first) plus M side tokens fed after it, in ONE mask.

    Returns (N+1+M, N+1+M) ``attend`` and (N+1+M,) ``depth`` for :meth:`CachedLM.forward`:

        tree rows:  attend = ancestor_mask(parents), depth = depths(parents)       (as a plain tree forward)
        side row i: sees the root and side token j iff side_attend[i, j];  depth = side_depth[i]

    No tree token sees a side token and no side token sees a tree token other than the root,
    so the tree rows are exactly those of the tree alone; the side tokens come last, so
    ``rollback(M)`` drops them from the cache afterwards.
    """
    t, m = parents.shape[0], side_depth.shape[0]
    attend = torch.zeros(t + m, t + m, dtype=torch.bool, device=parents.device)
    attend[:t, :t] = ancestor_mask(parents)
    attend[t:, 0] = True  # the root
    attend[t:, t:] = side_attend.to(parents.device)
    depth = torch.cat([depths(parents), side_depth.to(device=parents.device, dtype=torch.long)])
    return attend, depth


def final_hidden(out) -> torch.Tensor:
    """(T, d) the last hidden states of one ``output_hidden_states=True`` call: what its output head read.

    transformers returns them as ``hidden_states[-1]``, which for a causal LM is the body's
    ``last_hidden_state``, after the final norm (``tie_last_hidden_states``); the head read its last
    rows (``logits_to_keep``). They belong to this call alone: transformers collects them in a list
    made for the call, behind a ContextVar, so a forward in another thread (another run on the same
    target) or through a module the target shares (the early-exit view's layers, the EAGLE and Medusa
    drafters' calls of its head) never adds to it. A forward pre-hook on the head, as before, saw
    every call of the head in the process, whichever run made it.
    """
    states = getattr(out, "hidden_states", None)
    if not states or states[-1] is None:
        raise TypeError("this model returned no hidden states with output_hidden_states=True; a drafter that reads "
                        "the target's hidden states (EAGLE, Medusa) needs a transformers causal LM that returns them")
    return states[-1][0]  # (T, d)


@dataclass
class Scored:
    """One verification forward's output rows (see :meth:`CachedLM.score`)."""

    logits: torch.Tensor  # (N+1, V) rows of the root and the N tree nodes
    hidden: torch.Tensor | None  # (N+1, d) their final hidden states, if asked for
    side_logits: torch.Tensor | None  # (M, V) rows of the side tokens, if there were any


class CachedLM:
    """A causal LM plus its KV cache: feed only new tokens, read their logits, roll back.

    The cache holds the keys and values of every token fed so far; nothing is
    ever recomputed. ``forward_count`` counts model calls (for the trace).
    """

    def __init__(self, model):
        check_causal_lm(model)
        self.model = model
        params = _forward_params(model)
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._has_logits_to_keep = "logits_to_keep" in params
        self.forward_count = 0
        self.reset()

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reset(self) -> None:
        """Forget everything: an empty cache (full attention in every layer, so rollback is always possible;
        a sliding-window model is limited to its window by checks.check_context)."""
        if sliding_window(self.model) is None:
            self.cache = DynamicCache(config=self.model.config)
        else:
            self.cache = DynamicCache()  # lazily built full layers: a sliding layer's cache could not be cropped

    @property
    def length(self) -> int:
        """Number of tokens whose keys and values the cache holds."""
        return self.cache.get_seq_length()

    @torch.inference_mode()
    def forward(self, new_ids: torch.Tensor, last_only: bool = False, parents: torch.Tensor | None = None,
                hidden: bool = False, attend: torch.Tensor | None = None, depth: torch.Tensor | None = None):
        """(T,) new token ids -> (T, V) logits (or (1, V) with last_only); the cache grows by T.

        ``attend`` (T, T) bool with ``depth`` (T,) feeds the new tokens under a general mask:
        token j sits at position length + depth[j] and attends to the whole cache and to new
        token i iff attend[j, i] (keys and values of all T tokens enter the cache regardless).
        ``parents`` (T,) feeds them as a token tree (see tree.py), the special case
        attend = ancestor_mask(parents), depth = depths(parents): each token sees the cache and its ancestors.
        ``hidden=True`` also returns the (T, d) hidden states the output head read
        (after the final norm), which self-drafting heads (Medusa) work from.
        """
        kwargs = {self._cache_kw: self.cache, "use_cache": True}
        if self._has_logits_to_keep:
            kwargs["logits_to_keep"] = 1 if last_only else 0
        if parents is not None:
            if attend is not None or depth is not None:
                raise ValueError("give either parents (a token tree) or attend + depth (a general mask), not both")
            check_parents(parents)
            attend, depth = ancestor_mask(parents), depths(parents)
        if attend is not None or depth is not None:
            check_mask(attend, depth, new_ids.shape[0])
            kwargs.update(self._masked_inputs(attend, depth))
        if hidden:  # this call's own outputs: nothing is registered on the (shared) head, see final_hidden
            if getattr(self.model.config, "tie_last_hidden_states", None) is False:
                raise TypeError(f"{type(self.model).__name__} sets config.tie_last_hidden_states=False, so its last "
                                "hidden state is not the one its output head reads; a drafter that reads hidden "
                                "states (EAGLE, Medusa) cannot use this target")
            kwargs["output_hidden_states"] = True
        out = self.model(input_ids=new_ids.unsqueeze(0), **kwargs)
        self.forward_count += 1
        logits = out.logits[0]  # (T, V)
        logits = logits[-1:] if last_only else logits
        if hidden:
            return logits, final_hidden(out)[-logits.shape[0]:]  # (T or 1, d)
        return logits

    def score(self, root: torch.Tensor, tokens: torch.Tensor, parents: torch.Tensor,
              side: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None, hidden: bool = False) -> Scored:
        """Step 2 of every speculative step: ONE forward over the root, a draft tree and (optionally) side tokens.

        ``root`` (1,) is the sequence's last token, ``tokens`` / ``parents`` (N,) the tree below it
        (parents[j] = −1: a child of the root; a chain is parents = −1, 0, 1, ..). Each node sees the
        cache, the root and its ancestors, at position length + its depth + 1. ``side`` = (tokens (M,),
        depth (M,), attend (M, M)) adds tokens that see only the cache, the root and each other
        (drafters/base.py's SideBranch); they leave the cache at once. Afterwards the cache holds the
        root and all N nodes; :meth:`keep` then keeps the accepted path.
        """
        feed = torch.cat([root, tokens])  # (N+1,)
        tree_parents = torch.cat([parents.new_full((1,), -1), torch.where(parents < 0, 0, parents + 1)])  # root first
        is_chain = bool((tree_parents == torch.arange(-1, feed.shape[0] - 1, device=parents.device)).all())
        if side is None:  # a chain needs no mask beyond the causal one
            out = self.forward(feed, parents=None if is_chain else tree_parents, hidden=hidden)
        else:
            attend, depth = with_side_branch(tree_parents, side[1], side[2])
            out = self.forward(torch.cat([feed, side[0]]), attend=attend, depth=depth, hidden=hidden)  # (N+1+M, V)
            self.rollback(side[0].shape[0])  # the side tokens came last; the tree's rows stay
        logits, states = out if hidden else (out, None)
        n = feed.shape[0]
        return Scored(logits[:n], None if states is None else states[:n], None if side is None else logits[n:])

    def _masked_inputs(self, attend: torch.Tensor, depth: torch.Tensor) -> dict:
        """Position ids and a 4-D additive attention mask: every new token sees the whole cache, then ``attend``."""
        past = self.length
        n = attend.shape[0]
        positions = past + depth.to(self.device)  # (T,)
        keep = torch.ones(n, past + n, dtype=torch.bool, device=self.device)  # (T, past + T)
        keep[:, past:] = attend.to(self.device)
        dtype = self.model.dtype
        mask = torch.zeros(n, past + n, dtype=dtype, device=self.device).masked_fill(~keep, torch.finfo(dtype).min)
        return {"position_ids": positions.unsqueeze(0), "attention_mask": mask[None, None]}

    @torch.inference_mode()
    def keep(self, start: int, indices: list[int]) -> None:
        """Keep the first ``start`` cached tokens plus those at ``indices`` (>= start, ascending); drop the rest.

        After a tree verification this leaves the prefix and the accepted path only: the path's
        keys and values move down to positions start, start + 1, .. and the tail is cropped, so
        the work is proportional to the tree, not to the context.
        """
        if any(i < start or i >= self.length for i in indices) or sorted(indices) != list(indices):
            raise ValueError(f"cannot keep cache positions {indices} after {start} in a cache of {self.length}")
        kept = start + len(indices)
        if list(indices) != list(range(start, kept)):
            index = torch.tensor(list(indices), dtype=torch.long, device=self.device)
            for layer in self.cache.layers:
                if type(layer).__name__ != "DynamicLayer":
                    raise TypeError(f"tree verification needs a full-attention KV cache, got {type(layer).__name__}")
                layer.keys[..., start:kept, :] = layer.keys.index_select(-2, index)
                layer.values[..., start:kept, :] = layer.values.index_select(-2, index)
        self.rollback(self.length - kept)

    def rollback(self, n_tokens: int) -> None:
        """Drop the last n_tokens from the cache (a rejected draft)."""
        if n_tokens < 0 or n_tokens > self.length:
            raise ValueError(f"cannot roll back {n_tokens} tokens from a cache of {self.length}")
        if n_tokens:
            self.cache.crop(-n_tokens)
