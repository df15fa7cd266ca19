"""Every bad or hostile case file ends in bounded time with exit 2 and one `file:line:col: message`.

The corpus is every file of tests/fixtures/bad_inputs/ (whoever added it) plus the inputs that cannot
live in git, made here in a temporary folder (GENERATED: a 50 MB file, a 10,000-deep list, a
2000×2000 matrix, a FIFO, a folder named x.yaml, a billion steps, 5000-digit literals, …).

Convention of a file in tests/fixtures/bad_inputs/: its first line is

    # expect: REGEX

and REGEX is searched (re.search) in what follows ``NAME:`` on the line of the output that reports the
file, i.e. in ``LINE:COL: message``; so it starts with ``^LINE:COL: `` — LINE counted from 1 = the
``# expect:`` line itself, COL from 1 in characters (as every editor shows them). The same REGEX must
hold for ``validate`` (which checks the JSON Schema first: where the schema words a problem
differently, the regex allows both wordings) and for ``report`` and pytest (the loader alone).

For each input, ONE test runs the three commands from a fresh working folder holding only that input:
``python -m oracle validate NAME``, ``python -m oracle report NAME`` and
``python -m pytest -p no:cacheprovider NAME``. It asserts: validate and report exit 2, pytest exits 1
with exactly one failed item (nothing else collected); the output has ``NAME:LINE:COL: `` followed by
text matching REGEX; nothing says "Traceback" or "Warning"; and each command ends within its bound.
The three commands run as subprocesses (timeout 30 s) for the special generated inputs (a FIFO, a
device, links, a folder, the 50 MB file, the deep nestings, the big matrix, a billion steps, 5000
digits) and a sample of the folder (every SAMPLE-th file); for the others they run in this process
(``oracle.cli.main`` and ``pytest.main``, warnings recorded, a 30 s alarm), which saves the
interpreter's and pytest's start-up (~1-2.5 s a command) and bounds the command's own time tighter.
The bounds hold on a machine that is not busier than its cores; where the load average (1 min) is
higher they stretch by load / cores, so that other work on the machine does not fail the test.
Set BAD_INPUTS_TIMES=FILE to append each measured time to FILE (one JSON object a line).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oracle.cli import main

FOLDER = Path(__file__).parent / "fixtures" / "bad_inputs"
HEADER = re.compile(r"# expect: (.+)")
SUBPROCESS_BOUND = 15.0  # seconds for one command, interpreter start-up and all (measured ≤ 3 s when quiet)
IN_PROCESS_BOUND = 8.0  # seconds for one command run in this process (measured ≤ 1.6 s when quiet;
#                               coverage and a busy CI machine slow it several times)
TIMEOUT = 30  # a command that takes longer has hung
SAMPLE = 8  # every SAMPLE-th folder file runs the commands as subprocesses


@dataclass
class BadInput:
    name: str  # the file's name in the working folder (what the commands are given)
    expect: str  # the regex for what follows NAME: on the reporting line
    make: object  # make(folder): creates the input in the folder
    options: tuple = ()  # extra options, the same for the three commands
    subprocess: bool = True  # the three commands as subprocesses (else in this process)
    notes: list = field(default_factory=list)


# ---------------------------------------------------------------- the folder's files


def _expectation(path):
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", errors="replace")
    m = HEADER.fullmatch(first.rstrip("\r"))
    assert m, f"{path.name} must start with the line '# expect: REGEX'"
    return m.group(1)


def _copy(path):
    return lambda folder: shutil.copyfile(path, folder / path.name)


def folder_inputs():
    files = sorted(p for p in FOLDER.iterdir() if p.is_file() and not p.name.startswith("."))
    return [BadInput(p.name, _expectation(p), _copy(p), subprocess=i % SAMPLE == 0) for i, p in enumerate(files)]


# ---------------------------------------------------------------- generated inputs

NET = """title: t
source: {{document: d.txt, heading: h}}
kind: network
layers:
  - W: {W}
    b: {b}
    activation: sigmoid
