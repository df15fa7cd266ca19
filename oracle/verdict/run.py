"""Run one case on one engine: every quantity the case defines, as NumPy arrays."""

from __future__ import annotations

import copy

import numpy as np

from oracle.verdict import expr as expr_lang
from oracle.verdict.cases import binding, given_bindings, perturbation_label
from oracle.verdict.errors import EngineError
from oracle.verdict.yamlsafe import load


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
        # a computation that overflows or leaves a function's domain is an error with a message, never a
        # RuntimeWarning on stderr (places that clamp on purpose, e.g. refimpl's ln 0, say so themselves)
        with finite_math():
            return fn(*copy.deepcopy(args))  # engines get copies: nothing they do reaches the case
    except NotImplementedError:
        return Missing(f"{function} not implemented")
    except EngineError as exc:
        return Missing(str(exc), failed=True)
    except FloatingPointError as exc:
        return Missing(
            f"{function} cannot give a finite result ({exc}): the case's numbers overflow float64 "
            f"or leave a function's domain",
            failed=True,
        )
    except Exception as exc:  # an engine that fails is reported, and the run goes on
        return Missing(f"{function} raised {type(exc).__name__}: {exc}", failed=True)


def provides(engine, quantity):
    """Whether ``engine`` is expected to give ``quantity`` ("z", "a", "C", "delta", …): a reference
    engine (``complete = True``: refimpl, torch, finite differences) gives every quantity except those
    it lists in ``not_provided`` (finite differences: z, a, C and a graph's values); an implementation
    under test only what it returns."""
    return bool(getattr(engine, "complete", False)) and quantity not in getattr(engine, "not_provided", ())


def _take(result, what, *keys, layer=None):
    """result[keys...][layer] as a float array, or Missing(failed) saying what was wrong with the answer.

    Per-layer results must be dicts keyed by the layer number l (a list would be ambiguous:
    is its first entry layer 0 or layer 1?).
    """
    if isinstance(result, Missing):
        return result
    value = result
    try:
        for key in keys:
            value = value[key]
        if layer is not None:
            if not isinstance(value, dict):
                return Missing(
                    f"{what} returned a {type(value).__name__} where a dict keyed by the layer "
                    f"number l = 1, 2, … is expected",
                    failed=True,
                )
            value = value[layer]
        array = np.asarray(value)
        if array.dtype != np.float32:  # float32 stays float32 (the float32 mode's later steps)
            array = array.astype(np.float64)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        where = "".join(f"[{k!r}]" for k in keys + ((layer,) if layer is not None else ()))
        return Missing(
            f"{what} returned no usable value{' at ' + where if where else ''} ({type(exc).__name__}: {exc})",
            failed=True,
        )
    return array


def _pair(result, what):
    """A 2-tuple answer such as (z, a) or (W_new, b_new), or Missing(failed)."""
    if isinstance(result, Missing):
        return result
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return result
    return Missing(f"{what} returned {type(result).__name__}, expected a pair", failed=True)


