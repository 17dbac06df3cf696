"""The record of a run: one :class:`StepRecord` per decoding step, and the statistics over them.

Visualisations and notebooks read only this record; the decoding loop never
prints. A step of the autoregressive baseline is a step with an empty draft.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .sampling import one_hot

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
    # with keep_rows=True (linear steps only): the full rows the verifier saw, float32 on the CPU,
    # {"p": (γ+1, V), "q": (γ, V) or None for a deterministic draft}; what specdec_lab.lab.replay replays
    rows: dict | None = None


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
    # the first output position where the tokens differ from a reference (the target's own greedy output,
    # passed as reference=...); None when they agree over their common length or no reference was given
    diverged_at: int | None = None
    reference_given: bool = False  # whether diverged_at was measured at all

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


def first_divergence(tokens: list[int], reference: list[int]) -> int | None:
    """The first index where two token lists differ (over their common length), or None."""
    for i, (a, b) in enumerate(zip(tokens, reference)):
        if a != b:
            return i
    return None


class Recorder:
    """Collects one :class:`StepRecord` per step; the loop hands it what happened, it writes the record.

    ``lap()`` marks the end of a phase (drafting, verifying) and returns its seconds.
    """

    def __init__(self, device: torch.device, keep_rows: bool = False):
        self.steps: list[StepRecord] = []
        self.device = device
        self.keep_rows = keep_rows  # keep each linear step's full p and q rows (V floats per row: opt in)
        self.start = self._last = self._now()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def lap(self) -> float:
        now = self._now()
        seconds, self._last = now - self._last, now
        return seconds

    def record(self, context_len: int, tree, verdict, p: torch.Tensor, emitted: list[int], draft_s: float,
               verify_s: float) -> None:
        """A speculative step: the drafted tree, the verifier's verdict on it and the rows p it used."""
        n, shown = verdict.n_accepted, verdict.shown
        q_stop = None  # q at the position the target's own token was drawn (none after a full acceptance)
        if n < len(shown):
            stop_node = shown[n]
            q_stop = tree.q[stop_node] if tree.q is not None else one_hot(tree.tokens[stop_node], p.shape[-1])
        last_row = verdict.path[-1] + 1 if verdict.path else 0
        self.steps.append(StepRecord(
            context_len=context_len, draft=tree.tokens[shown].tolist(), q_draft=verdict.q_draft, p_draft=verdict.p_draft,
            accept_prob=verdict.accept_prob, uniforms=verdict.uniforms, decisions=verdict.decisions,
            n_accepted=n, emitted=emitted, next_token=verdict.tokens[-1],
            next_kind=PLAIN if len(tree) == 0 else (BONUS if verdict.bonus else CORRECTED),
            draft_time_s=draft_s, verify_time_s=verify_s, top_at_stop=top_at_stop(p[last_row], q_stop),
            tree=None if verdict.node_decisions is None else {
                "tokens": tree.tokens.tolist(), "parents": tree.parents.tolist(), "decisions": verdict.node_decisions,
                "accept_prob": verdict.node_accept_prob, "path": verdict.path},
            rows=self._rows(tree, verdict, p),
        ))

    def _rows(self, tree, verdict, p: torch.Tensor) -> dict | None:
        if not self.keep_rows or verdict.node_decisions is not None or len(tree) == 0:
            return None
        return {"p": p.detach().float().cpu(), "q": None if tree.q is None else tree.q.detach().float().cpu()}

    def record_plain(self, context_len: int, token: int, seconds: float) -> None:
        """An autoregressive step: no draft, one token of the target's own."""
        self.steps.append(StepRecord(
            context_len=context_len, draft=[], q_draft=[], p_draft=[], accept_prob=[], uniforms=[], decisions=[],
            n_accepted=0, emitted=[token], next_token=token, next_kind=PLAIN, draft_time_s=0.0, verify_time_s=seconds))

    def stats(self, target_forwards: int, drafter_forwards: int, tokens: list[int], reference=None) -> Stats:
        stats = summarize(self.steps, self._now() - self.start, target_forwards, drafter_forwards)
        if reference is not None:
            stats.reference_given = True
            stats.diverged_at = first_divergence(tokens, [int(t) for t in reference])
        return stats


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