loss: {{name: squared_error, factor: 0.5, reduction: mean}}
x: {x}
y: {y}
{extra}"""


def net(W="[[0.4, -0.2]]", b="[0]", x="[0.1, 0.3]", y="[1]", extra=""):
    """A network case whose line 1 is the header: W on line 6, b 7, x 10, y 11, extra from 12 (as in the folder)."""
    return "# expect: (generated)\n" + NET.format(W=W, b=b, x=x, y=y, extra=extra)


def text_file(name, text):
    def make(folder):
        (folder / name).write_text(text, encoding="utf-8")

    return make


def padded(name, text, size):
    """text, then comment lines up to ``size`` bytes."""

    def make(folder):
        with open(folder / name, "w", encoding="utf-8") as f:
            f.write(text)
            line = "#" * 99 + "\n"
            left = size - len(text.encode())
            f.write(line * (left // len(line)))
            f.write("#" * (left % len(line)))

    return make


def matrix(n):
    return "[" + ", ".join("[" + ", ".join(["0"] * n) + "]" for _ in range(n)) + "]"


def fifo(folder):
    os.mkfifo(folder / "fifo.yaml")


def folder_named_like_a_case(folder):
    (folder / "folder.yaml").mkdir()
    (folder / "folder.yaml" / "inside.yaml").write_text(net()[net().index("\n") + 1 :], encoding="utf-8")


def link(name, target):
    return lambda folder: os.symlink(target, folder / name)


def position(text, needle, offset=0):
    """LINE:COL of ``needle`` in text, plus ``offset`` characters (1-based, as the messages give them)."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index) + 1
    return f"{line}:{index - (text.rfind(chr(10), 0, index) + 1) + 1}"


def generated_inputs():
    out = []

    def add(name, expect, make, options=(), special=True):
        out.append(BadInput(name, expect, make, options, subprocess=special))

    add(
        "file_50mb.yaml",
        r"^1:1: the file is 50\.0 MB \(50000000 bytes\), more than a case file may have; "
        r"the limit is 2 MB \(raise it with --max-file-mb\)$",
        padded("file_50mb.yaml", net(), 50_000_000),
    )
    add(
        "file_just_over_2mb.yaml",
        r"^1:1: the file is 2\.0 MB \(2000001 bytes\), more than a case file may have",
        padded("file_just_over_2mb.yaml", net(), 2_000_001),
        special=False,
    )
    add(
        "list_10000_deep.yaml",
        r"^10:35: x/0/0/…\(27 more\)…/0/0: lists and mappings nested more than 32 levels "
        r"deep; the limit is 32 \(raise it with --max-depth\)$",
        text_file("list_10000_deep.yaml", net(x="[" * 10_000 + "0.1" + "]" * 10_000)),
    )
    add(
        "mapping_3000_deep.yaml",
        r"^12:133: define/a/a/…\(27 more\)…/a/a: lists and mappings nested more than 32 "
        r"levels deep",
        text_file("mapping_3000_deep.yaml", net(extra="define: " + "{a: " * 3000 + "x" + "}" * 3000 + "\n")),
    )
    big = net(W=matrix(2000))
    add(
        "matrix_2000x2000.yaml",
        r"^1:1: the file is 1\d\.\d MB \(\d+ bytes\), more than a case file may have",
        text_file("matrix_2000x2000.yaml", big),
    )
    add(
        "matrix_2000x2000_file_limit_raised.yaml",
        r"^6:8: layers/0/W: an array of 2000×2000 = 4000000 numbers, "
        r"more than one array may hold; the limit is 10000 \(raise it with --max-elements\)$",
        text_file("matrix_2000x2000_file_limit_raised.yaml", big),
        ("--max-file-mb", "20"),
    )
    add(
        "fifo.yaml",
        r"^1:1: a FIFO \(named pipe\), not a case file: only regular files are read as cases \(it "
        r"was not opened\)$",
        fifo,
    )
    add(
        "folder.yaml",
        r"^1:1: a folder, not a case file: only regular files are read as cases$",
        folder_named_like_a_case,
    )
    add(
        "broken_link.yaml",
        r"^1:1: a symbolic link to 'missing\.yaml', which does not exist$",
        link("broken_link.yaml", "missing.yaml"),
    )
    add("link_loop.yaml", r"^1:1: a symbolic link that loops", link("link_loop.yaml", "link_loop.yaml"))
    add(
        "device_link.yaml",
        r"^1:1: a character device, not a case file: only regular files are read as cases",
        link("device_link.yaml", "/dev/zero"),
    )
    add(
        "steps_billion.yaml",
        r"^12:37: steps: 1000000000 gradient-descent steps are more than a case may run; "
        r"the limit is 10000 \(raise it with --max-steps\)$",
        text_file("steps_billion.yaml", net(extra="gradient_descent: {eta: 0.1, steps: 1000000000}\n")),
    )
    add(
        "literal_5000_digits.yaml",
        r"^6:15: a number written with 5000 digits \(1111.*the limit is 40 \(raise it "
        r"with --max-digits\)$",
        text_file("literal_5000_digits.yaml", net(W="[[0.4, " + "1" * 5000 + "]]")),
    )
    add(
        "exponent_5000_digits.yaml",
        r"^10:5: a number written with 5001 digits",
        text_file("exponent_5000_digits.yaml", net(x="[1e" + "9" * 5000 + ", 0.3]")),
        special=False,
    )
    add(
        "decimals_5000_digits.yaml",
        r"^10:10: a number written with 5001 digits \(0\.000",
        text_file("decimals_5000_digits.yaml", net(x="[0.1, 0." + "0" * 4999 + "1]")),
        special=False,
    )
    long_list = net(x="[" + ", ".join(["0.5"] * 10_001) + "]")
    add(
        "list_10001_entries.yaml",
        rf"^10:{5 + 5 * 10_000}: x: a list of more than 10000 entries; "
        r"the limit is 10000 \(raise it with --max-elements\)$",
        text_file("list_10001_entries.yaml", long_list),
        special=False,
    )
    block = net().replace("y: [1]\n", "y:\n" + "  - 1\n" * 10_001)
    add(
        "block_list_10001_entries.yaml",
        r"^10012:5: y: a list of more than 10000 entries",
        text_file("block_list_10001_entries.yaml", block),
        special=False,
    )
    keys = (
        "# expect: (generated)\ntitle: t\nsource: {document: d.txt, heading: h}\nkind: graph\ninputs: {"
        + ", ".join(f"x{i}: 1" for i in range(10_001))
        + "}\ngraph: {f: x0 * 2}\n"
    )
    add(
        "mapping_10001_keys.yaml",
        rf"^{position(keys, 'x10000: 1', offset=len('x10000: '))}: inputs: a mapping of "
        r"more than 10000 entries; the limit is 10000 \(raise it with --max-elements\)$",
        text_file("mapping_10001_keys.yaml", keys),
        special=False,
    )
    row = "[[" + ", ".join(["0.5"] * 8000) + "]]"
    many = (
        "# expect: (generated)\ntitle: t\nsource: {document: d.txt, heading: h}\nkind: network\nlayers:\n"
        + "".join(f"  - W: {row}\n    b: [0]\n    activation: sigmoid\n" for _ in range(3))
        + "loss: {name: squared_error, factor: 0.5, reduction: mean}\nx: [1]\ny: [1]\n"
    )
    # values before layer 3's first number: the root mapping, title, source and its document and heading, kind,
    # the layers list; per layer its mapping, W's two lists and 8000 numbers, b's list and number, activation
    before = 7 + 2 * 8006 + 3
    add(
        "values_over_total.yaml",
        rf"^12:{10 + 5 * (20_000 - before)}: more than 20000 values \(numbers, texts, "
        r"lists and mappings\) in one case file; the limit is 20000 \(raise it with --max-total\)$",
        text_file("values_over_total.yaml", many),
        special=False,
    )
    comments = "# expect: (generated)\n" + ("#" + " comment" * 12 + "\n") * 19_000
    near = comments + net()[net().index("\n") + 1 :] + "colour: red\n"
    add(
        "comments_near_size_limit.yaml",
        rf"^{near.count(chr(10))}:1: unknown field 'colour'",
        text_file("comments_near_size_limit.yaml", near),
        special=False,
    )
    empties = net(x="[" + ", ".join(["[" + ", ".join(["[]"] * 1000) + "]"] * 30) + "]")
    add(
        "empty_lists_over_total.yaml",
        r"^10:\d+: more than 20000 values \(numbers, texts, lists and mappings\)",
        text_file("empty_lists_over_total.yaml", empties),
        special=False,
    )
    return out


