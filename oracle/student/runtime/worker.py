"""The worker process that hosts one implementation under test (started by oracle.student.sandbox).

    python -I -S -B -c BOOTSTRAP LIB_DIR SITE_DIR OPTIONS_JSON

The bootstrap puts LIB_DIR (holding this package as ``bpruntime``) and
SITE_DIR (NumPy, and any package an assignment allows) on ``sys.path`` and
calls ``main``. ``main`` drops root privileges when asked (under bubblewrap
the sandbox starts as root inside its namespaces), caps the number of
processes, installs the import guard, imports the implementation and then
answers one JSON request per line on its original standard input with one
JSON answer per line on its original standard output. Whatever the
implementation prints goes to standard error.

It is trusted no more than the code it hosts: every answer — including the
inputs as they are after the call, which the grader compares with what it
sent to detect in-place modification — is judged by the grader.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys
import traceback
from pathlib import Path

from .adapters import adapt
from .imports import ImportGuard
from .protocol import decode, dumps, encode, loads


def load(spec):
    """A module from a .py file, a package folder or a dotted module name."""
    path = Path(spec)
    if path.suffix == ".py" and path.is_file():
        sys.path.insert(0, str(path.parent))
        name = path.stem if path.stem not in sys.modules else f"submission_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    if path.is_dir() and (path / "__init__.py").is_file():
        sys.path.insert(0, str(path.parent))
        return importlib.import_module(path.name)
    return importlib.import_module(spec)


def _drop_privileges(uid):
    """Inside bubblewrap's namespaces as root: become ``uid`` for good (all capabilities go with it)."""
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def main():
    options = json.loads(sys.argv[-1])
    if options.get("drop_to") is not None:
        _drop_privileges(options["drop_to"])
    if options.get("nproc"):
        resource.setrlimit(resource.RLIMIT_NPROC, (options["nproc"], options["nproc"]))
    guard = ImportGuard(options.get("forbidden", ())).install()

    protocol_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # print() of the implementation goes to standard error
    sys.stdout = sys.stderr

    def send(message):
        message["forbidden"] = list(guard.attempts)
        protocol_out.write(dumps(message) + "\n")
        protocol_out.flush()

    try:
        functions = adapt(vars(load(options["target"])))
    except BaseException as exc:  # noqa: BLE001 - anything the import does is reported
        send({"ok": False, "error": f"importing the implementation failed: {type(exc).__name__}: {exc}"})
        return
    send({"ok": True, "provides": sorted(functions)})
    for line in protocol_in:
        request = decode(loads(line))
        name, args = request["call"], request["args"]
        fn = functions.get(name)
        if fn is None:
            send({"ok": False, "not_implemented": f"{name} is not provided"})
            continue
        try:
            result = fn(*args)
        except NotImplementedError as exc:
            send({"ok": False, "not_implemented": str(exc) or f"{name} raises NotImplementedError"})
            continue
        except BaseException as exc:  # noqa: BLE001
            tb = traceback.extract_tb(exc.__traceback__)
            where = f" (line {tb[-1].lineno} of {Path(tb[-1].filename).name})" if tb else ""
            send({"ok": False, "error": f"{name} raised {type(exc).__name__}: {exc}{where}"})
            continue
        try:
            payload = encode(result)
        except Exception as exc:  # noqa: BLE001 - whatever an object's __float__ or __array__ raises
            send({"ok": False, "error": f"{name} returned {exc}, which is not numbers"})
            continue
        try:
            inputs = encode(list(args))  # as they are now: the grader compares them with what it sent
        except Exception:  # noqa: BLE001 - inputs replaced by something that is not numbers
            inputs = None
        send({"ok": True, "result": payload, "inputs": inputs})


if __name__ == "__main__":
    main()
