"""The independent drafter: a small causal LM of the same family (same tokenizer).

Leviathan et al. (2023), Chen et al. (2023): run the small model γ times
autoregressively, sampling x_i ~ q_i with the loop's own sampling rule.
Its KV cache survives across steps; at each propose it is cropped to the
longest prefix it shares with the new sequence, then fed what is missing
(usually the target's corrected or bonus token, plus the last draft when a
whole draft was accepted).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..models import CachedLM, check_causal_lm, check_same_tokenizer, vocab_size
from ..sampling import sample
from .base import Draft, ToProbs, common_prefix_len


class ModelDrafter:
    """Draft with a small causal LM that shares the target's vocabulary."""

    name: ClassVar[str] = "small-model"
    may_abstain: ClassVar[bool] = False

    def __init__(self, model, tokenizer=None, target_tokenizer=None, name: str | None = None):
        check_causal_lm(model, role="drafter")
        if name is not None:
            self.name = name  # e.g. "drafter-distilled" or "early-exit@2": what the trace and tables show
        if tokenizer is not None and target_tokenizer is not None:
            check_same_tokenizer(target_tokenizer, tokenizer)
        self.model = model
        self.vocab_size = vocab_size(model)
        self.lm = CachedLM(model)
        self.cached_ids = torch.empty(0, dtype=torch.long, device=model.device)  # tokens whose KV the cache holds

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        # Keep the cache for the shared prefix; always refeed >= 1 token to get fresh logits.
        keep = min(common_prefix_len(self.cached_ids, ids), ids.shape[0] - 1)
        self.lm.rollback(self.lm.length - keep)
        feed = ids[keep:]  # (T,)
        tokens, qs = [], []
        for i in range(gamma):
            logits = self.lm.forward(feed, last_only=True)  # (1, V)
            q_i = to_probs(logits, i)[0]  # (V,)
            x_i = sample(q_i, generator)  # ()
            tokens.append(x_i)
            qs.append(q_i)
            feed = x_i.view(1)
        draft_tokens = torch.stack(tokens)  # (γ,)
        self.cached_ids = torch.cat([ids, draft_tokens[:-1]])  # the last draft was never fed
        return Draft(tokens=draft_tokens, q=torch.stack(qs))

    def observe(self, n_accepted: int, n_drafted: int) -> None:
        """Nothing to adapt: the cache is reconciled at the next propose."""
