"""The torch oracle: every quantity of refimpl's interface, with every derivative from autograd.

Written independently of refimpl (this module never imports it): forward
passes are PyTorch expressions in float64, computed natively in each
convention (z = W a + b with examples as columns, or h = x W + b with
examples as rows), and every derivative — f'(z), ∇_a C, δ, ∂C/∂W, ∂C/∂b,
graph gradients, Jacobians — is obtained with torch.autograd, never from a
hand-written derivative formula.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

name = "torch"
complete = True  # a reference engine: gives every quantity of the interface
DTYPE = torch.float64
tolerance = (1e-10, 1e-12)  # (rtol, atol): float64 autograd, agreement with an exact computation
# the parameters an activation takes when a case gives none (equal to refimpl.DEFAULT_PARAM, which
# this module does not import: tests/test_rules_once.py)
DEFAULT_PARAM = {"leaky_relu": 0.01, "prelu": 0.25, "swish": 1.0}
ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "swish", "softmax", "log_softmax")
LOSSES = ("squared_error", "mse", "mae", "binary_cross_entropy", "cross_entropy")  # the names _f and
# _per_example know, as refimpl's registries list them


def threads(n):
    """Set PyTorch's intra-op thread count to n; return the previous count (to restore it)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


def _t(x, grad=False):
    """A tensor of float64, or float32 when given float32 (the float32 mode)."""
    x = np.asarray(x)
    dtype = torch.float32 if x.dtype == np.float32 else DTYPE
    t = torch.tensor(x.astype(np.float64) if dtype is DTYPE else x, dtype=dtype)
    return t.requires_grad_(grad)


def _np(t):
    return None if t is None else t.detach().numpy().copy()


def _f(name, z, param, axis):
    """The forward expression of each activation (autograd differentiates it)."""
    if name == "identity":
        return z * 1.0
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "relu":
        return torch.relu(z)
    if param is None:
        param = DEFAULT_PARAM.get(name)
    if name == "leaky_relu":
        return F.leaky_relu(z, param)
    if name == "prelu":
        return F.prelu(z, torch.tensor([param], dtype=z.dtype))
    if name == "swish":
        return z * torch.sigmoid(param * z)
    if name == "softmax":
        return torch.softmax(z, dim=axis)
    if name == "log_softmax":
        return torch.log_softmax(z, dim=axis)
    raise ValueError(f"unknown activation {name!r}")


def _per_example(name, a, y, factor, axis):
    """C_n for each example (the feature axis summed out), as refimpl.losses defines them."""
    if name == "squared_error":
        return factor * ((a - y) ** 2).sum(dim=axis)
    if name == "mse":
        return factor * F.mse_loss(a, y, reduction="none").mean(dim=axis)
    if name == "mae":
        return factor * F.l1_loss(a, y, reduction="none").mean(dim=axis)
    if name == "binary_cross_entropy":
        return factor * F.binary_cross_entropy(a, y, reduction="none").sum(dim=axis)
    if name == "cross_entropy":
        return -factor * (y * torch.clamp(torch.log(a), min=-100.0)).sum(dim=axis)
    raise ValueError(f"unknown loss {name!r}")


def _per_example_from_logits(name, output, z_L, a_L, y, factor, axis):
    """C_n as PyTorch computes it stably: from the logits z^L for sigmoid + binary cross-entropy
    (binary_cross_entropy_with_logits) and softmax + cross-entropy (log_softmax); else from a^L."""
    if name == "binary_cross_entropy" and output == "sigmoid":
        return factor * F.binary_cross_entropy_with_logits(z_L, y, reduction="none").sum(dim=axis)
    if name == "cross_entropy" and output == "softmax":
        return -factor * (y * torch.log_softmax(z_L, dim=axis)).sum(dim=axis)
    return _per_example(name, a_L, y, factor, axis)


def _reduce(c, reduction):
    return c.sum() if reduction == "sum" else c.mean()


def activation(name, z, param=None, axis=0):
    return _np(_f(name, _t(z), param, axis))


def activation_derivative(name, z, param=None, axis=0):
    if name in ("softmax", "log_softmax"):
        raise NotImplementedError(f"{name} is not elementwise")
    z = _t(z, grad=True)
    (g,) = torch.autograd.grad(_f(name, z, param, axis).sum(), z)  # elementwise: Σ a_j → f'(z_j)
    return _np(g)


def loss(name, a, y, factor=1.0, reduction="mean", axis=0):
    a, y = _t(a), _t(y)
    return float(_reduce(torch.atleast_1d(_per_example(name, a, y, factor, axis)), reduction))


def loss_gradient(name, a, y, factor=1.0, axis=0):
    a, y = _t(a, grad=True), _t(y)
    (g,) = torch.autograd.grad(_per_example(name, a, y, factor, axis).sum(), a)  # ∂(Σ_n C_n)/∂a = ∂C_n/∂a
    return _np(g)


def _as_batch(x, convention):
    x = _t(x)
    if x.dim() == 1:
        x = x[:, None] if convention == "column" else x[None, :]
    return x


