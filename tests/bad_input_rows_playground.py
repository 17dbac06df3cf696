"""Bad input to the playground widget (v3): arguments the engine or a slider cannot take, set by code.

Each row is refused with the engine's own message (core/checks.py), or, for a value the engine takes but a slider
cannot show, with the slider's range: nothing is clamped silently."""

from __future__ import annotations

from bad_input_outcome import outcome

from specdec_lab.lab.viz.playground import Playground
from specdec_lab.models.loading import load_model

WHERE = "playground widget (v3)"


def rows(tmp_path, monkeypatch) -> list[tuple[str, str, str, str]]:
    target, tokenizer = load_model("zoo:target", "cpu")
    build = lambda **kw: Playground(target, tokenizer, prompt="ROMEO.\n", background=False, run_now=False,  # noqa: E731
                                    **(dict(max_new_tokens=16) | kw))
    out = []
    for label, kwargs in [
        ("Playground(temperature=-1)", dict(temperature=-1)),
        ("Playground(temperature=5) (past the slider's 1.5)", dict(temperature=5)),
        ("Playground(top_p=0)", dict(top_p=0)),
        ("Playground(top_p=0.01) (below the slider's 0.05)", dict(top_p=0.01)),
        ("Playground(top_p=1.5)", dict(top_p=1.5)),
        ("Playground(max_new_tokens=0)", dict(max_new_tokens=0)),
        ("Playground(max_new_tokens=3) (below the slider's 8)", dict(max_new_tokens=3)),
        ("Playground(max_new_tokens=1000) (past the slider's 256)", dict(max_new_tokens=1000)),
        ("Playground(seed=-1)", dict(seed=-1)),
        ('Playground(drafter="nope")', dict(drafter="nope")),
        ('Playground(verifier="nope")', dict(verifier="nope")),
    ]:
        out.append((WHERE, label, *outcome(lambda: build(**kwargs))))
    pg = build()
    for label, slider, value in [("playground.temperature.value = 5", "temperature", 5.0),
                                 ("playground.top_p.value = 0.01", "top_p", 0.01),
                                 ("playground.max_new_tokens.value = 1000", "max_new_tokens", 1000)]:
        out.append((WHERE, label, *outcome(lambda: setattr(getattr(pg, slider), "value", value))))
    return out
