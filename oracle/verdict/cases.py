"""Case files: loading, validation and the quantities each kind of case defines.

A case is a YAML mapping (see README, "Case files"). Loading validates it
completely — every problem is a CaseError naming the file, line and column
— and returns a ``Case`` ready for the engines: arrays as float64, layers
keyed by the lectures' layer number, expressions parsed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import refimpl
from oracle.verdict import expr as expr_lang
from oracle.verdict.errors import CaseError, suggest
from oracle.verdict.limits import DEFAULT, hint
from oracle.verdict.yamlsafe import Number, load

KINDS = ("activation", "loss", "network", "graph", "jacobian")
CONVENTIONS = ("column", "row")
ACTIVATIONS = refimpl.ACTIVATIONS  # the names are refimpl's registries' (one source)
LOSSES = refimpl.LOSSES
REDUCTIONS = ("sum", "mean")

COMMON_FIELDS = {"title", "source", "kind", "convention", "precision", "note", "define", "expect", "formulas"}
PRECISIONS = ("float64", "float32")
KIND_FIELDS = {
    "activation": {"activation", "z"},
    "loss": {"loss", "a", "y"},
    "network": {"layers", "loss", "x", "y", "gradient_descent"},
    "graph": {"graph", "inputs", "perturbations"},
    "jacobian": {"W", "b", "x"},
}
REQUIRED = {
    "activation": ("activation", "z"),
    "loss": ("loss", "a", "y"),
    "network": ("layers", "loss", "x", "y"),
    "graph": ("graph", "inputs"),
    "jacobian": ("W", "x"),
}


@dataclass
class Expected:
    """A value the case states for a quantity: printed in the document, or computed."""

    quantity: str
    value: np.ndarray
    decimals: np.ndarray  # per element, as printed
    line: int
    col: int
    texts: list = field(default_factory=list)  # each number as written in the case
    allowance: float = 0.0  # extra absolute tolerance for rounded intermediates carried forward
    reason: str | None = None
    erratum: str | None = None  # the note, when the document is wrong here
    correct: np.ndarray | None = None
    correct_decimals: np.ndarray | None = None
    computed: bool = False  # not printed in the document (an answer key value)
    heading: str | None = None  # the slide heading of this value, where it differs from the case's
    exact: bool = False  # the printed value is exact (e.g. ReLU's 0, integer arithmetic)
    correct_texts: list | None = None


@dataclass
class Formula:
    """A formula printed in the document, checked against an engine quantity."""

    name: str
    printed: str
    tree: tuple
    equals: str
    line: int
    col: int
    erratum: str | None = None
    correct: str | None = None
    correct_tree: tuple | None = None  # the correct formula, checked like the printed one
    heading: str | None = None  # the slide heading of this formula, where it differs from the case's


@dataclass
class Case:
    path: Path
    title: str
    kind: str
    source: dict
    convention: str = "column"
    precision: str = "float64"  # float32: the engines compute in single precision
    note: str | None = None
    given: dict = field(default_factory=dict)  # the kind's inputs, as engine arguments
    quantities: dict = field(default_factory=dict)  # name → expected number of elements
    define: dict = field(default_factory=dict)  # name → (expression tree, source text)
    expect: list = field(default_factory=list)
    formulas: list = field(default_factory=list)
    raw: bytes = b""  # the file's bytes as loaded

    @property
    def id(self):
        return self.path.stem


# ---------------------------------------------------------------- helpers


def _err(path, node, message):
    return CaseError(path, node.line, node.col, message)


def _mapping(path, node, what):
    if not isinstance(node.value, dict):
        raise _err(path, node, f"{what} must be a mapping (name: value), not {describe_value(node)}")
    return node.value


def describe_value(node):
    """What a YAML value is, for messages: 'a mapping', 'the number 1.5', 'the text \'x\''."""
    v = node.value
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, Number):
        return f"the number {v.text}"
    if v is None:
        return "an empty value"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    return f"the text {v!r}"


def _string(path, node, what):
    if not isinstance(node.value, str):
        raise _err(path, node, f"{what} must be text, not {describe_value(node)}")
    return node.value


def _number(path, node, what):
    if not isinstance(node.value, Number):
        raise _err(path, node, f"{what} must be a number, not {describe_value(node)}")
    return node.value


def _choice(path, node, what, choices):
    word = _string(path, node, what)
    if word not in choices:
        raise _err(path, node, f"unknown {what} {word!r}{suggest(word, choices)} (allowed: {', '.join(choices)})")
    return word


def _array(path, node, what, texts=False):
    """A number or a (nested, rectangular) list of numbers → (values, decimals[, texts as printed])."""

    def walk(n):
        if isinstance(n.value, list):
            if not n.value:
                raise _err(path, n, f"{what} is an empty list")
            return [walk(c) for c in n.value]
        if isinstance(n.value, Number):
            return (n.value.value, n.value.decimals, n.value.text)
        raise _err(path, n, f"{what}: expected a number, found {describe_value(n)}")

    nested = walk(node)
    try:
        values = np.array(_strip(nested, 0), dtype=float)
        decimals = np.array(_strip(nested, 1), dtype=int)
    except ValueError:
        raise _err(path, node, f"{what} is not rectangular: every row must have the same length") from None
    if texts:
        return values, decimals, np.array(_strip(nested, 2), dtype=object)
    return values, decimals


def _strip(nested, i):
    if isinstance(nested, tuple):
        return nested[i]
    return [_strip(n, i) for n in nested]


def _key_error(path, node, key, message):
    """A CaseError at the position of ``key`` in the mapping ``node``."""
    line, col = (node.keys or {}).get(key, (node.line, node.col))
    return CaseError(path, line, col, message)


def _check_fields(path, node, allowed, what):
    for key in _mapping(path, node, what):
        if key not in allowed:
            raise _key_error(
                path,
                node,
                key,
                f"unknown field {key!r} in {what}{suggest(key, allowed)} (allowed: {', '.join(sorted(allowed))})",
            )


def _require(path, node, keys, what):
    fields = _mapping(path, node, what)
    for key in keys:
        if key not in fields:
            raise _err(path, node, f"{what} is missing the required field {key!r}")


def _activation(path, node):
    """'sigmoid' or {name: leaky_relu, param: 0.1} → (name, param)."""
    if isinstance(node.value, dict):
        _check_fields(path, node, {"name", "param"}, "activation")
        _require(path, node, ("name",), "activation")
        name = _choice(path, node.value["name"], "activation", ACTIVATIONS)
        param = node.value.get("param")
        return name, None if param is None else _number(path, param, "activation param").value
    return _choice(path, node, "activation", ACTIVATIONS), None


def _loss(path, node):
    _check_fields(path, node, {"name", "factor", "reduction"}, "loss")
    _require(path, node, ("name", "factor", "reduction"), "loss")
    f = node.value
    factor = f["factor"]
    if isinstance(factor.value, str) and re.fullmatch(r"\s*1\s*/\s*2\s*", factor.value):
        factor_value = 0.5
    else:
        factor_value = _number(path, factor, "loss factor").value
    name = _choice(path, f["name"], "loss", LOSSES)
    if not factor_value > 0:
        raise _err(
            path,
            factor,
            f"the loss factor must be > 0 (a constant in front of the {name} sum), not "
            f"{factor.value.text if isinstance(factor.value, Number) else factor.value}",
        )
    return name, factor_value, _choice(path, f["reduction"], "reduction", REDUCTIONS)


def _leaves(node):
    """The number nodes of a number or (nested) list, in order (that of the array's elements)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n.value, list):
            stack.extend(reversed(n.value))
        else:
            yield n


PROBABILITIES = {  # loss → {given: (lowest, highest, why)}
    "binary_cross_entropy": {
        "a": (0.0, 1.0, "the outputs a are probabilities"),
        "y": (0.0, 1.0, "the targets y are probabilities"),
    },
    "cross_entropy": {
        "a": (0.0, None, "ln a is not defined for a < 0"),
        "y": (0.0, None, "the targets y weigh ln a: a distribution such as one-hot"),
    },
}


FLOAT32_MAX, FLOAT32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
FLOAT32_GIVEN = ("z", "a", "y", "x", "W", "b", "layers")  # the arrays a float32 case computes with


def _check_float32(path, fields):
    """With precision: float32 the given arrays are cast to single precision: each number must stay itself."""
    for name in FLOAT32_GIVEN:
        node = fields.get(name)
        stack = [node] if node is not None else []
        while stack:
            n = stack.pop()
            if isinstance(n.value, (list, dict)):
                stack.extend(reversed(n.value if isinstance(n.value, list) else list(n.value.values())))
            elif isinstance(n.value, Number):
                v = abs(n.value.value)
                if v > FLOAT32_MAX:
                    raise _err(
                        path,
                        n,
                        f"{n.value.text} overflows a 32-bit float (precision: float32; the largest is about 3.4e38)",
                    )
                if 0 < v < FLOAT32_TINY:
                    raise _err(
                        path,
                        n,
                        f"{n.value.text} is below the smallest normal 32-bit float (precision: "
                        f"float32; about 1.2e-38): write 0 if 0 is meant",
                    )


def _check_range(path, node, what, loss):
    """Each number of ``what`` (a or y) in the range the loss needs, refused at its own position."""
    bounds = PROBABILITIES.get(loss, {}).get(what)
    if bounds is None:
        return
    low, high, why = bounds
    outside, allowed = (
        (f"outside [{low:g}, {high:g}]", f"in [{low:g}, {high:g}]") if high is not None else ("negative", f"≥ {low:g}")
    )
    for leaf in _leaves(node):
        v = leaf.value.value
        if v < low or (high is not None and v > high):
            raise _err(path, leaf, f"{what}: {leaf.value.text} is {outside}: {loss} needs {what} {allowed} ({why})")


def _parse_expr(path, node, what):
    text = _string(path, node, what)
    try:
        return expr_lang.parse(text)
    except expr_lang.ExprError as exc:
        # a quoted scalar starts one column before its text
        col = node.col + exc.offset + (1 if node.quoted else 0)
        raise CaseError(path, node.line, col, f"{what}: {exc.message}") from None
    except RecursionError:  # the parser's own limits should come first; this is the last guard
        raise _err(path, node, f"{what}: the expression is nested too deeply to parse") from None


# ---------------------------------------------------------------- kinds


def _load_activation(path, fields, case):
    name, param = _activation(path, fields["activation"])
    z, _ = _array(path, fields["z"], "z")
    case.given = {"activation": (name, param), "z": z}
    size = z.size
    case.quantities = {"a": size}
    if name not in ("softmax", "log_softmax"):
        case.quantities["f'(z)"] = size


def _load_loss(path, fields, case):
    loss = _loss(path, fields["loss"])
    a, _ = _array(path, fields["a"], "a")
    y, _ = _array(path, fields["y"], "y")
    if a.shape != y.shape:
        raise _err(path, fields["y"], f"y has shape {_shape(y)} but a has shape {_shape(a)}")
    _check_range(path, fields["a"], "a", loss[0])
    _check_range(path, fields["y"], "y", loss[0])
    case.given = {"loss": loss, "a": a, "y": y}
    case.quantities = {"C": 1, "dC/da": a.size}


def _shape(array):
    return "×".join(str(n) for n in array.shape) or "scalar"


def _load_network(path, fields, case, limits=DEFAULT):
    layers_node = fields["layers"]
    if not isinstance(layers_node.value, list) or not layers_node.value:
        raise _err(path, layers_node, "layers must be a non-empty list of layers (each with W and activation)")
    x, _ = _array(path, fields["x"], "x")
    y, _ = _array(path, fields["y"], "y")
    col = case.convention == "column"
    if x.ndim > 2:
        raise _err(path, fields["x"], f"x must be a vector or a matrix, not shape {_shape(x)}")
    n_in = x.shape[0] if (col or x.ndim == 1) else x.shape[1]
    N = 1 if x.ndim <= 1 else (x.shape[1] if col else x.shape[0])
    if x.ndim == 0:
        x = x.reshape(1)
        n_in = 1
    W, b, f = {}, {}, {}
    shapes = {}
    for l, layer in enumerate(layers_node.value, start=1):
        what = f"layer {l}"
        _check_fields(path, layer, {"W", "b", "activation"}, what)
        _require(path, layer, ("W", "activation"), what)
        w, _ = _array(path, layer.value["W"], f"W{l}")
        if w.ndim == 0:
            w = w.reshape(1, 1)
        if w.ndim != 2:
            raise _err(path, layer.value["W"], f"W{l} must be a matrix (a list of rows), not shape {_shape(w)}")
        w_in, w_out = (w.shape[1], w.shape[0]) if col else w.shape
        if w_in != n_in:
            source = "the input has" if l == 1 else f"layer {l - 1} has"
            orient = "(out, in)" if col else "(in, out)"
            raise _err(
                path,
                layer.value["W"],
                f"W{l} has shape {_shape(w)}, i.e. {w_in} inputs in the {case.convention} convention "
                f"{orient}, but {source} {n_in} {'features' if l == 1 else 'units'}",
            )
        W[l] = w
        bias = layer.value.get("b")
        if bias is None or bias.value is None:
            b[l] = None
        else:
            bv, _ = _array(path, bias, f"b{l}")
            if bv.size != w_out:
                raise _err(path, bias, f"b{l} has {bv.size} entries but W{l} has {w_out} output{'s' * (w_out != 1)}")
            b[l] = bv.reshape(w_out)
        f[l] = _activation(path, layer.value["activation"])
        shapes[l] = w_out
        n_in = w_out
    L = len(W)
    y_units = y.size // N if y.size % N == 0 else -1
    if y.size != N * shapes[L] or y_units != shapes[L]:
        raise _err(
            path,
            fields["y"],
            f"y has {y.size} values but the network has {shapes[L]} "
            f"output{'s' * (shapes[L] != 1)} "
            f"for {N} example{'s' if N > 1 else ''}",
        )
    loss = _loss(path, fields["loss"])
    _check_range(path, fields["y"], "y", loss[0])
    eta, steps, frozen = None, 0, ()
    gd = fields.get("gradient_descent")
    if gd is not None:
        _check_fields(path, gd, {"eta", "steps", "frozen", "allow_nonpositive_eta"}, "gradient_descent")
        _require(path, gd, ("eta",), "gradient_descent")
        eta_number = _number(path, gd.value["eta"], "eta")
        eta = eta_number.value
        allow = gd.value.get("allow_nonpositive_eta")
        if allow is not None and not isinstance(allow.value, bool):
            raise _err(path, allow, f"allow_nonpositive_eta must be true or false, not {describe_value(allow)}")
        if eta <= 0 and not (allow is not None and allow.value):
            raise _err(
                path,
                gd.value["eta"],
                f"eta must be > 0 for gradient descent, not {eta_number.text} "
                f"(a case that means a step of zero or uphill says allow_nonpositive_eta: true)",
            )
        steps = 1
        if "steps" in gd.value:
            s = _number(path, gd.value["steps"], "steps")
            if s.value != int(s.value) or s.value < 1:
                raise _err(path, gd.value["steps"], f"steps must be a whole number ≥ 1, not {s.text}")
            if s.value > limits.max_steps:
                raise _err(
                    path,
                    gd.value["steps"],
                    f"steps: {s.text} gradient-descent steps are more than a case may run; {hint('max_steps', limits)}",
                )
            steps = int(s.value)
        frozen_node = gd.value.get("frozen")
        if frozen_node is not None:
            if not isinstance(frozen_node.value, list):
                raise _err(path, frozen_node, "frozen must be a list such as [b1, W2]")
            names = [f"W{l}" for l in W] + [f"b{l}" for l in W if b[l] is not None]
            frozen = tuple(_choice(path, n, "frozen parameter", names) for n in frozen_node.value)
    case.given = {
        "W": W,
        "b": b,
        "f": f,
        "x": x,
        "y": y,
        "loss": loss,
        "eta": eta,
        "steps": steps,
        "frozen": frozen,
        "N": N,
    }
    # in the order of the computation: forward pass, cost, backward pass layer by layer, update
    q = {}
    elementwise = {l: f[l][0] not in ("softmax", "log_softmax") for l in W}
    for t in range(1, max(steps, 1) + 1):
        at = "" if t == 1 else f"@{t}"
        for l in W:
            q[f"z[{l}]{at}"] = q[f"a[{l}]{at}"] = shapes[l] * N
        q[f"C{at}"] = 1
        for l in sorted(W, reverse=True):
            q[f"dC/da[{l}]{at}"] = shapes[l] * N
            if elementwise[l]:
                q[f"f'(z[{l}]){at}"] = shapes[l] * N
            q[f"delta[{l}]{at}"] = shapes[l] * N
            q[f"dC/dW[{l}]{at}"] = W[l].size
            if b[l] is not None:
                q[f"dC/db[{l}]{at}"] = b[l].size
        if t <= steps:
            for l in W:
                q[f"W[{l}]'{at}"] = W[l].size
                if b[l] is not None:
                    q[f"b[{l}]'{at}"] = b[l].size
    case.quantities = q


def _load_graph(path, fields, case):
    inputs = {}
    for name, node in _mapping(path, fields["inputs"], "inputs").items():
        inputs[name] = _number(path, node, f"input {name}").value
    program = []
    known = set(inputs)
    for name, node in _mapping(path, fields["graph"], "graph").items():
        if name in known:
            raise _err(path, node, f"{name!r} is defined twice (as an input or an earlier node)")
        tree = _parse_expr(path, node, f"node {name}")
        try:
            expr_lang.check_scalar(tree)
        except ValueError as exc:
            raise _err(path, node, f"node {name}: {exc}") from None
        unknown = sorted(expr_lang.names(tree) - known)
        if unknown:
            raise _err(
                path,
                node,
                f"node {name} uses {unknown[0]!r}, which is neither an input nor an "
                f"earlier node{suggest(unknown[0], known)}",
            )
        program.append((name, tree))
        known.add(name)
    if not program:
        raise _err(path, fields["graph"], "graph must define at least one node")
    out = program[-1][0]
    perturbations = []
    pert_node = fields.get("perturbations")
    if pert_node is not None:
        if not isinstance(pert_node.value, list):
            raise _err(path, pert_node, "perturbations must be a list of mappings such as {x: 1}")
        for p in pert_node.value:
            offsets = {}
            for name, node in _mapping(path, p, "a perturbation").items():
                if name not in known:
                    raise _err(path, node, f"cannot perturb {name!r}: not an input or node{suggest(name, known)}")
                offsets[name] = _number(path, node, f"perturbation of {name}").value
            perturbations.append(offsets)
    case.given = {"program": program, "inputs": inputs, "perturbations": perturbations}
    ordered = list(inputs) + [name for name, _ in program]  # file order, the same in every process
    q = {name: 1 for name in ordered}
    q.update({f"d{out}/d{name}": 1 for name in ordered})
    for offsets in perturbations:
        label = perturbation_label(offsets)
        q.update({f"{name}({label})": 1 for name in ordered})
        q[f"Δ{out}({label})"] = 1
    case.quantities = q


def perturbation_label(offsets):
    """{'x': 1} → 'x+1' (the name used in quantities such as f(x+1))."""
    return ",".join(f"{k}{'+' if v >= 0 else '-'}{_fmt(abs(v))}" for k, v in offsets.items())


def _fmt(v):
    return str(int(v)) if float(v).is_integer() else repr(v)


def _load_jacobian(path, fields, case):
    W, _ = _array(path, fields["W"], "W")
    if W.ndim != 2:
        raise _err(path, fields["W"], f"W must be a matrix (a list of rows), not shape {_shape(W)}")
    x, _ = _array(path, fields["x"], "x")
    x = x.reshape(-1)
    n_in, n_out = (W.shape[1], W.shape[0]) if case.convention == "column" else W.shape
    if x.size != n_in:
        raise _err(
            path, fields["x"], f"x has {x.size} entries but W has {n_in} inputs in the {case.convention} convention"
        )
    b = None
    if fields.get("b") is not None and fields["b"].value is not None:
        b, _ = _array(path, fields["b"], "b")
        if b.size != n_out:
            raise _err(path, fields["b"], f"b has {b.size} entries but W has {n_out} outputs")
    case.given = {"W": W, "b": b, "x": x}
    case.quantities = {"dz/dx": n_out * n_in, "dz/dW": n_out * W.size}


_LOADERS = {
    "activation": _load_activation,
    "loss": _load_loss,
    "network": _load_network,
    "graph": _load_graph,
    "jacobian": _load_jacobian,
}


# ---------------------------------------------------------------- bindings


def binding(quantity):
    """The name a quantity has inside expressions: z[1] → z1, dC/dW[2] → dC_dW2, W[1]' → W1_new,
    f'(z[1]) → fprime1, df/dx → df_dx, f(x+1) → None (not addressable)."""
    if "@" in quantity:
        return None
    m = re.fullmatch(r"f'\(z(?:\[(\d+)\])?\)", quantity)
    if m:
        return f"fprime{m.group(1) or ''}"
    m = re.fullmatch(r"(\w+)\[(\d+)\]'", quantity)
    if m:
        return f"{m.group(1)}{m.group(2)}_new"
    name = re.sub(r"\[(\d+)\]", r"\1", quantity).replace("/", "_")
    return name if re.fullmatch(r"[A-Za-z_]\w*", name) else None


def given_bindings(case):
    """Names of the given values usable in expressions."""
    g = case.given
    if case.kind == "network":

        def batch(v):  # one example as a column (n, 1), or a row (1, n): the engines' shapes
            v = np.asarray(v, dtype=float)
            if v.ndim == 1:
                return v[:, None] if case.convention == "column" else v[None, :]
            return v

        env = {"x": batch(g["x"]), "y": batch(g["y"]), "N": float(g["N"])}
        if g["eta"] is not None:
            env["eta"] = g["eta"]
        for l in g["W"]:
            env[f"W{l}"] = g["W"][l]
            if g["b"][l] is not None:
                env[f"b{l}"] = g["b"][l]
        return env
    if case.kind == "graph":
        return dict(g["inputs"])
    if case.kind == "jacobian":
        env = {"W": g["W"], "x": g["x"]}
        if g["b"] is not None:
            env["b"] = g["b"]
        return env
    return {k: v for k, v in g.items() if k in ("z", "a", "y")}


# ---------------------------------------------------------------- expectations

EXPECT_FIELDS = {"value", "allowance", "reason", "erratum", "correct", "computed", "heading", "exact"}


def _load_expect(path, node, case, known):
    out = []
    for quantity, entry in _mapping(path, node, "expect").items():
        if quantity not in known:
            hint = suggest(quantity, known)
            listing = ", ".join(sorted(known)[:12]) + (", …" if len(known) > 12 else "")
            raise _key_error(path, node, quantity, f"unknown quantity {quantity!r}{hint} (this case has: {listing})")
        fields = {"value": entry}
        if isinstance(entry.value, dict):
            _check_fields(path, entry, EXPECT_FIELDS, f"expect {quantity}")
            _require(path, entry, ("value",), f"expect {quantity}")
            fields = entry.value
        value, decimals, texts = _array(path, fields["value"], quantity, texts=True)
        size = known[quantity]
        if size is not None and value.size != size:
            raise _err(
                path,
                fields["value"],
                f"{quantity} has {value.size} value{'s' if value.size > 1 else ''} here but the case gives it {size}",
            )
        e = Expected(quantity, value, decimals, entry.line, entry.col, texts=texts.reshape(-1).tolist())
        if "allowance" in fields:
            e.allowance = _number(path, fields["allowance"], "allowance").value
            if e.allowance < 0:
                raise _err(
                    path,
                    fields["allowance"],
                    f"an allowance is an extra tolerance ≥ 0, not {fields['allowance'].value.text}",
                )
            if "reason" not in fields:
                raise _err(
                    path,
                    fields["allowance"],
                    "an allowance needs a reason (why the document's rounding goes beyond its last printed decimal)",
                )
        if "reason" in fields:
            e.reason = _string(path, fields["reason"], "reason")
        if "erratum" in fields:
            e.erratum = _string(path, fields["erratum"], "erratum")
            if "correct" in fields:
                e.correct, e.correct_decimals, ctexts = _array(
                    path, fields["correct"], f"correct {quantity}", texts=True
                )
                e.correct_texts = ctexts.reshape(-1).tolist()
                if e.correct.size != value.size:
                    raise _err(
                        path,
                        fields["correct"],
                        f"correct {quantity} has {e.correct.size} values but the printed value has {value.size}",
                    )
        elif "correct" in fields:
            raise _err(path, fields["correct"], "'correct' belongs to an erratum: add erratum: <note>")
        if "heading" in fields:
            e.heading = _string(path, fields["heading"], "heading")
        for flag_name in ("computed", "exact"):
            if flag_name in fields:
                flag = fields[flag_name]
                if not isinstance(flag.value, bool):
                    raise _err(path, flag, f"{flag_name} must be true or false, not {describe_value(flag)}")
                setattr(e, flag_name, flag.value)
        out.append(e)
    return out


def _load_formulas(path, node, case, known_bindings, known_quantities):
    if not isinstance(node.value, list):
        raise _err(path, node, "formulas must be a list of {name, printed, expr, equals}")
    out = []
    for item in node.value:
        _check_fields(path, item, {"name", "printed", "expr", "equals", "erratum", "correct", "heading"}, "formula")
        _require(path, item, ("name", "printed", "expr", "equals"), "formula")
        f = item.value
        tree = _parse_expr(path, f["expr"], "formula expr")
        unknown = sorted(expr_lang.names(tree) - known_bindings)
        if unknown:
            raise _err(
                path,
                f["expr"],
                f"formula uses {unknown[0]!r}, which this case does not define{suggest(unknown[0], known_bindings)}",
            )
        equals = _string(path, f["equals"], "equals")
        if equals not in known_quantities:
            raise _err(path, f["equals"], f"unknown quantity {equals!r}{suggest(equals, known_quantities)}")
        formula = Formula(
            _string(path, f["name"], "name"), _string(path, f["printed"], "printed"), tree, equals, item.line, item.col
        )
        if "heading" in f:
            formula.heading = _string(path, f["heading"], "heading")
        if "erratum" in f:
            formula.erratum = _string(path, f["erratum"], "erratum")
            if "correct" in f:
                formula.correct = _string(path, f["correct"], "correct")
                formula.correct_tree = _parse_expr(path, f["correct"], "formula correct")
                unknown = sorted(expr_lang.names(formula.correct_tree) - known_bindings)
                if unknown:
                    raise _err(
                        path,
                        f["correct"],
                        f"correct formula uses {unknown[0]!r}, which this case "
                        f"does not define{suggest(unknown[0], known_bindings)}",
                    )
        out.append(formula)
    return out


CASE_SUFFIXES = (".yaml", ".yml")

_KINDS_OF_FILE = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path, mode):
    for test, what in _KINDS_OF_FILE:
        if test(mode):
            return CaseError(
                path,
                1,
                1,
                f"{what}, not a case file: only regular files are read as cases"
                + ("" if test is stat.S_ISDIR else " (it was not opened)"),
            )
    return CaseError(path, 1, 1, "not a regular file: only regular files are read as cases (it was not opened)")


