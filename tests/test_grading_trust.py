"""Trust in the verdict on students' code: isolation modes, forbidden imports, the grader's integrity,
diagnoses that name only what the student did, and scoring by assignment."""

import json
import os
import shutil
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from oracle.cli import main
from oracle.student import sandbox
from oracle.student.imports import scan

ROOT = Path(__file__).resolve().parents[1]
IMPLS = Path(__file__).parent / "fixtures" / "impls"
CASES = ROOT / "cases"
CORRECT = IMPLS / "correct_solution.py"
FEW = ["001_sigmoid_net.yaml", "001_minibatch_update.yaml", "004_minibatch_row.yaml", "001_circuit.yaml"]
BWRAP = pytest.mark.skipif(
    not sandbox.bubblewrap_status()[0], reason=f"bubblewrap unusable here: {sandbox.bubblewrap_status()[1]}"
)
MODES = [pytest.param("bubblewrap", marks=BWRAP), "process"]


def student_copy(tmp_path, name, *edits):
    """The correct solution with lines changed as a student would get them wrong."""
    text = CORRECT.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    return path


def grade(tmp_path, *subs, cases=FEW, extra=()):
    """Grade submissions (paths) as a folder; (exit status, stdout lines, {name: results.json})."""
    folder = tmp_path / "subs"
    folder.mkdir(exist_ok=True)
    for sub in subs:
        if Path(sub).parent != folder:
            (shutil.copytree if Path(sub).is_dir() else shutil.copy)(sub, folder / Path(sub).name)
    args = ["grade", str(folder), "--results-dir", str(tmp_path / "out"), *extra]
    for c in cases:
        args += ["--cases", str(CASES / c)]
    return args


def run_grade(tmp_path, capsys, *subs, cases=FEW, extra=()):
    code = main(grade(tmp_path, *subs, cases=cases, extra=extra))
    out = capsys.readouterr().out.splitlines()
    data = {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in (tmp_path / "out").glob("*/results.json")}
    return code, out, data


# ---------------------------------------------------------------- isolation modes
@pytest.mark.parametrize("mode", MODES)
def test_the_first_line_and_results_name_the_isolation(tmp_path, capsys, mode):
    code, out, data = run_grade(tmp_path, capsys, CORRECT, extra=["--isolation", mode])
    assert code == 0
    assert out[0].startswith(f"isolation: {'bubblewrap' if mode == 'bubblewrap' else 'process only'}")
    assert data["correct_solution"]["extra_data"]["isolation"] == mode
    assert data["correct_solution"]["score"] == data["correct_solution"]["max_score"] > 0


def test_without_bubblewrap_the_grader_falls_back_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sandbox._BWRAP, "status", (False, "bwrap not found (test)"))
    code, out, data = run_grade(tmp_path, capsys, CORRECT)
    assert code == 0
    assert out[0].startswith("isolation: process only (bubblewrap unavailable: bwrap not found (test))")
    assert "NOT protected" in out[0]
    assert data["correct_solution"]["extra_data"]["isolation"] == "process"
    assert main(["grade", str(tmp_path / "subs"), "--isolation", "bubblewrap"]) == 2  # asked for, not there


@BWRAP
def test_inside_bubblewrap_the_project_torch_and_the_cases_are_not_there(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        textwrap.dedent(f"""
        import os, sys
        def activation(name, z, param=None, axis=0):
            seen = [p for p in ({str(ROOT)!r}, {str(CASES)!r}, {str(Path(sys.executable).parent)!r})
                    if os.path.exists(p)]
            found = [p for p in sys.path if os.path.isdir(os.path.join(p, "torch"))]
            raise RuntimeError(f"uid={{os.getuid()}} ppid={{os.getppid()}} seen={{seen}} torch={{found}}")
        """),
        encoding="utf-8",
    )
    impl = sandbox.IsolatedImplementation(probe, isolation="bubblewrap")
    try:
        with pytest.raises(sandbox.ImplementationError) as info:
            impl.activation("relu", 1.0)
    finally:
        impl.close()
    assert "uid=65534 ppid=1 seen=[] torch=[]" in str(info.value)


