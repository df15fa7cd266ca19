"""Backpropagation: the functions to implement.

Fill in every function (or as many as the exercise asks for: a function that
still raises NotImplementedError is reported as "not implemented", not as an
error), then check your work against the lecture cases:

    pytest --impl my_backprop.py                        # one test per case and quantity
    backprop-oracle report --impl my_backprop.py        # a table: your column beside numpy and torch

Notation (the lectures'): layers l = 1..L, a^0 = x,

    z^l = W^l a^{l−1} + b^l,   a^l = f(z^l)                       column convention
    C   = cost of the batch: Σ_n C_n (reduction "sum") or (1/N) Σ_n C_n ("mean")
    BP1 δ^L = ∇_a C ⊙ f'(z^L)
    BP2 δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l)
    BP3 ∂C/∂b^l = δ^l                      (summed over the examples, × 1/N for "mean")
    BP4 ∂C/∂W^l = δ^l (a^{l−1})ᵀ            (summed over the examples, × 1/N for "mean")
    update  W^l → W^l − η ∂C/∂W^l,  b^l → b^l − η ∂C/∂b^l

Data you receive (all NumPy float64 arrays, never modify them in place):
  W  {l: W^l}            column convention: shape (n_l, n_{l−1}); row convention: (n_{l−1}, n_l)
  b  {l: b^l or None}    shape (n_l,); None: the layer has no bias
  f  {l: (name, param)}  activation of layer l: identity, sigmoid, tanh, relu, leaky_relu (param α,
                         default 0.01), prelu (α, default 0.25), swish (β, default 1), softmax, log_softmax
  x  (n_0, N) column convention / (N, n_0) row convention; a 1-D x is one example
  y  like the output a^L
  loss (name, factor, reduction): C_n = factor · Σ_j (a_j − y_j)² for "squared_error" (factor 0.5 is ½Σ),
     "mse" factor · mean_j (a_j − y_j)², "mae" factor · mean_j |a_j − y_j|,
     "binary_cross_entropy" −factor · Σ_j [y ln a + (1 − y) ln(1 − a)],
     "cross_entropy" −factor · Σ_j y_j ln a_j (with softmax output: δ^L = a^L − y)
  convention "column" (z = W a + b, examples as columns) or "row" (h = x W + b, examples as rows)

Per-layer results are dicts keyed by the layer number l (1..L; a has a^0 = x as well).
Conventions at kinks follow PyTorch: ReLU'(0) = 0.

Instead of ``backward`` you may write either of the two other common shapes;
the grader adapts them:
  backprop(W, b, f, x, y, loss) -> (grads_W, grads_b)       per-layer lists or dicts
  layer_forward(W, b, a_prev, activation) -> (a, cache)     and
  layer_backward(grad_a, cache) -> (grad_a_prev, grad_W, grad_b)   (with loss_gradient; column convention)
"""

import numpy as np  # noqa: F401  (you will need it)


def activation(name, z, param=None, axis=0):
    """a = f(z), elementwise (softmax and log_softmax along ``axis``, the feature axis).

    z: any shape. Returns an array of z's shape.
    """
    raise NotImplementedError


def activation_derivative(name, z, param=None, axis=0):
    """f'(z), elementwise: e.g. σ'(z) = σ(z)(1 − σ(z)), ReLU'(z) = 1 if z > 0 else 0.

    Not defined for softmax / log_softmax (raise NotImplementedError for them).
    """
    raise NotImplementedError


def loss(name, a, y, factor=1.0, reduction="mean", axis=0):
    """The batch cost C: Σ_n C_n ("sum") or (1/N) Σ_n C_n ("mean"), C_n as defined above. A float."""
    raise NotImplementedError


def loss_gradient(name, a, y, factor=1.0, axis=0):
    """∇_a C_n = ∂C_n/∂a for each example (no 1/N), same shape as a.

    e.g. squared_error with factor ½: a − y.
    """
    raise NotImplementedError


def forward(W, b, f, x, convention="column"):
    """The forward pass: z^l = W^l a^{l−1} + b^l (row convention: a^{l−1} W^l + b^l), a^l = f(z^l).

    Returns (z, a): z = {l: z^l} for l = 1..L, a = {l: a^l} for l = 0..L (a^0 = x), each of shape
    (n_l, N) in the column convention and (N, n_l) in the row convention.
    """
    raise NotImplementedError


def backward(W, b, f, x, y, loss, convention="column"):
    """Backpropagation of the batch cost C (BP1–BP4).

    Returns a dict of per-layer dicts:
      "dC/da": {l: ∂C_n/∂a^l}   ∇_a C at l = L, (W^{l+1})ᵀ δ^{l+1} below; shape of a^l
      "delta": {l: δ^l}          ∂C_n/∂z^l per example (no 1/N); shape of z^l
      "dC/dW": {l: ∂C/∂W^l}      gradient of the batch cost; shape of W^l
      "dC/db": {l: ∂C/∂b^l}      shape of b^l; None for a layer without bias
    A key you leave out is reported as not implemented.
    """
    raise NotImplementedError


def update(W, b, dC_dW, dC_db, eta, frozen=()):
    """One gradient-descent step: W^l − η ∂C/∂W^l, b^l − η ∂C/∂b^l.

    frozen: names of parameters not to update, e.g. ("b1", "W2"). Returns (W_new, b_new) as dicts.
    """
    raise NotImplementedError


def train_step(W, b, f, x, y, loss, eta, frozen=(), convention="column"):
    """Optional: backward, then update; returns (W_new, b_new). Leave it raising to use the two above."""
    raise NotImplementedError


def graph(program, inputs, offsets=None):
    """Optional: a scalar computational graph (lecture: f = (x + y)·z), backpropagated gate by gate.

    program: [(name, expression), ...], the last is the output f; expressions are nested tuples
    ("num", v), ("var", name), ("neg", u), ("add"|"sub"|"mul"|"div"|"pow", u, v), ("call", fn, u).
    inputs: {name: value}; offsets: {name: Δ} added to an input's or a node's value.
    Returns (values, grads): {name: value} and {name: ∂f/∂name} for every input and node.
    """
    raise NotImplementedError


def jacobian(W, b, x, convention="column"):
    """Optional: Jacobians of one affine layer z = W x + b at one example x (1-D).

    Returns {"dz/dx": array (n_out, n_in), "dz/dW": array (n_out,) + W.shape, [i, p, q] = ∂z_i/∂W_pq}.
    """
    raise NotImplementedError
