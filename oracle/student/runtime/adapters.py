"""Adapters: the two other shapes students commonly write, seen through refimpl's interface.

1. The interface itself (as refimpl and the template): used as is.
2. A whole-network ``backprop(W, b, f, x, y, loss)`` returning per-layer
   gradients ``(grads_W, grads_b)`` — lists in layer order or dicts keyed by l
   (Nielsen's ``backprop`` shape) — gives ``backward``'s ∂C/∂W and ∂C/∂b.
3. Per-layer pairs with a cache:
       layer_forward(W, b, a_prev, activation) -> (a, cache)
       layer_backward(grad_a, cache) -> (grad_a_prev, grad_W, grad_b)
   in PyTorch's words: grad_a is the grad_output of the layer (∂C/∂a^l for the
   batch cost C), grad_a_prev its grad_input. Together with ``loss_gradient``
   they give ``backward`` (∂C/∂a, ∂C/∂W, ∂C/∂b).
Both shapes are written in the column convention (z = W a + b, one example
per column), as the lectures and Nielsen write them. A case in the row
convention (h = x W + b, one example per row) is the transpose of the same
equations, so the adapter transposes W, x and y on the way in and the
per-layer results on the way out: the student's column code answers it too.
Functions an implementation provides under the interface's own names always win.
"""

from __future__ import annotations

import numpy as np

INTERFACE = (
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
)


def _by_layer(values, L):
    """A per-layer result as {l: value}: dicts keyed 1..L as they are, lists in layer order."""
    if isinstance(values, dict):
        return values
    values = list(values)
    if len(values) != L:
        raise ValueError(f"expected {L} per-layer values, got {len(values)}")
    return {l: v for l, v in zip(range(1, L + 1), values)}


def _in_columns(backward_column):
    """``backward(W, b, f, x, y, loss, convention)`` from a backward written in the column convention.

    Row convention: W^l is given as (n_{l−1}, n_l) and x, y with one example per row; the column
    code gets their transposes, and its per-layer matrices (∂C/∂a, δ, ∂C/∂W) are transposed back.
    """

    def backward(W, b, f, x, y, loss, convention="column"):
        if convention != "row":
            return backward_column(W, b, f, x, y, loss)
        T = lambda v: np.asarray(v, dtype=float).T  # noqa: E731
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        out = backward_column(
            {l: T(w) for l, w in W.items()}, b, f, x if x.ndim == 1 else x.T, y if y.ndim == 1 else y.T, loss
        )
        back = {}
        for key, per_layer in out.items():
            if key == "dC/db":
                back[key] = per_layer
            else:
                back[key] = {l: (None if v is None else T(v)) for l, v in per_layer.items()}
        return back

    return backward


def _from_backprop(backprop):
    def backward(W, b, f, x, y, loss):
        grads_W, grads_b = backprop(W, b, f, x, y, loss)
        L = len(W)
        return {"dC/dW": _by_layer(grads_W, L), "dC/db": _by_layer(grads_b, L)}

    return _in_columns(backward)


def _from_layers(layer_forward, layer_backward, loss_gradient):
    def forward_with_caches(W, b, f, x):
        a = {0: np.asarray(x, dtype=float)}
        if a[0].ndim == 1:
            a[0] = a[0][:, None]
        caches = {}
        for l in sorted(W):
            a[l], caches[l] = layer_forward(W[l], b.get(l), a[l - 1], f[l])
        return a, caches

    def backward(W, b, f, x, y, loss):
        a, caches = forward_with_caches(W, b, f, x)
        L = max(W)
        y = np.asarray(y, dtype=float).reshape(np.shape(a[L]))
        name, factor, reduction = loss
        N = np.shape(a[L])[1]
        grad = np.asarray(loss_gradient(name, a[L], y, factor, 0), dtype=float)
        grad = grad / N if reduction == "mean" else grad  # ∂C/∂a^L of the batch cost
        out = {"dC/da": {}, "dC/dW": {}, "dC/db": {}}
        scale = N if reduction == "mean" else 1
        for l in range(L, 0, -1):
            out["dC/da"][l] = grad * scale  # per example, as the interface defines it
            grad, out["dC/dW"][l], out["dC/db"][l] = layer_backward(grad, caches[l])
        return out

    return _in_columns(backward)


def adapt(namespace):
    """The interface functions an implementation (module namespace dict) provides, by name."""
    functions = {name: namespace[name] for name in INTERFACE if callable(namespace.get(name))}
    if "backward" not in functions and callable(namespace.get("backprop")):
        functions["backward"] = _from_backprop(namespace["backprop"])
    if (
        callable(namespace.get("layer_forward"))
        and callable(namespace.get("layer_backward"))
        and callable(namespace.get("loss_gradient"))
    ):
        functions.setdefault(
            "backward",
            _from_layers(namespace["layer_forward"], namespace["layer_backward"], namespace["loss_gradient"]),
        )
    return functions
