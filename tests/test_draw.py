"""Figures of cases (oracle.authoring.draw): files made, well-formed, the expected numbers present as text."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from oracle.authoring import draw as draw_mod
from oracle.verdict.cases import load_case

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

NET_342 = """\
title: A 3-4-2 sigmoid network, one gradient-descent step (figure test)
source:
  document: none
  heading: test of the network figure
  instance: hand-picked values with mixed signs
kind: network
convention: column
layers:
  - W: [[0.2, -0.5, 0.1], [0.7, -0.3, 0.4], [0.6, -0.1, 0.5], [0.2, -0.4, 0.3]]
    b: [0.1, -0.2, 0.05, 0]
    activation: sigmoid
  - W: [[0.3, -0.6, 0.2, 0.8], [0.1, -0.5, -0.2, 0.4]]
    b: [0.1, -0.1]
    activation: sigmoid
loss: {name: squared_error, factor: 0.5, reduction: mean}
x: [1.0, -0.5, 0.3]
y: [1, 0]
gradient_descent: {eta: 0.5}
"""


def svg_texts(path):
    """Every text of an SVG (each <text> element's content); fails if the XML is not well-formed."""
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return ["".join(el.itertext()) for el in root.iter() if el.tag.endswith("text")]


def has(texts, needle):
    return any(needle in t for t in texts)


def render(case, tmp_path, name="figure.svg"):
    pytest.importorskip("matplotlib")
    out = tmp_path / name
    draw_mod.draw(case, out)
    assert out.is_file() and out.stat().st_size > 0
    return out


@pytest.fixture
def spy_labels(monkeypatch):
    """The edge labels of the network figures drawn in a test, as placed (key (l, i, j), text, rectangle)."""
    placed = []
    real = draw_mod._place_edge_labels

    def spy(items, *args, **kwargs):
        real(items, *args, **kwargs)
        placed.append(items)

    monkeypatch.setattr(draw_mod.network, "_place_edge_labels", spy)  # where _network_figure looks it up
    return placed


# ---------------------------------------------------------------- numbers


def test_fmt_rounds_to_four_significant_digits_with_a_true_minus():
    assert draw_mod.fmt(0.4) == "0.4"
    assert draw_mod.fmt(-0.2) == "−0.2"
    assert draw_mod.fmt(-0.0030455013) == "−0.003046"
    assert draw_mod.fmt(0.49500) == "0.495"
    assert draw_mod.fmt(-12.0) == "−12"
    assert draw_mod.fmt(0) == "0"
    assert draw_mod.fmt(3.0456e-5) == "3.046·10⁻⁵"


def test_fmt_change_shows_as_many_digits_as_the_change_needs():
    assert draw_mod.fmt_change(0.4, 0.400003045) == "0.400003"
    assert draw_mod.fmt_change(-0.2, -0.199990865) == "−0.19999"
    assert draw_mod.fmt_change(0.1, 0.1006) == "0.1006"
    assert draw_mod.fmt_change(0.5, 0.5) == "0.5"


# ---------------------------------------------------------------- network


def test_network_figure_of_the_sigmoid_net(tmp_path, spy_labels):
    texts = svg_texts(render(CASES / "001_sigmoid_net.yaml", tmp_path))
    assert has(texts, "Sigmoid network 2-1-1, one step of gradient descent")  # the title
    # weights and their values after the update, on the edges
    assert "0.4 → 0.400003" in texts
    assert "−0.2 → −0.19999" in texts
    assert "0.1 → 0.1006" in texts
    # z, a, δ per neuron (refimpl's values, 4 significant digits), biases with their update, the target
    for line in (
        "z = −0.02",
        "a = 0.495",
        "δ = −0.003046",
        "z = 0.0495",
        "a = 0.5124",
        "δ = −0.1218",
        "b = 0 → 0.001218",
        "y = 1",
        "x₁ = 0.1",
        "x₂ = 0.3",
    ):
        assert line in texts, line
    # the legend explains the annotations and states the cost
    assert has(texts, "δ = ∂Cₙ/∂z")
    assert has(texts, "C = 0.1189")
    (items,) = spy_labels
    assert {it["key"]: it["text"] for it in items} == {
        (1, 0, 0): "0.4 → 0.400003",
        (1, 1, 0): "−0.2 → −0.19999",
        (2, 0, 0): "0.1 → 0.1006",
    }


def test_network_figure_column_convention_puts_w_ji_on_the_edge_i_to_j(tmp_path, spy_labels):
    texts = svg_texts(render(CASES / "001_backprop_2_2_1.yaml", tmp_path))
    (items,) = spy_labels
    labels = {it["key"]: it["text"] for it in items}
    # W¹ = [[1, 0.5], [0.1, 0]] (out, in): the edge x₂ → neuron 1 carries W¹[0, 1] = 0.5
    assert labels[(1, 1, 0)].startswith("0.5 → ")
    assert labels[(1, 0, 1)].startswith("0.1 → ")
    assert labels[(2, 1, 0)] == "0.8 → 0.8149"
    assert "b = 0.75 → 0.7798" in texts
    assert "a = 0.7815" in texts


def test_network_figure_row_convention(tmp_path, spy_labels):
    texts = svg_texts(render(CASES / "000_sigmoid_net_row.yaml", tmp_path))
    (items,) = spy_labels
    labels = {it["key"]: it["text"] for it in items}
    # W⁽¹⁾ = [[0.1, 0.4, −0.2], [0.8, −0.6, 0.3]] is (in, out): x₁ → neuron 3 carries W[0, 2] = −0.2
    assert labels[(1, 0, 2)] == "−0.2"
    assert labels[(1, 1, 1)] == "−0.6"
    assert labels[(2, 1, 0)] == "−0.5"
    assert has(texts, "row convention")
    assert not any(t.startswith("b = ") for t in texts)  # no biases in this case
    assert "x₁ = 0.35" in texts and "x₂ = 0.9" in texts


def test_network_figure_of_a_3_4_2_network(tmp_path, spy_labels):
    case_file = tmp_path / "net_3_4_2.yaml"
    case_file.write_text(NET_342, encoding="utf-8")
    case = load_case(case_file)
    texts = svg_texts(render(case, tmp_path))
    (items,) = spy_labels
    assert len(items) == 3 * 4 + 4 * 2
    edge_texts = [t for t in texts if re.fullmatch(r"−?[\d.]+ → −?[\d.]+", t)]
    assert len(edge_texts) == 20
    assert sum(t.startswith("δ = ") for t in texts) == 4 + 2
    assert sum(t.startswith("b = ") for t in texts) == 4 + 2
    # every label is visible: no two edge labels overlap, none sits under a neuron or its annotations
    for it in items:
        assert it["base"][it["k"]] < 100, f"label {it['text']} is hidden"
    quads = [it["quads"][it["k"]] for it in items]
    clash = draw_mod._sat(quads, quads)
    clash[range(len(quads)), range(len(quads))] = False
    assert not clash.any()


def test_network_figure_of_a_batch_lists_one_value_per_example(tmp_path):
    texts = svg_texts(render(CASES / "001_minibatch_update.yaml", tmp_path))
    assert "x₁ = [0.5, −1, 1.5]" in texts
    assert "y = [1, 0, 1]" in texts
    assert has(texts, "N = 3")


# ---------------------------------------------------------------- graph


def test_graph_figure_of_the_circuit(tmp_path):
    texts = svg_texts(render(CASES / "001_circuit.yaml", tmp_path))
    # gates labelled by their operation, the inputs and the output by name
    assert "+" in texts and "×" in texts
    for name in ("x", "y", "z", "f"):
        assert name in texts
    # forward values (q = 3, f = −12) and gradients (∂f/∂q = −4, ∂f/∂z = 3, ∂f/∂f = 1)
    assert "−12" in texts
    assert texts.count("−4") >= 3 + 1  # ∂f/∂x, ∂f/∂y, ∂f/∂q, and the value of z
    assert "3" in texts and "1" in texts and "5" in texts and "−2" in texts
    # the perturbations are listed
    assert has(texts, "Increase q by 1: f = −16, Δf = −4")


def test_graph_figure_with_boxes_and_fan_out(tmp_path):
    texts = svg_texts(render(CASES / "003_deeper_softmax.yaml", tmp_path))
    assert any(t.startswith("h = w·x + b") for t in texts)  # a node of more than one operation: a box
    assert "σ" in texts  # q = sigmoid(h): a gate
    assert has(texts, "A dot marks a value used by several gates")


# ---------------------------------------------------------------- other kinds


def test_activation_figure(tmp_path):
    texts = svg_texts(render(CASES / "001_relu_derivative_at_zero.yaml", tmp_path))
    assert has(texts, "a = relu(z)")
    assert "f'(z)" in texts
    assert "−0.5" in texts and "0.5" in texts


def test_softmax_figure_is_a_table(tmp_path):
    texts = svg_texts(render(CASES / "001_softmax_table.yaml", tmp_path))
    assert has(texts, "0.7054") and has(texts, "0.2595")
    assert has(texts, "not elementwise")


LOSS_CASE = """\
title: Squared error of two examples (figure test)
source: {document: none, heading: test of the loss figure}
kind: loss
loss: {name: squared_error, factor: 0.5, reduction: mean}
a: [[0.8, 0.3], [0.1, 0.6]]
y: [[1, 0], [0, 1]]
"""


def test_loss_figure(tmp_path):
    case_file = tmp_path / "loss.yaml"
    case_file.write_text(LOSS_CASE, encoding="utf-8")
    texts = svg_texts(render(case_file, tmp_path, "loss.svg"))
    assert "C =" in texts and "∂Cₙ/∂a =" in texts
    # C = ½·[(0.2² + 0.1²) + (0.3² + 0.4²)] / 2 = 0.075
    assert "0.075" in texts


def test_jacobian_figure(tmp_path):
    texts = svg_texts(render(CASES / "003_wider_jacobian.yaml", tmp_path, "jacobian.svg"))
    assert "∂z/∂x =" in texts and "∂z₁/∂W =" in texts
    assert has(texts, "1.5") and has(texts, "0.3")


# ---------------------------------------------------------------- history


def test_plot_history_of_the_linear_regression_table(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "history.svg"
    draw_mod.plot_history(CASES / "003_linear_regression_table.yaml", out)
    texts = svg_texts(out)
    assert "numpy (refimpl)" in texts
    assert "torch (autograd oracle)" in texts
    assert "printed in the notes" in texts
    assert any(t.startswith("cost C") for t in texts)
    assert "w¹" in texts and "b¹" in texts


def test_history_of_both_engines_agrees(tmp_path):
    case = load_case(CASES / "003_linear_regression_table.yaml")
    import refimpl
    from oracle.engines import torch_engine

    h_np, h_t = draw_mod._history(case, refimpl), draw_mod._history(case, torch_engine)
    assert len(h_np["C"]) == 4 and len(h_np["W1"]) == 4
    assert h_np["C"] == pytest.approx(h_t["C"], rel=1e-10)
    assert [float(w.reshape(-1)[0]) for w in h_np["W1"]] == pytest.approx([0.1, 0.48, 0.708, 0.8448], abs=1e-12)
    assert h_np["C"][0] == pytest.approx(1.805)


def test_plot_history_of_a_larger_network_with_frozen_parameters(tmp_path, spy_labels):
    pytest.importorskip("matplotlib")
    case_file = tmp_path / "frozen.yaml"
    case_file.write_text(
        NET_342.replace("gradient_descent: {eta: 0.5}", "gradient_descent: {eta: 0.5, steps: 4, frozen: [b1, W2]}"),
        encoding="utf-8",
    )
    out = tmp_path / "history.svg"
    draw_mod.plot_history(case_file, out)
    texts = svg_texts(out)
    assert "W¹: every entry" in texts and "W²: every entry" in texts  # 26 parameters: one panel per array
    assert "numpy (refimpl)" in texts and "torch (autograd oracle)" in texts
    assert has(texts, "frozen: b1, W2")
    # the network figure: frozen parameters keep their value, the others show the first update
    texts = svg_texts(render(case_file, tmp_path))
    assert "b = 0.1 (frozen)" in texts
    (items,) = spy_labels
    labels = {it["key"]: it["text"] for it in items}
    assert labels[(2, 0, 0)] == "0.3" and " → " in labels[(1, 0, 0)]
    assert has(texts, "the first of 4 steps")


def test_plot_history_one_panel_per_weight_of_a_small_network(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "history.svg"
    draw_mod.plot_history(CASES / "001_sigmoid_net.yaml", out)
    texts = svg_texts(out)
    assert {"w¹₁₁", "w¹₁₂", "w²", "b¹", "b²"} <= set(texts)


def test_plot_history_needs_gradient_descent(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="gradient_descent"):
        draw_mod.plot_history(CASES / "000_sigmoid_net_row.yaml", tmp_path / "h.svg")
    with pytest.raises(ValueError, match="graph case"):
        draw_mod.plot_history(CASES / "001_circuit.yaml", tmp_path / "h.svg")


# ---------------------------------------------------------------- files


def test_png_output(tmp_path):
    out = render(CASES / "001_sigmoid_net.yaml", tmp_path, "net.png")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    out = tmp_path / "history.png"
    draw_mod.plot_history(CASES / "003_linear_regression_table.yaml", out)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_unknown_file_type(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        draw_mod.draw(CASES / "001_sigmoid_net.yaml", tmp_path / "figure.pdf")
    assert not (tmp_path / "figure.pdf").exists()


def test_every_bundled_case_draws(tmp_path):
    pytest.importorskip("matplotlib")
    for path in sorted(CASES.glob("*.yaml")):
        out = tmp_path / f"{path.stem}.svg"
        draw_mod.draw(path, out)
        svg_texts(out)


# ---------------------------------------------------------------- without matplotlib


def test_clear_import_error_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"drawing needs matplotlib: pip install 'backprop-oracle\[figures\]'"):
        draw_mod.draw(CASES / "001_sigmoid_net.yaml", tmp_path / "f.svg")
    with pytest.raises(ImportError, match="drawing needs matplotlib"):
        draw_mod.plot_history(CASES / "003_linear_regression_table.yaml", tmp_path / "h.svg")
    assert not (tmp_path / "f.svg").exists()


def test_the_core_imports_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import oracle.authoring.draw, oracle.cli, refimpl\n"
        "assert not any(m.startswith('matplotlib.') for m in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
