"""Checks on text before a tokenizer sees it: a prompt, a question's turn, a command-line argument.

Two kinds of text break a tokenizer with a message that names neither the text nor the cause:

* a lone surrogate (U+D800..U+DFFF without its pair): what invalid UTF-8 becomes when it is decoded with
  ``errors="surrogateescape"`` (Python does this to ``sys.argv``), or what a JSON escape such as ``"\\ud800"``
  gives. The Rust tokenizers refuse it with "TextEncodeInput must be Union[...]".
* text too long for any model's context, which the tokenizer would still encode in full first (a 50 MB
  question line took 64 s and 6.5 GB before the context check refused it).

:data:`MAX_TEXT_CHARS` is the bound: no model this package supports reads more than
:data:`MAX_CONTEXT_TOKENS` tokens (the zoo 512, SmolLM2 8 192; hub models up to 128 Ki), and a token holds fewer
than :data:`MAX_CHARS_PER_TOKEN` characters on average even in indented code (about 4 in English prose), so a longer
text cannot fit any context and is refused before it is encoded.
"""

from __future__ import annotations

MAX_CONTEXT_TOKENS = 131_072  # the longest context among the models we load (128 Ki: Llama 3.1, Qwen2.5)
MAX_CHARS_PER_TOKEN = 16  # a generous average: English prose is ~4 characters per token, code ~3-6
MAX_TEXT_CHARS = MAX_CONTEXT_TOKENS * MAX_CHARS_PER_TOKEN  # 2 097 152 characters


def check_text(text, what: str = "the prompt", max_chars: int | None = MAX_TEXT_CHARS) -> str:
    """``text`` unchanged, if a tokenizer can encode it: a str of at most ``max_chars`` characters (None: no bound)
    without lone surrogates. Raises TypeError for a non-str and ValueError naming ``what`` and the position."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}")
    if max_chars is not None and len(text) > max_chars:
        raise ValueError(f"{what} holds {len(text):,} characters, more than the {max_chars:,} that could fit any "
                         f"model's context ({MAX_CONTEXT_TOKENS:,} tokens × {MAX_CHARS_PER_TOKEN} characters): "
                         "shorten it")
    try:
        text.encode("utf-8")  # fails exactly on lone surrogates, the only str that is not valid Unicode text
    except UnicodeEncodeError as err:
        char = text[err.start]
        raise ValueError(f"{what} holds a lone surrogate {char!r} (U+{ord(char):04X}) at character {err.start} "
                         "(invalid UTF-8?): a tokenizer cannot encode it; fix the text's encoding, or write the "
                         "character it stands for") from None
    return text
