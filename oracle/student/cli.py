"""The command-line side of grading: ``report --impl PATH`` and ``grade SUBMISSIONS``."""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tabulate import tabulate

from oracle.harness.engines import default_engines

from .grade import ERROR, FAIL, CaseFileGuard, References, explain_first, grade_case
from .results import gradescope, summary, table, write_results
from .sandbox import IsolatedImplementation, ImplementationError


def _progress(text):
    """Progress on the terminal (standard error), never on standard output."""
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)


def grade_one(spec, cases, refs, timeout, memory_mb, name=None, guard=None):
    """Grade one implementation on all cases; (grades, problems). Never raises for the student's faults."""
    impl = IsolatedImplementation(spec, name=name, timeout=timeout, memory_mb=memory_mb, guard=guard)
    grades, problems = [], []
    try:
        for i, case in enumerate(cases, 1):
            _progress(f"{impl.name}: case {i}/{len(cases)} {case.id}")
            try:
                grades.append(grade_case(case, impl, refs))
            except ImplementationError as exc:   # pragma: no cover - grade_case turns failures into verdicts
                problems.append(str(exc))
    finally:
        impl.close()
        _progress("")
    problems.extend(dict.fromkeys(impl.events))
    return impl, grades, problems


def report_impl(args, cases):
    refs = References(default_engines())
    guard = CaseFileGuard(cases)
    impl, grades, problems = grade_one(args.impl, cases, refs, args.impl_timeout, args.impl_memory, guard=guard)
    lines = [table(grades, impl.name), ""]
    for g in grades:
        if g.first is not None:
            lines.append(f"{g.case.id}: {explain_first(g)}")
    cases_passed, n_cases, passed, total, mistake = summary(grades)
    lines.append(f"\n{impl.name}: {cases_passed}/{n_cases} cases, {passed}/{total} quantities pass; "
                 f"first mistake found: {mistake}")
    for p in problems:
        lines.append(f"problem: {p}")
    text = "\n".join(lines)
    if args.format == "json":
        import json
        text = json.dumps(gradescope(grades, impl.name, problems), indent=2, ensure_ascii=False)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.results_json:
        write_results(args.results_json, grades, None, impl.name, problems)
    failed = any(v.status in (FAIL, ERROR) for g in grades for v in g.verdicts)
    return 1 if failed or problems else 0


def submissions(folder):
    """The submissions in a folder: its .py files and its package folders, by name."""
    folder = Path(folder)
    found = [p for p in sorted(folder.iterdir())
             if (p.suffix == ".py" and p.is_file()) or (p.is_dir() and (p / "__init__.py").is_file())]
    return found


def grade_folder(args, cases):
    folder = Path(args.submissions)
    if not folder.is_dir():
        print(f"{folder}: not a folder of submissions", file=sys.stderr)
        return 2
    subs = submissions(folder)
    if not subs:
        print(f"{folder}: no submissions (.py files or package folders) found", file=sys.stderr)
        return 2
    refs = References(default_engines())
    for case in cases:        # computed once, before any submission runs
        refs.results(case)
        refs.mistakes(case)
    guard = CaseFileGuard(cases)

    def run(path):
        return grade_one(path, cases, refs, args.impl_timeout, args.impl_memory, name=path.stem, guard=guard)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(run, subs))
    rows = []
    for path, (impl, grades, problems) in zip(subs, outcomes):
        cases_passed, n_cases, passed, total, mistake = summary(grades)
        rows.append([impl.name, f"{cases_passed}/{n_cases}", f"{passed}/{total}", mistake[:70],
                     "; ".join(problems)[:80] or "—"])
        if args.results_dir:
            out = Path(args.results_dir) / impl.name
            out.mkdir(parents=True, exist_ok=True)
            write_results(out / "results.json", grades, None, impl.name, problems)
    print(tabulate(rows, headers=["submission", "cases passed", "quantities passed", "first mistake found",
                                  "problems"], disable_numparse=True))
    return 0
