"""A corpus of hand-written student submissions, graded end to end with ``grade``.

tests/fixtures/students/correct/ holds correct solutions in several styles (loops, vectorised,
Nielsen's backprop shape, the per-layer shape, the row convention, OOP); tests/fixtures/students/
mistaken/ holds plausible submissions with one realistic mistake each. Every file ends its module
docstring with

    expect-mistakes: NAME1 | NAME2        (the catalogue names the grader may give it)
    expect-mistakes: none                 (not in the catalogue: the grader must name nothing)

Correct solutions must get full marks and no diagnosis; mistaken ones must lose marks, have a first
divergence, and be diagnosed only with the names they allow.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

from oracle.cli import main

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"
STUDENTS = Path(__file__).parent / "fixtures" / "students"
FOLDERS = ("correct", "mistaken")

# the catalogue's names: today's 15 and the 13 being added
CATALOGUE_NAMES = frozenset(
    {
        "sign of ∇_a C flipped",
        "f'(z) left out of δ^L",
        "f'(z) left out of a hidden δ",
        "derivative taken at a instead of z",
        "transpose missing in (W^{l+1})ᵀ δ^{l+1}",
        "outer product in BP4 in the wrong order",
        "hidden δ computed with already-updated weights",
        "1/N of the mini-batch mean forgotten",
        "bias gradient not summed over the batch",
        "bias gradient left out",
        "½ of the squared error dropped",
        "½ of the squared error doubled",
        "softmax differentiated as if elementwise",
        "ReLU'(0) taken as 1",
        "update added instead of subtracted",
        "BP4 with a^l instead of a^{l−1}",
        "tanh' taken as 1 − tanh",
        "σ' taken as σ(1 + σ)",
        "softmax + cross-entropy δ^L = y − a",
        "softmax without the max shift",
        "backward loop skips layer 1",
        "δ averaged over the batch before the outer product",
        "bias gradient a mean where the loss is a sum",
        "leaky ReLU's α on the positive side",
        "BP2 with f' of layer l+1",
        "update mutating W in place",
        "mean squared error's gradient without 1/K",
        "sigmoid + BCE without clamping",
    }
)
ALLOWED_IMPORTS = {
    "numpy",
    "math",
    "itertools",
    "functools",
    "collections",
    "copy",
    "dataclasses",
    "typing",
    "__future__",
}
MARKER = "expect-mistakes:"


def submissions(folder):
    return sorted((STUDENTS / folder).glob("*.py"))


def docstring(path):
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def allowed_mistakes(path):
    """The names the last line of the module docstring allows: a frozenset, empty for 'none'."""
    last = docstring(path).strip().splitlines()[-1].strip()
    if not last.startswith(MARKER):
        raise ValueError(f"{path.name}: the docstring's last line is not '{MARKER} ...': {last!r}")
    text = last[len(MARKER) :].strip()
    if text == "none":
        return frozenset()
    return frozenset(name.strip() for name in text.split("|"))


def split_names(mistake):
    """A diagnosis as a set of names (A or B, 'A' or 'B', when a case cannot tell them apart)."""
    if mistake is None:
        return set()
    if isinstance(mistake, (list, tuple)):
        return set(mistake)
    if mistake in known_names():
        return {mistake}
    return {part.strip("'") for part in re.split(r"'? or '?", mistake)}


@functools.lru_cache(maxsize=1)
def known_names():
    """The names above and whatever the grader's catalogue calls its mistakes."""
    from oracle.student.mistakes import CATALOGUE

    return CATALOGUE_NAMES | frozenset(CATALOGUE)


