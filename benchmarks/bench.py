#!/usr/bin/env python
"""Benchmarks of refimpl and the oracle, all measured on this machine in one run.

    python benchmarks/bench.py                 # everything (about 6–7 minutes on 2 cores)
    python benchmarks/bench.py --quick         # fewer rounds, shorter windows (about 2.5 minutes)
    python benchmarks/bench.py --only step     # one section: step, report, fuzz, memory (repeatable)
    python benchmarks/bench.py --threads 1     # the step section at one thread only
    python benchmarks/bench.py --markdown out.md --json out.json
    python benchmarks/bench.py --profile       # cProfile of refimpl.train_step (no benchmark)

Needs threadpoolctl (`pip install threadpoolctl`) besides the project's dependencies.

Sections (see benchmarks/README.md for the method and the results):

1. step    one training step (forward, backward, update) of the MLPs 784-256-10 and
           784-1024-1024-10 (sigmoid hidden layers, softmax + cross-entropy, mean over the
           batch), batch 1, 32, 256, float32 and float64: refimpl.train_step, a native PyTorch
           CPU step (autograd backward, SGD update under no_grad, same thread count), and the
           step's matrix products alone, in NumPy (refimpl's lower bound) and in PyTorch.
           Each thread setting of --threads (default: NumPy's own BLAS thread count, then 1).
2. report  `python -m oracle report` on the bundled cases: wall time, interpreter start,
           imports, and the report's work measured in-process.
3. fuzz    random networks checked per second, refimpl against the torch oracle, on one core
           (oracle.testing.fuzz's random networks and check_spec).
4. memory  peak resident memory of `python -m oracle report` (and of its imports alone).

Every figure is the median of repeated runs with its interquartile range (IQR); the
contestants of a step are measured in interleaved rounds (the order reversed every other
round), so that a change of the machine's load hits them alike. The inputs are seeded
(--seed). NumPy/refimpl and PyTorch run in two separate worker processes, with a pause when
the measurement passes from one to the other, so that neither's idle-spinning BLAS/OpenMP
threads take cores from the other. The machine's load during every section is measured
(/proc/stat: CPU used by other processes) and printed with the results.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are set on some machines of this workplace (older
OpenBLAS builds need them) and slow a current NumPy: the workers run with both removed from
their environment (this command only; --keep-openblas-env keeps them), and the BLAS kernel
they then use is read with threadpoolctl and printed. Tests and CI never change them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

NETS = ((784, 256, 10), (784, 1024, 1024, 10))
BATCHES = (1, 32, 256)
DTYPES = ("float32", "float64")
LOSS = ("cross_entropy", 1.0, "mean")  # softmax output + cross-entropy, mean over the batch
ETA = 0.1

TARGET_TORCH = 1.2  # refimpl within 1.2× of torch at batch ≥ 32
TARGET_MATMUL = 1.3  # refimpl within 1.3× of its own matrix products
TARGET_REPORT_WORK = 1.0  # seconds
TARGET_FUZZ = 200.0  # cases per second on one core


# ---------------------------------------------------------------------------------------------
# statistics and formatting


def summary(samples):
    """(median, q1, q3, min, max) of a list of numbers."""
    s = sorted(samples)
    if len(s) == 1:
        return s[0], s[0], s[0], s[0], s[0]
    q = statistics.quantiles(s, n=4, method="inclusive")
    return statistics.median(s), q[0], q[2], s[0], s[-1]


def fmt_time(seconds):
    """A duration with three significant digits in a fitting unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return str(seconds)


NOISY = 0.25  # an IQR wider than this share of the median marks a figure as noisy (†)


def noisy(samples):
    med, q1, q3, _, _ = summary(samples)
    return med > 0 and (q3 - q1) / med > NOISY


def fmt_spread(samples, fmt=fmt_time):
    """'median (IQR q1–q3)', with † when the IQR is wider than NOISY of the median."""
    med, q1, q3, _, _ = summary(samples)
    return f"{fmt(med)} ({fmt(q1)}–{fmt(q3)}){' †' if noisy(samples) else ''}"


def fmt_ratio(samples):
    med, q1, q3, _, _ = summary(samples)
    return f"{med:.2f}× ({q1:.2f}–{q3:.2f}){' †' if noisy(samples) else ''}"


# ---------------------------------------------------------------------------------------------
# the machine and its load