# ---------------------------------------------------------------- forbidden imports
def test_the_static_scan_finds_every_spelling(tmp_path):
    sub = tmp_path / "sneaky"
    sub.mkdir()
    (sub / "__init__.py").write_text("import numpy as np\nfrom .helpers import backward\n", encoding="utf-8")
    (sub / "helpers.py").write_text(
        textwrap.dedent("""
        import importlib
        def backward(*args):
            from refimpl import backward as b
            return b(*args)
        def other():
            import torch.autograd
            return __import__("jax"), importlib.import_module("oracle.student.mistakes")
        """),
        encoding="utf-8",
    )
    found = scan(sub)
    assert [(f.name, f.file, f.line) for f in found] == [
        ("refimpl", "sneaky/helpers.py", 4),
        ("torch", "sneaky/helpers.py", 7),
        ("jax", "sneaky/helpers.py", 8),
        ("oracle", "sneaky/helpers.py", 8),
    ]
    assert found[0].message() == "sneaky/helpers.py:4: imports refimpl: uses the reference implementation: not allowed"
    assert [f.name for f in scan(sub, allow_imports=["torch", "jax", "refimpl"])] == ["refimpl", "oracle"]


@pytest.mark.parametrize("mode", MODES)
def test_a_submission_that_imports_the_reference_scores_zero(tmp_path, capsys, mode):
    lazy = tmp_path / "lazy.py"  # found by the scan although the import is inside a function
    lazy.write_text(
        CORRECT.read_text(encoding="utf-8")
        + textwrap.dedent("""
        def backward(W, b, f, x, y, loss, convention="column"):
            import refimpl
            return refimpl.backward(W, b, f, x, y, loss, convention)
        """),
        encoding="utf-8",
    )
    built = tmp_path / "built.py"  # a name built at run time: only the worker's guard sees it
    built.write_text(
        CORRECT.read_text(encoding="utf-8").replace("def backward(", "def _backward(", 1)
        + textwrap.dedent("""
        import importlib
        def backward(W, b, f, x, y, loss, convention="column"):
            try:
                ref = importlib.import_module("ref" + "impl")
            except ImportError:
                return _backward(W, b, f, x, y, loss, convention)
            return ref.backward(W, b, f, x, y, loss, convention)
        """),
        encoding="utf-8",
    )
    code, out, data = run_grade(tmp_path, capsys, lazy, built, extra=["--isolation", mode])
    assert code == 0
    for name, phrase in (("lazy", "lazy.py:"), ("built", "tried to import refimpl at run time")):
        result = data[name]
        assert result["score"] == 0 and result["max_score"] > 0
        assert any(phrase in f and "not allowed" in f for f in result["extra_data"]["forbidden_imports"])
        assert all(t["score"] == 0 for t in result["tests"])
    rows = {line.split()[0]: line for line in out[3:]}
    assert "not allowed" in rows["lazy"] and "not allowed" in rows["built"]


@BWRAP
def test_an_assignment_may_allow_torch(tmp_path, capsys):
    sub = tmp_path / "uses_torch.py"
    sub.write_text(
        textwrap.dedent("""
        import numpy as np
        import torch
        def activation(name, z, param=None, axis=0):
            if name != "sigmoid":
                raise NotImplementedError(name)
            return torch.sigmoid(torch.as_tensor(np.asarray(z, dtype=float))).numpy()
        def activation_derivative(name, z, param=None, axis=0):
            if name != "sigmoid":
                raise NotImplementedError(name)
            t = torch.as_tensor(np.asarray(z, dtype=float)).requires_grad_()
            torch.sigmoid(t).sum().backward()
            return t.grad.numpy()
        """),
        encoding="utf-8",
    )
    code, out, data = run_grade(
        tmp_path,
        capsys,
        sub,
        cases=["precision/sigmoid_saturation_float64.yaml"],
        extra=["--allow-import", "torch", "--impl-memory", "8192", "--impl-timeout", "60"],
    )
    assert code == 0 and "allowed imports: torch" in out[0]
    result = data["uses_torch"]
    assert result["extra_data"]["forbidden_imports"] == []
    assert result["score"] == result["max_score"] > 0, result["output"]
    assert main(["grade", str(tmp_path / "subs"), "--allow-import", "refimpl"]) == 2


