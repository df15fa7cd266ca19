"""Network cases, in the column (lecture 001) or row notation: forward, cost, backward, update."""

from __future__ import annotations


import numpy as np


from oracle.verdict.cases import given_bindings
from oracle.authoring.explain.activation_loss import (
    _activation_derivative,
    _activation_value,
    _coefficient,
    _loss_gradient,
    _loss_value,
)
from oracle.authoring.explain.common import (
    act_prime,
    act_symbol,
    call,
    EMPTY,
    _exact,
    frac,
    JUX,
    M,
    MINUS,
    ODOT,
    paren,
    partial,
    PLUS,
    sym,
    TRANSPOSE,
)


# --------------------------------------------------------------- network notation


class ColumnNotation:
    """Lecture 001: z^l = W^l a^{l−1} + b^l, examples as columns, cost C."""

    convention = "column"
    cost = M("C", "C")

    def z(self, l):
        return sym("z", l)

    def grad_a(self, l, last):
        return M("∇ₐC", r"\nabla_{a} C") if last else partial(self.cost, sym("a", l))

    def affine(self, l, bias):
        out = sym("W", l) + JUX + sym("a", l - 1)
        return out + PLUS + sym("b", l) if bias else out

    def weighted(self, w, W, a):
        """W a with numbers: W and a are (notation, value) pairs."""
        return w.product(W, a)

    def terms(self, W, a):
        """The products W_ji a_i of each unit j (one example)."""
        return [[W[j, i] * a[i, 0] for i in range(W.shape[1])] for j in range(W.shape[0])]

    def backprop(self, l):
        return paren(sym("W", l + 1)) + TRANSPOSE + JUX + sym("δ", l + 1, tex=r"\delta")

    def backprop_numbers(self, w, W, delta):
        """(W^{l+1})ᵀ δ^{l+1} with numbers: W (written transposed) and δ are (notation, value) pairs."""
        return w.product(W, delta)

    def weight_gradient(self, l, per_example=False):
        if per_example:
            return sym("δ", f"n,{l}", tex=r"\delta") + JUX + paren(sym("a", f"n,{l - 1}")) + TRANSPOSE
        return sym("δ", l, tex=r"\delta") + JUX + paren(sym("a", l - 1)) + TRANSPOSE

    def weight_gradient_numbers(self, w, delta, a):
        """δ^l (a^{l−1})ᵀ with numbers: δ and a (written transposed) are (notation, value) pairs."""
        return w.product(delta, a)

    def describe(self):
        return [
            "Column convention (lecture 001): ",
            M("zˡ = Wˡaˡ⁻¹ + bˡ", "z^{l} = W^{l} a^{l-1} + b^{l}"),
            ", ",
            M("aˡ = f(zˡ)", "a^{l} = f(z^{l})"),
            ", ",
            M("a⁰ = x", "a^{0} = x"),
            "; Wˡ has one row per unit of layer l, examples are columns.",
        ]


class RowNotation(ColumnNotation):
    """Lectures 000 and 004: h^l = a^{l−1} W^l + b^l, examples as rows, error E."""

    convention = "row"
    cost = M("E", "E")

    def z(self, l):
        return sym("h", l)

    def grad_a(self, l, last):
        return partial(self.cost, sym("a", l))

    def affine(self, l, bias):
        out = sym("a", l - 1) + JUX + sym("W", l)
        return out + PLUS + sym("b", l) if bias else out

    def weighted(self, w, W, a):
        return w.product(a, W)

    def terms(self, W, a):
        return [[a[0, i] * W[i, j] for i in range(W.shape[0])] for j in range(W.shape[1])]

    def backprop(self, l):
        return sym("δ", l + 1, tex=r"\delta") + JUX + paren(sym("W", l + 1)) + TRANSPOSE

    def backprop_numbers(self, w, W, delta):
        return w.product(delta, W)

    def weight_gradient(self, l, per_example=False):
        if per_example:
            return paren(sym("a", f"n,{l - 1}")) + TRANSPOSE + JUX + sym("δ", f"n,{l}", tex=r"\delta")
        return paren(sym("a", l - 1)) + TRANSPOSE + JUX + sym("δ", l, tex=r"\delta")

    def weight_gradient_numbers(self, w, delta, a):
        return w.product(a, delta)

    def describe(self):
        return [
            "Row convention (lectures 000, 004): ",
            M("hˡ = aˡ⁻¹Wˡ + bˡ", "h^{l} = a^{l-1} W^{l} + b^{l}"),
            ", ",
            M("aˡ = f(hˡ)", "a^{l} = f(h^{l})"),
            ", ",
            M("a⁰ = x", "a^{0} = x"),
            "; Wˡ has one column per unit of layer l, examples are rows; the error is E.",
        ]


