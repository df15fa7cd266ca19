"""Scaffolds, answer keys and writing them back without losing anything."""

import os
from pathlib import Path

import pytest

import refimpl
from oracle.authoring import solve as solve_mod
from oracle.verdict.cases import load_case
from oracle.cli import main
from oracle.authoring.scaffold import KINDS
from oracle.student.mistakes import MistakeEngine

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_scaffold_validates_solves_and_reports(tmp_path, kind, capsys):
    path = tmp_path / f"my_{kind}.yaml"
    assert main(["new", kind, "my_case", "-o", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=")
    assert text.count("#") > 8  # every field explained
    assert main(["validate", str(path)]) == 0
    assert main(["solve", str(path), "--write"]) == 0
    assert main(["report", str(path)]) == 0
    assert main(["new", kind, "my_case", "-o", str(path)]) == 2  # never overwrites


def test_new_writes_into_cases_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases").mkdir()
    assert main(["new", "graph", "my_graph"]) == 0
    assert (tmp_path / "cases" / "my_graph.yaml").exists()


def copy_case(tmp_path, name="001_sigmoid_net.yaml"):
    target = tmp_path / name
    target.write_bytes((ROOT / "cases" / name).read_bytes())
    return target


def test_solve_without_write_modifies_nothing(tmp_path, capsys):
    path = copy_case(tmp_path)
    before = path.read_bytes()
    assert main(["solve", str(path)]) == 0
    assert path.read_bytes() == before
    out = capsys.readouterr().out
    assert "delta[1]" in out and "-0.0030" in out and "numpy, torch, fd agree" in out


def test_solve_write_keeps_every_byte_and_never_overwrites_documented_values(tmp_path):
    path = copy_case(tmp_path)
    before = path.read_text(encoding="utf-8")
    assert main(["solve", str(path), "--write", "--decimals", "6"]) == 0
    after = path.read_text(encoding="utf-8")
    old_lines = before.splitlines()
    new_lines = after.splitlines()
    assert [l for l in new_lines if "computed: true" not in l] == old_lines  # comments, order, format kept
    case = load_case(path)
    by_q = {x.quantity: x for x in case.expect}
    assert by_q["a[2]"].computed is False and by_q["a[2]"].texts == ["0.5124"]  # documented value untouched
    assert by_q["C"].computed is True and by_q["C"].decimals.tolist() == 6
    assert by_q["b[2]'"].texts == ["0.001218"]
    assert main(["report", str(path)]) == 0
    again = path.read_bytes()
    assert main(["solve", str(path), "--write"]) == 0  # nothing left to add
    assert path.read_bytes() == again


def test_an_interrupted_write_leaves_the_original_intact(tmp_path, monkeypatch):
    path = copy_case(tmp_path)
    before = path.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["solve", str(path), "--write"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_a_write_that_would_not_load_is_refused(tmp_path, monkeypatch, capsys):
    path = copy_case(tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(solve_mod, "updated_text", lambda *a: ("title: [broken\n", ["C"]))
    assert main(["solve", str(path), "--write"]) == 2
    assert path.read_bytes() == before
    assert "would not load" in capsys.readouterr().err


def test_solve_refuses_when_engines_disagree():
    case = load_case(ROOT / "cases" / "001_ne3.yaml")
    with pytest.raises(solve_mod.Disagreement, match="dC/da\\[1\\]"):
        solve_mod.answer_key(case, [refimpl, MistakeEngine("transpose missing in (W^{l+1})ᵀ δ^{l+1}")])


def test_solve_creates_expect_when_there_is_none(tmp_path):
    path = tmp_path / "bare.yaml"
    path.write_text(
        "title: bare\nsource: {document: d, heading: h}\nkind: activation\n"
        "activation: tanh\nz: [0.5, -1]   # two points\n",
        encoding="utf-8",
    )
    assert main(["solve", str(path), "--write", "--decimals", "3"]) == 0
    text = path.read_text(encoding="utf-8")
    assert "z: [0.5, -1]   # two points\nexpect:\n  a: {value: [0.462, -0.762], computed: true}" in text
