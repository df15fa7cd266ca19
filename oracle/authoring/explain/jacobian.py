"""Jacobian cases: ∂z/∂x and ∂z/∂W of one linear layer."""

from __future__ import annotations


from oracle.authoring.explain.common import (
    M,
    partial,
    sym,
)


def _jacobian(w):
    g = w.case.given
    W, b, x = g["W"], g["b"], g["x"]
    w.heading(2, "Given")
    row = [[M("W", "W"), w.given(W)]]
    if b is not None:
        row.append([M("b", "b"), w.given(b)])
    row.append([M("x", "x"), w.given(x)])
    w.rows(row, inline=True)
    z_sym = M("z", "z")
    if w.column:
        w.para(
            "The layer ",
            M("z = W x + b", "z = W x + b"),
            " (column convention): ",
            M("∂zᵢ/∂xₖ = Wᵢₖ", r"\partial z_i / \partial x_k = W_{ik}"),
            ", ",
            M("∂zᵢ/∂W_pq = [i = p] x_q", r"\partial z_i / \partial W_{pq} = [i = p]\, x_q"),
            ".",
        )
        rule = M("W", "W")
    else:
        w.para(
            "The layer ",
            M("z = x W + b", "z = x W + b"),
            " (row convention): ",
            M("∂zⱼ/∂xᵢ = Wᵢⱼ", r"\partial z_j / \partial x_i = W_{ij}"),
            ", ",
            M("∂zⱼ/∂W_pq = [j = q] x_p", r"\partial z_j / \partial W_{pq} = [j = q]\, x_p"),
            ".",
        )
        rule = M("Wᵀ", "W^{T}")
    w.heading(2, "Jacobians")
    w.eq(partial(z_sym, M("x", "x")), rule, w.num(w.value("dz/dx")), q="dz/dx")
    dz_dW = w.value("dz/dW")
    w.rows([[partial(sym("z", sub=i + 1), M("W", "W")), w.num(dz_dW[i])] for i in range(dz_dW.shape[0])], qs=["dz/dW"])