def read_case_file(path, limits=None) -> bytes:
    """The bytes of a case file: a regular file (stat first: a FIFO or a device is never opened) within the size
    limit (checked before reading, and again while reading, in case the file grows)."""
    limits = limits or DEFAULT
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise CaseError(path, 1, 1, f"a symbolic link to {os.readlink(path)!r}, which does not exist") from None
        raise CaseError(path, 1, 1, "no such file or folder") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CaseError(
                path, 1, 1, "a symbolic link that loops (it leads back to itself): not a case file"
            ) from None
        raise CaseError(path, 1, 1, f"cannot read the file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)
    too_big = f"more than a case file may have; {hint('max_file_mb', limits, ' MB')}"
    if st.st_size > limits.max_bytes:
        raise CaseError(path, 1, 1, f"the file is {st.st_size / 1e6:.1f} MB ({st.st_size} bytes), {too_big}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced between stat and open
                raise _not_regular(path, os.fstat(f.fileno()).st_mode)
            raw = f.read(limits.max_bytes + 1)
    except OSError as exc:
        raise CaseError(path, 1, 1, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > limits.max_bytes:
        raise CaseError(path, 1, 1, f"the file has grown past {limits.max_bytes} bytes while being read, {too_big}")
    return raw


def decode_case(path, raw) -> str:
    """The text of a case file: UTF-8, or a CaseError at the first byte that is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        raise CaseError(
            path, line, col, f"the byte 0x{raw[exc.start]:02x} is not UTF-8 ({exc.reason}): case files are UTF-8 text"
        ) from None


def load_case(path, limits=None) -> Case:
    """Read, validate and prepare one case file; CaseError on any problem — never another exception."""
    path = Path(path)
    limits = limits or DEFAULT
    return guarded(path, lambda: _load_case(path, limits), limits)


def guarded(path, work, limits=None):
    """``work()``, with any failure that is not a CaseError turned into one: no input gives a traceback."""
    limits = limits or DEFAULT
    try:
        return work()
    except CaseError:
        raise
    except RecursionError:
        raise CaseError(
            path, 1, 1, f"nested too deeply for Python's stack: lower --max-depth (now {limits.max_depth})"
        ) from None
    except MemoryError:
        raise CaseError(
            path,
            1,
            1,
            f"too large to fit in memory: lower --max-elements (now {limits.max_elements}) "
            f"or --max-total (now {limits.max_total})",
        ) from None
    except Exception as exc:  # a bug of the loader: still one located line, never a traceback
        raise CaseError(
            path,
            1,
            1,
            f"the loader failed ({type(exc).__name__}: {exc}); this is a bug of "
            f"backprop-oracle, please report it with the file",
        ) from None


def _load_case(path, limits):
    raw = read_case_file(path, limits)
    root = load(decode_case(path, raw), path, limits, finite=True)
    return case_from_node(path, raw, root, limits)


def case_from_node(path, raw, root, limits=None) -> Case:
    """The Case of a parsed file (``root`` from yamlsafe.load): every check after the YAML."""
    path = Path(path)
    limits = limits or DEFAULT
    fields = _mapping(path, root, "a case file")
    kind_node = fields.get("kind")
    if kind_node is None:
        raise _err(path, root, f"the case has no 'kind' (one of: {', '.join(KINDS)})")
    kind = _choice(path, kind_node, "kind", KINDS)
    _check_fields(path, root, COMMON_FIELDS | KIND_FIELDS[kind], f"a {kind} case")
    _require(path, root, ("title", "source") + REQUIRED[kind], f"a {kind} case")
    source = fields["source"]
    _check_fields(path, source, {"document", "heading", "instance"}, "source")
    _require(path, source, ("document", "heading"), "source")
    case = Case(
        path=path,
        raw=raw,
        title=_string(path, fields["title"], "title"),
        kind=kind,
        source={k: _string(path, v, f"source {k}") for k, v in source.value.items()},
    )
    if "convention" in fields:
        case.convention = _choice(path, fields["convention"], "convention", CONVENTIONS)
    if "note" in fields:
        case.note = _string(path, fields["note"], "note")
    if "precision" in fields:
        case.precision = _choice(path, fields["precision"], "precision", PRECISIONS)
    if kind == "network":
        _load_network(path, fields, case, limits)
    else:
        _LOADERS[kind](path, fields, case)
    if case.precision == "float32":
        _check_float32(path, fields)

    bindings = set(given_bindings(case)) | {binding(q) for q in case.quantities if binding(q)}
    if "define" in fields:
        for name, node in _mapping(path, fields["define"], "define").items():
            if name in case.quantities:
                raise _err(path, node, f"{name!r} is already a quantity of this case")
            tree = _parse_expr(path, node, f"define {name}")
            unknown = sorted(expr_lang.names(tree) - bindings)
            if unknown:
                raise _err(
                    path,
                    node,
                    f"define {name} uses {unknown[0]!r}, which this case does not define"
                    f"{suggest(unknown[0], bindings)}",
                )
            case.define[name] = (tree, node.value)
            case.quantities[name] = None  # size known only once computed
            if binding(name):
                bindings.add(binding(name))
    if "expect" in fields:
        case.expect = _load_expect(path, fields["expect"], case, case.quantities)
    if "formulas" in fields:
        case.formulas = _load_formulas(path, fields["formulas"], case, bindings, case.quantities)
    return case


def discover(paths):
    """Case files under the given files or folders (default: cases/), sorted.

    Every entry named *.yaml or *.yml is a case file, whatever it is: a FIFO, a device, a broken link or a
    folder so named is returned too, so that loading reports it by name (a folder named like a case file is
    not searched). A folder that is named is searched; symbolic links to folders are not followed."""
    found = []
    for p in map(Path, paths):
        if p.is_dir() and not p.name.endswith(CASE_SUFFIXES):
            matches = _walk(p)
            found.extend(
                sorted(m for m in matches if m.name.endswith(".yaml"))
                + sorted(m for m in matches if m.name.endswith(".yml"))
            )
        else:
            found.append(p)
    return found


def _walk(folder):
    matches, todo = [], [folder]
    while todo:
        current = todo.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(CASE_SUFFIXES):
                matches.append(Path(current) / entry.name)
            elif entry.is_dir(follow_symlinks=False):
                todo.append(Path(current) / entry.name)
    return matches
