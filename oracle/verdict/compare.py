"""Compare a case's engines with each other and with the document: one Check per quantity.

Tolerances (README, "Tolerances"):
- a value printed with N decimals matches an engine when they differ by at
  most ½·10⁻ᴺ (plus the case's stated allowance, if any, 1e-12 relative
  for the binary representation of the printed decimal, and the engine's
  own tolerance); a value declared exact, by 1e-12 relative;
- two engines agree when they differ by at most rtol·max(|u|, |v|) + atol,
  with (rtol, atol) the larger of the two engines' tolerances;
- a printed formula holds when it agrees with each engine's quantity to
  that engine's tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from oracle.verdict.engines import FLOAT32_TOL, agree, tolerance
from oracle.verdict.run import Missing, compute

MATCH, ERRATUM, MISMATCH = "match", "erratum", "mismatch"


@dataclass
class Element:
    """One number of a quantity: the document's value, each engine's, and the verdict."""

    index: tuple
    document: float | None
    engines: dict  # engine name → float or None (not provided)
    difference: float  # largest |document − engine|, else largest |engine − engine|
    tolerance: float | None  # for the document comparison
    status: str
    message: str = ""


@dataclass
class Check:
    """The verdict on one quantity of one case."""

    case: object
    quantity: str
    status: str
    elements: list = field(default_factory=list)
    message: str = ""
    decimals: list | None = None
    documented: bool = False
    computed: bool = False
    erratum: str | None = None
    correct: object = None
    allowance: float = 0.0
    reason: str | None = None
    printed: str | None = None  # formulas: the text of the printed formula
    texts: list | None = None  # documented numbers as written
    heading: str | None = None  # slide heading, where it differs from the case's

    @property
    def source_heading(self):
        return self.heading or self.case.source.get("heading")

    @property
    def failed(self):
        return self.status == MISMATCH


EXACT_RTOL = 1e-12


def doc_tolerance(value, decimals, allowance=0.0, exact=False):
    """½·10⁻ᴺ for N printed decimals (+ allowance); 10⁻¹²·max(1, |v|) for a value declared exact."""
    if exact:
        return EXACT_RTOL * max(1.0, abs(value)) + allowance
    return 0.5 * 10.0 ** (-int(decimals)) + allowance + 1e-12 * max(1.0, abs(value))


def _agree(u, v, tol_u, tol_v):
    return bool(agree(u, v, tol_u, tol_v))  # the one agreement rule (oracle.verdict.engines)


def _flat(value, size):
    """An engine's array flattened to ``size`` numbers, or an error message."""
    if isinstance(value, Missing):
        return None, value.reason if value.failed else None
    arr = np.asarray(value, dtype=float).reshape(-1)
    if size is not None and arr.size != size:
        return None, f"gave {arr.size} values where {size} are expected"
    if not np.all(np.isfinite(arr)):
        return arr, "gave a value that is not finite"
    return arr, None


def _fmt_shape(value):
    return "×".join(map(str, np.shape(value))) or "scalar"


