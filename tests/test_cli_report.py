"""The report command: table, JSON, exit status; statuses match, erratum, mismatch."""

import json
import textwrap
from pathlib import Path


from oracle.verdict.cases import load_case
from oracle.cli import DEFAULT_CASES, main

NET = """\
title: one sigmoid neuron
source: {document: test.txt, heading: a test}
kind: network
layers:
  - W: [[0.4, -0.2]]
    b: [0]
    activation: sigmoid
  - W: [[0.1]]
    b: [0]
    activation: sigmoid
loss: {name: squared_error, factor: 0.5, reduction: mean}
x: [0.1, 0.3]
y: [1]
gradient_descent: {eta: 0.01}
"""


def case(tmp_path, extra, name="c.yaml"):
    path = tmp_path / name
    path.write_text(NET + textwrap.dedent(extra), encoding="utf-8")
    return str(path)


def test_bundled_cases_report_exits_0_and_lists_errata(capsys):
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches" in out
    assert "Errata in the documents:" in out


def test_json_has_a_row_for_every_documented_number(capsys, tmp_path):
    out_file = tmp_path / "r.json"
    assert main(["report", "--format", "json", "-o", str(out_file)]) == 0
    data = json.loads(out_file.read_text(encoding="utf-8"))
    documented = {(r["case"], r["quantity"]) for r in data["rows"] if r["kind"] == "documented"}
    expected = 0
    for path in sorted(Path(DEFAULT_CASES).rglob("*.yaml")):
        c = load_case(path)
        for x in c.expect:
            if x.computed:
                continue
            expected += x.value.size
            if x.value.size == 1:
                assert (c.id, x.quantity) in documented
    assert len(documented) == expected
    assert data["summary"]["mismatch"] == 0
    assert data["errata"], "the seeds contain errata"
    for e in data["errata"]:
        assert e["note"] and e["document"] and e["heading"]


def test_matching_value_passes(tmp_path, capsys):
    assert main(["report", case(tmp_path, "expect:\n  a[2]: 0.5124\n")]) == 0
    assert "match" in capsys.readouterr().out


