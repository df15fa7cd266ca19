"""Grade an implementation under test: per case and quantity, in the order of the computation.

Expected values come from the reference engines (numpy, torch, and finite
differences for derivatives) — never from the implementation. For each case
the first quantity that diverges is named with the one before it (which
matched); later divergences are "downstream" of it.

A catalogued mistake (oracle.student.mistakes) is named for a case only when
the implementation agrees with that faulty variant on every quantity the case
checks up to and including the first divergence, and the variant differs
from the reference there. The headline of a submission names the first
failing case's first divergence and its equation, and a mistake only when it
is named for every failing case and changes nothing in the cases that pass.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import numpy as np

from oracle.verdict.engines import FLOAT32_TOL
from oracle.verdict.run import Missing, compute

from .mistakes import CATALOGUE, MistakeEngine

PASS, FAIL, DOWNSTREAM, ERROR, NOT_IMPLEMENTED = "pass", "FAIL", "downstream", "error", "not implemented"


@dataclass
class Verdict:
    case: object
    quantity: str
    status: str
    value: object = None  # the implementation's array
    reference: object = None  # numpy's array
    message: str = ""
    mistakes: list = field(default_factory=list)  # catalogued mistakes named here (first divergence only)

    @property
    def mistake(self):
        """The diagnosis: the matching mistake's name (or names, when the case cannot tell them apart)."""
        return "' or '".join(m.name for m in self.mistakes) or None

    @property
    def equation(self):
        return "/".join(dict.fromkeys(m.equation for m in self.mistakes)) or equation_of(self.case, self.quantity)

    @property
    def passed(self):
        return self.status == PASS


@dataclass
class CaseGrade:
    case: object
    verdicts: list = field(default_factory=list)
    first: Verdict | None = None  # the first diverging quantity
    before: Verdict | None = None  # the quantity just before it, which matched
    consistent: set = field(default_factory=set)  # mistakes the implementation does not contradict here

    @property
    def provided(self):
        return [v for v in self.verdicts if v.status != NOT_IMPLEMENTED]

    @property
    def passed(self):
        return bool(self.provided) and all(v.passed for v in self.provided)


def equation_of(case, quantity):
    """The step of the computation a quantity belongs to, as the lectures name it."""
    q = quantity.split("@")[0]
    if case.kind == "network":
        L = max(case.given["W"])
        layer = re.search(r"\[(\d+)\]", q)
        l = int(layer.group(1)) if layer else None
        if q.startswith(("z[", "a[")):
            return "forward pass"
        if q.startswith("f'(z"):
            return "f'(z)"
        if q == "C":
            return "cost"
        if q.startswith("dC/da"):
            return "∇_a C (BP1)" if l == L else "(W^{l+1})ᵀ δ^{l+1} (BP2)"
        if q.startswith("delta"):
            return "BP1" if l == L else "BP2"
        if q.startswith("dC/dW"):
            return "BP4"
        if q.startswith("dC/db"):
            return "BP3"
        if q.endswith("'"):
            return "update"
    if case.kind == "graph":
        return "graph backward (chain rule)" if q.startswith("d") and "/d" in q else "graph forward"
    if case.kind == "loss":
        return "∇_a C" if q == "dC/da" else "cost"
    if case.kind == "activation":
        return "f'(z)" if q == "f'(z)" else "activation"
    return case.kind


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
        """{mistake: {quantity: the faulty variant's value}} for the quantities where it differs from numpy."""
        with self._lock:
            if case.path not in self._mistakes:
                reference = self._results[case.path][self.engines[0].name] if case.path in self._results else None
                if reference is None:
                    reference = compute(case, self.engines[0])
                self._mistakes[case.path] = {
                    n: _differences(compute(case, MistakeEngine(n)), reference) for n in CATALOGUE
                }
            return self._mistakes[case.path]


def _differences(faulty, reference):
    """The quantities where a faulty variant's result differs from the reference's."""
    out = {}
    for q, value in faulty.items():
        ref = reference.get(q)
        if ref is None or isinstance(ref, Missing):
            continue
        if isinstance(value, Missing):
            if value.failed:
                out[q] = value
            continue
        if not same(value, ref, 1e-9, 1e-12):
            out[q] = value
    return out


