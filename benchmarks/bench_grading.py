#!/usr/bin/env python
"""Benchmarks of grading students' implementations, all measured side by side in one run.

    python benchmarks/bench_grading.py               # everything (about 4 minutes on 2 cores, more when loaded)
    python benchmarks/bench_grading.py --quick       # 1 round, 20 submissions, fewer sandbox starts (~1–2 min)
    python benchmarks/bench_grading.py --markdown out.md --json out.json
    python benchmarks/bench_grading.py --with-suite  # also `pytest --impl X` without paths, once (~4 min more)

What is measured (see benchmarks/README.md, "Grading students' implementations"):

1. report    `python -m oracle report` on the bundled cases (wall time of the command), and its
             work in-process: `cli.main(["report"])` timed after `import torch, numpy, oracle`.
2. grade     `python -m oracle grade SUBS --jobs 2 --results-dir OUT --isolation MODE` for MODE =
             bubblewrap and process, on the same 100 submissions: copies of
             tests/fixtures/impls/correct_solution.py, mistaken variants of it made by one-line
             edits (each edit is checked to apply exactly once), and copies of
             tests/fixtures/students/{correct,mistaken}/ where that folder exists, about half
             correct and half mistaken. Every results.json is checked: each correct copy must get
             full marks and each one-line variant must lose marks. Per submission beyond the bare
             report: (grade wall − report wall of the same round) / number of submissions; the
             target is at most 0.5 s.
3. pytest    `python -m pytest --impl tests/fixtures/impls/correct_solution.py cases` (every bundled
             case against the implementation) beside `python -m pytest cases` (the cases alone),
             both with `-p no:cacheprovider -q`. `cases` is named on both command lines because
             without a path pytest takes the project's testpaths (tests and cases), and the
             plugin then also runs every Python test (see --with-suite).
4. sandbox   in a child process: `IsolatedImplementation(path, isolation=MODE)`, its first call
             (`.activation("relu", np.array([1.0]))`) and `.close()`, repeated per mode (the modes
             alternate); the round trip of that small call on a started worker; and, for the
             decomposition, `grade_one` of one correct and one mistaken submission in-process with
             the references computed beforehand and, in process mode, the case files watched (as
             `grade` does), with the number of calls it makes into the worker and the CPU time of
             the grader's process and of the worker.

Sections 1–3 run in interleaved rounds (the order reversed every other round), so that a change
of the machine's load hits all commands alike; every figure is a median with its interquartile
range. The machine (CPU model from /proc/cpuinfo, cores, load average before and after, the CPU
used by other processes) is recorded with the results: this 2-core machine is shared. Every
temporary file (submissions, results folders) lives in a tempfile.TemporaryDirectory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORRECT = ROOT / "tests" / "fixtures" / "impls" / "correct_solution.py"
STUDENTS = ROOT / "tests" / "fixtures" / "students"
DEFAULT_MARKDOWN = Path(__file__).resolve().parent / "grading_results.md"
MODES = ("bubblewrap", "process")
TARGET_PER_SUBMISSION = 0.5  # seconds per submission beyond the bare report
NOISY = 0.25  # an IQR wider than this share of the median is marked †

# One-line edits of correct_solution.py, each a mistake of the catalogue (README, "Checking an
# implementation"): (name, the line's text as it is, the line's text with the mistake).
VARIANTS = (
    ("bp2_transpose_missing", "grad_a[l] = Wc[l + 1].T @ delta[l + 1]", "grad_a[l] = Wc[l + 1] @ delta[l + 1]"),
    (
        "update_plus_eta",
        "else np.asarray(w) - eta * np.asarray(dC_dW[l])",
        "else np.asarray(w) + eta * np.asarray(dC_dW[l])",
    ),
    ("bp3_bias_mean", "scale * delta[l].sum(axis=1)", "scale * delta[l].mean(axis=1)"),
    ("bp2_no_fprime", "delta[l] = grad_a[l] * activation_derivative(f[l][0], z[l], f[l][1])", "delta[l] = grad_a[l]"),
    ("mean_without_1_over_n", 'scale = 1 / N if reduction == "mean" else 1', "scale = 1"),
    ("bp1_sign_flipped", "return 2 * factor * (a - y)\n", "return 2 * factor * (y - a)\n"),
    ("sigmoid_prime_at_a", "return _sig(z) * (1 - _sig(z))", "return _sig(_sig(z)) * (1 - _sig(_sig(z)))"),
    ("relu_prime_zero_is_one", "return np.where(z > 0, 1.0, 0.0)", "return np.where(z >= 0, 1.0, 0.0)"),
)


# ---------------------------------------------------------------------------------------------
# statistics and formatting


def summary(samples):
    """(median, q1, q3) of a list of numbers."""
    s = sorted(samples)
    if len(s) == 1:
        return s[0], s[0], s[0]
    q = statistics.quantiles(s, n=4, method="inclusive")
    return statistics.median(s), q[0], q[2]


def fmt_time(seconds):
    """A duration with three significant digits in a fitting unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale or unit == "µs":
            v = seconds / scale
            return f"{v:.3g} {unit}" if abs(v) < 100 else f"{v:.0f} {unit}"
    return str(seconds)


