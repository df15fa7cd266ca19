"""Implementations under test: isolated, adapted, graded, diagnosed; results for graders."""

import json
import shutil
import time
from pathlib import Path

import pytest

from oracle.cli import main

ROOT = Path(__file__).resolve().parents[1]
IMPLS = Path(__file__).parent / "fixtures" / "impls"
CASES = ROOT / "cases"
FEW = [
    str(CASES / n)
    for n in (
        "001_sigmoid_net.yaml",
        "001_ne3.yaml",
        "001_backprop_2_2_1.yaml",
        "001_circuit.yaml",
        "004_minibatch_row.yaml",
    )
]


def fixture(tmp_path, name):
    """A fixture of tests/fixtures/impls as a submission: a package holding it and the correct solution it
    borrows the functions it does not break from (the reference itself may not be imported)."""
    text = (IMPLS / name).read_text(encoding="utf-8")
    if "correct_solution" not in text:
        return IMPLS / name
    pkg = tmp_path / "subs" / Path(name).stem
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(text, encoding="utf-8")
    shutil.copy(IMPLS / "correct_solution.py", pkg / "correct_solution.py")
    return pkg


def student_copy(tmp_path, name, old, new):
    """The correct solution with one line changed, as a student's mistake."""
    text = (IMPLS / "correct_solution.py").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / f"{name}.py"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def report(impl, *extra, cases=FEW, tmp_path=None):
    args = ["report", "--impl", str(impl), *extra]
    for c in cases:
        args += ["--cases", c]
    return main(args)


def results(tmp_path, impl, cases=FEW, *extra):
    out = tmp_path / "results.json"
    code = report(impl, "--results-json", str(out), *extra, cases=cases)
    return code, json.loads(out.read_text(encoding="utf-8"))


def by_name(data):
    return {t["name"]: t for t in data["tests"]}


def test_the_template_filled_with_a_correct_solution_passes_every_case(tmp_path, capsys):
    code, data = results(tmp_path, IMPLS / "correct_solution.py", [str(CASES)])
    assert code == 0
    assert data["score"] == data["max_score"] > 300
    out = capsys.readouterr().out
    assert "first problem: —" in out and "matches '" not in out


def test_the_template_itself_is_not_implemented_everywhere(tmp_path):
    template = tmp_path / "student.py"
    assert main(["template", "-o", str(template)]) == 0
    assert main(["template", "-o", str(template)]) == 2  # never overwrites
    code, data = results(tmp_path, template)
    assert code == 0 and data["score"] == data["max_score"] == 0  # not provided: counts nothing
    assert all(t["output"].startswith("not implemented") for t in data["tests"])


def test_a_raising_implementation_fails_with_the_exception_and_the_run_goes_on(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "raises.py"))
    assert code == 1
    tests = by_name(data)
    assert "ZeroDivisionError" in tests["001_sigmoid_net::delta[1]"]["output"]
    assert tests["001_sigmoid_net::z[1]"]["score"] == 1.0  # forward still graded
    assert tests["001_circuit::df/dx"]["score"] == 1.0  # and the next cases


def test_a_hanging_implementation_is_stopped_within_the_timeout(tmp_path):
    start = time.monotonic()
    code, data = results(tmp_path, fixture(tmp_path, "hangs.py"), FEW[:2], "--impl-timeout", "1")
    elapsed = time.monotonic() - start
    assert code == 1
    tests = by_name(data)
    assert "timed out after 1 s" in tests["001_sigmoid_net::z[1]"]["output"]
    assert tests["001_sigmoid_net::delta[1]"]["score"] == 1.0  # backward still works
    assert elapsed < 30, elapsed  # 2 cases × 1 s, not forever


def test_a_memory_hungry_implementation_hits_the_memory_limit(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "memory_hungry.py"), FEW[:1], "--impl-memory", "600")
    assert code == 1
    assert "MemoryError" in by_name(data)["001_sigmoid_net::dC/dW[1]"]["output"]


def test_nan_is_a_failed_check(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "returns_nan.py"), FEW[:1])
    assert code == 1
    assert "not finite" in by_name(data)["001_sigmoid_net::dC/dW[2]"]["output"]


def test_a_wrong_shape_is_a_failed_check(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "wrong_shape.py"), FEW[:1])
    assert code == 1
    assert "your dC/dW[2] has shape 2×1 where the reference" in by_name(data)["001_sigmoid_net::dC/dW[2]"]["output"]


def test_a_wrong_type_is_a_failed_check(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "wrong_type.py"), FEW[:1])
    tests = by_name(data)
    assert code == 1
    assert "forward returned str, expected a pair" in tests["001_sigmoid_net::z[1]"]["output"]
    assert "dict keyed by the layer number" in tests["001_sigmoid_net::delta[1]"]["output"]


def test_an_input_mutating_implementation_is_reported(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "mutates_input.py"), FEW[:1])
    assert code == 1
    assert "forward modified its inputs in place (W[1], W[2])" in by_name(data)["001_sigmoid_net::z[1]"]["output"]


def test_a_crashing_implementation_is_restarted_for_the_next_call(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "crashes.py"), FEW[:2])
    tests = by_name(data)
    assert code == 1
    assert "SIGSEGV" in tests["001_sigmoid_net::delta[1]"]["output"]
    assert tests["001_ne3::z[2]"]["score"] == 1.0


