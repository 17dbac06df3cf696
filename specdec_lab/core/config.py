"""The settings of one decoding run, validated once (checks.py) and then passed through both loops unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .sampling import SamplingConfig, check_finite_logits, probs_from_logits

MAX_GAMMA = 64  # the longest draft any loop or widget accepts: past it a draft is always slower than decoding alone


@dataclass(frozen=True)
class DecodeConfig:
    """One run's settings; build it with :func:`specdec_lab.core.checks.decode_config`, which validates every field."""

    gamma: int  # γ: the most tokens drafted per step (a tree: its depth); 0 for the autoregressive baseline
    max_new_tokens: int  # stop after this many new tokens
    min_new_tokens: int  # EOS is impossible before this many new tokens (transformers' MinNewTokensLength)
    temperature: float  # 0 = greedy (p one-hot on the argmax); > 0 divides the logits
    top_k: int | None  # keep the k most likely tokens (None: all)
    top_p: float | None  # nucleus: the smallest set with mass >= top_p (None: all)
    seed: int  # seeds the run's one torch.Generator; the same seed gives the same trace
    eos_ids: tuple[int, ...]  # token ids that end the output (empty: none)

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)

    def probs(self, logits: torch.Tensor, new_index: int | torch.Tensor, who: str = "target") -> torch.Tensor:
        """(T, V) logits whose rows predict new tokens new_index, new_index + 1, .. -> (T, V) distributions.

        ``new_index`` may instead be a (T,) tensor with each row's new-token index (tree rows). While fewer
        than min_new_tokens tokens exist, EOS gets probability 0 (its logit is set to −inf before temperature,
        top-k and top-p, as transformers' MinNewTokensLengthLogitsProcessor does). Target and drafter both use this
        rule, so p and q are built the same way. A row where the mask leaves no token (every token the model gives a
        finite logit is an EOS id) is an error at every temperature: greedy never emits the masked EOS.
        """
        check_finite_logits(logits, who)
        if isinstance(new_index, int):
            if new_index >= self.min_new_tokens:  # the common case: no EOS mask
                return probs_from_logits(logits, self.sampling)
            new_index = new_index + torch.arange(logits.shape[0])
        masked = (new_index < self.min_new_tokens).to(logits.device)  # (T,)
        if bool(masked.any()) and self.eos_ids:
            logits = logits.clone()
            logits[masked.nonzero()[:, 0].unsqueeze(1), torch.tensor(self.eos_ids, device=logits.device)] = float("-inf")
            nothing_left = torch.isneginf(logits).all(dim=-1)  # (T,)
            if bool(nothing_left.any()):
                row = int(nothing_left.nonzero()[0, 0])
                shown = ", ".join(map(str, self.eos_ids[:5])) + (", ..." if len(self.eos_ids) > 5 else "")
                raise ValueError(
                    f"min_new_tokens={self.min_new_tokens} forbids EOS at new token {int(new_index[row])}, but every "
                    f"token the {who} can produce there is an EOS id ({len(self.eos_ids)} EOS ids: {shown}): no token "
                    "is left to emit; lower min_new_tokens or pass fewer eos_token_id"
                )
        return probs_from_logits(logits, self.sampling)

    def settings(self) -> dict:
        """The user-facing arguments, for the output's ``settings`` (display and reproduction)."""
        return dict(gamma=self.gamma, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                    top_k=self.top_k, top_p=self.top_p, seed=self.seed)
