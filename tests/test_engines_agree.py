"""refimpl, the torch oracle and finite differences agree on random networks and graphs."""

import zlib

import numpy as np
import pytest

import refimpl
from oracle.engines import torch_engine
from oracle.engines.finite_diff import FD_ATOL, FD_RTOL, FiniteDifferences
from oracle.verdict.expr import parse

FD = FiniteDifferences(refimpl)
HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "swish"]
OUTPUT_LOSS = [
    ("sigmoid", "squared_error"),
    ("identity", "mse"),
    ("tanh", "mae"),
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
    ("identity", "squared_error"),
]


def random_net(seed, widths, hidden, out_act, convention, bias=True):
    rng = np.random.default_rng(seed)
    W, b, f = {}, {}, {}
    for l in range(1, len(widths)):
        shape = (widths[l], widths[l - 1]) if convention == "column" else (widths[l - 1], widths[l])
        W[l] = rng.normal(size=shape)
        b[l] = rng.normal(size=widths[l]) if bias else None
        f[l] = (hidden[(l - 1) % len(hidden)], None) if l < len(widths) - 1 else (out_act, None)
    return W, b, f, rng


def batch(rng, n, N, convention, kind="real"):
    m = rng.normal(size=(n, N)) if kind == "real" else rng.uniform(0.05, 0.95, size=(n, N))
    if kind == "onehot":
        m = np.eye(n)[:, rng.integers(0, n, size=N)]
    return m if convention == "column" else m.T


