"""What one playground run asks for (the widgets' values, frozen), and the checks of what code passes the widget.

The widget refuses what the engine refuses, with the engine's own messages (:mod:`specdec_lab.core.checks`), and a
value the engine takes but a slider cannot show (temperature 5, top-p 0.01, 1000 new tokens) is an error too:
nothing is silently clamped to a slider's range. γ is the exception the widget was built with: a γ past its slider
widens the slider (its range is a UI choice, the engine's limit is ``MAX_GAMMA``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.checks import check_gamma, check_int, check_seed
from ...core.sampling import SamplingConfig

# (low, high, step) of each slider: UI choices, inside what the engine accepts
SLIDER_RANGES = {"temperature": (0.0, 1.5, 0.1), "top_p": (0.05, 1.0, 0.05), "max_new_tokens": (8, 256, 8),
                 "tree_budget": (0, 32, 1)}


@dataclass(frozen=True)
class Settings:
    prompt: str
    drafter: str
    verifier: str
    gamma: int
    temperature: float
    top_p: float  # 1.0: no top-p filter
    max_new_tokens: int
    tree_budget: int = 0  # tree verifiers: the node budget of the tree shape chosen from measured acceptance (0: default shape)

    def sampling(self, seed: int) -> dict:
        """The decoding arguments the speculative run and its autoregressive baseline share (top-p 1.0: None, no filter)."""
        return dict(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                    top_p=None if self.top_p >= 1.0 else self.top_p, seed=seed)


def check_choice(what: str, name, options) -> str:
    """``name`` must be one of ``options`` (a drafter or verifier of the dropdown)."""
    options = list(options)
    if not isinstance(name, str) or name not in options:
        raise ValueError(f"unknown {what} {name!r}; the playground offers: {', '.join(options)}")
    return name


def check_in_slider(name: str, value) -> None:
    """A value the engine took must also lie on its slider: [low, high] of :data:`SLIDER_RANGES`."""
    low, high, _ = SLIDER_RANGES[name]
    if not low <= value <= high:
        raise ValueError(f"{name} = {value} is outside the playground's {name} slider ({low:g} to {high:g}); "
                         f"generate_speculative takes it, the widget shows only its slider's range: pass a value in it")


def check_arguments(*, drafter, verifier, drafters, verifiers, gamma, temperature, top_p, max_new_tokens, seed) -> dict:
    """The constructor's arguments, checked as the engine checks them and then against the sliders; returned as the
    Python values the widgets hold."""
    check_choice("drafter", drafter, drafters)
    check_choice("verifier", verifier, verifiers)
    gamma = check_gamma(gamma)
    top_p = 1.0 if top_p is None else top_p  # the engine's "no filter", which the slider shows as 1.0
    sampling = SamplingConfig(temperature=temperature, top_p=top_p)  # the engine's messages for T and top-p
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, 1)
    seed = check_seed(seed)
    for name, value in (("temperature", sampling.temperature), ("top_p", sampling.top_p), ("max_new_tokens", max_new_tokens)):
        check_in_slider(name, value)
    return dict(gamma=gamma, temperature=sampling.temperature, top_p=sampling.top_p, max_new_tokens=max_new_tokens,
                seed=seed)