def fmt_spread(samples, fmt=fmt_time):
    """'median (q1–q3)', † when the IQR is wider than NOISY of the median; n when there are few."""
    if not samples:
        return "—"
    med, q1, q3 = summary(samples)
    if len(samples) == 1:
        return f"{fmt(med)} (1 run)"
    mark = " †" if med > 0 and (q3 - q1) / med > NOISY else ""
    return f"{fmt(med)} ({fmt(q1)}–{fmt(q3)}){mark}"


def progress(text):
    if text:
        print(f"… {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# the machine and its load


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _machine_busy_seconds():
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    """CPU used by other processes during a section (machine busy time minus this benchmark's own,
    its waited-for children included), in cores on average."""

    def __enter__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), _machine_busy_seconds(), _own_cpu_seconds()
        self.load0 = loadavg().split()[0]
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        own = _own_cpu_seconds() - self.own0
        self.others = max(0.0, (_machine_busy_seconds() - self.busy0 - own) / self.wall)
        self.own = own / self.wall
        self.load1 = loadavg().split()[0]
        return False

    def describe(self):
        return (
            f"{self.wall:.0f} s, load average {self.load0} → {self.load1}, other processes "
            f"{self.others:.2f} cores, this benchmark {self.own:.2f} cores"
        )


# ---------------------------------------------------------------------------------------------
# the submissions


def make_variants():
    """{name: source} of the one-line mistaken variants of correct_solution.py (each edit checked)."""
    text = CORRECT.read_text(encoding="utf-8")
    out = {}
    for name, old, new in VARIANTS:
        n = text.count(old)
        if n != 1:
            raise SystemExit(
                f"bench_grading: the edit {name!r} does not apply to {CORRECT.relative_to(ROOT)}: "
                f"{old.strip()!r} occurs {n} times (expected once)"
            )
        edited = text.replace(old, new)
        changed = [i for i, (a, b) in enumerate(zip(text.splitlines(), edited.splitlines())) if a != b]
        if len(changed) != 1 or len(text.splitlines()) != len(edited.splitlines()):
            raise SystemExit(f"bench_grading: the edit {name!r} is not a one-line edit")
        compile(edited, f"{name}.py", "exec")
        out[name] = edited
    return out


def make_submissions(folder, n):
    """Write n submissions into folder (half correct, half mistaken) and return {file stem: kind}.

    kind is 'correct copy', 'variant', 'student correct' or 'student mistaken'. The student files
    (tests/fixtures/students/, when it exists) are included as far as they fit; at least one copy of
    every one-line variant is kept when n allows."""
    folder.mkdir(parents=True)
    variants = make_variants()
    n_correct = (n + 1) // 2
    n_mistaken = n - n_correct
    stud_c = sorted((STUDENTS / "correct").glob("*.py")) if (STUDENTS / "correct").is_dir() else []
    stud_m = sorted((STUDENTS / "mistaken").glob("*.py")) if (STUDENTS / "mistaken").is_dir() else []
    stud_c = stud_c[:n_correct]
    stud_m = stud_m[: max(0, n_mistaken - min(n_mistaken, len(variants)))]
    correct_text = CORRECT.read_text(encoding="utf-8")
    kinds = {}
    i = 0

    def put(stem, text, kind):
        nonlocal i
        name = f"sub{i:03d}_{stem}"
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
        kinds[name] = kind
        i += 1

    for p in stud_c:
        put(f"student_{p.stem}", p.read_text(encoding="utf-8"), "student correct")
    for _ in range(n_correct - len(stud_c)):
        put("correct_solution", correct_text, "correct copy")
    for p in stud_m:
        put(f"student_{p.stem}", p.read_text(encoding="utf-8"), "student mistaken")
    names = list(variants)
    for k in range(n_mistaken - len(stud_m)):
        name = names[k % len(names)]
        put(name, variants[name], "variant")
    return kinds


