"""``solve CASE [--write]``: the answer key of a case, once numpy, torch and finite differences agree.

Without --write nothing is written. With --write the computed values go into
the case's ``expect`` as ``{value: …, computed: true}``, rounded to the chosen
decimals (written with exactly that many), after the values already there —
a documented value is never overwritten. The new entries are inserted as
lines into the file's text, so every comment, key order and formatting of
the rest stays byte for byte, and the file is replaced atomically: the new
text is written to a temporary file beside it, checked to load as a case,
flushed to disk and then renamed over the original.

The new lines end as the file's lines do (CRLF in a CRLF file: never mixed endings). A case
that is a symbolic link is written through it: the link's final target is the file replaced
(atomically, in the target's folder), and the link itself stays as it was.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from oracle.verdict.cases import load_case
from oracle.verdict.compare import MISMATCH, check_case
from oracle.verdict.errors import CaseError
from oracle.verdict.yamlsafe import load


class Disagreement(Exception):
    """The engines disagree on a quantity: no answer key."""


def answer_key(case, engines):
    """[(quantity, numpy value)] for every quantity, after checking the engines agree on it."""
    checks = check_case(case, engines)
    problems = [
        c
        for c in checks
        if c.status == MISMATCH
        and c.printed is None
        and (not c.documented or any("engines disagree" in e.message or "raised" in e.message for e in c.elements))
    ]
    if problems:
        lines = [
            f"{c.quantity}: {c.message or next(e.message for e in c.elements if e.status == MISMATCH)}"
            for c in problems
        ]
        raise Disagreement("the engines disagree, so there is no answer key:\n  " + "\n  ".join(lines))
    key = []
    reference = engines[0].name
    for check in checks:
        if check.printed is not None:
            continue
        values = [e.engines.get(reference) for e in check.elements]
        if values and all(v is not None for v in values):
            key.append((check.quantity, values))
    return key


def natural_shapes(case, engine):
    """The shape to write each quantity in: weight matrices as matrices, one example as a flat list."""
    from oracle.verdict.run import Missing, compute

    shapes = {}
    for quantity, value in compute(case, engine).items():
        if isinstance(value, Missing):
            continue
        shape = np.shape(value)
        matrix = quantity.startswith(("dC/dW", "W[", "dz/d")) or case.kind == "jacobian"
        shapes[quantity] = shape if matrix and len(shape) == 2 else tuple(n for n in shape if n != 1) or (1,)
    return shapes


def _format(array, decimals):
    """A number or nested list, every number with exactly ``decimals`` decimals."""
    if np.ndim(array) == 0:
        text = f"{float(array):.{decimals}f}"
        return text.lstrip("-") if float(text) == 0 else text  # no −0.000
    return "[" + ", ".join(_format(v, decimals) for v in array) + "]"


def updated_text(case, key, decimals, shapes):
    """The case file's text with the computed values added to ``expect``, and the quantities added.

    The new entries are inserted as lines at the end of the ``expect`` block (which is created
    if there is none); every other byte of the file — comments, key order, formatting — is kept.
    """
    text = case.raw.decode("utf-8")
    root = load(text, case.path)
    expect = root.value.get("expect")
    present = set(expect.value) if expect is not None and isinstance(expect.value, dict) else set()
    added, entries = [], []
    for quantity, values in key:
        if quantity in present:  # documented or already solved: never overwritten
            continue
        array = np.round(np.asarray(values, dtype=float).reshape(shapes.get(quantity, (len(values),))), decimals)
        value = _format(array.reshape(()) if array.size == 1 else array, decimals)
        entries.append((quantity, value))
        added.append(quantity)
    if not entries:
        return text, added
    nl = newline_of(text)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    if expect is None:  # no expect yet: a new block at the end
        return "".join(lines) + "expect:" + nl + _block(entries, 2, nl), added
    key_line = root.keys["expect"][0] - 1
    if not present:  # expect: {} (or empty): turn it into a block
        lines[key_line] = re.sub(r"expect:[ \t]*(\{\s*\}|~|null)?", "expect:", lines[key_line], count=1)
        return "".join(lines[: key_line + 1]) + _block(entries, 2, nl) + "".join(lines[key_line + 1 :]), added
    indent = min(col for _, col in expect.keys.values()) - 1
    end = key_line + 1  # the block runs until the next line that starts a top-level key
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " #"):
        end += 1
    while end > key_line + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1  # trailing blank lines and comments stay after the new entries
    return "".join(lines[:end]) + _block(entries, indent, nl) + "".join(lines[end:]), added


def newline_of(text):
    """The line ending of a file's text: that of its first line (CRLF, LF or CR); LF for one line."""
    m = re.search(r"\r\n|\n|\r", text)
    return m.group() if m else "\n"


def _block(entries, indent, nl="\n"):
    return "".join(f"{' ' * indent}{quantity}: {{value: {value}, computed: true}}{nl}" for quantity, value in entries)


def write_atomically(path, text):
    """Replace ``path`` by ``text`` so that an interruption leaves either the old or the new file.

    A symbolic link is written through: its final target is replaced (the temporary file goes beside
    the target, so the rename stays within one file system) and the link is kept. The text is written
    as it is (``newline=""``: its line endings are not translated). Returns the path written.
    """
    path = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            load_case(Path(tmp))  # the new text must load as a case before it replaces the old
        except CaseError as exc:
            raise CaseError(path, exc.line, exc.col, f"the solved file would not load: {exc.message}") from None
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
