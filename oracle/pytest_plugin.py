"""pytest plugin: every case file becomes tests, one per quantity.

Collected: ``*.yaml`` files inside a folder named ``cases`` and any case file
or folder named on the command line. Test ids read
``cases/001_sigmoid_net.yaml::delta[2]``; a failure shows a small table of
the document's value and each engine's, with the difference.
A case file that does not load is one failing test whose message is
``file:line:col: problem``. Registered by oracle.pytest_entry (the
pytest11 entry point) when pytest configures itself.

With ``--impl`` each case file yields :class:`ImplItem` s (the implementation
under test against the references) instead of :class:`CaseItem` s (the
document against the engines); the ids are the same. Session state lives in
``config.stash`` under the keys below.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tabulate import tabulate

from oracle.pytest_entry import ASSIGNMENT
from oracle.verdict.cases import CASE_SUFFIXES, load_case
from oracle.verdict.compare import ERRATUM, MISMATCH, check_case
from oracle.verdict.engines import default_engines
from oracle.verdict.errors import CaseError

ENGINES = pytest.StashKey()  # the reference engines, made once per session
LIMITS = pytest.StashKey()  # the limits on a case file (--max-file-mb, …)
CHECKS = pytest.StashKey()  # every case's checks, for results.json
IMPL = pytest.StashKey()  # the implementation under test (--impl), an IsolatedImplementation
REFS = pytest.StashKey()  # the references it is graded against (oracle.student.grade.References)
GRADES = pytest.StashKey()  # its grades, one per case file
FORBIDDEN = pytest.StashKey()  # the messages of its forbidden imports
RESULT = pytest.StashKey()  # its SubmissionResult, made at session finish
NAMED = pytest.StashKey()  # the absolute paths named on the command line, when one is a broken link
SUBSTITUTES = pytest.StashKey()  # the folders collected in place of broken links


def pytest_report_header(config):
    if config.getoption("--no-cases"):
        return None
    import numpy

    lines = [
        f"backprop-oracle: engines numpy {numpy.__version__} (refimpl), torch (autograd, float64), "
        f"fd (central differences)"
    ]
    impl = config.getoption("--impl")
    if impl:
        from oracle.student.sandbox import describe, resolve_mode

        lines.append(
            f"backprop-oracle: implementation under test {impl}; "
            + describe(resolve_mode(config.getoption("--isolation")))
        )
    args = ["pytest"] + [a for a in config.invocation_params.args]
    lines.append("backprop-oracle: reproduce with: " + " ".join(args))
    return lines


def _engines(config):
    if ENGINES not in config.stash:
        config.stash[ENGINES] = default_engines()
    return config.stash[ENGINES]


def _impl(config):
    """The implementation under test (--impl), started once per session, with shared references."""
    if IMPL not in config.stash:
        from oracle.student.cli import Limits
        from oracle.student.grade import References
        from oracle.student.imports import scan
        from oracle.student.sandbox import IsolatedImplementation

        spec = config.getoption("--impl")
        limits = Limits(
            config.getoption("--impl-timeout"),
            config.getoption("--impl-memory"),
            config.getoption("--isolation"),
            tuple(config.getoption("--allow-import")),
        )
        config.stash[IMPL] = IsolatedImplementation(
            spec,
            timeout=limits.timeout,
            memory_mb=limits.memory_mb,
            isolation=limits.isolation,
            allow_imports=limits.allow_imports,
        )
        config.stash[FORBIDDEN] = [f.message() for f in scan(spec, limits.allow_imports)]
        config.stash[REFS] = References(_engines(config))
        config.stash[GRADES] = []
    return config.stash[IMPL]


def pytest_ignore_collect(collection_path, config):
    """With --impl only the case files run, unless Python test files are named on the command line."""
    if (
        config.getoption("--impl")
        and collection_path.suffix == ".py"
        and not _named_on_command_line(config, collection_path)
    ):
        return True
    return None


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    impl = config.stash.get(IMPL, None)
    result = None
    if impl is not None:
        impl.close()
        from oracle.student.results import SubmissionResult

        result = SubmissionResult(
            impl.name, config.stash[GRADES], list(dict.fromkeys(impl.events)), impl.mode, config.stash[FORBIDDEN]
        )
        config.stash[RESULT] = result
    path = config.getoption("--results-json")
    if path:
        from oracle.student.results import write_results

        write_results(path, result, config.stash.get(CHECKS, None), config.stash.get(ASSIGNMENT, None))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    result = config.stash.get(RESULT, None)
    if result is not None:
        for line in result.forbidden + result.problems:
            terminalreporter.write_line(f"backprop-oracle: {line}", red=True)
        terminalreporter.write_line(f"backprop-oracle: {result.name}: {result.headline.text()}")


def _named_on_command_line(config, file_path):
    """Whether the path was named (as an argument or with --cases) — pytest's testpaths do not count."""
    named = config.args if config.args_source == pytest.Config.ArgsSource.ARGS else config.getoption("--cases")
    for arg in named:
        target = Path(str(arg).split("::")[0]).resolve()
        if target == file_path.resolve() or target in file_path.resolve().parents:
            return True
    return False


