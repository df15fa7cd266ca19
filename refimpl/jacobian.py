"""Jacobians of an affine layer (lecture 003, "What if we go wider?").

Column convention z = W x + b:   ∂z_i/∂x_k = W_ik            → ∂z/∂x = W
                                 ∂z_i/∂W_pq = [i = p] x_q
Row convention z = x W + b:      ∂z_j/∂x_i = W_ij            → ∂z/∂x = Wᵀ
                                 ∂z_j/∂W_pq = [j = q] x_p
``dz/dW`` has shape (n_out,) + W.shape: entry [i, p, q] is ∂z_i/∂W_pq.
"""

from __future__ import annotations

import numpy as np

from .activations import as_float


def jacobian(W, b, x, convention="column"):
    """Jacobians of z = W x + b (or x W + b) at one example x (1-D)."""
    W = as_float(W)
    x = as_float(x).reshape(-1)
    if convention == "row":
        n_out = W.shape[1]
        dz_dx = W.T.copy()  # ∂z_j/∂x_i = W_ij
        dz_dW = np.zeros((n_out,) + W.shape, dtype=W.dtype)
        for j in range(n_out):
            dz_dW[j, :, j] = x  # ∂z_j/∂W_pj = x_p
    else:
        n_out = W.shape[0]
        dz_dx = W.copy()  # ∂z_i/∂x_k = W_ik
        dz_dW = np.zeros((n_out,) + W.shape, dtype=W.dtype)
        for i in range(n_out):
            dz_dW[i, i, :] = x  # ∂z_i/∂W_iq = x_q
    return {"dz/dx": dz_dx, "dz/dW": dz_dW}
