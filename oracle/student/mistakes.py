"""A catalogue of common backpropagation mistakes, each a faulty variant of the reference.

Every mistake is defined once: a subclass of refimpl's Backpropagation that
overrides the one step where the mistake happens (or a faulty activation
derivative, activation function or loss gradient, which the interface
functions of the variant use too). ``faulty_interface(name)`` gives the
interface functions of that variant, so a mistake can be run like any
implementation — as the diagnosis does, to recognise a student's wrong value,
and as the tests do, through ``--impl``. Where a mistake lives in f', f or
∇_a C, the quantities f'(z[l]), a[l] and dC/da[L] of the variant show it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

import refimpl
from refimpl import activations, losses
from refimpl.activations import as_float
from refimpl.network import Backpropagation, as_column, bias_column, examples, from_column


@dataclass(frozen=True)
class Mistake:
    name: str
    equation: str  # the equation it breaks, as the lectures label it
    description: str  # what the faulty code does
    variant: type  # the faulty Backpropagation subclass
    symptom: str | None = None  # a regular expression matched against an error message, for a mistake
    #                              that shows as an error (e.g. an input modified in place), not as a value


class _RemembersForward(Backpropagation):
    """Keeps the forward pass of the backward pass under way, for a faulty step that reads another
    layer's values than the one it is given (the layer is found by the identity of what it is given).
    One instance per engine (faulty_interface makes one), used by one backward pass at a time."""

    def prepare(self, W, b, f, x, y, loss, convention):
        prepared = super().prepare(W, b, f, x, y, loss, convention)
        self._a, self._acts = prepared.a, prepared.f  # {l: a^l} for l = 0..L, {l: f_l}
        return prepared

    @staticmethod
    def _layer(values, value):
        return next(l for l, v in values.items() if v is value)


class WrongDerivative(Backpropagation):
    """A variant whose f' is wrong for the activations named in ``names``: BP1 and BP2 multiply by
    ``wrong_derivative`` there, and the f'(z[l]) quantities of faulty_interface give it too."""

    names: ClassVar[tuple] = ()

    def wrong_derivative(self, f, z):
        raise NotImplementedError

    def activation_backward(self, f, z, a, grad_a):
        if f.name in self.names:
            return grad_a * self.wrong_derivative(f, z)
        return super().activation_backward(f, z, a, grad_a)


class WrongActivation(Backpropagation):
    """A variant whose activation function f itself is wrong for the activations in ``faulty``
    (name → Activation subclass): the forward pass, and everything computed from it, uses it."""

    faulty: ClassVar[dict] = {}

    def activation(self, name, param=None):
        cls = self.faulty.get(name)
        return activations.get(name, param) if cls is None else cls(param)

    def forward_col(self, W, b, f, x, convention):
        a, z = {0: examples(x, convention)}, {}
        for l in sorted(W):
            z[l] = as_column(W[l], convention) @ a[l - 1]  # z^l = W^l a^{l−1} ...
            if b.get(l) is not None:
                z[l] = z[l] + bias_column(b[l])  # ... + b^l
            a[l] = self.activation(*f[l]).value(z[l], axis=0)  # a^l = f(z^l), with the faulty f
        return z, a

    def prepare(self, W, b, f, x, y, loss, convention):
        z, a = self.forward_col(W, b, f, x, convention)
        return (
            super()
            .prepare(W, b, f, x, y, loss, convention)
            ._replace(z=z, a=a, f={l: self.activation(*f[l]) for l in W})
        )


