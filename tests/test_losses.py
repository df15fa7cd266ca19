"""Each loss's value and gradient against PyTorch, with explicit factor and batch reduction."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import refimpl
from oracle.engines import torch_engine
from refimpl.losses import LOSSES

RNG = np.random.default_rng(7)
A = RNG.uniform(0.05, 0.95, size=(3, 5))  # (K, N): probabilities, column convention
Y_REAL = RNG.normal(size=(3, 5))
Y_PROB = RNG.uniform(0, 1, size=(3, 5))
Y_ONEHOT = np.eye(3)[:, RNG.integers(0, 3, size=5)]


def targets(name):
    return {"binary_cross_entropy": Y_PROB, "cross_entropy": Y_ONEHOT}.get(name, Y_REAL)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("factor", [0.5, 1.0])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_value_and_gradient_match_autograd(name, factor, reduction):
    y = targets(name)
    c = refimpl.loss(name, A, y, factor, reduction)
    assert c == pytest.approx(torch_engine.loss(name, A, y, factor, reduction), rel=1e-12)
    np.testing.assert_allclose(
        refimpl.loss_gradient(name, A, y, factor), torch_engine.loss_gradient(name, A, y, factor), rtol=1e-12
    )


@pytest.mark.parametrize("axis", [0, 1])
def test_feature_axis_row_and_column_agree(axis):
    a = A if axis == 0 else A.T
    y = Y_REAL if axis == 0 else Y_REAL.T
    assert refimpl.loss("mse", a, y, 1.0, "mean", axis) == pytest.approx(refimpl.loss("mse", A, Y_REAL), rel=1e-14)


def test_definitions_match_pytorch_builtin_losses():
    a, y = torch.tensor(A), torch.tensor(Y_REAL)
    assert refimpl.loss("mse", A, Y_REAL, 1.0, "mean") == pytest.approx(F.mse_loss(a, y).item(), rel=1e-12)
    assert refimpl.loss("mae", A, Y_REAL, 1.0, "mean") == pytest.approx(F.l1_loss(a, y).item(), rel=1e-12)
    p = torch.tensor(Y_PROB)
    assert refimpl.loss("binary_cross_entropy", A, Y_PROB, 1.0, "mean") == pytest.approx(
        F.binary_cross_entropy(a, p, reduction="sum").item() / 5, rel=1e-12
    )
    logits = np.log(A)
    nll = F.cross_entropy(torch.tensor(logits.T), torch.tensor(Y_ONEHOT.argmax(axis=0))).item()
    probs = refimpl.activation("softmax", logits)
    assert refimpl.loss("cross_entropy", probs, Y_ONEHOT, 1.0, "mean") == pytest.approx(nll, rel=1e-12)


def test_half_squared_error_gradient_is_a_minus_y():
    np.testing.assert_allclose(refimpl.loss_gradient("squared_error", A, Y_REAL, 0.5), A - Y_REAL)


def test_cross_entropy_with_probabilities_zero_and_one_is_finite():
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert refimpl.loss("binary_cross_entropy", a, y) == 0.0
        assert refimpl.loss("cross_entropy", a, y) == 0.0
        assert np.isfinite(refimpl.loss("binary_cross_entropy", a, 1 - y))


def test_bad_names_and_reductions_are_refused():
    with pytest.raises(ValueError, match="unknown loss"):
        refimpl.losses.get("hinge")
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        refimpl.losses.get("mse", 1.0, "max")
