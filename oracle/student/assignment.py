"""Assignment files: which cases and quantities count, with what weight and Gradescope visibility.

An assignment is a YAML mapping (see docs/assignment-format.md), loaded with
the harness's safe YAML and checked in two layers, like case files: the JSON
Schema oracle/student/assignment.schema.json (keys, types, names, ranges),
then what a schema cannot see — that case paths exist and hold valid cases,
that every quantity pattern matches a quantity of its case, that numbers are
finite. Every problem is a CaseError ``file:line:col: message``.

Quantity patterns match the whole quantity name; ``*`` is any run of
characters (none included), ``?`` exactly one, everything else — brackets
included — is literal: ``delta[*]`` matches ``delta[1]`` and ``delta[2]`` but
not ``delta[1]@2`` (a later step's name, which ends in ``@2``, not ``]``).
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from oracle.verdict.cases import load_case
from oracle.verdict.cases import describe_value as _describe
from oracle.verdict.errors import CaseError, suggest
from oracle.verdict.yamlsafe import Number, load

SCHEMA_PATH = Path(__file__).with_name("assignment.schema.json")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
FORBIDDEN_IMPORTS = ("refimpl", "oracle")
DEFAULT_WEIGHT, DEFAULT_VISIBILITY = 1.0, "visible"
# name → (lowest, lowest excluded, highest, what an allowed value is); the schema states the same bounds
LIMITS = {
    "weight": (0, True, None, "a finite number > 0 (points per quantity)"),
    "timeout": (0, True, 600, "a number of seconds > 0 and ≤ 600"),
    "memory_mb": (64, False, 65536, "a whole number of MB from 64 to 65536"),
}
_HINTS = {  # how to write a value, for type errors
    "cases": "a list of entries such as [{path: cases/001_sigmoid_net.yaml}]",
    "entry": "a mapping such as {path: cases/001_sigmoid_net.yaml}",
    "defaults": "a mapping such as {weight: 1, visibility: visible}",
    "quantities": 'a list of patterns such as ["delta[*]", "dC/dW[*]"]',
    "allow_imports": "a list of package names such as [scipy]",
}


@dataclass(frozen=True)
class Entry:
    """One item of ``cases``: a case file or folder and how its quantities are scored."""

    path: Path  # the resolved case file or folder
    patterns: tuple[str, ...] | None  # None: every quantity counts
    weight: float
    visibility: str
    line: int  # where the entry is in the assignment file (0: none)
    cases: tuple[Path, ...] = ()  # the resolved case files it covers, sorted

    def files(self) -> tuple[Path, ...]:
        """The case files this entry covers (a folder: every *.yaml below it)."""
        if self.cases:
            return self.cases
        return _expand(self.path)

    def counts(self, quantity: str) -> bool:
        return self.patterns is None or any(matches(p, quantity) for p in self.patterns)


@dataclass(frozen=True)
class Assignment:
    path: Path | None  # None: the default assignment (no file)
    title: str
    entries: tuple[Entry, ...]
    allow_imports: tuple[str, ...] = ()
    timeout: float | None = None  # seconds per call; None: the grader's default
    memory_mb: int | None = None  # None: the grader's default

    def case_paths(self) -> list[Path]:
        """Every case file of the assignment, folders expanded, sorted and without repeats."""
        return sorted({f for e in self.entries for f in e.files()})

    def entry(self, case_path) -> Entry | None:
        """The entry that scores a case: the last one covering it (later entries override earlier ones)."""
        target = Path(case_path).resolve()
        for e in reversed(self.entries):
            if target in e.files():
                return e
        return None

    def rule(self, case_path, quantity: str) -> tuple[float, str] | None:
        """(weight, visibility) of a quantity of a case, or None when it does not count."""
        e = self.entry(case_path)
        if e is None or not e.counts(quantity):
            return None
        return e.weight, e.visibility


def default_assignment(case_paths) -> Assignment:
    """Every quantity of every given case (files or folders) at weight 1, visible."""
    entries = []
    for p in case_paths:
        p = Path(p).resolve()
        entries.append(Entry(p, None, DEFAULT_WEIGHT, DEFAULT_VISIBILITY, 0, _expand(p)))
    return Assignment(None, "", tuple(entries))


# ---------------------------------------------------------------- patterns


@lru_cache(maxsize=1024)
def _regex(pattern):
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def matches(pattern: str, quantity: str) -> bool:
    """Whether a quantity pattern matches a whole quantity name (only * and ? are wildcards)."""
    return _regex(pattern).fullmatch(quantity) is not None


def _expand(path):
    path = Path(path)
    if path.is_dir():
        return tuple(sorted({f.resolve() for f in path.rglob("*.yaml") if f.is_file()}))
    return (path.resolve(),)


# ---------------------------------------------------------------- messages


def _locate(node, location):
    for key in location:
        in_mapping = isinstance(node.value, dict) and key in node.value
        in_list = isinstance(node.value, list) and isinstance(key, int) and key < len(node.value)
        if not (in_mapping or in_list):
            break
        node = node.value[key]
    return node


def _label(location):
    """['cases', 0, 'weight'] → 'weight'; ['cases', 0] → 'cases[0]'; ['allow_imports', 1] → 'allow_imports[1]'."""
    if not location:
        return "the assignment"
    i = len(location) - 1
    while i > 0 and isinstance(location[i], int):
        i -= 1
    return str(location[i]) + "".join(f"[{k}]" for k in location[i + 1 :])


def _field(location):
    names = [k for k in location if isinstance(k, str)]
    if location and isinstance(location[-1], int) and names and names[-1] == "cases":
        return "entry"
    return names[-1] if names else ""


def _number_problem(path, node, name):
    """The problem of a number outside its limits (or not finite), or None."""
    low, exclusive, high, allowed = LIMITS[name]
    v = node.value.value if isinstance(node.value, Number) else None
    ok = (
        v is not None
        and math.isfinite(v)
        and (v > low if exclusive else v >= low)
        and (high is None or v <= high)
        and (name != "memory_mb" or v == int(v))
    )
    return None if ok else CaseError(path, node.line, node.col, f"{name} must be {allowed}, not {_describe(node)}")


def _import_problem(path, node, label):
    name = node.value
    if name.lower() in FORBIDDEN_IMPORTS:
        return CaseError(
            path,
            node.line,
            node.col,
            f"{label} {name!r}: the reference implementation cannot be "
            f"allowed (refimpl and oracle compute the expected values)",
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or keyword.iskeyword(name):
        return CaseError(
            path,
            node.line,
            node.col,
            f"{label} {name!r} is not a package name: give the top-level package as a Python identifier, such as scipy",
        )
    return None


def _schema_errors(root, path, error):
    """CaseErrors for one schema error, at the position of what is wrong."""
    location = list(error.absolute_path)
    node = _locate(root, location)
    label, name, kind = _label(location), _field(location), error.validator

    def at(n, message):
        return CaseError(path, n.line, n.col, message)

    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed), key=lambda k: (node.keys or {}).get(k, (0, 0)))
        where = "the assignment" if not location else ("defaults" if name == "defaults" else label)
        out = []
        for key in extra:
            line, col = (node.keys or {}).get(key, (node.line, node.col))
            out.append(
                CaseError(
                    path,
                    line,
                    col,
                    f"unknown key {key!r} in {where}{suggest(key, allowed)} (allowed: {', '.join(allowed)})",
                )
            )
        return out
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        if not location:
            return [
                at(
                    node,
                    "the assignment has no 'cases': list the graded case files or folders, "
                    "e.g. cases: [{path: cases/001_sigmoid_net.yaml}]",
                )
            ]
        return [at(node, f"{label} has no {missing[0]!r} (the case file or folder, relative to the assignment file)")]
    if name in LIMITS and kind in ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [_number_problem(path, node, name)]
    if name == "visibility":
        word = node.value
        if isinstance(word, str):
            return [
                at(
                    node,
                    f"unknown visibility {word!r}{suggest(word, VISIBILITIES)} (allowed: {', '.join(VISIBILITIES)})",
                )
            ]
        return [at(node, f"visibility must be one of {', '.join(VISIBILITIES)}, not {_describe(node)}")]
    if kind == "type":
        if name == "entry":
            hint = _HINTS["entry"]
        elif name in _HINTS and not isinstance(location[-1], int):
            hint = _HINTS[name]
        else:
            hint = {"string": "text", "number": "a number", "array": "a list", "object": "a mapping"}.get(
                error.validator_value, str(error.validator_value)
            )
        return [at(node, f"{label} must be {hint}, not {_describe(node)}")]
    if kind == "minItems":
        if name == "cases":
            return [at(node, "cases is empty: list at least one case file or folder")]
        return [at(node, f"{label} is empty: omit it to count every quantity of the case")]
    if kind == "minLength":
        what = "a case file or folder" if name == "path" else "a pattern such as delta[*]"
        return [at(node, f"{label} is empty: give {what}")]
    if kind in ("pattern", "not") and name == "allow_imports":
        return [_import_problem(path, node, label)]
    return [at(node, f"{label}: {error.message}")]  # pragma: no cover - every keyword of the schema is handled


@lru_cache(maxsize=1)
def validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def schema_problems(root, path) -> list[CaseError]:
    """All schema problems of a parsed assignment, in file order."""
    problems = []
    for error in validator().iter_errors(root.plain()):
        problems.extend(_schema_errors(root, path, error))
    unique = {(p.line, p.col, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.line, p.col))


# ---------------------------------------------------------------- loading


def _parse(path):
    """The assignment's root node, or a CaseError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(path, 1, 1, f"cannot read the file: {exc}") from None
    try:
        root = load(text, path)
    except CaseError as exc:
        message = exc.message.replace("in case files", "in assignment files")
        if message.startswith("the file is empty"):
            message = "the file is empty; an assignment is a YAML mapping with at least 'cases'"
        raise CaseError(path, exc.line, exc.col, message) from None
    if not isinstance(root.value, dict):
        raise CaseError(
            path,
            root.line,
            root.col,
            f"an assignment file must be a mapping (title, cases, defaults, "
            f"allow_imports, timeout, memory_mb), not {_describe(root)}",
        )
    return root


