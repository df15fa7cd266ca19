"""The pytest11 entry point: the options at once, the plugin itself at configure time.

Importing the plugin (and with it refimpl, the engines and numpy) only in
``pytest_configure`` lets pytest-cov start measuring first, so coverage of
refimpl and oracle counts their module-level code. For the same reason the
one key set here, :data:`ASSIGNMENT`, lives in this light module; the plugin
imports it and defines the rest of its ``config.stash`` keys itself.
"""

from pathlib import Path

import pytest

#: The assignment file loaded from --assignment (an ``oracle.student.assignment.Assignment``).
ASSIGNMENT = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("backprop-oracle", "backprop-oracle: lecture cases checked by three engines")
    group.addoption(
        "--no-cases", action="store_true", default=False, help="Do not collect case files; run only the Python tests."
    )
    group.addoption(
        "--cases",
        action="append",
        default=[],
        metavar="PATH",
        help="Run only these case files or folders (may be given several times).",
    )
    group.addoption(
        "--impl",
        metavar="PATH",
        default=None,
        help="Check this implementation (a .py file, a package folder or a dotted module name) "
        "against every case: one test per case and quantity, run in an isolated process.",
    )
    group.addoption(
        "--impl-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="Wall-clock limit for each call into the implementation (default 10 s).",
    )
    group.addoption(
        "--impl-memory",
        type=int,
        default=1024,
        metavar="MB",
        help="Address-space limit of the implementation's process (default 1024 MB).",
    )
    group.addoption(
        "--isolation",
        choices=("auto", "bubblewrap", "process"),
        default="auto",
        help="How the implementation is isolated (default auto: bubblewrap where it works).",
    )
    group.addoption(
        "--allow-import",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="Let the implementation import this package (e.g. torch).",
    )
    group.addoption(
        "--assignment",
        metavar="FILE",
        default=None,
        help="With --impl and --results-json: score by this assignment file (weights, visibility, "
        "the quantities that count).",
    )
    group.addoption(
        "--results-json",
        metavar="PATH",
        default=None,
        help="Write per-case, per-quantity results and the score in the Gradescope autograder results.json format.",
    )
    from oracle.verdict.limits import add_options

    add_options(group.addoption)  # --max-file-mb, --max-depth, …: the limits on a case file


def pytest_configure(config):
    cases = config.getoption("--cases")
    if config.getoption("--assignment"):
        from oracle.verdict.errors import CaseError
        from oracle.student.assignment import load_assignment

        try:
            assignment = load_assignment(config.getoption("--assignment"))
        except CaseError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[ASSIGNMENT] = assignment
        cases = cases or [str(p) for p in assignment.case_paths()]
    if cases:
        explicit = config.args if config.args_source == pytest.Config.ArgsSource.ARGS else []
        config.args = list(explicit) + [str(Path(c)) for c in cases]
    from oracle import pytest_plugin

    config.pluginmanager.register(pytest_plugin, "backprop-oracle-cases")
