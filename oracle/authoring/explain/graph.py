"""Graph cases: forward values, chain rule per node, symbolic local derivatives, perturbations;
expression trees (gates, the case's definitions) as notation.
"""

from __future__ import annotations


import refimpl

from oracle.verdict import expr as expr_lang
from oracle.verdict.cases import perturbation_label
from oracle.authoring.explain.common import (
    _exact,
    join,
    M,
    MINUS,
    _number,
    paren,
    partial,
    plain_var,
    PLUS,
    _script_text,
    SPACE,
    _SUP,
    TIMES,
    TRANSPOSE,
)


# --------------------------------------------------------------- graph


def _graph(w):
    g = w.case.given
    program, inputs = g["program"], g["inputs"]
    out = program[-1][0]
    nodes = [name for name, _ in program]
    trees = dict(program)
    values = {name: float(w.value(name)) for name in list(inputs) + nodes}
    grads = {name: float(w.value(f"d{out}/d{name}")) for name in list(inputs) + nodes}
    f_sym = plain_var(out)

    w.heading(2, "Given")
    w.rows([[plain_var(k), w.given(v)] for k, v in inputs.items()], inline=True, qs=list(inputs))

    w.heading(2, "Forward pass, node by node")
    for name, tree in program:
        w.eq(
            plain_var(name),
            _expr(tree, plain_var),
            _expr(tree, plain_var, values, w, given=set(inputs)),
            w.num(values[name]),
            q=name,
        )

    w.heading(2, "Backward pass, gate by gate (chain rule)")
    w.para(
        "Each gate multiplies the gradient arriving from above (upstream) by its local gradient; "
        "a value used by several gates adds up their contributions."
    )
    w.eq(partial(f_sym, f_sym), w.num(grads[out]), q=f"d{out}/d{out}")
    consumers = {v: [c for c in nodes if v in expr_lang.names(trees[c])] for v in list(inputs) + nodes}
    local = {c: _local_gradients(trees[c], values) for c in nodes}
    for c in reversed(nodes):
        tree = trees[c]
        c_sym = plain_var(c)
        if c != out:
            if not consumers[c]:
                w.eq(partial(f_sym, c_sym), w.num(0.0), q=f"d{out}/d{c}")
                w.para(f"{c_sym.text} does not feed {f_sym.text}: its gradient is 0.")
            w.para(
                "Gate ",
                c_sym + M(" = ", " = ") + _expr(tree, plain_var),
                ", upstream gradient ",
                partial(f_sym, c_sym) + M(" = ", " = ") + w.num(grads[c]),
                ":",
            )
        else:
            w.para("Output gate ", c_sym + M(" = ", " = ") + _expr(tree, plain_var), ":")
        for u in _in_order(tree):
            total = c != out or consumers[u] == [out]  # else ∂f/∂u collects more than this gate
            lhs = partial(c_sym, plain_var(u)) if total else _local(f_sym, plain_var(u))
            w.eq(lhs, _rule(tree, u), w.num(local[c][u]), q=f"d{out}/d{u}" if c == out and total else None)
        for u in _in_order(tree):
            if consumers[u] and consumers[u][0] == c and consumers[u] != [out]:
                _chain_line(w, f_sym, out, u, consumers[u], local, grads)


def _chain_line(w, f_sym, out, u, users, local, grads):
    """∂f/∂u = Σ_c ∂f/∂c · ∂c/∂u = upstream · local + … = total."""
    u_sym = plain_var(u)
    symbols, numbers = [], []
    for i, c in enumerate(users):
        if c == out:  # the output gate's own local gradient
            symbols.append(_local(f_sym, u_sym))
            numbers.append(w.num(local[c][u], lead=i == 0))
        else:
            symbols.append(partial(f_sym, plain_var(c)) + TIMES + partial(plain_var(c), u_sym))
            numbers.append(w.num(grads[c], lead=i == 0) + TIMES + w.num(local[c][u], lead=False))
    w.eq(partial(f_sym, u_sym), join(symbols, PLUS), join(numbers, PLUS), w.num(grads[u]), q=f"d{out}/d{u}")


def _local(f_sym, u_sym):
    """(∂f/∂u)_local: the output gate's own gradient with respect to u, where u also feeds other gates."""
    return paren(partial(f_sym, u_sym)) + M("_local", r"_{\text{local}}")


