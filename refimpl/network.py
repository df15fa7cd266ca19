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

import numpy as np

from . import activations, losses

CONVENTIONS = ("column", "row")


def _col(array, convention):
    """A parameter or batch array in the column convention."""
    if array is None:
        return None
    array = np.asarray(array, dtype=float)
    return array.T if convention == "row" else array


def _examples(x, convention):
    """x as (n_0, N): a 1-D x is one example."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        return x[:, None]
    return _col(x, convention)


def _bias(b):
    """b^l as a column (n_l, 1), broadcast over the examples."""
    return None if b is None else np.asarray(b, dtype=float).reshape(-1, 1)


def _back(array, convention):
    return array.T if convention == "row" else array


def forward(W, b, f, x, convention="column"):
    """Feed x forward: z^l = W^l a^{l−1} + b^l, a^l = f(z^l) for l = 1..L.

    W: {l: W^l}; b: {l: b^l or None (no bias)}; f: {l: (name, param)};
    x: (n_0, N), or (N, n_0) in the row convention, or a 1-D single example.
    Returns (z, a): {l: z^l} for l = 1..L and {l: a^l} for l = 0..L, each
    (n_l, N) in the column convention, (N, n_l) in the row convention.
    """
    z, a = _forward_col(W, b, f, x, convention)
    return ({l: _back(v, convention) for l, v in z.items()},
            {l: _back(v, convention) for l, v in a.items()})


def _forward_col(W, b, f, x, convention):
    a = {0: _examples(x, convention)}
    z = {}
    for l in sorted(W):
        z[l] = _col(W[l], convention) @ a[l - 1]                  # z^l = W^l a^{l−1} ...
        if b.get(l) is not None:
            z[l] = z[l] + _bias(b[l])                             # ... + b^l
        a[l] = activations.get(*f[l]).value(z[l], axis=0)         # a^l = f(z^l)
    return z, a


def backward(W, b, f, x, y, loss, convention="column"):
    """Backpropagate the cost of the batch (x, y) through the network.

    loss: (name, factor, reduction), see refimpl.losses.
    Returns a dict with, for every layer l (dicts keyed by l):
      "dC/da"    ∂C_n/∂a^l: ∇_a C at l = L, (W^{l+1})ᵀ δ^{l+1} below,
      "delta"    δ^l = ∂C_n/∂z^l, one column (row) per example,
      "dC/dW"    ∂C/∂W^l, shaped as W^l,
      "dC/db"    ∂C/∂b^l, shaped as b^l (None for a layer without bias).
    """
    z, a = _forward_col(W, b, f, x, convention)
    y = _examples(y, convention)
    L = max(W)
    N = a[0].shape[1]
    cost = losses.get(*loss)
    scale = 1.0 / N if cost.reduction == "mean" else 1.0         # η/N Σ_n (mean) or η Σ_n (sum)
    out = activations.get(*f[L])

    dC_da = {L: cost.gradient(a[L], y, axis=0)}                   # ∇_a C
    delta = {}
    if isinstance(cost, losses.CrossEntropy) and isinstance(out, activations.Softmax):
        delta[L] = cost.softmax_delta(a[L], y, axis=0)            # BP1 (softmax + log-likelihood): δ^L = a^L − y
    else:
        delta[L] = out.backward(z[L], dC_da[L], axis=0)           # BP1: δ^L = ∇_a C ⊙ f'(z^L)
    for l in range(L - 1, 0, -1):
        dC_da[l] = _col(W[l + 1], convention).T @ delta[l + 1]    # (W^{l+1})ᵀ δ^{l+1}
        delta[l] = activations.get(*f[l]).backward(z[l], dC_da[l], axis=0)  # BP2: δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l)

    dC_dW, dC_db = {}, {}
    for l in range(1, L + 1):
        dW = scale * delta[l] @ a[l - 1].T                        # BP4: ∂C/∂W^l = δ^l (a^{l−1})ᵀ, summed over n
        dC_dW[l] = _back(dW, convention)
        if b.get(l) is None:
            dC_db[l] = None
        else:
            db = scale * np.sum(delta[l], axis=1)                 # BP3: ∂C/∂b^l = δ^l, summed over n
            dC_db[l] = db.reshape(np.shape(b[l]))

    return {
        "dC/da": {l: _back(v, convention) for l, v in dC_da.items()},
        "delta": {l: _back(v, convention) for l, v in delta.items()},
        "dC/dW": dC_dW, "dC/db": dC_db,
    }


def update(W, b, dC_dW, dC_db, eta, frozen=()):
    """One gradient-descent step: W^l → W^l − η ∂C/∂W^l, b^l → b^l − η ∂C/∂b^l.

    frozen: names of parameters that are not updated, e.g. {"b1", "W2"}.
    Returns (W_new, b_new); the inputs are not modified.
    """
    W_new = {l: np.array(w, dtype=float) if f"W{l}" in frozen
             else np.asarray(w, dtype=float) - eta * np.asarray(dC_dW[l]) for l, w in W.items()}
    b_new = {}
    for l, bl in b.items():
        if bl is None:
            b_new[l] = None
        elif f"b{l}" in frozen:
            b_new[l] = np.array(bl, dtype=float)
        else:
            b_new[l] = np.asarray(bl, dtype=float) - eta * np.asarray(dC_db[l])
    return W_new, b_new