def clean_env(keep_openblas=False):
    env = dict(os.environ)
    if not keep_openblas:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    env.setdefault("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env["PYTHONPATH"]) if p)
    return env


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _machine_cpu_seconds():
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, (busy + idle + iowait) / tick


def _own_cpu_seconds():
    """CPU seconds used by this process and its children that have been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    """The machine's load during a section: loadavg before/after and the CPU used by *other*
    processes (the machine's busy time minus this benchmark's own), in cores on average."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.busy0, _ = _machine_cpu_seconds()
        self.own0 = _own_cpu_seconds()
        self.load0 = Path("/proc/loadavg").read_text().split()[0]
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        busy1, _ = _machine_cpu_seconds()
        own = _own_cpu_seconds() - self.own0
        self.wall = wall
        self.others = max(0.0, (busy1 - self.busy0 - own) / wall) if wall > 0 else 0.0
        self.own = own / wall if wall > 0 else 0.0
        self.load1 = Path("/proc/loadavg").read_text().split()[0]
        return False

    def describe(self):
        return (
            f"{self.wall:.0f} s; load average {self.load0} → {self.load1}; other processes used "
            f"{self.others:.2f} of {os.cpu_count()} cores on average, this benchmark {self.own:.2f}"
        )


def busy_processes(limit=5):
    """The processes (not this benchmark) using the most CPU right now, as ps shows them."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,ppid,pcpu,etime,args", "--sort=-pcpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return []
    me = os.getpid()
    rows = []
    for line in out[1:]:
        parts = line.split(None, 4)
        if len(parts) < 5 or int(parts[0]) == me or int(parts[1]) == me or float(parts[2]) < 5:
            continue
        rows.append(f"{parts[2]}% {parts[4][:90]}")
        if len(rows) == limit:
            break
    return rows


# ---------------------------------------------------------------------------------------------
# inputs (identical in every worker: seeded from the configuration, cast to the dtype last)


def make_inputs(sizes, N, dtype, seed):
    import numpy as np

    rng = np.random.default_rng([seed, N, *sizes])
    L = len(sizes) - 1
    W = {
        l: (rng.standard_normal((sizes[l], sizes[l - 1])) / math.sqrt(sizes[l - 1])).astype(dtype)
        for l in range(1, L + 1)
    }
    b = {l: (0.1 * rng.standard_normal(sizes[l])).astype(dtype) for l in range(1, L + 1)}
    f = {l: ("sigmoid", None) for l in range(1, L)}
    f[L] = ("softmax", None)
    x = rng.random((sizes[0], N)).astype(dtype)  # pixels in [0, 1), one example per column
    labels = rng.integers(0, sizes[-1], N)
    y = np.zeros((sizes[-1], N), dtype=dtype)
    y[labels, np.arange(N)] = 1.0  # one-hot, one example per column
    return W, b, f, x, y, labels


def calibrate(fn, target):
    """Warm up fn and return how many calls make one timed block of about ``target`` seconds."""
    best = math.inf
    t_start = time.perf_counter()
    calls = 0
    while calls < 3 or (time.perf_counter() - t_start < 2 * target and calls < 50):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        calls += 1
    return max(1, round(target / best))


def timed_block(fn, k, max_seconds=math.inf):
    """(seconds per call, minor page faults per call) over k calls, or fewer (at least one)
    when they take longer than ``max_seconds``: a block calibrated on a quiet machine must not
    take minutes when the load rises."""
    import resource

    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    calls = 0
    while calls < k:
        fn()
        calls += 1
        if time.perf_counter() - t0 > max_seconds:
            break
    t = (time.perf_counter() - t0) / calls
    return t, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / calls


def blas_info():
    from threadpoolctl import threadpool_info

    return [
        {
            k: d.get(k)
            for k in (
                "user_api",
                "internal_api",
                "version",
                "architecture",
                "num_threads",
                "threading_layer",
                "filepath",
            )
        }
        for d in threadpool_info()
    ]


# ---------------------------------------------------------------------------------------------
# workers: line-delimited JSON over stdin/stdout


class NumpyWorker:
    """refimpl.train_step and the matrix products alone, in NumPy."""

    def __init__(self, threads):
        import numpy as np
        from threadpoolctl import threadpool_limits

        import refimpl

        self.np, self.refimpl = np, refimpl
        if threads:
            self._limits = threadpool_limits(limits=threads, user_api="blas")

    def info(self):
        import numpy as np

        return {
            "numpy": np.__version__,
            "blas": blas_info(),
            "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARS},
        }

    def setup(self, sizes, N, dtype, seed, target):
        np = self.np
        W, b, f, x, y, _ = make_inputs(sizes, N, dtype, seed)
        L = len(sizes) - 1
        W_new, b_new = self.refimpl.train_step(W, b, f, x, y, LOSS, ETA)
        dtypes = {str(v.dtype) for v in list(W_new.values()) + list(b_new.values())}
        fingerprint = [float(np.linalg.norm((W_new[l] - W[l]).astype(np.float64))) for l in range(1, L + 1)] + [
            float(np.linalg.norm((b_new[l] - b[l]).astype(np.float64))) for l in range(1, L + 1)
        ]
        # the matrix products of the same step, on arrays of the same shapes and dtype
        a = {0: x}
        for l in range(1, L + 1):
            a[l] = self.refimpl.activation(f[l][0], W[l] @ a[l - 1] + b[l][:, None])
        rng = np.random.default_rng([seed, 1, N, *sizes])
        d = {l: rng.standard_normal(a[l].shape).astype(dtype) for l in range(1, L + 1)}

        def products():
            # every result is kept until the end of the call, as a step keeps its z^l, its
            # (W^l)ᵀ δ^l and the gradients it returns (freeing each at once would reuse one
            # cache-hot buffer and make the bound unreachable for any implementation)
            out = [W[l] @ a[l - 1] for l in range(1, L + 1)]  # forward: z^l = W^l a^{l−1}
            out += [W[l].T @ d[l] for l in range(L, 1, -1)]  # backward: (W^l)ᵀ δ^l, hidden layers
            out += [d[l] @ a[l - 1].T for l in range(1, L + 1)]  # BP4: δ^l (a^{l−1})ᵀ
            return out

        self.fns = {"refimpl": lambda: self.refimpl.train_step(W, b, f, x, y, LOSS, ETA), "matmul": products}
        self.k = {name: calibrate(fn, target) for name, fn in self.fns.items()}
        self.max_seconds = 3 * target
        return {"fingerprint": fingerprint, "dtypes": sorted(dtypes), "k": self.k}

    def time(self, what):
        return timed_block(self.fns[what], self.k[what], self.max_seconds)


class TorchWorker:
    """A native PyTorch CPU training step: tensors, autograd backward, SGD update under no_grad."""

    def __init__(self, threads):
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)

    def info(self):
        torch = self.torch
        return {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "mkl": torch.backends.mkl.is_available(),
            "mkldnn": torch.backends.mkldnn.is_available(),
        }

    def setup(self, sizes, N, dtype, seed, target):
        import numpy as np

        torch = self.torch
        F = torch.nn.functional
        W, b, f, x, y, labels = make_inputs(sizes, N, dtype, seed)
        L = len(sizes) - 1
        params_W = [torch.tensor(W[l]).requires_grad_() for l in range(1, L + 1)]  # (out, in)
        params_b = [torch.tensor(b[l]).requires_grad_() for l in range(1, L + 1)]
        params = params_W + params_b
        inputs = torch.tensor(np.ascontiguousarray(x.T))  # (N, 784): PyTorch's own layout
        target_labels = torch.tensor(labels)

        def step():
            h = inputs
            for l in range(L):
                h = F.linear(h, params_W[l], params_b[l])
                if l < L - 1:
                    h = torch.sigmoid(h)
            loss = F.cross_entropy(h, target_labels)  # log-softmax + NLL, mean over the batch
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-ETA)  # what torch.optim.SGD does (no momentum)
                    p.grad = None  # zero_grad(set_to_none=True)

        before = [p.detach().clone() for p in params]
        step()
        fingerprint = [float(torch.linalg.norm((p.detach() - p0).double())) for p, p0 in zip(params, before)]
        dtypes = sorted({str(p.dtype).replace("torch.", "") for p in params})

        # the same matrix products as NumpyWorker's, in PyTorch (its BLAS), same shapes and layout
        Wt = {l: torch.tensor(W[l]) for l in range(1, L + 1)}
        a = {0: torch.tensor(x)}
        for l in range(1, L + 1):
            a[l] = torch.rand(sizes[l], N, dtype=a[0].dtype)
        d = {l: torch.rand(sizes[l], N, dtype=a[0].dtype) for l in range(1, L + 1)}

        def products():  # as NumpyWorker's: every result kept until the end of the call
            out = [Wt[l] @ a[l - 1] for l in range(1, L + 1)]
            out += [Wt[l].T @ d[l] for l in range(L, 1, -1)]
            out += [d[l] @ a[l - 1].T for l in range(1, L + 1)]
            return out

        self.fns = {"torch": step, "torch_matmul": products}
        self.k = {name: calibrate(fn, target) for name, fn in self.fns.items()}
        self.max_seconds = 3 * target
        return {"fingerprint": fingerprint, "dtypes": dtypes, "k": self.k}

    def time(self, what):
        return timed_block(self.fns[what], self.k[what], self.max_seconds)


def worker_main(kind, threads):
    """Serve requests {"cmd": ..., "args": {...}} from stdin, one JSON answer per line."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the protocol stream
    worker = {"numpy": NumpyWorker, "torch": TorchWorker}[kind](threads)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["cmd"] == "quit":
                break
            answer = {"ok": getattr(worker, request["cmd"])(**request.get("args", {}))}
        except Exception:  # reported to the coordinator, which stops
            answer = {"error": traceback.format_exc()}
        out.write(json.dumps(answer) + "\n")
        out.flush()


class Worker:
    def __init__(self, kind, threads, env):
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--threads", str(threads or 0)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def call(self, cmd, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, "args": args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.kind} worker exited (status {self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.kind} worker failed:\n{answer['error']}")
        return answer["ok"]

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=60)