# --------------------------------------------------------------- network


def _network(w):
    case, g = w.case, w.case.given
    nt = ColumnNotation() if w.column else RowNotation()
    env = given_bindings(case)
    x, y = env["x"], env["y"]
    steps = max(g["steps"], 1)
    _network_given(w, nt, x, y)
    W, b = dict(g["W"]), dict(g["b"])
    level = 3 if steps > 1 else 2
    for t in range(1, steps + 1):
        at = "" if t == 1 else f"@{t}"
        if steps > 1:
            w.heading(2, f"Step {t}")
            if t > 1:
                w.para(f"The forward pass of step {t} uses the parameters after step {t - 1} (its update above).")
        given = t == 1  # the parameters of step 1 are the case's; later ones are computed
        w.heading(level, "Forward pass")
        for l in sorted(W):
            _forward_layer(w, nt, l, W, b, x, at, given)
        w.heading(level, "Cost")
        _network_cost(w, nt, y, at)
        w.heading(level, "Backward pass (BP1–BP4)")
        _backward(w, nt, W, b, x, y, at, given)
        if g["eta"] is not None:
            w.heading(level, "Gradient-descent update")
            W, b = _update(w, nt, W, b, at, given)


def _network_given(w, nt, x, y):
    g = w.case.given
    w.heading(2, "Given")
    w.para(*nt.describe())
    for l in sorted(g["W"]):
        name, param = g["f"][l]
        row = [[sym("W", l), w.given(g["W"][l])]]
        bias = M("none", r"\text{none}") if g["b"][l] is None else w.given(g["b"][l])
        row.append([sym("b", l), bias])
        act = act_symbol(name) + (
            M(f" (param {_exact(param).text})", rf"\ (\text{{param }} {_exact(param).tex})")
            if param is not None
            else EMPTY
        )
        row.append([sym("f", l), act])
        w.rows(row, inline=True)
    w.rows([[M("x", "x"), sym("a", 0), w.given(x)], [M("y", "y"), w.given(y)]], inline=True)
    if g["N"] > 1:
        where = "column" if w.column else "row"
        w.para(
            f"A mini-batch of N = {g['N']} examples, one per {where}; z, a and δ have one {where} per example "
            f"(δ is per example, without 1/N)."
        )
    name, factor, reduction = g["loss"]
    L = max(g["W"])
    formula, _ = _loss_value(w, g["loss"], sym("a", L), M("y", "y"), None, None, _units(w, L) == 1)
    cost = nt.cost
    if g["N"] > 1:
        scale = frac(1, "N") + JUX if reduction == "mean" else EMPTY
        w.rows(
            [
                [sym(cost.text, sub="n", tex=cost.tex), formula],
                [cost, scale + M("Σₙ ", r"\sum_n ") + sym(cost.text, sub="n", tex=cost.tex)],
            ],
            inline=True,
        )
    else:
        w.rows([[cost, formula]], inline=True)
    w.para(f"Loss {name} with factor {_exact(factor).text}, reduction {reduction}.")
    if g["eta"] is not None:
        extra = f", {g['steps']} steps" if g["steps"] > 1 else ""
        frozen = f"; not updated: {', '.join(g['frozen'])}" if g["frozen"] else ""
        w.rows([[M("η", r"\eta"), _exact(g["eta"])]], inline=True)
        if extra or frozen:
            w.para(f"Gradient descent{extra}{frozen}.")


