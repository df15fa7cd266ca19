"""``validate PATHS``: check case files without running them, every problem as file:line:col: message.

Three layers, in order: safe YAML parsing (syntax, tags, anchors, duplicate
keys), the JSON Schema of the case format (oracle/authoring/case.schema.json:
fields, types, names — all its problems at once), then the loader's checks
that a schema cannot express (shapes that must fit together, names used in
expressions, numbers of values).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from oracle.verdict.cases import case_from_node, decode_case, guarded, read_case_file
from oracle.verdict.errors import CaseError, suggest
from oracle.verdict.yamlsafe import load

SCHEMA_PATH = Path(__file__).with_name("case.schema.json")
SCHEMA_LINE = "# yaml-language-server: $schema="


@lru_cache(maxsize=1)
def validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _locate(node, path):
    """The node at a JSON path (keys and indices), and whether the last key itself is meant."""
    for key in path:
        if isinstance(node.value, dict) and key in node.value:
            node = node.value[key]
        elif isinstance(node.value, list) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node


def _key_position(node, path, key):
    parent = _locate(node, path)
    return (parent.keys or {}).get(key, (parent.line, parent.col))


def _deepest(error):
    """Of a oneOf/anyOf error, the most specific sub-error: the one deepest in the document."""
    candidates = [error]
    stack = list(error.context or [])
    while stack:
        e = stack.pop(0)
        candidates.append(e)
        stack.extend(e.context or [])
    return max(candidates, key=lambda e: (len(e.absolute_path), e.validator not in ("oneOf", "anyOf")))


def _message(error):
    """A readable message for one schema error (the most specific one of a oneOf)."""
    top = error
    if error.context:
        error = _deepest(error)
    where = "/".join(str(p) for p in error.absolute_path)
    if "propertyNames" in top.schema_path:
        allowed = [str(v) for v in error.validator_value] if error.validator == "enum" else []
        text = f"unknown field {top.instance!r}{suggest(top.instance, allowed)}" + (
            f" (allowed: {', '.join(allowed)})" if allowed else ""
        )
        where = "/".join(str(p) for p in top.absolute_path)
    elif error.validator == "enum":
        hint = suggest(error.instance, [str(v) for v in error.validator_value])
        text = f"{error.instance!r} is not allowed{hint} (allowed: {', '.join(map(str, error.validator_value))})"
    elif error.validator == "additionalProperties" and not error.validator_value:
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = sorted(error.schema.get("properties", {}))
        text = "; ".join(f"unknown field {k!r}{suggest(k, allowed)}" for k in extra)
    else:
        text = error.message
    return top, error, (f"{where}: {text}" if where else text)


def schema_problems(root, path):
    """All schema problems of a parsed case, as CaseErrors, in file order."""
    problems = []
    for error in validator().iter_errors(root.plain()):
        top, error, text = _message(error)
        location = list(error.absolute_path)
        if "propertyNames" in top.schema_path:
            line, col = _key_position(root, list(top.absolute_path), top.instance)
        elif error.validator == "additionalProperties":
            node = _locate(root, location)
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            line, col = (node.keys or {}).get(extra[0], (node.line, node.col)) if extra else (node.line, node.col)
        else:
            node = _locate(root, location)
            line, col = node.line, node.col
        problems.append(CaseError(path, line, col, text))
    unique = {(p.line, p.col, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.line, p.col))


def validate_file(path, limits=None):
    """Every problem of one case file (an empty list when it is valid); never an exception."""
    path = Path(path)
    try:
        return guarded(path, lambda: _problems(path, limits), limits)
    except CaseError as exc:
        return [exc]


def _problems(path, limits):
    try:
        raw = read_case_file(path, limits)
        root = load(decode_case(path, raw), path, limits, finite=True)
    except CaseError as exc:
        return [exc]
    problems = schema_problems(root, path)
    if problems:
        return problems
    try:
        case_from_node(path, raw, root, limits)
    except CaseError as exc:
        return [exc]
    return []