def named_in_text(text):
    """Catalogue names a text diagnoses after "matches '" (whole names: they contain apostrophes and
    " or "-joined lists are quoted as one; no name is part of another)."""
    found = set()
    for line in text.splitlines():
        if "matches '" in line:
            tail = line[line.index("matches '") + len("matches ") :]
            found |= {name for name in known_names() if name in tail}
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """results.json of every submission of a folder, graded once per folder: {file name: data}."""
    cache = {}

    def get(folder):
        if folder not in cache:
            out = tmp_path_factory.mktemp(f"graded-{folder}")
            code = main(
                ["grade", str(STUDENTS / folder), "--results-dir", str(out), "--jobs", "2", "--cases", str(CASES)]
            )
            assert code == 0
            cache[folder] = {
                p.name: json.loads((out / p.stem / "results.json").read_text(encoding="utf-8"))
                for p in submissions(folder)
            }
        return cache[folder]

    return get


def extra_data(data, where):
    extra = data.get("extra_data")
    assert isinstance(extra, dict), f"{where}: results.json has no extra_data"
    return extra


def test_the_corpus_is_complete_and_well_formed():
    correct, mistaken = submissions("correct"), submissions("mistaken")
    assert len(correct) >= 5 and len(mistaken) >= 22
    assert all(allowed_mistakes(p) == frozenset() for p in correct)
    for path in correct + mistaken:
        assert allowed_mistakes(path) <= CATALOGUE_NAMES, path.name
    assert sum(not allowed_mistakes(p) for p in mistaken) >= 8  # outside the catalogue, or none
    assert not [(a, b) for a in known_names() for b in known_names() if a != b and a in b]  # named_in_text
    for path in correct + mistaken:  # numpy and the standard library only
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert modules <= ALLOWED_IMPORTS, (path.name, modules - ALLOWED_IMPORTS)


@pytest.mark.parametrize("path", submissions("correct"), ids=lambda p: p.stem)
def test_a_correct_solution_gets_full_marks_and_no_diagnosis(graded, path):
    data = graded("correct")[path.name]
    assert data["score"] == data["max_score"] > 0, [t["name"] for t in data["tests"] if t["score"] < t["max_score"]]
    extra = extra_data(data, path.name)
    assert extra["isolation"] in ("bubblewrap", "process")
    assert extra["first_divergence"] is None
    assert extra["mistake"] is None
    assert extra["forbidden_imports"] == []
    for test in data["tests"]:
        assert extra_data(test, test["name"])["mistakes"] == [], test["name"]
    texts = [data.get("output", "")] + [t["output"] for t in data["tests"]]
    assert not any("matches '" in text for text in texts)


@pytest.mark.parametrize("path", submissions("mistaken"), ids=lambda p: p.stem)
def test_a_mistaken_submission_loses_marks_and_is_diagnosed_honestly(graded, path):
    allowed = allowed_mistakes(path)
    data = graded("mistaken")[path.name]
    assert data["score"] < data["max_score"]
    extra = extra_data(data, path.name)
    first = extra["first_divergence"]
    assert first is not None and {"case", "quantity", "equation"} <= set(first)
    assert split_names(extra["mistake"]) <= allowed, f"top-level mistake {extra['mistake']!r}, allowed {allowed}"
    assert extra["forbidden_imports"] == []
    for test in data["tests"]:
        named = set(extra_data(test, test["name"])["mistakes"])
        assert named <= allowed, f"{test['name']} names {named - allowed}, allowed {set(allowed) or 'none'}"
    for text in [data.get("output", "")] + [t["output"] for t in data["tests"]]:
        assert named_in_text(text) <= allowed, f"the output names {named_in_text(text) - allowed}: {text[:300]}"


def test_most_catalogued_mistakes_are_named(graded):
    """The diagnosis is useful, not only silent: at least half of the catalogued mistakes get their name."""
    results = graded("mistaken")
    catalogued = [p for p in submissions("mistaken") if allowed_mistakes(p)]
    named = [
        p.stem for p in catalogued if split_names(extra_data(results[p.name], p.name)["mistake"]) & allowed_mistakes(p)
    ]
    assert 2 * len(named) >= len(catalogued), f"named at top level: {named}"
