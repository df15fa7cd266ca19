"""Grade an implementation under test: per case and quantity, in the order of the computation.

Expected values come from the engines (numpy and torch, and finite differences
for gradients) — never from the implementation. For each case the first
quantity that diverges is named together with the one before it (which
matched), and every diverging quantity is compared with the catalogued
mistakes, so that "δ¹ matches 'transpose missing in (W²)ᵀ δ²' (BP2)" tells
the student where the error starts and what it is.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import numpy as np

from oracle.harness.compare import check_case
from oracle.harness.run import Missing, compute

from .mistakes import CATALOGUE, MistakeEngine

PASS, FAIL, DOWNSTREAM, ERROR, NOT_IMPLEMENTED = "pass", "FAIL", "downstream", "error", "not implemented"


@dataclass
class Verdict:
    case: object
    quantity: str
    status: str
    value: object = None          # the implementation's array
    reference: object = None      # numpy's array
    message: str = ""
    mistakes: list = field(default_factory=list)   # catalogued mistakes whose value it reproduces

    @property
    def mistake(self):
        """The diagnosis: the matching mistake's name (or names, when the case cannot tell them apart)."""
        return "' or '".join(m.name for m in self.mistakes) or None

    @property
    def equation(self):
        return "/".join(dict.fromkeys(m.equation for m in self.mistakes)) or None

    @property
    def passed(self):
        return self.status == PASS


@dataclass
class CaseGrade:
    case: object
    verdicts: list = field(default_factory=list)
    first: Verdict | None = None     # the first diverging quantity
    before: Verdict | None = None    # the quantity just before it, which matched

    @property
    def provided(self):
        return [v for v in self.verdicts if v.status != NOT_IMPLEMENTED]

    @property
    def passed(self):
        return bool(self.provided) and all(v.passed for v in self.provided)


class References:
    """The engines' results and the mistakes' results per case, computed once and shared."""

    def __init__(self, engines):
        self.engines = engines
        self._results, self._mistakes = {}, {}
        self._lock = threading.Lock()

    def results(self, case):
        with self._lock:
            if case.path not in self._results:
                self._results[case.path] = {e.name: compute(case, e) for e in self.engines}
            return self._results[case.path]

    def mistakes(self, case):
        with self._lock:
            if case.path not in self._mistakes:
                self._mistakes[case.path] = {n: compute(case, MistakeEngine(n)) for n in CATALOGUE}
            return self._mistakes[case.path]


def _close(u, v, rtol, atol):
    u, v = np.asarray(u, dtype=float).reshape(-1), np.asarray(v, dtype=float).reshape(-1)
    return u.size == v.size and bool(np.all(np.abs(u - v) <= rtol * np.maximum(np.abs(u), np.abs(v)) + atol))


def diagnose(case, quantity, value, reference, refs, tolerance):
    """The catalogued mistakes whose value for ``quantity`` the implementation reproduces (possibly none)."""
    rtol, atol = tolerance
    found = []
    for name, results in refs.mistakes(case).items():
        faulty = results.get(quantity)
        if faulty is None or isinstance(faulty, Missing):
            continue
        if reference is not None and _close(faulty, reference, 1e-9, 1e-12):
            continue                     # the mistake changes nothing here: it cannot explain a difference
        if _close(value, faulty, rtol, atol):
            found.append(CATALOGUE[name])
    return found


def grade_case(case, impl, refs):
    """Verdicts for every quantity of a case, first divergence and diagnosis included."""
    results = refs.results(case)
    mine = compute(case, impl)
    checks = {c.quantity: c for c in check_case(case, refs.engines + [impl], {**results, impl.name: mine})}
    grade = CaseGrade(case)
    previous_ok = None
    # the case's own quantities: derived values and printed formulas judge the documents
    for quantity in (q for q in case.quantities if q not in case.define):
        value = mine.get(quantity)
        reference = results[refs.engines[0].name].get(quantity)
        reference = None if isinstance(reference, Missing) else reference
        check = checks.get(quantity)
        if check is None or value is None or (isinstance(value, Missing) and not value.failed):
            if value is None or isinstance(value, Missing):
                grade.verdicts.append(Verdict(case, quantity, NOT_IMPLEMENTED, reference=reference,
                                              message=getattr(value, "reason", "not provided")))
            continue
        v = Verdict(case, quantity, PASS, None if isinstance(value, Missing) else value, reference)
        problems = [e.message for e in check.elements if impl.name in e.message]
        if isinstance(value, Missing):
            v.status, v.message = ERROR, value.reason
        elif problems or any(e.engines.get(impl.name) is None for e in check.elements):
            v.status = FAIL
            v.message = problems[0] if problems else "gave no value"
            if v.reference is not None:
                v.mistakes = diagnose(case, quantity, value, v.reference, refs, impl.tolerance)
        if v.status == PASS:
            previous_ok = v
        elif grade.first is None:
            grade.first, grade.before = v, previous_ok
        else:
            v.message = f"downstream of the first divergence at {grade.first.quantity}" + (
                f"; {v.message}" if v.message else "")
            v.status = DOWNSTREAM if v.status == FAIL else v.status
        grade.verdicts.append(v)
    return grade


def explain_first(grade):
    """One line for a student: where the error starts, and what it looks like."""
    first = grade.first
    if first is None:
        return ""
    text = f"first divergence at {first.quantity}"
    if grade.before is not None:
        text += f" ({grade.before.quantity} before it matches)"
    if first.mistake:
        text += f": {first.equation}: {first.quantity} matches '{first.mistake}'"
    elif first.message:
        text += f": {first.message}"
    return text


class CaseFileGuard:
    """Case files as they were when loaded: verified (and restored if changed) after a run."""

    def __init__(self, cases):
        self._lock = threading.Lock()
        self.original, self.digest = {}, {}
        for case in cases:
            self.add(case)

    def add(self, case):
        """Guard a loaded case (the bytes it was loaded from) and every other case file beside it."""
        with self._lock:
            self._keep(case.path.resolve(), case.raw)
            for sibling in sorted(case.path.parent.glob("*.y*ml")):
                if sibling.resolve() not in self.original:
                    try:
                        self._keep(sibling.resolve(), sibling.read_bytes())
                    except OSError:
                        pass

    def _keep(self, path, data):
        if path not in self.original:
            self.original[path] = data
            self.digest[path] = hashlib.sha256(data).hexdigest()

    def check_and_restore(self):
        with self._lock:
            return self._check_and_restore()

    def _check_and_restore(self):
        changed = []
        for path, data in self.original.items():
            try:
                now = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                now = None
            if now != self.digest[path]:
                try:
                    path.write_bytes(data)
                    changed.append(str(path))
                except OSError as exc:
                    changed.append(f"{path} (could not restore: {exc})")
        return changed