def _limits(config):
    if LIMITS not in config.stash:
        from oracle.verdict.limits import from_options

        config.stash[LIMITS] = from_options(lambda dest: config.getoption(dest, None))
    return config.stash[LIMITS]


def _is_case_path(config, file_path):
    """A *.yaml / *.yml path collected as a case: inside a folder named cases, or named on the command line."""
    if config.getoption("--no-cases") or file_path.suffix not in CASE_SUFFIXES:
        return False
    in_cases = "cases" in file_path.parts[:-1]
    if in_cases or file_path in config.stash.get(NAMED, ()):
        return True
    try:
        return _named_on_command_line(config, file_path) and "tests" not in file_path.parts
    except (OSError, RuntimeError):  # a symbolic link that loops cannot be resolved
        return False


def pytest_collect_file(parent, file_path):
    if _is_case_path(parent.config, file_path):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def pytest_collect_directory(path, parent):
    """A folder named like a case file is one case file that does not load (it is reported, not searched)."""
    if _is_case_path(parent.config, path):
        return CaseFile.from_parent(parent, path=path)
    return None


def _absolute(path, base):
    """The absolute path, symbolic links kept (a broken link stays itself)."""
    return Path(os.path.abspath(Path(base) / path))


def pytest_configure(config):
    """A case file named on the command line that is a broken symbolic link: pytest refuses such an argument
    before any plugin sees it, so its folder is collected instead, limited to that link (and whatever else is
    named in it), and the link is one failing test like every case file that does not load."""
    named = [_absolute(str(a).split("::")[0], config.invocation_params.dir) for a in config.args]
    dangling = [p for p in named if p.suffix in CASE_SUFFIXES and os.path.islink(p) and not os.path.exists(p)]
    if not dangling:
        return
    config.stash[NAMED] = named
    config.stash[SUBSTITUTES] = {
        p.parent for p in dangling if not any(n == p.parent or n in p.parent.parents for n in named)
    }
    config.args = [str(p.parent) if p in dangling else a for p, a in zip(named, config.args)]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A folder's *.yaml entries that are neither files nor folders (a FIFO, a device, a broken link), which pytest
    skips, become case files that do not load, so that each is reported by name (and never opened)."""
    rep = yield
    directory = getattr(pytest, "Directory", None)
    if directory is None or not isinstance(collector, directory) or not rep.passed:
        return rep
    rep.result = list(rep.result) + _not_regular(collector)
    config = collector.config
    if _restricted(config, collector.path):
        named = config.stash[NAMED]
        rep.result = [node for node in rep.result if any(n == node.path or node.path in n.parents for n in named)]
    return rep


def _restricted(config, folder):
    """Inside a folder collected in place of a broken link, and not inside a folder named on the command line:
    only what is named (and the folders on the way to it) is collected."""
    substitutes = config.stash.get(SUBSTITUTES, ())
    return any(folder == s or s in folder.parents for s in substitutes) and not any(
        (n == folder or n in folder.parents) and n.is_dir() for n in config.stash[NAMED]
    )


def _not_regular(collector):
    try:
        entries = sorted(os.scandir(collector.path), key=lambda e: e.name)
    except OSError:
        return []
    return [
        CaseFile.from_parent(collector, path=Path(entry.path))
        for entry in entries
        if _neither_file_nor_folder(entry) and _is_case_path(collector.config, Path(entry.path))
    ]


def _neither_file_nor_folder(entry):
    try:
        return not entry.is_dir() and not entry.is_file()
    except OSError:  # a symbolic link that loops
        return True


class CaseFailure(Exception):
    """A quantity of a case that disagrees without a declared erratum."""

    def __init__(self, check):
        super().__init__(check.quantity)
        self.check = check


class ImplFailure(Exception):
    """A quantity the implementation under test gets wrong."""

    def __init__(self, grade, verdict):
        super().__init__(verdict.quantity)
        self.grade, self.verdict = grade, verdict


class CaseFile(pytest.File):
    def collect(self):
        try:
            case = load_case(self.path, _limits(self.config))
        except CaseError as exc:
            yield CaseErrorItem.from_parent(self, name="load", error=exc)
            return
        except Exception as exc:  # load_case turns every failure into a CaseError: the guard of last resort
            error = CaseError(self.path, 1, 1, f"the loader failed ({type(exc).__name__}: {exc})")
            yield CaseErrorItem.from_parent(self, name="load", error=error)
            return
        self.case = case
        self._checks = None
        self._grade = self._verdicts = None
        item = CaseItem
        if self.config.getoption("--impl"):
            _impl(self.config)
            item = ImplItem
        names = [q for q in case.quantities] + [f"formula:{f.name}" for f in case.formulas]
        lines = {x.quantity: x.line for x in case.expect}
        lines.update({f"formula:{f.name}": f.line for f in case.formulas})
        for name in names:
            yield item.from_parent(self, name=name, quantity=name, line=lines.get(name, 1))

    def checks(self):
        if self._checks is None:
            checks = check_case(self.case, _engines(self.config))
            self._checks = {c.quantity: c for c in checks}
            self.config.stash.setdefault(CHECKS, []).extend(checks)
        return self._checks

    def grade(self):
        """The implementation's verdicts on this case (--impl)."""
        if self._grade is None:
            from oracle.student.grade import grade_case

            impl = _impl(self.config)
            self._grade = grade_case(self.case, impl, self.config.stash[REFS])
            self._verdicts = {v.quantity: v for v in self._grade.verdicts}
            self.config.stash[GRADES].append(self._grade)
        return self._grade

    def verdict(self, quantity):
        """The implementation's verdict on one quantity, or None for a formula or derived value (--impl)."""
        self.grade()
        return self._verdicts.get(quantity)


