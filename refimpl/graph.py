"""Scalar computational graphs, backpropagated gate by gate (lecture 001: f = (x + y)·z).

A program is a list of assignments (name, expression); the last one is the
output f. Expressions arrive already parsed, as nested tuples:
("num", v), ("var", name), ("neg", u), ("add"|"sub"|"mul"|"div"|"pow", u, v),
("call", function, u) with function exp, log or an elementwise activation.

Each gate computes its output on the forward pass and, on the backward pass,
multiplies the gradient arriving from above (grad_output) by its local
gradient (the chain rule), adding into each input's gradient so that a value
used by several gates collects the sum of their contributions.
"""

from __future__ import annotations

import math

from . import activations


class Value:
    """One wire of the graph: its value on the forward pass, ∂f/∂(this) after backward."""

    def __init__(self, data, parents=(), gate=""):
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents
        self._backward = lambda: None
        self.gate = gate

    def __add__(self, other):
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad  # ∂(u+v)/∂u = 1
            other.grad += out.grad  # ∂(u+v)/∂v = 1

        out._backward = _backward
        return out

    def __sub__(self, other):
        out = Value(self.data - other.data, (self, other), "−")

        def _backward():
            self.grad += out.grad  # ∂(u−v)/∂u = 1
            other.grad -= out.grad  # ∂(u−v)/∂v = −1

        out._backward = _backward
        return out

    def __mul__(self, other):
        out = Value(self.data * other.data, (self, other), "·")

        def _backward():
            self.grad += other.data * out.grad  # ∂(uv)/∂u = v
            other.grad += self.data * out.grad  # ∂(uv)/∂v = u

        out._backward = _backward
        return out

    def __truediv__(self, other):
        out = Value(self.data / other.data, (self, other), "÷")

        def _backward():
            self.grad += out.grad / other.data  # ∂(u/v)/∂u = 1/v
            other.grad -= self.data / other.data**2 * out.grad  # ∂(u/v)/∂v = −u/v²

        out._backward = _backward
        return out

    def __pow__(self, other):
        out = Value(self.data**other.data, (self, other), "^")

        def _backward():
            self.grad += other.data * self.data ** (other.data - 1) * out.grad  # ∂(u^v)/∂u = v u^{v−1}
            if other._parents or other.gate != "const":
                # ∂(u^v)/∂v = u^v ln u (only where u > 0)
                other.grad += (out.data * math.log(self.data) if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    def __neg__(self):
        out = Value(-self.data, (self,), "neg")

        def _backward():
            self.grad -= out.grad  # ∂(−u)/∂u = −1

        out._backward = _backward
        return out

    def apply(self, name):
        """A one-input gate: exp, log or an elementwise activation."""
        if name == "exp":
            value, local = math.exp(self.data), math.exp(self.data)  # (e^u)' = e^u
        elif name == "log":
            value, local = math.log(self.data), 1.0 / self.data  # (ln u)' = 1/u
        else:
            f = activations.get(name)
            if not f.elementwise:
                raise ValueError(f"{name} is not a scalar function")
            value, local = float(f.value(self.data)), float(f.derivative(self.data))
        out = Value(value, (self,), name)

        def _backward():
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def backward(self):
        """∂self/∂v for every v upstream, in reverse topological order."""
        order, seen = [], set()

        def visit(v):
            if id(v) not in seen:
                seen.add(id(v))
                for p in v._parents:
                    visit(p)
                order.append(v)

        visit(self)
        self.grad = 1.0  # ∂f/∂f = 1
        for v in reversed(order):
            v._backward()


_BINARY = {
    "add": Value.__add__,
    "sub": Value.__sub__,
    "mul": Value.__mul__,
    "div": Value.__truediv__,
    "pow": Value.__pow__,
}


def _build(expr, env):
    kind = expr[0]
    if kind == "num":
        return Value(expr[1], gate="const")
    if kind == "var":
        return env[expr[1]]
    if kind == "neg":
        return -_build(expr[1], env)
    if kind == "call":
        return _build(expr[2], env).apply(expr[1])
    return _BINARY[kind](_build(expr[1], env), _build(expr[2], env))


def graph(program, inputs, offsets=None):
    """Evaluate a scalar program and backpropagate its output f.

    program: [(name, expression), ...], the last assignment is f.
    inputs: {name: value}. offsets: {name: Δ} added to an input or to a node's
    value (the lectures' "Δq = 1" rows).
    Returns (values, grads): each input and node's value, and ∂f/∂(it).
    """
    offsets = offsets or {}
    env = {k: Value(float(v) + offsets.get(k, 0.0)) for k, v in inputs.items()}
    nodes = {}
    for name, expr in program:
        v = _build(expr, env)
        if name in offsets:
            v = v + Value(offsets[name], gate="const")  # node value shifted by Δ
        env[name] = nodes[name] = v
    out = env[program[-1][0]]
    out.backward()
    values = {k: v.data for k, v in env.items()}
    grads = {k: v.grad for k, v in env.items()}
    return values, grads