# ---------------------------------------------------------------------------------------------
# 1. one training step


def bench_step(opts, env, meta):
    """Every configuration at every thread setting; rows and raw results."""
    rows, results = [], []
    meta["thread_settings"] = []
    for setting in opts.threads:
        numpy_w = Worker("numpy", setting, env)
        torch_w = None
        try:
            info = numpy_w.call("info")
            threads = setting or max(d["num_threads"] for d in info["blas"] if d["user_api"] == "blas")
            torch_w = Worker("torch", threads, env)
            tinfo = torch_w.call("info")
            if not setting:  # NumPy's own default: the main setting
                meta.update(info)
                meta.update(tinfo)
                meta["threads"] = threads
            meta["thread_settings"].append(
                {
                    "threads": threads,
                    "default": not setting,
                    "torch_threads": tinfo["torch_threads"],
                    "blas": [d["num_threads"] for d in info["blas"]],
                }
            )
            label = f"{threads}" + (" (NumPy's default)" if not setting else "")
            r, res = _bench_step_threads(opts, numpy_w, torch_w, label, threads)
            rows += r
            results += res
        finally:
            numpy_w.close()
            if torch_w is not None:
                torch_w.close()
    headers = [
        "threads",
        "network",
        "dtype",
        "batch",
        "refimpl.train_step",
        "torch step",
        "NumPy matmuls alone",
        "torch matmuls alone",
        "refimpl / torch",
        "refimpl / NumPy matmuls",
        "page faults per step: refimpl / torch / NumPy matmuls",
        "updates differ by",
    ]
    return headers, rows, results