class SignFlipped(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        return -cost.gradient(a_L, y, axis=0)  # y − a instead of a − y


class NoFprimeOutput(Backpropagation):
    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        return grad_a  # δ^L = ∇_a C, f'(z^L) left out


class NoFprimeHidden(Backpropagation):
    def hidden_error(self, f, z, a, grad_a):
        return grad_a  # δ^l = (W^{l+1})ᵀ δ^{l+1}, f'(z^l) left out


class DerivativeAtA(Backpropagation):
    def activation_backward(self, f, z, a, grad_a):
        return f.backward(a, grad_a, axis=0)  # f'(a) instead of f'(z): σ(a)(1 − σ(a))


class TransposeMissing(Backpropagation):
    def backpropagate(self, W_next, delta_next):
        return W_next @ delta_next  # W^{l+1} δ^{l+1}, no transpose


class OuterProductReversed(Backpropagation):
    def weight_gradient(self, delta, a_prev, scale):
        return scale * a_prev @ delta.T  # a^{l−1} (δ^l)ᵀ: the transpose of BP4


class UpdatedWeightsInBP2(Backpropagation):
    """Seed 002's algorithm slide: update W^{l+1} first, then backpropagate through it."""

    def train_step(self, W, b, f, x, y, loss, eta, frozen=(), convention="column"):
        z, a, y, L, cost, scale, acts = self.prepare(W, b, f, x, y, loss, convention)  # Prepared
        W_new = {l: as_column(w, convention).astype(float) for l, w in W.items()}
        b_new = {l: None if v is None else np.array(v, dtype=float) for l, v in b.items()}
        delta = self.output_error(acts[L], cost, z[L], a[L], y, self.output_gradient(cost, a[L], y))
        for l in range(L, 0, -1):
            if f"W{l}" not in frozen:
                W_new[l] = self.step(W_new[l], self.weight_gradient(delta, a[l - 1], scale), eta)
            if b_new[l] is not None and f"b{l}" not in frozen:
                b_new[l] = self.step(b_new[l], self.bias_gradient(delta, scale).reshape(b_new[l].shape), eta)
            if l > 1:  # δ^{l−1} through the already updated W^l
                delta = self.hidden_error(acts[l - 1], z[l - 1], a[l - 1], self.backpropagate(W_new[l], delta))
        return {l: from_column(w, convention) for l, w in W_new.items()}, b_new


class MeanWithoutOneOverN(Backpropagation):
    def batch_scale(self, N, reduction):
        return 1.0  # Σ_n where (1/N) Σ_n is meant


class BiasNotSummed(Backpropagation):
    def bias_gradient(self, delta, scale):
        return scale * delta[:, 0]  # the first example's δ only


class BiasGradientLeftOut(Backpropagation):
    def bias_gradient(self, delta, scale):
        return np.zeros(delta.shape[0])  # ∂C/∂b = 0: biases never learn


SQUARED = (losses.SquaredError, losses.MSE)


class HalfDropped(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        g = cost.gradient(a_L, y, axis=0)
        return 2.0 * g if isinstance(cost, SQUARED) else g  # d/da of Σ(a − y)² where C = ½Σ(a − y)²


class HalfDoubled(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        g = cost.gradient(a_L, y, axis=0)
        return 0.5 * g if isinstance(cost, SQUARED) else g  # a − y where C = Σ(a − y)²


class SoftmaxElementwise(Backpropagation):
    def activation_backward(self, f, z, a, grad_a):
        if isinstance(f, activations.Softmax):
            s = f.value(z, axis=0)
            return grad_a * s * (1.0 - s)  # diag of the Jacobian only
        return f.backward(z, grad_a, axis=0)

    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        return self.activation_backward(f, z_L, a_L, grad_a)  # no a − y shortcut either


class ReluPrimeAtZeroIsOne(WrongDerivative):
    names: ClassVar[tuple] = ("relu",)

    def wrong_derivative(self, f, z):
        return (z >= 0).astype(z.dtype)  # ReLU'(0) = 1


class UpdateAdded(Backpropagation):
    def step(self, p, grad, eta):
        return p + eta * grad  # ascent: w + η ∂C/∂w


class WeightGradientWithOwnActivation(_RemembersForward):
    """BP4 with the layer's own output: δ^l (a^l)ᵀ. A valid product for every layer, of shape
    (n_l, n_l): the values are wrong where n_l = n_{l−1}, the shape is wrong elsewhere (and the
    update W^l − η ∂C/∂W^l then fails to broadcast, or broadcasts to the wrong shape, as a
    student's code does)."""

    def weight_gradient(self, delta, a_prev, scale):
        l = self._layer(self._a, a_prev) + 1
        return scale * delta @ self._a[l].T  # δ^l (a^l)ᵀ instead of δ^l (a^{l−1})ᵀ


class TanhPrimeOneMinusTanh(WrongDerivative):
    names: ClassVar[tuple] = ("tanh",)

    def wrong_derivative(self, f, z):
        return 1.0 - np.tanh(z)  # 1 − tanh(z) instead of 1 − tanh²(z)


class SigmoidPrimeOnePlus(WrongDerivative):
    names: ClassVar[tuple] = ("sigmoid",)

    def wrong_derivative(self, f, z):
        s = f.value(z)
        return s * (1.0 + s)  # σ(z)(1 + σ(z)) instead of σ(z)(1 − σ(z))


class SoftmaxCrossEntropyDeltaFlipped(Backpropagation):
    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        if isinstance(cost, losses.CrossEntropy) and isinstance(f, activations.Softmax):
            return -cost.softmax_delta(a_L, y, axis=0)  # BP1: δ^L = y − a^L instead of a^L − y
        return super().output_error(f, cost, z_L, a_L, y, grad_a)


class UnshiftedSoftmax(activations.Softmax):
    def value(self, z, axis=0):
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(as_float(z))  # e^{z_j} without subtracting max_k z_k:
            return e / np.sum(e, axis=axis, keepdims=True)  # inf/inf = NaN (or x/inf = 0) once z ≳ 709.78


class SoftmaxWithoutMaxShift(WrongActivation):
    faulty: ClassVar[dict] = {"softmax": UnshiftedSoftmax}  # a_j = e^{z_j}/Σ_k e^{z_k}, unshifted


class BackwardLoopSkipsLayer1(Backpropagation):
    def backward(self, W, b, f, x, y, loss, convention="column"):
        grads = super().backward(W, b, f, x, y, loss, convention)
        if max(W) > 1:
            # BP2 looped as for l in range(L − 1, 1, −1): l = 1 is never reached, so ∂C/∂a¹, δ¹ and with
            # them ∂C/∂W¹ = δ¹ (a⁰)ᵀ and ∂C/∂b¹ keep the zeros they were initialised with
            for per_layer in grads.values():
                if per_layer.get(1) is not None:
                    per_layer[1] = np.zeros_like(per_layer[1])
        return grads


class DeltaAveragedBeforeOuterProduct(Backpropagation):
    def weight_gradient(self, delta, a_prev, scale):
        N = delta.shape[1]  # N·mean_n(δ^n) mean_n(a^{n,l−1})ᵀ
        return (
            scale
            * N
            * (
                np.mean(delta, axis=1, keepdims=True)  # = (Σ_n δ^n)(Σ_n a^n)ᵀ/N instead of
                @ np.mean(a_prev, axis=1, keepdims=True).T
            )
        )  # Σ_n δ^n (a^n)ᵀ (× 1/N for the mean)


class BiasGradientMean(Backpropagation):
    def bias_gradient(self, delta, scale):
        return np.mean(delta, axis=1)  # BP3: (1/N) Σ_n δ^n whatever the reduction:
        #                                                             right for the mean, 1/N too small for the sum


class LeakyReluAlphaSwapped(WrongDerivative):
    names: ClassVar[tuple] = ("leaky_relu", "prelu")

    def wrong_derivative(self, f, z):
        return np.where(z > 0, f.param, 1.0).astype(z.dtype)  # α for z > 0, 1 for z ≤ 0: the two swapped


class NextLayerDerivativeInBP2(_RemembersForward):
    """BP2 with the derivative of the next layer's activation: δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f_{l+1}'(z^l),
    the form that typechecks (f'(z^{l+1}) itself has n_{l+1} rows where n_l are needed)."""

    def hidden_error(self, f, z, a, grad_a):
        l = self._layer(self._acts, f)
        return self.activation_backward(self._acts[l + 1], z, a, grad_a)  # f_{l+1}'(z^l) instead of f_l'(z^l)


class UpdateInPlace(Backpropagation):
    def step(self, p, grad, eta):
        p -= eta * grad  # W −= η ∂C/∂W: the caller's array changes
        return p


class MSEGradientWithoutOneOverK(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        if isinstance(cost, losses.MSE):
            return 2.0 * cost.factor * (a_L - y)  # 2·factor·(a − y) instead of 2·factor·(a − y)/K
        return super().output_gradient(cost, a_L, y)


class SigmoidBCEWithoutClamping(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        if isinstance(cost, losses.BinaryCrossEntropy):
            with np.errstate(divide="ignore", invalid="ignore"):
                return cost.factor * (a_L - y) / (a_L * (1.0 - a_L))  # no max(a(1 − a), 1e-12): ±inf, NaN at a = 0, 1
        return super().output_gradient(cost, a_L, y)

    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        if isinstance(cost, losses.BinaryCrossEntropy) and isinstance(f, activations.Sigmoid):
            with np.errstate(invalid="ignore"):
                return self.activation_backward(f, z_L, a_L, grad_a)  # BP1: δ^L = ∇_a C ⊙ σ'(z^L), no a − y shortcut
        return super().output_error(f, cost, z_L, a_L, y, grad_a)


IN_PLACE = r"(update|train_step) modified its inputs? in place"

MISTAKES = [
    Mistake("sign of ∇_a C flipped", "BP1", "∇_a C = y − a instead of a − y", SignFlipped),
    Mistake("f'(z) left out of δ^L", "BP1", "δ^L = ∇_a C without ⊙ f'(z^L)", NoFprimeOutput),
    Mistake("f'(z) left out of a hidden δ", "BP2", "δ^l = (W^{l+1})ᵀ δ^{l+1} without ⊙ f'(z^l)", NoFprimeHidden),
    Mistake(
        "derivative taken at a instead of z",
        "BP1/BP2",
        "f'(a^l), e.g. σ(a)(1 − σ(a)), instead of f'(z^l)",
        DerivativeAtA,
    ),
    Mistake(
        "transpose missing in (W^{l+1})ᵀ δ^{l+1}",
        "BP2",
        "W^{l+1} δ^{l+1} instead of (W^{l+1})ᵀ δ^{l+1}",
        TransposeMissing,
    ),
    Mistake(
        "outer product in BP4 in the wrong order",
        "BP4",
        "a^{l−1} (δ^l)ᵀ instead of δ^l (a^{l−1})ᵀ",
        OuterProductReversed,
    ),
    Mistake(
        "hidden δ computed with already-updated weights",
        "BP2",
        "W^{l+1} updated before δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l) (seed 002's algorithm slide)",
        UpdatedWeightsInBP2,
    ),
    Mistake(
        "1/N of the mini-batch mean forgotten", "update", "w − η Σ_n ∇ instead of w − η/N Σ_n ∇", MeanWithoutOneOverN
    ),
    Mistake("bias gradient not summed over the batch", "BP3", "∂C/∂b from one example's δ only", BiasNotSummed),
    Mistake("bias gradient left out", "BP3", "∂C/∂b = 0: the biases are never updated", BiasGradientLeftOut),
    Mistake("½ of the squared error dropped", "BP1", "∇_a C = 2(a − y) for C = ½Σ(a − y)²", HalfDropped),
    Mistake("½ of the squared error doubled", "BP1", "∇_a C = a − y for C = Σ(a − y)²", HalfDoubled),
    Mistake(
        "softmax differentiated as if elementwise",
        "BP1",
        "f'(z) = a(1 − a) for softmax, ignoring ∂a_j/∂z_k",
        SoftmaxElementwise,
    ),
    Mistake("ReLU'(0) taken as 1", "BP1/BP2", "ReLU'(0) = 1 instead of 0", ReluPrimeAtZeroIsOne),
    Mistake("update added instead of subtracted", "update", "w + η ∂C/∂w instead of w − η ∂C/∂w", UpdateAdded),
    Mistake(
        "BP4 with a^l instead of a^{l−1}",
        "BP4",
        "∂C/∂W^l = δ^l (a^l)ᵀ instead of δ^l (a^{l−1})ᵀ: wrong values where n_l = n_{l−1}, "
        "the wrong shape (n_l, n_l) elsewhere",
        WeightGradientWithOwnActivation,
    ),
    Mistake(
        "tanh' taken as 1 − tanh", "BP1/BP2", "tanh'(z) = 1 − tanh(z) instead of 1 − tanh²(z)", TanhPrimeOneMinusTanh
    ),
    Mistake("σ' taken as σ(1 + σ)", "BP1/BP2", "σ'(z) = σ(z)(1 + σ(z)) instead of σ(z)(1 − σ(z))", SigmoidPrimeOnePlus),
    Mistake(
        "softmax + cross-entropy δ^L = y − a",
        "BP1",
        "δ^L = y − a^L instead of a^L − y for a softmax output with the log-likelihood cost",
        SoftmaxCrossEntropyDeltaFlipped,
    ),
    Mistake(
        "softmax without the max shift",
        "forward",
        "a_j = e^{z_j}/Σ_k e^{z_k} without subtracting max_k z_k: e^z overflows for z ≳ 709.78, giving NaN "
        "(inf/inf) or 0",
        SoftmaxWithoutMaxShift,
    ),
    Mistake(
        "backward loop skips layer 1",
        "BP2",
        "BP2 looped over l = L−1, …, 2 (range(L−1, 1, −1)): ∂C/∂a¹, δ¹, ∂C/∂W¹ and ∂C/∂b¹ stay zero",
        BackwardLoopSkipsLayer1,
    ),
    Mistake(
        "δ averaged over the batch before the outer product",
        "BP4",
        "∂C/∂W^l = N·mean_n(δ^{n,l}) mean_n(a^{n,l−1})ᵀ (× 1/N for the mean) instead of Σ_n δ^{n,l} (a^{n,l−1})ᵀ",
        DeltaAveragedBeforeOuterProduct,
    ),
    Mistake(
        "bias gradient a mean where the loss is a sum",
        "BP3",
        "∂C/∂b^l = (1/N) Σ_n δ^{n,l} for C = Σ_n C_n (reduction sum) instead of Σ_n δ^{n,l}",
        BiasGradientMean,
    ),
    Mistake(
        "leaky ReLU's α on the positive side",
        "BP1/BP2",
        "f'(z) = α for z > 0 and 1 for z ≤ 0 (leaky ReLU, PReLU) instead of 1 and α",
        LeakyReluAlphaSwapped,
    ),
    Mistake(
        "BP2 with f' of layer l+1",
        "BP2",
        "δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f_{l+1}'(z^l): the next layer's activation derivative at z^l "
        "instead of f_l'(z^l)",
        NextLayerDerivativeInBP2,
    ),
    Mistake(
        "update mutating W in place",
        "update",
        "W −= η ∂C/∂W on the given arrays: the values are right, but the caller's parameters change",
        UpdateInPlace,
        symptom=IN_PLACE,
    ),
    Mistake(
        "mean squared error's gradient without 1/K",
        "BP1",
        "∇_a C = 2·factor·(a − y) for the mean squared error instead of 2·factor·(a − y)/K",
        MSEGradientWithoutOneOverK,
    ),
    Mistake(
        "sigmoid + BCE without clamping",
        "BP1",
        "δ^L = ∇_a C ⊙ σ'(z^L) with ∇_a C = (a − y)/(a(1 − a)) unclamped and no δ^L = a − y shortcut: "
        "inf/NaN once σ(z) rounds to 0 or 1 (|z| ≳ 37 in float64)",
        SigmoidBCEWithoutClamping,
    ),
]
CATALOGUE = {m.name: m for m in MISTAKES}  # by name (the names are unique: tested)


def faulty_interface(name):
    """The interface functions (refimpl's) of the catalogued mistake ``name``."""
    variant = CATALOGUE[name].variant()

    def activation_derivative(act_name, z, param=None, axis=0):
        if isinstance(variant, WrongDerivative) and act_name in variant.names:
            return variant.wrong_derivative(activations.get(act_name, param), as_float(z))
        return refimpl.activation_derivative(act_name, z, param, axis)

    def activation(act_name, z, param=None, axis=0):
        if isinstance(variant, WrongActivation):
            return variant.activation(act_name, param).value(z, axis)
        return refimpl.activation(act_name, z, param, axis)

    def forward(W, b, f, x, convention="column"):
        if not isinstance(variant, WrongActivation):
            return refimpl.forward(W, b, f, x, convention)
        z, a = variant.forward_col(W, b, f, x, convention)
        return (
            {l: from_column(v, convention) for l, v in z.items()},
            {l: from_column(v, convention) for l, v in a.items()},
        )

    def loss_gradient(loss_name, a, y, factor=1.0, axis=0):
        a = as_float(a)
        y = np.broadcast_to(as_float(y), a.shape)
        cost = losses.get(loss_name, factor)  # the variant's ∇_a C, with the feature axis moved to 0
        g = variant.output_gradient(cost, np.moveaxis(a, axis, 0), np.moveaxis(y, axis, 0))
        return np.moveaxis(g, 0, axis)

    return {
        "activation": activation,
        "activation_derivative": activation_derivative,
        "loss": refimpl.loss,
        "loss_gradient": loss_gradient,
        "forward": forward,
        "backward": variant.backward,
        "update": variant.update,
        "train_step": variant.train_step,
        "graph": refimpl.graph,
        "jacobian": refimpl.jacobian,
    }


class MistakeEngine:
    """A catalogued mistake as an engine (used by the diagnosis)."""

    def __init__(self, name):
        self.name = name
        self.mistake = CATALOGUE[name]
        for key, fn in faulty_interface(name).items():
            setattr(self, key, fn)
