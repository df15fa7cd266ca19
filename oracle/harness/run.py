"""Run one case on one engine: every quantity the case defines, as NumPy arrays."""
from __future__ import annotations

import copy

import numpy as np

from . import expr as expr_lang
from .cases import binding, given_bindings, perturbation_label


class Missing:
    """A quantity an engine does not give: not provided (NotImplementedError) or failed."""

    def __init__(self, reason, failed=False):
        self.reason, self.failed = reason, failed

    def __repr__(self):
        return f"Missing({self.reason!r})"


def _call(engine, function, *args):
    fn = getattr(engine, function, None)
    if fn is None:
        return Missing(f"{function} not provided")
    try:
        return fn(*copy.deepcopy(args))     # engines get copies: nothing they do reaches the case
    except NotImplementedError:
        return Missing(f"{function} not implemented")
    except Exception as exc:  # an engine that fails is reported, and the run goes on
        return Missing(f"{function} raised {type(exc).__name__}: {exc}", failed=True)


def _array(value):
    return np.asarray(value, dtype=float)


def _network(case, engine, out):
    g = case.given
    W, b, f, x, y, loss, conv = g["W"], g["b"], g["f"], g["x"], g["y"], g["loss"], case.convention
    axis = 0 if conv == "column" else 1
    L = max(W)
    for t in range(1, max(g["steps"], 1) + 1):
        at = "" if t == 1 else f"@{t}"
        fwd = _call(engine, "forward", W, b, f, x, conv)
        if isinstance(fwd, Missing):
            for l in W:
                out[f"z[{l}]{at}"] = out[f"a[{l}]{at}"] = out[f"f'(z[{l}]){at}"] = fwd
            out[f"C{at}"] = fwd
        else:
            z, a = fwd
            for l in W:
                out[f"z[{l}]{at}"], out[f"a[{l}]{at}"] = _array(z[l]), _array(a[l])
                if f"f'(z[{l}])" in case.quantities:
                    out[f"f'(z[{l}]){at}"] = _wrap(_call(engine, "activation_derivative",
                                                         f[l][0], _array(z[l]), f[l][1], axis))
            aL = _array(a[L])
            out[f"C{at}"] = _wrap(_call(engine, "loss", loss[0], aL, np.reshape(y, aL.shape),
                                        loss[1], loss[2], axis))
        bwd = _call(engine, "backward", W, b, f, x, y, loss, conv)
        for key in ("dC/da", "delta", "dC/dW", "dC/db"):
            for l in W:
                if key == "dC/db" and b[l] is None:
                    continue
                out[f"{key}[{l}]{at}"] = bwd if isinstance(bwd, Missing) else _array(bwd[key][l])
        if t > g["steps"]:
            break
        upd = _call(engine, "train_step", W, b, f, x, y, loss, g["eta"], g["frozen"], conv)
        if isinstance(upd, Missing) and not upd.failed:   # no train_step: backward, then update
            upd = Missing("no gradients") if isinstance(bwd, Missing) else \
                _call(engine, "update", W, b, bwd["dC/dW"], bwd["dC/db"], g["eta"], g["frozen"])
        for l in W:
            out[f"W[{l}]'{at}"] = upd if isinstance(upd, Missing) else _array(upd[0][l])
            if b[l] is not None:
                out[f"b[{l}]'{at}"] = upd if isinstance(upd, Missing) else _array(upd[1][l])
        if isinstance(upd, Missing):
            break
        W, b = upd


def _wrap(value):
    return value if isinstance(value, Missing) else _array(value)


def _graph(case, engine, out):
    g = case.given
    program, inputs = g["program"], g["inputs"]
    f = program[-1][0]
    res = _call(engine, "graph", program, inputs, None)
    names = list(inputs) + [n for n, _ in program]
    base = None
    for name in names:
        if isinstance(res, Missing):
            out[name] = out[f"d{f}/d{name}"] = res
            continue
        values, grads = res
        out[name] = Missing("values not provided") if values is None else _array(values[name])
        out[f"d{f}/d{name}"] = _array(grads[name])
        if values is not None:
            base = values[f]
    for offsets in g["perturbations"]:
        label = perturbation_label(offsets)
        pres = _call(engine, "graph", program, inputs, offsets)
        for name in names:
            if isinstance(pres, Missing) or pres[0] is None:
                out[f"{name}({label})"] = pres if isinstance(pres, Missing) else Missing("values not provided")
            else:
                out[f"{name}({label})"] = _array(pres[0][name])
        key = f"Δ{f}({label})"
        if isinstance(pres, Missing) or pres[0] is None or base is None:
            out[key] = Missing("values not provided")
        else:
            out[key] = _array(pres[0][f] - base)


def _jacobian(case, engine, out):
    g = case.given
    res = _call(engine, "jacobian", g["W"], g["b"], g["x"], case.convention)
    for key in ("dz/dx", "dz/dW"):
        out[key] = res if isinstance(res, Missing) else _array(res[key])


def _activation(case, engine, out):
    (name, param), z = case.given["activation"], case.given["z"]
    axis = 0 if case.convention == "column" else -1
    out["a"] = _wrap(_call(engine, "activation", name, z, param, axis))
    if "f'(z)" in case.quantities:
        out["f'(z)"] = _wrap(_call(engine, "activation_derivative", name, z, param, axis))


def _loss(case, engine, out):
    (name, factor, reduction), a, y = case.given["loss"], case.given["a"], case.given["y"]
    axis = 0 if case.convention == "column" else -1
    out["C"] = _wrap(_call(engine, "loss", name, a, y, factor, reduction, axis))
    out["dC/da"] = _wrap(_call(engine, "loss_gradient", name, a, y, factor, axis))


_KINDS = {"network": _network, "graph": _graph, "jacobian": _jacobian,
          "activation": _activation, "loss": _loss}


def bindings(case, values):
    """Expression names → values: the givens and every quantity the engine gave."""
    env = given_bindings(case)
    for q, v in values.items():
        name = binding(q)
        if name and not isinstance(v, Missing):
            env[name] = v
    return env


def compute(case, engine):
    """{quantity: array or Missing} for every quantity, derived value and formula of the case."""
    out = {}
    _KINDS[case.kind](case, engine, out)
    env = bindings(case, out)
    for name, (tree, _) in case.define.items():
        out[name] = _evaluate(tree, env)
        if not isinstance(out[name], Missing) and binding(name):
            env[binding(name)] = out[name]
    for formula in case.formulas:
        out[f"formula:{formula.name}"] = _evaluate(formula.tree, env)
        if formula.correct_tree is not None:
            out[f"correct:{formula.name}"] = _evaluate(formula.correct_tree, env)
    return out


def _evaluate(tree, env):
    missing = sorted(expr_lang.names(tree) - set(env))
    if missing:
        return Missing(f"needs {', '.join(missing)}")
    try:
        return np.asarray(expr_lang.evaluate(tree, env), dtype=float)
    except (ValueError, TypeError, ArithmeticError) as exc:
        return Missing(f"cannot evaluate: {exc}", failed=True)
