"""The record of a run: one :class:`StepRecord` per decoding step, and the statistics over them.

Visualisations and notebooks read only this record; the decoding loop never
prints. A step of the autoregressive baseline is a step with an empty draft.

One name and one definition per quantity, in every view (text, HTML, player) and in notebooks/GLOSSARY.md:

    α            accepted ÷ checked drafts (checked: the accepted ones and each step's first rejection); the
                 per-token acceptance probability of Leviathan's formulas, bench/metrics.py's α
    draft yield  accepted ÷ drafted (drafts left unchecked after a rejection count as not kept; vLLM's
                 "draft acceptance rate"), so draft yield <= α
    τ            new tokens ÷ steps, the target's own token included; the prefill is not a step
    target forwards = prefill + steps: each step is ONE target forward (a side branch, lookahead's, rides inside
                 it); the speculative loop's prefill reads the prompt but its last token and draws nothing (1
                 forward; 0 for a one-token prompt); the autoregressive baseline has no separate prefill (its
                 first step reads the whole prompt and draws the first token)
    c            the cost of one drafted token in target forwards (bench/costmodel.py's c), timed here as
                 drafting seconds per drafted token ÷ seconds per verification forward; a drafter with no model
                 of its own (a lookup, heads on the target's hidden states) makes 0 drafter forwards but still costs c
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from .sampling import one_hot

BONUS, CORRECTED, PLAIN = "bonus", "corrected", "plain"  # where the target's own token came from
ALPHA = "α (accepted ÷ checked)"  # the one label of each quantity, in every view
DRAFT_YIELD = "draft yield (accepted ÷ drafted)"
TAU = "τ (new tokens ÷ steps)"


def two_decimals(x: float) -> str:
    """A figure as the views print it: two decimals, or n/a for nan (nothing drafted or checked)."""
    return "n/a" if math.isnan(x) else f"{x:.2f}"


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
    draft_yield: float  # accepted / drafted (nan when nothing was drafted); vLLM's "draft acceptance rate"
    checked: int  # drafts the verifier decided on: the accepted ones and each step's first rejection
    alpha: float  # accepted / checked: the per-token acceptance probability α of Leviathan's formulas (nan if none)
    mean_tokens_per_step: float  # τ: emitted tokens per step, the target's own token included (the prefill is no step)
    target_forwards: int  # target model calls: the prompt's prefill (prefill_forwards) + one per step
    drafter_forwards: int  # calls of the drafter's own model (0 without one: lookups, heads on the target; see c)
    wall_time_s: float
    draft_time_s: float
    verify_time_s: float
    # the first output position where the tokens differ from a reference (the target's own greedy output,
    # passed as reference=...); None when they agree over their common length or no reference was given
    diverged_at: int | None = None
    reference_given: bool = False  # whether diverged_at was measured at all

    @property
    def acceptance_rate(self) -> float:
        """The old name of :attr:`draft_yield` (accepted ÷ drafted), kept while notebooks move to it.

        Not α (:attr:`alpha`, accepted ÷ checked), which papers also call the acceptance rate."""
        return self.draft_yield

    @property
    def prefill_forwards(self) -> int:
        """Target forwards that drew no token: the prompt's prefill. Each step is exactly one target forward (the
        loop's Step 2), so every other forward is prefill: 1 in a speculative run, 0 in the autoregressive
        baseline (its first step reads the prompt) and for a one-token prompt."""
        return self.target_forwards - self.steps

    @property
    def draft_cost(self) -> float:
        """c measured in this run: drafting seconds per drafted token ÷ seconds per verification forward (one target
        forward over γ' + 1 tokens, so a little low where v > 1; the benchmark's c divides by the autoregressive
        baseline's one-token forward instead). A timing: noisy on a busy machine. nan when nothing was drafted."""
        if not self.drafted or self.verify_time_s <= 0:
            return float("nan")
        return (self.draft_time_s / self.drafted) / (self.verify_time_s / self.steps)

    def forwards_text(self) -> str:
        """'12 target forwards = 1 prefill + 11 steps' (the baseline: '40 target forwards = 40 steps, ...')."""
        if self.prefill_forwards == 0:
            return (f"{self.target_forwards} target forwards = {self.steps} steps "
                    "(no separate prefill: the first step reads the prompt)")
        return f"{self.target_forwards} target forwards = {self.prefill_forwards} prefill + {self.steps} steps"

    def drafting_text(self) -> str:
        """What drafting did and cost, in the cost model's unit: c target forwards per drafted token.

        'drafting: 40 tokens at c = 0.12 target forwards each (timed); 44 drafter forwards', or for a drafter
        without a model of its own '...; 0 drafter forwards (no drafter model: a lookup, or heads on the target's
        hidden states)': its work shows in c, not in a forward count."""
        if not self.drafted:
            return "nothing drafted"
        cost = f"drafting: {self.drafted} tokens at c = {two_decimals(self.draft_cost)} target forwards each (timed)"
        if self.drafter_forwards:
            return f"{cost}; {self.drafter_forwards} drafter forwards"
        return f"{cost}; 0 drafter forwards (no drafter model: a lookup, or heads on the target's hidden states)"

    def summary_parts(self) -> list[str]:
        """The run's figures under their one name each (see the module docstring); every view joins these."""
        return [f"{self.new_tokens} new tokens in {self.steps} steps", f"{ALPHA} = {two_decimals(self.alpha)}",
                f"{DRAFT_YIELD} = {two_decimals(self.draft_yield)}",
                f"{TAU} = {two_decimals(self.mean_tokens_per_step)}", self.forwards_text(), self.drafting_text(),
                f"{self.ms_per_token:.1f} ms/token"]

    def summary(self, sep: str = " · ") -> str:
        """One line: tokens and steps, α, draft yield, τ, forwards = prefill + steps, drafting and c, ms/token."""
        return sep.join(self.summary_parts())

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
        draft_yield=accepted / drafted if drafted else float("nan"),
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
