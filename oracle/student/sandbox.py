"""Run an implementation under test in a separate, limited process: an engine like the others.

What the isolation does: the implementation runs in its own process (one
per implementation, restarted after a crash or a time-out), in a fresh
scratch directory holding a copy of its code, with a minimal environment,
a wall-clock time-out per call and resource limits — address space
(memory), CPU time, file size 0 (it cannot write a byte to any file),
number of processes, no core dumps — and, when the grader runs as root and
the interpreter is readable by others, as the unprivileged user ``nobody``
(otherwise as the grader's own user: then it could still truncate or delete
files that user may change, which the case-file check below repairs). Its inputs are copies; its answers are
JSON, validated by the grader (never unpickled). Case files are kept in
memory and checked by hash after every implementation: a changed file is
restored and the implementation reported.

What it does not do: it is not a sandbox against a determined attacker
(the process can still read files readable by its user and use the
network). For that, run the grader inside a container (see README).
"""
from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .adapters import INTERFACE
from .protocol import MAX_MESSAGE, ProtocolError, decode, dumps, encode, loads

DEFAULT_TIMEOUT = 10.0          # seconds of wall clock per call
DEFAULT_MEMORY_MB = 1024        # address space
DEFAULT_CPU_SECONDS = 120       # CPU time of one worker process
MAX_PROCESSES = 64              # per user (counts threads too)
STUDENT_RTOL, STUDENT_ATOL = 1e-6, 1e-9
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ImplementationError(RuntimeError):
    """The implementation failed: raised, crashed, timed out, returned garbage or mutated its input."""

    report_as_is = True      # the message already says which function failed and how


def _limits(memory_mb, cpu_seconds, drop_privileges):
    def apply():
        os.setsid()                                                   # its own process group
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)                 # writing a file: an error, not a kill
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
        if drop_privileges:
            import pwd
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
    return apply


def _readable_by_others(path):
    """Whether a user with no rights but 'others' can reach and read ``path``."""
    path = Path(path).resolve()
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def can_drop_privileges():
    """Root, and the interpreter, the standard library, numpy and this project readable by 'nobody'."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    try:
        import pwd
        import sysconfig

        import numpy
        pwd.getpwnam("nobody")
        paths = [sys.executable, sysconfig.get_paths()["stdlib"], Path(numpy.__file__).parent,
                 PROJECT_ROOT / "oracle"]
        return all(_readable_by_others(p) for p in paths)
    except (KeyError, OSError, ImportError):
        return False


def _environment(scratch):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(scratch), "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "PYTHONPATH": str(PROJECT_ROOT),
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):   # machine-specific, see the machine notes
        if key in os.environ:
            env[key] = os.environ[key]
    return env


class IsolatedImplementation:
    """An engine whose interface functions run in a limited worker process."""

    rtol_atol = (STUDENT_RTOL, STUDENT_ATOL)

    def __init__(self, spec, name=None, timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB,
                 cpu_seconds=DEFAULT_CPU_SECONDS, guard=None):
        self.spec = str(spec)
        path = Path(spec)
        self.name = name or (path.stem if path.exists() else self.spec.rsplit(".", 1)[-1])
        self.tolerance = self.rtol_atol
        self.timeout, self.memory_mb, self.cpu_seconds = timeout, memory_mb, cpu_seconds
        self.process = None
        self.scratch = None
        self.stderr_tail = b""
        self.events = []                 # crashes and time-outs, for the report
        self.provides = None
        self.guard = guard               # checks the case files after every call

    # ------------------------------------------------------------ process
    def _prepare(self):
        self.scratch = Path(tempfile.mkdtemp(prefix="backprop-impl-"))
        os.chmod(self.scratch, 0o755)
        path = Path(self.spec)
        if path.is_file():
            target = self.scratch / path.name
            shutil.copy2(path, target)
        elif path.is_dir():
            target = self.scratch / path.name
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target = self.spec           # a dotted module name, imported as installed
        for p in self.scratch.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        return str(target)

    def _start(self):
        target = self._prepare()
        drop = can_drop_privileges()
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c",
             "import sys; sys.path.insert(0, %r); from oracle.student.worker import main; main()"
             % str(PROJECT_ROOT), target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.scratch,
            env=_environment(self.scratch), preexec_fn=_limits(self.memory_mb, self.cpu_seconds, drop),
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        os.set_blocking(self.process.stderr.fileno(), False)
        self._buffer = b""
        hello = self._receive("starting the implementation")
        if not hello.get("ok"):
            self.close()
            raise ImplementationError(hello.get("error", "the implementation did not start"))
        self.provides = hello.get("provides", [])

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
        out = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                self.events.append(f"timed out after {self.timeout:g} s ({what})")
                raise ImplementationError(f"{what}: timed out after {self.timeout:g} s and was stopped")
            ready, _, _ = select.select([out, self.process.stderr.fileno()], [], [], remaining)
            self._drain_stderr()
            if out in ready:
                try:
                    chunk = os.read(out, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    code = self.process.wait()
                    self._drain_stderr()
                    why = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                    tail = self.stderr_tail.decode("utf-8", "replace").strip().splitlines()[-3:]
                    self.process = None
                    self.events.append(f"crashed ({why}) during {what}")
                    raise ImplementationError(f"{what}: the implementation's process ended ({why})"
                                              + (f": {' | '.join(tail)}" if tail else ""))
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
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            self.process = None

    def close(self):
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=2)
            except (subprocess.TimeoutExpired, OSError):
                pass
            self._kill()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------ calls
    def call(self, name, *args):
        if self.process is None:
            self._start()
        if self.provides is not None and name not in self.provides:
            raise NotImplementedError(f"{name} is not provided")
        try:
            self.process.stdin.write((dumps({"call": name, "args": encode(list(args))}) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            raise ImplementationError(f"{name}: the implementation's process is gone") from None
        try:
            message = self._receive(name)
        finally:
            if self.guard is not None:
                changed = self.guard.check_and_restore()
                if changed:
                    self.events.append(f"changed case files during {name} (restored): {', '.join(changed)}")
        if message.get("not_implemented"):
            raise NotImplementedError(message["not_implemented"])
        if not message.get("ok"):
            raise ImplementationError(str(message.get("error", "failed")))
        mutated = message.get("mutated") or []
        if mutated:
            raise ImplementationError(f"{name} modified its input{'s' if len(mutated) > 1 else ''} in place "
                                      f"({', '.join(map(str, mutated))}); inputs must not be changed")
        try:
            return decode(message.get("result"))
        except ProtocolError as exc:
            raise ImplementationError(f"{name}: {exc}") from None


def _method(name):
    def method(self, *args):
        return self.call(name, *args)
    method.__name__ = name
    return method


for _name in INTERFACE:                     # the interface's functions, one method each
    setattr(IsolatedImplementation, _name, _method(_name))