# ---------------------------------------------------------------- the grader's integrity
@pytest.mark.parametrize("mode", MODES)
def test_scratch_folders_are_removed_on_every_path(tmp_path, capsys, monkeypatch, mode):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    subs = [tmp_path / n for n in ("crashes", "hangs", "raises")]
    for name, sub in zip(("crashes.py", "hangs.py", "raises.py"), subs):
        sub.mkdir()
        shutil.copy(IMPLS / name, sub / "__init__.py")
        shutil.copy(CORRECT, sub / "correct_solution.py")
    code, out, data = run_grade(
        tmp_path, capsys, *subs, cases=FEW[:2], extra=["--isolation", mode, "--impl-timeout", "1"]
    )
    assert code == 0 and set(data) == {"crashes", "hangs", "raises"}
    assert "timed out" in data["hangs"]["output"] and "SIGSEGV" in json.dumps(data["crashes"])
    assert list(scratch_root.glob(f"{sandbox.SCRATCH_PREFIX}*")) == []


def test_a_concurrent_edit_of_a_case_file_is_kept_and_reported_not_reverted(tmp_path, capsys):
    cases = tmp_path / "cases"
    shutil.copytree(CASES, cases, ignore=shutil.ignore_patterns("coverage", "precision", "grading", "regression"))
    slow = student_copy(
        tmp_path,
        "slow",
        (
            'def backward(W, b, f, x, y, loss, convention="column"):\n',
            'def backward(W, b, f, x, y, loss, convention="column"):\n    import time; time.sleep(0.5)\n',
        ),
    )
    target = cases / "001_sigmoid_net.yaml"
    edited = target.read_bytes() + b"# the user's own edit while grading runs\n"

    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob(f"{sandbox.SCRATCH_PREFIX}*"))

    def edit():  # as soon as the submission's worker exists: grading runs
        deadline = time.monotonic() + 60
        while not set(scratch.glob(f"{sandbox.SCRATCH_PREFIX}*")) - before and time.monotonic() < deadline:
            time.sleep(0.01)
        target.write_bytes(edited)

    thread = threading.Thread(target=edit)
    thread.start()
    args = [
        "grade",
        str(tmp_path / "subs"),
        "--results-dir",
        str(tmp_path / "out"),
        "--isolation",
        "process",
        "--cases",
        str(target),
        "--cases",
        str(cases / "001_ne3.yaml"),
        "--cases",
        str(cases / "001_ne1.yaml"),
    ]
    (tmp_path / "subs").mkdir()
    shutil.copy(slow, tmp_path / "subs" / "slow.py")
    assert main(args) == 0
    thread.join()
    assert target.read_bytes() == edited  # never written back
    data = json.loads((tmp_path / "out" / "slow" / "results.json").read_text(encoding="utf-8"))
    assert any("changed while this submission ran (not restored" in p for p in data["extra_data"]["problems"])


# ---------------------------------------------------------------- diagnoses
def test_messages_name_the_implementation_not_the_engines(tmp_path, capsys):
    sub = student_copy(
        tmp_path, "no_transpose", ("grad_a[l] = Wc[l + 1].T @ delta[l + 1]", "grad_a[l] = Wc[l + 1] @ delta[l + 1]")
    )
    code, out, data = run_grade(tmp_path, capsys, sub, cases=["001_ne3.yaml"])
    text = json.dumps(data["no_transpose"], ensure_ascii=False)
    assert "your dC/da[1] differs from the reference (numpy, torch, fd agree)" in text
    assert "engines disagree" not in text and "numpy/no_transpose" not in text
    first = data["no_transpose"]["extra_data"]["first_divergence"]
    assert first == {"case": "001_ne3", "quantity": "dC/da[1]", "equation": "(W^{l+1})ᵀ δ^{l+1} (BP2)"}
    assert data["no_transpose"]["extra_data"]["mistake"] == "transpose missing in (W^{l+1})ᵀ δ^{l+1}"


ISSUE_MISTAKES = {
    # the three false names of the issue: each mistake, and the names it once got wrongly
    "bias_mean": (
        (
            (
                "db = {l: None if b[l] is None else scale * delta[l].sum(axis=1) for l in W}",
                "db = {l: None if b[l] is None else delta[l].mean(axis=1) for l in W}",
            ),
        ),
        {"½ of the squared error doubled", "sign of ∇_a C flipped"},
        {None, "bias gradient a mean where the loss is a sum"},
    ),
    "bias_update_sign": (
        (("np.asarray(v) - eta * np.asarray(dC_db[l])", "np.asarray(v) + eta * np.asarray(dC_db[l])"),),
        {"sign of ∇_a C flipped"},
        {None},
    ),
    "skips_layer_1": (
        (("for l in range(L - 1, 0, -1):", "for l in range(L - 1, 1, -1):"),),
        {"bias gradient left out"},
        {None, "backward loop skips layer 1"},
    ),
}