def _tolerance(case, impl):
    rtol, atol = getattr(impl, "tolerance", None) or (1e-6, 1e-9)
    if case.precision == "float32":
        rtol, atol = max(rtol, FLOAT32_TOL[0]), max(atol, FLOAT32_TOL[1])
    return rtol, atol


def _squeezed(value):
    return tuple(n for n in np.shape(value) if n != 1)


def same(u, v, rtol, atol):
    """Whether two answers are the same within tolerance: equal sizes, and non-finite where the other is."""
    u, v = np.asarray(u, dtype=float).reshape(-1), np.asarray(v, dtype=float).reshape(-1)
    if u.size != v.size:
        return False
    fu, fv = np.isfinite(u), np.isfinite(v)
    if not np.array_equal(fu, fv) or not np.array_equal(u[~fu], v[~fv], equal_nan=True):
        return False
    u, v = u[fu], v[fv]
    return bool(np.all(np.abs(u - v) <= rtol * np.maximum(np.abs(u), np.abs(v)) + atol))


def compare(quantity, value, reference, agreeing, tolerance):
    """None when the implementation's value matches the reference, else why not (for the student)."""
    got, ref = np.asarray(value, dtype=float), np.asarray(reference, dtype=float)
    who = f"the reference ({', '.join(agreeing)} agree)" if len(agreeing) > 1 else "the reference"
    if got.size != ref.size or _squeezed(got) != _squeezed(ref):
        shape = lambda a: "×".join(map(str, np.shape(a))) or "scalar"  # noqa: E731
        return f"your {quantity} has shape {shape(got)} where {who} has shape {shape(ref)}"
    g, r = got.reshape(-1), ref.reshape(-1)
    bad = ~np.isfinite(g) & np.isfinite(r)
    if bad.any():
        i = int(np.argmax(bad))
        return f"your {quantity} is not finite ({g[i]} at element {i}) where {who} is {r[i]:.10g}"
    if same(g, r, *tolerance):
        return None
    diff = np.abs(g - r)
    diff[~np.isfinite(diff)] = np.inf
    i = int(np.argmax(diff))
    return (
        f"your {quantity} differs from {who}: {g[i]:.10g} where the reference is {r[i]:.10g} "
        f"(element {i}; tolerance {tolerance[0]:g} relative + {tolerance[1]:g})"
    )


def _agrees_with(mistake, differences, verdicts, tolerance):
    """Whether the implementation's values equal the faulty variant's on every graded verdict given.

    ``differences``: the variant's values where they differ from the reference; elsewhere the variant
    gives the reference's value, which the implementation matches exactly when it passes.
    """
    for v in verdicts:
        if v.status == NOT_IMPLEMENTED:
            continue
        if v.status == ERROR:
            if not (getattr(mistake, "symptom", None) and re.search(mistake.symptom, v.message or "")):
                return False
            continue
        faulty = differences.get(v.quantity)
        if faulty is None:
            if v.status != PASS:
                return False
        elif isinstance(faulty, Missing) or v.value is None or not same(v.value, faulty, *tolerance):
            return False  # the variant fails, or gives another value
    return True


def _explains(mistake, differences, first):
    """Whether the faulty variant differs from the reference at the first divergence (so it can explain it)."""
    if first.status == ERROR:
        return bool(getattr(mistake, "symptom", None) and re.search(mistake.symptom, first.message or ""))
    return isinstance(differences.get(first.quantity), np.ndarray)