def _units(w, l):
    """The number of units of layer l."""
    W = w.case.given["W"][l]
    return W.shape[0] if w.column else W.shape[1]


def _forward_layer(w, nt, l, W, b, x, at, given):
    """z^l = W^l a^{l−1} + b^l = numbers = (products written out) = z^l, then a^l = f(z^l)."""
    g = w.case.given
    a_prev = x if l == 1 else w.value(f"a[{l - 1}]{at}")
    z, a = w.value(f"z[{l}]{at}"), w.value(f"a[{l}]{at}")
    Wl, bl = np.asarray(W[l], dtype=float), b[l]
    parts = [nt.z(l), nt.affine(l, bl is not None)]
    first = w.column  # which factor comes first: W a (column) or a W (row)
    weighted = nt.weighted(
        w, (w.num(Wl, given=given, lead=first), Wl), (w.num(a_prev, given=l == 1, lead=not first), a_prev)
    )
    parts.append(weighted + w.plus(bl, given) if bl is not None else weighted)
    n_out, n_in = Wl.shape if w.column else Wl.shape[::-1]
    if g["N"] == 1 and 1 < n_in <= 4 and n_out <= 4:
        terms = nt.terms(Wl, np.asarray(a_prev, dtype=float))
        sums = [_sum_of_terms(w, t) for t in terms]
        written = w.entries([[s] for s in sums] if w.column else [sums])
        parts.append(written + w.plus(bl, given) if bl is not None else written)
        if bl is not None:
            wa = np.array([sum(t) for t in terms])
            parts.append(w.num(wa) + w.plus(bl, given))
    parts.append(w.num(z))
    w.eq(*parts, q=f"z[{l}]{at}")
    _activation_value(w, g["f"][l], sym("a", l), nt.z(l), z, a, f"a[{l}]{at}")


def _sum_of_terms(w, terms):
    """0.04 − 0.06 + …: the products of one unit written out."""
    out = w.scalar(terms[0])
    for t in terms[1:]:
        out = out + w.plus(t)
    return out


def _network_cost(w, nt, y, at):
    g = w.case.given
    L = max(g["W"])
    aL, C = w.value(f"a[{L}]{at}"), w.value(f"C{at}")
    formula, subst = _loss_value(w, g["loss"], sym("a", L), M("y", "y"), aL, y, g["N"] == 1 and np.size(aL) == 1)
    if g["N"] == 1:
        w.eq(nt.cost, formula, subst, w.num(C), q=f"C{at}")
    else:
        scale = frac(1, g["N"]) + JUX if g["loss"][2] == "mean" else EMPTY
        per_example = sym(nt.cost.text, sub="n", tex=nt.cost.tex)
        w.eq(nt.cost, scale + M("Σₙ ", r"\sum_n ") + per_example, w.num(C), q=f"C{at}")


def _backward(w, nt, W, b, x, y, at, given):
    """Layer by layer from the output: its error (BP1 or BP2), then its gradients (BP3, BP4)."""
    L = max(W)
    for l in range(L, 0, -1):
        if l == L:
            _output_error(w, nt, L, y, at)
        else:
            _hidden_error(w, nt, l, W, at, given)
        _gradients(w, nt, l, x, b, at)


