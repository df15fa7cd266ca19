"""Expressions at their limits and out of their domain, no engine warnings, safe printing, and the tools' files.

Every bad expression is refused (at load) or reported (at run time) at its own ``file:line:col``,
never as a RecursionError or a bare "not finite"; no NumPy RuntimeWarning reaches stderr; text from
a case reaches the terminal and the HTML page escaped; ``new`` and ``solve --write`` touch only the
file they name, the way it is written (line endings, symbolic links).
"""

import copy
import os
import pickle
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import refimpl
from oracle.verdict import expr
from oracle.verdict.cases import load_case
from oracle.cli import main
from oracle.verdict.compare import MISMATCH, check_case
from oracle.verdict.engines import default_engines
from oracle.authoring.explain import explain
from oracle.verdict.run import compute
from oracle.reports.safetext import html, terminal

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "fixtures" / "bad_inputs"
HEAD = "title: t\nsource: {document: d.txt, heading: h}\n"
LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$")


def graph_case(tmp_path, node, inputs="{x: 1, y: 2}", name="g.yaml", extra=""):
    path = tmp_path / name
    path.write_text(HEAD + f"kind: graph\ninputs: {inputs}\ngraph:\n  f: {node}\n" + extra, encoding="utf-8")
    return path


def activation_case(tmp_path, define, z="[0.0, 1.0]", name="a.yaml"):
    path = tmp_path / name
    path.write_text(HEAD + f"kind: activation\nactivation: sigmoid\nz: {z}\ndefine:\n  q: {define}\n", encoding="utf-8")
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def no_traceback(*texts):
    for t in texts:
        assert "Traceback" not in t and "RecursionError" not in t and "Warning" not in t, t


# ---------------------------------------------------------------- expressions: limits


@pytest.mark.parametrize("command", ["validate", "report"])
def test_5000_nested_parentheses_are_refused_at_their_position_naming_the_limit(tmp_path, capsys, command):
    path = graph_case(tmp_path, "(" * 5000 + "x" + ")" * 5000)
    code, out, err = run(capsys, command, path)
    assert code == 2
    no_traceback(out, err)
    line = next(ln for ln in (out + err).splitlines() if ln.startswith(str(path)))
    m = LOCATED.match(line)
    assert (m["line"], m["col"]) == ("6", str(6 + expr.MAX_DEPTH))  # the 51st "(" of "  f: (((…"
    assert "expression depth" in m["message"] and f"the limit is {expr.MAX_DEPTH}" in m["message"]


@pytest.mark.parametrize("command", ["validate", "report"])
def test_an_expression_50_levels_deep_is_accepted(tmp_path, capsys, command):
    path = graph_case(tmp_path, "(" * 50 + "x" + ")" * 50, extra="expect:\n  f: {value: 1, exact: true}\n")
    code, out, err = run(capsys, command, path)
    assert code == 0, out + err
    no_traceback(out, err)


@pytest.mark.parametrize(
    "text,limit",
    [
        ("(" * 5000 + "x" + ")" * 5000, "expression depth"),
        ("-" * 5000 + "x", "expression length"),
        ("-" * 51 + "x", "expression depth"),
        ("2^" * 400 + "2", "expression depth"),
        ("exp(" * 60 + "x" + ")" * 60, "expression depth"),
        ("[" * 60 + "x" + "]" * 60, "expression depth"),
        (" + ".join(["x"] * 52), "expression depth"),
        ("x" * 1001, "expression length"),
    ],
)
def test_parser_limits_never_reach_the_recursion_limit(text, limit):
    with pytest.raises(expr.ExprError) as info:
        expr.parse(text)
    assert limit in info.value.message
    assert 0 <= info.value.offset <= len(text)


def test_limits_can_be_raised():
    deep = "(" * 80 + "x" + ")" * 80
    with pytest.raises(expr.ExprError):
        expr.parse(deep)
    try:
        expr.set_limits(depth=100)
        assert expr.parse(deep) == ("var", "x")
    finally:
        expr.set_limits(depth=50)


def test_trees_are_plain_tuples_that_know_their_text():
    tree = expr.parse("(x + 1) * y")
    assert tree == ("mul", ("add", ("var", "x"), ("num", 1.0)), ("var", "y"))
    assert tree[1].text == "(x + 1)" and tree.depth == 3
    for clone in (copy.deepcopy(tree), pickle.loads(pickle.dumps(tree))):
        assert clone == tree and clone[1].text == "(x + 1)"


# ---------------------------------------------------------------- expressions: domain, at load