class _QuantityItem(pytest.Item):
    """One quantity (or printed formula) of a case file."""

    def __init__(self, *, quantity, line, **kwargs):
        super().__init__(**kwargs)
        self.quantity, self.line = quantity, line

    def reportinfo(self):
        return self.path, self.line - 1, f"{self.path.name}::{self.quantity}"


class CaseItem(_QuantityItem):
    """The document's value of a quantity against the engines'."""

    def runtest(self):
        check = self.parent.checks().get(self.quantity)
        if check is None:
            pytest.skip("no engine provides this quantity")
        self.user_properties.append(("status", check.status))
        if check.status == ERRATUM:
            self.user_properties.append(("erratum", check.erratum))
        if check.status == MISMATCH:
            raise CaseFailure(check)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFailure):
            return failure_table(excinfo.value.check)
        return super().repr_failure(excinfo)


class ImplItem(_QuantityItem):
    """The implementation under test (--impl) on a quantity, against the references."""

    def runtest(self):
        from oracle.student.grade import DOWNSTREAM, NOT_IMPLEMENTED, PASS

        grade = self.parent.grade()
        verdict = self.parent.verdict(self.quantity)
        if verdict is None:
            pytest.skip("a printed formula or derived value: it judges the document, not the implementation")
        if verdict.status == NOT_IMPLEMENTED:
            pytest.skip(f"not implemented: {verdict.message}")
        self.user_properties.append(("status", verdict.status))
        if verdict.status == DOWNSTREAM:
            pytest.xfail(verdict.message)
        if verdict.status != PASS:
            raise ImplFailure(grade, verdict)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ImplFailure):
            from oracle.student.results import verdict_text

            return verdict_text(excinfo.value.grade, excinfo.value.verdict)
        return super().repr_failure(excinfo)


class CaseErrorItem(pytest.Item):
    def __init__(self, *, error, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self):
        raise self.error

    def repr_failure(self, excinfo):
        return str(self.error)

    def reportinfo(self):
        return self.path, self.error.line - 1, f"{self.path.name}: case file does not load"


def failure_table(check):
    """quantity, document, each engine, difference, status — for the failing elements first."""
    rows = []
    for e in sorted(check.elements, key=lambda e: e.status != MISMATCH):
        label = check.quantity + (f"[{e.index[0]}]" if len(check.elements) > 1 else "")
        doc = "—" if e.document is None else (check.texts[e.index[0]] if check.texts else f"{e.document:.10g}")
        rows.append(
            [
                label,
                doc,
                *("—" if v is None else f"{v:.10g}" for v in e.engines.values()),
                f"{e.difference:.3g}",
                e.status,
                e.message,
            ]
        )
    engines = list(check.elements[0].engines) if check.elements else []
    table = tabulate(
        rows, headers=["quantity", "document", *engines, "difference", "status", "why"], disable_numparse=True
    )
    head = (
        f"{check.case.path}: {check.quantity}: {check.message}"
        if check.message
        else f"{check.case.path}: {check.quantity}"
    )
    if check.printed:
        head += f"\nprinted formula: {check.printed}"
    return f"{head}\n{table}"