INPUTS = folder_inputs() + generated_inputs()


def test_the_corpus_is_large_and_every_input_is_named_once():
    names = [i.name for i in INPUTS]
    assert len(names) == len(set(names))
    assert len(folder_inputs()) >= 45 and len(INPUTS) >= 60


# ---------------------------------------------------------------- running the commands


@dataclass
class Run:
    command: str
    code: int
    out: str
    err: str
    seconds: float
    warnings: list = field(default_factory=list)
    bound: float = SUBPROCESS_BOUND


def run_subprocess(command, args, cwd):
    module = ["-m", "pytest", "-p", "no:cacheprovider"] if command == "pytest" else ["-m", "oracle", command]
    env = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "default"}
    env.pop("PYTEST_ADDOPTS", None)
    start = time.monotonic()
    r = subprocess.run(
        [sys.executable, *module, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=TIMEOUT,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    return Run(command, r.returncode, r.stdout, r.stderr, time.monotonic() - start)


class _Hung(Exception):
    pass


def _alarm(signum, frame):
    raise _Hung(f"no answer within {TIMEOUT} s")


def run_in_process(command, args, cwd, monkeypatch):
    """The command in this process: ``main`` of the CLI, or ``pytest.main`` (without capture: its output is
    ours to read)."""
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT)
    start = time.monotonic()
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            warnings.simplefilter("always")
            if command == "pytest":
                code = int(pytest.main(["-p", "no:cacheprovider", "-s", *args]))
            else:
                code = main([command, *args])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return Run(
        command,
        code,
        out.getvalue(),
        err.getvalue(),
        time.monotonic() - start,
        [str(w.message) for w in caught],
        IN_PROCESS_BOUND,
    )


def busy():
    """How much busier than its cores the machine is (≥ 1): the load average over the number of CPUs."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def located(output, name):
    """What follows 'NAME:' on each line where NAME is the file (at the start, or after a / or a space)."""
    found = []
    for line in output.splitlines():
        for m in re.finditer(re.escape(name) + ":", line):
            if m.start() == 0 or line[m.start() - 1] in "/ \\":
                found.append(line[m.end() :])
    return found


def _record(case, run):
    target = os.environ.get("BAD_INPUTS_TIMES")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(
                json.dumps(
                    {
                        "input": case.name,
                        "command": run.command,
                        "seconds": round(run.seconds, 3),
                        "subprocess": run.bound == SUBPROCESS_BOUND,
                    }
                )
                + "\n"
            )


@pytest.mark.parametrize("case", INPUTS, ids=lambda c: c.name)
def test_bad_input_ends_quickly_with_one_located_message(case, tmp_path, monkeypatch):
    case.make(tmp_path)
    args = [*case.options, case.name]
    runs = []
    for command in ("validate", "report", "pytest"):
        if case.subprocess:
            runs.append(run_subprocess(command, args, tmp_path))
        else:
            runs.append(run_in_process(command, args, tmp_path, monkeypatch))
    for run in runs:
        _record(case, run)
        output = run.out + "\n" + run.err
        what = f"{run.command} {' '.join(args)}"
        assert "Traceback" not in output, f"{what}:\n{output}"
        assert "Warning" not in run.err and not run.warnings, f"{what}: {run.warnings or run.err}"
        messages = located(output, case.name)
        assert any(re.match(r"\d+:\d+: ", m) and re.search(case.expect, m) for m in messages), (
            f"{what}: no line '{case.name}:LINE:COL: …' matching {case.expect!r}; found:\n" + "\n".join(messages)
        )
        if run.command == "pytest":
            summary = run.out.strip().splitlines()[-1] if run.out.strip() else ""
            assert run.code == 1, f"{what}: exit {run.code}\n{output}"
            assert re.fullmatch(r"=* ?1 failed in [\d.]+s( \([^)]*\))? ?=*", summary), f"{what}: {summary}"
            assert "warnings summary" not in run.out, f"{what}:\n{run.out}"
        else:
            assert run.code == 2, f"{what}: exit {run.code}\n{output}"
        bound = run.bound * busy()
        assert run.seconds < bound, f"{what} took {run.seconds:.1f} s (bound {bound:.1f} s)"


def test_validate_and_report_on_nothing_exit_2_with_a_message(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    for command in ("validate", "report"):
        assert main([command, "empty"]) == 2
        err = capsys.readouterr().err
        assert "no case files found under empty" in err, err


def test_pytest_reports_each_broken_case_file_and_runs_the_rest(tmp_path):
    """A folder of cases with a good one among broken ones (a FIFO, a loop of links, a folder named x.yaml, a
    10,000-deep list): one failed item each, the good case's tests run; a broken link named on the command
    line is one failed item too, and nothing else of its folder is collected."""
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copyfile(Path(__file__).resolve().parents[1] / "cases" / "001_ne1.yaml", cases / "good.yaml")
    fifo(cases)
    link("link_loop.yaml", "link_loop.yaml")(cases)
    folder_named_like_a_case(cases)
    text_file("deep.yaml", net(x="[" * 10_000 + "0.1" + "]" * 10_000))(cases)
    r = run_subprocess("pytest", ["cases"], tmp_path)
    assert "Traceback" not in r.out + r.err and r.code == 1, r.out + r.err
    summary = r.out.strip().splitlines()[-1]
    assert re.search(r"\b4 failed, \d+ passed", summary), summary
    for name in ("fifo.yaml", "link_loop.yaml", "folder.yaml", "deep.yaml"):
        assert any(re.match(r"\d+:\d+: ", m) for m in located(r.out, name)), (name, r.out)
    link("broken.yaml", "missing.yaml")(tmp_path)
    (tmp_path / "test_other.py").write_text("def test_not_collected():\n    pass\n", encoding="utf-8")
    r = run_subprocess("pytest", ["broken.yaml", "cases/good.yaml"], tmp_path)
    summary = r.out.strip().splitlines()[-1]
    assert r.code == 1 and re.search(r"^=* ?1 failed, \d+ passed", summary), r.out
    assert "test_not_collected" not in r.out and any(
        m.startswith("1:1: a symbolic link to 'missing.yaml'") for m in located(r.out, "broken.yaml")
    ), r.out
