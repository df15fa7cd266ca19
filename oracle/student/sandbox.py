"""Run an implementation under test in an isolated worker process: an engine like the others.

Two modes (README, "Isolation of untrusted code", says what each protects against):

bubblewrap (Linux, ``bwrap`` installed, namespaces allowed; the default where it works)
    The worker sees a read-only view of only the interpreter, its standard library and
    NumPy (plus packages an assignment allows), the worker's own modules
    (oracle/student/runtime, as ``bpruntime``) and a read-only copy of the submission;
    every site-packages folder of the interpreter is hidden, so refimpl, oracle, torch
    and the case files are not there. It has a private /tmp, no network
    (``--unshare-net``), its own PID namespace (it cannot see or signal the grader), the
    unprivileged uid 65534, ``--die-with-parent``, and the rlimits below.
process (the fallback, or ``--isolation process``)
    A child process in its own session with the same rlimits, a scratch directory
    holding copies of the submission and the worker's modules, a minimal environment,
    and the user ``nobody`` when the grader runs as root and the interpreter is readable
    by others. It can still use the network, read what its user can read and signal or
    change what its user may (README).

In both modes: a wall-clock time-out per call (the process group is then killed), limits
on address space, CPU time, file size (0: it cannot write a byte), processes and core
dumps; answers are JSON (never pickle); the inputs come back with every answer and the
grader decides whether they were modified; nothing the worker says is a verdict. The
scratch directory of a worker is removed when it closes, after a crash, a time-out or an
interrupt, and at exit.
"""

from __future__ import annotations

import atexit
import glob
import inspect
import json
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import weakref
from importlib import metadata
from pathlib import Path

import numpy as np

from oracle.verdict.errors import EngineError

from . import template
from .runtime.adapters import INTERFACE
from .runtime.imports import forbidden
from .runtime.protocol import MAX_MESSAGE, ProtocolError, decode, dumps, encode, loads

DEFAULT_TIMEOUT = 10.0  # seconds of wall clock per call
DEFAULT_MEMORY_MB = 1024  # address space
DEFAULT_CPU_SECONDS = 120  # CPU time of one worker process
DEFAULT_BUDGET = 300.0  # seconds of wall clock for all calls into one implementation
MAX_PROCESSES = 64  # per user (counts threads too)
NOBODY = 65534  # the unprivileged uid (and gid) the worker runs as
STUDENT_RTOL, STUDENT_ATOL = 1e-6, 1e-9
RUNTIME = Path(__file__).resolve().parent / "runtime"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRATCH_PREFIX = "backprop-impl-"
MODES = ("auto", "bubblewrap", "process")
BOOTSTRAP = "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; from bpruntime.worker import main; main()"
INSIDE = Path("/sandbox")  # where the bubblewrap view puts the worker's files


class ImplementationError(EngineError):
    """The implementation failed: raised, crashed, timed out, returned garbage or mutated its input."""


class IsolationError(RuntimeError):
    """The isolation asked for cannot be had here (e.g. --isolation bubblewrap without bwrap)."""


# ---------------------------------------------------------------- which mode
_BWRAP = {}