def _output_error(w, nt, L, y, at):
    g = w.case.given
    name, param = g["f"][L]
    loss = g["loss"]
    aL, z, grad, delta = (w.value(f"{q}[{L}]{at}") for q in ("a", "z", "dC/da", "delta"))
    a_sym, z_sym, d_sym, y_sym = sym("a", L), nt.z(L), sym("δ", L, tex=r"\delta"), M("y", "y")
    w.para(f"output error of layer L = {L}:", label="BP1")
    g_sym = nt.grad_a(L, last=True)
    n_features = np.shape(aL)[0 if w.column else 1]
    formula, subst, needs_paren = _loss_gradient(w, loss, a_sym, y_sym, aL, y, n_features)
    w.eq(
        g_sym if g_sym.text == partial(nt.cost, a_sym).text else g_sym + M(" = ", " = ") + partial(nt.cost, a_sym),
        formula,
        subst,
        w.num(grad),
        q=f"dC/da[{L}]{at}",
    )
    if f"f'(z[{L}])" in w.case.quantities:
        fp = w.value(f"f'(z[{L}]){at}")
        fp_sym = act_prime(name, z_sym)
        _activation_derivative(w, g["f"][L], fp_sym, z_sym, a_sym, z, aL, fp, f"f'(z[{L}]){at}")
        w.eq(
            d_sym,
            g_sym + ODOT + fp_sym,
            (paren(formula) if needs_paren else formula) + ODOT + fp_sym,
            w.product((w.num(grad), grad), (w.num(fp, lead=False), fp), elementwise=True),
            w.num(delta),
            q=f"delta[{L}]{at}",
        )
    elif name == "softmax" and loss[0] == "cross_entropy":
        coef = _coefficient(w, loss[1])
        w.eq(
            d_sym,
            coef + paren(a_sym + MINUS + y_sym) if coef.text else a_sym + MINUS + y_sym,
            coef + paren(w.num(aL) + MINUS + w.given(y, lead=False))
            if coef.text
            else w.num(aL) + MINUS + w.given(y, lead=False),
            w.num(delta),
            q=f"delta[{L}]{at}",
        )
        w.para(
            "Softmax output with the log-likelihood cost: the softmax Jacobian and ∇ₐC combine to a − y "
            "(for a one-hot y)."
        )
    else:
        _jacobian_error(w, name, d_sym, z_sym, a_sym, g_sym, delta, f"delta[{L}]{at}")


def _jacobian_error(w, name, d_sym, z_sym, a_sym, g_sym, delta, q):
    """δ through a softmax / log-softmax layer (not elementwise: its Jacobian)."""
    g_j = paren(g_sym) + M("ⱼ", "_j")
    if name == "softmax":
        rule = a_sym + ODOT + paren(g_sym + MINUS + M("Σⱼ ", r"\sum_j ") + a_sym + M("ⱼ ", "_j ") + g_j)
    else:
        rule = g_sym + MINUS + call(act_symbol("softmax"), z_sym) + M(" Σⱼ ", r" \sum_j ") + g_j
    w.eq(d_sym, rule, w.num(delta), q=q)
    w.para(
        f"{name} is not elementwise: δ is its Jacobian (transposed) applied to the gradient above, for each example."
    )


def _hidden_error(w, nt, l, W, at, given):
    g = w.case.given
    name, _ = g["f"][l]
    z, a, back, delta = (w.value(f"{q}[{l}]{at}") for q in ("z", "a", "dC/da", "delta"))
    delta_next = w.value(f"delta[{l + 1}]{at}")
    z_sym, a_sym, d_sym = nt.z(l), sym("a", l), sym("δ", l, tex=r"\delta")
    w.para(f"error of layer {l} from the error of layer {l + 1}:", label="BP2")
    W_next = np.asarray(W[l + 1], dtype=float)
    first = w.column  # (W^{l+1})ᵀ δ^{l+1} (column) or δ^{l+1} (W^{l+1})ᵀ (row)
    numbers = nt.backprop_numbers(
        w,
        (w.num(W_next, transpose=True, given=given, lead=first), W_next),
        (w.num(delta_next, lead=not first), delta_next),
    )
    w.eq(nt.backprop(l), numbers, w.num(back), q=f"dC/da[{l}]{at}")
    if f"f'(z[{l}])" in w.case.quantities:
        fp = w.value(f"f'(z[{l}]){at}")
        fp_sym = act_prime(name, z_sym)
        _activation_derivative(w, g["f"][l], fp_sym, z_sym, a_sym, z, a, fp, f"f'(z[{l}]){at}")
        w.eq(
            d_sym,
            paren(nt.backprop(l)) + ODOT + fp_sym,
            w.product((w.num(back), back), (w.num(fp, lead=False), fp), elementwise=True),
            w.num(delta),
            q=f"delta[{l}]{at}",
        )
    else:
        _jacobian_error(w, name, d_sym, z_sym, a_sym, nt.backprop(l), delta, f"delta[{l}]{at}")