@pytest.mark.parametrize(
    "node,problem,snippet,offset",
    [
        ("a + 2**2**2**2**2**10", "overflow", "2**2**10", 13),
        ("a / 0", "division by zero", "a / 0", 0),
        ("a / (3 - 3)", "division by zero", "a / (3 - 3)", 0),
        ("a * log(-1)", "log of a non-positive number (-1)", "log(-1)", 4),
        ("a + sqrt(-4)", "square root of a negative number (-4)", "sqrt(-4)", 4),
        ("a + 0 ^ -1", "0 to a negative power", "0 ^ -1", 4),
        ("a * exp(1000)", "overflow", "exp(1000)", 4),
        ("a + 1e400", "the number 1e400 is too large", None, 4),
    ],
)
def test_constant_operations_out_of_their_domain_are_refused_at_their_position(
    tmp_path, capsys, node, problem, snippet, offset
):
    path = activation_case(tmp_path, node)
    code, out, err = run(capsys, "report", path)
    assert code == 2
    no_traceback(out, err)
    m = LOCATED.match(err.strip().splitlines()[0])
    assert m and m["file"] == str(path), err
    assert (int(m["line"]), int(m["col"])) == (7, 6 + offset)
    assert problem in m["message"]
    if snippet:
        assert repr(snippet) in m["message"]


def test_check_constant_names_the_operation_and_its_offset():
    with pytest.raises(expr.ExprError) as info:
        expr.parse("z * (1 / (2 - 2))")  # parse calls check_constant
    assert info.value.offset == 4 and "division by zero in '(1 / (2 - 2))'" in info.value.message
    expr.check_constant(expr.parse("x / y + log(x)"))  # not constant: left for run time


# ---------------------------------------------------------------- expressions: domain, at run time


def _mismatch_messages(path):
    case = load_case(path)
    checks = check_case(case, default_engines())
    return case, {
        c.quantity: c.message or "; ".join(e.message for e in c.elements if e.status == MISMATCH)
        for c in checks
        if c.status == MISMATCH
    }


@pytest.mark.parametrize(
    "node,inputs,message,col",
    [
        ("x / y", "{x: 1, y: 0}", "division by zero in 'x / y'", 6),
        ("log(x)", "{x: -1}", "log of a non-positive number (-1) in 'log(x)'", 6),
        ("x + 2 ** x", "{x: 2000}", "overflow: the result is beyond float64's range (±1.8e308) in '2 ** x'", 10),
        (
            "exp(x) * exp(x)",
            "{x: 500}",
            "overflow: the result is beyond float64's range (±1.8e308) in 'exp(x) * exp(x)'",
            6,
        ),
    ],
)
def test_graph_gates_out_of_their_domain_at_the_inputs_are_mismatches_at_their_position(
    tmp_path, node, inputs, message, col
):
    path = graph_case(tmp_path, node, inputs)
    _, messages = _mismatch_messages(path)
    assert messages and all(message in m for m in messages.values()), messages
    assert all(f"({path}:6:{col})" in m for m in messages.values()), messages
    assert not any("not finite" in m for m in messages.values())


def test_a_perturbation_out_of_the_domain_says_which(tmp_path):
    path = graph_case(tmp_path, "log(x)", "{x: 0.5}", extra="perturbations:\n  - {x: -1}\n")
    _, messages = _mismatch_messages(path)
    assert messages and all(
        "log of a non-positive number (-0.5) in 'log(x)'" in m and "with x-1" in m for m in messages.values()
    ), messages


def test_a_define_out_of_its_domain_at_run_time_is_a_mismatch_at_its_position(tmp_path, capsys):
    path = activation_case(tmp_path, "1 / z")  # z = [0, 1]: 1/0 only once the values are known
    _, messages = _mismatch_messages(path)
    assert set(messages) == {"q"}
    assert f"division by zero in '1 / z' ({path}:7:6)" in messages["q"]
    code, out, err = run(capsys, "report", path)
    assert code == 1 and f"division by zero in '1 / z' ({path}:7:6)" in out
    no_traceback(out, err)


