"""The race: one prompt decoded autoregressively and speculatively, then replayed side by side at the pace each ran.

    race = Race(target, tokenizer, "Here is a text: ... Who is ...?", drafter="prompt-lookup")
    race            # in a notebook: both lanes replay at the recorded pace, then the speedup appears
    race.to_html()  # the same page, self-contained (CSS animation, no script): GitHub, nbviewer, a saved file

Each decoding runs alone (the other waits), so neither slows the other down on a shared CPU; the engine's
``on_step`` hook stamps the second each step's tokens were out, counted from the call's start (argument checks
and the prompt's prefill included, as a user waits for them). The view (:mod:`.race_view`) replays both from t = 0.
Works with any drafter and verifier of the registry (by name) or a drafter / verifier object.
"""

from __future__ import annotations

import time
from pathlib import Path

from ...bench.honest import caveat
from ...core.trace import GenerationOutput
from ...decode import generate_autoregressive, generate_speculative
from ...models.smollm2 import prompt_ids as encode_prompt
from ...registry import DRAFTERS, build_drafter
from .html import save_html
from .race_view import Lane, race_html, speedup

__all__ = ["Race", "Lane", "timed"]


def timed(generate, *args, **kwargs) -> tuple[GenerationOutput, list[float]]:
    """Run ``generate(*args, **kwargs)`` (a decoding loop) and return its output with, per step, the seconds from the
    call's start to the end of that step."""
    stamps: list[float] = []
    start = time.perf_counter()
    out = generate(*args, on_step=lambda record: stamps.append(time.perf_counter() - start), **kwargs)
    return out, stamps


class Race:
    """Autoregressive against speculative decoding on one prompt, measured on this machine, shown as a replay.

    ``.autoregressive`` and ``.speculative`` are the two runs (:class:`GenerationOutput`), ``.lanes`` their
    :class:`Lane` values, ``.speedup`` the ratio of their tokens/s. ``note`` is shown just before the speedup; by
    default it is :func:`specdec_lab.bench.honest.caveat`'s warning when the machine was busy during the race ("" else).
    """

    def __init__(self, target, tokenizer, prompt: str, drafter="prompt-lookup", verifier="speculative", gamma: int = 4,
                 max_new_tokens: int = 48, temperature: float = 0.0, seed: int = 0, note: str | None = None):
        if isinstance(drafter, str) and drafter not in DRAFTERS:
            raise ValueError(f"unknown drafter {drafter!r}; the registry's drafters: {', '.join(DRAFTERS)}")
        self.prompt, self.tokenizer = prompt, tokenizer
        self.prompt_ids = encode_prompt(tokenizer, prompt)
        built = build_drafter(drafter, target, tokenizer) if isinstance(drafter, str) else drafter
        sampling = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        generate_autoregressive(target, self.prompt_ids, max_new_tokens=2)  # warm-up: the process's first forwards are slow
        self.speculative, spec_at = timed(generate_speculative, target, built, self.prompt_ids, gamma=gamma,
                                          verifier=verifier, **sampling)
        self.autoregressive, ar_at = timed(generate_autoregressive, target, self.prompt_ids, **sampling)
        s = self.speculative.settings
        self.note = (caveat() or "") if note is None else note  # the load average just after both runs
        self.lanes = (Lane("autoregressive: one target forward per token", self.autoregressive.steps, ar_at),
                      Lane(f"speculative: {s['drafter']} + {s['verifier']}, γ = {gamma}", self.speculative.steps, spec_at))

    @property
    def speedup(self) -> float:
        return speedup(*self.lanes)

    def to_html(self) -> str:
        """The race as a self-contained fragment; each call starts the replay afresh where it is shown."""
        return race_html(*self.lanes, self.tokenizer.decode, prompt=self.prompt, note=self.note)

    def save(self, path: str | Path) -> Path:
        return save_html(self.to_html(), path, title="specdec_lab race")

    def _repr_html_(self) -> str:
        return self.to_html()