def _gradients(w, nt, l, x, b, at):
    g = w.case.given
    N, mean = g["N"], g["loss"][2] == "mean"
    delta, gW = w.value(f"delta[{l}]{at}"), w.value(f"dC/dW[{l}]{at}")
    a_prev = x if l == 1 else w.value(f"a[{l - 1}]{at}")
    d_sym = sym("δ", l, tex=r"\delta")
    cost = nt.cost
    w.para(f"gradients of layer {l}:", label="BP3, BP4")
    scale = (frac(1, N) + JUX) if (mean and N > 1) else EMPTY
    if b[l] is not None:
        gb = w.value(f"dC/db[{l}]{at}")
        if N == 1:
            w.eq(partial(cost, sym("b", l)), d_sym, w.num(gb), q=f"dC/db[{l}]{at}")
        else:
            per = sym("δ", f"n,{l}", tex=r"\delta")
            w.eq(partial(cost, sym("b", l)), scale + M("Σₙ ", r"\sum_n ") + per, w.num(gb), q=f"dC/db[{l}]{at}")
    numbers = nt.weight_gradient_numbers(
        w,
        (w.num(delta, lead=w.column), delta),
        (w.num(a_prev, transpose=True, given=l == 1, lead=not w.column), a_prev),
    )
    if N == 1:
        w.eq(partial(cost, sym("W", l)), nt.weight_gradient(l), numbers, w.num(gW), q=f"dC/dW[{l}]{at}")
    else:
        w.eq(
            partial(cost, sym("W", l)),
            scale + M("Σₙ ", r"\sum_n ") + nt.weight_gradient(l, per_example=True),
            scale + nt.weight_gradient(l),
            scale + numbers,
            w.num(gW),
            q=f"dC/dW[{l}]{at}",
        )


def _update(w, nt, W, b, at, given):
    """W^l′ = W^l − η ∂C/∂W^l and b^l′ likewise, every layer (from the output down, as the notes do)."""
    g = w.case.given
    mean = g["loss"][2] == "mean" and g["N"] > 1
    batch = f" (the mean over the batch carries the 1/N = 1/{g['N']})" if mean else ""
    w.para(
        f"W ← W − η ∂{nt.cost.text}/∂W and b ← b − η ∂{nt.cost.text}/∂b with η = {_exact(g['eta']).text}, "
        f"every layer with the gradients of the weights before the update{batch}."
    )
    W_new, b_new = {}, {}
    for l in sorted(W, reverse=True):
        W_new[l] = _update_parameter(w, nt, "W", l, W[l], at, given)
        b_new[l] = None if b[l] is None else _update_parameter(w, nt, "b", l, b[l], at, given)
    return W_new, b_new


def _update_parameter(w, nt, p, l, old, at, given):
    g = w.case.given
    new_q = f"{p}[{l}]'{at}"
    new = w.value(new_q)
    old = np.asarray(old, dtype=float)
    p_sym, p_new = sym(p, l), sym(p, l, prime=True)
    if f"{p}{l}" in g["frozen"]:
        w.eq(p_new, p_sym, w.num(new), q=new_q)
        w.para(f"{p_sym.text} is frozen (not updated).")
        return new
    grad = w.value(f"dC/d{p}[{l}]{at}")
    eta_m = M("η", r"\eta")
    old_m = w.num(old, given=given)
    w.eq(
        p_new,
        p_sym + MINUS + eta_m + JUX + partial(nt.cost, p_sym),
        old_m + MINUS + w.product((_exact(g["eta"]), g["eta"]), (w.num(grad, lead=False), grad)),
        old_m + w.plus(new - old),
        w.num(new),
        q=new_q,
    )
    return new
