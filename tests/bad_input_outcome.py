"""What one bad input did: the error's type and message, for the generated table (docs/bad_input.md).

Each ``tests/bad_input_rows_<area>.py`` module defines ``rows(tmp_path, monkeypatch)`` returning
``[(where, input, error type, message), ...]`` built with :func:`outcome`; ``tests/test_bad_input_table.py``
collects them all, fails on any input accepted silently, and writes the table.
"""

from __future__ import annotations


def outcome(fn) -> tuple[str, str]:
    """(error type, message) of calling ``fn``; ("(no error)", "") when it returns."""
    try:
        fn()
    except SystemExit as exit_:
        return "SystemExit", str(exit_)
    except Exception as err:  # noqa: BLE001 - every failure is recorded, whatever its type
        return type(err).__name__, str(err)
    return "(no error)", ""
