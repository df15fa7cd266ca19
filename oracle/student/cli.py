"""The command-line side of grading: ``report --impl PATH`` and ``grade SUBMISSIONS``.

Both print the isolation mode on their first line, always write their table and every
results.json (also after SIGINT or SIGTERM: the results so far, marked partial), and
exit 128 + the signal's number when interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from oracle.verdict.engines import default_engines
from oracle.verdict.errors import CaseError
from oracle.reports.safetext import terminal

from . import sandbox
from .grade import ERROR, FAIL, CaseFileWatch, References, explain_first, grade_case
from .imports import scan
from .results import SubmissionResult, gradescope, score, summary, table, write_json, write_results
from .runtime.imports import NEVER_ALLOWED


@dataclass
class Limits:
    """How implementations are run: time and memory per worker, isolation, allowed imports."""

    timeout: float = sandbox.DEFAULT_TIMEOUT
    memory_mb: int = sandbox.DEFAULT_MEMORY_MB
    isolation: str = "auto"
    allow_imports: tuple = ()
    budget: float = sandbox.DEFAULT_BUDGET

    @classmethod
    def from_args(cls, args, assignment=None):
        """Command-line options first, then the assignment's, then the defaults."""
        allowed = tuple(getattr(args, "allow_import", None) or ()) + tuple(
            assignment.allow_imports if assignment else ()
        )
        for name in allowed:
            if name in NEVER_ALLOWED:
                raise ValueError(f"--allow-import {name}: the reference implementation cannot be allowed")
        timeout = getattr(args, "impl_timeout", None) or (assignment.timeout if assignment else None)
        memory = getattr(args, "impl_memory", None) or (assignment.memory_mb if assignment else None)
        return cls(
            timeout or sandbox.DEFAULT_TIMEOUT,
            memory or sandbox.DEFAULT_MEMORY_MB,
            getattr(args, "isolation", None) or "auto",
            tuple(dict.fromkeys(allowed)),
            getattr(args, "impl_budget", None) or sandbox.DEFAULT_BUDGET,
        )


def _progress(text):
    """Progress on the terminal (standard error), never on standard output."""
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)


def grade_one(spec, cases, refs, limits, name=None, stop=None, watch=None):
    """Grade one implementation on all cases: a SubmissionResult. Never raises for the student's faults."""
    found = scan(spec, limits.allow_imports)
    impl = sandbox.IsolatedImplementation(
        spec,
        name=name,
        timeout=limits.timeout,
        memory_mb=limits.memory_mb,
        isolation=limits.isolation,
        allow_imports=limits.allow_imports,
        budget=limits.budget,
    )
    result = SubmissionResult(impl.name, isolation=impl.mode, forbidden=[f.message() for f in found])
    try:
        for i, case in enumerate(cases, 1):
            if stop is not None and stop.is_set():
                result.partial = True
                break
            _progress(f"{impl.name}: case {i}/{len(cases)} {case.id}")
            grade = grade_case(case, impl, refs)
            if stop is not None and stop.is_set():  # interrupted during this case: not graded
                result.partial = True
                break
            result.grades.append(grade)
            for path in watch.changed() if watch is not None else ():
                result.problems.append(
                    f"the case file {path} changed while this submission ran (not restored: "
                    f"the grader never writes case files; if you did not edit it, this "
                    f"submission did)"
                )
    finally:
        impl.close()
        _progress("")
    static = {f.name for f in found}
    for module in impl.forbidden_used:
        if module not in static:
            from .runtime.imports import refusal

            result.forbidden.append(f"{impl.name}: tried to import {module} at run time: {refusal(module)}")
    result.problems.extend(dict.fromkeys(impl.events))
    return result


class _Interrupt:
    """SIGINT/SIGTERM while grading: stop the workers, keep what was graded, exit 128 + signal."""

    def __init__(self):
        self.stop = threading.Event()
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        self.stop.set()
        sandbox.interrupt()

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        sandbox.resume()
        return False

    def status(self, code):
        if self.signum is not None:
            print(
                f"interrupted by {signal.Signals(self.signum).name}: the results so far are written, marked partial",
                file=sys.stderr,
            )
            return 128 + self.signum
        return code


def _setup(args):
    """(assignment, cases, limits) from the command line, or an exit status after printing why."""
    from oracle.cli import _cases_or_exit, default_cases

    assignment = None
    if getattr(args, "assignment", None):
        from .assignment import load_assignment

        try:
            assignment = load_assignment(args.assignment)
        except CaseError as exc:
            print(terminal(exc), file=sys.stderr)
            return 2
    paths = list(getattr(args, "paths", None) or []) + list(getattr(args, "cases", None) or [])
    if not paths:
        paths = assignment.case_paths() if assignment else [default_cases()]
    cases = _cases_or_exit(paths)
    if cases is None:
        return 2
    try:
        limits = Limits.from_args(args, assignment)
        sandbox.resolve_mode(limits.isolation)
    except (ValueError, sandbox.IsolationError) as exc:
        print(terminal(exc), file=sys.stderr)
        return 2
    return assignment, cases, limits


