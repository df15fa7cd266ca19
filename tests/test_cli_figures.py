"""The draw command: figures of cases and the history plot, through the command line."""

from pathlib import Path

import pytest

from oracle.cli import main

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[1]


def test_draw_writes_svg_and_png(tmp_path, capsys):
    svg, png = tmp_path / "net.svg", tmp_path / "net.png"
    assert main(["draw", str(ROOT / "cases" / "001_sigmoid_net.yaml"), "-o", str(svg)]) == 0
    assert main(["draw", str(ROOT / "cases" / "001_circuit.yaml"), "-o", str(png)]) == 0
    assert "0.0495" in svg.read_text(encoding="utf-8")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_plot_and_its_refusals(tmp_path, capsys):
    out = tmp_path / "h.svg"
    assert main(["draw", str(ROOT / "cases" / "003_linear_regression_table.yaml"), "--history", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "numpy" in text and "torch" in text
    assert main(["draw", str(ROOT / "cases" / "001_circuit.yaml"), "--history", "-o", str(out)]) == 2
    assert main(["draw", str(ROOT / "cases" / "001_circuit.yaml"), "-o", str(tmp_path / "x.gif")]) == 2
    assert "001_circuit.yaml" in capsys.readouterr().err


def test_explain_command_in_three_formats(tmp_path, capsys):
    case = str(ROOT / "cases" / "001_sigmoid_net.yaml")
    assert main(["explain", case]) == 0
    assert "BP1" in capsys.readouterr().out
    out = tmp_path / "sol.md"
    assert main(["explain", case, "--format", "markdown", "--decimals", "3", "-o", str(out)]) == 0
    assert "$$" in out.read_text(encoding="utf-8")
    assert main(["explain", case, "--format", "latex"]) == 0
    assert "\\begin{" in capsys.readouterr().out
