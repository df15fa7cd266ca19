"""Safe YAML: the document as plain data, every scalar with its position and printed decimals.

The text is read as a stream of parser events, which the loop of
``_Builder`` turns into ``Node``s: nothing is constructed from tags, so no
object can be created from the file, and nothing recurses, so no nesting
can exhaust the stack. Tags, anchors and aliases are refused (no
billion-laughs expansion), as are duplicate keys and a second document.
Numbers keep the text they were written with, so that ``1.80`` is known to
have two decimals although it equals 1.8; every number must be finite.

The limits of oracle.verdict.limits — nesting depth, entries of one list or
mapping, numbers of one array, values of one file, digits of one number —
are checked on every event, so a document past a limit is refused at the
place where it crosses it, before the rest is read. The YAML scanner only
sees a text whose size was checked before it was read (``read_case_file``
in oracle.verdict.cases; ``load`` checks the length of the text it is
given too) and looks at most 1024 characters ahead of the last event (the
limit YAML puts on a simple key).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError

from oracle.verdict.errors import CaseError
from oracle.verdict.limits import DEFAULT, hint

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL = {".inf": "infinite", "+.inf": "infinite", "-.inf": "infinite", ".nan": "not a number (NaN)"}
_NULL = ("", "~", "null", "Null", "NULL")
_BOOL = ("true", "True", "TRUE", "false", "False", "FALSE")


@dataclass(frozen=True)
class Number:
    """A number as written: its value and the decimals it was printed with."""

    value: float
    decimals: int
    text: str


@dataclass
class Node:
    """A located value: ``value`` is a dict of str → Node, a list of Node, a Number, str, bool or None."""

    value: object
    line: int
    col: int
    quoted: bool = False  # a quoted scalar: its text starts one column after ``col``
    keys: dict | None = None  # for a mapping: key → (line, col) of the key itself

    def plain(self):
        """The value with positions stripped (Number → float)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        if isinstance(self.value, Number):
            return self.value.value
        return self.value


def decimals_of(text: str) -> int:
    """Decimals printed in a number's text: '1.80' → 2, '3' → 0, '1.5e-3' → 4."""
    mantissa, _, exponent = text.lower().lstrip("+-").partition("e")
    places = len(mantissa.partition(".")[2])
    return max(0, places - (int(exponent) if exponent else 0))


def _short(text, n=24):
    return text if len(text) <= n else f"{text[:n]}…"


def number(text, path, line, col, limits=DEFAULT, finite=True) -> Number:
    """The Number written as ``text``: within the digit limit and (``finite``) in float64's normal range."""
    digits = sum(c.isdigit() for c in text)
    if digits > limits.max_digits:
        raise CaseError(
            path,
            line,
            col,
            f"a number written with {digits} digits ({_short(text)}): float64 keeps "
            f"17 significant digits; {hint('max_digits', limits)}",
        )
    value = float(text)
    if not finite:
        return Number(value, decimals_of(text), text)
    if math.isinf(value):
        raise CaseError(
            path,
            line,
            col,
            f"{_short(text)} overflows a 64-bit float (the largest is about 1.8e308): "
            f"every number in a case must be finite",
        )
    if value == 0 and any(c in "123456789" for c in text.lower().partition("e")[0]):
        raise CaseError(
            path,
            line,
            col,
            f"{_short(text)} underflows to 0 in a 64-bit float (the smallest normal "
            f"one is about 2.2e-308): write 0 if 0 is meant",
        )
    if 0 < abs(value) < sys.float_info.min:
        raise CaseError(
            path,
            line,
            col,
            f"{_short(text)} is below the smallest normal 64-bit float (about "
            f"2.2e-308), where fewer digits are kept: write 0 if 0 is meant",
        )
    return Number(value, decimals_of(text), text)


def _scalar(event, path, line, col, limits, finite):
    text = event.value
    if event.style is None:  # plain (unquoted) scalar: YAML 1.2 core schema
        if text in _NULL:
            return Node(None, line, col)
        if text in _BOOL:
            return Node(text.lower() == "true", line, col)
        if _INT.match(text) or _FLOAT.match(text):
            return Node(number(text, path, line, col, limits, finite), line, col)
        if text.lower() in _SPECIAL and not finite:
            return Node(Number(float(text.lower().replace(".", "")), 0, text), line, col)
        if text.lower() in _SPECIAL:
            raise CaseError(
                path, line, col, f"{text} is {_SPECIAL[text.lower()]}: every number in a case must be finite"
            )
    if event.style == ">":
        text = text.replace("\a", "")  # ruamel marks the folds of a folded scalar with BEL
    return Node(text, line, col, quoted=event.style in ("'", '"'))


