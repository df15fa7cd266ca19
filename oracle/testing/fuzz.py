"""``fuzz``: random differential testing of refimpl against the torch oracle and finite differences.

    backprop-oracle fuzz [--seconds S | --count N] [--seed SEED] [--out DIR]
                         [--max-width W] [--max-batch N]

Draws random networks (``random_spec``): 1–5 layers, widths 1–64 (log-uniform, so
mostly small), every activation in every position where it makes sense
(softmax / log_softmax only at the output), every loss with the output
activations it goes with, both conventions, bias on or off per layer, batches
of 1–128 examples, sum and mean reductions, factor ½ or 1, 0–3 steps of
gradient descent with sometimes frozen parameters, and now and then an exact
kink on purpose (a unit with z = 0 for every example). Case i of seed S is
always the same network (its generator is numpy's default_rng([S, i])).

Each one is checked (``check_spec``) directly on arrays — no case file, no
report machinery — so that hundreds run per second:

- refimpl and torch agree on every z, a, C, ∂C/∂a, δ, ∂C/∂W, ∂C/∂b and updated
  parameter of every step, to 1e-10 relative with a 1e-12 absolute floor
  (oracle.verdict.engines: the report's engine-vs-engine rule);
- central differences of refimpl's *values* (the finite-difference engine's
  cost) agree with refimpl's gradients within their documented error, at every
  step: (C(θ + hv) − C(θ − hv))/2h ≈ ∇C·v along a random unit direction v of all
  parameters, and one of: a random coordinate of θ, δ^l along a random
  direction of z^l, ∂C/∂a^l along a random direction of a^l.
  |fd − ∇C·v| ≤ FD_RTOL·Σ|∇C_i v_i| + FD_ATOL·(1 + |C|), plus the truncation
  error h²|C‴|/6 estimated from two more values where that fails. Where a kink
  (relu, leaky_relu, prelu, mae) lies within ±h (the one-sided slopes disagree: the
  finite-difference engine's own rule, finite_diff.kink), or the cost is not finite
  there, or binary cross-entropy is computed from a saturated a (see
  ``_fd_conditioned``), the check declines, as the finite-difference engine does.

Values stay in sane ranges (``random_spec``: x ~ N(0, 1), W ~ N(0, 1/fan_in), step
sizes per example and output); a step of gradient descent that nevertheless
leaves them (|z| > Z_MAX: a diverging descent) ends the comparison of that case,
and the run says how many did.

Every disagreement is written to DIR (default cases/regression/) as a case
file (``case_text``) that reproduces it: ``python -m oracle report FILE`` runs
it through the three engines. The exit status is 1 if any was found.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import refimpl
from oracle.engines.finite_diff import FD_ATOL, FD_RTOL, STEP, FiniteDifferences, directional
from oracle.verdict.engines import agree, tolerance

HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "swish")
OUTPUT_ONLY = ("softmax", "log_softmax")
LOSSES = ("squared_error", "mse", "mae", "binary_cross_entropy", "cross_entropy")
OUTPUTS = {  # the output activations each loss goes with
    "squared_error": HIDDEN + OUTPUT_ONLY,
    "mse": HIDDEN + OUTPUT_ONLY,
    "mae": HIDDEN + OUTPUT_ONLY,
    "binary_cross_entropy": ("sigmoid",),
    "cross_entropy": ("softmax",),
}
KINKED = ("relu", "leaky_relu", "prelu")  # activations with a kink at z = 0
PARAM_RANGE = {"leaky_relu": (0.01, 0.5), "prelu": (0.05, 0.5), "swish": (0.25, 2.0)}
SCHEMA = Path(__file__).resolve().parents[1] / "authoring" / "case.schema.json"
DEFAULT_OUT = Path("cases") / "regression"

# The engines compared: the reference under test and the oracle. Module attributes, so that a
# test can swap in a faulty engine (e.g. oracle.student.mistakes.MistakeEngine) for REFERENCE.
REFERENCE = refimpl
ORACLE = None  # None: oracle.engines.torch_engine, imported on first use (torch takes a second)


def _oracle():
    global ORACLE
    if ORACLE is None:
        from oracle.engines import torch_engine

        ORACLE = torch_engine
    return ORACLE


@dataclass
class Spec:
    """A random network case: everything a network case file gives, as arrays.

    W, b, f are keyed by the layer number l = 1..L, in the case's convention
    (column: W^l of shape (n_l, n_{l−1}), x of shape (n_0, N); row: the transposes).
    x and y are always matrices, exactly as the case file writes them.
    """

    convention: str
    W: dict
    b: dict
    f: dict
    x: np.ndarray
    y: np.ndarray
    loss: tuple  # (name, factor, reduction)
    eta: float | None = None  # None: no gradient descent
    steps: int = 0
    frozen: tuple = ()
    label: str = ""  # how it was drawn, e.g. "seed 1, case 17"
    kinks: list = field(default_factory=list)  # (l, j): unit j of layer l has z = 0 on purpose

    @property
    def widths(self):
        col = self.convention == "column"
        n0 = self.x.shape[0] if col else self.x.shape[1]
        return [n0] + [w.shape[0] if col else w.shape[1] for _, w in sorted(self.W.items())]

    @property
    def batch(self):
        return self.x.shape[1] if self.convention == "column" else self.x.shape[0]

    def describe(self):
        acts = ", ".join(_act_text(self.f[l]) for l in sorted(self.f))
        bias = "".join("b" if self.b[l] is not None else "-" for l in sorted(self.b))
        gd = f", {self.steps} step{'s' * (self.steps != 1)} η = {self.eta:.3g}" if self.eta is not None else ""
        if self.frozen:
            gd += f" frozen {','.join(self.frozen)}"
        return (
            f"{'-'.join(map(str, self.widths))} ({acts}; bias {bias}), {self.loss[0]} ×{self.loss[1]:g} "
            f"{self.loss[2]}, {self.convention}, N = {self.batch}{gd}"
            + (f", kink at {self.kinks}" if self.kinks else "")
        )


def _act_text(act):
    name, param = act
    return name if param is None else f"{name}({param:.3g})"


# ---------------------------------------------------------------- random specs


def _log_int(rng, hi):
    """An integer in 1..hi, log-uniform: small values are as likely as large orders of magnitude."""
    return int(min(hi, max(1, math.floor(math.exp(rng.uniform(0.0, math.log(hi + 1)))))))


def _param(rng, name):
    if name not in PARAM_RANGE or rng.random() < 0.4:
        return None  # the activation's default parameter
    return float(rng.uniform(*PARAM_RANGE[name]))


def random_spec(
    rng,
    *,
    widths=None,
    activations=None,
    loss=None,
    factor=None,
    reduction=None,
    convention=None,
    batch=None,
    bias=None,
    steps=None,
    eta=None,
    frozen=None,
    kink=None,
    max_layers=5,
    max_width=64,
    max_batch=128,
    label="",
):
    """A random network case (a ``Spec``) drawn with the NumPy generator ``rng``.

    Every structural choice may be fixed by a keyword (the property tests draw them with
    hypothesis, so that a counterexample shrinks): ``widths`` [n_0, …, n_L];
    ``activations`` one name or (name, param) per layer; ``loss`` name, ``factor`` 0.5 or 1,
    ``reduction``; ``convention``; ``batch`` N; ``bias`` one bool per layer; ``steps`` of gradient
    descent (0: none); ``frozen`` parameter names; ``kink``: give one unit z = 0 exactly for every
    example (needs a layer with relu, leaky_relu or prelu). What is not fixed is drawn:
    1..max_layers layers, widths and batch log-uniform up to max_width and max_batch.

    Values are kept in sane ranges: x ~ N(0, 1), W^l ~ N(0, 1/n_{l−1}), b ~ N(0, 0.5²), so that
    z is of order 1 and no sigmoid saturates; continuous values never put z exactly at a kink
    except where ``kink`` puts it there.
    """
    loss = loss or LOSSES[rng.integers(len(LOSSES))]
    if widths is None:
        L = int(rng.integers(1, max_layers + 1))
        widths = [_log_int(rng, max_width) for _ in range(L + 1)]
    widths = list(widths)
    L = len(widths) - 1
    if L < 1:
        raise ValueError("a network has at least one layer")
    if activations is None:
        names = [HIDDEN[rng.integers(len(HIDDEN))] for _ in range(L - 1)]
        outs = OUTPUTS[loss]
        names.append(outs[rng.integers(len(outs))])
        activations = names
    acts = []
    for l, act in enumerate(activations, start=1):
        name, param = (act, _param(rng, act)) if isinstance(act, str) else act
        if name in OUTPUT_ONLY and l < L:
            raise ValueError(f"{name} belongs at the output layer only")
        acts.append((name, param))
    if len(acts) != L:
        raise ValueError(f"{len(acts)} activations for {L} layers")
    if acts[-1][0] not in OUTPUTS[loss]:
        raise ValueError(f"{loss} goes with the output activations {OUTPUTS[loss]}, not {acts[-1][0]}")
    if acts[-1][0] in OUTPUT_ONLY and widths[-1] < 2:
        widths[-1] = 2  # a softmax over one unit is the constant 1
    factor = float(factor if factor is not None else (0.5, 1.0)[rng.integers(2)])
    reduction = reduction or ("sum", "mean")[rng.integers(2)]
    convention = convention or ("column", "row")[rng.integers(2)]
    N = batch or _log_int(rng, max_batch)
    if bias is None:
        bias = [bool(rng.random() < 0.75) for _ in range(L)]
    if steps is None:
        steps = 0 if rng.random() < 0.15 else int(rng.integers(1, 4))
    if eta is None and steps:
        # η from 0.001 to 0.5 per example and output unit: divided by N for the sum over the
        # batch and by n_L for the costs summed over the outputs, so that gradient descent stays in
        # sane ranges (no training that diverges, saturating every sigmoid, in three steps)
        eta = float(math.exp(rng.uniform(math.log(0.001), math.log(0.5))))
        if reduction == "sum":
            eta /= N
        if loss in ("squared_error", "binary_cross_entropy"):
            eta /= widths[L]

    # values, in the column convention: W^l (n_l, n_{l−1}), x (n_0, N), y (n_L, N)
    W = {l: rng.normal(0.0, 1.0 / math.sqrt(widths[l - 1]), size=(widths[l], widths[l - 1])) for l in range(1, L + 1)}
    b = {l: rng.normal(0.0, 0.5, size=widths[l]) if bias[l - 1] else None for l in range(1, L + 1)}
    x = rng.normal(size=(widths[0], N))
    K = widths[L]
    if loss == "cross_entropy":
        if rng.random() < 0.5:
            y = np.eye(K)[:, rng.integers(K, size=N)]  # one-hot
        else:
            y = rng.dirichlet(np.ones(K), size=N).T  # a probability vector per example
    elif loss == "binary_cross_entropy" or acts[-1][0] == "sigmoid":
        y = rng.integers(2, size=(K, N)).astype(float) if rng.random() < 0.3 else rng.uniform(size=(K, N))
    else:
        y = rng.normal(size=(K, N))

    kinks = []
    kinked_layers = [l for l in range(1, L + 1) if acts[l - 1][0] in KINKED]
    if kink is None:
        kink = bool(kinked_layers) and rng.random() < 0.1
    if kink and kinked_layers:
        # W^l_j = 0 and b^l_j = 0: z^l_j = 0 exactly for every example, a kink of f^l
        l = kinked_layers[rng.integers(len(kinked_layers))]
        j = int(rng.integers(widths[l]))
        W[l][j, :] = 0.0
        if b[l] is not None:
            b[l][j] = 0.0
        if l == L and loss == "mae":
            y[j, :] = 0.0  # a^L_j = f(0) = 0 = y_j: the kink of |a − y| as well
        kinks.append((l, j))

    if frozen is None:
        frozen = ()
        if steps and rng.random() < 0.3:
            names = [f"W{l}" for l in W] + [f"b{l}" for l in b if b[l] is not None]
            k = int(rng.integers(1, len(names) + 1))
            frozen = tuple(sorted(rng.choice(names, size=k, replace=False).tolist()))
    if convention == "row":
        W = {l: np.ascontiguousarray(w.T) for l, w in W.items()}
        x, y = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)
    return Spec(
        convention=convention,
        W=W,
        b=b,
        f={l: acts[l - 1] for l in range(1, L + 1)},
        x=x,
        y=y,
        loss=(loss, factor, reduction),
        eta=eta if steps else None,
        steps=int(steps),
        frozen=tuple(frozen),
        label=label,
        kinks=kinks,
    )


# ---------------------------------------------------------------- case files


def _num(v):
    v = float(v)
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    return repr(v)  # the shortest text that reads back as the same float64


def _vector(values):
    return "[" + ", ".join(_num(v) for v in np.asarray(values).reshape(-1)) + "]"


def _matrix(m, indent):
    """A matrix as a block list of flow rows, one row per line."""
    pad = " " * indent
    return "".join(f"\n{pad}- {_vector(row)}" for row in np.atleast_2d(m))


def _schema_ref(directory):
    if directory is None:
        return "../../oracle/authoring/case.schema.json"  # cases/regression/
    return Path(os.path.relpath(SCHEMA, Path(directory).resolve())).as_posix()


def case_text(spec, problems=(), directory=None, command=None):
    """The YAML text of a network case file for ``spec`` (no expect: the engines are compared).

    Numbers are written with repr(), so the file loads (oracle.verdict.cases.load_case) to the
    same float64 arrays bit for bit. ``directory``: where the file will be written (for the
    relative path of the schema comment; default cases/regression/). ``problems`` are listed in
    a comment at the top.
    """
    lines = [f"# yaml-language-server: $schema={_schema_ref(directory)}"]
    lines.append(
        f"# Random network written by {command or 'oracle.testing.fuzz'}"
        f"{' (' + spec.label + ')' if spec.label else ''}."
    )
    if problems:
        lines.append("# Disagreements found when it was written (rerun: python -m oracle report THIS_FILE):")
        lines.extend("#   " + " ".join(str(p).split()) for p in problems)
    title = f"Random network {'-'.join(map(str, spec.widths))}, {spec.loss[0]}, {spec.convention} convention"
    if spec.label:
        title += f" ({spec.label})"
    instance = (
        (f"{spec.label}: " if spec.label else "")
        + "a random network drawn by oracle.testing.fuzz.random_spec (x ~ N(0, 1), "
        "W ~ N(0, 1/fan_in), b ~ N(0, 0.5²)); every number is written with Python's repr, "
        "so it loads to the same float64 bit for bit. No document prints values for it: "
        "only the engines are compared."
    )
    lines += [
        f"title: {json.dumps(title, ensure_ascii=False)}",
        "source:",
        "  document: random",
        "  heading: fuzz",
        f"  instance: {json.dumps(instance, ensure_ascii=False)}",
        "kind: network",
        f"convention: {spec.convention}",
    ]
    lines.append(f"note: {json.dumps(spec.describe(), ensure_ascii=False)}")
    lines.append("layers:")
    for l in sorted(spec.W):
        lines.append(f"  - W:{_matrix(spec.W[l], 6)}")
        if spec.b[l] is not None:
            lines.append(f"    b: {_vector(spec.b[l])}")
        name, param = spec.f[l]
        act = name if param is None else f"{{name: {name}, param: {_num(param)}}}"
        lines.append(f"    activation: {act}")
    name, factor, reduction = spec.loss
    lines.append(f"loss: {{name: {name}, factor: {_num(factor)}, reduction: {reduction}}}")
    lines.append(f"x:{_matrix(spec.x, 2)}")
    lines.append(f"y:{_matrix(spec.y, 2)}")
    if spec.eta is not None and spec.steps:
        gd = f"eta: {_num(spec.eta)}, steps: {spec.steps}"
        if spec.frozen:
            gd += f", frozen: [{', '.join(spec.frozen)}]"
        lines.append(f"gradient_descent: {{{gd}}}")
    return "\n".join(lines) + "\n"


def spec_from_case(case):
    """The Spec of a loaded network case (the inverse of ``case_text``)."""
    g = case.given
    x, y = np.asarray(g["x"], dtype=float), np.asarray(g["y"], dtype=float)
    col = case.convention == "column"
    if x.ndim == 1:  # one example written as a flat list
        x = x[:, None] if col else x[None, :]
    K = next(w for _, w in sorted(g["W"].items(), reverse=True)).shape[0 if col else 1]
    y = y.reshape((K, -1) if col else (-1, K)) if y.ndim < 2 else y
    return Spec(
        convention=case.convention,
        W=dict(g["W"]),
        b=dict(g["b"]),
        f=dict(g["f"]),
        x=x,
        y=y,
        loss=tuple(g["loss"]),
        eta=g["eta"],
        steps=g["steps"],
        frozen=tuple(g["frozen"]),
        label=case.source.get("instance", ""),
    )


# ---------------------------------------------------------------- the comparison


def _fmt(v):
    return f"{v:.12g}"


class _Comparison:
    """Engine vs engine: ``agree`` (oracle.verdict.engines) elementwise to the larger of the two engines'
    tolerances (float64: 1e-10 relative, 1e-12 absolute), finite, same shape (singleton axes aside,
    as the report compares shapes).

    Pairs are collected with ``add`` and checked together in ``flush`` (one vectorised test for
    all of them: the common case is that everything agrees); only when something disagrees is
    each quantity looked at on its own, to name it.
    """

    def __init__(self, problems, names, tols):
        self.problems, self.names, self.tols = problems, names, tols
        self.pending = []

    def add(self, quantity, u, v):
        if u is None or v is None:
            if (u is None) != (v is None):
                self.problems.append(
                    f"{quantity}: {self.names[0] if u is None else self.names[1]} gives no "
                    f"value, {self.names[1] if u is None else self.names[0]} does"
                )
            return
        u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
        if u.shape != v.shape and tuple(n for n in u.shape if n != 1) != tuple(n for n in v.shape if n != 1):
            self.problems.append(f"{quantity}: {self.names[0]} gives shape {u.shape}, {self.names[1]} gives {v.shape}")
            return
        self.pending.append((quantity, u.reshape(-1), v.reshape(-1)))

    def _bad(self, u, v):
        return ~agree(u, v, *self.tols)  # the report's engine-vs-engine rule (oracle.verdict.engines)

    def flush(self):
        pending, self.pending = self.pending, []
        if not pending:
            return
        u = np.concatenate([p[1] for p in pending])
        v = np.concatenate([p[2] for p in pending])
        if not self._bad(u, v).any():
            return
        n0, n1 = self.names
        for quantity, u, v in pending:
            bad = self._bad(u, v)
            if not bad.any():
                continue
            i = int(np.flatnonzero(bad)[0])
            finite = np.isfinite(u[i]) and np.isfinite(v[i])
            what = f"differ by {abs(u[i] - v[i]):.3g}" if finite else "not finite"
            k = int(bad.sum())
            self.problems.append(
                f"{quantity}: {n0} and {n1} {what} at element {i} of {u.size} ({n0} {_fmt(u[i])}, "
                f"{n1} {_fmt(v[i])}; {k} element{'s' * (k != 1)} disagree)"
            )


def _call(problems, engine, what, fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # an engine that fails is a finding, not a crash of the fuzzer
        problems.append(f"{what}: {getattr(engine, 'name', engine)} raised {type(exc).__name__}: {exc}")
        return None


class _Cost:
    """The cost of a spec as the finite-difference engine computes it (FiniteDifferences.cost: refimpl's
    ``activation`` layer by layer, then its ``loss``; values only, no derivative)."""

    def __init__(self, spec, values=refimpl):
        self.spec, self.engine = spec, FiniteDifferences(values)

    def __call__(self, W, b, reduction=None, offsets=None):
        s = self.spec
        with np.errstate(all="ignore"):  # a step out of the domain (log of a negative) is declined
            return float(self.engine.cost(W, b, s.f, s.x, s.y, s.loss, s.convention, reduction or s.loss[2], offsets))


def _truncation(fun, h):
    """The truncation error h²|C‴|/6 of the central difference, with C‴ estimated by the third
    difference (C(2h) − 2C(h) + 2C(−h) − C(−2h))/2h³, and Richardson's extrapolation
    (4·D(h) − D(2h))/3 of the difference (error O(h⁴)); None off the domain."""
    f2p, fp, fm, f2m = (fun(t * h) for t in (2.0, 1.0, -1.0, -2.0))
    t = abs(f2p - 2.0 * fp + 2.0 * fm - f2m) / (12.0 * h)
    richardson = (4.0 * (fp - fm) / (2.0 * h) - (f2p - f2m) / (4.0 * h)) / 3.0
    return (t, richardson) if math.isfinite(t) and math.isfinite(richardson) else None


EXTRA_FD = ("coordinate", "delta", "dC/da")
BCE_MARGIN = 1e-3


def _fd_conditioned(spec, a_L):
    """Whether the cost is computed accurately enough from a^L for central differences.

    The finite-difference engine computes binary cross-entropy from a = σ(z) as ln(1 − a): where
    1 − a ≪ 1, a's rounding error ε becomes ε/(1 − a) in the cost, far beyond the ε|C| the
    documented error assumes (at 1 − a = 1e-7 the difference is off by ~1e-3). There the check
    declines, as it declines at kinks; 1 − a ≥ 1e-3 (|z| ≤ 6.9) keeps the error within it."""
    if spec.loss[0] != "binary_cross_entropy":
        return True
    return bool(np.all(1.0 - np.asarray(a_L, dtype=float) >= BCE_MARGIN))


def _fd_checks(problems, spec, W, b, grads, rng, at):
    """Finite differences of refimpl's values against refimpl's gradients ``grads``, at one step.

    Always ∇C·v along a random unit direction v of all parameters; then one of: one random
    coordinate of θ (with the finite-difference engine's own step), δ^l along a random direction
    of z^l, ∂C/∂a^l along a random direction of a^l (l random; per-example quantities are the
    derivatives of Σ_n C_n, as in the finite-difference engine).
    """
    cost = _Cost(spec)
    W = {l: np.asarray(w, dtype=float) for l, w in W.items()}
    b = {l: None if v is None else np.asarray(v, dtype=float) for l, v in b.items()}
    layers = sorted(W)
    keys = [("W", l) for l in layers] + [("b", l) for l in layers if b[l] is not None]
    params = {("W", l): W[l] for l in layers}
    params.update({("b", l): b[l] for l in layers if b[l] is not None})
    gvals = {("W", l): grads["dC/dW"][l] for l in layers}
    gvals.update({("b", l): grads["dC/db"][l] for l in layers if b[l] is not None})
    if any(gvals[k] is None for k in keys):
        return
    theta = np.concatenate([params[k].reshape(-1) for k in keys])
    g = np.concatenate([np.asarray(gvals[k], dtype=float).reshape(-1) for k in keys])
    sizes = np.cumsum([0] + [params[k].size for k in keys])
    base = {}  # the unperturbed cost, per reduction

    def at_theta(t):
        Wt, bt = dict(W), dict(b)
        for (kind, l), lo, hi in zip(keys, sizes[:-1], sizes[1:]):
            (Wt if kind == "W" else bt)[l] = t[lo:hi].reshape(params[(kind, l)].shape)
        return cost(Wt, bt)

    def check(what, h, expected_terms, fun, reduction):
        if reduction not in base:
            base[reduction] = fun(0.0)
        c0 = base[reduction]
        expected = float(np.sum(expected_terms))
        # the documented error of the difference: FD_RTOL relative (to the terms of ∇C·v) and the
        # rounding error ε|C|/h, within FD_ATOL·(1 + |C|) ...
        tol = (
            FD_RTOL * float(np.sum(np.abs(expected_terms))) + FD_ATOL * (1.0 + abs(c0))
            if math.isfinite(c0)
            else math.inf
        )
        value, _ = directional(fun, h, c0, resolution=tol)
        if value is None:
            return  # a kink or the edge of the domain: no derivative to compare
        if abs(value - expected) <= tol:
            return
        # ... plus, where C is strongly curved (a near 0 inside a log), the truncation error
        # h²|C‴|/6 itself, estimated from two more values (only when the first comparison fails)
        trunc = _truncation(fun, h)
        if (
            trunc is None
            or abs(value - expected) <= tol + 2.0 * trunc[0]
            or abs(trunc[1] - expected) <= tol + 2.0 * trunc[0]
        ):
            return
        problems.append(
            f"{what}{at}: finite differences give {_fmt(value)}, numpy {_fmt(expected)} "
            f"(difference {abs(value - expected):.3g} > {tol + 2.0 * trunc[0]:.3g}; Richardson's "
            f"extrapolation {_fmt(trunc[1])})"
        )

    reduction = spec.loss[2]
    # all parameters along a random unit direction
    v = rng.normal(size=theta.size)
    v /= np.linalg.norm(v)
    h = STEP * max(1.0, float(np.max(np.abs(theta))))
    check("∇C·v (random direction of all parameters)", h, g * v, lambda s: at_theta(theta + s * v), reduction)
    extra = EXTRA_FD[int(rng.integers(len(EXTRA_FD)))]
    if extra == "coordinate":  # one coordinate, with the finite-difference engine's own step
        i = int(rng.integers(theta.size))
        k = int(np.searchsorted(sizes, i, side="right")) - 1
        kind, l = keys[k]
        idx = tuple(int(j) for j in np.unravel_index(i - sizes[k], params[keys[k]].shape))

        def along_e(s):
            t = theta.copy()
            t[i] += s
            return at_theta(t)

        check(f"dC/d{kind}[{l}] element {idx}", STEP * max(1.0, abs(theta[i])), g[i : i + 1], along_e, reduction)
        return
    # δ^l or ∂C/∂a^l of a random layer along a random direction V of z^l or a^l
    l = layers[int(rng.integers(len(layers)))]
    name = "z" if extra == "delta" else "a"
    per_example = np.asarray(grads[extra][l], dtype=float)
    V = rng.normal(size=per_example.shape)
    V /= np.linalg.norm(V)
    check(
        f"{extra}[{l}]·V (random direction of {name}[{l}])",
        STEP,
        per_example * V,
        lambda s: cost(W, b, reduction="sum", offsets={(name, l): s * V}),
        "sum",
    )


def check_spec(spec, reference=None, oracle=None, fd=True, rng=None):
    """Disagreements of the reference (refimpl) and the oracle (torch), and of finite differences.

    Runs the case's steps on each engine (each continues from its own updated parameters, as
    the report does) and compares every z[l], a[l], C, dC/da[l], delta[l], dC/dW[l], dC/db[l],
    W[l]', b[l]' of every step. Returns one message per quantity that disagrees, named as in
    the report (``z[1]@2`` is z[1] of step 2); an empty list when everything agrees.
    A step whose forward pass has left the sane range (gradient descent diverging: |z| > Z_MAX)
    and the steps after it are not compared (see ``check_spec_steps``).
    """
    return check_spec_steps(spec, reference, oracle, fd, rng)[0]


Z_MAX = 25.0
"""|z| beyond which a step of gradient descent has left the sane range (a diverging descent).