@pytest.mark.parametrize("name", list(ISSUE_MISTAKES))
def test_no_mistake_is_named_that_the_student_did_not_make(tmp_path, capsys, name):
    edits, wrong, headline = ISSUE_MISTAKES[name]
    code, out, data = run_grade(tmp_path, capsys, student_copy(tmp_path, name, *edits), cases=[str(CASES)])
    result = data[name]
    assert result["score"] < result["max_score"]
    assert result["extra_data"]["first_divergence"] is not None
    named = {m for t in result["tests"] for m in t["extra_data"]["mistakes"]}
    assert not named & wrong, named
    # a case whose W is frozen cannot tell a bias-only sign error from "update added", but the headline
    # names a mistake only when every case agrees with it
    assert result["extra_data"]["mistake"] in headline


# ---------------------------------------------------------------- scoring
def test_an_assignment_sets_what_counts_its_weights_and_visibility(tmp_path, capsys):
    assignment = tmp_path / "hw.yaml"
    assignment.write_text(
        textwrap.dedent(f"""
        title: HW
        cases:
          - path: {CASES / "001_sigmoid_net.yaml"}
            quantities: ["delta[*]", "dC/dW[*]"]
            weight: 2
          - path: {CASES / "001_circuit.yaml"}
            visibility: hidden
        defaults: {{weight: 1, visibility: after_due_date}}
        """),
        encoding="utf-8",
    )
    backprop_only = IMPLS / "backprop_style.py"  # gives ∂C/∂W and ∂C/∂b only: no graph, no δ
    (tmp_path / "subs").mkdir()
    for sub in (CORRECT, backprop_only):
        shutil.copy(sub, tmp_path / "subs" / sub.name)
    assert (
        main(["grade", str(tmp_path / "subs"), "--assignment", str(assignment), "--results-dir", str(tmp_path / "out")])
        == 0
    )
    out = capsys.readouterr().out
    correct = json.loads((tmp_path / "out" / "correct_solution" / "results.json").read_text(encoding="utf-8"))
    names = {t["name"]: t for t in correct["tests"]}
    assert set(n for n in names if n.startswith("001_sigmoid_net")) == {
        "001_sigmoid_net::delta[1]",
        "001_sigmoid_net::delta[2]",
        "001_sigmoid_net::dC/dW[1]",
        "001_sigmoid_net::dC/dW[2]",
    }
    assert all(
        names[n]["max_score"] == 2 and names[n]["visibility"] == "after_due_date"
        for n in names
        if n.startswith("001_sigmoid_net")
    )
    circuit = [t for n, t in names.items() if n.startswith("001_circuit")]
    assert circuit and all(t["visibility"] == "hidden" and t["max_score"] == 1 for t in circuit)
    assert correct["score"] == correct["max_score"] == 8 + len(circuit)
    partial = json.loads((tmp_path / "out" / "backprop_style" / "results.json").read_text(encoding="utf-8"))
    assert partial["max_score"] == correct["max_score"]  # required, provided or not
    assert partial["score"] == 4  # its two ∂C/∂W, nothing else
    assert "backprop_style" in out


def test_without_an_assignment_not_provided_quantities_do_not_count(tmp_path, capsys):
    code, out, data = run_grade(tmp_path, capsys, IMPLS / "backprop_style.py", cases=["001_sigmoid_net.yaml"])
    result = data["backprop_style"]
    assert result["score"] == result["max_score"] == 4  # dC/dW[1..2], dC/db[1..2]
    skipped = [t for t in result["tests"] if t["max_score"] == 0]
    assert skipped and all(t["output"].startswith("not implemented") for t in skipped)


def test_grading_does_not_leave_files_behind_in_the_working_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tmp_path))
    run_grade(tmp_path, capsys, CORRECT, cases=FEW[:1])
    assert set(os.listdir(tmp_path)) - before == {"subs", "out"}
