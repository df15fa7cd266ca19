"""The engines are independent: refimpl never imports torch, the torch oracle never imports refimpl."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("path", sorted((ROOT / "refimpl").rglob("*.py")), ids=lambda p: p.name)
def test_refimpl_source_never_imports_torch(path):
    assert "torch" not in set(imported_modules(path))


@pytest.mark.parametrize("module", ["torch_engine.py", "finite_diff.py"])
def test_oracle_engines_never_import_refimpl(module):
    assert "refimpl" not in set(imported_modules(ROOT / "oracle" / "engines" / module))


def test_finite_differences_use_no_autograd():
    assert "torch" not in set(imported_modules(ROOT / "oracle" / "engines" / "finite_diff.py"))


def _modules_after_import(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_importing_refimpl_loads_no_torch():
    assert "torch" not in _modules_after_import("import refimpl")


def test_importing_the_torch_oracle_loads_no_refimpl():
    mods = _modules_after_import("import oracle.engines.torch_engine")
    assert "torch" in mods and "refimpl" not in mods


def test_torch_oracle_has_no_hand_written_derivatives():
    """Every derivative in the torch oracle comes from torch.autograd."""
    text = (ROOT / "oracle" / "engines" / "torch_engine.py").read_text(encoding="utf-8")
    for formula in ("(1 - ", "1.0 - ", "* (1.0 -", "sigmoid(z) * (1"):
        assert formula not in text, formula
    assert text.count("torch.autograd") >= 4


@pytest.mark.parametrize("path", sorted((ROOT / "oracle" / "student" / "runtime").glob("*.py")), ids=lambda p: p.name)
def test_the_worker_runtime_imports_only_the_standard_library_and_numpy(path):
    """These files are all the project code a sandboxed worker sees: nothing else may be needed."""
    outside = set(imported_modules(path)) - set(sys.stdlib_module_names) - {"numpy", "__future__"}
    assert not outside, f"{path.name} imports {sorted(outside)}"


def _all_imports(path):
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


LAYERS = {  # a package may import only the packages listed (and the standard library, numpy, …)
    "oracle/engines": {"oracle.engines"},
    "oracle/verdict": {"oracle.verdict", "oracle.engines"},
    "oracle/reports": {"oracle.reports", "oracle.verdict", "oracle.engines"},
    "oracle/authoring": {"oracle.authoring", "oracle.reports", "oracle.verdict", "oracle.engines"},
    "oracle/testing": {"oracle.testing", "oracle.authoring", "oracle.reports", "oracle.verdict", "oracle.engines"},
}


@pytest.mark.parametrize("package", list(LAYERS))
def test_dependencies_point_one_way(package):
    """The verdict core depends on the engines only; tools depend on it, never the other way round."""
    allowed = LAYERS[package]
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in _all_imports(path):
            if module.startswith("oracle.") or module == "oracle":
                assert any(module == a or module.startswith(a + ".") for a in allowed), (
                    f"{path.relative_to(ROOT)} imports {module}"
                )
