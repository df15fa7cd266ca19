"""The worker process that hosts one implementation under test (run by oracle.student.sandbox).

    python -m oracle.student.worker PATH_OR_MODULE

It imports the implementation, answers one JSON request per line on its
original standard input with one JSON answer per line on its original
standard output, and sends whatever the implementation prints to standard
error. It runs with the resource limits, the scratch directory and the
minimal environment the sandbox gave it; it is trusted no more than the code
it hosts: the grader validates every answer.
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from oracle.student.adapters import adapt
from oracle.student.protocol import decode, dumps, encode, loads


def load(spec):
    """A module from a .py file, a package folder or a dotted module name."""
    path = Path(spec)
    if path.suffix == ".py" and path.is_file():
        sys.path.insert(0, str(path.parent))
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
        return module
    if path.is_dir() and (path / "__init__.py").is_file():
        sys.path.insert(0, str(path.parent))
        return importlib.import_module(path.name)
    return importlib.import_module(spec)


def _mutated(fn, args, pristine):
    """Names of the inputs an implementation changed in place, e.g. W[1]."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    out = []
    for i, (now, then) in enumerate(zip(args, pristine)):
        name = names[i] if i < len(names) else f"argument {i + 1}"
        out.extend(_diff(now, then, name))
    return out


def _diff(now, then, name):
    if isinstance(then, np.ndarray):
        if not isinstance(now, np.ndarray) or now.shape != then.shape or not np.array_equal(now, then, equal_nan=True):
            return [name]
        return []
    if isinstance(then, dict):
        if not isinstance(now, dict) or set(now) != set(then):
            return [name]
        return [n for k in then for n in _diff(now[k], then[k], f"{name}[{k}]")]
    if isinstance(then, list):
        if not isinstance(now, list) or len(now) != len(then):
            return [name]
        return [n for i, (u, v) in enumerate(zip(now, then)) for n in _diff(u, v, f"{name}[{i}]")]
    return []


def main():
    protocol_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)                       # print() of the implementation goes to standard error
    sys.stdout = sys.stderr

    def send(message):
        protocol_out.write(dumps(message) + "\n")
        protocol_out.flush()

    try:
        functions = adapt(vars(load(sys.argv[1])))
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
        pristine = copy.deepcopy(args)
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
        except (TypeError, ValueError) as exc:
            send({"ok": False, "error": f"{name} returned {exc}, which is not numbers"})
            continue
        send({"ok": True, "result": payload, "mutated": _mutated(fn, args, pristine)})


if __name__ == "__main__":
    main()
