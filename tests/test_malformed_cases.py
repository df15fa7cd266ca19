"""Every malformed case file gives one clear `file:line:col: message`, never a traceback.

Each fixture in tests/fixtures/malformed/ states on its first line the
position and the message (a regular expression) it must produce.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from oracle.verdict.cases import load_case
from oracle.verdict.errors import CaseError

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "malformed").glob("*.yaml"))


def expectation(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.fullmatch(r"# expect: (\d+):(\d+): (.*)", first)
    assert m, f"{path.name} must start with '# expect: LINE:COL: MESSAGE'"
    return int(m.group(1)), int(m.group(2)), m.group(3)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_loader_names_file_line_column_and_problem(path):
    line, col, pattern = expectation(path)
    with pytest.raises(CaseError) as info:
        load_case(path)
    err = info.value
    assert re.search(pattern, err.message), err.message
    assert (err.line, err.col) == (line, col), str(err)
    assert str(err).startswith(f"{path}:{line}:{col}: ")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_report_on_malformed_files_exits_2_with_one_line_each_and_no_traceback():
    r = run("-m", "oracle", "report", *map(str, FIXTURES))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(FIXTURES)
    for path, line in zip(FIXTURES, lines):
        assert line.startswith(f"{path}:"), line


def test_report_on_a_missing_path_exits_2():
    r = run("-m", "oracle", "report", "no/such/case.yaml")
    assert r.returncode == 2 and "no/such/case.yaml:1:1: no such file or folder" in r.stderr


def test_pytest_shows_the_message_of_a_malformed_case(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    bad = cases / "bad.yaml"
    bad.write_text((FIXTURES[0].parent / "unknown_activation.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    r = run("-m", "pytest", str(bad), "-p", "no:cacheprovider", "-q", cwd=tmp_path)
    assert r.returncode == 1
    assert "unknown activation 'sigmoidd', did you mean 'sigmoid'?" in r.stdout
    assert "Traceback" not in r.stdout


def test_case_files_are_never_modified_by_a_run():
    before = {p: p.read_bytes() for p in FIXTURES}
    run("-m", "oracle", "report", *map(str, FIXTURES))
    assert {p: p.read_bytes() for p in FIXTURES} == before