There float64 engines are not expected to agree to 1e-10: σ(z) and tanh(z) are 1 to within
1e-11, so PyTorch's autograd σ(1 − σ) and 1 − tanh² are differences of nearly equal numbers
(relative error ε·e^|z|); from |z| ≈ 27.6 binary cross-entropy's gradient is clamped at
a(1 − a) = 1e-12 and from a ≈ e^−100 cross-entropy's log at −100, where the engines' conventions
differ; and the gradients of a diverging descent are large enough for rounding to exceed the
1e-12 absolute floor. The random networks start with |z| of order 1 (never above 25)."""


def _diverged(z):
    return any(not np.all(np.abs(np.asarray(v, dtype=float)) <= Z_MAX) for v in z.values())


def check_spec_steps(spec, reference=None, oracle=None, fd=True, rng=None):
    """(problems, step): ``check_spec``'s list, and the step at which gradient descent left the
    sane range (|z| > Z_MAX in the reference's forward pass; that step and later ones are not
    compared), or None when every step was compared."""
    ref = reference or REFERENCE
    orc = oracle or _oracle()
    rng = rng if rng is not None else np.random.default_rng(0)
    names = (getattr(ref, "name", "reference"), getattr(orc, "name", "oracle"))
    if names[0] == names[1]:
        names = (names[0] + " (reference)", names[1] + " (oracle)")
    s = spec
    f, x, y, loss, conv = s.f, s.x, s.y, s.loss, s.convention
    axis = 0 if conv == "column" else 1
    L = max(s.W)
    problems = []
    cmp = _Comparison(problems, names, (tolerance(ref), tolerance(orc)))
    Wr, br = s.W, s.b
    Wo, bo = s.W, s.b
    for t in range(1, max(s.steps, 1) + 1):
        at = "" if t == 1 else f"@{t}"
        n = len(problems)
        fr = _call(problems, ref, f"forward{at}", ref.forward, Wr, br, f, x, conv)
        fo = _call(problems, orc, f"forward{at}", orc.forward, Wo, bo, f, x, conv)
        if fr is None or fo is None:
            break
        if t > 1 and _diverged(fr[0]):
            return problems, t
        for l in sorted(s.W):
            cmp.add(f"z[{l}]{at}", fr[0][l], fo[0][l])
            cmp.add(f"a[{l}]{at}", fr[1][l], fo[1][l])
        Cr = _call(problems, ref, f"C{at}", ref.loss, loss[0], fr[1][L], y, loss[1], loss[2], axis)
        Co = _call(problems, orc, f"C{at}", orc.loss, loss[0], fo[1][L], y, loss[1], loss[2], axis)
        cmp.add(f"C{at}", Cr, Co)
        gr = _call(problems, ref, f"backward{at}", ref.backward, Wr, br, f, x, y, loss, conv)
        go = _call(problems, orc, f"backward{at}", orc.backward, Wo, bo, f, x, y, loss, conv)
        if gr is None or go is None:
            break
        for l in sorted(s.W, reverse=True):
            for key in ("dC/da", "delta", "dC/dW", "dC/db"):
                if key == "dC/db" and s.b[l] is None:
                    continue
                cmp.add(f"{key}[{l}]{at}", gr[key][l], go[key][l])
        cmp.flush()
        if fd and len(problems) == n and _fd_conditioned(s, fr[1][L]):
            _fd_checks(problems, s, Wr, br, gr, rng, at)
        if t > s.steps:
            break
        ur = _call(problems, ref, f"train_step{at}", ref.train_step, Wr, br, f, x, y, loss, s.eta, s.frozen, conv)
        uo = _call(problems, orc, f"update{at}", orc.update, Wo, bo, go["dC/dW"], go["dC/db"], s.eta, s.frozen)
        if ur is None or uo is None:
            break
        for l in sorted(s.W):
            cmp.add(f"W[{l}]'{at}", ur[0][l], uo[0][l])
            if s.b[l] is not None:
                cmp.add(f"b[{l}]'{at}", ur[1][l], uo[1][l])
        cmp.flush()
        (Wr, br), (Wo, bo) = ur, uo
    cmp.flush()
    return problems, None


# ---------------------------------------------------------------- the command


def add_arguments(parser):
    """The options of ``fuzz`` on an argparse (sub)parser."""
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="Run random cases for S seconds (default 10 unless --count is given).",
    )
    budget.add_argument("--count", type=int, metavar="N", help="Run N random cases.")
    parser.add_argument(
        "--seed",
        type=int,
        metavar="SEED",
        help="Seed of the random cases (default: a fresh one, printed). Case i of seed S is always the same network.",
    )
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help="Folder for the case files of disagreements (default cases/regression/).",
    )
    parser.add_argument(
        "--max-width",
        type=int,
        default=64,
        metavar="W",
        help="Largest layer width (default 64; widths are log-uniform in 1..W).",
    )
    parser.add_argument(
        "--max-batch", type=int, default=128, metavar="N", help="Largest batch (default 128; log-uniform in 1..N)."
    )
    return parser


def write_case(spec, problems, out, name, command=None):
    """Write the case file reproducing ``problems``; check that it loads to the same arrays."""
    from oracle.verdict.cases import load_case

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    target.write_text(case_text(spec, problems, directory=out, command=command), encoding="utf-8")
    loaded = spec_from_case(load_case(target))
    for l in spec.W:
        assert np.array_equal(loaded.W[l], spec.W[l]), f"{target}: W{l} does not load back exactly"
    assert np.array_equal(loaded.x, spec.x) and np.array_equal(loaded.y, spec.y), (
        f"{target}: x or y does not load back exactly"
    )
    return target


def run(args):
    """``fuzz``: random cases for --seconds or --count; 1 if any disagreement, else 0."""
    from oracle.engines import torch_engine

    _oracle()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    seconds = getattr(args, "seconds", None)
    count = getattr(args, "count", None)
    if seconds is None and count is None:
        seconds = 10.0
    max_width, max_batch = getattr(args, "max_width", 64), getattr(args, "max_batch", 128)
    out = Path(getattr(args, "out", None) or DEFAULT_OUT)
    threads = torch_engine.threads(1)  # one core: small tensors are faster single-threaded
    written, failed, diverged, i = [], 0, 0, 0
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        while True:
            if count is not None and i >= count:
                break
            if seconds is not None and time.perf_counter() - start >= seconds:
                break
            rng = np.random.default_rng([seed, i])
            spec = random_spec(rng, max_width=max_width, max_batch=max_batch, label=f"seed {seed}, case {i}")
            problems, stopped = check_spec_steps(spec, rng=rng)
            diverged += stopped is not None
            if problems:
                failed += 1
                target = write_case(
                    spec, problems, out, f"fuzz_seed{seed}_case{i}.yaml", command=f"python -m oracle fuzz --seed {seed}"
                )
                written.append(target)
                print(f"DISAGREEMENT in case {i} ({spec.describe()}): written to {target}")
                for p in problems[:10]:
                    print(f"  {p}")
                if len(problems) > 10:
                    print(f"  … and {len(problems) - 10} more")
            i += 1
    finally:
        torch_engine.threads(threads)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rate = i / elapsed if elapsed > 0 else float("inf")
    cpu_rate = i / cpu if cpu > 0 else float("inf")
    print(
        f"fuzz: {i - failed} of {i} random cases passed ({rate:.0f} cases/s, {elapsed:.1f} s; "
        f"{cpu_rate:.0f} per CPU second, one thread; seed {seed})"
    )
    if diverged:
        print(
            f"({diverged} of them left the sane range during gradient descent, |z| > {Z_MAX:g}: "
            f"their steps before that were compared)"
        )
    if written:
        print(
            f"{failed} disagreement{'s' * (failed != 1)}: reproduce with python -m oracle report "
            + " ".join(map(str, written))
        )
    return 1 if failed else 0


def main(argv=None):  # pragma: no cover - the CLI wires ``run`` itself
    parser = add_arguments(argparse.ArgumentParser(prog="fuzz", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
