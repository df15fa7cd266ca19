"""Central finite differences: a third opinion on every gradient, from loss values alone.

    ∂C/∂θ ≈ (C(θ + h) − C(θ − h)) / 2h,   h = STEP · max(1, |θ|)

The error of this estimate is the truncation error h²|C'''|/6 plus the
rounding error ≈ ε|C|/h (ε = 2.2e-16, the float64 machine epsilon). With
STEP = 1e-6 both are far below 1e-8 for the networks of the cases, so
finite differences are compared with the engines at
|fd − engine| ≤ FD_RTOL·|engine| + FD_ATOL·(1 + |C|)  (see README, "Tolerances").

The engine evaluates values only, through another engine's ``activation``,
``loss`` and ``graph`` functions (refimpl by default, see oracle.verdict.engines):
no derivative of that engine is used. Quantities that are not derivatives
(z, a, C) are not provided; the update w − η·∇ is, so that every step of a
gradient-descent history gets its own finite-difference gradients.
"""

from __future__ import annotations

import numpy as np

STEP = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-7


KINK = 1e-3  # one-sided slopes further apart than this (relative) mean there is no derivative


class NotDifferentiable(NotImplementedError):
    """The function has a kink at the point (e.g. ReLU at 0): central differences say nothing there."""


def kink(f_minus, f0, f_plus, h, resolution=None):
    """Whether the one-sided slopes (f0 − f(−h))/h and (f(+h) − f0)/h disagree: no derivative there,
    central differences say nothing. The one kink rule of every finite difference; "disagree" is
    by more than ``resolution``, by default KINK·max(1, |slopes|) (the engine's). A caller that
    compares the difference to a tighter tolerance passes that tolerance: a jump in the slope it
    could resolve is a kink to it."""
    right, left = (f_plus - f0) / h, (f0 - f_minus) / h
    if resolution is None:
        resolution = KINK * max(1.0, abs(right), abs(left))
    return abs(right - left) > resolution


def directional(fun, h, f0=None, resolution=None):
    """(fun(h) − fun(−h))/2h and fun(0) (``f0``, if already known); None for the difference where
    the cost is not finite at 0, ±h (off the loss's domain) or has a kink there (``kink``)."""
    f0 = fun(0.0) if f0 is None else f0
    fp, fm = fun(h), fun(-h)
    if not (np.isfinite(f0) and np.isfinite(fp) and np.isfinite(fm)) or kink(fm, f0, fp, h, resolution):
        return None, f0
    return (fp - fm) / (2.0 * h), f0


def _central(fun, theta):
    """∂fun/∂θ for every entry of the array θ (fun takes a perturbed copy of θ).

    Refuses (NotDifferentiable) where the one-sided slopes disagree, i.e. at a kink,
    instead of returning the mean of the two slopes, and where the cost is not finite at
    θ ± h (a step leaves the domain, e.g. a probability a ± h outside (0, 1)).
    """
    theta = np.array(theta, dtype=float)
    grad = np.zeros_like(theta)
    f0 = fun(theta)
    for idx in np.ndindex(theta.shape):
        h = STEP * max(1.0, abs(theta[idx]))
        plus, minus = theta.copy(), theta.copy()
        plus[idx] += h
        minus[idx] -= h
        f_plus, f_minus = fun(plus), fun(minus)
        if not (np.isfinite(f_plus) and np.isfinite(f_minus)):
            raise NotDifferentiable(f"no central difference at {theta[idx]!r}: the cost is not finite at θ ± {h:g}")
        if kink(f_minus, f0, f_plus, h):
            right, left = (f_plus - f0) / h, (f0 - f_minus) / h
            raise NotDifferentiable(f"no derivative at {theta[idx]!r}: one-sided slopes {left:.6g} and {right:.6g}")
        grad[idx] = (f_plus - f_minus) / (2.0 * h)
    return grad


