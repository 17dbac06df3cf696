"""The independent drafter: a small causal LM of the same family (same tokenizer).

Leviathan et al. (2023), Chen et al. (2023): run the small model γ times
autoregressively, sampling x_i ~ q_i with the loop's own sampling rule.
Its KV cache survives across steps; at each propose it is cropped to the
longest prefix it shares with the new sequence, then fed what is missing
(usually the target's corrected or bonus token, plus the last draft when a
whole draft was accepted).

``stop_below`` ends a draft early when the drafter is unsure (transformers'
``assistant_confidence_threshold``; Mamou et al. 2024, "Dynamic Speculation
Lookahead"): after drafting x_i, stop if c_i = max_x softmax(ℓ_i)(x) < stop_below,
where ℓ_i are the drafter's raw logits for position i. x_i itself is still
proposed — transformers' ConfidenceCriteria is a stopping criterion, checked after
the token is appended — so every draft keeps at least one token and has 1..γ.
c_i is read before the sampling rule: at temperature 0 the q_i row is one-hot and
max q_i would always be 1. (transformers reads the processed scores at the sampled
token, which at greedy is the same number; when sampling it reads the tempered one.)
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..core.lm import CachedLM, check_causal_lm, check_same_tokenizer, vocab_size
from ..core.sampling import sample
from .base import Draft, Drafter, DraftTree, ToProbs, common_prefix_len
from ..core.validate import is_number


class ModelDrafter(Drafter):
    """Draft with a small causal LM that shares the target's vocabulary."""

    name: ClassVar[str] = "small-model"
    branches: ClassVar[bool] = True

    def __init__(self, model, tokenizer=None, target_tokenizer=None, name: str | None = None,
                 stop_below: float | None = None):
        check_causal_lm(model, role="drafter")
        if stop_below is not None:
            if not is_number(stop_below):
                raise TypeError(f"stop_below must be a number in (0, 1) or None, got {stop_below!r}")
            if not 0.0 < stop_below < 1.0:
                raise ValueError(f"stop_below must be in (0, 1) (or None: always draft γ tokens), got {stop_below}")
        self.stop_below = stop_below  # end the draft after a token whose confidence c_i is below this
        if name is not None:
            self.name = name  # e.g. "drafter-distilled" or "early-exit@2": what the trace and tables show
        if tokenizer is not None and target_tokenizer is not None:
            check_same_tokenizer(target_tokenizer, tokenizer)
        self.model = model
        self.vocab_size = vocab_size(model)
        self.lm = CachedLM(model)
        self.reset()

    def reset(self) -> None:
        """An empty KV cache: nothing of an earlier sequence is reused."""
        self.lm.reset()
        self.cached_ids = torch.empty(0, dtype=torch.long, device=self.model.device)  # tokens whose KV the cache holds

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
            if self.stop_below is not None and float(logits[0].float().softmax(-1).max()) < self.stop_below:
                break  # unsure: propose x_i but nothing after it
            feed = x_i.view(1)
        draft_tokens = torch.stack(tokens)  # (γ',) with γ' <= γ
        self.cached_ids = torch.cat([ids, draft_tokens[:-1]])  # the last draft was never fed
        return Draft(tokens=draft_tokens, q=torch.stack(qs))

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """A token tree: each node at depth d gets branching[d] children.

        When sampling, the children are i.i.d. draws x ~ q (repeats kept, each with its q row), as
        SpecInfer's multi-candidate sampling needs to stay lossless. When q is one-hot (greedy,
        top_k = 1) the children are the drafter's top tokens instead (q = None: deterministic
        children, which tree-speculative verification treats as one-hot draws, also lossless).
        Level d is scored by one forward over the tree built so far (tree attention, tree.py),
        then those tree tokens leave the cache again.
        """
        keep = min(common_prefix_len(self.cached_ids, ids), ids.shape[0] - 1)
        self.lm.rollback(self.lm.length - keep)
        frontier = [(-1, self.lm.forward(ids[keep:], last_only=True)[0])]  # (node, its (V,) logits)
        self.cached_ids = ids
        sampled = bool(to_probs(frontier[0][1][None], 0).max() < 1.0)
        tokens: list[int] = []
        parents: list[int] = []
        qs: list[torch.Tensor] = []
        for depth, width in enumerate(branching):
            level = []
            for node, logits in frontier:
                if sampled:
                    q = to_probs(logits[None], depth)[0]  # (V,)
                    children = torch.multinomial(q, width, replacement=True, generator=generator).tolist()
                    qs.extend([q] * width)
                else:
                    children = logits.topk(min(width, logits.shape[-1])).indices.tolist()
                for token in children:
                    tokens.append(token)
                    parents.append(node)
                    level.append(len(tokens) - 1)
            if depth + 1 == len(branching):
                break
            tree_logits = self.lm.forward(torch.tensor(tokens, device=ids.device), parents=torch.tensor(parents, device=ids.device))
            self.lm.rollback(len(tokens))
            frontier = [(j, tree_logits[j]) for j in level]
        return DraftTree(torch.tensor(tokens, dtype=torch.long, device=ids.device),
                         torch.tensor(parents, dtype=torch.long, device=ids.device), torch.stack(qs) if sampled else None)