def _engine_elements(values, names, tols, size, document=None, decimals=None, allowance=0.0, erratum=None, exact=False):
    """Element-wise comparison of the engines (and the document, when given)."""
    flats, problems, shapes = {}, [], {}
    for name in names:
        arr, problem = _flat(values[name], size)
        if problem:
            problems.append(f"{name} {problem}")
        if arr is not None and problem is None:
            flats[name] = arr
            shapes[name] = tuple(n for n in np.shape(values[name]) if n != 1)  # singleton axes aside
    if len(set(shapes.values())) > 1:
        first = next(iter(shapes))
        for name, shape in shapes.items():
            if shape != shapes[first]:
                problems.append(
                    f"{name} gives shape {_fmt_shape(values[name])} where {first} gives {_fmt_shape(values[first])}"
                )
    n = size if size is not None else (next(iter(flats.values())).size if flats else 0)
    elements = []
    for i in range(n):
        vals = {name: (float(flats[name][i]) if name in flats else None) for name in names}
        got = [(k, v) for k, v in vals.items() if v is not None]
        status, message = MATCH, ""
        disagree = [
            f"{a}/{b}" for j, (a, u) in enumerate(got) for (b, v) in got[j + 1 :] if not _agree(u, v, tols[a], tols[b])
        ]
        spread = max((abs(u - v) for j, (_, u) in enumerate(got) for (_, v) in got[j + 1 :]), default=0.0)
        tol = None
        if document is not None:
            d = float(document[i])
            tol = doc_tolerance(d, decimals[i], allowance, exact)
            diffs = [abs(d - v) for _, v in got]
            difference = max(diffs, default=float("nan"))
            # the document's rounding plus the engine's own accuracy (finite differences: 1e-6)
            ok = [x <= tol + tols[k][0] * abs(v) + tols[k][1] for x, (k, v) in zip(diffs, got)]
            if not got:
                status, message = MISMATCH, "no engine computed it"
            elif all(ok):
                status = MATCH
            elif not any(ok) and erratum:
                status = ERRATUM
            elif not any(ok):
                status, message = MISMATCH, f"the document differs from every engine by more than {tol:.3g}"
            else:
                status, message = MISMATCH, "the document agrees with some engines and not others"
            elements.append(Element((i,), d, vals, difference, tol, status, message))
        else:
            elements.append(Element((i,), None, vals, spread, None, status, message))
        if disagree:
            elements[-1].status = MISMATCH
            elements[-1].message = "engines disagree: " + ", ".join(disagree)
    if problems:
        for e in elements or [Element((0,), None, {}, float("nan"), None, MISMATCH)]:
            e.status, e.message = MISMATCH, "; ".join(problems)
        if not elements:
            elements = [
                Element((0,), None, {k: None for k in names}, float("nan"), None, MISMATCH, "; ".join(problems))
            ]
    return elements


def _overall(elements):
    statuses = {e.status for e in elements}
    if MISMATCH in statuses:
        return MISMATCH
    return ERRATUM if ERRATUM in statuses else MATCH


def check_case(case, engines, results=None):
    """All checks of a case: each quantity in the order of the computation, then formulas.

    ``results`` ({engine name: computed quantities}) may be given for engines already run.
    """
    results = dict(results or {})
    for e in engines:
        if e.name not in results:
            results[e.name] = compute(case, e)
    names = [e.name for e in engines]
    tols = {e.name: tolerance(e) for e in engines}
    costs = [
        abs(float(np.max(np.abs(v))))
        for r in results.values()
        for q, v in r.items()
        if (q == "C" or q.startswith("C@")) and not isinstance(v, Missing) and np.all(np.isfinite(v))
    ]
    for e in engines:  # an engine whose accuracy depends on the size of the cost
        if costs and hasattr(e, "tolerance_for"):
            tols[e.name] = e.tolerance_for(max(costs))
    if case.precision == "float32":  # single precision: every engine agrees to FLOAT32_TOL at best
        tols = {n: (max(r, FLOAT32_TOL[0]), max(a, FLOAT32_TOL[1])) for n, (r, a) in tols.items()}
    checks = []
    expected = {x.quantity: x for x in case.expect}
    order = list(case.quantities)
    for quantity in order:
        values = {n: results[n].get(quantity, Missing("not computed")) for n in names}
        x = expected.get(quantity)
        if x is None:
            if all(isinstance(v, Missing) and not v.failed for v in values.values()):
                continue
            elements = _engine_elements(values, names, tols, case.quantities[quantity])
            checks.append(Check(case, quantity, _overall(elements), elements))
            continue
        elements = _engine_elements(
            values,
            names,
            tols,
            x.value.size,
            x.value.reshape(-1),
            x.decimals.reshape(-1),
            x.allowance,
            x.erratum,
            x.exact,
        )
        check = Check(
            case,
            quantity,
            _overall(elements),
            elements,
            documented=not x.computed,
            computed=x.computed,
            decimals=x.decimals.reshape(-1).tolist(),
            erratum=x.erratum,
            texts=x.texts,
            heading=x.heading,
            allowance=x.allowance,
            reason=x.reason,
        )
        if x.erratum and check.status == MATCH:
            check.status = MISMATCH
            check.message = "declared as an erratum, but the document agrees with the engines"
        if x.erratum and x.correct is not None and check.status != MISMATCH:
            check.correct = x.correct_texts
            wrong = _engine_elements(
                values, names, tols, x.correct.size, x.correct.reshape(-1), x.correct_decimals.reshape(-1)
            )
            if _overall(wrong) != MATCH:
                check.status = MISMATCH
                check.message = "the erratum's correct value disagrees with the engines"
        checks.append(check)
    for formula in case.formulas:
        checks.append(_formula_check(case, formula, results, names, tols))
    return checks


