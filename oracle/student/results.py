"""Results of implementations for graders: messages, tables and Gradescope's results.json."""
from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from .grade import DOWNSTREAM, ERROR, FAIL, NOT_IMPLEMENTED, PASS, explain_first


def _num(v):
    return "—" if v is None else f"{v:.10g}"


def verdict_text(grade, verdict):
    """The failure message of one quantity: where the error starts, the values, the diagnosis."""
    lines = [f"{grade.case.path}: {verdict.quantity}: {verdict.status}"]
    if grade.first is verdict:
        lines.append(explain_first(grade))
    if verdict.message:
        lines.append(verdict.message)
    if verdict.mistake and grade.first is not verdict:
        lines.append(f"{verdict.equation}: {verdict.quantity} matches '{verdict.mistake}'")
    if verdict.value is not None and verdict.reference is not None:
        ref = verdict.reference.reshape(-1)
        got = verdict.value.reshape(-1)
        rows = []
        for i in range(max(ref.size, got.size)):
            r = ref[i] if i < ref.size else None
            g = got[i] if i < got.size else None
            rows.append([f"{verdict.quantity}[{i}]" if max(ref.size, got.size) > 1 else verdict.quantity,
                         _num(r), _num(g), _num(abs(r - g)) if r is not None and g is not None else "—"])
        lines.append(tabulate(rows, headers=["quantity", "expected (numpy)", "implementation", "difference"],
                              disable_numparse=True))
    if grade.before is not None and grade.first is verdict:
        lines.append(f"the quantity before it, {grade.before.quantity}, matches")
    return "\n".join(lines)


def table(grades, impl_name):
    """Every quantity of every case: numpy beside the implementation, with the verdict."""
    rows = []
    for g in grades:
        for v in g.verdicts:
            ref = None if v.reference is None else v.reference.reshape(-1)
            got = None if v.value is None else v.value.reshape(-1)
            show = lambda a: "—" if a is None else (_num(a[0]) if a.size == 1 else f"{a.size} values")  # noqa: E731
            note = f"{v.equation}: matches '{v.mistake}'" if v.mistake else v.message
            rows.append([g.case.id, v.quantity, show(ref), show(got), v.status, note[:90]])
    return tabulate(rows, headers=["case", "quantity", "numpy", impl_name, "verdict", "why"],
                    disable_numparse=True)


def summary(grades):
    """(cases passed, cases, quantities passed, quantities, first mistake found)."""
    cases_passed = sum(g.passed for g in grades)
    verdicts = [v for g in grades for v in g.verdicts]
    passed = sum(v.status == PASS for v in verdicts)
    first = next((g for g in grades if g.first is not None), None)
    mistake = next((f"{g.first.mistake} ({g.first.equation}, {g.case.id})" for g in grades
                    if g.first is not None and g.first.mistake), None)
    if mistake is None and first is not None:
        mistake = f"{first.first.quantity} in {first.case.id}: {first.first.message}"[:120]
    return cases_passed, len(grades), passed, len(verdicts), mistake or "—"


def gradescope(grades, impl_name, problems=()):
    """The autograder results.json structure: one test per case and quantity, one point each."""
    tests = []
    for g in grades:
        for v in g.verdicts:
            output = {PASS: "matches the reference engines", NOT_IMPLEMENTED: f"not implemented ({v.message})"}.get(
                v.status, "")
            if v.status in (FAIL, ERROR, DOWNSTREAM):
                output = verdict_text(g, v)
            tests.append({"name": f"{g.case.id}::{v.quantity}", "score": 1.0 if v.status == PASS else 0.0,
                          "max_score": 1.0, "status": "passed" if v.status == PASS else "failed",
                          "output": output, "visibility": "visible"})
    cases_passed, n_cases, passed, total, mistake = summary(grades)
    text = (f"{impl_name}: {cases_passed}/{n_cases} cases and {passed}/{total} quantities pass. "
            f"First mistake found: {mistake}.")
    if problems:
        text += " Problems: " + "; ".join(problems)
    return {"score": float(passed), "max_score": float(total), "output": text, "visibility": "visible",
            "stdout_visibility": "visible", "tests": tests}


def write_results(path, grades, checks, impl_name, problems=()):
    """Write results.json: the implementation's verdicts (--impl), else the cases' own checks."""
    if grades is not None:
        data = gradescope(grades, impl_name, problems)
    else:
        tests = [{"name": f"{c.case.id}::{c.quantity}", "score": 0.0 if c.failed else 1.0, "max_score": 1.0,
                  "status": "failed" if c.failed else "passed", "output": c.message or c.status,
                  "visibility": "visible"} for c in (checks or [])]
        data = {"score": sum(t["score"] for t in tests), "max_score": float(len(tests)), "tests": tests}
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
