"""The command-line tool: ``backprop-oracle report`` (also ``python -m oracle report``).

Exit status: 0 when no check is an undeclared mismatch, 1 when one is, 2 for
unusable input (a case file that does not load, a path that does not exist).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cases import discover, load_case
from .compare import MISMATCH, check_case
from .engines import default_engines
from .errors import CaseError
from . import report as report_mod

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "cases"


def _parser():
    p = argparse.ArgumentParser(prog="backprop-oracle", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="Run every case through every engine and print the comparison.")
    r.add_argument("paths", nargs="*", help="Case files or folders (default: the bundled cases/).")
    r.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: a table for people; json: the same rows for machines.")
    r.add_argument("-o", "--output", help="Write the report to this file instead of standard output.")
    return p


def load_all(paths):
    """Load every case; return (cases, errors) — errors are CaseErrors, never tracebacks."""
    cases, errors = [], []
    for path in discover(paths):
        if not path.exists():
            errors.append(CaseError(path, 1, 1, "no such file or folder"))
            continue
        try:
            cases.append(load_case(path))
        except CaseError as exc:
            errors.append(exc)
    return cases, errors


def main(argv=None):
    args = _parser().parse_args(argv)
    paths = args.paths or [DEFAULT_CASES]
    missing = [p for p in paths if not Path(p).exists()]
    cases, errors = load_all([p for p in paths if Path(p).exists()])
    errors = [CaseError(p, 1, 1, "no such file or folder") for p in missing] + errors
    for exc in errors:
        print(exc, file=sys.stderr)
    if errors:
        return 2
    if not cases:
        print(f"no case files found under {', '.join(map(str, paths))}", file=sys.stderr)
        return 2
    engines = default_engines()
    names = [e.name for e in engines]
    checks = [c for case in cases for c in check_case(case, engines)]
    out = report_mod.as_json(checks, names) if args.format == "json" else report_mod.text(checks, names)
    if args.output:
        Path(args.output).write_text(out + "\n", encoding="utf-8")
    else:
        try:
            print(out)
        except BrokenPipeError:  # e.g. piped into head: not an error of the report
            sys.stderr.close()
    return 1 if any(c.status == MISMATCH for c in checks) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