def report_impl(args, cases=None):
    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    assignment, cases, limits = setup
    print(sandbox.describe(sandbox.resolve_mode(limits.isolation), limits.allow_imports))
    refs = References(default_engines())
    with _Interrupt() as interrupt:
        watch = CaseFileWatch(cases) if sandbox.resolve_mode(limits.isolation) == "process" else None
        result = grade_one(args.impl, cases, refs, limits, stop=interrupt.stop, watch=watch)
        lines = [table(result.grades, result.name), ""]
        for g in result.grades:
            if g.first is not None:
                lines.append(f"{g.case.id}: {explain_first(g)}")
        cases_passed, n_cases, passed, counted, head = summary(result, assignment)
        points, total, _, _ = score(result, assignment)
        lines.append(
            f"\n{result.name}: {cases_passed}/{n_cases} cases, {passed}/{counted} quantities pass "
            f"({points:g}/{total:g} points); first problem: {head}"
        )
        for p in result.forbidden + result.problems:
            lines.append(f"problem: {p}")
        text = terminal("\n".join(lines))  # names and messages come from the submission
        if args.format == "json":
            import json

            text = json.dumps(gradescope(result, assignment), indent=2, ensure_ascii=False)
        if args.output:
            Path(args.output).write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        if args.results_json:
            write_results(args.results_json, result, assignment=assignment)
        failed = any(v.status in (FAIL, ERROR) for g in result.grades for v in g.verdicts)
        return interrupt.status(1 if failed or result.problems or result.forbidden or result.partial else 0)


def submissions(folder):
    """The submissions in a folder: its .py files and its package folders, by name."""
    folder = Path(folder)
    return [
        p
        for p in sorted(folder.iterdir())
        if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and (p / "__init__.py").is_file())
    ]


def grade_folder(args, cases=None):
    folder = Path(args.submissions)
    if not folder.is_dir():
        print(f"{folder}: not a folder of submissions", file=sys.stderr)
        return 2
    subs = submissions(folder)
    if not subs:
        print(f"{folder}: no submissions (.py files or package folders) found", file=sys.stderr)
        return 2
    with _Interrupt() as interrupt:  # from here on a signal still ends with every output written
        setup = _setup(args)
        if isinstance(setup, int):
            return interrupt.status(setup)
        assignment, cases, limits = setup
        mode = sandbox.resolve_mode(limits.isolation)
        print(sandbox.describe(mode, limits.allow_imports), flush=True)
        out_dir = Path(args.results_dir) if args.results_dir else None
        refs = References(default_engines())
        for case in cases:  # computed once, before any submission runs
            if interrupt.stop.is_set():
                break
            refs.results(case)
            refs.mistakes(case)
        watch = CaseFileWatch(cases) if mode == "process" else None

        def run(path):
            return grade_one(path, cases, refs, limits, name=path.stem, stop=interrupt.stop, watch=watch)

        outcomes = {}
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {path: pool.submit(run, path) for path in subs}
            for path, future in futures.items():
                try:
                    outcomes[path] = future.result()
                except Exception as exc:  # noqa: BLE001 - a fault of the grader itself: reported, not lost
                    outcomes[path] = SubmissionResult(
                        path.stem,
                        isolation=mode,
                        partial=True,
                        problems=[f"the grader failed: {type(exc).__name__}: {exc}"],
                    )
        rows = []
        for path in subs:
            result = outcomes[path]
            cases_passed, n_cases, passed, counted, head = summary(result, assignment)
            points, total, _, _ = score(result, assignment)
            problems = result.forbidden + result.problems + (["partial: interrupted"] if result.partial else [])
            first = result.headline
            where = "—" if first.case is None else f"{first.case.id}: {first.quantity} ({first.equation})"
            rows.append(
                [
                    result.name,
                    f"{cases_passed}/{n_cases}",
                    f"{passed}/{counted}",
                    f"{points:g}/{total:g}",
                    where,
                    first.mistake or "—",
                    "; ".join(problems)[:160] or "—",
                ]
            )
            if out_dir is not None:
                (out_dir / result.name).mkdir(parents=True, exist_ok=True)
                write_json(out_dir / result.name / "results.json", gradescope(result, assignment))
        rows = [[terminal(cell) for cell in row] for row in rows]
        print(
            tabulate(
                rows,
                headers=[
                    "submission",
                    "cases passed",
                    "quantities passed",
                    "points",
                    "first divergence",
                    "mistake",
                    "problems",
                ],
                disable_numparse=True,
            )
        )
        return interrupt.status(0)
