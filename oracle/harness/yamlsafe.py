"""Safe YAML: the document as plain data, every scalar with its position and printed decimals.

The file is parsed to events and composed to nodes only — nothing is
constructed from tags, so no object can be created from the file. Tags,
anchors and aliases are refused (no billion-laughs expansion), as are
duplicate keys. Numbers keep the text they were written with, so that
``1.80`` is known to have two decimals although it equals 1.8.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import CaseError

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


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
    quoted: bool = False          # a quoted scalar: its text starts one column after ``col``
    keys: dict | None = None      # for a mapping: key → (line, col) of the key itself

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


def _scalar(node: ScalarNode, path):
    text = node.value
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if node.style is None:  # plain (unquoted) scalar: YAML 1.2 core schema
        if text in ("", "~", "null", "Null", "NULL"):
            return Node(None, line, col)
        if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
            return Node(text.lower() == "true", line, col)
        if _INT.match(text) or _FLOAT.match(text):
            return Node(Number(float(text), decimals_of(text), text), line, col)
        if text.lower() in _SPECIAL:
            return Node(Number(_SPECIAL[text.lower()], 0, text), line, col)
    if node.style == ">":
        text = text.replace("\a", "")  # ruamel marks the folds of a folded scalar with BEL
    return Node(text, line, col, quoted=node.style in ("'", '"'))


def _convert(node, path):
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, ScalarNode):
        return _scalar(node, path)
    if isinstance(node, SequenceNode):
        return Node([_convert(n, path) for n in node.value], line, col)
    if isinstance(node, MappingNode):
        out, keys = {}, {}
        for k, v in node.value:
            key = _convert(k, path)
            if isinstance(key.value, (dict, list)):
                raise CaseError(path, key.line, key.col, "a mapping key must be a plain name")
            name = key.value.text if isinstance(key.value, Number) else str(key.value)
            if name in out:
                raise CaseError(path, key.line, key.col, f"duplicate key {name!r}")
            out[name] = _convert(v, path)
            keys[name] = (key.line, key.col)
        return Node(out, line, col, keys=keys)
    raise CaseError(path, line, col, "unsupported YAML node")  # pragma: no cover


def load(text: str, path) -> Node:
    """Parse one YAML document safely; raise CaseError with the position of any problem."""
    yaml = YAML(typ="rt", pure=True)
    try:
        for event in yaml.parse(text):
            mark = event.start_mark
            where = (path, mark.line + 1, mark.column + 1)
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                raise CaseError(*where, "anchors and aliases (&, *) are not allowed in case files")
            tag = getattr(event, "tag", None)
            implicit = getattr(event, "implicit", False)
            if isinstance(implicit, tuple):
                implicit = implicit[0]
            if tag is not None and not implicit:
                raise CaseError(*where, f"YAML tags are not allowed in case files (found {tag})")
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise CaseError(path, mark.line + 1, mark.column + 1, f"YAML syntax error: {problem}") from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors for syntax
        raise CaseError(path, 1, 1, f"YAML error: {exc}") from None
    if node is None:
        raise CaseError(path, 1, 1, "the file is empty; a case is a YAML mapping")
    return _convert(node, path)