def test_printing_does_not_disturb_grading(tmp_path):
    code, data = results(tmp_path, fixture(tmp_path, "chatty.py"), FEW[:2])
    assert code == 0 and data["score"] == data["max_score"]


def test_not_implemented_quantities_are_skipped_not_crashed(tmp_path):
    code, data = results(
        tmp_path,
        fixture(tmp_path, "partial.py"),
        [str(CASES / "001_softmax_table.yaml"), str(CASES / "001_sigmoid_net.yaml")],
    )
    tests = by_name(data)
    assert code == 0
    assert tests["001_softmax_table::a"]["score"] == 1.0
    assert tests["001_sigmoid_net::z[1]"]["output"].startswith("not implemented")


@pytest.mark.parametrize("impl", ["backprop_style.py", "layer_style.py"])
def test_the_two_common_student_shapes_are_adapted(tmp_path, impl):
    code, data = results(
        tmp_path,
        fixture(tmp_path, impl),
        [str(CASES / "001_sigmoid_net.yaml"), str(CASES / "001_minibatch_update.yaml")],
    )
    tests = by_name(data)
    assert code == 0
    for case in ("001_sigmoid_net", "001_minibatch_update"):
        assert tests[f"{case}::dC/dW[1]"]["score"] == 1.0
        assert tests[f"{case}::dC/db[2]"]["score"] == 1.0


def test_a_correct_implementation_is_never_diagnosed(tmp_path):
    code, data = results(tmp_path, IMPLS / "correct_solution.py", [str(CASES)])
    assert code == 0
    assert not any("matches '" in t["output"] for t in data["tests"])


def test_pytest_impl_runs_every_case_against_the_implementation(pytester):
    shutil.copytree(CASES, pytester.path / "cases")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--impl",
        str(
            student_copy(
                pytester.path,
                "no_transpose",
                "grad_a[l] = Wc[l + 1].T @ delta[l + 1]",
                "grad_a[l] = Wc[l + 1] @ delta[l + 1]",
            )
        ),
        "--cases",
        "cases/001_ne3.yaml",
        "--results-json",
        "r.json",
    )
    result.assert_outcomes(failed=1, passed=11, xfailed=3)
    text = result.stdout.str()
    assert "BP2: dC/da[1] matches 'transpose missing in (W^{l+1})ᵀ δ^{l+1}'" in text
    assert "implementation under test" in text and "reproduce with: pytest" in text
    data = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert data["max_score"] == 15 and data["score"] == 11
    assert {"name", "score", "max_score", "output", "visibility"} <= set(data["tests"][0])


def test_grading_a_folder_one_row_each_with_a_hang_and_a_case_file_attack(tmp_path, capsys):
    cases = tmp_path / "cases"
    shutil.copytree(CASES, cases)
    subs = tmp_path / "submissions"
    subs.mkdir()
    shutil.copy(IMPLS / "correct_solution.py", subs / "alice.py")
    shutil.copytree(fixture(tmp_path, "hangs.py"), subs / "bob")
    shutil.copy(student_copy(tmp_path, "carol", "np.asarray(w) - eta", "np.asarray(w) + eta"), subs / "carol.py")
    (subs / "mallory.py").write_text(
        "from refimpl import *\n"
        "def forward(W, b, f, x, convention='column'):\n"
        f"    for p in {sorted(map(str, cases.glob('*.yaml')))!r}:\n"
        "        try:\n"
        "            open(p, 'w').write('kind: pwned')\n"
        "        except OSError:\n"
        "            pass\n"
        "    import refimpl\n"
        "    return refimpl.forward(W, b, f, x, convention)\n",
        encoding="utf-8",
    )
    pkg = subs / "dave"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from refimpl import *\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in cases.glob("*.yaml")}
    few = [str(cases / n) for n in ("001_sigmoid_net.yaml", "001_backprop_2_2_1.yaml", "001_circuit.yaml")]
    args = ["grade", str(subs), "--results-dir", str(tmp_path / "out"), "--impl-timeout", "1", "--jobs", "2"]
    for c in few:
        args += ["--cases", c]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert {p: p.read_bytes() for p in cases.glob("*.yaml")} == before  # nothing changed
    lines = out.splitlines()
    assert lines[0].startswith("isolation: ")
    rows = {line.split()[0]: line for line in lines[3:]}
    assert set(rows) == {"alice", "bob", "carol", "dave", "mallory"}
    assert "3/3" in rows["alice"]
    assert "timed out" in rows["bob"]
    assert "update added instead of subtracted" in rows["carol"]
    for cheat in ("dave", "mallory"):
        assert "uses the reference implementation: not allowed" in rows[cheat]
        data = json.loads((tmp_path / "out" / cheat / "results.json").read_text(encoding="utf-8"))
        assert data["score"] == 0 and data["extra_data"]["forbidden_imports"]
    for name in rows:
        data = json.loads((tmp_path / "out" / name / "results.json").read_text(encoding="utf-8"))
        assert data["tests"] and all(t["max_score"] == 1.0 for t in data["tests"])
    alice = json.loads((tmp_path / "out" / "alice" / "results.json").read_text(encoding="utf-8"))
    assert alice["score"] == alice["max_score"] and alice["extra_data"]["mistake"] is None