def _in_order(tree):
    """The names a gate uses, in order of appearance."""
    seen = []

    def walk(t):
        if t[0] == "var":
            if t[1] not in seen:
                seen.append(t[1])
        elif t[0] != "num":
            for child in t[2 if t[0] == "call" else 1 :]:
                walk(child)

    walk(tree)
    return seen


def _local_gradients(tree, values):
    """∂(gate)/∂(each input of the gate), from refimpl on the gate alone."""
    names = _in_order(tree)
    _, grads = refimpl.graph([("_gate", tree)], {n: values[n] for n in names})
    return {n: grads[n] for n in names}


def _perturbations(w):
    g = w.case.given
    if not g["perturbations"]:
        return
    program, inputs = g["program"], g["inputs"]
    out = program[-1][0]
    names = list(inputs) + [n for n, _ in program]
    f_sym = plain_var(out)
    w.heading(2, "Perturbations")
    for offsets in g["perturbations"]:
        label = perturbation_label(offsets)
        what = ", ".join(f"{k} by {_exact(v).text}" for k, v in offsets.items())
        w.para(f"Increase {what}:")
        w.rows(
            [[plain_var(n), w.num(w.value(f"{n}({label})"))] for n in names],
            inline=True,
            qs=[f"{n}({label})" for n in names],
        )
        new, old = w.value(f"{out}({label})"), w.value(out)
        predicted = sum(float(w.value(f"d{out}/d{k}")) * v for k, v in offsets.items())
        w.eq(
            M("Δ", r"\Delta ") + f_sym,
            w.num(new) + MINUS + w.num(old, lead=False),
            w.num(new - old),
            q=f"Δ{out}({label})",
        )
        terms = join([partial(f_sym, plain_var(k)) + TIMES + _exact(v) for k, v in offsets.items()], PLUS)
        w.para(
            "The gradient predicts ",
            terms + M(" = ", " = ") + w.num(predicted),
            " (exact where f is linear in the perturbed value).",
        )


# symbolic local derivatives of a gate, for display (the numbers come from refimpl)

_ZERO, _ONE = ("num", 0.0), ("num", 1.0)


def _is_num(t, v=None):
    return t[0] == "num" and (v is None or t[1] == v)


def _s_add(a, b):
    if _is_num(a, 0.0):
        return b
    if _is_num(b, 0.0):
        return a
    if b[0] == "neg":
        return _s_sub(a, b[1])
    if _is_num(a) and _is_num(b):
        return ("num", a[1] + b[1])
    return ("add", a, b)


def _s_neg(a):
    if _is_num(a):
        return ("num", -a[1])
    return a[1] if a[0] == "neg" else ("neg", a)


def _s_sub(a, b):
    if _is_num(b, 0.0):
        return a
    if _is_num(a, 0.0):
        return _s_neg(b)
    if _is_num(a) and _is_num(b):
        return ("num", a[1] - b[1])
    return ("sub", a, b)


def _s_mul(a, b):
    if _is_num(a, 0.0) or _is_num(b, 0.0):
        return _ZERO
    if _is_num(a, 1.0):
        return b
    if _is_num(b, 1.0):
        return a
    if _is_num(a) and _is_num(b):
        return ("num", a[1] * b[1])
    return ("mul", a, b)


def _s_pow(a, e):
    if _is_num(e, 1.0):
        return a
    if _is_num(e, 0.0):
        return _ONE
    return ("pow", a, e)


def _s_div(a, b):
    if _is_num(a, 0.0):
        return _ZERO
    if _is_num(b, 1.0):
        return a
    return ("div", a, b)


def _derive(t, v):
    """∂t/∂v as an expression tree (lightly simplified), or None where no rule is written here."""
    kind = t[0]
    if kind == "num":
        return _ZERO
    if kind == "var":
        return _ONE if t[1] == v else _ZERO
    if kind == "neg":
        d = _derive(t[1], v)
        return None if d is None else _s_neg(d)
    if kind in ("add", "sub", "mul", "div", "pow"):
        u, s = t[1], t[2]
        du, ds = _derive(u, v), _derive(s, v)
        if du is None or ds is None:
            return None
        if kind == "add":
            return _s_add(du, ds)
        if kind == "sub":
            return _s_sub(du, ds)
        if kind == "mul":
            return _s_add(_s_mul(du, s), _s_mul(u, ds))
        if kind == "div":
            return _s_sub(_s_div(du, s), _s_div(_s_mul(u, ds), ("pow", s, ("num", 2.0))))
        if not _is_num(ds, 0.0):  # u^s with s depending on v: no rule written here
            return None
        return _s_mul(_s_mul(s, _s_pow(u, _s_sub(s, _ONE))), du)
    if kind == "call" and len(t) == 3:
        du = _derive(t[2], v)
        if du is None:
            return None
        u = t[2]
        outer = {
            "exp": lambda: t,
            "log": lambda: _s_div(_ONE, u),
            "identity": lambda: _ONE,
            "sigmoid": lambda: ("mul", t, ("sub", _ONE, t)),
            "tanh": lambda: ("sub", _ONE, ("pow", t, ("num", 2.0))),
        }.get(t[1])
        return None if outer is None else _s_mul(outer(), du)
    return None