def _network(case, engine, out):
    g = case.given
    W, b, f, x, y, loss, conv = g["W"], g["b"], g["f"], g["x"], g["y"], g["loss"], case.convention
    axis = 0 if conv == "column" else 1
    L = max(W)
    for t in range(1, max(g["steps"], 1) + 1):
        at = "" if t == 1 else f"@{t}"
        fwd = _pair(_call(engine, "forward", W, b, f, x, conv), "forward")
        for l in W:
            out[f"z[{l}]{at}"] = _take(fwd, "forward", 0, layer=l)
            out[f"a[{l}]{at}"] = _take(fwd, "forward", 1, layer=l)
            if f"f'(z[{l}])" in case.quantities:
                z = out[f"z[{l}]{at}"]
                out[f"f'(z[{l}]){at}"] = (
                    z
                    if isinstance(z, Missing)
                    else _take(
                        _call(engine, "activation_derivative", f[l][0], z, f[l][1], axis), "activation_derivative"
                    )
                )
        aL = out[f"a[{L}]{at}"]
        out[f"C{at}"] = (
            aL
            if isinstance(aL, Missing)
            else _take(
                _call(
                    engine,
                    "loss",
                    loss[0],
                    aL,
                    np.reshape(y, aL.shape) if np.size(y) == aL.size else y,
                    loss[1],
                    loss[2],
                    axis,
                ),
                "loss",
            )
        )
        bwd = _call(engine, "backward", W, b, f, x, y, loss, conv)
        for key in ("dC/da", "delta", "dC/dW", "dC/db"):
            for l in W:
                if key == "dC/db" and b[l] is None:
                    continue
                if isinstance(bwd, dict) and key not in bwd:
                    # an engine gives every quantity of its backward pass, or says which it does not
                    # (``provides``): a reference engine that drops one is a mismatch, never silence
                    out[f"{key}[{l}]{at}"] = Missing(f"backward gives no {key}", failed=provides(engine, key))
                else:
                    out[f"{key}[{l}]{at}"] = _take(bwd, "backward", key, layer=l)
        if t > g["steps"]:
            break
        upd = _call(engine, "train_step", W, b, f, x, y, loss, g["eta"], g["frozen"], conv)
        if isinstance(upd, Missing) and not upd.failed:  # no train_step: backward, then update
            upd = (
                Missing("no gradients")
                if isinstance(bwd, Missing)
                else _call(
                    engine,
                    "update",
                    W,
                    b,
                    bwd.get("dC/dW") if isinstance(bwd, dict) else None,
                    bwd.get("dC/db") if isinstance(bwd, dict) else None,
                    g["eta"],
                    g["frozen"],
                )
            )
        upd = _pair(upd, "the update")
        W_new, b_new = {}, {}
        for l in W:
            W_new[l] = out[f"W[{l}]'{at}"] = _take(upd, "the update", 0, layer=l)
            if b[l] is not None:
                b_new[l] = out[f"b[{l}]'{at}"] = _take(upd, "the update", 1, layer=l)
            else:
                b_new[l] = None
        if any(isinstance(v, Missing) for v in list(W_new.values()) + list(b_new.values())):
            break
        W, b = W_new, b_new


def _graph(case, engine, out):
    g = case.given
    program, inputs = g["program"], g["inputs"]
    f = program[-1][0]
    names = list(inputs) + [n for n, _ in program]
    problem = _graph_problem(case)
    if problem is not None:  # a gate out of its domain at the case's inputs: no engine can compute it
        labels = [perturbation_label(offsets) for offsets in g["perturbations"]]
        for q in (
            names
            + [f"d{f}/d{n}" for n in names]
            + [f"{n}({label})" for label in labels for n in names]
            + [f"Δ{f}({label})" for label in labels]
        ):
            out[q] = Missing(problem, failed=True)
        return
    res = _pair(_call(engine, "graph", program, inputs, None), "graph")
    values = None if isinstance(res, Missing) else res[0]
    for name in names:
        out[name] = (
            res
            if isinstance(res, Missing)
            else (
                Missing("values not provided", failed=provides(engine, "values"))
                if values is None
                else _take(values, "graph", name)
            )
        )
        out[f"d{f}/d{name}"] = _take(res, "graph", 1, name)
    for offsets in g["perturbations"]:
        label = perturbation_label(offsets)
        pres = _pair(_call(engine, "graph", program, inputs, offsets), "graph")
        pvalues = None if isinstance(pres, Missing) else pres[0]
        for name in names:
            out[f"{name}({label})"] = (
                pres
                if isinstance(pres, Missing)
                else (
                    Missing("values not provided", failed=provides(engine, "values"))
                    if pvalues is None
                    else _take(pvalues, "graph", name)
                )
            )
        new, old = out[f"{f}({label})"], out[f]
        out[f"Δ{f}({label})"] = new if isinstance(new, Missing) else old if isinstance(old, Missing) else new - old


def _jacobian(case, engine, out):
    g = case.given
    res = _call(engine, "jacobian", g["W"], g["b"], g["x"], case.convention)
    for key in ("dz/dx", "dz/dW"):
        out[key] = _take(res, "jacobian", key)


def _activation(case, engine, out):
    (name, param), z = case.given["activation"], case.given["z"]
    axis = 0 if case.convention == "column" else -1
    out["a"] = _take(_call(engine, "activation", name, z, param, axis), "activation")
    if "f'(z)" in case.quantities:
        out["f'(z)"] = _take(_call(engine, "activation_derivative", name, z, param, axis), "activation_derivative")


