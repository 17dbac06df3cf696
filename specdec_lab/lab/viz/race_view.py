"""The race as static HTML: two lanes that replay the recorded timings of one prompt decoded two ways (pure).

Each lane holds one step per recorded step, shown at the second it was produced (``at``, from the run's start): the
autoregressive lane gains one token per step, the speculative lane a burst per step, coloured by verdict with the
token view's styles (:mod:`.html`: green accepted, yellow drafted and never checked, red rejected, blue the target's
own). Above each lane a meter shows, from step i until step i + 1,

    tokens/s at step i = (tokens out by step i) / (its time at),

and when both lanes are done the speedup, the ratio of the two lanes' final tokens/s, appears below them:

    speedup = (speculative tokens / speculative seconds) / (autoregressive tokens / autoregressive seconds)

The animation is CSS only (no script), so it plays wherever the page's style does (JupyterLab, nbviewer, a saved
page). Every timed element is shown by an animation delayed to its time; a checkbox labelled "replay" switches the
animation's name, which restarts it. Where styles are stripped (GitHub), the final state shows: every token, the
final meters and the speedup; the intermediate meter readings carry ``hidden``.
"""

from __future__ import annotations

import html
import itertools
from dataclasses import dataclass

from ...core.trace import StepRecord
from .html import STYLE, legend_html, step_html

_UIDS = itertools.count()

RACE_STYLE = """
<style>
.sdl-race{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;margin:6px 0}
.sdl-race-lanes{display:flex;gap:10px;align-items:flex-start}
.sdl-race-lane{flex:1 1 0;min-width:0;border:1px solid #ddd;border-radius:4px;padding:4px 8px}
.sdl-race-title{font-weight:bold;margin-bottom:2px}
.sdl-race-meter{color:#333;height:1.6em;position:relative}
.sdl-race-meter > span{position:absolute;left:0;top:0;white-space:nowrap}
.sdl-race .sdl-view{line-height:1.9}
.sdl-race-replay{cursor:pointer;border:1px solid #999;border-radius:3px;padding:0 6px;margin-left:8px;font-size:12px}
.sdl-race-toggle{position:absolute;opacity:0;width:1px;height:1px}
.sdl-race-speedup{margin-top:6px;font-size:15px}
.sdl-race-prompt{color:#555;margin-bottom:4px;white-space:pre-wrap}
.sdl-race .sdl-at{animation:sdl-race-show-a 0.01s linear both}
.sdl-race .sdl-race-tick[hidden]{display:inline;visibility:hidden;animation:sdl-race-window-a linear}
.sdl-race-toggle:checked ~ .sdl-race-body .sdl-at{animation-name:sdl-race-show-b}
.sdl-race-toggle:checked ~ .sdl-race-body .sdl-race-tick[hidden]{animation-name:sdl-race-window-b}
@keyframes sdl-race-show-a{from{visibility:hidden}to{visibility:visible}}
@keyframes sdl-race-show-b{from{visibility:hidden}to{visibility:visible}}
@keyframes sdl-race-window-a{from,to{visibility:visible}}
@keyframes sdl-race-window-b{from,to{visibility:visible}}
</style>
"""


@dataclass(frozen=True)
class Lane:
    """One decoding of the race: its steps and the second (from the call's start) each step's tokens were out."""

    title: str
    steps: list[StepRecord]
    at: list[float]  # at[i]: seconds from the start of the run to the end of step i (its tokens emitted)

    @property
    def tokens(self) -> int:
        return sum(len(s.emitted) for s in self.steps)

    @property
    def seconds(self) -> float:
        return self.at[-1] if self.at else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


def speedup(autoregressive: Lane, speculative: Lane) -> float:
    """The speculative lane's tokens/s over the autoregressive lane's (see the module docstring)."""
    return speculative.tokens_per_s / autoregressive.tokens_per_s


def _at(seconds: float) -> str:
    return f'style="animation-delay:{seconds:.3f}s"'


def lane_html(lane: Lane, decode, kind: str) -> str:
    """One lane: its title, the tokens/s meter over time, the steps at their times, and its finish line."""
    ticks, done = [], 0
    for i, (step, at) in enumerate(zip(lane.steps, lane.at)):
        done += len(step.emitted)
        until = lane.at[i + 1] if i + 1 < len(lane.at) else None
        reading = f"{done} tokens · {done / at:.1f} tokens/s" if at > 0 else f"{done} tokens"
        if until is not None:  # shown from this step until the next one
            ticks.append(f'<span class="sdl-race-tick" hidden style="animation-delay:{at:.3f}s;'
                         f'animation-duration:{max(until - at, 0.001):.3f}s">{reading}</span>')
    final = (f'<span class="sdl-at sdl-race-final" {_at(lane.seconds)}>{lane.tokens} tokens in {lane.seconds:.2f} s · '
             f'<b>{lane.tokens_per_s:.1f} tokens/s</b></span>')
    steps = "".join(f'<span class="sdl-at" {_at(at)}>{step_html(step, i, decode)}</span>'
                    for i, (step, at) in enumerate(zip(lane.steps, lane.at)))
    return (f'<div class="sdl-race-lane" data-lane="{kind}"><div class="sdl-race-title">{html.escape(lane.title)}</div>'
            f'<div class="sdl-race-meter">{"".join(ticks)}{final}</div>'
            f'<div class="sdl-view"><div class="sdl-race-tokens">{steps}</div></div></div>')


def race_html(autoregressive: Lane, speculative: Lane, decode, prompt: str = "", note: str = "") -> str:
    """Both lanes side by side, the speedup once both are done, and a replay switch: one self-contained fragment.

    ``prompt`` is shown above the lanes; ``note`` (e.g. "measured on a busy machine") just before the speedup.
    """
    uid = f"sdl-race-{next(_UIDS)}"
    finish = max(autoregressive.seconds, speculative.seconds)
    ratio = speedup(autoregressive, speculative)
    same = autoregressive.tokens == speculative.tokens
    result = (f'<div class="sdl-at sdl-race-speedup" {_at(finish)}>{html.escape(note) + " " if note else ""}'
              f'speculative decoding: <b class="sdl-race-ratio">{ratio:.2f}×</b> the tokens per second of '
              f'autoregressive decoding{" (the same " + str(speculative.tokens) + " tokens)" if same else ""}</div>')
    prompt_line = f'<div class="sdl-race-prompt">prompt: {html.escape(prompt)}</div>' if prompt else ""
    return (STYLE + RACE_STYLE + f'<div class="sdl-race" id="{uid}" data-speedup="{ratio:.4f}">'
            f'<input type="checkbox" class="sdl-race-toggle" id="{uid}-replay">'
            f'<div class="sdl-race-body">{prompt_line}'
            f'<div>{legend_html(("accepted", "rejected", "unchecked", "corrected", "bonus", "plain"))}'
            f'<label class="sdl-race-replay" for="{uid}-replay">▶ replay</label></div>'
            f'<div class="sdl-race-lanes">{lane_html(autoregressive, decode, "autoregressive")}'
            f'{lane_html(speculative, decode, "speculative")}</div>{result}</div></div>')