class FiniteDifferences:
    """An engine with refimpl's interface whose derivatives are central differences of ``values``."""

    name = "fd"
    tolerance = (FD_RTOL, FD_ATOL)  # (rtol, atol) for a cost of order 1
    complete = True  # a reference engine, except for ...
    not_provided = ("z", "a", "C", "values")  # values only through self.values: no derivatives

    def tolerance_for(self, cost):
        """(rtol, atol) for a case whose cost is ``cost``: the rounding error ε|C|/h grows with |C|."""
        return FD_RTOL, FD_ATOL * (1.0 + abs(cost))

    def __init__(self, values):
        self.values = values  # a module or object with activation(), loss(), graph()

    def forward(self, W, b, f, x, convention="column"):
        raise NotImplementedError("finite differences give derivatives only")

    def activation(self, name, z, param=None, axis=0):
        raise NotImplementedError("finite differences give derivatives only")

    def loss(self, name, a, y, factor=1.0, reduction="mean", axis=0):
        raise NotImplementedError("finite differences give derivatives only")

    def update(self, W, b, dC_dW, dC_db, eta, frozen=()):
        """w − η·(finite-difference gradient): arithmetic only, so that later steps can be differenced too."""
        W_new = {
            l: np.array(w, dtype=float) - (0.0 if f"W{l}" in frozen else eta * np.asarray(dC_dW[l]))
            for l, w in W.items()
        }
        b_new = {
            l: None
            if v is None
            else np.array(v, dtype=float) - (0.0 if f"b{l}" in frozen else eta * np.asarray(dC_db[l]))
            for l, v in b.items()
        }
        return W_new, b_new

    def train_step(self, W, b, f, x, y, loss, eta, frozen=(), convention="column"):
        grads = self.backward(W, b, f, x, y, loss, convention)
        return self.update(W, b, grads["dC/dW"], grads["dC/db"], eta, frozen)

    def activation_derivative(self, name, z, param=None, axis=0):
        if name in ("softmax", "log_softmax"):
            raise NotImplementedError(f"{name} is not elementwise")
        z = np.asarray(z, dtype=np.float64)
        out = np.zeros_like(z)
        for idx in np.ndindex(z.shape):  # elementwise: f'(z_i) from f alone
            out[idx] = _central(
                lambda t: float(self.values.activation(name, t, param, axis).reshape(-1)[0]), np.array([z[idx]])
            )[0]
        return out

    def loss_gradient(self, name, a, y, factor=1.0, axis=0):
        # ∂C_n/∂a: derivative of the summed cost Σ_n C_n (examples are independent)
        y = np.asarray(y, dtype=np.float64)
        return _central(lambda t: self.values.loss(name, t, y, factor, "sum", axis), np.asarray(a, dtype=np.float64))

    def cost(self, W, b, f, x, y, loss, convention, reduction, offsets=None):
        """The cost from ``self.values`` alone, optionally with z^l (offsets[('z', l)]) or a^l
        (offsets[('a', l)]) shifted: the function every derivative of this engine differences."""
        return self._cost(W, b, f, x, y, loss, convention, reduction, offsets)

    def _cost(self, W, b, f, x, y, loss, convention, reduction, offsets=None, at=None):
        """The cost, optionally with z^l (offsets[('z', l)]) or a^l (offsets[('a', l)]) shifted."""
        name_, factor, _ = loss
        axis = 0 if convention == "column" else 1
        offsets = offsets or {}
        a = np.asarray(x, dtype=float)
        if a.ndim == 1:
            a = a[:, None] if convention == "column" else a[None, :]
        for l in sorted(W):
            if convention == "column":
                z = np.asarray(W[l]) @ a + (0.0 if b[l] is None else np.asarray(b[l]).reshape(-1, 1))
            else:
                z = a @ np.asarray(W[l]) + (0.0 if b[l] is None else np.asarray(b[l]).reshape(1, -1))
            z = z + offsets.get(("z", l), 0.0)
            a = self.values.activation(f[l][0], z, f[l][1], axis) + offsets.get(("a", l), 0.0)
        y = np.asarray(y, dtype=float)
        if y.ndim == 1:
            y = y[:, None] if convention == "column" else y[None, :]
        return self.values.loss(name_, a, y, factor, reduction, axis)

    def _shapes(self, W, b, f, x, convention):
        """Shapes of z^l, from the shapes of W^l and x (no forward values needed)."""
        x = np.asarray(x)
        N = 1 if x.ndim == 1 else (x.shape[1] if convention == "column" else x.shape[0])
        return {l: ((np.shape(W[l])[0], N) if convention == "column" else (N, np.shape(W[l])[1])) for l in W}

    def backward(self, W, b, f, x, y, loss, convention="column"):
        # always in float64, also in the float32 mode: differences of float32 costs would be noise
        reduction = loss[2]
        W = {l: np.asarray(w, dtype=np.float64) for l, w in W.items()}
        b = {l: None if v is None else np.asarray(v, dtype=np.float64) for l, v in b.items()}
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        cost = lambda **kw: self._cost(W, b, f, x, y, loss, convention, **kw)  # noqa: E731
        shapes = self._shapes(W, b, f, x, convention)
        out = {"delta": {}, "dC/da": {}, "dC/dW": {}, "dC/db": {}}
        for l in sorted(W):
            zero = np.zeros(shapes[l])
            # δ^{n,l} = ∂(Σ_n C_n)/∂z^{n,l}; ∂C_n/∂a^{n,l} likewise
            out["delta"][l] = _central(lambda t: cost(reduction="sum", offsets={("z", l): t}), zero)
            out["dC/da"][l] = _central(lambda t: cost(reduction="sum", offsets={("a", l): t}), zero)
            out["dC/dW"][l] = _central(lambda t: self._cost({**W, l: t}, b, f, x, y, loss, convention, reduction), W[l])
            out["dC/db"][l] = (
                None
                if b[l] is None
                else _central(lambda t: self._cost(W, {**b, l: t}, f, x, y, loss, convention, reduction), b[l])
            )
        return out

    def graph(self, program, inputs, offsets=None):
        offsets = dict(offsets or {})
        names = list(inputs) + [n for n, _ in program]
        out_name = program[-1][0]

        def f_at(name, t):
            shifted = {**offsets, name: offsets.get(name, 0.0) + float(t[0])}
            return self.values.graph(program, inputs, shifted)[0][out_name]

        grads = {k: float(_central(lambda t, k=k: f_at(k, t), np.zeros(1))[0]) for k in names}
        return None, grads

    def jacobian(self, W, b, x, convention="column"):
        W = np.asarray(W, dtype=float)
        x = np.asarray(x, dtype=float).reshape(-1)
        b0 = 0.0 if b is None else np.asarray(b, dtype=float).reshape(-1)

        def affine(W_, x_):
            return (W_ @ x_ if convention == "column" else x_ @ W_) + b0

        n_out = affine(W, x).size
        dz_dx = np.stack([_central(lambda t: affine(W, t)[i], x) for i in range(n_out)])
        dz_dW = np.stack([_central(lambda t: affine(t, x)[i], W) for i in range(n_out)])
        return {"dz/dx": dz_dx, "dz/dW": dz_dW}
