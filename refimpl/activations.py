"""Activation functions f and their derivatives f', value beside derivative.

Shapes: ``z`` is an array whose feature (unit) axis is ``axis``: axis 0 for the
column convention (z of shape (n, N), one example per column), as refimpl.network
always uses internally. Elementwise activations give ``value(z)`` and
``derivative(z)`` of z's shape; BP1/BP2 multiply f'(z) elementwise (⊙).
``backward(z, grad_a)`` turns ∂C/∂a into ∂C/∂z (= grad_a ⊙ f'(z) for elementwise
f; softmax applies its Jacobian, since a_j depends on every z_k).

Conventions at kinks follow PyTorch: ReLU'(0) = 0, LeakyReLU'(0) = PReLU'(0) = α.
Every function is written so that |z| = 1000 (or 1e6) overflows nothing.
"""

from __future__ import annotations

import numpy as np


def as_float(x):
    """x as a floating-point array: float32 stays float32 (the float32 mode), anything else float64."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


class Activation:
    """Base class: an elementwise activation with a fixed parameter (if any)."""

    name = "activation"
    elementwise = True
    default_param: float | None = None

    def __init__(self, param: float | None = None):
        self.param = self.default_param if param is None else float(param)

    def value(self, z, axis=0):
        raise NotImplementedError

    def derivative(self, z, axis=0):
        raise NotImplementedError

    def backward(self, z, grad_a, axis=0):
        """∂C/∂z = ∂C/∂a ⊙ f'(z)."""
        return grad_a * self.derivative(z, axis)


class Identity(Activation):
    """f(z) = z;  f'(z) = 1."""

    name = "identity"

    def value(self, z, axis=0):
        return as_float(z).copy()

    def derivative(self, z, axis=0):
        return np.ones_like(as_float(z))


def _sigmoid(z):
    # σ(z) = 1/(1+e^{-z}) for z ≥ 0 and e^{z}/(1+e^{z}) for z < 0, both as e^{min(z,0)}/(1+e^{-|z|}):
    # no exponent is positive, so nothing overflows, and no np.where evaluating both branches
    return np.exp(np.minimum(z, 0.0)) / (1.0 + np.exp(-np.abs(z)))


class Sigmoid(Activation):
    """σ(z) = 1/(1+e^{-z});  σ'(z) = σ(z)(1−σ(z)) = σ(z)σ(−z)."""

    name = "sigmoid"

    def value(self, z, axis=0):
        return _sigmoid(as_float(z))

    def derivative(self, z, axis=0):
        # σ(z)σ(−z) = σ(z)(1 − σ(z)) without the cancellation in 1 − σ(z); it is even in z, so with
        # e = e^{-|z|} (never overflows) it is (1/(1+e))·(e/(1+e)) = e/(1+e)²: one exponential
        e = np.exp(-np.abs(as_float(z)))
        return e / (1.0 + e) ** 2


class Tanh(Activation):
    """tanh(z);  tanh'(z) = 1 − tanh²(z)."""

    name = "tanh"

    def value(self, z, axis=0):
        return np.tanh(as_float(z))

    def derivative(self, z, axis=0):
        return 1.0 - np.tanh(as_float(z)) ** 2


class ReLU(Activation):
    """max(0, z);  f'(z) = 1 for z > 0, else 0 (f'(0) = 0, as PyTorch)."""

    name = "relu"

    def value(self, z, axis=0):
        return np.maximum(as_float(z), 0.0)

    def derivative(self, z, axis=0):
        return (as_float(z) > 0).astype(as_float(z).dtype)


class LeakyReLU(Activation):
    """z for z > 0, αz otherwise (α = 0.01 by default);  f'(z) = 1 or α (f'(0) = α)."""

    name = "leaky_relu"
    default_param = 0.01

    def value(self, z, axis=0):
        z = as_float(z)
        return np.where(z > 0, z, self.param * z)

    def derivative(self, z, axis=0):
        z = as_float(z)
        return np.where(z > 0, 1.0, self.param).astype(z.dtype)


class PReLU(LeakyReLU):
    """Parametric ReLU: z for z > 0, αz otherwise (α = 0.25 by default, PyTorch's initial value).

    α is a given, fixed parameter of the case (it is not trained here).
    """

    name = "prelu"
    default_param = 0.25


class Swish(Activation):
    """swish(z) = z σ(βz) (β = 1: SiLU);  f'(z) = σ(βz) + βz σ(βz)(1 − σ(βz))."""

    name = "swish"
    default_param = 1.0

    def value(self, z, axis=0):
        z = as_float(z)
        return z * _sigmoid(self.param * z)

    def derivative(self, z, axis=0):
        z = as_float(z)
        s = _sigmoid(self.param * z)
        return s + self.param * z * s * (1.0 - s)


class Softmax(Activation):
    """a_j = e^{z_j} / Σ_k e^{z_k} along the feature axis.

    Not elementwise: ∂a_j/∂z_k = a_j(δ_jk − a_k), so ``derivative`` is not
    defined and ``backward`` applies Jᵀ: ∂C/∂z = a ⊙ (∂C/∂a − Σ_k a_k ∂C/∂a_k).
    """

    name = "softmax"
    elementwise = False

    def value(self, z, axis=0):
        z = as_float(z)
        e = np.exp(z - np.max(z, axis=axis, keepdims=True))  # shift by max: no overflow
        return e / np.sum(e, axis=axis, keepdims=True)

    def derivative(self, z, axis=0):
        raise NotImplementedError("softmax is not elementwise; use backward (its Jacobian)")

    def backward(self, z, grad_a, axis=0):
        a = self.value(z, axis)
        return a * (grad_a - np.sum(a * grad_a, axis=axis, keepdims=True))  # Jᵀg, J = diag(a) − a aᵀ


class LogSoftmax(Activation):
    """a_j = z_j − log Σ_k e^{z_k};  ∂C/∂z = g − softmax(z) Σ_k g_k."""

    name = "log_softmax"
    elementwise = False

    def value(self, z, axis=0):
        z = as_float(z)
        m = np.max(z, axis=axis, keepdims=True)
        return z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))

    def derivative(self, z, axis=0):
        raise NotImplementedError("log_softmax is not elementwise; use backward (its Jacobian)")

    def backward(self, z, grad_a, axis=0):
        p = np.exp(self.value(z, axis))
        return grad_a - p * np.sum(grad_a, axis=axis, keepdims=True)


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, PReLU, Swish, Softmax, LogSoftmax)
}


def get(name: str, param: float | None = None) -> Activation:
    """The activation called ``name`` (see ACTIVATIONS), with its parameter."""
    try:
        return ACTIVATIONS[name](param)
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None
