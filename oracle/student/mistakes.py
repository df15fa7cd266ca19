"""A catalogue of common backpropagation mistakes, each a faulty variant of the reference.

Every mistake is defined once: a subclass of refimpl's Backpropagation that
overrides the one step where the mistake happens (or a faulty activation /
loss gradient). ``faulty_interface(name)`` gives the interface functions of
that variant, so a mistake can be run like any implementation — as the
diagnosis does, to recognise a student's wrong value, and as the tests do,
through ``--impl``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import refimpl
from refimpl import activations, losses
from refimpl.network import Backpropagation, _back, _col


@dataclass(frozen=True)
class Mistake:
    name: str
    equation: str        # the equation it breaks, as the lectures label it
    description: str     # what the faulty code does
    variant: type        # the faulty Backpropagation subclass


class SignFlipped(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        return -cost.gradient(a_L, y, axis=0)                       # y − a instead of a − y


class NoFprimeOutput(Backpropagation):
    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        return grad_a                                               # δ^L = ∇_a C, f'(z^L) left out


class NoFprimeHidden(Backpropagation):
    def hidden_error(self, f, z, a, grad_a):
        return grad_a                                               # δ^l = (W^{l+1})ᵀ δ^{l+1}, f'(z^l) left out


class DerivativeAtA(Backpropagation):
    def activation_backward(self, f, z, a, grad_a):
        return f.backward(a, grad_a, axis=0)                        # f'(a) instead of f'(z): σ(a)(1 − σ(a))


class TransposeMissing(Backpropagation):
    def backpropagate(self, W_next, delta_next):
        return W_next @ delta_next                                  # W^{l+1} δ^{l+1}, no transpose


class OuterProductReversed(Backpropagation):
    def weight_gradient(self, delta, a_prev, scale):
        return scale * a_prev @ delta.T                             # a^{l−1} (δ^l)ᵀ: the transpose of BP4


class UpdatedWeightsInBP2(Backpropagation):
    """Seed 002's algorithm slide: update W^{l+1} first, then backpropagate through it."""

    def train_step(self, W, b, f, x, y, loss, eta, frozen=(), convention="column"):
        z, a, y, L, cost, scale, acts = self.prepare(W, b, f, x, y, loss, convention)
        W_new = {l: _col(w, convention).astype(float) for l, w in W.items()}
        b_new = {l: None if v is None else np.array(v, dtype=float) for l, v in b.items()}
        delta = self.output_error(acts[L], cost, z[L], a[L], y, self.output_gradient(cost, a[L], y))
        for l in range(L, 0, -1):
            if f"W{l}" not in frozen:
                W_new[l] = self.step(W_new[l], self.weight_gradient(delta, a[l - 1], scale), eta)
            if b_new[l] is not None and f"b{l}" not in frozen:
                b_new[l] = self.step(b_new[l], self.bias_gradient(delta, scale).reshape(b_new[l].shape), eta)
            if l > 1:   # δ^{l−1} through the already updated W^l
                delta = self.hidden_error(acts[l - 1], z[l - 1], a[l - 1], self.backpropagate(W_new[l], delta))
        return {l: _back(w, convention) for l, w in W_new.items()}, b_new


class MeanWithoutOneOverN(Backpropagation):
    def batch_scale(self, N, reduction):
        return 1.0                                                  # Σ_n where (1/N) Σ_n is meant


class BiasNotSummed(Backpropagation):
    def bias_gradient(self, delta, scale):
        return scale * delta[:, 0]                                  # the first example's δ only


class BiasGradientLeftOut(Backpropagation):
    def bias_gradient(self, delta, scale):
        return np.zeros(delta.shape[0])                             # ∂C/∂b = 0: biases never learn


SQUARED = (losses.SquaredError, losses.MSE)