def _formula_holds(key, equals, results, names, tols):
    """Whether the expression stored under ``key`` equals quantity ``equals`` for every engine that gives both."""
    seen = False
    for n in names:
        lhs, rhs = results[n].get(key), results[n].get(equals)
        if lhs is None or rhs is None or isinstance(lhs, Missing) or isinstance(rhs, Missing):
            continue
        lhs, rhs = np.asarray(lhs).reshape(-1), np.asarray(rhs).reshape(-1)
        if lhs.size != rhs.size:
            return False
        seen = True
        if not all(_agree(float(u), float(v), tols[n], tols[n]) for u, v in zip(lhs, rhs)):
            return False
    return seen


def _formula_check(case, formula, results, names, tols):
    """A printed formula holds when, for every engine, its value equals the engine's quantity."""
    elements, problems = [], []
    size = None
    for n in names:
        lhs, rhs = results[n].get(f"formula:{formula.name}"), results[n].get(formula.equals)
        if isinstance(lhs, Missing) or isinstance(rhs, Missing) or lhs is None or rhs is None:
            if isinstance(lhs, Missing) and lhs.failed:
                problems.append(f"{n}: {lhs.reason}")
            continue
        lhs, rhs = np.asarray(lhs).reshape(-1), np.asarray(rhs).reshape(-1)
        if lhs.size != rhs.size:
            problems.append(f"{n}: the formula gives {lhs.size} value(s), {formula.equals} has {rhs.size}")
            continue
        size = rhs.size
        for i in range(rhs.size):
            while len(elements) <= i:
                elements.append(Element((len(elements),), None, {k: None for k in names}, 0.0, None, MATCH))
            e = elements[i]
            e.engines[n] = float(lhs[i])
            diff = abs(lhs[i] - rhs[i])
            e.difference = max(e.difference, float(diff))
            if not _agree(float(lhs[i]), float(rhs[i]), tols[n], tols[n]):
                e.status = ERRATUM if formula.erratum else MISMATCH
                e.message = f"formula ≠ {formula.equals} (engine {n})"
    check = Check(
        case,
        f"formula:{formula.name}",
        MATCH,
        elements,
        printed=formula.printed,
        documented=True,
        erratum=formula.erratum,
        correct=formula.correct,
        heading=formula.heading,
    )
    if problems or size is None:
        check.status = MISMATCH
        check.message = "; ".join(problems) or "no engine could evaluate it"
        return check
    statuses = {e.status for e in elements}
    if MISMATCH in statuses:
        check.status = MISMATCH
        check.message = f"the printed formula does not equal {formula.equals}"
    elif ERRATUM in statuses:
        check.status = ERRATUM
        if formula.correct_tree is not None and not _formula_holds(
            f"correct:{formula.name}", formula.equals, results, names, tols
        ):
            check.status = MISMATCH
            check.message = f"the erratum's correct formula does not equal {formula.equals} either"
    elif formula.erratum:
        check.status = MISMATCH
        check.message = "declared as an erratum, but the formula equals the engines' value"
    return check