def test_a_formula_out_of_its_domain_at_run_time_is_a_mismatch_at_its_position(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(
        HEAD + "kind: activation\nactivation: relu\nz: [-1.0, 2.0]\nformulas:\n"
        '  - name: log a\n    printed: "a = e^{ln a}"\n    expr: exp(log(a))\n    equals: a\n',
        encoding="utf-8",
    )
    _, messages = _mismatch_messages(path)
    assert f"log of a non-positive number (0) in 'log(a)' ({path}:9:15)" in messages["formula:log a"]


def test_evaluate_raises_domain_errors_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text, env in [
            ("x / y", {"x": np.ones(2), "y": np.array([1.0, 0.0])}),
            ("log(x)", {"x": np.zeros(1)}),
            ("sqrt(x)", {"x": -np.ones(3)}),
            ("x ^ 0.5", {"x": -1.0}),
            ("exp(x)", {"x": 1e3}),
            ("x * x", {"x": 1e200}),
        ]:
            with pytest.raises(expr.DomainError):
                expr.evaluate(expr.parse(text), env)
        # operands that are already not finite are the engines' problem (reported as such), not the formula's
        assert np.isnan(expr.evaluate(expr.parse("x + 1"), {"x": np.nan}))


# ---------------------------------------------------------------- no warnings from the engines

HOSTILE = {
    "net_overflow.yaml": HEAD
    + """kind: network
layers:
  - {W: [[1e300, 1e300], [1e300, -1e300]], b: [1e300, 0], activation: swish}
  - {W: [[1e300, 1e300]], b: [0], activation: identity}
loss: {name: squared_error, factor: 0.5, reduction: mean}
x: [1e300, 1e300]
y: [1]
gradient_descent: {eta: 1e300, steps: 2}
""",
    "activation_overflow.yaml": HEAD + "kind: activation\nactivation: {name: swish, param: 1e300}\n"
    "z: [1e300, -1e300, 0]\n",
    "loss_overflow.yaml": HEAD + "kind: loss\nloss: {name: mse, factor: 1e300, reduction: mean}\na: [1e300, -1e300]\n"
    "y: [-1e300, 1e300]\n",
    "jacobian_overflow.yaml": HEAD + "kind: jacobian\nW: [[1e300, 1e300]]\nb: [1e300]\nx: [1e300, 1e300]\n",
    "log_softmax_overflow.yaml": HEAD + "kind: activation\nactivation: log_softmax\nz: [1e308, -1e308]\n",
    "graph_div0.yaml": HEAD + "kind: graph\ninputs: {x: 1, y: 0}\ngraph:\n  f: x / y\n",
}


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name, text in HOSTILE.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_engines_report_overflow_as_a_message_and_warn_nothing(hostile):
    engines = default_engines()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would raise here
        for path in sorted(hostile.glob("*.yaml")):
            checks = check_case(load_case(path), engines)
            bad = [c for c in checks if c.status == MISMATCH]
            assert bad, path
            text = " ".join(e.message for c in bad for e in c.elements)
            assert "cannot give a finite result" in text or "cannot be computed" in text or "not finite" in text, (
                path,
                text,
            )


def test_no_warning_reaches_stderr_from_any_command(hostile, tmp_path):
    script = (
        "import sys\n"
        "from oracle.cli import main\n"
        "from pathlib import Path\n"
        "codes = []\n"
        "for p in sorted(Path(sys.argv[1]).glob('*.yaml')):\n"
        "    svg = Path(sys.argv[2]) / 'f.svg'\n"
        "    for argv in (['report', p], ['solve', p], ['explain', p], ['draw', p, '-o', svg]):\n"
        "        codes.append((p.name, argv[0], main([str(a) for a in argv])))\n"
        "print(codes)\n"
    )
    res = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, str(hostile), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert "Warning" not in res.stderr and "Traceback" not in res.stderr, res.stderr[-3000:]
    codes = {(name, command): code for name, command, code in eval(res.stdout.strip().splitlines()[-1])}
    assert all(code == 1 for (_, command), code in codes.items() if command in ("report", "solve")), codes
    # explain and draw need numpy's values only: refused with the reason where numpy fails
    assert codes[("net_overflow.yaml", "explain")] == codes[("graph_div0.yaml", "draw")] == 2, codes
    assert "cannot explain it: numpy cannot compute" in res.stderr


def test_refimpl_clamps_logs_of_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("binary_cross_entropy", "cross_entropy"):
            assert np.isfinite(refimpl.loss(name, np.array([0.0, 1.0]), np.array([1.0, 0.0]), 1.0, "sum"))


# ---------------------------------------------------------------- safe printing

EVIL = "Red \\e[31mtitle\\e]0;pwned\\a <script>alert(1)</script> \\r done \\u202e end"


def evil_case(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text(
        f'title: "{EVIL}"\nsource: {{document: "doc\\e[2J", heading: "head\\x9b1m <b>"}}\n'
        'note: "note \\e[5m"\nkind: activation\nactivation: sigmoid\nz: [0, 1]\n'
        'define:\n  "q\\e[1m": a * 2\nexpect:\n  a: [0.5, 0.73]\n',
        encoding="utf-8",
    )
    return path


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_helpers():
    assert terminal("a\x1b[31mb\x07c\rd\u202ee\n\tf") == "a\\x1b[31mb\\x07c\\x0dd\\u202ee\n\tf"
    assert terminal("plain ½ δ — text") == "plain ½ δ — text"
    assert html("<b>\x1b]0;x\x07</b> & 'q'") == "&lt;b&gt;\\x1b]0;x\\x07&lt;/b&gt; &amp; &#x27;q&#x27;"


@pytest.mark.parametrize("fmt", ["text", "markdown", "csv", "html", "json"])
def test_escape_sequences_in_a_title_never_reach_the_output(tmp_path, capsys, fmt):
    path = evil_case(tmp_path)
    code, out, err = run(capsys, "report", path, "--format", fmt)
    assert code == 0, err
    if fmt == "csv":
        out = out.replace("\r\n", "\n")  # the CSV dialect's own line ends
    assert not CONTROL.search(out) and not CONTROL.search(err), repr(out[:500])
    if fmt in ("text", "markdown", "csv"):
        assert "q\\x1b[1m" in out  # a name from the case
    if fmt in ("markdown", "csv"):
        assert "doc\\x1b[2J" in out
    if fmt == "html":
        assert "<script>" not in out and "&lt;script&gt;" in out and "\\x1b]0;pwned\\x07" in out
        assert "head\\x9b1m &lt;b&gt;" in out
    if fmt == "markdown":
        assert "<script>" not in out
    if fmt == "json":  # the same strings, written as JSON escapes
        import json

        row = json.loads(out)["rows"][0]
        assert row["heading"] == "head\x9b1m <b>" and row["source"] == "doc\x1b[2J"


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex"])
def test_explain_escapes_a_title(tmp_path, fmt):
    text = explain(load_case(evil_case(tmp_path)), fmt)
    assert not CONTROL.search(text)
    assert ("\\textbackslash{}x1b[31m" if fmt == "latex" else "\\x1b[31m") in text


def test_draw_escapes_a_title_in_the_svg(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "evil.svg"
    assert main(["draw", str(evil_case(tmp_path)), "-o", str(out)]) == 0
    svg = out.read_text(encoding="utf-8")
    ET.fromstring(svg)  # well-formed XML: no control characters in it
    assert not CONTROL.search(svg) and "<script>" not in svg


def test_error_messages_escape_file_names(tmp_path, capsys):
    path = tmp_path / "bad\x1b[31m.yaml"
    path.write_text("title: [unclosed\n", encoding="utf-8")
    for command in ("report", "solve", "explain"):
        code, out, err = run(capsys, command, path)
        assert code == 2 and "bad\\x1b[31m.yaml" in err and "\x1b" not in err + out


# ---------------------------------------------------------------- new


def _tree(folder):
    return sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_new_from_an_empty_folder_writes_its_own_cases_folder_never_the_package(tmp_path, monkeypatch, capsys):
    before = _tree(ROOT / "cases")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "new", "graph", "my_graph")
    assert code == 0, err
    assert (tmp_path / "cases" / "my_graph.yaml").is_file()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cases", "my_graph.yaml"]
    assert _tree(ROOT / "cases") == before
    assert main(["validate", "cases/my_graph.yaml"]) == 0


def test_new_writes_into_a_folder_given_with_o_and_never_over_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    assert run(capsys, "new", "loss", "l.yaml", "-o", "out")[0] == 0
    assert (tmp_path / "out" / "l.yaml").is_file()
    assert run(capsys, "new", "loss", "l", "-o", "out")[0] == 2  # exists
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    code, _, err = run(capsys, "new", "loss", "x", "-o", "dangling.yaml")
    assert code == 2 and "exists" in err and not (tmp_path / "elsewhere.yaml").exists()
    for name in ("../escape", "/abs", ".hidden", "a/b", "bell\x07"):
        code, _, err = run(capsys, "new", "graph", name)
        assert code == 2 and "not a case name" in err and "\x07" not in err
    assert not (tmp_path.parent / "escape.yaml").exists()


# ---------------------------------------------------------------- solve --write


def test_solve_write_keeps_crlf_line_endings(tmp_path, capsys):
    path = tmp_path / "crlf.yaml"
    text = (ROOT / "cases" / "001_sigmoid_net.yaml").read_text(encoding="utf-8")
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    assert run(capsys, "solve", path, "--write")[0] == 0
    raw = path.read_bytes()
    assert b"computed: true" in raw
    assert raw.count(b"\n") == raw.count(b"\r\n") and b"\r\r" not in raw  # CRLF everywhere, nothing mixed
    assert raw.replace(b"\r\n", b"\n").startswith(text.encode("utf-8")[:200])
    load_case(path)


def test_solve_write_keeps_crlf_when_it_creates_expect(tmp_path, capsys):
    path = tmp_path / "new.yaml"
    path.write_bytes((HEAD + "kind: activation\nactivation: tanh\nz: [0.5, -1]").replace("\n", "\r\n").encode())
    assert run(capsys, "solve", path, "--write")[0] == 0
    raw = path.read_bytes()
    assert b"expect:\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")


def test_solve_write_keeps_lf_line_endings(tmp_path, capsys):
    path = tmp_path / "lf.yaml"
    path.write_bytes((ROOT / "cases" / "001_circuit.yaml").read_bytes())
    assert run(capsys, "solve", path, "--write")[0] == 0
    assert b"\r" not in path.read_bytes()


def test_solve_write_writes_through_a_symbolic_link_and_keeps_the_link(tmp_path, capsys):
    target_dir = tmp_path / "store"
    target_dir.mkdir()
    target = target_dir / "real.yaml"
    target.write_bytes((ROOT / "cases" / "001_circuit.yaml").read_bytes())
    link = tmp_path / "link.yaml"
    link.symlink_to(Path("store") / "real.yaml")
    code, _, err = run(capsys, "solve", link, "--write")
    assert code == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "real.yaml")
    assert b"computed: true" in target.read_bytes()
    assert "through the symbolic link" in err and str(target) in err
    assert sorted(p.name for p in target_dir.iterdir()) == ["real.yaml"]  # no temporary file left


