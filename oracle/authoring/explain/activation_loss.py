"""Activation and loss cases, and the activation/loss steps that network cases reuse."""

from __future__ import annotations


import numpy as np


from oracle.authoring.explain.common import (
    act_prime,
    act_symbol,
    unknown,
    call,
    EMPTY,
    _exact,
    frac,
    JUX,
    M,
    MINUS,
    ODOT,
    ONE,
    paren,
)


# --------------------------------------------------------------- activations and losses (shared)

# the names these steps know how to write; any other name is an error, never a guess
ELEMENTWISE_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "identity", "swish")
LOSSES = ("squared_error", "mse", "mae", "binary_cross_entropy", "cross_entropy")


def _activation_value(w, act, a_sym, z_sym, z, a, q, z_given=False):
    """a = f(z) = f(numbers) = result."""
    name, _ = act
    z_m = w.num(z, given=z_given)
    if name == "identity":
        w.eq(a_sym, z_sym, w.num(a), q=q)
    elif name == "relu":
        w.eq(a_sym, call(act_symbol(name), z_sym), M("max(0, ", r"\max(0, ") + z_m + ")", w.num(a), q=q)
    else:
        w.eq(a_sym, call(act_symbol(name), z_sym), call(act_symbol(name), z_m), w.num(a), q=q)


def _activation_derivative(w, act, fp_sym, z_sym, a_sym, z, a, fp, q):
    """f'(z) = its rule = numbers = result (elementwise activations)."""
    name, param = act

    def one_minus(m):
        return paren(ONE + MINUS + m)

    if name == "sigmoid":
        rule = w.product((a_sym, a), (one_minus(a_sym), a), elementwise=True)
        subst = w.product((w.num(a), a), (one_minus(w.num(a, lead=False)), a), elementwise=True)
        w.eq(fp_sym, rule, subst, w.num(fp), q=q)
    elif name == "tanh":
        square = a_sym + M("²", "^{2}") if w.is_scalar(a) else a_sym + ODOT + a_sym
        w.eq(fp_sym, ONE + MINUS + square, w.num(fp), q=q)
    elif name == "relu":
        w.eq(fp_sym, M("[", "[") + z_sym + M(" > 0]", " > 0]"), w.num(fp), q=q)
        w.para("ReLU'(z) is 1 where z > 0 and 0 elsewhere (ReLU'(0) = 0, as in PyTorch).")
    elif name in ("leaky_relu", "prelu"):
        alpha = param if param is not None else (0.01 if name == "leaky_relu" else 0.25)
        w.eq(fp_sym, w.num(fp), q=q)
        w.para(f"{act_symbol(name).text}'(z) is 1 where z > 0 and α = {_exact(alpha).text} elsewhere.")
    elif name == "identity":
        w.eq(fp_sym, ONE, w.num(fp), q=q)
    elif name == "swish":
        rule = M("σ(βz) + βz σ(βz)(1 − σ(βz))", r"\sigma(\beta z) + \beta z\,\sigma(\beta z)(1 - \sigma(\beta z))")
        w.eq(fp_sym, rule, w.num(fp), q=q)
    else:
        raise unknown("activation", name, ELEMENTWISE_ACTIVATIONS)


def _coefficient(w, c):
    """A loss's constant factor as written before its sum: ½, nothing for 1, else the number."""
    if c == 0.5:
        return M("½", r"\frac{1}{2}")
    if c == 1:
        return EMPTY
    return _exact(c) + JUX


def _loss_value(w, loss, a_sym, y_sym, a, y, per_example_scalar, a_given=False):
    """(C_n as a formula, the formula with numbers or None)."""
    name, c, _ = loss
    diff = a_sym + MINUS + y_sym
    if name == "squared_error":
        if per_example_scalar:
            numbers = w.num(a, given=a_given) + MINUS + w.given(y, lead=False)
            return (
                _coefficient(w, c) + paren(diff) + M("²", "^{2}"),
                _coefficient(w, c) + paren(numbers) + M("²", "^{2}"),
            )
        return _coefficient(w, c) + M("‖", r"\lVert ") + diff + M("‖²", r"\rVert^{2}"), None
    if name == "mse":
        return _coefficient(w, c) + M("(1/K) ‖", r"\frac{1}{K}\lVert ") + diff + M("‖²", r"\rVert^{2}"), None
    if name == "mae":
        return _coefficient(w, c) + M("(1/K) Σⱼ |", r"\frac{1}{K}\sum_j \lvert ") + diff + M("|", r"\rvert"), None
    if name == "binary_cross_entropy":
        terms = M("Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)]", r"\sum_j \left[y_j \ln a_j + (1 - y_j)\ln(1 - a_j)\right]")
        return M("−", "-") + _coefficient(w, c) + terms, None
    if name == "cross_entropy":
        return M("−", "-") + _coefficient(w, c) + M("Σⱼ yⱼ ln aⱼ", r"\sum_j y_j \ln a_j"), None
    raise unknown("loss", name, LOSSES)


