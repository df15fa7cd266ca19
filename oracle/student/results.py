"""Results of implementations for graders: messages, tables and Gradescope's results.json.

Scoring: without an assignment every quantity the implementation provides is worth one
point, and a quantity it does not provide (its shape has no such function, or the
function raises NotImplementedError) is listed but counts nothing. With an assignment
(oracle.student.assignment) exactly the quantities it names count, with its weights and
visibility, provided or not. A submission that imports a forbidden package scores 0.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from .grade import DOWNSTREAM, ERROR, FAIL, NOT_IMPLEMENTED, PASS, explain_first, headline


@dataclass
class SubmissionResult:
    """Everything graded about one submission: verdicts per case, problems, how it was run."""

    name: str
    grades: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    isolation: str = "process"
    forbidden: list = field(default_factory=list)  # messages: forbidden imports found (static or run time)
    partial: bool = False  # interrupted before every case was graded

    @property
    def headline(self):
        return headline(self.grades)


def _num(v):
    return "—" if v is None else f"{v:.10g}"


def verdict_text(grade, verdict):
    """The failure message of one quantity: where the error starts, the values, the diagnosis."""
    lines = [f"{grade.case.path}: {verdict.quantity}: {verdict.status}"]
    if grade.first is verdict:
        lines.append(explain_first(grade))
    if verdict.message:
        lines.append(verdict.message)
    if verdict.value is not None and verdict.reference is not None:
        ref = verdict.reference.reshape(-1)
        got = verdict.value.reshape(-1)
        rows = []
        for i in range(max(ref.size, got.size)):
            r = ref[i] if i < ref.size else None
            g = got[i] if i < got.size else None
            rows.append(
                [
                    f"{verdict.quantity}[{i}]" if max(ref.size, got.size) > 1 else verdict.quantity,
                    _num(r),
                    _num(g),
                    _num(abs(r - g)) if r is not None and g is not None else "—",
                ]
            )
        lines.append(tabulate(rows, headers=["quantity", "reference", "yours", "difference"], disable_numparse=True))
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
    return tabulate(rows, headers=["case", "quantity", "reference", impl_name, "verdict", "why"], disable_numparse=True)


def _rule(assignment, case, verdict):
    """(weight, visibility) of a verdict, or None when it does not count."""
    if assignment is not None:
        return assignment.rule(case.path, verdict.quantity)
    return (0.0 if verdict.status == NOT_IMPLEMENTED else 1.0), "visible"


def score(result, assignment=None):
    """(points, max points, quantities passed, quantities counted)."""
    points = total = 0.0
    passed = counted = 0
    for g in result.grades:
        for v in g.verdicts:
            rule = _rule(assignment, g.case, v)
            if rule is None or rule[0] == 0:
                continue
            counted += 1
            total += rule[0]
            if v.status == PASS and not result.forbidden:
                points += rule[0]
                passed += 1
    return points, total, passed, counted


def summary(result, assignment=None):
    """(cases passed, cases, quantities passed, quantities counted, headline text)."""
    _, _, passed, counted = score(result, assignment)
    cases_passed = sum(g.passed for g in result.grades)
    text = result.headline.text()
    if result.forbidden:
        text = result.forbidden[0]
    return cases_passed, len(result.grades), passed, counted, text


def gradescope(result, assignment=None):
    """The autograder results.json structure: one test per case and quantity that counts."""
    tests = []
    for g in result.grades:
        for v in g.verdicts:
            rule = _rule(assignment, g.case, v)
            if rule is None:
                continue
            weight, visibility = rule
            output = {
                PASS: "matches the reference engines",
                NOT_IMPLEMENTED: f"not implemented ({v.message})" + ("" if weight else ": not counted"),
            }.get(v.status, "")
            if v.status in (FAIL, ERROR, DOWNSTREAM):
                output = verdict_text(g, v)
            ok = v.status == PASS and not result.forbidden
            if result.forbidden:
                output = "; ".join(result.forbidden) + "\n" + output
            tests.append(
                {
                    "name": f"{g.case.id}::{v.quantity}",
                    "score": float(weight) if ok else 0.0,
                    "max_score": float(weight),
                    "status": "passed" if ok else "failed",
                    "output": output,
                    "visibility": visibility,
                    "extra_data": {
                        "case": g.case.id,
                        "quantity": v.quantity,
                        "status": v.status,
                        "mistakes": [m.name for m in v.mistakes],
                    },
                }
            )
    points, total, passed, counted = score(result, assignment)
    head = result.headline
    text = (
        f"{result.name}: {sum(g.passed for g in result.grades)}/{len(result.grades)} cases and "
        f"{passed}/{counted} quantities pass. First problem: {summary(result, assignment)[4]}."
    )
    if result.problems:
        text += " Problems: " + "; ".join(result.problems)
    if result.partial:
        text += " PARTIAL: grading was interrupted before every case was graded."
    first = None if head.case is None else {"case": head.case.id, "quantity": head.quantity, "equation": head.equation}
    return {
        "score": points,
        "max_score": total,
        "output": text,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "isolation": result.isolation,
            "partial": result.partial,
            "headline": head.text(),
            "first_divergence": first,
            "mistake": head.mistake,
            "forbidden_imports": list(result.forbidden),
            "problems": list(result.problems),
        },
    }


def write_json(path, data):
    """Write JSON atomically (a temporary file beside it, then rename): never a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_results(path, result, checks=None, assignment=None):
    """Write results.json: the implementation's verdicts (--impl), else the cases' own checks."""
    if result is not None:
        data = gradescope(result, assignment)
    else:
        tests = [
            {
                "name": f"{c.case.id}::{c.quantity}",
                "score": 0.0 if c.failed else 1.0,
                "max_score": 1.0,
                "status": "failed" if c.failed else "passed",
                "output": c.message or c.status,
                "visibility": "visible",
            }
            for c in (checks or [])
        ]
        data = {"score": sum(t["score"] for t in tests), "max_score": float(len(tests)), "tests": tests}
    write_json(path, data)