class HalfDropped(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        g = cost.gradient(a_L, y, axis=0)
        return 2.0 * g if isinstance(cost, SQUARED) else g          # d/da of Σ(a − y)² where C = ½Σ(a − y)²


class HalfDoubled(Backpropagation):
    def output_gradient(self, cost, a_L, y):
        g = cost.gradient(a_L, y, axis=0)
        return 0.5 * g if isinstance(cost, SQUARED) else g          # a − y where C = Σ(a − y)²


class SoftmaxElementwise(Backpropagation):
    def activation_backward(self, f, z, a, grad_a):
        if isinstance(f, activations.Softmax):
            s = f.value(z, axis=0)
            return grad_a * s * (1.0 - s)                           # diag of the Jacobian only
        return f.backward(z, grad_a, axis=0)

    def output_error(self, f, cost, z_L, a_L, y, grad_a):
        return self.activation_backward(f, z_L, a_L, grad_a)       # no a − y shortcut either


class ReluPrimeAtZeroIsOne(Backpropagation):
    def activation_backward(self, f, z, a, grad_a):
        if type(f) is activations.ReLU:
            return grad_a * (z >= 0)                                # ReLU'(0) = 1
        return f.backward(z, grad_a, axis=0)


class UpdateAdded(Backpropagation):
    def step(self, p, grad, eta):
        return p + eta * grad                                       # ascent: w + η ∂C/∂w


CATALOGUE = {m.name: m for m in [
    Mistake("sign of ∇_a C flipped", "BP1", "∇_a C = y − a instead of a − y", SignFlipped),
    Mistake("f'(z) left out of δ^L", "BP1", "δ^L = ∇_a C without ⊙ f'(z^L)", NoFprimeOutput),
    Mistake("f'(z) left out of a hidden δ", "BP2", "δ^l = (W^{l+1})ᵀ δ^{l+1} without ⊙ f'(z^l)", NoFprimeHidden),
    Mistake("derivative taken at a instead of z", "BP1/BP2", "f'(a^l), e.g. σ(a)(1 − σ(a)), instead of f'(z^l)",
            DerivativeAtA),
    Mistake("transpose missing in (W^{l+1})ᵀ δ^{l+1}", "BP2", "W^{l+1} δ^{l+1} instead of (W^{l+1})ᵀ δ^{l+1}",
            TransposeMissing),
    Mistake("outer product in BP4 in the wrong order", "BP4", "a^{l−1} (δ^l)ᵀ instead of δ^l (a^{l−1})ᵀ",
            OuterProductReversed),
    Mistake("hidden δ computed with already-updated weights", "BP2",
            "W^{l+1} updated before δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ f'(z^l) (seed 002's algorithm slide)",
            UpdatedWeightsInBP2),
    Mistake("1/N of the mini-batch mean forgotten", "update", "w − η Σ_n ∇ instead of w − η/N Σ_n ∇",
            MeanWithoutOneOverN),
    Mistake("bias gradient not summed over the batch", "BP3", "∂C/∂b from one example's δ only", BiasNotSummed),
    Mistake("bias gradient left out", "BP3", "∂C/∂b = 0: the biases are never updated", BiasGradientLeftOut),
    Mistake("½ of the squared error dropped", "BP1", "∇_a C = 2(a − y) for C = ½Σ(a − y)²", HalfDropped),
    Mistake("½ of the squared error doubled", "BP1", "∇_a C = a − y for C = Σ(a − y)²", HalfDoubled),
    Mistake("softmax differentiated as if elementwise", "BP1", "f'(z) = a(1 − a) for softmax, ignoring ∂a_j/∂z_k",
            SoftmaxElementwise),
    Mistake("ReLU'(0) taken as 1", "BP1/BP2", "ReLU'(0) = 1 instead of 0", ReluPrimeAtZeroIsOne),
    Mistake("update added instead of subtracted", "update", "w + η ∂C/∂w instead of w − η ∂C/∂w", UpdateAdded),
]}


class _Activations:
    """Activation functions and derivatives of a faulty variant (for f'(z) quantities)."""

    def __init__(self, variant):
        self.variant = variant

    def derivative(self, name, z, param=None, axis=0):
        if self.variant is ReluPrimeAtZeroIsOne and name == "relu":
            return (np.asarray(z) >= 0).astype(float)
        if self.variant is DerivativeAtA:
            a = refimpl.activation(name, z, param, axis)
            return refimpl.activation_derivative(name, a, param, axis)
        return refimpl.activation_derivative(name, z, param, axis)


def faulty_interface(name):
    """The interface functions (refimpl's) of the catalogued mistake ``name``."""
    variant = CATALOGUE[name].variant()
    derivative = _Activations(type(variant)).derivative

    def loss_gradient(loss_name, a, y, factor=1.0, axis=0):
        cost = losses.get(loss_name, factor)
        return variant.output_gradient(cost, np.asarray(a, dtype=float), np.asarray(y, dtype=float))

    return {
        "activation": refimpl.activation, "activation_derivative": derivative, "loss": refimpl.loss,
        "loss_gradient": loss_gradient, "forward": refimpl.forward, "backward": variant.backward,
        "update": variant.update, "train_step": variant.train_step, "graph": refimpl.graph,
        "jacobian": refimpl.jacobian,
    }


class MistakeEngine:
    """A catalogued mistake as an engine (used by the diagnosis)."""

    def __init__(self, name):
        self.name = name
        self.mistake = CATALOGUE[name]
        for key, fn in faulty_interface(name).items():
            setattr(self, key, fn)