def close(u, v, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(u, v, rtol=rtol, atol=atol)


@pytest.mark.parametrize("convention", ["column", "row"])
@pytest.mark.parametrize("out_act,loss_name", OUTPUT_LOSS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("bias", [True, False])
def test_backward_agrees(convention, out_act, loss_name, reduction, bias):
    widths = [3, 4, 5, 3]
    W, b, f, rng = random_net(
        zlib.crc32(f"{convention}{out_act}{loss_name}".encode()), widths, HIDDEN[1:4], out_act, convention, bias
    )
    x = batch(rng, 3, 4, convention)
    kind = {"binary_cross_entropy": "prob", "cross_entropy": "onehot"}.get(loss_name, "real")
    y = batch(rng, 3, 4, convention, kind)
    loss = (loss_name, 0.5, reduction)
    z_np, a_np = refimpl.forward(W, b, f, x, convention)
    z_t, a_t = torch_engine.forward(W, b, f, x, convention)
    for l in W:
        close(z_np[l], z_t[l])
        close(a_np[l], a_t[l])
    r_np = refimpl.backward(W, b, f, x, y, loss, convention)
    r_t = torch_engine.backward(W, b, f, x, y, loss, convention)
    r_fd = FD.backward(W, b, f, x, y, loss, convention)
    for key in ("dC/da", "delta", "dC/dW", "dC/db"):
        for l in W:
            if r_np[key][l] is None:
                assert r_t[key][l] is None and r_fd[key][l] is None
                continue
            assert np.shape(r_np[key][l]) == np.shape(r_t[key][l])
            close(r_np[key][l], r_t[key][l])
            close(r_fd[key][l], r_np[key][l], rtol=FD_RTOL, atol=FD_ATOL * 10)


@pytest.mark.parametrize("act", HIDDEN)
def test_every_hidden_activation_backpropagates(act):
    W, b, f, rng = random_net(3, [2, 3, 2], [act], "identity", "column")
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    r_np = refimpl.backward(W, b, f, x, y, ("squared_error", 0.5, "mean"))
    r_t = torch_engine.backward(W, b, f, x, y, ("squared_error", 0.5, "mean"))
    for l in W:
        close(r_np["delta"][l], r_t["delta"][l])
        close(r_np["dC/dW"][l], r_t["dC/dW"][l])


def test_row_convention_is_the_transpose_of_the_column_convention():
    W, b, f, rng = random_net(5, [3, 4, 2], ["tanh"], "sigmoid", "column")
    x, y = rng.normal(size=(3, 6)), rng.uniform(size=(2, 6))
    col = refimpl.backward(W, b, f, x, y, ("squared_error", 0.5, "mean"), "column")
    row = refimpl.backward({l: w.T for l, w in W.items()}, b, f, x.T, y.T, ("squared_error", 0.5, "mean"), "row")
    for l in W:
        close(col["dC/dW"][l], row["dC/dW"][l].T, rtol=1e-14)
        close(col["delta"][l], row["delta"][l].T, rtol=1e-14)


def test_update_subtracts_eta_times_gradient_and_respects_frozen():
    W, b, f, rng = random_net(9, [2, 2, 1], ["sigmoid"], "sigmoid", "column")
    dW = {l: np.ones_like(w) for l, w in W.items()}
    db = {l: np.ones_like(v) for l, v in b.items()}
    for engine in (refimpl, torch_engine):
        W2, b2 = engine.update(W, b, dW, db, 0.1, frozen=("b1", "W2"))
        close(W2[1], W[1] - 0.1)
        close(W2[2], W[2])
        close(b2[1], b[1])
        close(b2[2], b[2] - 0.1)


def test_mean_reduction_is_the_average_of_single_example_gradients():
    W, b, f, rng = random_net(11, [2, 3, 1], ["sigmoid"], "sigmoid", "column")
    x, y = rng.normal(size=(2, 5)), rng.uniform(size=(1, 5))
    full = refimpl.backward(W, b, f, x, y, ("squared_error", 0.5, "mean"))
    singles = [refimpl.backward(W, b, f, x[:, [n]], y[:, [n]], ("squared_error", 0.5, "mean")) for n in range(5)]
    for l in W:
        close(full["dC/dW"][l], np.mean([s["dC/dW"][l] for s in singles], axis=0))
        close(full["dC/db"][l], np.mean([s["dC/db"][l] for s in singles], axis=0))


PROGRAMS = {
    "circuit": ("q = x + y; f = q * z", {"x": -2.0, "y": 5.0, "z": -4.0}),
    "fan_out": ("u = x * x; v = u + x; w = v / (y - 3); f = exp(w) - log(u) + w ^ 2", {"x": 1.5, "y": 0.5}),
    "activations": ("h = sigmoid(x) + tanh(y) * relu(x) - swish(y); f = h ^ 3 + leaky_relu(-h)", {"x": 0.7, "y": -0.4}),
    "power": ("f = x ^ y + 2 ^ x - x ^ 2", {"x": 1.3, "y": 2.5}),
}


def program(text):
    return [(lhs.strip(), parse(rhs)) for lhs, rhs in (s.split("=", 1) for s in text.split(";"))]


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_graph_gradients_agree(name):
    prog, inputs = program(PROGRAMS[name][0]), PROGRAMS[name][1]
    v_np, g_np = refimpl.graph(prog, inputs)
    v_t, g_t = torch_engine.graph(prog, inputs)
    _, g_fd = FD.graph(prog, inputs)
    for k in g_np:
        assert v_np[k] == pytest.approx(v_t[k], rel=1e-12)
        assert g_np[k] == pytest.approx(g_t[k], rel=1e-10, abs=1e-12)
        assert g_fd[k] == pytest.approx(g_np[k], rel=FD_RTOL, abs=FD_ATOL)


def test_graph_backward_twice_gives_the_same_result():
    prog, inputs = program(PROGRAMS["fan_out"][0]), PROGRAMS["fan_out"][1]
    assert refimpl.graph(prog, inputs) == refimpl.graph(prog, inputs)


def test_graph_perturbation_of_a_node():
    prog = program(PROGRAMS["circuit"][0])
    values, _ = refimpl.graph(prog, PROGRAMS["circuit"][1], {"q": 1.0})
    assert values["q"] == 4.0 and values["f"] == -16.0


@pytest.mark.parametrize("convention", ["column", "row"])
def test_jacobians_agree(convention):
    rng = np.random.default_rng(2)
    W = rng.normal(size=(3, 2))
    b, x = rng.normal(size=3 if convention == "column" else 2), rng.normal(size=2 if convention == "column" else 3)
    j_np = refimpl.jacobian(W, b, x, convention)
    j_t = torch_engine.jacobian(W, b, x, convention)
    j_fd = FD.jacobian(W, b, x, convention)
    for key in j_np:
        close(j_np[key], j_t[key])
        close(j_fd[key], j_np[key], rtol=FD_RTOL, atol=FD_ATOL)


def test_finite_differences_provide_derivatives_only():
    for call in (
        lambda: FD.forward({}, {}, {}, [1.0]),
        lambda: FD.activation("relu", 1.0),
        lambda: FD.loss("mse", 1.0, 1.0),
        lambda: FD.activation_derivative("softmax", [1.0]),
    ):
        with pytest.raises(NotImplementedError):
            call()
    np.testing.assert_allclose(
        FD.activation_derivative("sigmoid", np.array([0.0, 1.0])),
        refimpl.activation_derivative("sigmoid", np.array([0.0, 1.0])),
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        FD.loss_gradient("mse", np.array([[1.0], [2.0]]), np.zeros((2, 1))), [[1.0], [2.0]], rtol=1e-8
    )


def test_finite_differences_decline_at_a_kink():
    from oracle.engines.finite_diff import NotDifferentiable

    with pytest.raises(NotDifferentiable, match="one-sided slopes"):
        FD.activation_derivative("relu", np.array([0.0]))
    np.testing.assert_allclose(FD.activation_derivative("relu", np.array([-1.0, 1.0])), [0.0, 1.0])
