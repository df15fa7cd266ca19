"""Cost functions C(a, y), value beside gradient ∇_a C.

Shapes: ``a`` and ``y`` have the same shape; ``axis`` is the feature axis
(0 in the column convention: a of shape (K, N), one example per column).

Every loss is defined per example n, with an explicit constant ``factor``:

    squared_error         C_n = factor · Σ_j (a_j − y_j)²        (factor ½ or 1: the notes use both)
    mse                   C_n = factor · (1/K) Σ_j (a_j − y_j)²
    mae                   C_n = factor · (1/K) Σ_j |a_j − y_j|     (d|u|/du at 0 taken as 0, as PyTorch)
    binary_cross_entropy  C_n = −factor · Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]
    cross_entropy         C_n = −factor · Σ_j y_j ln a_j          (log-likelihood: −ln a_y for one-hot y)

and reduced over the batch of N examples by ``reduction``: "sum" gives
C = Σ_n C_n, "mean" gives C = (1/N) Σ_n C_n. ``gradient`` returns ∂C_n/∂a for
each example (no 1/N: the reduction enters the weight update, as in the notes'
w → w − η/N Σ_n δ^{n,l} (a^{n,l−1})ᵀ). Logarithms are clamped at −100, as
PyTorch's BCELoss does, so that a = 0 or 1 gives a finite cost.
"""

from __future__ import annotations

import numpy as np

LOG_FLOOR = -100.0


def _log(p):
    with np.errstate(divide="ignore", invalid="ignore"):  # ln 0 = −inf, clamped; ln of p < 0 is NaN
        return np.maximum(np.log(p), LOG_FLOOR)


class Loss:
    name = "loss"

    def __init__(self, factor: float = 1.0, reduction: str = "mean"):
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', not {reduction!r}")
        self.factor = float(factor)
        self.reduction = reduction

    def per_example(self, a, y, axis=0):
        """C_n for each example: the feature axis summed out."""
        raise NotImplementedError

    def gradient(self, a, y, axis=0):
        """∂C_n/∂a, same shape as a."""
        raise NotImplementedError

    def value(self, a, y, axis=0) -> float:
        """The batch cost C = Σ_n C_n or (1/N) Σ_n C_n."""
        c = np.atleast_1d(self.per_example(a, y, axis))
        return float(np.sum(c) if self.reduction == "sum" else np.mean(c))


class SquaredError(Loss):
    """C_n = factor · Σ_j (a_j − y_j)²;  ∂C_n/∂a = 2·factor·(a − y)."""

    name = "squared_error"

    def per_example(self, a, y, axis=0):
        return self.factor * np.sum((a - y) ** 2, axis=axis)

    def gradient(self, a, y, axis=0):
        return 2.0 * self.factor * (a - y)


class MSE(Loss):
    """C_n = factor · (1/K) Σ_j (a_j − y_j)²;  ∂C_n/∂a = 2·factor·(a − y)/K."""

    name = "mse"

    def per_example(self, a, y, axis=0):
        return self.factor * np.mean((a - y) ** 2, axis=axis)

    def gradient(self, a, y, axis=0):
        return 2.0 * self.factor * (a - y) / np.shape(a)[axis]


class MAE(Loss):
    """C_n = factor · (1/K) Σ_j |a_j − y_j|;  ∂C_n/∂a = factor · sign(a − y)/K."""

    name = "mae"

    def per_example(self, a, y, axis=0):
        return self.factor * np.mean(np.abs(a - y), axis=axis)

    def gradient(self, a, y, axis=0):
        return self.factor * np.sign(a - y) / np.shape(a)[axis]


class BinaryCrossEntropy(Loss):
    """C_n = −factor · Σ_j [y ln a + (1−y) ln(1−a)];  ∂C_n/∂a = factor · (a − y)/(a(1 − a)).

    The denominator is kept ≥ 1e-12, as PyTorch's BCELoss does, so a = 0 or 1 stays finite.
    With a sigmoid output layer BP1 simplifies to δ^L = factor · (a^L − y) (see ``sigmoid_delta``).
    """

    name = "binary_cross_entropy"
    EPSILON = float(np.float32(1e-12))  # PyTorch's constant: the float 1e-12, 9.999999960041972e-13

    def per_example(self, a, y, axis=0):
        return -self.factor * np.sum(y * _log(a) + (1.0 - y) * _log(1.0 - a), axis=axis)

    def gradient(self, a, y, axis=0):
        return self.factor * (a - y) / np.maximum(a * (1.0 - a), self.EPSILON)

    def sigmoid_delta(self, a, y, axis=0):
        """δ^L for sigmoid + cross-entropy without dividing by a(1 − a): factor · (a − y)."""
        return self.factor * (a - y)


class CrossEntropy(Loss):
    """C_n = −factor · Σ_j y_j ln a_j;  ∂C_n/∂a = −factor · y/a.

    With a softmax output layer BP1 simplifies to δ^L = factor · (a^L Σ_j y_j − y),
    i.e. a^L − y for a one-hot y (see ``softmax_delta``).
    """

    name = "cross_entropy"

    def per_example(self, a, y, axis=0):
        return -self.factor * np.sum(np.where(y != 0, y * _log(a), 0.0), axis=axis)

    def gradient(self, a, y, axis=0):
        """−factor·y/a, and 0 where ln a is clamped at −100 (the derivative of the clamped cost)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((y != 0) & (a > np.exp(LOG_FLOOR)), -self.factor * y / a, 0.0)

    def softmax_delta(self, a, y, axis=0):
        """δ^L for softmax + log-likelihood, without forming y/a: factor·(a Σ_j y_j − y)."""
        return self.factor * (a * np.sum(y, axis=axis, keepdims=True) - y)


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (SquaredError, MSE, MAE, BinaryCrossEntropy, CrossEntropy)}


def get(name: str, factor: float = 1.0, reduction: str = "mean") -> Loss:
    """The loss called ``name`` (see LOSSES) with its constant factor and batch reduction."""
    try:
        return LOSSES[name](factor, reduction)
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}") from None