def _entry(path, node, folder, defaults, loaded, problems):
    """One item of ``cases`` → Entry; problems are appended (None when the entry is unusable)."""
    f = node.value
    written = f["path"]
    target = folder / written.value
    shown = os.path.normpath(target)
    if not target.exists():
        siblings = [c.name for c in target.parent.iterdir()] if target.parent.is_dir() else []
        problems.append(
            CaseError(
                path,
                written.line,
                written.col,
                f"case path {written.value!r} does not exist{suggest(target.name, siblings)} "
                f"(looked for {shown}; paths are relative to the assignment file)",
            )
        )
        return None
    if target.is_dir():
        files = _expand(target)
        if not files:
            problems.append(
                CaseError(path, written.line, written.col, f"folder {written.value!r} holds no .yaml case files")
            )
            return None
    elif target.suffix != ".yaml":
        hint = ": rename it to .yaml" if target.suffix == ".yml" else ""
        problems.append(
            CaseError(
                path,
                written.line,
                written.col,
                f"case path {written.value!r} is neither a .yaml case file nor a folder{hint}",
            )
        )
        return None
    else:
        files = (target.resolve(),)
    quantities, broken = {}, False
    for file in files:
        if file not in loaded:
            try:
                loaded[file] = load_case(file)
            except CaseError as exc:
                loaded[file] = exc
        case = loaded[file]
        if isinstance(case, CaseError):
            which = (
                repr(written.value)
                if file == files[0] and len(files) == 1
                else f"{os.path.relpath(file, target.resolve())!r} in {written.value!r}"
            )
            problems.append(CaseError(path, written.line, written.col, f"case {which} is not valid: {case}"))
            broken = True
        else:
            quantities.update(dict.fromkeys(case.quantities))
    patterns = None
    if "quantities" in f:
        patterns = tuple(p.value for p in f["quantities"].value)
        for p in f["quantities"].value if not broken else ():
            if not any(matches(p.value, q) for q in quantities):
                names = list(quantities)
                listing = ", ".join(names[:30]) + (", …" if len(names) > 30 else "")
                if re.search(r"\[[^\]*]*[-,:][^\]*]*\]", p.value):  # a character class or a list, as in a regex
                    star = re.sub(r"\[[^\]]*\]", "[*]", p.value)
                    hint = f": [ ] are literal and only * and ? are wildcards, write {star!r} or one pattern per name"
                else:
                    hint = suggest(p.value, names)
                where = f"the cases in {written.value!r}" if target.is_dir() else repr(written.value)
                problems.append(
                    CaseError(
                        path,
                        p.line,
                        p.col,
                        f"pattern {p.value!r} matches no quantity of {where}{hint} (it has: {listing})",
                    )
                )
    weight, visibility = defaults
    if "weight" in f:
        problem = _number_problem(path, f["weight"], "weight")
        if problem:
            problems.append(problem)
        weight = f["weight"].value.value
    if "visibility" in f:
        visibility = f["visibility"].value
    return Entry(target.resolve(), patterns, float(weight), visibility, node.line, files)