def grade_case(case, impl, refs):
    """Verdicts for every quantity of a case, first divergence and diagnosis included."""
    results = refs.results(case)
    mine = compute(case, impl)
    tolerance = _tolerance(case, impl)
    grade = CaseGrade(case)
    reference_engine = refs.engines[0].name
    previous_ok = None
    # the case's own quantities (derived values and printed formulas judge the documents, not students)
    for quantity in (q for q in case.quantities if q not in case.define):
        value = mine.get(quantity)
        reference = results[reference_engine].get(quantity)
        if reference is None or isinstance(reference, Missing):
            continue  # the reference gives none: nothing to grade
        if value is None or (isinstance(value, Missing) and not value.failed):
            grade.verdicts.append(
                Verdict(
                    case,
                    quantity,
                    NOT_IMPLEMENTED,
                    reference=reference,
                    message=getattr(value, "reason", "not provided"),
                )
            )
            continue
        agreeing = [e.name for e in refs.engines if not isinstance(results[e.name].get(quantity, Missing("")), Missing)]
        v = Verdict(case, quantity, PASS, None if isinstance(value, Missing) else value, reference)
        if isinstance(value, Missing):
            v.status, v.message = ERROR, value.reason
        else:
            problem = compare(quantity, value, reference, agreeing, tolerance)
            if problem:
                v.status, v.message = FAIL, problem
        if v.status == PASS:
            previous_ok = v
        elif grade.first is None:
            grade.first, grade.before = v, previous_ok
        else:
            v.message = f"downstream of the first divergence at {grade.first.quantity}; {v.message}"
            v.status = DOWNSTREAM if v.status == FAIL else v.status
        grade.verdicts.append(v)
    _diagnose(grade, refs.mistakes(case), tolerance)
    return grade


def _diagnose(grade, mistake_results, tolerance):
    """Name the mistakes consistent with every quantity up to the first divergence (all, for a passing case)."""
    checked = grade.verdicts
    if grade.first is not None:
        checked = grade.verdicts[: grade.verdicts.index(grade.first) + 1]
    for name, differences in mistake_results.items():
        mistake = CATALOGUE[name]
        if _agrees_with(mistake, differences, checked, tolerance):
            grade.consistent.add(name)
            if grade.first is not None and _explains(mistake, differences, grade.first):
                grade.first.mistakes.append(mistake)


@dataclass
class Headline:
    """What a submission gets wrong first, and the mistake when all its cases agree on one."""

    case: object = None
    quantity: str | None = None
    equation: str | None = None
    message: str = ""
    mistakes: list = field(default_factory=list)

    @property
    def mistake(self):
        return " or ".join(m.name for m in self.mistakes) or None

    def text(self):
        if self.case is None:
            return "—"
        out = f"{self.case.id}: first divergence at {self.quantity} ({self.equation})"
        if self.mistakes:
            out += f": matches '{self.mistake}'"
        elif self.message:
            out += f": {self.message}"
        return out


def headline(grades):
    """The first failing case's first divergence; a mistake only if named in every failing case and
    consistent with every case that passes."""
    failing = [g for g in grades if g.first is not None]
    if not failing:
        return Headline()
    first = failing[0].first
    named = [m.name for m in first.mistakes]
    keep = [
        n
        for n in named
        if all(n in (m.name for m in g.first.mistakes) for g in failing)
        and all(n in g.consistent for g in grades if g.first is None)
    ]
    return Headline(
        failing[0].case,
        first.quantity,
        equation_of(failing[0].case, first.quantity),
        first.message,
        [CATALOGUE[n] for n in keep],
    )


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
        text += f": {equation_of(grade.case, first.quantity)}: {first.message}"
    return text


class CaseFileWatch:
    """Case files as they were when loaded, checked after each case — never written.

    Only needed where a worker could reach the files (process isolation): a change is
    reported, and nothing is restored, since the grader never writes a file the user did
    not name (the change may be the user's own edit). A file is hashed again only when its
    size or modification time changed.
    """

    def __init__(self, cases=()):
        self._lock = threading.Lock()
        self.seen = {}  # path → (stat signature, sha256) as first seen
        for case in cases:
            self.add(case)

    @staticmethod
    def _signature(path):
        try:
            st = path.stat()
            return st.st_size, st.st_mtime_ns, st.st_ino
        except OSError:
            return None

    @staticmethod
    def _digest(path):
        import hashlib

        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None

    def add(self, case):
        with self._lock:
            for path in [case.path] + sorted(case.path.parent.glob("*.y*ml")):
                path = path.resolve()
                if path not in self.seen:
                    self.seen[path] = (self._signature(path), self._digest(path))

    def changed(self):
        """The watched files whose bytes differ now (each change reported once)."""
        with self._lock:
            out = []
            for path, (signature, digest) in self.seen.items():
                now = self._signature(path)
                if now == signature:
                    continue
                new_digest = self._digest(path)
                if new_digest != digest:
                    out.append(str(path))
                self.seen[path] = (now, new_digest)
            return out