def test_solve_write_into_a_read_only_folder_is_a_message(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    path = tmp_path / "ro" / "c.yaml"
    path.parent.mkdir()
    path.write_bytes((ROOT / "cases" / "001_circuit.yaml").read_bytes())
    path.parent.chmod(0o555)
    try:
        code, out, err = run(capsys, "solve", path, "--write")
    finally:
        path.parent.chmod(0o755)
    assert code == 2 and "cannot write" in err
    no_traceback(out, err)


# ---------------------------------------------------------------- output modes and formats


def test_errata_as_html(capsys):
    code, out, err = run(capsys, "report", "--errata", "--format", "html")
    assert code == 0, err
    assert out.startswith("<!DOCTYPE html>") and "<h1>Errata in the lecture notes</h1>" in out
    ET.fromstring(out[out.index("<html") :].replace("<meta charset='utf-8'>", ""))
    text = run(capsys, "report", "--errata")[1]
    assert (
        re.search(r"(\d+) errata in (\d+) documents", text).groups()
        == re.search(r"(\d+) errata in (\d+) documents", out).groups()
    )


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--errata", "--format", "csv"], "supported with --errata: text, markdown, html, json"),
        (["--no-figures"], "--no-figures applies to the HTML report only"),
        (["--errata", "--format", "html", "--no-figures"], "--no-figures applies to the HTML report only"),
        (["--results-json", "r.json"], "--results-json needs --impl"),
        (["--impl", "x.py", "--format", "html"], "supported with --impl: text, json"),
        (["--impl", "x.py", "--errata"], "does not go with --impl"),
    ],
)
def test_an_option_the_output_mode_does_not_support_is_an_error(capsys, argv, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "report", *argv)
    assert code == 2 and needle in err and out == ""
    assert not (tmp_path / "r.json").exists()


