"""Forward pass, backpropagation (BP1–BP4) and gradient descent, by the lectures' equations.

Notation (lecture 001): layers l = 1..L, a^0 = x,

    z^l = W^l a^{l−1} + b^l        a^l = f(z^l)                     (column convention)

with W^l of shape (n_l, n_{l−1}) and one example per column of a (n_l, N).
The row convention of lectures 000 and 004, h = x W with W of shape
(n_{l−1}, n_l) and one example per row, is the transpose of the same
equations (hᵀ = Wᵀ xᵀ): arrays given in the row convention are transposed
once on the way in and once on the way out, and every equation below is the
column form.

Every dict returned here is keyed by the lectures' layer number l.
δ^{n,l} = ∂C_n/∂z^{n,l} is the error of example n (no 1/N); the gradients
∂C/∂W^l, ∂C/∂b^l are those of the batch cost C, so for reduction "mean" they
carry the 1/N of the update rule w → w − η/N Σ_n δ^{n,l} (a^{n,l−1})ᵀ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import activations, losses
from .activations import as_float

CONVENTIONS = ("column", "row")


def as_column(array, convention):
    """A parameter or batch array in the column convention."""
    if array is None:
        return None
    array = as_float(array)
    return array.T if convention == "row" else array


def examples(x, convention):
    """x as (n_0, N): a 1-D x is one example."""
    x = as_float(x)
    if x.ndim == 1:
        return x[:, None]
    return as_column(x, convention)


def bias_column(b):
    """b^l as a column (n_l, 1), broadcast over the examples."""
    return None if b is None else as_float(b).reshape(-1, 1)


def from_column(array, convention):
    return array.T if convention == "row" else array


def forward(W, b, f, x, convention="column"):
    """Feed x forward: z^l = W^l a^{l−1} + b^l, a^l = f(z^l) for l = 1..L.

    W: {l: W^l}; b: {l: b^l or None (no bias)}; f: {l: (name, param)};
    x: (n_0, N), or (N, n_0) in the row convention, or a 1-D single example.
    Returns (z, a): {l: z^l} for l = 1..L and {l: a^l} for l = 0..L, each
    (n_l, N) in the column convention, (N, n_l) in the row convention.
    """
    z, a = _forward_col(W, b, f, x, convention)
    return (
        {l: from_column(v, convention) for l, v in z.items()},
        {l: from_column(v, convention) for l, v in a.items()},
    )


def _forward_col(W, b, f, x, convention):
    a = {0: examples(x, convention)}
    z = {}
    for l in sorted(W):
        z[l] = as_column(W[l], convention) @ a[l - 1]  # z^l = W^l a^{l−1} ...
        if b.get(l) is not None:
            z[l] = z[l] + bias_column(b[l])  # ... + b^l
        a[l] = activations.get(*f[l]).value(z[l], axis=0)  # a^l = f(z^l)
    return z, a


class Prepared(NamedTuple):
    """The forward pass of a batch and what the backward pass needs, in the column convention."""

    z: dict  # {l: z^l}, l = 1..L
    a: dict  # {l: a^l}, l = 0..L (a^0 = x)
    y: np.ndarray  # the targets, one column per example
    L: int  # the number of layers
    cost: object  # the loss (refimpl.losses), with its factor and reduction
    scale: float  # 1/N for the batch mean, 1 for the sum
    f: dict  # {l: the activation of layer l}


class Backpropagation:
    """The backward pass and the update, one method per equation of the lectures.

    The module functions ``backward``, ``update`` and ``train_step`` are the
    methods of one instance of this class. Each method is one step of the
    computation, so that a faulty variant of the reference (a catalogued
    student mistake, see oracle.student.mistakes) overrides exactly one of them.
    All arrays are in the column convention: one example per column.
    """

    def output_gradient(self, cost, a_L, y):
        """∇_a C = ∂C_n/∂a^L, per example."""
        return cost.gradient(a_L, y, axis=0)

    def activation_backward(self, f, z, a, grad_a):
        """∂C/∂z from ∂C/∂a: grad_a ⊙ f'(z) (softmax: its Jacobian)."""
        return f.backward(z, grad_a, axis=0)

    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        """BP1: δ^L = ∇_a C ⊙ f'(z^L); softmax + log-likelihood and sigmoid + cross-entropy: δ^L = a^L − y."""
        if isinstance(cost, losses.CrossEntropy) and isinstance(f, activations.Softmax):
            return cost.softmax_delta(a_L, y, axis=0)  # BP1: δ^L = a^L − y
        if isinstance(cost, losses.BinaryCrossEntropy) and isinstance(f, activations.Sigmoid):
            return cost.sigmoid_delta(a_L, y, axis=0)  # BP1: δ^L = σ(z^L) − y
        return self.activation_backward(f, z_L, a_L, grad_a)  # BP1: δ^L = ∇_a C ⊙ f'(z^L)

    def backpropagate(self, W_next, delta_next):
        """(W^{l+1})ᵀ δ^{l+1} = ∂C_n/∂a^l."""
        return W_next.T @ delta_next

    def hidden_error(self, f, z, a, grad_a):
        """BP2: δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l), with grad_a = (W^{l+1})ᵀ δ^{l+1}."""
        return self.activation_backward(f, z, a, grad_a)  # BP2

    def batch_scale(self, N, reduction):
        """1/N for the batch mean (the η/N of the update rule), 1 for the sum."""
        return 1.0 / N if reduction == "mean" else 1.0

    def bias_gradient(self, delta, scale):
        """BP3: ∂C/∂b^l = δ^l, summed over the examples (× 1/N for the mean)."""
        return scale * np.sum(delta, axis=1)  # BP3

    def weight_gradient(self, delta, a_prev, scale):
        """BP4: ∂C/∂W^l = δ^l (a^{l−1})ᵀ, summed over the examples (× 1/N for the mean)."""
        return scale * delta @ a_prev.T  # BP4

    def step(self, p, grad, eta):
        """Gradient descent: p → p − η ∂C/∂p."""
        return p - eta * grad

    def prepare(self, W, b, f, x, y, loss, convention):
        """The forward pass and what the backward pass needs (see Prepared)."""
        z, a = _forward_col(W, b, f, x, convention)
        cost = losses.get(*loss)
        return Prepared(
            z,
            a,
            examples(y, convention),
            max(W),
            cost,
            self.batch_scale(a[0].shape[1], cost.reduction),
            {l: activations.get(*f[l]) for l in W},
        )

    def backward(self, W, b, f, x, y, loss, convention="column"):
        """Backpropagate the cost of the batch (x, y) through the network.

        loss: (name, factor, reduction), see refimpl.losses.
        Returns a dict with, for every layer l (dicts keyed by l):
          "dC/da"    ∂C_n/∂a^l: ∇_a C at l = L, (W^{l+1})ᵀ δ^{l+1} below,
          "delta"    δ^l = ∂C_n/∂z^l, one column (row) per example,
          "dC/dW"    ∂C/∂W^l, shaped as W^l,
          "dC/db"    ∂C/∂b^l, shaped as b^l (None for a layer without bias).
        """
        z, a, y, L, cost, scale, acts = self.prepare(W, b, f, x, y, loss, convention)
        dC_da = {L: self.output_gradient(cost, a[L], y)}  # ∇_a C
        delta = {L: self.output_error(acts[L], cost, z[L], a[L], y, dC_da[L])}  # BP1
        for l in range(L - 1, 0, -1):
            dC_da[l] = self.backpropagate(as_column(W[l + 1], convention), delta[l + 1])  # (W^{l+1})ᵀ δ^{l+1}
            delta[l] = self.hidden_error(acts[l], z[l], a[l], dC_da[l])  # BP2
        dC_dW, dC_db = {}, {}
        for l in range(1, L + 1):
            dC_dW[l] = from_column(self.weight_gradient(delta[l], a[l - 1], scale), convention)  # BP4
            dC_db[l] = None if b.get(l) is None else self.bias_gradient(delta[l], scale).reshape(np.shape(b[l]))  # BP3
        return {
            "dC/da": {l: from_column(v, convention) for l, v in dC_da.items()},
            "delta": {l: from_column(v, convention) for l, v in delta.items()},
            "dC/dW": dC_dW,
            "dC/db": dC_db,
        }

    def update(self, W, b, dC_dW, dC_db, eta, frozen=()):
        """One gradient-descent step: W^l → W^l − η ∂C/∂W^l, b^l → b^l − η ∂C/∂b^l.

        frozen: names of parameters that are not updated, e.g. {"b1", "W2"}.
        Returns (W_new, b_new); the inputs are not modified.
        """
        W_new = {
            l: as_float(w).copy() if f"W{l}" in frozen else self.step(as_float(w), as_float(dC_dW[l]), eta)
            for l, w in W.items()
        }
        b_new = {
            l: None
            if v is None
            else as_float(v).copy()
            if f"b{l}" in frozen
            else self.step(as_float(v), as_float(dC_db[l]), eta)
            for l, v in b.items()
        }
        return W_new, b_new

    def train_step(self, W, b, f, x, y, loss, eta, frozen=(), convention="column"):
        """Backward pass, then the update: the parameters after one step of gradient descent."""
        grads = self.backward(W, b, f, x, y, loss, convention)
        return self.update(W, b, grads["dC/dW"], grads["dC/db"], eta, frozen)


_REFERENCE = Backpropagation()
backward = _REFERENCE.backward
update = _REFERENCE.update
train_step = _REFERENCE.train_step
