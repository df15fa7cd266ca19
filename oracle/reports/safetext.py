"""Text from a case (titles, notes, names, headings, messages), made safe to show.

A case file is text its author controls: an ANSI or OSC escape sequence in a title would
recolour, retitle or scroll the terminal of whoever runs the report, a ``\\r`` would overwrite
the line before it, a bidirectional override would reorder what is shown, and ``<script>`` in
a note would run in the HTML report. Two helpers, used wherever such text is printed:

- ``terminal(text)``: every control character except newline and tab (C0, DEL, C1) and every
  bidirectional-formatting character is shown as a visible escape — ESC as ``\\x1b``, U+202E
  as ``\\u202e`` — so nothing reaches the terminal as a control; the rest is unchanged.
- ``html(text)``: the same visible escapes, then HTML-escaped (``& < > " '``).
- ``json_text(text)``: for JSON already serialised: the same characters as JSON escapes
  (``\u009b``), so the data stays exactly what the case says and the text is safe to print.
"""

from __future__ import annotations

import html as _html
import re

# C0 controls but tab and newline, DEL, C1 controls; bidirectional embeddings, overrides and isolates,
# the marks LRM/RLM/ALM, and the line and paragraph separators (which break lines in some terminals)
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal(text) -> str:
    """``text`` (any object: str() is taken) with control characters shown as visible escapes."""
    text = str(text)
    return _UNSAFE.sub(_visible, text) if _UNSAFE.search(text) else text


def html(text) -> str:
    """``text`` for an HTML page: control characters as visible escapes, then HTML-escaped."""
    return _html.escape(terminal(text), quote=True)


def json_text(text) -> str:
    """Serialised JSON with every unsafe character as a JSON escape: the same data, safe to print."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
