"""The JSON Schema and the loader agree; validate reports every problem as file:line:col."""

import json
import re
from pathlib import Path

import jsonschema
import pytest

from oracle.verdict.cases import discover, load_case
from oracle.cli import main
from oracle.verdict.errors import CaseError
from oracle.authoring.validate import SCHEMA_LINE, SCHEMA_PATH, schema_problems, validate_file
from oracle.verdict.yamlsafe import load

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = discover([ROOT / "cases"])
MALFORMED = sorted((Path(__file__).parent / "fixtures" / "malformed").glob("*.yaml"))


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_bundled_case_names_the_schema_and_validates(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(SCHEMA_LINE)
    schema = (path.parent / first[len(SCHEMA_LINE) :]).resolve()
    assert schema == SCHEMA_PATH.resolve()
    assert validate_file(path) == []
    load_case(path)


def layer(path):
    second = path.read_text(encoding="utf-8").splitlines()[1]
    m = re.match(r"# schema: (rejects|parse|semantic)", second)
    assert m, f"{path.name}: the second line says which layer rejects it"
    return m.group(1)


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_every_malformed_fixture_is_rejected_by_schema_and_loader(path):
    with pytest.raises(CaseError):
        load_case(path)
    problems = validate_file(path)
    assert problems and all(str(p).startswith(f"{path}:") for p in problems)
    kind = layer(path)
    if kind == "parse":
        with pytest.raises(CaseError):
            load(path.read_text(encoding="utf-8"), path)
    else:
        root = load(path.read_text(encoding="utf-8"), path)
        found = schema_problems(root, path)
        if kind == "rejects":
            assert found, f"the schema accepts {path.name}"
        else:
            assert not found, f"{path.name} is marked semantic but the schema rejects it: {found}"


def test_validate_reports_all_problems_of_a_file_at_once(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "title: t\nsource: {document: d, heading: h}\nkind: network\n"
        "layers:\n  - {W: [[1]], activation: sigmoidd}\n"
        "loss: {name: mse, factor: 1, reduction: avg}\nx: [1]\ny: [oops]\ncolour: red\n",
        encoding="utf-8",
    )
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4
    assert any(f"{bad}:5:28: layers/0/activation: 'sigmoidd' is not allowed, did you mean 'sigmoid'?" in o for o in out)
    assert any(f"{bad}:6:41: loss/reduction: 'avg' is not allowed" in o for o in out)
    assert any(f"{bad}:8:5: y/0: 'oops' is not of type 'number'" in o for o in out)
    assert any(f"{bad}:9:1: unknown field 'colour'" in o for o in out)


def test_validate_good_files_exit_0_and_run_nothing(capsys):
    assert main(["validate", str(ROOT / "cases")]) == 0
    assert "0 problems" in capsys.readouterr().err


def test_validate_a_missing_path_exits_2(capsys):
    assert main(["validate", "nope.yaml"]) == 2
    assert "nope.yaml:1:1: no such file or folder" in capsys.readouterr().out