def _key_name(event):
    """The name of a scalar key as the old composer gave it: its text ('1e400', 'x'), 'None', 'True'."""
    text = event.value
    if event.style is None:
        if text in _NULL:
            return "None"
        if text in _BOOL:
            return str(text.lower() == "true")
    return text


class _Frame:
    """An open list or mapping: its node, the key it hangs under, counts for the limits."""

    __slots__ = ("node", "label", "is_map", "key", "count", "leaves", "index", "flow", "inner")

    def __init__(self, node, label, is_map, index, flow):
        self.node, self.label, self.is_map = node, label, is_map
        self.key = None  # mapping: the key whose value comes next
        self.count = 0  # entries so far
        self.leaves = 0  # list: scalars below it through lists only (the numbers of an array)
        self.index, self.flow = index, flow
        self.inner = None  # list: the shape of its first entry, once that entry is complete


class _Builder:
    def __init__(self, text, path, limits, finite):
        self.text, self.path, self.limits, self.finite = text, path, limits, finite
        self.stack: list[_Frame] = []
        self.root = None
        self.values = 0
        self.documents = 0

    def error(self, mark, message):
        return CaseError(self.path, mark.line + 1, mark.column + 1, message)

    def prefix(self, extra=None, depth=None):
        """'layers/0/W: ': the keys and indices down to the value being read (as validate names them)."""
        frames = self.stack[1:] if depth is None else self.stack[1 : depth + 1]
        parts = [str(f.label) for f in frames if f.label is not None] + ([str(extra)] if extra is not None else [])
        if len(parts) > 8:
            parts = parts[:3] + [f"…({len(parts) - 5} more)…"] + parts[-2:]
        where = "/".join(parts)
        return f"{where}: " if where else ""

    def run(self, events):
        for event in events:
            kind = type(event)
            if kind is ScalarEvent or kind is MappingStartEvent or kind is SequenceStartEvent:
                self.check_node(event)
                if kind is ScalarEvent:
                    self.add_scalar(event)
                else:
                    self.open(event, kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self.close()
            elif kind is AliasEvent:
                raise self.error(event.start_mark, "anchors and aliases (&, *) are not allowed in case files")
            elif kind is DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise self.error(event.start_mark, "a second YAML document (---): a case file holds one")
        return self.root

    def check_node(self, event):
        if getattr(event, "anchor", None):
            raise self.error(event.start_mark, "anchors and aliases (&, *) are not allowed in case files")
        tag = getattr(event, "tag", None)
        implicit = getattr(event, "implicit", False)
        if isinstance(implicit, tuple):
            implicit = implicit[0]
        if tag is not None and not implicit:
            raise self.error(event.start_mark, f"YAML tags are not allowed in case files (found {tag})")

    def slot(self, event, is_collection):
        """Where the next node goes: (parent frame or None, its label); checks keys and entry counts."""
        if not self.stack:
            return None, None
        parent = self.stack[-1]
        if parent.is_map and parent.key is None:
            if is_collection:
                raise self.error(event.start_mark, "a mapping key must be a plain name")
            return parent, None
        parent.count += 1
        if parent.count > self.limits.max_elements:
            what = "mapping" if parent.is_map else "list"
            raise self.error(
                event.start_mark,
                f"{self.prefix()}a {what} of more than {self.limits.max_elements} entries; "
                f"{hint('max_elements', self.limits)}",
            )
        return parent, (parent.key if parent.is_map else parent.count - 1)

    def attach(self, parent, node):
        if parent is None:
            self.root = node
        elif parent.is_map:
            parent.node.value[parent.key] = node
            parent.key = None
        else:
            parent.node.value.append(node)

    def count_value(self, mark):
        self.values += 1
        if self.values > self.limits.max_total:
            raise self.error(
                mark,
                f"more than {self.limits.max_total} values (numbers, texts, lists and mappings) "
                f"in one case file; {hint('max_total', self.limits)}",
            )

    def open(self, event, is_map):
        parent, label = self.slot(event, True)
        mark = event.start_mark
        self.count_value(mark)
        if len(self.stack) >= self.limits.max_depth:
            raise self.error(
                mark,
                f"{self.prefix(label)}lists and mappings nested more than "
                f"{self.limits.max_depth} levels deep; {hint('max_depth', self.limits)}",
            )
        node = Node({} if is_map else [], mark.line + 1, mark.column + 1, keys={} if is_map else None)
        self.attach(parent, node)
        self.stack.append(_Frame(node, label, is_map, mark.index, bool(getattr(event, "flow_style", False))))

    def close(self):
        frame = self.stack.pop()
        if self.stack and not frame.is_map:
            parent = self.stack[-1]
            if not parent.is_map and parent.inner is None:
                parent.inner = (frame.count,) + (frame.inner or ())

    def add_scalar(self, event):
        mark = event.start_mark
        line, col = mark.line + 1, mark.column + 1
        parent, label = self.slot(event, False)
        if parent is not None and parent.is_map and parent.key is None:  # a key
            name = _key_name(event)
            if name in parent.node.value:
                raise self.error(mark, f"duplicate key {name!r}")
            parent.node.keys[name] = (line, col)
            parent.node.value[name] = None
            parent.key = name
            return
        self.count_value(mark)
        self.attach(parent, _scalar(event, self.path, line, col, self.limits, self.finite))
        self.count_leaf()

    def count_leaf(self):
        """One more number in the array (nested lists) the scalar belongs to."""
        top = None
        for frame in reversed(self.stack):
            if frame.is_map:
                break
            frame.leaves += 1
            top = frame
        if top is not None and top.leaves > self.limits.max_elements:
            raise CaseError(
                self.path,
                top.node.line,
                top.node.col,
                f"{self.prefix(depth=self.stack.index(top))}{self.array_size(top)}, more than one "
                f"array may hold; {hint('max_elements', self.limits)}",
            )

    def array_size(self, frame):
        """'an array of 2000×2000 = 4000000 numbers', read off the text for a flow list, or 'more than N'."""
        inner = frame.inner or ()
        total = _flow_count(self.text, frame.index) if frame.flow else None
        size = math.prod(inner) if inner else 1
        if total is not None and total % size == 0 and total > self.limits.max_elements:
            shape = (total // size,) + inner
            dims = "×".join(map(str, shape))
            return f"an array of {dims} = {total} numbers" if len(shape) > 1 else f"an array of {total} numbers"
        rows = f" (entries of {'×'.join(map(str, inner))})" if inner else ""
        return f"an array of more than {self.limits.max_elements} numbers{rows}"


_BRACKETS = re.compile(r"[\[\]'\"#]")


def _flow_count(text, start):
    """The numbers of the flow list ``[…]`` starting at ``start`` (its commas + 1), or None if unsure."""
    if start >= len(text) or text[start] != "[":
        return None
    depth = 0
    for m in _BRACKETS.finditer(text, start):
        c = m.group()
        if c in "'\"#":
            return None  # quotes or comments: not a plain array of numbers
        depth += 1 if c == "[" else -1
        if depth == 0:
            span = text[start : m.end()]
            return span.count(",") + 1 - len(re.findall(r",\s*\]", span))
    return None


def _reader_position(text, position):
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def load(text: str, path, limits=None, finite=False) -> Node:
    """Parse one YAML document safely; raise CaseError with the position of any problem.

    ``finite``: refuse .nan, .inf and numbers beyond float64's range where they are written (case files;
    other files, such as assignments, check their numbers themselves and say what is allowed)."""
    limits = limits or DEFAULT
    if len(text) > limits.max_bytes:
        raise CaseError(
            path,
            1,
            1,
            f"the text has {len(text)} characters, more than a case file may have; "
            f"{hint('max_file_mb', limits, ' MB')}",
        )
    yaml = YAML(typ="safe", pure=True)
    builder = _Builder(text, path, limits, finite)
    try:
        node = builder.run(yaml.parse(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise CaseError(path, mark.line + 1, mark.column + 1, f"YAML syntax error: {problem}") from None
    except ReaderError as exc:
        line, col = _reader_position(text, exc.position)
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        raise CaseError(
            path, line, col, f"the character U+{code:04X} is not allowed in a YAML file ({exc.reason})"
        ) from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors for syntax
        raise CaseError(path, 1, 1, f"YAML error: {exc}") from None
    except RecursionError:  # pragma: no cover - nothing here recurses; the guard of last resort
        raise CaseError(path, 1, 1, f"nested too deeply to read; {hint('max_depth', limits)}") from None
    if node is None:
        raise CaseError(path, 1, 1, "the file is empty; a case is a YAML mapping")
    return node