def _bench_step_threads(opts, numpy_w, torch_w, label, threads):
    rows, results = [], []
    configs = [(s, N, dt) for s in NETS for dt in DTYPES for N in BATCHES]
    for sizes, N, dtype in configs:
        net = "-".join(map(str, sizes))
        progress(f"step, {threads} thread(s): {net} N={N} {dtype}")
        setup = dict(sizes=list(sizes), N=N, dtype=dtype, seed=opts.seed, target=opts.block)
        s_np = numpy_w.call("setup", **setup)
        s_t = torch_w.call("setup", **setup)
        agree = max(abs(u - v) / max(abs(u), abs(v), 1e-300) for u, v in zip(s_np["fingerprint"], s_t["fingerprint"]))
        samples = {"refimpl": [], "torch": [], "matmul": [], "torch_matmul": []}
        faults = {what: [] for what in samples}
        order = [(numpy_w, "refimpl"), (numpy_w, "matmul"), (torch_w, "torch"), (torch_w, "torch_matmul")]
        for r in range(opts.rounds):
            previous = None
            for w, what in order if r % 2 == 0 else order[::-1]:
                if previous is not None and previous is not w:
                    time.sleep(opts.gap)  # let the other process's BLAS/OpenMP threads go idle
                t, pf = w.call("time", what=what)
                samples[what].append(t)
                faults[what].append(pf)
                previous = w
            time.sleep(opts.gap)
        ref_torch = [a / b for a, b in zip(samples["refimpl"], samples["torch"])]
        ref_mm = [a / b for a, b in zip(samples["refimpl"], samples["matmul"])]
        results.append(
            {
                "threads": threads,
                "default_threads": "default" in label,
                "net": net,
                "N": N,
                "dtype": dtype,
                "samples": samples,
                "page_faults": faults,
                "k": {**s_np["k"], **s_t["k"]},
                "ratio_torch": ref_torch,
                "ratio_matmul": ref_mm,
                "fingerprint_rel_diff": agree,
                "refimpl_dtypes": s_np["dtypes"],
                "torch_dtypes": s_t["dtypes"],
            }
        )
        ok_t = "" if N < 32 else (" ✓" if summary(ref_torch)[0] <= TARGET_TORCH else " ✗")
        ok_m = " ✓" if summary(ref_mm)[0] <= TARGET_MATMUL else " ✗"
        rows.append(
            [
                label,
                net,
                dtype,
                N,
                fmt_spread(samples["refimpl"]),
                fmt_spread(samples["torch"]),
                fmt_spread(samples["matmul"]),
                fmt_spread(samples["torch_matmul"]),
                fmt_ratio(ref_torch) + ok_t,
                fmt_ratio(ref_mm) + ok_m,
                " / ".join(f"{statistics.median(faults[w]):.0f}" for w in ("refimpl", "torch", "matmul")),
                f"{agree:.0e}",
            ]
        )
    return rows, results


def step_targets(results):
    lines = []
    for r in results:
        t = summary(r["ratio_torch"])[0]
        m = summary(r["ratio_matmul"])[0]
        lines.append(
            {
                "what": f"{r['net']} {r['dtype']} N={r['N']}, {r['threads']} thread(s)",
                "torch": None if r["N"] < 32 else t <= TARGET_TORCH,
                "ratio_torch": t,
                "matmul": m <= TARGET_MATMUL,
                "ratio_matmul": m,
            }
        )
    return lines


# ---------------------------------------------------------------------------------------------
# 2. the report: interpreter, imports, work

REPORT_CHILD = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
import torch, numpy, oracle.cli as cli
t1 = time.perf_counter()
c1 = time.process_time()
with contextlib.redirect_stdout(io.StringIO()):
    rc = cli.main(["report"])
t2 = time.perf_counter()
c2 = time.process_time()
# the same work a second time in this process, phase by phase (as cmd_report does it)
from oracle.reports import report as report_mod
from oracle.verdict.compare import check_case
from oracle.verdict.engines import default_engines
cases = cli._cases_or_exit([cli.default_cases()])
t3 = time.perf_counter()
engines = default_engines()
checks = [c for case in cases for c in check_case(case, engines)]
t4 = time.perf_counter()
text = report_mod.text(checks, [e.name for e in engines])
t5 = time.perf_counter()
print(json.dumps({"rc": rc, "imports": t1 - t0, "work": t2 - t1, "work_cpu": c2 - c1, "load": t3 - t2, "check": t4 - t3,
                  "format": t5 - t4, "warm": t5 - t2, "cases": len(cases), "checks": len(checks)}))