def check_results(out_dir, kinds):
    """{kind: (full marks, lost marks, missing)} from OUT/<submission>/results.json; raises when a
    correct copy loses marks or a one-line variant does not."""
    counts = {}
    problems = []
    for name, kind in kinds.items():
        path = out_dir / name / "results.json"
        full, lost, missing = counts.get(kind, (0, 0, 0))
        if not path.is_file():
            counts[kind] = (full, lost, missing + 1)
            problems.append(f"{name}: no results.json")
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        ok = data["score"] == data["max_score"] and data["max_score"] > 0
        counts[kind] = (full + ok, lost + (not ok), missing)
        if kind == "correct copy" and not ok:
            problems.append(f"{name}: the correct solution lost marks ({data['score']}/{data['max_score']})")
        if kind == "variant" and ok:
            problems.append(f"{name}: the mistaken variant got full marks")
    if problems:
        raise RuntimeError("grading results are not as expected:\n  " + "\n  ".join(problems[:20]))
    return counts


# ---------------------------------------------------------------------------------------------
# commands

REPORT_CHILD = r"""
import contextlib, io, json, time
t0 = time.perf_counter()
import torch, numpy, oracle.cli as cli
t1 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    rc = cli.main(["report"])
t2 = time.perf_counter()
print(json.dumps({"rc": rc, "imports": t1 - t0, "work": t2 - t1}))
"""


def run_timed(args, env, cwd=ROOT):
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - t0, proc


def _fail(what, proc):
    tail = (proc.stdout[-1500:] + "\n" + proc.stderr[-1500:]).strip()
    raise RuntimeError(f"{what} exited {proc.returncode}:\n{tail}")


def bench_commands(opts, env, tmp, subs, kinds):
    py = sys.executable
    impl = str(CORRECT.relative_to(ROOT))
    tasks = {
        "report": [py, "-m", "oracle", "report"],
        "report_work": [py, "-c", REPORT_CHILD],
        "pytest_impl": [py, "-m", "pytest", "--impl", impl, "cases", "-p", "no:cacheprovider", "-q"],
        "pytest_cases": [py, "-m", "pytest", "cases", "-p", "no:cacheprovider", "-q"],
    }
    for mode in MODES:
        tasks[f"grade_{mode}"] = [
            py,
            "-m",
            "oracle",
            "grade",
            str(subs),
            "--jobs",
            str(opts.jobs),
            "--results-dir",
            None,
            "--isolation",
            mode,
        ]
    order = ["report", "grade_bubblewrap", "pytest_impl", "report_work", "grade_process", "pytest_cases"]
    samples = {k: [] for k in list(tasks) + ["report_imports"] + [f"per_sub_{m}" for m in MODES]}
    outcomes = {}
    for r in range(opts.rounds):
        walls = {}
        for name in order if r % 2 == 0 else order[::-1]:
            progress(f"round {r + 1}/{opts.rounds}: {name}")
            cmd = list(tasks[name])
            out = None
            if name.startswith("grade_"):
                out = tmp / f"out_{name}_{r}"
                cmd[cmd.index(None)] = str(out)
            t, proc = run_timed(cmd, env)
            if proc.returncode:
                _fail(" ".join(cmd[1:4]), proc)
            walls[name] = t
            if name == "report_work":
                child = json.loads(proc.stdout.strip().splitlines()[-1])
                if child["rc"]:
                    raise RuntimeError(f"the report in-process returned {child['rc']}")
                samples["report_work"].append(child["work"])
                samples["report_imports"].append(child["imports"])
                continue
            samples[name].append(t)
            if out is not None:
                outcomes[name] = check_results(out, kinds)
                outcomes[f"{name}_first_line"] = proc.stdout.splitlines()[0] if proc.stdout else ""
                shutil.rmtree(out)
            elif name.startswith("pytest"):
                outcomes[name] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        for mode in MODES:
            samples[f"per_sub_{mode}"].append((walls[f"grade_{mode}"] - walls["report"]) / len(kinds))
    return samples, outcomes


