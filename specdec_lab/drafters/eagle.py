"""EAGLE (self-drafting): extrapolate the target's features one token at a time, read them out with its head.

Li et al., "EAGLE" (2024). The loop hands the drafter the target's final hidden state f_t
of every token t it consumed that stays in the sequence (``observe``). With the
sequence x_0..x_n (x_n = y, the target's own token, not consumed yet), so f_0..f_{n−1} known:

    Step 1. Catch up: rows (f_t, e(x_{t+1})) for every t not fed yet, up to t = n − 1;
            the last row gives f̂_n, the head's guess of the feature the target will have at y.
    Step 2. Draft:    x̂_{n+1} ~ q_1 = to_probs(W_out f̂_n);
            then the row (f̂_n, e(x̂_{n+1})) gives f̂_{n+1}, x̂_{n+2} ~ q_2, and so on, γ times.

The head (drafters/eagle_head.py) keeps its own KV cache, row t at rotary position t. Rows built from
TRUE features stay valid for as long as their tokens stay in the sequence, which is forever:
the loop only ever appends verified tokens. Rows built from the head's OWN guesses f̂ are
dropped at the next propose (the features the target really had replace them), so Step 1
crops the cache back to the true rows and feeds the new true ones.
Trees (``propose_tree``): every node at depth k gets the top-b_k tokens of ITS OWN q as
children (unlike Medusa, each branch has its own feature), one head forward per level.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from ..core.sampling import sample
from ..core.tree import path_to
from .draft_vocab import DraftVocabHead
from .eagle_head import EagleHead
from .base import Draft, Drafter, DraftTree, ToProbs, common_prefix_len


class EagleDrafter(Drafter):
    """Draft with an EAGLE head trained on this target; reads the target's hidden states (``reads_hidden``)."""

    name: ClassVar[str] = "eagle"
    branches: ClassVar[bool] = True
    reads_hidden: ClassVar[bool] = True
    may_abstain: ClassVar[bool] = True  # before the target has produced a hidden state (a 1-token prompt)

    def __init__(self, target, head: EagleHead, draft_vocab: torch.Tensor | None = None):
        """``draft_vocab``: token ids the head may draft (draft_vocab.py); None: the whole vocabulary."""
        out_head, embed = target.get_output_embeddings(), target.get_input_embeddings()
        if out_head is None or embed is None:
            raise TypeError(f"an EAGLE head needs the target's embedding and output head; {type(target).__name__} lacks one")
        width = int(out_head.weight.shape[1])
        if head.hidden != width:
            raise ValueError(f"the EAGLE head was trained for hidden size {head.hidden}, but this target's is {width}")
        self.head = head.to(device=out_head.weight.device, dtype=out_head.weight.dtype).eval()
        self.vocab_size = int(out_head.weight.shape[0])
        self.output_head = out_head if draft_vocab is None else DraftVocabHead(out_head, draft_vocab)
        self.embed = embed
        self.reset()

    @classmethod
    def from_folder(cls, target, folder: str | Path, draft_vocab: torch.Tensor | None = None) -> "EagleDrafter":
        return cls(target, EagleHead.load(Path(folder)), draft_vocab)

    def reset(self) -> None:
        """Forget the sequence: no features, an empty head cache."""
        w = self.output_head.weight
        self.features = w.new_empty(0, w.shape[1])  # (n, d) the target's f_t for t = 0..n−1
        self.cache = self.head.new_cache()
        self.n_true = 0  # leading cache rows built from true features (the rest are the last draft's)
        self.cache_ids = torch.empty(0, dtype=torch.long, device=w.device)  # the tokens those rows read

    # -- what the loop tells the drafter -------------------------------------------------------
    def observe(self, verdict, hidden: torch.Tensor | None = None) -> None:
        """(k, d) target features of the tokens the target just consumed that stay in the sequence.

        ``verdict`` None is the prompt's prefill: a new sequence starts.
        """
        if verdict is None:
            self.reset()
        if hidden is not None:
            self.features = torch.cat([self.features, hidden.to(self.features.dtype)])

    # -- drafting ------------------------------------------------------------------------------
    def _feed(self, features: torch.Tensor, tokens: torch.Tensor, positions=None, visible=None) -> torch.Tensor:
        """(T, d) features and the (T,) tokens after them -> (T, d) predicted next features; the cache grows by T."""
        e = self.embed(tokens)  # (T, d)
        return self.head(features[None], e[None], self.cache, positions, visible)[0]  # (T, d)

    def _crop(self, length: int) -> None:
        extra = self.cache.get_seq_length() - length
        if extra > 0:
            self.cache.crop(-extra)

    def _catch_up(self, ids: torch.Tensor) -> torch.Tensor | None:
        """Step 1: true rows up to t = n − 1; returns f̂_n (d,), or None if no feature is known yet."""
        n = ids.shape[0] - 1  # tokens the target has consumed
        if n == 0:  # a 1-token prompt: nothing consumed yet (and whatever was held belongs to another sequence)
            self.reset()
            return None
        if self.features.shape[0] != n:
            raise ValueError(
                f"the EAGLE drafter holds target features for {self.features.shape[0]} tokens but the sequence has "
                f"{n} consumed tokens; it must be driven by generate_speculative, which hands it the target's hidden states through observe"
            )
        # keep the true rows whose tokens are unchanged; always refeed >= 1 row for a fresh f̂_n
        keep = min(self.n_true, common_prefix_len(self.cache_ids, ids) - 1, n - 1)
        keep = max(keep, 0)
        self._crop(keep)
        f_hat = self._feed(self.features[keep:n], ids[keep + 1 : n + 1])  # (n − keep, d)
        self.n_true, self.cache_ids = n, ids
        return f_hat[-1]

    @torch.inference_mode()
    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        f_hat = self._catch_up(ids)  # (d,) f̂_n
        if f_hat is None:
            return Draft(tokens=ids.new_empty(0))
        tokens, qs = [], []
        for i in range(gamma):  # Step 2
            q_i = to_probs(self.output_head(f_hat)[None], i)[0]  # (V,)
            x_i = sample(q_i, generator)  # ()
            tokens.append(x_i)
            qs.append(q_i)
            if i + 1 < gamma:  # the last draft is never fed
                f_hat = self._feed(f_hat[None], x_i.view(1))[0]  # (d,) a guessed row, cropped at the next propose
        return Draft(tokens=torch.stack(tokens), q=torch.stack(qs))

    @torch.inference_mode()
    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """Each node at depth k gets the top-branching[k] tokens of its own q (deterministic, q = None).

        A node's row (f̂ of its parent, e(its token)) sits at position n + depth and attends to
        the true rows and its own ancestors' rows only (tree attention, as in tree.py).
        """
        f_hat = self._catch_up(ids)
        if f_hat is None:
            return DraftTree(tokens=ids.new_empty(0), parents=ids.new_empty(0))
        n = self.n_true
        frontier = [(-1, f_hat)]  # (node, the feature its children are read from)
        tokens: list[int] = []
        parents: list[int] = []
        row_of: dict[int, int] = {}  # node -> its row among the tree rows fed so far
        for depth, width in enumerate(branching):
            level = []
            for node, feature in frontier:
                logits = self.output_head(feature)  # (V,)
                for token in logits.topk(min(width, logits.shape[-1])).indices.tolist():
                    tokens.append(token)
                    parents.append(node)
                    level.append((len(tokens) - 1, feature))
            if depth + 1 == len(branching):
                break
            fed = len(row_of)
            visible = torch.zeros(len(level), n + fed + len(level), dtype=torch.bool, device=ids.device)
            visible[:, :n] = True  # every true row
            parent_tensor = torch.tensor(parents)
            for r, (node, _) in enumerate(level):
                for ancestor in path_to(parent_tensor, parents[node]):  # the rows of its ancestors
                    visible[r, n + row_of[ancestor]] = True
                visible[r, n + fed + r] = True  # and itself
                row_of[node] = fed + r
            level_tokens = torch.tensor([tokens[node] for node, _ in level], device=ids.device)  # (L,)
            positions = torch.full((len(level),), n + depth, device=ids.device)  # the whole level sits at one depth
            out = self._feed(torch.stack([f for _, f in level]), level_tokens, positions, visible)  # (L, d)
            frontier = [(node, out[r]) for r, (node, _) in enumerate(level)]
        return DraftTree(torch.tensor(tokens, dtype=torch.long, device=ids.device),
                         torch.tensor(parents, dtype=torch.long, device=ids.device))