"""


def run_timed(args, env):
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return time.perf_counter() - t0, proc


def bench_report(opts, env):
    py = sys.executable
    samples = {
        k: []
        for k in (
            "interpreter",
            "imports",
            "wall",
            "work",
            "work_cpu",
            "imports_inproc",
            "load",
            "check",
            "format",
            "warm",
        )
    }
    extra = {}
    for r in range(opts.report_runs):
        progress(f"report: run {r + 1}/{opts.report_runs}")
        t, proc = run_timed([py, "-c", "pass"], env)
        samples["interpreter"].append(t)
        t, proc = run_timed([py, "-c", "import torch, numpy, oracle.cli"], env)
        if proc.returncode:
            raise RuntimeError(proc.stderr)
        samples["imports"].append(t)
        t, proc = run_timed([py, "-m", "oracle", "report"], env)
        if proc.returncode:
            raise RuntimeError(f"python -m oracle report exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        samples["wall"].append(t)
        t, proc = run_timed([py, "-c", REPORT_CHILD], env)
        if proc.returncode:
            raise RuntimeError(proc.stderr)
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        if child["rc"]:
            raise RuntimeError(f"the report in-process returned {child['rc']}")
        samples["imports_inproc"].append(child["imports"])
        for k in ("work", "work_cpu", "load", "check", "format", "warm"):
            samples[k].append(child[k])
        extra = {"cases": child["cases"], "checks": child["checks"]}
    rows = [
        ["`python -m oracle report`, wall", fmt_spread(samples["wall"])],
        ["`python -c pass` (interpreter start)", fmt_spread(samples["interpreter"])],
        ['`python -c "import torch, numpy, oracle.cli"` (interpreter + imports)', fmt_spread(samples["imports"])],
        ["the imports, timed in-process", fmt_spread(samples["imports_inproc"])],
        ['**the report\'s work**, in-process (first run: `cli.main(["report"])`)', fmt_spread(samples["work"])],
        ["… the same work in CPU time of the process", fmt_spread(samples["work_cpu"])],
        ["the work again in the same process (warm), in all", fmt_spread(samples["warm"])],
        ["… loading the case files (YAML, validation)", fmt_spread(samples["load"])],
        [
            f"… running {extra.get('cases')} cases through the 3 engines and comparing ({extra.get('checks')} checks)",
            fmt_spread(samples["check"]),
        ],
        ["… formatting the text report", fmt_spread(samples["format"])],
        [
            "wall − interpreter start − imports − work: interpreter shutdown and the rest (medians)",
            fmt_time(
                statistics.median(samples["wall"])
                - statistics.median(samples["interpreter"])
                - statistics.median(samples["imports_inproc"])
                - statistics.median(samples["work"])
            ),
        ],
    ]
    return ["what", "time: median (IQR)"], rows, {"samples": samples, **extra}


# ---------------------------------------------------------------------------------------------
# 3. random differential cases per second, on one core

FUZZ_CHILD = r"""
import json, os, sys, time
os.sched_setaffinity(0, {@CPU@})                       # one core, before any thread pool starts
import numpy as np
from threadpoolctl import threadpool_limits
threadpool_limits(1)
import torch
torch.set_num_threads(1)
sys.path.insert(0, @BENCH_DIR@)
import bench
print(json.dumps(bench.fuzz_rates(@SEED@, @SECONDS@, @WINDOWS@)))
"""


def fuzz_checkers(seed):
    """{mode: check one more random case → list of problems}, and how the cases are made.

    Case i is ``oracle.testing.fuzz.random_spec(default_rng([seed, i]))`` checked by ``check_spec``
    exactly as ``python -m oracle fuzz`` does it (refimpl vs torch on every quantity of every step,
    plus its directional finite differences), and the same with ``fd=False`` (refimpl vs torch alone).
    """
    import numpy as np

    from oracle.testing import fuzz

    def checker(fd):
        i = 0

        def one():
            nonlocal i
            rng = np.random.default_rng([seed, i])
            spec = fuzz.random_spec(rng, label=f"seed {seed}, case {i}")
            i += 1
            return spec, fuzz.check_spec(spec, rng=rng, fd=fd)

        return one

    return (
        {
            "fuzz: refimpl vs torch + finite differences (as `python -m oracle fuzz`)": checker(True),
            "fuzz: refimpl vs torch only (check_spec(fd=False))": checker(False),
        },
        "oracle.testing.fuzz: random_spec (1–5 layers, widths 1–64 and batch 1–128 log-uniform, "
        "0–3 steps) and check_spec",
    )


def fuzz_rates(seed, seconds, windows):
    """Cases checked per second, each mode in ``windows`` windows of ``seconds``, modes interleaved.

    Runs in the one-core child (FUZZ_CHILD)."""
    checkers, how = fuzz_checkers(seed)
    for one in checkers.values():  # warm-up: the first calls into torch are slow
        for _ in range(10):
            one()
    res = {mode: {"rates": [], "cpu_rates": [], "cases": 0, "disagreements": 0, "examples": []} for mode in checkers}
    for _ in range(windows):
        for mode, one in checkers.items():
            r = res[mode]
            count = 0
            c0 = time.process_time()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                spec, problems = one()
                if problems:
                    r["disagreements"] += 1
                    if len(r["examples"]) < 3:
                        label = getattr(spec, "label", "")
                        r["examples"].append(f"{label}: {problems[0]}" if label else problems[0])
                count += 1
            r["rates"].append(count / (time.perf_counter() - t0))
            r["cpu_rates"].append(count / max(time.process_time() - c0, 1e-9))
            r["cases"] += count
    return {"how": how, "modes": res, "cpu": sorted(os.sched_getaffinity(0))}


def bench_fuzz(opts, env):
    cpu = max(os.sched_getaffinity(0))
    code = (
        FUZZ_CHILD.replace("@CPU@", str(cpu))
        .replace("@BENCH_DIR@", repr(str(Path(__file__).parent)))
        .replace("@SEED@", str(opts.seed))
        .replace("@SECONDS@", str(opts.fuzz_seconds))
        .replace("@WINDOWS@", str(opts.fuzz_windows))
    )
    progress("fuzz")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = []
    for mode, r in res["modes"].items():
        rows.append(
            [
                f"{mode}, CPU {','.join(map(str, res['cpu']))} only",
                fmt_spread(r["rates"], fmt=lambda v: f"{v:.0f}/s"),
                fmt_spread(r["cpu_rates"], fmt=lambda v: f"{v:.0f}"),
                f"{r['cases']} / {r['disagreements']}",
            ]
        )
    cli = fuzz_cli_rates(opts, env, cpu)
    if cli:
        res["cli"] = cli
        rows.append(
            [
                f"`python -m oracle fuzz --seconds {cli['seconds']:g} --seed {opts.seed}` as printed by the "
                f"command, CPU {cpu} only ({len(cli['rates'])} runs)",
                fmt_spread(cli["rates"], fmt=lambda v: f"{v:.0f}/s"),
                fmt_spread(cli["cpu_rates"], fmt=lambda v: f"{v:.0f}") if cli["cpu_rates"] else "—",
                f"{cli['cases']} / {cli['failed']}",
            ]
        )
    return (
        [
            "random cases checked, one core",
            "per second of wall time: median (IQR)",
            "per CPU second: median (IQR)",
            "cases / disagreements",
        ],
        rows,
        res,
    )


def fuzz_cli_rates(opts, env, cpu):
    """The rate the ``fuzz`` command itself prints, if the CLI has it (disagreements go to a temporary folder)."""
    import re
    import tempfile

    check = subprocess.run(
        [sys.executable, "-m", "oracle", "fuzz", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if check.returncode:
        return None
    seconds = 2.0 if opts.quick else 5.0
    rates, cpu_rates, cases, failed = [], [], 0, 0
    for r in range(opts.fuzz_cli_runs):
        progress(f"fuzz command: run {r + 1}/{opts.fuzz_cli_runs}")
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "oracle",
                    "fuzz",
                    "--seconds",
                    str(seconds),
                    "--seed",
                    str(opts.seed),
                    "--out",
                    out,
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
            )
        m = re.search(r"(\d+) of (\d+) random cases passed \((\d+) cases/s", proc.stdout)
        if not m:
            raise RuntimeError(f"python -m oracle fuzz printed no rate:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        passed, total, rate = map(int, m.groups())
        rates.append(float(rate))
        m_cpu = re.search(r"(\d+) per CPU second", proc.stdout)
        if m_cpu:
            cpu_rates.append(float(m_cpu.group(1)))
        cases += total
        failed += total - passed
    return {"seconds": seconds, "rates": rates, "cpu_rates": cpu_rates, "cases": cases, "failed": failed}


# ---------------------------------------------------------------------------------------------
# 4. peak memory


def peak_rss(args, env):
    """(maximum resident set size in MiB, exit status) of one child process, from wait4."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024.0, proc.returncode  # Linux: ru_maxrss in KiB


