"""Plain-text and terminal (ANSI) views of a trace, for SSH sessions and CI logs.

Colour is never the only carrier of meaning: every token also carries a glyph.
    ✓ accepted draft      ✗ rejected draft (struck through)      · draft never checked
    ↻ the target's correction after a rejection      ★ the bonus token after a fully accepted draft
    ▸ a plain target token (nothing was drafted)

Text bound for a terminal goes through :func:`escape_controls` first (the CLI does it in its decode
function, before any colour is added), so a prompt or an output holding ESC, BEL or other control
characters is shown, not obeyed; the same holds for the bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE
and its kin), which would reorder what the terminal shows (the "Trojan Source" trick), and for lone surrogates,
which a terminal cannot be sent at all.
"""

from __future__ import annotations

import math
import unicodedata

from ...core.trace import BONUS, CORRECTED, GenerationOutput, StepRecord

GLYPH = {"accepted": "✓", "rejected": "✗", "unchecked": "·", CORRECTED: "↻", BONUS: "★", "plain": "▸"}
ANSI = {  # Okabe–Ito-like choices that survive on dark and light terminals
    "accepted": "\x1b[32m",  # green
    "rejected": "\x1b[31;9m",  # red, struck through
    "unchecked": "\x1b[33;2m",  # dim yellow
    CORRECTED: "\x1b[34;1m",  # bold blue
    BONUS: "\x1b[34;1m",
    "plain": "\x1b[34m",
}
RESET = "\x1b[0m"


def _control_glyph(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode Control Pictures: ESC -> ␛, BEL -> ␇, CR -> ␍, NUL -> ␀
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"  # C1 (U+0080..U+009F) has no control pictures: a visible escape, e.g. \x9b


BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # Bidi_Control=Yes


def _escaped(char: str) -> str:
    """One character as the terminal should get it: itself, or a visible stand-in (see :func:`escape_controls`)."""
    if char in "\n\t":
        return char
    category = unicodedata.category(char)
    if category == "Cc":
        return _control_glyph(char)
    if char in BIDI or category == "Cs":
        return f"\\u{ord(char):04x}"
    return char


def escape_controls(text: str) -> str:
    """Show control characters instead of sending them to a terminal: every character of Unicode category Cc
    (C0, DEL, C1) except newline and tab becomes a visible stand-in (ESC ␛, BEL ␇, CR ␍, DEL ␡, C1 byte 0x9b
    as the four characters ``\\x9b``). Newline and tab stay (:func:`visible` shows them as ↵ and ⇥).

    Of the format characters (category Cf), the ones that reorder text, Unicode's Bidi_Control set (:data:`BIDI`:
    U+061C, U+200E/F, U+202A..E, U+2066..9), and lone surrogates (category Cs) become ``\\u202e``-style escapes.
    The other format characters stay: the zero-width joiner of an emoji sequence or a soft hyphen is ordinary text."""
    if text.isprintable():  # the common case: nothing to do
        return text
    return "".join(_escaped(c) for c in text)


def visible(text: str) -> str:
    """Make whitespace and token boundaries visible: newline ↵, tab ⇥."""
    return text.replace("\n", "↵").replace("\t", "⇥")


def _piece(text: str, kind: str, color: bool) -> str:
    body = f"{visible(text)}{GLYPH[kind]}"
    return f"{ANSI[kind]}{body}{RESET}" if color else body


def step_lines(step: StepRecord, index: int, decode, color: bool = False) -> list[str]:
    """One step as text: the draft with its verdict per token, then the target's own token."""
    pieces = []
    for token, decision in zip(step.draft, step.decisions):
        pieces.append(_piece(decode([token]), decision, color))
    pieces.append(_piece(decode([step.next_token]), step.next_kind, color))
    head = f"step {index:3d}  context {step.context_len:4d}  drafted {len(step.draft)}  accepted {step.n_accepted}"
    lines = [head, "   " + " │ ".join(pieces)]
    for i, (token, decision) in enumerate(zip(step.draft, step.decisions)):
        if decision == "unchecked":
            break
        u = "" if math.isnan(step.uniforms[i]) else f"  u={step.uniforms[i]:.3f}"
        lines.append(
            f"     {visible(decode([token]))!s:>14}  p={step.p_draft[i]:.3f}  q={step.q_draft[i]:.3f}  "
            f"min(1,p/q)={step.accept_prob[i]:.3f}{u}  {GLYPH[decision]} {decision}"
        )
    return lines


def render_output(out: GenerationOutput, decode, color: bool = False) -> str:
    """The prompt, then the generated text with each token marked by how it was produced."""
    parts = [visible(decode(out.prompt_ids))]
    for step in out.steps:
        kinds = ["accepted"] * step.n_accepted + [step.next_kind]
        for token, kind in zip(step.emitted, kinds):
            parts.append(_piece(decode([token]), kind, color))
    return "".join(parts)


def legend(color: bool = False) -> str:
    names = [("accepted", "accepted draft"), ("rejected", "rejected draft"), ("unchecked", "not checked"),
             (CORRECTED, "target's correction"), (BONUS, "bonus token"), ("plain", "target alone")]
    return "  ".join(_piece("", kind, color) + " " + label for kind, label in names)


def render_stats(out: GenerationOutput) -> str:
    """One line of metrics, each under its one name (``Stats.summary``): α = accepted ÷ checked, the draft yield =
    accepted ÷ drafted, τ = new tokens ÷ steps, target forwards = prefill + steps, drafting and its cost c."""
    return out.stats.summary(sep=", ")


def render_trace(out: GenerationOutput, decode, color: bool = False) -> str:
    """The whole run: every step, the coloured text, the metrics, the legend."""
    lines = []
    for i, step in enumerate(out.steps):
        lines += step_lines(step, i, decode, color)
    lines += ["", render_output(out, decode, color), "", render_stats(out), legend(color)]
    return "\n".join(lines)