def _rule(tree, v):
    """The local gradient ∂gate/∂v written out, when short enough to read."""
    d = _derive(tree, v)
    if d is None:
        return None
    m = _expr(d, plain_var)
    return m if len(m.text) <= 40 else None


# expression trees (graph gates, the case's definitions) as notation

_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}
_FUNC = {
    "exp": (None, None),
    "log": ("ln", r"\ln"),
    "sigmoid": ("σ", r"\sigma"),
    "tanh": ("tanh", r"\tanh"),
    "dsigmoid": ("σ'", r"\sigma'"),
    "dtanh": ("tanh'", r"\tanh'"),
    "relu": ("ReLU", r"\mathrm{ReLU}"),
    "drelu": ("ReLU'", r"\mathrm{ReLU}'"),
    "sum": ("Σ", r"\sum"),
    "sqrt": ("√", r"\sqrt"),
}


def _expr(t, var, subst=None, w=None, lead=True, given=()):
    """An expression tree as notation; with ``subst`` (name → number) the numbers written in
    (``given``: the names whose numbers are the case's own, shown as given)."""
    kind = t[0]
    if kind == "num":
        return M(_number(t[1], 12, "−"), _number(t[1], 12, "-"))
    if kind == "var":
        if subst is not None and t[1] in subst:
            return w.scalar(subst[t[1]], lead, given=t[1] in given)
        return var(t[1])
    if kind == "list":
        items = [_expr(c, var, subst, w, given=given) for c in t[1:]]
        return M("[", r"\left[") + join(items, M(", ", ", ")) + M("]", r"\right]")
    if kind == "call":
        return _expr_call(t, var, subst, w, given)
    prec = _PREC[kind]

    def child(c, right=False):
        p = _PREC.get(c[0], 5)
        wrap = (
            (p < prec and not (kind == "neg" and p == 2))
            or (right and p == prec and kind in ("sub", "div"))
            or (kind == "pow" and p <= prec)
        )
        m = _expr(c, var, subst, w, lead=wrap or (lead and not right and kind != "neg"), given=given)
        return paren(m) if wrap else m

    if kind == "neg":
        return M("−", "-") + child(t[1], right=True)
    if kind == "pow":
        base = child(t[1])
        e = t[2]
        if e[0] == "num" and float(e[1]).is_integer() and 0 <= e[1] <= 9:
            return base + M(_script_text(int(e[1]), _SUP, "^"), "^{" + str(int(e[1])) + "}")
        ex = _expr(e, var, subst, w, given=given)
        return base + M("^(" + ex.text + ")", "^{" + ex.tex + "}")
    if kind == "div":
        num_, den = _expr(t[1], var, subst, w, given=given), _expr(t[2], var, subst, w, given=given)
        left, right = child(t[1]), child(t[2], right=True)
        return M(left.text + "/" + right.text, r"\frac{" + num_.tex + "}{" + den.tex + "}")
    op = {"add": PLUS, "sub": MINUS, "mul": TIMES, "matmul": SPACE}[kind]
    return child(t[1]) + op + child(t[2], right=True)


def _expr_call(t, var, subst, w, given):
    fname, args = t[1], [_expr(c, var, subst, w, given=given) for c in t[2:]]
    if fname == "exp":
        a = args[0]
        return M(f"exp({a.text})", "e^{" + a.tex + "}")
    if fname == "T":
        a = args[0]
        simple = t[2][0] in ("var", "num")
        return (a if simple else paren(a)) + TRANSPOSE
    text, tex = _FUNC.get(fname, (fname, r"\operatorname{" + fname.replace("_", r"\_") + "}"))
    return M(text, tex) + paren(join(args, M(", ", ", ")))


def _graph_with_perturbations(w):
    _graph(w)
    _perturbations(w)
