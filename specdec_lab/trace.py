"""The record of a run: one :class:`StepRecord` per decoding step, and the statistics over them.

Visualisations and notebooks read only this record; the decoding loop never
prints. A step of the autoregressive baseline is a step with an empty draft.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

BONUS, CORRECTED, PLAIN = "bonus", "corrected", "plain"  # where the target's own token came from


@dataclass
class StepRecord:
    """One draft-then-verify step."""

    context_len: int  # tokens before this step (prompt + output so far)
    draft: list[int]  # drafted token ids x_1..x_γ (empty for a plain target step)
    q_draft: list[float]  # q(x_i) (1.0 for a deterministic draft)
    p_draft: list[float]  # p(x_i)
    accept_prob: list[float]  # probability the verifier kept x_i with
    uniforms: list[float]  # the uniform draw u_i (nan where none was drawn)
    decisions: list[str]  # accepted / rejected / unchecked per drafted token
    n_accepted: int  # accepted prefix length
    emitted: list[int]  # tokens this step added to the output (after EOS / max_new_tokens cuts)
    next_token: int  # the target's own token (corrected after a rejection, or bonus)
    next_kind: str  # "corrected", "bonus", or "plain" when nothing was drafted
    draft_time_s: float  # wall time of the draft phase
    verify_time_s: float  # wall time of the target forward and the verdict
    top_at_stop: list[tuple[int, float, float]] = field(default_factory=list)
    # (token, p, q) for the most likely tokens under p or q at the position the
    # target's own token was drawn (first rejection, or the bonus position: q = 0 there)
    tree: dict | None = None  # tree-verified steps: every node's token, parent, decision; the accepted path


@dataclass
class Stats:
    """Summary of a run; every figure is counted from the steps, not assumed."""

    new_tokens: int
    steps: int
    drafted: int  # drafted tokens that reached the verifier
    accepted: int  # of which accepted
    acceptance_rate: float  # accepted / drafted (nan when nothing was drafted); vLLM's "draft acceptance rate"
    checked: int  # drafts the verifier decided on: the accepted ones and each step's first rejection
    alpha: float  # accepted / checked: the per-token acceptance probability α of Leviathan's formulas (nan if none)
    mean_tokens_per_step: float  # τ: emitted tokens per step, the target's own token included
    target_forwards: int  # target model calls, the prompt's prefill included
    drafter_forwards: int  # drafter model calls (0 for model-free drafters)
    wall_time_s: float
    draft_time_s: float
    verify_time_s: float

    @property
    def ms_per_token(self) -> float:
        return 1000.0 * self.wall_time_s / max(self.new_tokens, 1)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_time_s if self.wall_time_s > 0 else float("nan")


@dataclass
class GenerationOutput:
    """What generate_autoregressive and generate_speculative return."""

    prompt_ids: list[int]
    token_ids: list[int]  # the new tokens only
    steps: list[StepRecord]
    stats: Stats
    settings: dict  # the arguments of the run (gamma, temperature, ...), for display


def summarize(steps: list[StepRecord], wall_time_s: float, target_forwards: int, drafter_forwards: int) -> Stats:
    drafted = sum(len(s.draft) for s in steps)
    accepted = sum(s.n_accepted for s in steps)
    new_tokens = sum(len(s.emitted) for s in steps)
    checked = sum(d != "unchecked" for s in steps for d in s.decisions)
    return Stats(
        new_tokens=new_tokens,
        steps=len(steps),
        drafted=drafted,
        accepted=accepted,
        acceptance_rate=accepted / drafted if drafted else float("nan"),
        checked=checked,
        alpha=accepted / checked if checked else float("nan"),
        mean_tokens_per_step=new_tokens / len(steps) if steps else float("nan"),
        target_forwards=target_forwards,
        drafter_forwards=drafter_forwards,
        wall_time_s=wall_time_s,
        draft_time_s=sum(s.draft_time_s for s in steps),
        verify_time_s=sum(s.verify_time_s for s in steps),
    )


def top_at_stop(p_row: torch.Tensor, q_row: torch.Tensor | None, k: int = 8) -> list[tuple[int, float, float]]:
    """(token, p, q) for the union of the k most likely tokens under p and under q, by p then q."""
    if q_row is None:
        q_row = torch.zeros_like(p_row)
    k = min(k, p_row.shape[-1])
    ids = torch.cat([torch.topk(p_row, k).indices, torch.topk(q_row, k).indices]).unique()
    rows = torch.stack([ids.to(p_row.dtype), p_row[ids], q_row[ids]]).T.tolist()
    rows = [(int(t), p, q) for t, p, q in rows if p > 0 or q > 0]
    return sorted(rows, key=lambda r: (-r[1], -r[2]))