# ---------------------------------------------------------------- the shared corpus: this half's files

MINE = sorted(p for p in BAD.glob("*.yaml") if p.name.startswith(("expr_", "define_", "formula_")))


def test_there_are_at_least_12_expression_files():
    assert len(MINE) >= 12


@pytest.mark.parametrize("path", MINE, ids=lambda p: p.name)
def test_expression_corpus_file_is_refused_as_its_first_line_says(path, capsys):
    """(tests/test_bad_inputs.py runs the whole folder through validate, report and pytest; this is the quick
    in-process check of the expression files.)"""
    expect = re.match(r"# expect: (.*)", path.read_text(encoding="utf-8").splitlines()[0]).group(1)
    for command in ("validate", "report"):
        code, out, err = run(capsys, command, path)
        assert code == 2
        no_traceback(out, err)
        m = LOCATED.match(next(ln for ln in (out + err).splitlines() if LOCATED.match(ln)))
        assert re.search(expect, f"{m['line']}:{m['col']}: {m['message']}"), (command, m.group())


def test_expression_problems_have_no_bare_not_finite(tmp_path):
    path = activation_case(tmp_path, "1 / (z - z)")
    values = compute(load_case(path), refimpl)
    assert "division by zero in '1 / (z - z)'" in values["q"].reason