def _loss_gradient(w, loss, a_sym, y_sym, a, y, n_features, a_given=False):
    """(∇_a C_n as a formula, with numbers or None, whether it needs parentheses as a factor)."""
    name, c, _ = loss
    diff = a_sym + MINUS + y_sym
    diff_num = w.num(a, given=a_given) + MINUS + w.given(y, lead=False)
    if name in ("squared_error", "mse"):
        scale = 2 * c / (n_features if name == "mse" else 1)
        if scale == 1:
            return diff, diff_num, True
        if name == "squared_error":
            coef = _exact(scale)
        else:
            coef = frac(f"2·{_exact(c).text}", n_features, f"2 \\cdot {_exact(c).tex}")
        return coef + paren(diff), coef + paren(diff_num), False
    if name == "mae":
        return frac(_exact(c).text, n_features) + M(" sign", r"\operatorname{sign}") + paren(diff), None, False
    if name == "binary_cross_entropy":
        return (
            _coefficient(w, c)
            + M(
                f"({diff.text}) / ({a_sym.text} ⊙ (1 − {a_sym.text}))",
                rf"\frac{{{diff.tex}}}{{{a_sym.tex} \odot (1 - {a_sym.tex})}}",
            ),
            None,
            True,
        )
    if name == "cross_entropy":
        ratio = M(f"{y_sym.text} / {a_sym.text}", rf"\frac{{{y_sym.tex}}}{{{a_sym.tex}}}")
        return M("−", "-") + _coefficient(w, c) + ratio, None, True
    raise unknown("loss", name, LOSSES)


# --------------------------------------------------------------- activation, loss, jacobian


def _activation(w):
    (name, param), z = w.case.given["activation"], w.case.given["z"]
    w.heading(2, "Given")
    act = act_symbol(name)
    extra = f" (param {_exact(param).text})" if param is not None else ""
    w.rows(
        [[M("z", "z"), w.given(z)], [M("f", "f"), act + M(extra, r"\text{" + extra + "}" if extra else "")]],
        inline=True,
    )
    w.heading(2, "Activation")
    z_sym, a_sym = M("z", "z"), M("a", "a")
    a = w.value("a")
    if name in ("softmax", "log_softmax"):
        rule = (
            M("exp(zⱼ) / Σₖ exp(zₖ)", r"\frac{e^{z_j}}{\sum_k e^{z_k}}")
            if name == "softmax"
            else M("zⱼ − ln Σₖ exp(zₖ)", r"z_j - \ln \sum_k e^{z_k}")
        )
        w.eq(a_sym, call(act, z_sym), rule, call(act, w.given(z)), w.num(a), q="a")
        axis = "each column" if w.column else "each row"
        if np.ndim(z) == 2:
            w.para(f"{name} is taken over {axis} (the feature axis of the {w.case.convention} convention).")
        return
    _activation_value(w, (name, param), a_sym, z_sym, z, a, "a", z_given=True)
    w.heading(2, "Derivative")
    _activation_derivative(w, (name, param), act_prime(name, z_sym), z_sym, a_sym, z, a, w.value("f'(z)"), "f'(z)")


def _loss(w):
    (name, factor, reduction), a, y = w.case.given["loss"], w.case.given["a"], w.case.given["y"]
    a_sym, y_sym = M("a", "a"), M("y", "y")
    w.heading(2, "Given")
    w.rows([[a_sym, w.given(a)], [y_sym, w.given(y)]], inline=True)
    N = 1 if np.ndim(a) < 2 else np.shape(a)[1 if w.column else 0]  # examples
    K = 1 if np.ndim(a) == 0 else np.shape(a)[0 if w.column else -1]  # features of one example
    w.para(
        f"Loss {name} with factor {_exact(factor).text}, reduction {reduction}"
        + (f", over N = {N} examples." if N > 1 else ".")
    )
    w.heading(2, "Cost")
    formula, subst = _loss_value(w, (name, factor, reduction), a_sym, y_sym, a, y, np.size(a) == 1, a_given=True)
    C = w.value("C")
    if N > 1:
        w.rows([[M("Cₙ", "C_n"), formula]], inline=True)
        scale = frac(1, N) + JUX if reduction == "mean" else EMPTY
        w.eq(M("C", "C"), scale + M("Σₙ Cₙ", r"\sum_n C_n"), w.num(C), q="C")
    else:
        w.eq(M("C", "C"), formula, subst, w.num(C), q="C")
    w.heading(2, "Gradient")
    g_formula, g_subst, _ = _loss_gradient(w, (name, factor, reduction), a_sym, y_sym, a, y, K, a_given=True)
    w.eq(M("∂Cₙ/∂a", r"\frac{\partial C_n}{\partial a}"), g_formula, g_subst, w.num(w.value("dC/da")), q="dC/da")
