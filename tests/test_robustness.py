"""Extreme inputs give finite, correct values in refimpl without warnings, matching PyTorch's stable functions."""

import warnings

import numpy as np
import pytest

import refimpl
from oracle.engines import torch_engine

OUTPUT_LOSS = [
    ("sigmoid", "binary_cross_entropy"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "squared_error"),
    ("tanh", "mse"),
    ("identity", "mae"),
    ("swish", "squared_error"),
]


def net(scale, hidden, out, rng, convention="column"):
    W = {1: rng.normal(size=(4, 3)) * scale, 2: rng.normal(size=(3, 4))}
    b = {1: rng.normal(size=4) * scale, 2: np.zeros(3)}
    if convention == "row":
        W = {l: w.T for l, w in W.items()}
    return W, b, {1: (hidden, None), 2: (out, None)}


def target(loss, rng, n):
    if loss == "cross_entropy":
        return np.eye(3)[:, rng.integers(0, 3, size=n)]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(3, n)).astype(float)
    return rng.normal(size=(3, n))


@pytest.mark.parametrize("scale", [1e3, 1e6])
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "swish", "leaky_relu"])
@pytest.mark.parametrize("out,loss", OUTPUT_LOSS)
def test_huge_pre_activations_are_finite_and_match_pytorch(scale, hidden, out, loss):
    rng = np.random.default_rng(int(scale) % 97 + len(hidden) + len(loss))
    W, b, f = net(scale, hidden, out, rng)
    x, y = rng.normal(size=(3, 5)), target(loss, rng, 5)
    spec = (loss, 1.0, "mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z, a = refimpl.forward(W, b, f, x)
        grads = refimpl.backward(W, b, f, x, y, spec)
        C = refimpl.loss(loss, a[2], y, 1.0, "mean")
    assert np.isfinite(C)
    assert max(np.abs(z[1]).max(), 1) > scale / 100  # the inputs really are extreme
    expected = torch_engine.backward(W, b, f, x, y, spec)
    for key in ("delta", "dC/dW", "dC/db"):
        for l in (1, 2):
            assert np.all(np.isfinite(grads[key][l])), (key, l)
            np.testing.assert_allclose(grads[key][l], expected[key][l], rtol=1e-9, atol=1e-9 * scale)
    assert C == pytest.approx(torch_engine.loss(loss, a[2], y, 1.0, "mean"), rel=1e-12)


def test_cross_entropy_with_probabilities_exactly_0_and_1():
    a = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]])
    y = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("binary_cross_entropy", "cross_entropy"):
            c = refimpl.loss(name, a, y, 1.0, "sum")
            g = refimpl.loss_gradient(name, a, y)
            assert np.isfinite(c)
            assert c == pytest.approx(torch_engine.loss(name, a, y, 1.0, "sum"), rel=1e-12)
            if name == "binary_cross_entropy":  # PyTorch keeps a(1 − a) ≥ 1e-12: finite
                np.testing.assert_allclose(g, torch_engine.loss_gradient(name, a, y), rtol=1e-8)
                assert np.all(np.isfinite(g))


def test_softmax_output_with_certain_predictions_backpropagates_a_minus_y():
    W = {1: np.array([[2000.0, 0.0], [0.0, 0.0], [-2000.0, 0.0]])}
    b = {1: np.zeros(3)}
    f = {1: ("softmax", None)}
    x, y = np.array([1.0, 0.0]), np.array([0.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = refimpl.backward(W, b, f, x, y, ("cross_entropy", 1.0, "mean"))
    np.testing.assert_allclose(g["delta"][1].ravel(), [1.0, -1.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(
        torch_engine.backward(W, b, f, x, y, ("cross_entropy", 1.0, "mean"))["delta"][1].ravel(), [1.0, -1.0, 0.0]
    )


@pytest.mark.parametrize("convention", ["column", "row"])
def test_a_very_large_batch(convention):
    rng = np.random.default_rng(5)
    W, b, f = net(1.0, "tanh", "softmax", rng, convention)
    N = 100_000
    x, y = rng.normal(size=(3, N)), target("cross_entropy", rng, N)
    if convention == "row":
        x, y = x.T, y.T
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = refimpl.backward(W, b, f, x, y, ("cross_entropy", 1.0, "mean"), convention)
    expected = torch_engine.backward(W, b, f, x, y, ("cross_entropy", 1.0, "mean"), convention)
    for l in (1, 2):
        np.testing.assert_allclose(g["dC/dW"][l], expected["dC/dW"][l], rtol=1e-9, atol=1e-13)


def test_zeros_everywhere():
    W = {1: np.zeros((2, 2)), 2: np.zeros((1, 2))}
    b = {1: np.zeros(2), 2: np.zeros(1)}
    for hidden in ("relu", "sigmoid", "tanh", "leaky_relu", "swish"):
        f = {1: (hidden, None), 2: ("sigmoid", None)}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            g = refimpl.backward(W, b, f, np.zeros(2), np.zeros(1), ("binary_cross_entropy", 1.0, "mean"))
        t = torch_engine.backward(W, b, f, np.zeros(2), np.zeros(1), ("binary_cross_entropy", 1.0, "mean"))
        for l in (1, 2):
            np.testing.assert_allclose(g["dC/dW"][l], t["dC/dW"][l], atol=1e-15)
            np.testing.assert_allclose(g["dC/db"][l], t["dC/db"][l], atol=1e-15)
