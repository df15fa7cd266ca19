"""The command-line tool: ``backprop-oracle COMMAND`` (also ``python -m oracle COMMAND``).

    report [PATHS]            run the cases through the engines (and --impl) and print the comparison
    validate PATHS            check case files against the schema without running them
    new KIND NAME             scaffold a commented case file (activation, loss, forward, backprop,
                              gradient-descent, graph, jacobian)
    solve CASE [--write]      the answer key, once numpy, torch and finite differences agree
    explain CASE              the worked solution step by step (text, markdown or latex)
    draw CASE -o FILE         the figure of a case (.svg or .png); --history: loss and parameters per step
    grade SUBMISSIONS         grade a folder of implementations, one row each
    train                     train on scikit-learn's digits with numpy and torch from the same weights
    fuzz [--seconds S]        random networks through numpy, torch and finite differences
    template [-o FILE]        write the template module students fill in

Exit status: 0 when nothing is an undeclared mismatch (report) or an
implementation failure (report --impl), 1 when something is, 2 for unusable
input (a case file that does not load, a path that does not exist).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from oracle.verdict import limits as limits_mod
from oracle.reports import report as report_mod
from oracle.verdict.cases import discover, load_case
from oracle.verdict.compare import MISMATCH, check_case
from oracle.verdict.engines import default_engines
from oracle.verdict.errors import CaseError
from oracle.reports.safetext import terminal


def default_cases():
    """cases/ of the working directory if there is one, else the bundled cases."""
    here = Path("cases")
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "cases"


DEFAULT_CASES = default_cases()


def _impl_options(p):
    p.add_argument(
        "--impl-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Wall-clock limit for each call into an implementation (default 10 s).",
    )
    p.add_argument(
        "--impl-memory",
        type=int,
        default=None,
        metavar="MB",
        help="Address-space limit of an implementation's process (default 1024 MB).",
    )
    p.add_argument(
        "--impl-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Wall clock for all calls into one implementation (default 300 s); after it, or after a "
        "function timed out once, calls fail at once instead of waiting again.",
    )
    p.add_argument(
        "--isolation",
        choices=("auto", "bubblewrap", "process"),
        default="auto",
        help="How implementations are isolated: bubblewrap (namespaces: no network, no view of the "
        "project or the cases), process (a limited child process only), or auto (bubblewrap "
        "where it works; default). The first line of output says which is used.",
    )
    p.add_argument(
        "--allow-import",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="Let implementations import this package (e.g. torch); refimpl and oracle never.",
    )
    p.add_argument(
        "--assignment",
        metavar="FILE",
        help="An assignment file: the cases and quantities that count, weights, visibility, "
        "allowed imports and limits (docs/assignment-format.md).",
    )


def _parser():
    p = argparse.ArgumentParser(
        prog="backprop-oracle",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="Run every case through every engine and print the comparison.")
    r.add_argument("paths", nargs="*", help="Case files or folders (default: cases/).")
    r.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="PATH",
        help="Case files or folders to run (the same as naming them as arguments).",
    )
    r.add_argument(
        "--format",
        choices=("text", "markdown", "html", "csv", "json"),
        default="text",
        help="text: a table for the terminal; markdown; html: one self-contained page with the "
        "figures inline; csv and json: the same rows for machines.",
    )
    r.add_argument(
        "--errata",
        action="store_true",
        help="List only the errata: every documented value or formula that disagrees with all "
        "engines, grouped by source document (--format text, markdown, html or json).",
    )
    r.add_argument("--no-figures", action="store_true", help="HTML without figures (--format html only).")
    r.add_argument("-o", "--output", help="Write the report to this file instead of standard output.")
    r.add_argument(
        "--impl",
        metavar="PATH",
        help="Also check this implementation (a .py file, a package folder or a dotted module "
        "name), run in an isolated process: its column beside numpy and torch.",
    )
    r.add_argument(
        "--results-json",
        metavar="PATH",
        help="With --impl: write the results in the Gradescope autograder results.json format.",
    )
    _impl_options(r)
    limits_mod.add_options(r.add_argument)
    v = sub.add_parser("validate", help="Check case files against the schema without running them.")
    v.add_argument("paths", nargs="+", help="Case files or folders.")
    limits_mod.add_options(v.add_argument)
    n = sub.add_parser("new", help="Scaffold a commented case file to fill in.")
    from oracle.authoring.scaffold import KINDS as SCAFFOLDS

    n.add_argument("kind", choices=list(SCAFFOLDS), help="The kind of worked example.")
    n.add_argument(
        "name",
        help="The case's name (letters, digits, _ . -): written to ./cases/NAME.yaml of the "
        "current folder (created if needed) unless -o is given.",
    )
    n.add_argument(
        "-o",
        "--output",
        help="Write to this file instead, or into this folder as NAME.yaml. An existing file is never overwritten.",
    )
    so = sub.add_parser("solve", help="Compute every quantity of a case (the answer key).")
    so.add_argument("case", help="The case file.")
    so.add_argument("--decimals", type=int, default=4, help="Decimals to round to (default 4).")
    so.add_argument(
        "--write",
        action="store_true",
        help="Write the values into the case file, marked computed: true, keeping its comments and "
        "line endings (CRLF stays CRLF) and never overwriting a value that is already there. "
        "A symbolic link is written through: its target is replaced atomically, the link stays.",
    )
    e = sub.add_parser("explain", help="The worked solution, step by step in the notes' notation.")
    e.add_argument("case", help="The case file.")
    e.add_argument(
        "--format",
        choices=("text", "markdown", "latex"),
        default="text",
        help="text for the terminal; markdown with LaTeX math for slides and course pages; latex.",
    )
    e.add_argument(
        "--decimals",
        type=int,
        default=4,
        help="Decimals shown (every later step is computed from unrounded values; default 4).",
    )
    e.add_argument("-o", "--output", help="Write to this file instead of standard output.")
    d = sub.add_parser("draw", help="Draw a case as the lecture figures do (needs the figures extra).")
    d.add_argument("case", help="The case file.")
    d.add_argument("-o", "--output", required=True, help="The figure file: .svg or .png.")
    d.add_argument(
        "--history",
        action="store_true",
        help="For a gradient-descent case: the loss and each parameter per step, from both engines.",
    )
    g = sub.add_parser("grade", help="Grade a folder of implementations (one .py file or package each).")
    g.add_argument("submissions", help="A folder whose .py files and package folders are the submissions.")
    g.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="PATH",
        help="Case files or folders to grade against (default: cases/).",
    )
    g.add_argument(
        "--results-dir",
        metavar="DIR",
        help="Write DIR/<submission>/results.json (Gradescope format) for every submission.",
    )
    g.add_argument("--jobs", type=int, default=2, help="Submissions graded at the same time (default 2).")
    _impl_options(g)
    from oracle.testing import train as train_mod

    a = sub.add_parser("assignment", help="Check assignment files (the cases, quantities and weights that count).")
    a.add_argument("action", choices=("validate",), help="validate: every problem as file:line:col.")
    a.add_argument("files", nargs="+", help="Assignment files.")
    train_mod.add_arguments(
        sub.add_parser(
            "train", help="Train the same network with refimpl and torch on scikit-learn's digits (the data extra)."
        )
    )
    from oracle.testing import fuzz as fuzz_mod

    fuzz_mod.add_arguments(
        sub.add_parser(
            "fuzz", help="Compare the engines on random networks for a time or a count; write disagreements as cases."
        )
    )
    t = sub.add_parser("template", help="Write the module students fill in (the interface, documented).")
    t.add_argument("-o", "--output", help="Write to this file (default: standard output). Never overwrites.")
    return p


def _exists(path):
    """A path that is there (a broken symbolic link too: loading says what it points to)."""
    return os.path.lexists(path)


def load_all(paths, limits=None):
    """Load every case; return (cases, errors) — errors are CaseErrors, never tracebacks."""
    cases, errors = [], []
    for path in paths:
        if not _exists(path):
            errors.append(CaseError(path, 1, 1, "no such file or folder"))
    for path in discover([p for p in paths if _exists(p)]):
        try:
            cases.append(load_case(path, limits))
        except CaseError as exc:
            errors.append(exc)
    return cases, errors


def _nothing_found(paths):
    return f"no case files found under {', '.join(map(str, paths))} (case files are named *.yaml or *.yml)"


def _cases_or_exit(paths, limits=None):
    cases, errors = load_all(paths, limits)
    for exc in errors:
        print(terminal(exc), file=sys.stderr)
    if errors:
        return None
    if not cases:
        print(terminal(_nothing_found(paths)), file=sys.stderr)
        return None
    return cases


def progress(text):
    """Progress of a long run on the terminal (standard error, and only a terminal): never on stdout."""
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="" if text else "", file=sys.stderr, flush=True)


def _emit(text, output):
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        return
    try:
        print(text)
    except BrokenPipeError:  # e.g. piped into head: not an error of the report
        sys.stderr.close()


IMPL_FORMATS = ("text", "json")


def _report_option_problem(args):
    """Why the options of ``report`` do not go together (an output mode without that format), else None."""
    if args.impl:
        if args.errata:
            return "--errata lists the documents' errata; it does not go with --impl"
        if args.format not in IMPL_FORMATS:
            return (
                f"--impl reports come as --format {' or '.join(IMPL_FORMATS)}, not {args.format} "
                f"(supported with --impl: {', '.join(IMPL_FORMATS)})"
            )
    elif args.results_json:
        return "--results-json needs --impl (it writes the results of an implementation)"
    if args.errata and args.format not in report_mod.ERRATA_FORMATS:
        return (
            f"--errata does not come as --format {args.format}; supported with --errata: "
            f"{', '.join(report_mod.ERRATA_FORMATS)}"
        )
    if args.no_figures and (args.format != "html" or args.errata):
        return "--no-figures applies to the HTML report only (--format html, without --errata)"
    return None


def cmd_report(args):
    problem = _report_option_problem(args)
    if problem:
        print(f"report: {problem}", file=sys.stderr)
        return 2
    if args.impl:
        from oracle.student.cli import report_impl

        return report_impl(args)
    cases = _cases_or_exit(list(args.paths) + list(args.cases) or [default_cases()], limits_mod.from_args(args))
    if cases is None:
        return 2
    engines = default_engines()
    names = [e.name for e in engines]
    checks = []
    for i, case in enumerate(cases, 1):
        progress(f"case {i}/{len(cases)}: {case.id}")
        checks.extend(check_case(case, engines))
    progress("")
    if args.errata:
        out = report_mod.errata(checks, args.format)
    elif args.format == "json":
        out = report_mod.as_json(checks, names)
    elif args.format == "markdown":
        out = report_mod.markdown(checks, names)
    elif args.format == "csv":
        out = report_mod.csv_text(checks, names).rstrip("\n")
    elif args.format == "html":
        out = report_mod.html(checks, names, None if args.no_figures else _figures(cases))
    else:
        out = report_mod.text(checks, names)
    _emit(out, args.output)
    return 1 if any(c.status == MISMATCH for c in checks) else 0


def _figures(cases):
    """SVG figures of the cases for the HTML report (none when matplotlib is not installed)."""
    import tempfile

    try:
        from oracle.authoring import draw

        figures = {}
        with tempfile.TemporaryDirectory() as tmp:
            for i, case in enumerate(cases):
                target = Path(tmp) / f"{i}.svg"
                try:
                    draw.draw(case, target)
                except ValueError:  # a kind of case without a figure
                    continue
                figures[case.path] = target.read_text(encoding="utf-8")
        return figures
    except ImportError as exc:
        print(f"note: no figures in the report: {exc}", file=sys.stderr)
        return None


def cmd_grade(args):
    from oracle.student.cli import grade_folder

    return grade_folder(args)


def cmd_template(args):
    text = (Path(__file__).resolve().parent / "student" / "template.py").read_text(encoding="utf-8")
    if args.output:
        target = Path(args.output)
        if target.exists():
            print(f"{target}: exists; not overwritten", file=sys.stderr)
            return 2
        target.write_text(text, encoding="utf-8")
        return 0
    _emit(text.rstrip("\n"), None)
    return 0


def cmd_validate(args):
    from oracle.authoring.validate import validate_file

    limits = limits_mod.from_args(args)
    missing = [p for p in args.paths if not _exists(p)]
    problems = [CaseError(p, 1, 1, "no such file or folder") for p in missing]
    files = discover([p for p in args.paths if _exists(p)])
    for path in files:
        problems.extend(validate_file(path, limits))
    for problem in problems:
        print(problem)
    print(
        f"{len(files)} case file{'s' * (len(files) != 1)} checked, {len(problems)} problem{'s' * (len(problems) != 1)}",
        file=sys.stderr,
    )
    if not files and not problems:
        print(_nothing_found(args.paths), file=sys.stderr)
        return 2
    return 2 if problems else 0


def cmd_new(args):
    from oracle.authoring.scaffold import new_case_path, scaffold, write_new

    try:
        target = new_case_path(args.name, args.output)
        write_new(target, scaffold(args.kind, target))
    except (ValueError, OSError) as exc:
        print(terminal(f"new: {exc}"), file=sys.stderr)
        return 2
    print(terminal(f"wrote {target}: fill in the placeholders, then `backprop-oracle validate {target}`"))
    return 0


def cmd_solve(args):
    from tabulate import tabulate

    from oracle.authoring.solve import Disagreement, answer_key, natural_shapes, updated_text, write_atomically

    cases = _cases_or_exit([args.case])
    if cases is None:
        return 2
    case = cases[0]
    engines = default_engines()
    try:
        key = answer_key(case, engines)
    except Disagreement as exc:
        print(terminal(f"{case.path}: {exc}"), file=sys.stderr)
        return 1
    rows = [[q, ", ".join(f"{v:.{args.decimals}f}" for v in values)] for q, values in key]
    print(
        terminal(
            tabulate(
                rows, headers=["quantity", f"value ({', '.join(e.name for e in engines)} agree)"], disable_numparse=True
            )
        )
    )
    if args.write:
        text, added = updated_text(case, key, args.decimals, natural_shapes(case, engines[0]))
        written = case.path
        if added:
            try:
                written = write_atomically(case.path, text)
            except CaseError as exc:
                print(terminal(exc), file=sys.stderr)
                return 2
            except OSError as exc:
                print(terminal(f"{case.path}: cannot write the solved file: {exc}"), file=sys.stderr)
                return 2
        linked = os.path.realpath(case.path) != os.path.abspath(case.path)
        through = f" (through the symbolic link {case.path})" if linked else ""
        count = f"{len(added)} computed value{'s' * (len(added) != 1)} written"
        print(
            terminal(
                f"{written if linked else case.path}: {count}{through}"
                + ("" if added else " (everything was already there)")
            ),
            file=sys.stderr,
        )
    return 0


def cmd_explain(args):
    from oracle.authoring.explain import explain

    cases = _cases_or_exit([args.case])
    if cases is None:
        return 2
    try:
        text = explain(cases[0], args.format, args.decimals)
    except ValueError as exc:
        print(terminal(f"{args.case}: cannot explain it: {exc}"), file=sys.stderr)
        return 2
    _emit(text, args.output)
    return 0


def cmd_draw(args):
    cases = _cases_or_exit([args.case])
    if cases is None:
        return 2
    try:
        from oracle.authoring import draw

        (draw.plot_history if args.history else draw.draw)(cases[0], Path(args.output))
    except (ImportError, ValueError) as exc:
        print(terminal(f"{args.case}: {exc}"), file=sys.stderr)
        return 2
    print(terminal(f"wrote {args.output}"))
    return 0


COMMANDS = {
    "report": cmd_report,
    "validate": cmd_validate,
    "new": cmd_new,
    "solve": cmd_solve,
    "explain": cmd_explain,
    "draw": cmd_draw,
    "grade": cmd_grade,
    "template": cmd_template,
    "assignment": lambda args: _assignment(args),
    "train": lambda args: _train(args),
    "fuzz": lambda args: _fuzz(args),
}


def _assignment(args):
    from oracle.student.assignment import main_validate

    return main_validate(args.files)


def _fuzz(args):
    from oracle.testing import fuzz as fuzz_mod

    return fuzz_mod.run(args)


def _train(args):
    from oracle.testing import train as train_mod

    return train_mod.run(args)


def main(argv=None):
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