def test_undeclared_disagreement_fails_with_exit_1(tmp_path, capsys):
    assert main(["report", case(tmp_path, "expect:\n  a[2]: 0.5125\n")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "differs from every engine" in out


def test_half_a_unit_of_the_last_decimal_is_the_limit(tmp_path):
    # a² = 0.512372…: within ½·10⁻³ of 0.512 and ½·10⁻⁴ of 0.5124, but not ½·10⁻⁴ of 0.5123
    assert main(["report", case(tmp_path, "expect:\n  a[2]: 0.512\n")]) == 0
    assert main(["report", case(tmp_path, "expect:\n  a[2]: 0.5124\n")]) == 0
    assert main(["report", case(tmp_path, "expect:\n  a[2]: 0.5123\n")]) == 1


def test_allowance_widens_one_value_with_a_reason(tmp_path):
    extra = "expect:\n  a[2]:\n    value: 0.5122\n    allowance: 0.0002\n    reason: rounded input\n"
    assert main(["report", case(tmp_path, "expect:\n  a[2]: 0.5122\n", "no_allowance.yaml")]) == 1
    assert main(["report", case(tmp_path, extra)]) == 0


def test_declared_erratum_is_listed_not_failed(tmp_path, capsys):
    extra = "expect:\n  a[2]:\n    value: 0.60\n    erratum: the slide has a typo\n    correct: 0.51\n"
    assert main(["report", case(tmp_path, extra)]) == 0
    out = capsys.readouterr().out
    assert "erratum" in out and "the slide has a typo" in out and "Correct: 0.51" in out


def test_erratum_whose_document_value_is_right_fails(tmp_path, capsys):
    extra = "expect:\n  a[2]:\n    value: 0.51\n    erratum: wrongly accused\n"
    assert main(["report", case(tmp_path, extra)]) == 1
    assert "declared as an erratum, but the document agrees" in capsys.readouterr().out


def test_erratum_with_a_wrong_correction_fails(tmp_path, capsys):
    extra = "expect:\n  a[2]:\n    value: 0.60\n    erratum: typo\n    correct: 0.70\n"
    assert main(["report", case(tmp_path, extra)]) == 1
    assert "correct value disagrees" in capsys.readouterr().out


FORMULA = """\
formulas:
  - name: BP4
    printed: "∂C/∂W = δ aᵀ"
    expr: {expr}
    equals: dC/dW[1]
"""


def test_formula_that_holds_passes_and_a_wrong_one_fails(tmp_path):
    assert main(["report", case(tmp_path, FORMULA.format(expr="delta1 @ T(x)"))]) == 0
    assert main(["report", case(tmp_path, FORMULA.format(expr="T(x) * delta1"), "d.yaml")]) == 0  # same numbers
    assert main(["report", case(tmp_path, FORMULA.format(expr="-delta1 @ T(x)"), "e.yaml")]) == 1


def test_formula_erratum_and_its_correction(tmp_path, capsys):
    good = FORMULA.format(expr="-delta1 @ T(x)") + "    erratum: sign\n    correct: delta1 @ T(x)\n"
    assert main(["report", case(tmp_path, good)]) == 0
    bad = FORMULA.format(expr="-delta1 @ T(x)") + "    erratum: sign\n    correct: 2 * delta1 @ T(x)\n"
    assert main(["report", case(tmp_path, bad, "b.yaml")]) == 1
    wrongly = FORMULA.format(expr="delta1 @ T(x)") + "    erratum: not really\n"
    assert main(["report", case(tmp_path, wrongly, "w.yaml")]) == 1


def test_derived_quantities_and_multi_step_history(tmp_path):
    extra = "define:\n  wa: W1 @ x\nexpect:\n  wa: -0.02\n"
    assert main(["report", case(tmp_path, extra)]) == 0
    path = tmp_path / "steps.yaml"
    path.write_text(
        NET.replace("{eta: 0.01}", "{eta: 0.01, steps: 3}") + "expect:\n  a[2]@3: 0.5131\n", encoding="utf-8"
    )
    assert main(["report", str(path)]) == 0


def test_json_format_on_stdout(capsys, tmp_path):
    assert main(["report", "--format", "json", case(tmp_path, "expect:\n  a[2]: 0.5124\n")]) == 0
    data = json.loads(capsys.readouterr().out)
    row = next(r for r in data["rows"] if r["quantity"] == "a[2]")
    assert row["document"] == "0.5124" and row["decimals"] == 4 and row["status"] == "match"
    assert set(row["engines"]) == {"numpy", "torch", "fd"}


def test_empty_folder_is_unusable_input(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no case files found" in capsys.readouterr().err


def test_pytest_plugin_failure_shows_a_table(pytester):
    cases = pytester.mkdir("cases")
    (cases / "bad_value.yaml").write_text(NET + "expect:\n  a[2]: 0.5125\n  z[1]: -0.02\n", encoding="utf-8")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    result.assert_outcomes(failed=1, passed=18)
    text = result.stdout.str()
    assert "cases/bad_value.yaml::a[2]" in text
    for column in ("quantity", "document", "numpy", "torch", "fd", "difference"):
        assert column in text
    assert "0.5125" in text


def test_pytest_plugin_collects_ids_per_quantity(pytester):
    cases = pytester.mkdir("cases")
    (cases / "ok.yaml").write_text(NET, encoding="utf-8")
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    text = result.stdout.str()
    assert "cases/ok.yaml::delta[1]" in text and "cases/ok.yaml::W[1]'" in text


def test_exact_values_are_checked_to_1e_12(tmp_path):
    assert main(["report", case(tmp_path, "expect:\n  z[1]: {value: -0.02, exact: true}\n")]) == 0
    assert main(["report", case(tmp_path, "expect:\n  a[1]: {value: 0.495, exact: true}\n", "x.yaml")]) == 1