def _loss(case, engine, out):
    (name, factor, reduction), a, y = case.given["loss"], case.given["a"], case.given["y"]
    axis = 0 if case.convention == "column" else -1
    out["C"] = _take(_call(engine, "loss", name, a, y, factor, reduction, axis), "loss")
    out["dC/da"] = _take(_call(engine, "loss_gradient", name, a, y, factor, axis), "loss_gradient")


_KINDS = {"network": _network, "graph": _graph, "jacobian": _jacobian, "activation": _activation, "loss": _loss}


def bindings(case, values):
    """Expression names → values: the givens and every quantity the engine gave."""
    env = given_bindings(case)
    for q, v in values.items():
        name = binding(q)
        if name and not isinstance(v, Missing):
            env[name] = v
    return env


def _single(case):
    """The case with its given arrays in float32 (the float32 mode)."""

    def cast(v):
        if isinstance(v, np.ndarray):
            return v.astype(np.float32)
        if isinstance(v, dict):
            return {k: cast(u) for k, u in v.items()}
        return v

    return copy.copy(case).__class__(**{**vars(case), "given": {k: cast(v) for k, v in case.given.items()}})


def compute(case, engine):
    """{quantity: array or Missing} for every quantity, derived value and formula of the case."""
    out = {}
    _KINDS[case.kind](_single(case) if case.precision == "float32" else case, engine, out)
    env = bindings(case, out)
    for name, (tree, _) in case.define.items():
        out[name] = _evaluate(tree, env, case)
        if not isinstance(out[name], Missing) and binding(name):
            env[binding(name)] = out[name]
    for formula in case.formulas:
        out[f"formula:{formula.name}"] = _evaluate(formula.tree, env, case)
        if formula.correct_tree is not None:
            out[f"correct:{formula.name}"] = _evaluate(formula.correct_tree, env, case)
    return out


class Uncomputable(ValueError):
    """The reference engine cannot compute a quantity of the case (a tool that needs every value refuses)."""


def require_all(values, engine_name="numpy"):
    """Raise Uncomputable for the first quantity the engine failed on (values: ``compute``'s result)."""
    for quantity, v in values.items():
        if isinstance(v, Missing) and v.failed:
            raise Uncomputable(f"{engine_name} cannot compute {quantity}: {v.reason}")


def finite_math():
    """The floating-point mode of every computation on a case: overflow, division by zero and invalid
    operations raise FloatingPointError (never a RuntimeWarning on stderr); underflow to 0 is fine."""
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


def _graph_problem(case):
    """Why the case's graph cannot be computed at its inputs (or one of its perturbations), else None."""
    g = case.given
    for offsets in [None] + list(g["perturbations"]):
        try:
            expr_lang.check_program(g["program"], g["inputs"], offsets)
        except expr_lang.DomainError as exc:
            _locate(case, exc.node)
            with_ = f" (with {perturbation_label(offsets)})" if offsets else ""
            return f"the graph cannot be computed: {exc}{with_}"
    return None


def _evaluate(tree, env, case=None):
    missing = sorted(expr_lang.names(tree) - set(env))
    if missing:
        return Missing(f"needs {', '.join(missing)}")
    try:
        return np.asarray(expr_lang.evaluate(tree, env), dtype=float)
    except expr_lang.DomainError as exc:
        _locate(case, tree)
        return Missing(str(exc), failed=True)
    except (ValueError, TypeError, ArithmeticError) as exc:
        return Missing(f"cannot evaluate: {exc}", failed=True)


def _locate(case, tree):
    """Give the expressions of ``case`` their file positions, if the loader did not (messages at run time)."""
    if case is None or expr_lang.located(tree) or getattr(case, "raw", None) is None:
        return
    try:
        root = load(case.raw.decode("utf-8"), case.path)
        fields = root.value

        def at(tree, node):
            expr_lang.locate(tree, case.path, node.line, node.col + (1 if node.quoted else 0))

        for name, (t, _) in case.define.items():
            at(t, fields["define"].value[name])
        for formula, item in zip(case.formulas, fields["formulas"].value if case.formulas else ()):
            at(formula.tree, item.value["expr"])
            if formula.correct_tree is not None:
                at(formula.correct_tree, item.value["correct"])
        if case.kind == "graph":
            for name, t in case.given["program"]:
                at(t, fields["graph"].value[name])
    except Exception:  # noqa: BLE001 - a message without a position is still a message
        return