SANDBOX_CHILD = r"""
import json, os, sys, time
import numpy as np
from oracle.student import sandbox
opts = json.loads(sys.argv[1])
out = {m: {"start": [], "close": [], "roundtrip": [], "grade_one": {}, "grader_cpu": {}, "worker_cpu": {},
          "calls": {}} for m in opts["modes"]}
x = np.array([1.0])
for r in range(opts["starts"]):
    for mode in (opts["modes"] if r % 2 == 0 else opts["modes"][::-1]):
        t0 = time.perf_counter()
        impl = sandbox.IsolatedImplementation(opts["correct"], isolation=mode)
        impl.activation("relu", x)
        t1 = time.perf_counter()
        impl.close()
        t2 = time.perf_counter()
        out[mode]["start"].append(t1 - t0)
        out[mode]["close"].append(t2 - t1)
for mode in opts["modes"]:
    impl = sandbox.IsolatedImplementation(opts["correct"], isolation=mode)
    impl.activation("relu", x)
    for _ in range(opts["calls"]):
        t0 = time.perf_counter()
        impl.activation("relu", x)
        out[mode]["roundtrip"].append(time.perf_counter() - t0)
    impl.close()
# grade_one in-process, the references computed first and (process mode) the case files watched,
# as `grade` does
from oracle.cli import _cases_or_exit, default_cases
from oracle.verdict.engines import default_engines
from oracle.student.cli import Limits, grade_one
from oracle.student.grade import CaseFileWatch, References
cases = _cases_or_exit([default_cases()])
refs = References(default_engines())
t0 = time.perf_counter()
for case in cases:
    refs.results(case)
    refs.mistakes(case)
refs_time = time.perf_counter() - t0
# CPU seconds (user + system) of pid and all its descendants, from /proc: bwrap's inner
# processes are never reaped by this process, so os.times() cannot see them
def tree_cpu(pid):
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split())
        except (OSError, ValueError, IndexError):
            pass
    return total
worker_cpu = [0.0]
original_close = sandbox.IsolatedImplementation.close
def sampling_close(self):
    if self.process is not None:
        worker_cpu[0] += tree_cpu(self.process.pid)
    return original_close(self)
sandbox.IsolatedImplementation.close = sampling_close
calls = [0]
original = sandbox.IsolatedImplementation.call
def counting(self, name, *args):
    calls[0] += 1
    return original(self, name, *args)
sandbox.IsolatedImplementation.call = counting
for r in range(opts["grades"]):
    for mode in (opts["modes"] if r % 2 == 0 else opts["modes"][::-1]):
        for label, path in opts["subs"].items():
            calls[0], worker_cpu[0] = 0, 0.0
            c0, t0 = time.process_time(), time.perf_counter()
            watch = CaseFileWatch(cases) if mode == "process" else None      # as grade_folder does
            result = grade_one(path, cases, refs, Limits(isolation=mode), name=label, watch=watch)
            t1, c1 = time.perf_counter(), time.process_time()
            out[mode]["grade_one"].setdefault(label, []).append(t1 - t0)
            out[mode]["grader_cpu"].setdefault(label, []).append(c1 - c0)
            out[mode]["worker_cpu"].setdefault(label, []).append(worker_cpu[0])
            out[mode]["calls"][label] = calls[0]
            if result.partial or result.problems:
                raise SystemExit(f"grade_one {label} ({mode}): {result.problems}")
print(json.dumps({"modes": out, "cases": len(cases), "refs": refs_time}))
"""


def bench_sandbox(opts, env, tmp):
    folder = tmp / "sandbox"
    folder.mkdir()
    correct = folder / "correct_solution.py"
    shutil.copy2(CORRECT, correct)
    mistaken = folder / "bp3_bias_mean.py"
    mistaken.write_text(make_variants()["bp3_bias_mean"], encoding="utf-8")
    child_opts = {
        "modes": list(MODES),
        "starts": opts.starts,
        "calls": opts.calls,
        "grades": opts.grades,
        "correct": str(correct),
        "subs": {"correct": str(correct), "mistaken": str(mistaken)},
    }
    progress(f"sandbox: {opts.starts} start-ups per mode, {opts.calls} calls, grade_one ×{opts.grades}")
    t, proc = run_timed([sys.executable, "-c", SANDBOX_CHILD, json.dumps(child_opts)], env)
    if proc.returncode:
        _fail("the sandbox child", proc)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_suite(env):
    """The brief's literal command: `pytest --impl X` without paths (testpaths: tests and cases)."""
    progress("pytest --impl without paths (the whole test suite), once")
    cmd = [sys.executable, "-m", "pytest", "--impl", str(CORRECT.relative_to(ROOT)), "-p", "no:cacheprovider", "-q"]
    t, proc = run_timed(cmd, env)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return t, proc.returncode, last


