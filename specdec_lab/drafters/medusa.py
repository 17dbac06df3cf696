"""Medusa heads (self-drafting): extra heads on the target's last hidden state guess several tokens at once.

Cai et al., "Medusa" (2024). After each verification the loop hands the drafter (``observe``)
h, the target's final hidden state at the last token the target consumed (the
one whose output head gave the target's own token y). Head k reads h and
predicts the token k positions after y:

    q_k = to_probs(W_out · f_k(h))          k = 1..K   (f_k: the head's block, heads.py)

Linear drafts take x_k ~ q_k (the draft is at most K long); trees take each head's
top-b_k tokens at depth k, for every branch alike (the heads do not see the path).
The heads never run the target: drafting costs K small matrix products.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from ..core.sampling import sample
from .draft_vocab import DraftVocabHead
from .medusa_heads import MedusaHeads
from .base import Draft, Drafter, DraftTree, ToProbs


class MedusaDrafter(Drafter):
    """Draft from Medusa heads trained on this target; reads the target's hidden states (``reads_hidden``)."""

    name: ClassVar[str] = "medusa"
    branches: ClassVar[bool] = True
    reads_hidden: ClassVar[bool] = True
    may_abstain: ClassVar[bool] = True  # before the target has produced a hidden state (a 1-token prompt)

    def __init__(self, target, heads: MedusaHeads, draft_vocab: torch.Tensor | None = None):
        """``draft_vocab``: token ids the heads may draft (draft_vocab.py); None: the whole vocabulary."""
        head = target.get_output_embeddings()
        if head is None:
            raise TypeError(f"Medusa heads need the target's output head; {type(target).__name__} has none")
        width = heads.blocks[0].in_features
        if width != head.weight.shape[1]:
            raise ValueError(f"Medusa heads were trained for hidden size {width}, but this target's is {head.weight.shape[1]}")
        self.heads = heads.to(device=head.weight.device, dtype=head.weight.dtype).eval()
        self.output_head = head if draft_vocab is None else DraftVocabHead(head, draft_vocab)
        self.vocab_size = int(head.weight.shape[0])
        self.hidden: torch.Tensor | None = None  # (d,) the target's state at the last consumed token

    @classmethod
    def from_folder(cls, target, folder: str | Path, draft_vocab: torch.Tensor | None = None) -> "MedusaDrafter":
        return cls(target, MedusaHeads.load(Path(folder)), draft_vocab)

    @property
    def n_heads(self) -> int:
        return len(self.heads.blocks)

    def reset(self) -> None:
        """No hidden state: the heads wait for the new sequence's prefill."""
        self.hidden = None

    def observe(self, verdict, hidden: torch.Tensor | None = None) -> None:
        """(k, d) states of the tokens the target just consumed that stay; the heads read the last one."""
        if hidden is not None and hidden.shape[0] > 0:
            self.hidden = hidden[-1]

    @torch.inference_mode()
    def head_logits(self, depth: int) -> torch.Tensor:
        """(depth, V) logits of heads 1..depth at the current hidden state."""
        features = self.heads(self.hidden)[:depth]  # (depth, d)
        return self.output_head(features)

    def propose(self, ids: torch.Tensor, gamma: int, to_probs: ToProbs, generator: torch.Generator | None) -> Draft:
        if self.hidden is None:
            return Draft(tokens=ids.new_empty(0))
        depth = min(gamma, self.n_heads)
        q = to_probs(self.head_logits(depth), 0)  # (depth, V): row i is the distribution of draft position i
        return Draft(tokens=sample(q, generator), q=q)

    def propose_tree(self, ids: torch.Tensor, branching: tuple[int, ...], to_probs: ToProbs,
                     generator: torch.Generator | None) -> DraftTree:
        """Every node at depth k gets head k's top-b_k tokens as children (deterministic, q = None)."""
        if self.hidden is None:
            return DraftTree(tokens=ids.new_empty(0), parents=ids.new_empty(0))
        branching = branching[: self.n_heads]
        logits = self.head_logits(len(branching))  # (depth, V)
        tokens, parents, level = [], [], [-1]
        for k, width in enumerate(branching):
            top = logits[k].topk(width).indices.tolist()
            next_level = []
            for parent in level:
                for token in top:
                    parents.append(parent)
                    tokens.append(token)
                    next_level.append(len(tokens) - 1)
            level = next_level
        return DraftTree(torch.tensor(tokens, device=ids.device), torch.tensor(parents, device=ids.device))