def bubblewrap_status():
    """(usable, why): whether bubblewrap can start a sandbox here, probed once per process."""
    if "status" not in _BWRAP:
        exe = shutil.which("bwrap")
        if exe is None:
            _BWRAP["status"] = (False, "bwrap not found (Debian: apt-get install bubblewrap)")
        elif not sys.platform.startswith("linux"):
            _BWRAP["status"] = (False, "bubblewrap needs Linux")
        else:
            probe = [exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent"]
            if os.geteuid() != 0:
                probe += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
            try:
                run = subprocess.run(probe + ["true"], capture_output=True, timeout=20)
                ok = run.returncode == 0
                why = "" if ok else (run.stderr.decode("utf-8", "replace").strip() or f"exit {run.returncode}")
            except (OSError, subprocess.TimeoutExpired) as exc:
                ok, why = False, str(exc)
            version = ""
            if ok:
                out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
                version = out[-1] if out else ""
            _BWRAP["status"] = (ok, version if ok else f"bwrap cannot create namespaces here ({why})")
            _BWRAP["exe"] = exe
    return _BWRAP["status"]


def resolve_mode(isolation="auto"):
    """The mode that will be used for ``isolation`` (auto, bubblewrap, process), or IsolationError."""
    if isolation not in MODES:
        raise IsolationError(f"unknown isolation {isolation!r}: one of {', '.join(MODES)}")
    ok, why = bubblewrap_status()
    if isolation == "bubblewrap" and not ok:
        raise IsolationError(f"--isolation bubblewrap: {why}")
    if isolation == "process" or not ok:
        return "process"
    return "bubblewrap"


def describe(mode, allow_imports=()):
    """The first line of a grading run's output: which isolation protects the grader, and its limits."""
    allowed = f"; allowed imports: {', '.join(allow_imports)}" if allow_imports else ""
    if mode == "bubblewrap":
        return (
            f"isolation: bubblewrap {bubblewrap_status()[1]} — read-only view of Python and NumPy only, "
            f"no network, own PID namespace, uid {NOBODY}, time, memory, process and file-size limits" + allowed
        )
    ok, why = bubblewrap_status()
    reason = "asked for with --isolation process" if ok else f"bubblewrap unavailable: {why}"
    user = "as nobody" if can_drop_privileges() else "as the grader's own user"
    return (
        f"isolation: process only ({reason}) — separate process {user} with time, memory and file-size "
        f"limits; NOT protected: network, signals to the grader, files its user may change (README)" + allowed
    )


# ---------------------------------------------------------------- what the worker may see
def _readable_by_others(path):
    """Whether a user with no rights but 'others' can reach and read ``path``."""
    path = Path(path).resolve()
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def can_drop_privileges():
    """Root, and the interpreter, the standard library and numpy readable by 'nobody' (process mode)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    try:
        paths = [os.path.realpath(sys.executable), sysconfig.get_paths()["stdlib"], Path(np.__file__).parent]
        return all(_readable_by_others(p) for p in paths)
    except OSError:
        return False


def _distribution_of(module):
    """The installed distribution that provides top-level ``module`` (e.g. 'sklearn' → scikit-learn)."""
    names = metadata.packages_distributions().get(module)
    if not names:
        raise IsolationError(f"--allow-import {module}: no installed package provides {module!r}")
    return metadata.distribution(names[0])


def _requirement_names(dist):
    out = []
    for req in dist.requires or []:
        if "extra ==" in req.replace(" ", " "):
            continue
        name = re.match(r"[A-Za-z0-9._-]+", req.strip())
        if name:
            out.append(name.group(0))
    return out


def package_paths(modules):
    """{top-level name: folder or file} of the given top-level modules and everything they require."""
    found, seen, todo = {}, set(), []
    for module in modules:
        todo.append(_distribution_of(module))
    while todo:
        dist = todo.pop()
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".egg-info", ".data")) or top in ("..", "__pycache__", "bin"):
                continue
            path = Path(dist.locate_file(top))
            if path.exists() and (path.is_dir() or path.suffix in (".py", ".so")):
                found[top] = path
        for name in _requirement_names(dist):
            try:
                todo.append(metadata.distribution(name))
            except metadata.PackageNotFoundError:
                pass  # an optional or platform-specific requirement
    return found


def _site_packages(allow_imports):
    """{name: path} of what goes on the worker's site path: numpy and the packages allowed."""
    numpy_dir = Path(np.__file__).resolve().parent
    found = {"numpy": numpy_dir}
    libs = numpy_dir.parent / "numpy.libs"  # the wheels' bundled OpenBLAS
    if libs.is_dir():
        found["numpy.libs"] = libs
    extra = [m for m in allow_imports if m != "numpy"]
    if extra:
        found.update(package_paths(extra))
    return found


def _hidden_roots():
    """Folders that must not be seen inside a bound tree: every site-packages, the project, user sites."""
    out = set()
    for prefix in {sys.base_prefix, sys.prefix, "/usr", "/usr/local"}:
        for pattern in (
            "lib/python3*/site-packages",
            "lib/python3*/dist-packages",
            "lib/python3/dist-packages",
            "lib64/python3*/site-packages",
        ):
            out.update(glob.glob(os.path.join(prefix, pattern)))
    out.add(str(PROJECT_ROOT))
    return sorted(out)


# ---------------------------------------------------------------- the worker's limits
def _limits(memory_mb, cpu_seconds, nproc, drop_privileges):
    def apply():
        os.setsid()  # its own session and process group
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing a file: an error, not a kill
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if nproc:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if drop_privileges:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return apply


def _environment(home):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine-specific, see the machine notes
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _parents(path):
    """bwrap arguments that create the parent folders of ``path`` world-readable (0755)."""
    out = []
    for parent in reversed(Path(path).parents):
        if str(parent) != "/":
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def _bwrap_command(scratch, target, site, memory_note=None):
    """The bubblewrap command line: the view of the file system and the namespaces."""
    cmd = [
        _BWRAP["exe"],
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    if os.geteuid() != 0:
        cmd += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    bound = []
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
            bound.append(str(path))
    prefix = os.path.realpath(sys.base_prefix)
    if not any(prefix == b or prefix.startswith(b + "/") for b in bound):
        cmd += _parents(prefix) + ["--ro-bind", prefix, prefix]
        bound.append(prefix)
    for hidden in _hidden_roots():
        real = os.path.realpath(hidden)
        if os.path.isdir(real) and any(real == b or real.startswith(b + "/") for b in bound):
            cmd += ["--tmpfs", real]  # an empty folder over it
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--perms",
        "0755",
        "--dir",
        str(INSIDE),
        "--perms",
        "0755",
        "--dir",
        str(INSIDE / "site"),
        "--ro-bind",
        str(RUNTIME),
        str(INSIDE / "lib" / "bpruntime"),
        "--ro-bind",
        str(scratch / "sub"),
        str(INSIDE / "sub"),
    ]
    for name, path in site.items():
        cmd += ["--ro-bind", str(path), str(INSIDE / "site" / name)]
    for key, value in _environment("/tmp").items():
        cmd += ["--setenv", key, value]
    cmd += ["--chdir", str(INSIDE / "sub"), "--", os.path.realpath(sys.executable)]
    return cmd, str(INSIDE / "sub" / Path(target).name), str(INSIDE / "lib"), str(INSIDE / "site")


# ---------------------------------------------------------------- scratch folders
_LIVE = weakref.WeakSet()  # every implementation with a worker or a scratch folder
_INTERRUPTED = threading.Event()  # set by interrupt(): no new calls, every worker killed


def interrupt():
    """Stop every worker now (SIGINT/SIGTERM of the grader): later calls fail at once."""
    _INTERRUPTED.set()
    for impl in list(_LIVE):
        impl.close()


def resume():
    """Allow calls again after interrupt() (tests; a new grading run in the same process)."""
    _INTERRUPTED.clear()


@atexit.register
def _close_all():
    for impl in list(_LIVE):
        try:
            impl.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _parameter_names(function):
    try:
        return list(inspect.signature(getattr(template, function)).parameters)
    except (AttributeError, TypeError, ValueError):
        return []


def changed_inputs(sent, returned, function):
    """Names of the inputs that came back different from what was sent, e.g. ['W[1]'] (grader side)."""
    names = _parameter_names(function)
    out = []
    for i, then in enumerate(sent):
        name = names[i] if i < len(names) else f"argument {i + 1}"
        now = returned[i] if isinstance(returned, list) and i < len(returned) else None
        out.extend(_diff(now, then, name))
    return out


def _diff(now, then, name):
    if isinstance(then, np.ndarray):
        ok = (
            isinstance(now, np.ndarray)
            and now.shape == then.shape
            and np.array_equal(np.asarray(now, dtype=float), np.asarray(then, dtype=float), equal_nan=True)
        )
        return [] if ok else [name]
    if isinstance(then, dict):
        if not isinstance(now, dict) or set(now) != set(then):
            return [name]
        return [n for k in then for n in _diff(now[k], then[k], f"{name}[{k}]")]
    if isinstance(then, (list, tuple)):
        if not isinstance(now, (list, tuple)) or len(now) != len(then):
            return [name]
        return [n for i, (u, v) in enumerate(zip(now, then)) for n in _diff(u, v, f"{name}[{i}]")]
    if isinstance(then, (int, float)) and not isinstance(then, bool):
        return [] if isinstance(now, (int, float)) and (now == then or (now != now and then != then)) else [name]
    return [] if now == then else [name]


class IsolatedImplementation:
    """An engine whose interface functions run in an isolated worker process."""

    rtol_atol = (STUDENT_RTOL, STUDENT_ATOL)

    def __init__(
        self,
        spec,
        name=None,
        timeout=DEFAULT_TIMEOUT,
        memory_mb=DEFAULT_MEMORY_MB,
        cpu_seconds=DEFAULT_CPU_SECONDS,
        isolation="auto",
        allow_imports=(),
        budget=DEFAULT_BUDGET,
    ):
        self.spec = str(spec)
        path = Path(spec)
        self.name = name or (path.stem if path.exists() else self.spec.rsplit(".", 1)[-1])
        self.tolerance = self.rtol_atol
        self.timeout, self.memory_mb, self.cpu_seconds = timeout, memory_mb, cpu_seconds
        self.mode = resolve_mode(isolation)
        self.allow_imports = tuple(allow_imports)
        self.process = None
        self.scratch = None
        self.stderr_tail = b""
        self.events = []  # crashes and time-outs, for the report
        self.provides = None
        self.forbidden_used = []  # forbidden packages the worker tried to import (run time)
        self.budget, self.spent = budget, 0.0  # wall clock for all calls, and how much is used
        self.given_up = {}  # function → why it is not called again (it timed out once)
        self.unloadable = None  # why the implementation cannot be started (import failed or hung)
        self._lock = threading.RLock()
        _LIVE.add(self)

    # ------------------------------------------------------------ process
    def _prepare(self):
        """The scratch folder, made once: sub/ (a copy of the submission), and in process mode lib/, site/."""
        if self.scratch is not None:
            return self._target
        self.scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
        os.chmod(self.scratch, 0o755)
        sub = self.scratch / "sub"
        sub.mkdir()
        path = Path(self.spec)
        if path.is_file():
            shutil.copy2(path, sub / path.name)
            target = sub / path.name
        elif path.is_dir():
            shutil.copytree(
                path, sub / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=False
            )
            target = sub / path.name
        else:
            target = self.spec  # a dotted module name, imported as installed (process mode only)
        self._site = _site_packages(self.allow_imports)
        if self.mode == "process":
            shutil.copytree(
                RUNTIME, self.scratch / "lib" / "bpruntime", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
            (self.scratch / "site").mkdir()
            for name, where in self._site.items():
                (self.scratch / "site" / name).symlink_to(where)
        for p in self.scratch.rglob("*"):
            if not p.is_symlink():
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
        self._target = str(target)
        return self._target

    def _start(self):
        if _INTERRUPTED.is_set():
            raise ImplementationError("grading was interrupted")
        target = self._prepare()
        options = {"forbidden": sorted(forbidden(self.allow_imports)), "drop_to": None, "nproc": None}
        if self.mode == "bubblewrap":
            cmd, target, lib, site = _bwrap_command(self.scratch, target, self._site)
            options.update(target=target, nproc=MAX_PROCESSES, drop_to=NOBODY if os.geteuid() == 0 else None)
            preexec = _limits(self.memory_mb, self.cpu_seconds, None, False)
            env, cwd = {}, None
        else:
            lib, site = str(self.scratch / "lib"), str(self.scratch / "site")
            cmd = [sys.executable]
            options["target"] = target
            preexec = _limits(self.memory_mb, self.cpu_seconds, MAX_PROCESSES, can_drop_privileges())
            env, cwd = _environment(self.scratch / "sub"), self.scratch / "sub"
        cmd = cmd + ["-I", "-S", "-B", "-c", BOOTSTRAP, lib, site, json.dumps(options)]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            preexec_fn=preexec,
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        os.set_blocking(self.process.stderr.fileno(), False)
        self._buffer = b""
        try:
            hello = self._receive("starting the implementation")
        except ImplementationError as exc:  # hung or crashed while importing: not started again
            self.unloadable = str(exc)
            raise
        self._note_forbidden(hello)
        if not hello.get("ok"):
            self._kill()
            self.unloadable = str(hello.get("error", "the implementation did not start"))
            raise ImplementationError(self.unloadable)
        provides = hello.get("provides", [])
        self.provides = [p for p in provides if isinstance(p, str)] if isinstance(provides, list) else []

    def _note_forbidden(self, message):
        names = message.get("forbidden") if isinstance(message, dict) else None
        allowed = forbidden(self.allow_imports)
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name in allowed and name not in self.forbidden_used:
                self.forbidden_used.append(name)

    def _drain_stderr(self):
        try:
            while True:
                chunk = os.read(self.process.stderr.fileno(), 65536)
                if not chunk:
                    break
                self.stderr_tail = (self.stderr_tail + chunk)[-4000:]
        except (BlockingIOError, OSError, ValueError):
            pass

    def _receive(self, what):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self._buffer:
            if self.process is None or _INTERRUPTED.is_set():
                self._kill()
                raise ImplementationError(f"{what}: grading was interrupted")
            out = self.process.stdout.fileno()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                self.events.append(f"timed out after {self.timeout:g} s ({what})")
                if what in INTERFACE:
                    self.given_up.setdefault(
                        what, f"{what} timed out after {self.timeout:g} s before: not called again"
                    )
                raise ImplementationError(f"{what}: timed out after {self.timeout:g} s and was stopped")
            try:
                ready, _, _ = select.select([out, self.process.stderr.fileno()], [], [], min(remaining, 0.5))
            except (ValueError, OSError):  # closed under us by interrupt()
                continue
            self._drain_stderr()
            if out in ready:
                try:
                    chunk = os.read(out, 1 << 20)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    code = self.process.wait()
                    if self.mode == "bubblewrap" and 128 < code < 128 + 65:
                        code = 128 - code  # bwrap exits 128 + N for a child killed by signal N
                    self._drain_stderr()
                    why = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                    tail = self.stderr_tail.decode("utf-8", "replace").strip().splitlines()[-3:]
                    self._kill()
                    self.events.append(f"crashed ({why}) during {what}")
                    raise ImplementationError(
                        f"{what}: the implementation's process ended ({why})"
                        + (f": {' | '.join(tail)}" if tail else "")
                    )
                self._buffer += chunk
                if len(self._buffer) > MAX_MESSAGE:
                    self._kill()
                    raise ImplementationError(f"{what}: answer larger than {MAX_MESSAGE // 2**20} MiB")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = loads(line.decode("utf-8", "replace"))
        except ProtocolError as exc:
            raise ImplementationError(f"{what}: {exc}") from None
        if not isinstance(message, dict):
            raise ImplementationError(f"{what}: malformed answer")
        return message

    def _kill(self):
        process, self.process = self.process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the whole session (bwrap and all inside it)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                process.kill()
            except OSError:
                pass
            process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                try:
                    stream.close()
                except OSError:
                    pass

    def close(self):
        """Stop the worker and remove its scratch folder (safe to call more than once)."""
        with self._lock:
            if self.process is not None:
                try:
                    self.process.stdin.close()
                    self.process.wait(timeout=1)
                except (subprocess.TimeoutExpired, OSError, ValueError):
                    pass
                self._kill()
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)
                self.scratch = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------ calls
    def call(self, name, *args):
        if self.unloadable is not None:
            raise ImplementationError(self.unloadable)
        if name in self.given_up:
            raise ImplementationError(self.given_up[name])
        if self.spent > self.budget:
            raise ImplementationError(
                f"{name}: not called: the implementation used up its time budget of {self.budget:g} s"
            )
        started = time.monotonic()
        try:
            return self._call(name, *args)
        finally:
            self.spent += time.monotonic() - started

    def _call(self, name, *args):
        with self._lock:
            if self.process is None:
                self._start()
            if self.provides is not None and name not in self.provides:
                raise NotImplementedError(f"{name} is not provided")
            try:
                self.process.stdin.write((dumps({"call": name, "args": encode(list(args))}) + "\n").encode())
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self._kill()
                raise ImplementationError(f"{name}: the implementation's process is gone") from None
            message = self._receive(name)
        self._note_forbidden(message)
        if message.get("not_implemented"):
            raise NotImplementedError(str(message["not_implemented"]))
        if not message.get("ok"):
            raise ImplementationError(str(message.get("error", "failed")))
        try:
            returned = decode(message.get("inputs"))
        except ProtocolError:
            returned = None
        mutated = changed_inputs(list(args), returned, name)
        if mutated:
            raise ImplementationError(
                f"{name} modified its input{'s' if len(mutated) > 1 else ''} in place "
                f"({', '.join(map(str, mutated))}); inputs must not be changed"
            )
        try:
            return decode(message.get("result"))
        except ProtocolError as exc:
            raise ImplementationError(f"{name}: {exc}") from None


def _method(name):
    def method(self, *args):
        return self.call(name, *args)

    method.__name__ = name
    return method


for _name in INTERFACE:  # the interface's functions, one method each
    setattr(IsolatedImplementation, _name, _method(_name))