# ---------------------------------------------------------------------------------------------
# the table


def build_markdown(opts, meta, samples, outcomes, sb, suite, loads):
    n = meta["submissions"]
    rows = []

    def row(what, value, note=""):
        rows.append(f"| {what} | {value} | {note} |")

    row("machine", f"{meta['cpu']}, nproc {meta['nproc']}", f"Python {meta['python']}; shared machine")
    row(
        "load average (1, 5, 15 min)",
        f"before {meta['load_before']}; after {meta['load_after']}",
        f"other processes: {meta['others']:.2f} cores on average over the run",
    )
    rw = samples["report"]
    row("**1.** `python -m oracle report`, wall", fmt_spread(rw), f"{len(rw)} runs, all {sb['cases']} bundled cases")
    row(
        '… its work in-process (`cli.main(["report"])` after the imports)',
        fmt_spread(samples["report_work"]),
        f"imports before it: {fmt_spread(samples['report_imports'])}",
    )
    for mode in MODES:
        g = samples[f"grade_{mode}"]
        per = samples[f"per_sub_{mode}"]
        med = summary(per)[0]
        verdict = "**met**" if med <= TARGET_PER_SUBMISSION else "**MISSED**"
        row(
            f"**2.** `grade` {n} submissions `--jobs {opts.jobs} --isolation {mode}`, wall",
            fmt_spread(g),
            f"{len(g)} runs",
        )
        row(
            f"… per submission beyond the bare report ({mode})",
            fmt_spread(per),
            f"target ≤ {TARGET_PER_SUBMISSION:g} s: {verdict}",
        )
    kinds = outcomes.get("grade_bubblewrap") or {}
    mix = "; ".join(f"{k}: {f + l} ({f} full marks, {l} lost marks)" for k, (f, l, _m) in sorted(kinds.items()))
    row("… the submissions (identical in both modes)", mix or "—", f"{sum(f + l for f, l, _ in kinds.values())} in all")
    row(
        "**3.** `pytest --impl tests/fixtures/impls/correct_solution.py cases`, wall",
        fmt_spread(samples["pytest_impl"]),
        outcomes.get("pytest_impl", ""),
    )
    row(
        "… `pytest cases` (the cases alone), wall",
        fmt_spread(samples["pytest_cases"]),
        outcomes.get("pytest_cases", ""),
    )
    if suite is not None:
        t, rc, last = suite
        row(
            "… `pytest --impl tests/fixtures/impls/correct_solution.py` (no path: tests/ and cases/)",
            fmt_time(t) + " (1 run)",
            f"exit {rc}: {last}",
        )
    for mode in MODES:
        m = sb["modes"][mode]
        row(
            f"**4.** sandbox {mode}: construct + first call (start-up)",
            fmt_spread(m["start"]),
            f"{len(m['start'])} start-ups",
        )
        row(f"… {mode}: `close()`", fmt_spread(m["close"]), "")
        row(
            f"… {mode}: round trip of a small call, started worker",
            fmt_spread(m["roundtrip"]),
            f"{len(m['roundtrip'])} calls",
        )
        for label, ts in m["grade_one"].items():
            row(
                f"… {mode}: `grade_one` of one {label} submission in-process, wall",
                fmt_spread(ts),
                f"{m['calls'][label]} calls into the worker; references precomputed",
            )
            row(
                "… … CPU time of the grader's process (Python under the GIL: one core for all --jobs threads)",
                fmt_spread(m["grader_cpu"][label]),
                f"{mode}, {label}",
            )
            row(
                "… … CPU time of the worker (bwrap and Python, from /proc before close)",
                fmt_spread(m["worker_cpu"][label]),
                f"{mode}, {label}",
            )
    row(
        "… the references of all cases (engines + mistake catalogue), computed once per `grade`",
        fmt_time(sb["refs"]) + " (1 run)",
        "in the sandbox child, after its imports",
    )
    head = ["| what | median (IQR) | notes |", "|---|---|---|"]
    lines = [
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}",
        f"- CPU: {meta['cpu']}; nproc {meta['nproc']} (os.cpu_count {meta['cores']})",
        f"- load average before: {meta['load_before']}; after: {meta['load_after']}",
        *(f"- {k}: {v}" for k, v in loads.items()),
        f"- isolation (first line of `grade`): {outcomes.get('grade_bubblewrap_first_line', '')[:90]}… / "
        f"{outcomes.get('grade_process_first_line', '')[:60]}…",
        "- † IQR wider than 25 % of the median; per-submission figures are per round "
        "(grade wall − report wall of the same round) / submissions",
        "",
    ]
    return "\n".join(lines + head + rows) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:7]),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 20 submissions, 6 sandbox start-ups per mode (about a minute on a quiet machine).",
    )
    p.add_argument("--rounds", type=int, help="Interleaved rounds of the commands (default 3; quick 1).")
    p.add_argument("--submissions", type=int, help="Submissions graded (default 100; quick 20).")
    p.add_argument("--jobs", type=int, default=2, help="grade --jobs (default 2).")
    p.add_argument("--starts", type=int, help="Sandbox start-ups per mode (default 20; quick 6).")
    p.add_argument("--calls", type=int, default=200, help="Small calls timed per mode (default 200).")
    p.add_argument("--grades", type=int, help="grade_one repetitions per mode and submission (default 2; quick 1).")
    p.add_argument(
        "--with-suite",
        action="store_true",
        help="Also time `pytest --impl X` without a path once (runs the whole test suite).",
    )
    p.add_argument(
        "--markdown",
        metavar="FILE",
        default=str(DEFAULT_MARKDOWN),
        help="Write the Markdown table here (default benchmarks/grading_results.md; '-' for none).",
    )
    p.add_argument("--json", metavar="FILE", help="Also write every sample as JSON.")
    opts = p.parse_args(argv)
    opts.rounds = opts.rounds or (1 if opts.quick else 3)
    opts.submissions = opts.submissions or (20 if opts.quick else 100)
    opts.starts = opts.starts or (6 if opts.quick else 20)
    opts.grades = opts.grades or (1 if opts.quick else 2)
    if shutil.which("bwrap") is None:
        print("bench_grading.py needs bubblewrap (bwrap) for --isolation bubblewrap", file=sys.stderr)
        return 2

    env = dict(os.environ)
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/bench_grading.py", *(argv if argv is not None else sys.argv[1:])]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "nproc": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "load_before": loadavg(),
        "submissions": opts.submissions,
    }
    loads = {}
    t_start, busy0, own0 = time.perf_counter(), _machine_busy_seconds(), _own_cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmpdir:
        tmp = Path(tmpdir)
        subs = tmp / "subs"
        kinds = make_submissions(subs, opts.submissions)
        with LoadMeter() as load:
            samples, outcomes = bench_commands(opts, env, tmp, subs, kinds)
        loads["sections 1–3 (commands, interleaved)"] = load.describe()
        with LoadMeter() as load:
            sb = bench_sandbox(opts, env, tmp)
        loads["section 4 (sandbox)"] = load.describe()
        suite = None
        if opts.with_suite:
            with LoadMeter() as load:
                suite = bench_suite(env)
            loads["pytest --impl without a path"] = load.describe()
    wall = time.perf_counter() - t_start
    meta["others"] = max(0.0, (_machine_busy_seconds() - busy0 - (_own_cpu_seconds() - own0)) / wall)
    meta["load_after"] = loadavg()
    meta["wall"] = wall
    text = f"## Grading benchmark results\n\n{build_markdown(opts, meta, samples, outcomes, sb, suite, loads)}"
    print(text)
    print(f"(whole benchmark: {wall:.0f} s)", file=sys.stderr)
    if opts.markdown and opts.markdown != "-":
        Path(opts.markdown).write_text(text, encoding="utf-8")
    if opts.json:
        Path(opts.json).write_text(
            json.dumps(
                {"meta": meta, "samples": samples, "sandbox": sb, "outcomes": {k: v for k, v in outcomes.items()}},
                indent=1,
                default=str,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