def bench_memory(opts, env):
    py = sys.executable
    report, imports = [], []
    for _ in range(opts.memory_runs):
        progress("memory")
        mb, rc = peak_rss([py, "-m", "oracle", "report"], env)
        if rc:
            raise RuntimeError(f"python -m oracle report exited {rc}")
        report.append(mb)
        mb, _ = peak_rss([py, "-c", "import torch, numpy, oracle.cli"], env)
        imports.append(mb)
    f = lambda v: f"{v:.0f} MiB"  # noqa: E731
    rows = [
        ["`python -m oracle report`, all cases: peak RSS", fmt_spread(report, f)],
        ['`python -c "import torch, numpy, oracle.cli"`: peak RSS', fmt_spread(imports, f)],
        ["the report's work above its imports", f(statistics.median(report) - statistics.median(imports))],
    ]
    return ["what", "median (IQR)"], rows, {"report": report, "imports": imports}


# ---------------------------------------------------------------------------------------------
# cProfile of refimpl (a separate mode)


def profile(opts):
    import cProfile
    import pstats

    import refimpl

    for sizes, N, dtype in (
        ((784, 1024, 1024, 10), 32, "float64"),
        ((784, 256, 10), 1, "float64"),
        ((784, 256, 10), 256, "float32"),
    ):
        W, b, f, x, y, _ = make_inputs(sizes, N, dtype, opts.seed)
        for _ in range(3):
            refimpl.train_step(W, b, f, x, y, LOSS, ETA)
        n = 20 if sizes[1] > 300 else 200
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(n):
            refimpl.train_step(W, b, f, x, y, LOSS, ETA)
        pr.disable()
        print(f"\n### refimpl.train_step, {'-'.join(map(str, sizes))}, batch {N}, {dtype}: {n} steps")
        pstats.Stats(pr, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(12)


# ---------------------------------------------------------------------------------------------


def progress(text):
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
    elif text:
        print(f"… {text}", file=sys.stderr, flush=True)


def versions(env):
    code = (
        "import json, sys, numpy, torch, threadpoolctl; "
        "print(json.dumps({'python': sys.version.split()[0], 'numpy': numpy.__version__, "
        "'torch': torch.__version__, 'threadpoolctl': threadpoolctl.__version__}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:8]),
    )
    p.add_argument("--quick", action="store_true", help="Fewer rounds and shorter windows.")
    p.add_argument(
        "--only",
        action="append",
        choices=("step", "report", "fuzz", "memory"),
        help="Run only this section (repeatable).",
    )
    p.add_argument("--seed", type=int, default=0, help="Seed of every input (default 0).")
    p.add_argument(
        "--threads",
        default="default,1",
        help="Thread settings of the step section, comma-separated: BLAS threads for NumPy and "
        "torch.set_num_threads alike; 'default' is NumPy's own BLAS thread count "
        "(default: 'default,1').",
    )
    p.add_argument(
        "--malloc-keep",
        action="store_true",
        help="Diagnosis: the step workers run with glibc's MALLOC_MMAP_THRESHOLD_ and "
        "MALLOC_TRIM_THRESHOLD_ raised, so that freed arrays are reused instead of "
        "returned to the kernel and faulted in again.",
    )
    p.add_argument("--rounds", type=int, help="Interleaved rounds per step configuration (default 11; quick 5).")
    p.add_argument("--block", type=float, help="Seconds per timed block (default 0.1; quick 0.04).")
    p.add_argument(
        "--gap",
        type=float,
        default=0.1,
        help="Pause when passing between the NumPy and torch processes (default 0.1 s).",
    )
    p.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help=f"Keep {' and '.join(OPENBLAS_VARS)} in the workers' environment.",
    )
    p.add_argument("--markdown", metavar="FILE", help="Also write the results as Markdown.")
    p.add_argument("--json", metavar="FILE", help="Also write every sample as JSON.")
    p.add_argument("--profile", action="store_true", help="Print a cProfile of refimpl.train_step and stop.")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.worker:
        return worker_main(opts.worker, int(opts.threads))
    opts.threads = [0 if t.strip() == "default" else int(t) for t in opts.threads.split(",")]
    if opts.profile:
        if opts.threads[0]:
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(opts.threads[0], user_api="blas")  # noqa: F841 (kept for the run)
        profile(opts)
        return 0
    opts.rounds = opts.rounds or (5 if opts.quick else 11)
    opts.block = opts.block or (0.04 if opts.quick else 0.1)
    opts.report_runs = 3 if opts.quick else 7
    opts.memory_runs = 1 if opts.quick else 3
    opts.fuzz_seconds = 1.0 if opts.quick else 2.0
    opts.fuzz_windows = 3 if opts.quick else 7
    opts.fuzz_cli_runs = 2 if opts.quick else 3
    sections = opts.only or ["step", "report", "fuzz", "memory"]
    import importlib.util

    missing = [m for m in ("threadpoolctl", "tabulate", "torch", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"bench.py needs {', '.join(missing)}: pip install {' '.join(missing)}", file=sys.stderr)
        return 2

    from tabulate import tabulate

    env = clean_env(opts.keep_openblas_env)
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "uptime_start": uptime(),
        "busy_processes_start": busy_processes(),
        "openblas_env_parent": {v: os.environ.get(v) for v in OPENBLAS_VARS},
        "openblas_env_workers": {v: env.get(v) for v in OPENBLAS_VARS},
        **versions(env),
    }
    tables, data, loads = [], {}, {}
    titles = {
        "step": "1. One training step (median over rounds, IQR in brackets)",
        "report": "2. `python -m oracle report` on the bundled cases",
        "fuzz": "3. Random differential cases (refimpl vs torch) per second, one core",
        "memory": "4. Peak memory of the report",
    }
    for section in sections:
        with LoadMeter() as load:
            if section == "step":
                step_env = dict(env)
                if opts.malloc_keep:
                    step_env.update(MALLOC_MMAP_THRESHOLD_=str(1 << 30), MALLOC_TRIM_THRESHOLD_=str(1 << 31))
                    meta["malloc_keep"] = True
                headers, rows, res = bench_step(opts, step_env, meta)
            elif section == "report":
                headers, rows, res = bench_report(opts, env)
            elif section == "fuzz":
                headers, rows, res = bench_fuzz(opts, env)
            else:
                headers, rows, res = bench_memory(opts, env)
        progress("")
        loads[section] = load.describe()
        data[section] = res
        tables.append((section, headers, rows))
    meta["uptime_end"] = uptime()

    targets = []
    if "step" in data:
        by_threads = {}
        for t, r in zip(step_targets(data["step"]), data["step"]):
            by_threads.setdefault(r["threads"], []).append(t)
        for threads, ts in by_threads.items():
            tt = [t for t in ts if t["torch"] is not None]
            met_t = [t for t in tt if t["torch"]]
            met_m = [t for t in ts if t["matmul"]]
            worst_t = max(tt, key=lambda t: t["ratio_torch"])
            worst_m = max(ts, key=lambda t: t["ratio_matmul"])
            targets.append(
                [
                    f"step, {threads} thread(s): refimpl ≤ {TARGET_TORCH}× torch at batch ≥ 32",
                    f"met in {len(met_t)} of {len(tt)}; worst {worst_t['ratio_torch']:.2f}× "
                    f"({worst_t['what'].split(',')[0]})",
                    "met" if len(met_t) == len(tt) else "MISSED",
                ]
            )
            targets.append(
                [
                    f"step, {threads} thread(s): refimpl ≤ {TARGET_MATMUL}× NumPy matmuls",
                    f"met in {len(met_m)} of {len(ts)}; worst {worst_m['ratio_matmul']:.2f}× "
                    f"({worst_m['what'].split(',')[0]})",
                    "met" if len(met_m) == len(ts) else "MISSED",
                ]
            )
    if "report" in data:
        w = statistics.median(data["report"]["samples"]["work"])
        c = statistics.median(data["report"]["samples"]["work_cpu"])
        targets.append(
            [
                f"report's work < {TARGET_REPORT_WORK:g} s",
                f"{fmt_time(w)}; {fmt_time(c)} of CPU time",
                "met" if w < TARGET_REPORT_WORK else "MISSED",
            ]
        )
    if "fuzz" in data:
        rates = {mode: res["rates"] for mode, res in data["fuzz"]["modes"].items()}
        if "cli" in data["fuzz"]:
            rates["the `fuzz` command"] = data["fuzz"]["cli"]["rates"]
        cpu = {mode: res["cpu_rates"] for mode, res in data["fuzz"]["modes"].items()}
        if "cli" in data["fuzz"]:
            cpu["the `fuzz` command"] = data["fuzz"]["cli"]["cpu_rates"]
        for mode, rs in rates.items():
            r = statistics.median(rs)
            c = f"; {statistics.median(cpu[mode]):.0f} per CPU second" if cpu.get(mode) else ""
            targets.append(
                [
                    f"≥ {TARGET_FUZZ:g} cases/s on one core: {mode}",
                    f"{r:.0f}/s{c}",
                    "met" if r >= TARGET_FUZZ else "MISSED",
                ]
            )

    blas = [d for d in meta.get("blas", []) if d.get("user_api") == "blas"]
    lines = [
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}",
        f"- CPU: {meta['cpu']} ({meta['cores']} cores)",
        f"- Python {meta['python']}, NumPy {meta['numpy']}, PyTorch {meta['torch']}, "
        f"threadpoolctl {meta['threadpoolctl']}",
    ]
    if blas:
        lines.append(
            "- NumPy's BLAS: "
            + "; ".join(
                f"{d['internal_api']} {d['version']}, kernel {d['architecture']}, {d['num_threads']} threads "
                f"({d['threading_layer']})"
                for d in blas
            )
        )
    for t in meta.get("thread_settings", []):
        lines.append(
            f"- step section, {'NumPy default' if t['default'] else 'limited'}: NumPy BLAS threads "
            f"{t['blas']} (threadpoolctl), torch.set_num_threads({t['threads']}) → {t['torch_threads']}"
        )
    if "threads" in meta:
        lines.append(
            f"- torch inter-op threads {meta['torch_interop_threads']}; MKL "
            f"{'available' if meta['mkl'] else 'not available'} to torch; fuzz section: 1 core, 1 thread"
        )
    if meta.get("malloc_keep"):
        lines.append("- DIAGNOSIS RUN: step workers with MALLOC_MMAP_THRESHOLD_=2^30, MALLOC_TRIM_THRESHOLD_=2^31")
    lines.append(
        f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: in the calling shell "
        f"{meta['openblas_env_parent']}, in the workers {meta['openblas_env_workers']}"
    )
    lines.append(f"- uptime at the start: `{meta['uptime_start']}`")
    lines.append(f"- uptime at the end: `{meta['uptime_end']}`")
    if meta["busy_processes_start"]:
        busy = meta["busy_processes_start"]
        lines.append("- other processes busy at the start: " + "; ".join(f"`{r}`" for r in busy))
    for section, text in loads.items():
        lines.append(f"- load during section {section}: {text}")

    lines.append(f"- † marks a figure whose interquartile range is wider than {NOISY:.0%} of its median (noisy)")
    md = ["## Machine and run", "", *lines, ""]
    for section, headers, rows in tables:
        md += [
            f"## {titles[section]}",
            "",
            tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True),
            "",
        ]
        if section == "fuzz":
            md += [f"Cases: {data['fuzz']['how']}."]
            for mode, r in data["fuzz"]["modes"].items():
                md += [f"- disagreement found by {mode}: {e}" for e in r["examples"]]
            md += [""]
    if targets:
        md += [
            "## Targets",
            "",
            tabulate(targets, headers=["target", "measured (median)", ""], tablefmt="github", disable_numparse=True),
            "",
        ]
    text = "\n".join(md)
    print(text)
    if opts.markdown:
        Path(opts.markdown).write_text(text + "\n", encoding="utf-8")
    if opts.json:
        Path(opts.json).write_text(
            json.dumps({"meta": meta, "loads": loads, "results": data, "targets": targets}, indent=1, default=str)
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
