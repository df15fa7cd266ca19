"""The one exception of the harness for bad input: ``file:line:col: message``."""

from __future__ import annotations

import difflib


class CaseError(Exception):
    """A problem in a case file, located at a line and column (1-based)."""

    def __init__(self, path, line, col, message):
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path, self.line, self.col, self.message = str(path), line, col, message


def suggest(word, choices):
    """', did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""


class EngineError(RuntimeError):
    """An engine failed in a way its message already describes (e.g. an implementation under test that
    timed out); the harness reports the message as it is."""