def _load(path):
    """(Assignment or None, every problem in file order)."""
    path = Path(path)
    try:
        root = _parse(path)
    except CaseError as exc:
        return None, [exc]
    problems = schema_problems(root, path)
    if problems:
        return None, problems
    fields = root.value
    weight, visibility = DEFAULT_WEIGHT, DEFAULT_VISIBILITY
    if "defaults" in fields:
        d = fields["defaults"].value
        if "weight" in d:
            problem = _number_problem(path, d["weight"], "weight")
            if problem:
                problems.append(problem)
            weight = d["weight"].value.value
        visibility = d["visibility"].value if "visibility" in d else visibility
    limits = {}
    for name in ("timeout", "memory_mb"):
        if name in fields:
            problem = _number_problem(path, fields[name], name)
            if problem:
                problems.append(problem)
            limits[name] = fields[name].value.value
    imports = []
    for i, node in enumerate(fields.get("allow_imports").value if "allow_imports" in fields else []):
        problem = _import_problem(path, node, f"allow_imports[{i}]")
        if problem:
            problems.append(problem)
        imports.append(node.value)
    loaded, entries = {}, []
    for node in fields["cases"].value:
        entry = _entry(path, node, path.parent, (weight, visibility), loaded, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        return None, sorted(problems, key=lambda p: (p.line, p.col))
    title = fields["title"].value if "title" in fields else path.stem
    memory = limits.get("memory_mb")
    return Assignment(
        path,
        title,
        tuple(entries),
        tuple(dict.fromkeys(imports)),
        limits.get("timeout"),
        None if memory is None else int(memory),
    ), []


def load_assignment(path) -> Assignment:
    """Read and check an assignment file; CaseError (the first problem in file order) on any problem."""
    assignment, problems = _load(path)
    if problems:
        raise problems[0]
    return assignment


def assignment_problems(path) -> list[CaseError]:
    """Every problem of an assignment file, in file order (empty when it is valid)."""
    return _load(path)[1]


def main_validate(paths) -> int:
    """``assignment validate FILE…``: each problem as file:line:col: message on stderr; 2 on problems, else 0."""
    count = 0
    for p in paths:
        if not Path(p).is_file():
            problems = [CaseError(p, 1, 1, "no such file" if not Path(p).exists() else "not a file")]
        else:
            problems = assignment_problems(p)
        for problem in problems:
            print(problem, file=sys.stderr)
        count += len(problems)
    print(
        f"{len(paths)} assignment file{'s' * (len(paths) != 1)} checked, {count} problem{'s' * (count != 1)}",
        file=sys.stderr,
    )
    return 2 if count else 0
