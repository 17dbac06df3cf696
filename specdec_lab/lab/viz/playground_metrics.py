"""The numbers the playground shows for a speculative run and its autoregressive baseline (pure: no model, no widget).

From the two runs' recorded counts and times:

    measured speedup   S = (baseline ms/token) / (speculative ms/token)
    predicted speedup  Ŝ = (1 − α^(γ+1)) / ((1 − α)(γc + 1))        (Leviathan et al. 2023, Thm 3.8)
    … with measured v  Ŝ_v = (1 − α^(γ+1)) / ((1 − α)(γc + v))

with α = accepted ÷ checked drafts (Stats.alpha; the acceptance rate, accepted ÷ drafted, is kept beside it), τ the
mean tokens per step, and c, v the measured costs of one drafted position and of one verification forward over γ + 1
tokens, in baseline forwards (baseline seconds per token):

    c = (draft seconds per step / γ) / baseline seconds per token
    v = (verify seconds per step) / baseline seconds per token

The definitions are :mod:`specdec_lab.bench.metrics`'s, shared with the benchmark and ``compare``. The speculative
run's wall time leaves out ``view_s``, the time the widget spent drawing its streamed steps (the baseline draws none):

    speculative seconds = recorded wall time − view_s
"""

from __future__ import annotations

from dataclasses import dataclass

from ...bench.metrics import measured_costs, predictions
from ...core.trace import GenerationOutput
from .playground_settings import Settings


@dataclass(frozen=True)
class PlaygroundRun:
    """One point of the chart: the settings and what they measured."""

    settings: Settings
    alpha: float  # α = accepted / checked drafts, the formula's per-token probability (nan if none was checked)
    acceptance_rate: float  # accepted / drafted (unchecked drafts after a rejection count as not accepted)
    tau: float  # mean tokens per step, the target's own token included
    ms_per_token: float
    baseline_ms_per_token: float
    cost_ratio: float  # c: one drafted position / one target forward
    verify_cost: float  # v: one verification forward over γ+1 tokens / one target forward over 1 token
    measured_speedup: float
    predicted_speedup: float  # the theorem at (α, γ, c), v = 1; nan without α
    predicted_speedup_v: float  # the same with the measured v
    view_s: float = 0.0  # seconds spent drawing the streamed steps, left out of ms_per_token


def summarize_run(settings: Settings, run: GenerationOutput, baseline: GenerationOutput, view_s: float = 0.0) -> PlaygroundRun:
    """The playground's metrics for a speculative ``run`` at ``settings`` and its ``baseline`` (see the module docstring)."""
    base_s = baseline.stats.wall_time_s / max(baseline.stats.new_tokens, 1)
    s = run.stats
    ms_per_token = 1000.0 * max(s.wall_time_s - view_s, 0.0) / max(s.new_tokens, 1)
    c, v = measured_costs(s.draft_time_s, s.verify_time_s, s.steps, settings.gamma, base_s)
    predicted, predicted_v = predictions(s.alpha, settings.gamma, c, v)
    return PlaygroundRun(
        settings=settings, alpha=s.alpha, acceptance_rate=s.acceptance_rate, tau=s.mean_tokens_per_step, ms_per_token=ms_per_token,
        baseline_ms_per_token=baseline.stats.ms_per_token, cost_ratio=c, verify_cost=v,
        measured_speedup=baseline.stats.ms_per_token / ms_per_token if ms_per_token > 0 else float("nan"),
        predicted_speedup=predicted, predicted_speedup_v=predicted_v, view_s=view_s,
    )
