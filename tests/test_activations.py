"""Each activation's value and derivative against PyTorch autograd, kinks and extremes included."""

import warnings

import numpy as np
import pytest
import torch

import refimpl
from oracle.engines import torch_engine
from refimpl.activations import ACTIVATIONS

Z = np.array([-1000.0, -30.0, -2.5, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0, 30.0, 1000.0])
ELEMENTWISE = [n for n, cls in ACTIVATIONS.items() if cls.elementwise]


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("param", [None, 0.2])
def test_value_and_derivative_match_autograd(name, param):
    a = refimpl.activation(name, Z, param)
    d = refimpl.activation_derivative(name, Z, param)
    np.testing.assert_allclose(a, torch_engine.activation(name, Z, param), rtol=1e-12, atol=1e-300)
    # PyTorch's σ'(z) = σ(z)(1 − σ(z)) loses digits to cancellation where σ(z) ≈ 1: absolute 1e-15
    np.testing.assert_allclose(d, torch_engine.activation_derivative(name, Z, param), rtol=1e-12, atol=1e-15)


def test_sigmoid_derivative_keeps_its_digits_where_sigma_is_close_to_1():
    exact = np.exp(-np.abs(Z)) / (1 + np.exp(-np.abs(Z))) ** 2  # e^{−|z|}/(1 + e^{−|z|})², exact in float64
    np.testing.assert_allclose(refimpl.activation_derivative("sigmoid", Z), exact, rtol=1e-13, atol=0)


def test_relu_derivative_at_zero_is_zero_in_both_engines():
    assert refimpl.activation_derivative("relu", np.array([0.0]))[0] == 0.0
    assert torch_engine.activation_derivative("relu", np.array([0.0]))[0] == 0.0  # autograd's choice


@pytest.mark.parametrize("name,alpha", [("leaky_relu", 0.01), ("prelu", 0.25)])
def test_leaky_derivative_at_zero_is_alpha_as_in_pytorch(name, alpha):
    assert refimpl.activation_derivative(name, np.array([0.0]))[0] == alpha
    assert torch_engine.activation_derivative(name, np.array([0.0]))[0] == alpha


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_backward_is_the_jacobian_product(name, axis):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3)) * 3
    g = rng.normal(size=(4, 3))
    f = refimpl.activations.get(name)
    zt = torch.tensor(z, requires_grad=True)
    at = torch.softmax(zt, dim=axis) if name == "softmax" else torch.log_softmax(zt, dim=axis)
    (at * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(f.backward(z, g, axis=axis), zt.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(f.value(z, axis=axis), at.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "log_softmax", "tanh", "swish"])
@pytest.mark.parametrize("scale", [1e3, 1e6])
def test_extreme_inputs_are_finite_without_warnings(name, scale):
    z = np.array([[-scale], [0.0], [scale]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = refimpl.activation(name, z)
        g = refimpl.activations.get(name).backward(z, np.ones_like(z))
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g))
    expected = torch_engine.activation(name, z)
    np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-300)


def test_softmax_of_the_lecture_table():
    a = refimpl.activation("softmax", np.array([2.0, 1.0, -1.0]))
    np.testing.assert_allclose(a.sum(), 1.0)
    assert np.all(np.diff(a) < 0)


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match="unknown activation 'sigmoidd'; known: identity, sigmoid"):
        refimpl.activations.get("sigmoidd")


def test_non_elementwise_derivative_is_refused():
    with pytest.raises(NotImplementedError):
        refimpl.activation_derivative("softmax", np.zeros(3))
    with pytest.raises(NotImplementedError):
        torch_engine.activation_derivative("log_softmax", np.zeros(3))