def _forward(W, b, f, x, convention):
    axis = 0 if convention == "column" else 1
    z, a = {}, {0: _as_batch(x, convention)}
    for l in sorted(W):
        if convention == "column":
            z[l] = W[l] @ a[l - 1]
            if b[l] is not None:
                z[l] = z[l] + b[l].reshape(-1, 1)
        else:
            z[l] = a[l - 1] @ W[l]
            if b[l] is not None:
                z[l] = z[l] + b[l].reshape(1, -1)
        a[l] = _f(f[l][0], z[l], f[l][1], axis)
    return z, a


def forward(W, b, f, x, convention="column"):
    W = {l: _t(w) for l, w in W.items()}
    b = {l: None if v is None else _t(v) for l, v in b.items()}
    z, a = _forward(W, b, f, x, convention)
    return {l: _np(v) for l, v in z.items()}, {l: _np(v) for l, v in a.items()}


def backward(W, b, f, x, y, loss, convention="column"):
    name_, factor, reduction = loss
    axis = 0 if convention == "column" else 1
    W = {l: _t(w, grad=True) for l, w in W.items()}
    b = {l: None if v is None else _t(v, grad=True) for l, v in b.items()}
    z, a = _forward(W, b, f, x, convention)
    L = max(W)
    y = _as_batch(y, convention)
    per_example = torch.atleast_1d(_per_example_from_logits(name_, f[L][0], z[L], a[L], y, factor, axis))
    C = _reduce(per_example, reduction)
    layers = sorted(W)
    # δ^{n,l} = ∂C_n/∂z^{n,l} and ∂C_n/∂a^{n,l}: gradients of Σ_n C_n (examples are independent)
    grads = torch.autograd.grad(
        per_example.sum(), [z[l] for l in layers] + [a[l] for l in layers[:-1]], retain_graph=True
    )
    delta = dict(zip(layers, grads[: len(layers)]))
    dC_da = dict(zip(layers[:-1], grads[len(layers) :]))
    a_L = a[L].detach().requires_grad_(True)  # ∇_a C of the loss as a function of a^L
    (dC_da[L],) = torch.autograd.grad(_per_example(name_, a_L, y, factor, axis).sum(), a_L)
    params = [W[l] for l in layers] + [b[l] for l in layers if b[l] is not None]
    pgrads = iter(torch.autograd.grad(C, params))
    dC_dW = {l: next(pgrads) for l in layers}
    dC_db = {l: None if b[l] is None else next(pgrads) for l in layers}
    return {
        "dC/da": {l: _np(v) for l, v in dC_da.items()},
        "delta": {l: _np(v) for l, v in delta.items()},
        "dC/dW": {l: _np(v) for l, v in dC_dW.items()},
        "dC/db": {l: _np(v) for l, v in dC_db.items()},
    }


def update(W, b, dC_dW, dC_db, eta, frozen=()):
    with torch.no_grad():
        W_new = {l: _np(_t(w) if f"W{l}" in frozen else _t(w) - eta * _t(dC_dW[l])) for l, w in W.items()}
        b_new = {
            l: None if v is None else _np(_t(v) if f"b{l}" in frozen else _t(v) - eta * _t(dC_db[l]))
            for l, v in b.items()
        }
    return W_new, b_new


def train_step(W, b, f, x, y, loss, eta, frozen=(), convention="column"):
    grads = backward(W, b, f, x, y, loss, convention)
    return update(W, b, grads["dC/dW"], grads["dC/db"], eta, frozen)


_BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow}


def _eval(expr, env):
    kind = expr[0]
    if kind == "num":
        return torch.tensor(float(expr[1]), dtype=DTYPE)
    if kind == "var":
        return env[expr[1]]
    if kind == "neg":
        return -_eval(expr[1], env)
    if kind == "call":
        u = _eval(expr[2], env)
        if expr[1] == "exp":
            return torch.exp(u)
        if expr[1] == "log":
            return torch.log(u)
        if expr[1] in ("softmax", "log_softmax"):
            raise ValueError(f"{expr[1]} is not a scalar function")
        return _f(expr[1], u, None, 0)
    return _BINARY[kind](_eval(expr[1], env), _eval(expr[2], env))


def graph(program, inputs, offsets=None):
    offsets = offsets or {}
    env = {k: torch.tensor(float(v) + offsets.get(k, 0.0), dtype=DTYPE, requires_grad=True) for k, v in inputs.items()}
    for node, expr in program:
        v = _eval(expr, env)
        if node in offsets:
            v = v + offsets[node]
        if not v.requires_grad:  # a constant node: still report ∂f/∂(it)
            v = v.detach().requires_grad_(True)
        v.retain_grad()
        env[node] = v
    out = env[program[-1][0]]
    names = list(env)
    grads = torch.autograd.grad(out, [env[k] for k in names], allow_unused=True)
    values = {k: float(env[k].detach()) for k in names}
    return values, {k: 0.0 if g is None else float(g) for k, g in zip(names, grads)}


def jacobian(W, b, x, convention="column"):
    W, x = _t(W), _t(x).reshape(-1)
    b = None if b is None else _t(b).reshape(-1)

    def affine(W_, x_):
        z = W_ @ x_ if convention == "column" else x_ @ W_
        return z if b is None else z + b

    dz_dx = torch.autograd.functional.jacobian(lambda x_: affine(W, x_), x)
    dz_dW = torch.autograd.functional.jacobian(lambda W_: affine(W_, x), W)
    return {"dz/dx": _np(dz_dx), "dz/dW": _np(dz_dW)}
