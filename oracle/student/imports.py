"""Find forbidden imports in a submission's files without running them (the grader's side).

The rule — which packages are forbidden and why — is oracle.student.runtime.imports;
the worker enforces the same rule at run time. Found here: ``import x``,
``from x import …``, ``__import__("x")``, ``importlib.import_module("x")`` and
``importlib.util.find_spec("x")`` with a constant name, in every .py file of the
submission (a file, or a package folder).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .runtime.imports import FORBIDDEN, forbidden

_DYNAMIC = {"__import__", "import_module", "find_spec", "_gcd_import"}


@dataclass(frozen=True)
class ForbiddenImport:
    name: str  # the top-level package
    file: str
    line: int

    def message(self):
        return f"{self.file}:{self.line}: imports {self.name}: {FORBIDDEN[self.name]}: not allowed"


def _names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Call):
            fn = node.func
            called = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
            if (
                called in _DYNAMIC
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield node.args[0].value, node.lineno


def scan(spec, allow_imports=()):
    """Every forbidden import in the submission's .py files, in file and line order."""
    path = Path(spec)
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.suffix == ".py" else []
    refused = forbidden(allow_imports)
    found = []
    for file in files:
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (SyntaxError, ValueError, OSError, RecursionError, MemoryError):
            continue  # the worker reports the file that does not import
        shown = file.name if path.is_file() else str(file.relative_to(path.parent))
        for name, line in _names(tree):
            top = name.partition(".")[0]
            if top in refused:
                found.append(ForbiddenImport(top, shown, line))
    return sorted(set(found), key=lambda f: (f.file, f.line, f.name))
