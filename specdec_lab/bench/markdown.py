"""Markdown from text the benchmark did not write (a question's category is its task name, a method's label).

A table cell ends at ``|`` and its row at a line break, and raw HTML passes through Markdown, so such text is
escaped before it goes into report.md or a catalogue table, as report.html escapes it with ``html.escape``.
"""

from __future__ import annotations

import html

LINE_BREAKS = ("\r\n", "\r", "\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")  # splitlines' set


def markdown_text(value) -> str:
    """``str(value)`` safe inside a Markdown table cell or paragraph: ``\\`` and ``|`` backslash-escaped, ``&``, ``<``
    and ``>`` as HTML entities, every line break as ↵. Text without these characters is unchanged."""
    text = html.escape(str(value), quote=False).replace("\\", "\\\\").replace("|", "\\|")
    for brk in LINE_BREAKS:
        text = text.replace(brk, "↵")
    return text
