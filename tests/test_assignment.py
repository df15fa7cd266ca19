"""Assignment files: scoring rules, folder expansion, and one clear `file:line:col: message` per problem.

Each fixture in tests/fixtures/assignments/malformed/ states on its first line
the position and the message (a regular expression) it must produce.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from oracle.verdict.errors import CaseError
from oracle.student.assignment import (
    LIMITS,
    SCHEMA_PATH,
    VISIBILITIES,
    Assignment,
    Entry,
    assignment_problems,
    default_assignment,
    load_assignment,
    main_validate,
    matches,
)

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "assignments"
MALFORMED = sorted((FIXTURES / "malformed").glob("*.yaml"))
CASES = (HERE.parent / "cases").resolve()
VALID = FIXTURES / "homework2.yaml"


def expectation(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.fullmatch(r"# expect: (\d+):(\d+): (.*)", first)
    assert m, f"{path.name} must start with '# expect: LINE:COL: MESSAGE'"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_there_are_enough_malformed_fixtures():
    assert len(MALFORMED) >= 15


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_loader_names_file_line_column_and_problem(path):
    line, col, pattern = expectation(path)
    with pytest.raises(CaseError) as info:
        load_assignment(path)
    err = info.value
    assert re.search(pattern, err.message), err.message
    assert (err.line, err.col) == (line, col), str(err)
    assert str(err).startswith(f"{path}:{line}:{col}: ")


# ---------------------------------------------------------------- the valid assignment


def test_valid_assignment_loads_every_field():
    a = load_assignment(VALID)
    assert isinstance(a, Assignment)
    assert a.path == VALID and a.title == "Homework 2 — backpropagation"
    assert a.allow_imports == ("scipy",) and a.timeout == 5 and a.memory_mb == 512
    assert isinstance(a.memory_mb, int)
    assert [e.path for e in a.entries] == [
        CASES / "precision",
        CASES / "001_sigmoid_net.yaml",
        CASES / "001_ne3.yaml",
        CASES / "precision" / "sigmoid_saturation_float32.yaml",
    ]
    folder, sigmoid, ne3, override = a.entries
    assert (folder.patterns, folder.weight, folder.visibility, folder.line) == (None, 0.5, "after_published", 4)
    assert sigmoid.patterns == ("delta[*]", "dC/dW[*]", "dC/db[*]") and sigmoid.weight == 2.0
    assert (ne3.weight, ne3.visibility) == (1.0, "hidden")
    assert override.patterns == ("a", "f'(z)") and override.visibility == "after_due_date"
    assert assignment_problems(VALID) == []


def test_case_paths_expand_folders_sorted_without_repeats():
    a = load_assignment(VALID)
    precision = sorted((CASES / "precision").glob("*.yaml"))
    assert a.case_paths() == sorted([CASES / "001_ne3.yaml", CASES / "001_sigmoid_net.yaml", *precision])
    assert len(a.case_paths()) == len(set(a.case_paths()))


def test_rule_weights_patterns_and_visibility():
    a = load_assignment(VALID)
    net = CASES / "001_sigmoid_net.yaml"
    assert a.rule(net, "delta[1]") == (2.0, "visible")
    assert a.rule(net, "dC/dW[2]") == (2.0, "visible")
    assert a.rule(net, "z[1]") is None  # not among the patterns
    assert a.rule(net, "C") is None
    assert a.rule(str(net), "dC/db[1]") == (2.0, "visible")  # a str path works as well
    assert a.rule(CASES / "001_ne3.yaml", "z[1]") == (1.0, "hidden")  # no patterns: everything counts
    assert a.rule(CASES / "001_gradient_xy.yaml", "C") is None  # not in the assignment


def test_a_later_entry_overrides_an_earlier_one_for_the_same_case():
    a = load_assignment(VALID)
    other = CASES / "precision" / "sigmoid_saturation_float64.yaml"
    overridden = CASES / "precision" / "sigmoid_saturation_float32.yaml"
    assert a.rule(other, "one_minus_a") == (0.5, "after_published")  # from the folder entry
    assert a.rule(overridden, "a") == (1.0, "after_due_date")  # the later file entry: its defaults
    assert a.rule(overridden, "f'(z)") == (1.0, "after_due_date")
    assert a.rule(overridden, "one_minus_a") is None  # replaced, not merged with the folder's rule
    assert a.entry(overridden) is a.entries[-1]


def test_a_folder_after_a_file_overrides_the_file(tmp_path):
    folder = tmp_path / "hw" / "nested"
    folder.mkdir(parents=True)
    for name in ("001_ne3.yaml", "001_sigmoid_net.yaml"):
        shutil.copy(CASES / name, folder / name)
    (tmp_path / "hw" / "top.yaml").write_bytes((CASES / "001_relu_forward.yaml").read_bytes())
    (tmp_path / "hw" / "notes.txt").write_text("not a case", encoding="utf-8")
    spec = tmp_path / "assignment.yaml"
    spec.write_text(
        "cases:\n"
        "  - path: hw/nested/001_ne3.yaml\n    weight: 5\n"
        "  - path: hw\n    quantities: ['C']\n    visibility: hidden\n"
        "  - path: hw/nested/001_ne3.yaml\n    weight: 7\n",
        encoding="utf-8",
    )
    a = load_assignment(spec)
    assert a.title == "assignment"  # default: the file's name
    hw = (tmp_path / "hw").resolve()
    assert a.case_paths() == [hw / "nested" / "001_ne3.yaml", hw / "nested" / "001_sigmoid_net.yaml", hw / "top.yaml"]
    assert a.rule(hw / "nested" / "001_sigmoid_net.yaml", "C") == (1.0, "hidden")
    assert a.rule(hw / "nested" / "001_sigmoid_net.yaml", "z[1]") is None
    assert a.rule(hw / "top.yaml", "C") == (1.0, "hidden")
    assert a.rule(hw / "nested" / "001_ne3.yaml", "z[1]") == (7.0, "visible")  # the last entry wins
    spec.write_text(spec.read_text(encoding="utf-8").rsplit("  - path: hw/nested/001_ne3", 1)[0], encoding="utf-8")
    a = load_assignment(spec)
    assert a.rule(hw / "nested" / "001_ne3.yaml", "z[1]") is None  # now the folder entry is the last
    assert a.rule(hw / "nested" / "001_ne3.yaml", "C") == (1.0, "hidden")


def test_a_folder_pattern_needs_to_match_in_one_of_its_cases_only(tmp_path):
    spec = tmp_path / "a.yaml"
    spec.write_text(f"cases:\n  - path: {CASES / 'precision'}\n    quantities: ['W[1]*@2']\n", encoding="utf-8")
    a = load_assignment(spec)  # only sigmoid_net_float32_steps has more than one step
    steps = CASES / "precision" / "sigmoid_net_float32_steps.yaml"
    assert a.rule(steps, "W[1]'@2") == (1.0, "visible")
    assert a.rule(CASES / "precision" / "sigmoid_saturation_float64.yaml", "W[1]'") is None


def test_default_assignment_counts_everything_once():
    a = default_assignment([CASES / "001_ne3.yaml", CASES / "precision", str(CASES / "precision")])
    assert a.path is None and a.allow_imports == () and a.timeout is None and a.memory_mb is None
    assert a.case_paths() == sorted([CASES / "001_ne3.yaml", *(CASES / "precision").glob("*.yaml")])
    assert a.rule(CASES / "001_ne3.yaml", "anything") == (1.0, "visible")
    assert a.rule(CASES / "precision" / "sigmoid_saturation_float32.yaml", "C") == (1.0, "visible")
    assert a.rule(CASES / "001_sigmoid_net.yaml", "C") is None


def test_entry_without_expanded_cases_expands_its_folder():
    e = Entry(CASES / "precision", None, 1.0, "visible", 0)
    assert list(e.files()) == sorted((CASES / "precision").glob("*.yaml"))


# ---------------------------------------------------------------- patterns


@pytest.mark.parametrize(
    "pattern, name, expected",
    [
        ("delta[1]", "delta[1]", True),
        ("delta[1]", "delta1", False),  # brackets are literal, not a character class
        ("delta[*]", "delta[1]", True),
        ("delta[*]", "delta[2]", True),
        ("delta[*]", "delta[1]@2", False),  # the whole name must match
        ("delta[*]*", "delta[1]@2", True),
        ("delta[*]@*", "delta[1]", False),
        ("delta[?]", "delta[10]", False),
        ("delta[??]", "delta[10]", True),
        ("dC/d?[1]", "dC/dW[1]", True),
        ("f'(z[*])", "f'(z[2])", True),
        ("W[1]'", "W[1]'", True),
        ("*", "anything@3", True),
        ("C", "C@2", False),
        ("a.b", "axb", False),  # no regular expressions either
    ],
)
def test_patterns_match_literally_except_star_and_question_mark(pattern, name, expected):
    assert matches(pattern, name) is expected


# ---------------------------------------------------------------- schema and reporting


def test_schema_states_the_same_limits_and_visibilities_as_the_loader():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["visibility"]["enum"] == list(VISIBILITIES)
    assert schema["$defs"]["weight"]["exclusiveMinimum"] == LIMITS["weight"][0]
    assert schema["properties"]["timeout"]["exclusiveMinimum"] == LIMITS["timeout"][0]
    assert schema["properties"]["timeout"]["maximum"] == LIMITS["timeout"][2]
    assert schema["properties"]["memory_mb"]["minimum"] == LIMITS["memory_mb"][0]
    assert schema["properties"]["memory_mb"]["maximum"] == LIMITS["memory_mb"][2]
    assert sorted(schema["properties"]) == sorted(
        ["title", "cases", "defaults", "allow_imports", "timeout", "memory_mb"]
    )


def test_the_valid_fixture_passes_the_schema_alone():
    import jsonschema

    from oracle.verdict.yamlsafe import load

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    root = load(VALID.read_text(encoding="utf-8"), VALID)
    jsonschema.validate(root.plain(), schema, cls=jsonschema.Draft202012Validator)


def test_every_problem_is_reported_in_file_order(tmp_path):
    spec = tmp_path / "a.yaml"
    spec.write_text(
        "cases:\n  - path: missing.yaml\n    wieght: 2\n  - path: other.yaml\ntimeout: 0\ntimout: 5\n", encoding="utf-8"
    )
    problems = assignment_problems(spec)  # the schema's problems, all at once
    assert [(p.line, p.col) for p in problems] == [(3, 5), (5, 10), (6, 1)]
    assert "did you mean 'timeout'" in problems[2].message
    spec.write_text("cases:\n  - path: missing.yaml\n  - path: other.yaml\ntimeout: .nan\n", encoding="utf-8")
    problems = assignment_problems(spec)  # then the semantic ones, all at once
    assert [(p.line, p.col) for p in problems] == [(2, 11), (3, 11), (4, 10)]
    with pytest.raises(CaseError) as info:
        load_assignment(spec)
    assert (info.value.line, info.value.col) == (2, 11)


def test_main_validate_exit_codes_and_messages(capsys):
    assert main_validate([str(VALID)]) == 0
    assert "1 assignment file checked, 0 problems" in capsys.readouterr().err
    bad = [str(p) for p in MALFORMED[:3]]
    assert main_validate([str(VALID), *bad, "no/such/assignment.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    for path, line in zip(bad, err):
        assert re.match(rf"{re.escape(path)}:\d+:\d+: ", line), line
    assert "no/such/assignment.yaml:1:1: no such file" in err
    assert err[-1] == "5 assignment files checked, 4 problems"
    assert "Traceback" not in "\n".join(err)
