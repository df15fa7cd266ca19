"""refimpl: backpropagation in pure NumPy, written in the lectures' own equations.

This module is the interface every engine implements (the torch oracle, finite
differences, and any implementation under test): plain functions on NumPy
arrays, layers keyed by the lectures' layer number l = 1..L.

    activation(name, z, param=None, axis=0)               a = f(z)
    activation_derivative(name, z, param=None, axis=0)    f'(z), elementwise activations only
    loss(name, a, y, factor=1.0, reduction="mean", axis=0)   the batch cost C
    loss_gradient(name, a, y, factor=1.0, axis=0)          ∂C_n/∂a per example
    forward(W, b, f, x, convention="column")              (z, a)
    backward(W, b, f, x, y, loss, convention="column")    ∂C/∂a, δ, ∂C/∂W, ∂C/∂b per layer
    update(W, b, dC_dW, dC_db, eta, frozen=())            one gradient-descent step
    train_step(W, b, f, x, y, loss, eta, frozen=(), convention="column")   backward, then update
    graph(program, inputs, offsets=None)                  scalar graph: values and ∂f/∂(each)
    jacobian(W, b, x, convention="column")                ∂z/∂x and ∂z/∂W of one affine layer

``axis`` is the feature axis (0: column convention; 1: row convention).
This package never imports torch.
"""

from __future__ import annotations

from . import activations as _activations
from . import losses as _losses
from .graph import graph
from .jacobian import jacobian
from .network import backward, forward, train_step, update

name = "numpy"
complete = True  # a reference engine: gives every quantity of the interface
tolerance = (1e-10, 1e-12)  # (rtol, atol): float64 throughout, agreement with an exact computation

# The registries, the one source of the names and defaults (the case loader, the JSON Schema and the
# torch oracle are tested equal to them: tests/test_rules_once.py)
ACTIVATIONS = tuple(_activations.ACTIVATIONS)  # activation names
LOSSES = tuple(_losses.LOSSES)  # loss names
DEFAULT_PARAM = {
    n: cls.default_param for n, cls in _activations.ACTIVATIONS.items() if cls.default_param is not None
}  # leaky_relu's α, prelu's α, swish's β


def activation(name, z, param=None, axis=0):
    """a = f(z) for the activation called ``name``."""
    return _activations.get(name, param).value(z, axis)


def activation_derivative(name, z, param=None, axis=0):
    """f'(z), elementwise (softmax and log_softmax raise NotImplementedError)."""
    return _activations.get(name, param).derivative(z, axis)


def loss(name, a, y, factor=1.0, reduction="mean", axis=0):
    """The batch cost C (see refimpl.losses for each definition)."""
    return _losses.get(name, factor, reduction).value(a, y, axis)


def loss_gradient(name, a, y, factor=1.0, axis=0):
    """∂C_n/∂a for each example (same shape as a)."""
    return _losses.get(name, factor).gradient(a, y, axis)


__all__ = [
    "activation",
    "activation_derivative",
    "loss",
    "loss_gradient",
    "forward",
    "backward",
    "update",
    "train_step",
    "graph",
    "jacobian",
]
