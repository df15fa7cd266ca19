"""Worked solutions: a case explained step by step, in the lectures' own notation.

    explain(case, fmt="text", decimals=4) -> str        fmt: "text", "markdown" or "latex"

Every number comes from the NumPy reference engine (``compute(case, refimpl)``; a graph's
local gate gradients from ``refimpl.graph`` on the gate alone). Numbers are rounded for
display only: each step shows the unrounded result of the steps before it, rounded.
Where the case declares an erratum for a quantity, the explanation shows the correct value
and a note with what the lecture prints.

The module is built in layers, each independent of the output format except the last:

1. math fragments ``M``: every piece of notation spelled twice, Unicode text and LaTeX;
2. the document: blocks (headings, paragraphs, chains of equations, notes);
3. ``Writer``: numbers → fragments, equations with the case's errata attached;
4. one explainer per kind of case (network in the column or row notation, graph,
   activation, loss, jacobian), plus the case's own derived values and printed formulas;
5. one renderer per format (terminal text, Markdown with $…$ math, a LaTeX fragment).
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

import refimpl

from oracle.verdict import expr as expr_lang
from oracle.verdict.cases import given_bindings, perturbation_label
from oracle.verdict.run import Missing, Uncomputable, compute, finite_math, require_all
from oracle.reports.safetext import terminal

FORMATS = ("text", "markdown", "latex")
GIVEN_DECIMALS = 6          # the case's own numbers are shown as given, to at most this many places


def explain(case, fmt="text", decimals=4) -> str:
    """The worked solution of a loaded case (``load_case``) in ``fmt``, numbers to ``decimals`` places."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    if int(decimals) != decimals or decimals < 0:
        raise ValueError(f"decimals must be a whole number ≥ 0, not {decimals!r}")
    try:
        with finite_math():
            w = Writer(case, int(decimals))
            require_all(w.values)       # every step needs its number: refuse, with the reason, if one fails
            _header(w)
            _EXPLAINERS[case.kind](w)
            _defined_values(w)
            _printed_formulas(w)
            _remaining_errata(w)
    except FloatingPointError as exc:
        raise Uncomputable(f"a step of the explanation is not finite ({exc}): the case's numbers overflow "
                           f"float64 or leave a function's domain") from None
    return terminal(_RENDERERS[fmt](w.blocks))


# =============================================================== 1. math fragments

@dataclass(frozen=True)
class M:
    """A piece of notation in two spellings: Unicode text and LaTeX math."""

    text: str
    tex: str

    def __add__(self, other):
        other = _lift(other)
        return M(self.text + other.text, self.tex + other.tex)

    def __radd__(self, other):
        return _lift(other) + self


def _lift(x):
    return x if isinstance(x, M) else M(x, x)


EMPTY = M("", "")
JUX = M("", " ")                     # juxtaposition: W¹a⁰
SPACE = M(" ", " ")                  # product of two written-out matrices
PLUS = M(" + ", " + ")
MINUS = M(" − ", " - ")
TIMES = M(" · ", r" \cdot ")
ODOT = M(" ⊙ ", r" \odot ")
TRANSPOSE = M("ᵀ", "^{T}")
ONE = M("1", "1")

_SUP = dict(zip("0123456789+-−=()nilLNTt", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱˡᴸᴺᵀᵗ"))
_SUB = dict(zip("0123456789+-−=()aeijklmnopstx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑᵢⱼₖₗₘₙₒₚₛₜₓ"))


def _script_text(s, table, mark):
    s = str(s)
    if all(ch in table for ch in s):
        return "".join(table[ch] for ch in s)
    return f"{mark}{s}" if len(s) == 1 else f"{mark}({s})"


def sym(base, sup=None, sub=None, tex=None, prime=False):
    """A symbol such as W¹, a^{l−1}, δ², v₁ (``tex``: the base's LaTeX, when it differs)."""
    text, latex = base, tex or base
    if sub is not None:
        text += _script_text(sub, _SUB, "_")
        latex += "_{" + str(sub).replace("−", "-") + "}"
    if sup is not None or prime:
        s = "" if sup is None else str(sup)
        text += _script_text(s, _SUP, "^") if s else ""
        latex += "^{" + s.replace("−", "-") + (r"\prime" if prime else "") + "}"
        text += "′" if prime else ""
    return M(text, latex)


def paren(m):
    return M("(", r"\left(") + m + M(")", r"\right)")


def partial(top, bottom):
    """∂top/∂bottom."""
    return M(f"∂{top.text}/∂{bottom.text}", rf"\frac{{\partial {top.tex}}}{{\partial {bottom.tex}}}")


def call(fname, arg):
    return fname + paren(arg)


def join(items, sep):
    out = EMPTY
    for i, item in enumerate(items):
        out = out + (sep if i else EMPTY) + item
    return out


def frac(a, b, a_tex=None):
    """a/b for small numbers: (1/3) in text, \\frac{1}{3} in LaTeX."""
    return M(f"({a}/{b})", rf"\frac{{{a if a_tex is None else a_tex}}}{{{b}}}")


_GREEK = {"eta": ("η", r"\eta"), "alpha": ("α", r"\alpha"), "beta": ("β", r"\beta"),
          "gamma": ("γ", r"\gamma"), "lambda": ("λ", r"\lambda"), "sigma": ("σ", r"\sigma")}


def plain_var(name):
    """A name of a graph or an expression: v1 → v₁, eta → η, exp_z → exp_z (upright)."""
    if name in _GREEK:
        return M(*_GREEK[name])
    m = re.fullmatch(r"([A-Za-z])(\d*)", name)
    if m:
        return sym(m.group(1), sub=m.group(2) or None)
    return M(name, r"\mathrm{" + name.replace("_", r"\_") + "}")


# activation functions: their symbol, value and derivative notation
_ACT_SYMBOL = {"sigmoid": M("σ", r"\sigma"), "tanh": M("tanh", r"\tanh"), "relu": M("ReLU", r"\mathrm{ReLU}"),
               "leaky_relu": M("LeakyReLU", r"\mathrm{LeakyReLU}"), "prelu": M("PReLU", r"\mathrm{PReLU}"),
               "swish": M("swish", r"\mathrm{swish}"), "identity": M("id", r"\mathrm{id}"),
               "softmax": M("softmax", r"\mathrm{softmax}"), "log_softmax": M("log softmax", r"\log\mathrm{softmax}")}


def act_symbol(name):
    return _ACT_SYMBOL[name]


def act_prime(name, z):
    """σ'(z), tanh'(z), …"""
    return act_symbol(name) + M("'", "'") + paren(z)


# =============================================================== 2. the document

@dataclass
class Heading:
    level: int
    parts: list


@dataclass
class Para:
    parts: list                 # prose (str) and inline math (M)
    label: str | None = None    # BP1, BP2, …: shown in bold / first


@dataclass
class Math:
    rows: list                  # chains of M (rows[i][0] = rows[i][1] = …); inline: lines of such chains
    inline: bool = False        # short equations side by side, one line each (givens)


@dataclass
class Note:
    parts: list
    kind: str = "note"          # "erratum" or "note"


# =============================================================== 3. the writer

def _number(v, decimals, minus):
    """v rounded to ``decimals`` places, trailing zeros dropped: 0.2500 → 0.25, −0.0000 → 0."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return ("−" if v < 0 else "") + "∞" if minus == "−" else (r"-\infty" if v < 0 else r"\infty")
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    return s.replace("-", minus)


def _grid_m(rows, transpose=False):
    """A 2-D list of M as a scalar, a compact vector [a, b] / matrix [[a, b], [c, d]] or a bmatrix."""
    n_rows, n_cols = len(rows), len(rows[0])
    if n_rows * n_cols == 1:
        return rows[0][0]
    if n_rows == 1 or n_cols == 1:
        text = "[" + ", ".join(e.text for row in rows for e in row) + "]"
    else:
        text = "[" + ", ".join("[" + ", ".join(e.text for e in row) + "]" for row in rows) + "]"
    tex = r"\begin{bmatrix}" + r" \\ ".join(" & ".join(e.tex for e in row) for row in rows) + r"\end{bmatrix}"
    out = M(text, tex)
    return out + TRANSPOSE if transpose else out


class Writer:
    """Collects the blocks of one explanation; turns the engine's numbers into notation."""

    def __init__(self, case, decimals):
        self.case, self.decimals = case, decimals
        self.column = case.convention == "column"
        self.values = compute(case, refimpl)
        self.blocks = []
        self.expected = {e.quantity: e for e in case.expect}
        self.shown = set()

    # ---- numbers
    def value(self, quantity):
        v = self.values.get(quantity)
        return None if v is None or isinstance(v, Missing) else np.asarray(v, dtype=float)

    def places(self, given):
        """Decimals shown: computed numbers are rounded to ``decimals``; given ones are shown as given
        (up to GIVEN_DECIMALS places, more if ``decimals`` asks for more)."""
        return max(self.decimals, GIVEN_DECIMALS) if given else self.decimals

    def scalar(self, v, lead=True, given=False):
        """One number; a negative one in parentheses where it follows an operator."""
        d = self.places(given)
        m = M(_number(v, d, "−"), _number(v, d, "-"))
        return m if lead or float(v) >= 0 or m.text == "0" else paren(m)

    def grid(self, value):
        """An array as rows: a vector is a column in the column convention, a row in the row convention."""
        a = np.asarray(value, dtype=float)
        if a.ndim == 0:
            return [[a.item()]]
        if a.ndim == 1:
            return [[v] for v in a] if self.column else [list(a)]
        if a.ndim == 2:
            return a.tolist()
        return a.reshape(a.shape[0], -1).tolist()

    def num(self, value, lead=True, transpose=False, given=False):
        """A number, vector or matrix, compactly (``given``: a value of the case, not computed)."""
        if value is None:
            return M("?", "?")
        rows = self.grid(value)
        if len(rows) * len(rows[0]) == 1:
            return self.scalar(rows[0][0], lead, given)
        return _grid_m([[self.scalar(v, given=given) for v in row] for row in rows], transpose)

    def given(self, value, lead=True, transpose=False):
        return self.num(value, lead, transpose, given=True)

    def entries(self, rows):
        """A 2-D list of M (written-out sums) laid out like a number grid."""
        return _grid_m(rows)

    def plus(self, value, given=False):
        """ + v (or − |v| for a negative number)."""
        a = np.asarray(value, dtype=float)
        if a.size == 1 and a.item() < 0 and self.scalar(a.item(), given=given).text != "0":
            return MINUS + self.num(-a, given=given)
        return PLUS + self.num(a, lead=False, given=given)

    @staticmethod
    def is_scalar(value):
        return value is not None and np.size(value) == 1

    def product(self, *pairs, elementwise=False):
        """Factors (M, value) side by side: '·' between numbers, ⊙ (elementwise) or a space otherwise."""
        scalars = [self.is_scalar(v) for _, v in pairs]
        if all(scalars):
            sep = TIMES
        elif elementwise:
            sep = ODOT
        else:
            sep = TIMES if any(scalars) else SPACE
        return join([m for m, _ in pairs], sep)

    # ---- blocks
    def heading(self, level, *parts):
        self.blocks.append(Heading(level, list(parts)))

    def para(self, *parts, label=None):
        self.blocks.append(Para(list(parts), label))

    def eq(self, *parts, q=None):
        """One chain of equalities (consecutive repeats dropped), then the erratum of ``q``, if any."""
        chain = []
        for p in parts:
            if p is not None and (not chain or p.text != chain[-1].text):
                chain.append(p)
        self.blocks.append(Math([chain]))
        self.annotate(q)

    def rows(self, rows, inline=False, qs=()):
        rows = [list(r) for r in rows]
        self.blocks.append(Math([rows] if inline else rows, inline))
        for q in qs:
            self.annotate(q)

    def note(self, *parts, kind="note"):
        self.blocks.append(Note(list(parts), kind))

    def annotate(self, quantity):
        """After the line that shows ``quantity``: its erratum, or why the lecture's value is off by more
        than its last decimal (rounded intermediates)."""
        if quantity is None:
            return
        self.shown.add(quantity)
        e = self.expected.get(quantity)
        if e is None or e.computed:
            return
        if e.erratum:
            parts = ["the lecture prints ", printed(e.texts, e.value.shape), " here; erratum: ", _one_line(e.erratum)]
            if e.correct_texts:
                parts += [" (correct, to the lecture's decimals: ", printed(e.correct_texts, e.value.shape), ")"]
            self.note(*parts, kind="erratum")
        elif e.allowance:
            self.note("the lecture prints ", printed(e.texts, e.value.shape), " here, from rounded intermediates: ",
                      _one_line(e.reason or ""))


def printed(texts, shape):
    """Numbers as the case writes them (e.g. 0.20, −0.060), laid out like the quantity."""
    cells = [M(t.replace("-", "−"), t) for t in texts]
    dims = [n for n in shape if n != 1]
    rows = [cells] if len(dims) <= 1 else [cells[i:i + dims[-1]] for i in range(0, len(cells), dims[-1])]
    return _grid_m(rows)


def _one_line(text):
    return " ".join(str(text).split())


def _exact(v):
    """A constant of the case's definition (a loss factor, η, a parameter), in full."""
    return M(_number(v, 12, "−"), _number(v, 12, "-"))


# =============================================================== 4. explainers

def _header(w):
    case = w.case
    w.heading(1, case.title)
    src = case.source
    parts = [f"Source: {src.get('document', '?')}, “{src.get('heading', '?')}”."]
    if src.get("instance"):
        parts.append(" The numbers are the case's own instance (the lecture prints none or only some of them).")
    w.para(*parts)
    precision = getattr(case, "precision", "float64")
    w.para(f"All numbers are rounded to {w.decimals} decimals for display only (the case's given numbers are "
           f"shown as given); every step is computed from the unrounded values of the steps before it "
           f"(NumPy reference engine{', in float32' if precision == 'float32' else ''}).")


# --------------------------------------------------------------- activations and losses (shared)

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
    else:                                               # swish
        rule = M("σ(βz) + βz σ(βz)(1 − σ(βz))", r"\sigma(\beta z) + \beta z\,\sigma(\beta z)(1 - \sigma(\beta z))")
        w.eq(fp_sym, rule, w.num(fp), q=q)


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
            return (_coefficient(w, c) + paren(diff) + M("²", "^{2}"),
                    _coefficient(w, c) + paren(numbers) + M("²", "^{2}"))
        return _coefficient(w, c) + M("‖", r"\lVert ") + diff + M("‖²", r"\rVert^{2}"), None
    if name == "mse":
        return _coefficient(w, c) + M("(1/K) ‖", r"\frac{1}{K}\lVert ") + diff + M("‖²", r"\rVert^{2}"), None
    if name == "mae":
        return _coefficient(w, c) + M("(1/K) Σⱼ |", r"\frac{1}{K}\sum_j \lvert ") + diff + M("|", r"\rvert"), None
    if name == "binary_cross_entropy":
        terms = M("Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)]", r"\sum_j \left[y_j \ln a_j + (1 - y_j)\ln(1 - a_j)\right]")
        return M("−", "-") + _coefficient(w, c) + terms, None
    return M("−", "-") + _coefficient(w, c) + M("Σⱼ yⱼ ln aⱼ", r"\sum_j y_j \ln a_j"), None


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
        return (_coefficient(w, c) + M(f"({diff.text}) / ({a_sym.text} ⊙ (1 − {a_sym.text}))",
                                       rf"\frac{{{diff.tex}}}{{{a_sym.tex} \odot (1 - {a_sym.tex})}}"), None, True)
    ratio = M(f"{y_sym.text} / {a_sym.text}", rf"\frac{{{y_sym.tex}}}{{{a_sym.tex}}}")
    return M("−", "-") + _coefficient(w, c) + ratio, None, True


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
        return ["Column convention (lecture 001): ", M("zˡ = Wˡaˡ⁻¹ + bˡ", "z^{l} = W^{l} a^{l-1} + b^{l}"), ", ",
                M("aˡ = f(zˡ)", "a^{l} = f(z^{l})"), ", ", M("a⁰ = x", "a^{0} = x"),
                "; Wˡ has one row per unit of layer l, examples are columns."]


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
        return ["Row convention (lectures 000, 004): ", M("hˡ = aˡ⁻¹Wˡ + bˡ", "h^{l} = a^{l-1} W^{l} + b^{l}"), ", ",
                M("aˡ = f(hˡ)", "a^{l} = f(h^{l})"), ", ", M("a⁰ = x", "a^{0} = x"),
                "; Wˡ has one column per unit of layer l, examples are rows; the error is E."]


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
        given = t == 1                  # the parameters of step 1 are the case's; later ones are computed
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
        act = act_symbol(name) + (M(f" (param {_exact(param).text})", rf"\ (\text{{param }} {_exact(param).tex})")
                                  if param is not None else EMPTY)
        row.append([sym("f", l), act])
        w.rows(row, inline=True)
    w.rows([[M("x", "x"), sym("a", 0), w.given(x)], [M("y", "y"), w.given(y)]], inline=True)
    if g["N"] > 1:
        where = "column" if w.column else "row"
        w.para(f"A mini-batch of N = {g['N']} examples, one per {where}; z, a and δ have one {where} per example "
               f"(δ is per example, without 1/N).")
    name, factor, reduction = g["loss"]
    L = max(g["W"])
    formula, _ = _loss_value(w, g["loss"], sym("a", L), M("y", "y"), None, None, _units(w, L) == 1)
    cost = nt.cost
    if g["N"] > 1:
        scale = frac(1, "N") + JUX if reduction == "mean" else EMPTY
        w.rows([[sym(cost.text, sub="n", tex=cost.tex), formula],
                [cost, scale + M("Σₙ ", r"\sum_n ") + sym(cost.text, sub="n", tex=cost.tex)]], inline=True)
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
    first = w.column                    # which factor comes first: W a (column) or a W (row)
    weighted = nt.weighted(w, (w.num(Wl, given=given, lead=first), Wl),
                           (w.num(a_prev, given=l == 1, lead=not first), a_prev))
    parts.append(weighted + w.plus(bl, given) if bl is not None else weighted)
    n_out, n_in = (Wl.shape if w.column else Wl.shape[::-1])
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
    w.eq(g_sym if g_sym.text == partial(nt.cost, a_sym).text else g_sym + M(" = ", " = ") + partial(nt.cost, a_sym),
         formula, subst, w.num(grad), q=f"dC/da[{L}]{at}")
    if f"f'(z[{L}])" in w.case.quantities:
        fp = w.value(f"f'(z[{L}]){at}")
        fp_sym = act_prime(name, z_sym)
        _activation_derivative(w, g["f"][L], fp_sym, z_sym, a_sym, z, aL, fp, f"f'(z[{L}]){at}")
        w.eq(d_sym, g_sym + ODOT + fp_sym, (paren(formula) if needs_paren else formula) + ODOT + fp_sym,
             w.product((w.num(grad), grad), (w.num(fp, lead=False), fp), elementwise=True), w.num(delta),
             q=f"delta[{L}]{at}")
    elif name == "softmax" and loss[0] == "cross_entropy":
        coef = _coefficient(w, loss[1])
        w.eq(d_sym, coef + paren(a_sym + MINUS + y_sym) if coef.text else a_sym + MINUS + y_sym,
             coef + paren(w.num(aL) + MINUS + w.given(y, lead=False)) if coef.text
             else w.num(aL) + MINUS + w.given(y, lead=False),
             w.num(delta), q=f"delta[{L}]{at}")
        w.para("Softmax output with the log-likelihood cost: the softmax Jacobian and ∇ₐC combine to a − y "
               "(for a one-hot y).")
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
    w.para(f"{name} is not elementwise: δ is its Jacobian (transposed) applied to the gradient above, "
           f"for each example.")


def _hidden_error(w, nt, l, W, at, given):
    g = w.case.given
    name, _ = g["f"][l]
    z, a, back, delta = (w.value(f"{q}[{l}]{at}") for q in ("z", "a", "dC/da", "delta"))
    delta_next = w.value(f"delta[{l + 1}]{at}")
    z_sym, a_sym, d_sym = nt.z(l), sym("a", l), sym("δ", l, tex=r"\delta")
    w.para(f"error of layer {l} from the error of layer {l + 1}:", label="BP2")
    W_next = np.asarray(W[l + 1], dtype=float)
    first = w.column                    # (W^{l+1})ᵀ δ^{l+1} (column) or δ^{l+1} (W^{l+1})ᵀ (row)
    numbers = nt.backprop_numbers(w, (w.num(W_next, transpose=True, given=given, lead=first), W_next),
                                  (w.num(delta_next, lead=not first), delta_next))
    w.eq(nt.backprop(l), numbers, w.num(back), q=f"dC/da[{l}]{at}")
    if f"f'(z[{l}])" in w.case.quantities:
        fp = w.value(f"f'(z[{l}]){at}")
        fp_sym = act_prime(name, z_sym)
        _activation_derivative(w, g["f"][l], fp_sym, z_sym, a_sym, z, a, fp, f"f'(z[{l}]){at}")
        w.eq(d_sym, paren(nt.backprop(l)) + ODOT + fp_sym,
             w.product((w.num(back), back), (w.num(fp, lead=False), fp), elementwise=True), w.num(delta),
             q=f"delta[{l}]{at}")
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
    numbers = nt.weight_gradient_numbers(w, (w.num(delta, lead=w.column), delta),
                                         (w.num(a_prev, transpose=True, given=l == 1, lead=not w.column), a_prev))
    if N == 1:
        w.eq(partial(cost, sym("W", l)), nt.weight_gradient(l), numbers, w.num(gW), q=f"dC/dW[{l}]{at}")
    else:
        w.eq(partial(cost, sym("W", l)), scale + M("Σₙ ", r"\sum_n ") + nt.weight_gradient(l, per_example=True),
             scale + nt.weight_gradient(l), scale + numbers, w.num(gW), q=f"dC/dW[{l}]{at}")


def _update(w, nt, W, b, at, given):
    """W^l′ = W^l − η ∂C/∂W^l and b^l′ likewise, every layer (from the output down, as the notes do)."""
    g = w.case.given
    mean = g["loss"][2] == "mean" and g["N"] > 1
    batch = f" (the mean over the batch carries the 1/N = 1/{g['N']})" if mean else ""
    w.para(f"W ← W − η ∂{nt.cost.text}/∂W and b ← b − η ∂{nt.cost.text}/∂b with η = {_exact(g['eta']).text}, "
           f"every layer with the gradients of the weights before the update{batch}.")
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
    w.eq(p_new, p_sym + MINUS + eta_m + JUX + partial(nt.cost, p_sym),
         old_m + MINUS + w.product((_exact(g["eta"]), g["eta"]), (w.num(grad, lead=False), grad)),
         old_m + w.plus(new - old), w.num(new), q=new_q)
    return new


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
        w.eq(plain_var(name), _expr(tree, plain_var), _expr(tree, plain_var, values, w, given=set(inputs)),
             w.num(values[name]),
             q=name)

    w.heading(2, "Backward pass, gate by gate (chain rule)")
    w.para("Each gate multiplies the gradient arriving from above (upstream) by its local gradient; "
           "a value used by several gates adds up their contributions.")
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
            w.para("Gate ", c_sym + M(" = ", " = ") + _expr(tree, plain_var), ", upstream gradient ",
                   partial(f_sym, c_sym) + M(" = ", " = ") + w.num(grads[c]), ":")
        else:
            w.para("Output gate ", c_sym + M(" = ", " = ") + _expr(tree, plain_var), ":")
        for u in _in_order(tree):
            total = c != out or consumers[u] == [out]     # else ∂f/∂u collects more than this gate
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
        if c == out:                                # the output gate's own local gradient
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
            for child in t[2 if t[0] == "call" else 1:]:
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
        w.rows([[plain_var(n), w.num(w.value(f"{n}({label})"))] for n in names], inline=True,
               qs=[f"{n}({label})" for n in names])
        new, old = w.value(f"{out}({label})"), w.value(out)
        predicted = sum(float(w.value(f"d{out}/d{k}")) * v for k, v in offsets.items())
        w.eq(M("Δ", r"\Delta ") + f_sym, w.num(new) + MINUS + w.num(old, lead=False), w.num(new - old),
             q=f"Δ{out}({label})")
        terms = join([partial(f_sym, plain_var(k)) + TIMES + _exact(v) for k, v in offsets.items()], PLUS)
        w.para("The gradient predicts ", terms + M(" = ", " = ") + w.num(predicted),
               " (exact where f is linear in the perturbed value).")


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
        if not _is_num(ds, 0.0):                   # u^s with s depending on v: no rule written here
            return None
        return _s_mul(_s_mul(s, _s_pow(u, _s_sub(s, _ONE))), du)
    if kind == "call" and len(t) == 3:
        du = _derive(t[2], v)
        if du is None:
            return None
        u = t[2]
        outer = {"exp": lambda: t, "log": lambda: _s_div(_ONE, u), "identity": lambda: _ONE,
                 "sigmoid": lambda: ("mul", t, ("sub", _ONE, t)),
                 "tanh": lambda: ("sub", _ONE, ("pow", t, ("num", 2.0)))}.get(t[1])
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
_FUNC = {"exp": (None, None), "log": ("ln", r"\ln"), "sigmoid": ("σ", r"\sigma"), "tanh": ("tanh", r"\tanh"),
         "dsigmoid": ("σ'", r"\sigma'"), "dtanh": ("tanh'", r"\tanh'"), "relu": ("ReLU", r"\mathrm{ReLU}"),
         "drelu": ("ReLU'", r"\mathrm{ReLU}'"), "sum": ("Σ", r"\sum"), "sqrt": ("√", r"\sqrt")}


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
        wrap = (p < prec and not (kind == "neg" and p == 2)) or (right and p == prec and kind in ("sub", "div")) \
            or (kind == "pow" and p <= prec)
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


# --------------------------------------------------------------- activation, loss, jacobian

def _activation(w):
    (name, param), z = w.case.given["activation"], w.case.given["z"]
    w.heading(2, "Given")
    act = act_symbol(name)
    extra = f" (param {_exact(param).text})" if param is not None else ""
    w.rows([[M("z", "z"), w.given(z)], [M("f", "f"), act + M(extra, r"\text{" + extra + "}" if extra else "")]],
           inline=True)
    w.heading(2, "Activation")
    z_sym, a_sym = M("z", "z"), M("a", "a")
    a = w.value("a")
    if name in ("softmax", "log_softmax"):
        rule = (M("exp(zⱼ) / Σₖ exp(zₖ)", r"\frac{e^{z_j}}{\sum_k e^{z_k}}") if name == "softmax"
                else M("zⱼ − ln Σₖ exp(zₖ)", r"z_j - \ln \sum_k e^{z_k}"))
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
    N = 1 if np.ndim(a) < 2 else np.shape(a)[1 if w.column else 0]       # examples
    K = 1 if np.ndim(a) == 0 else np.shape(a)[0 if w.column else -1]     # features of one example
    w.para(f"Loss {name} with factor {_exact(factor).text}, reduction {reduction}"
           + (f", over N = {N} examples." if N > 1 else "."))
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


def _jacobian(w):
    g = w.case.given
    W, b, x = g["W"], g["b"], g["x"]
    w.heading(2, "Given")
    row = [[M("W", "W"), w.given(W)]]
    if b is not None:
        row.append([M("b", "b"), w.given(b)])
    row.append([M("x", "x"), w.given(x)])
    w.rows(row, inline=True)
    z_sym = M("z", "z")
    if w.column:
        w.para("The layer ", M("z = W x + b", "z = W x + b"), " (column convention): ",
               M("∂zᵢ/∂xₖ = Wᵢₖ", r"\partial z_i / \partial x_k = W_{ik}"), ", ",
               M("∂zᵢ/∂W_pq = [i = p] x_q", r"\partial z_i / \partial W_{pq} = [i = p]\, x_q"), ".")
        rule = M("W", "W")
    else:
        w.para("The layer ", M("z = x W + b", "z = x W + b"), " (row convention): ",
               M("∂zⱼ/∂xᵢ = Wᵢⱼ", r"\partial z_j / \partial x_i = W_{ij}"), ", ",
               M("∂zⱼ/∂W_pq = [j = q] x_p", r"\partial z_j / \partial W_{pq} = [j = q]\, x_p"), ".")
        rule = M("Wᵀ", "W^{T}")
    w.heading(2, "Jacobians")
    w.eq(partial(z_sym, M("x", "x")), rule, w.num(w.value("dz/dx")), q="dz/dx")
    dz_dW = w.value("dz/dW")
    w.rows([[partial(sym("z", sub=i + 1), M("W", "W")), w.num(dz_dW[i])] for i in range(dz_dW.shape[0])],
           qs=["dz/dW"])


# --------------------------------------------------------------- the case's own values and formulas

def _binding_symbol(case):
    """How the names of a case's expressions are written: z1 → z¹ (h¹ in the row convention), dC_dW2 → ∂C/∂W², …"""
    if case.kind != "network":
        return plain_var
    row = case.convention == "row"
    cost = M("E", "E") if row else M("C", "C")
    z = "h" if row else "z"
    patterns = [
        (r"W(\d+)_new", lambda l: sym("W", l, prime=True)), (r"b(\d+)_new", lambda l: sym("b", l, prime=True)),
        (r"W(\d+)", lambda l: sym("W", l)), (r"b(\d+)", lambda l: sym("b", l)), (r"z(\d+)", lambda l: sym(z, l)),
        (r"a(\d+)", lambda l: sym("a", l)), (r"delta(\d+)", lambda l: sym("δ", l, tex=r"\delta")),
        (r"fprime(\d+)", lambda l: M("f'", "f'") + paren(sym(z, l))),
        (r"dC_dW(\d+)", lambda l: partial(cost, sym("W", l))), (r"dC_db(\d+)", lambda l: partial(cost, sym("b", l))),
        (r"dC_da(\d+)", lambda l: partial(cost, sym("a", l))),
    ]

    def symbol(name):
        for pattern, make in patterns:
            m = re.fullmatch(pattern, name)
            if m:
                return make(m.group(1))
        return plain_var(name)
    return symbol


def _defined_values(w):
    """The case's derived values (``define``): intermediate numbers the notes print."""
    if not w.case.define:
        return
    var = _binding_symbol(w.case)
    w.heading(2, "Further values the notes print")
    for name, (tree, _) in w.case.define.items():
        w.eq(plain_var(name), _expr(tree, var), w.num(w.value(name)), q=name)


def _printed_formulas(w):
    """Formulas the notes print wrongly: what they give, what the correct one gives."""
    wrong = [f for f in w.case.formulas if f.erratum]
    if not wrong:
        return
    w.heading(2, "Formulas printed with an error")
    for f in wrong:
        parts = [f"the lecture prints the formula “{_one_line(f.printed)}” here; erratum: {_one_line(f.erratum)}",
                 "; the printed formula gives ", w.num(w.value(f"formula:{f.name}"))]
        if f.correct:
            parts += [", the correct one gives ", w.num(w.value(f"correct:{f.name}"))]
        parts += [f" ({f.equals} = ", w.num(w.value(f.equals)), ")."]
        w.note(*parts, kind="erratum")


def _remaining_errata(w):
    """Errata of quantities that no step above shows (kept visible all the same)."""
    rest = [e for e in w.case.expect if e.erratum and e.quantity not in w.shown]
    if not rest:
        return
    w.heading(2, "Other errata")
    for e in rest:
        name = M(e.quantity, r"\text{" + _latex_prose(e.quantity) + "}")
        w.eq(name, w.num(w.value(e.quantity)), q=e.quantity)


def _graph_with_perturbations(w):
    _graph(w)
    _perturbations(w)


_EXPLAINERS = {"network": _network, "graph": _graph_with_perturbations, "activation": _activation,
               "loss": _loss, "jacobian": _jacobian}


# =============================================================== 5. renderers

TEXT_WIDTH = 100


def _prose_text(parts):
    return terminal("".join(p.text if isinstance(p, M) else str(p) for p in parts))


def _render_text(blocks):
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            title = _prose_text(b.parts)
            if b.level == 1:
                out += [title, "═" * len(title), ""]
            elif b.level == 2:
                out += ["", title, "─" * len(title)]
            else:
                out += ["", "▸ " + title]
        elif isinstance(b, Para):
            out.append((f"{b.label}  " if b.label else "") + _prose_text(b.parts))
        elif isinstance(b, Math):
            out += _math_text(b)
        else:
            tag = "⚠ ERRATUM" if b.kind == "erratum" else "NOTE"
            out.append(f"    {tag}: {_prose_text(b.parts)}")
    return "\n".join(out).strip() + "\n"


def _math_text(block):
    if block.inline:
        return ["    " + ",   ".join(" = ".join(p.text for p in row) for row in line) for line in block.rows]
    lines = []
    for row in block.rows:
        texts = [p.text for p in row]
        line = "    " + " = ".join(texts)
        if len(line) <= TEXT_WIDTH or len(texts) <= 2:
            lines.append(line)
            continue
        lines.append("    " + texts[0] + " = " + texts[1])
        pad = " " * (4 + len(texts[0]))
        lines += [pad + " = " + t for t in texts[2:]]
    return lines


def _escape_markdown(s):
    return re.sub(r"([\\`*_$<])", r"\\\1", s)


def _prose_markdown(parts):
    return "".join(f"${p.tex}$" if isinstance(p, M) else _escape_markdown(str(p)) for p in parts)


def _aligned(rows, width=80):
    """Rows of a chain as the body of aligned / align*: lhs &= p1 (\\\\ &= p2 when long)."""
    lines = []
    for row in rows:
        texs = [p.tex for p in row]
        if len(row) == 1:
            lines.append(texs[0])
        elif sum(len(p.text) for p in row) + 3 * len(row) <= width:
            lines.append(texs[0] + " &= " + " = ".join(texs[1:]))
        else:
            lines.append(texs[0] + " &= " + texs[1])
            lines += ["&= " + t for t in texs[2:]]
    return " \\\\\n".join(lines)


def _inline_tex(rows):
    return r",\quad ".join(" = ".join(p.tex for p in row) for row in rows)


def _grouped(blocks):
    """Consecutive displays merged into one (chains aligned at their = signs, inline lines centred)."""
    out = []
    for b in blocks:
        if isinstance(b, Math) and out and isinstance(out[-1], Math) and out[-1].inline == b.inline:
            out[-1] = Math(out[-1].rows + b.rows, b.inline)
        else:
            out.append(b)
    return out


def _render_markdown(blocks):
    out = []
    for b in _grouped(blocks):
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _prose_markdown(b.parts))
        elif isinstance(b, Para):
            out.append((f"**{b.label}** " if b.label else "") + _prose_markdown(b.parts))
        elif isinstance(b, Math):
            if b.inline and len(b.rows) == 1:
                out.append("$$" + _inline_tex(b.rows[0]) + "$$")
            elif b.inline:
                lines = " \\\\\n".join(map(_inline_tex, b.rows))
                out.append("$$\n\\begin{gathered}\n" + lines + "\n\\end{gathered}\n$$")
            elif len(b.rows) == 1 and "\\\\" not in _aligned(b.rows):
                out.append("$$" + " = ".join(p.tex for p in b.rows[0]) + "$$")
            else:
                out.append("$$\n\\begin{aligned}\n" + _aligned(b.rows) + "\n\\end{aligned}\n$$")
        else:
            tag = "⚠️ **Erratum:**" if b.kind == "erratum" else "**Note:**"
            out.append(f"> {tag} {_prose_markdown(b.parts)}")
    return "\n\n".join(out) + "\n"


# Unicode in prose (titles, notes) → LaTeX that a standard article with amsmath typesets
_LATEX_TEXT = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
               "_": r"\_", "^": r"\^{}", "~": r"\~{}", "—": "---", "–": "--", "…": r"\dots{}", "“": "``", "”": "''",
               "‘": "`", "’": "'", "\u00a0": "~", "⚠": "(!)"}
_LATEX_MATH = {"<": "<", ">": ">", "|": "|", "·": r"\cdot", "×": r"\times", "−": "-", "±": r"\pm",
               "½": r"\frac{1}{2}", "¼": r"\frac{1}{4}", "¾": r"\frac{3}{4}", "‖": r"\|", "∂": r"\partial",
               "∇": r"\nabla", "≈": r"\approx", "≡": r"\equiv", "≤": r"\leq", "≥": r"\geq", "≠": r"\neq",
               "⊙": r"\odot", "→": r"\rightarrow", "←": r"\leftarrow", "⇒": r"\Rightarrow", "∞": r"\infty",
               "√": r"\surd", "∈": r"\in", "Σ": r"\Sigma", "Δ": r"\Delta", "Π": r"\Pi", "Γ": r"\Gamma",
               "Λ": r"\Lambda", "Θ": r"\Theta", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega", "ᵀ": "^{T}",
               "ŷ": r"\hat{y}", "′": "'", "ε": r"\varepsilon", "ϵ": r"\epsilon"}
_GREEK_LOWER = "αβγδεζηθικλμνξπρστυφχψω"
_GREEK_NAMES = ["alpha", "beta", "gamma", "delta", "varepsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
                "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]
_LATEX_MATH.update({ch: "\\" + name for ch, name in zip(_GREEK_LOWER, _GREEK_NAMES)})
_LATEX_SCRIPT = {ch: ("^", c) for c, ch in zip("0123456789+-=()nilLNT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˡᴸᴺᵀ")}
_LATEX_SCRIPT.update({ch: ("_", c) for c, ch in zip("0123456789+-=()aeijklmnopstx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢⱼₖₗₘₙₒₚₛₜₓ")})


def _latex_prose(s):
    """Prose with Unicode symbols as LaTeX: δ → $\\delta$, ŷ → $\\hat{y}$, a⁽³⁾ → a$^{(3)}$; special
    characters escaped. Anything unknown is reduced to ASCII: the fragment needs no Unicode-aware engine."""
    s = terminal(s)                                  # control characters as visible escapes: \x1b
    s = re.sub(r"(.)\u0302", lambda m: "\u0000" + m.group(1), s)     # x̂ (combining circumflex) → hat
    pieces, hat = [], False                         # (kind, text): kind "text", "math", "^" or "_"
    for ch in s:
        if ch == "\u0000":
            hat = True
            continue
        if hat:
            pieces.append(("math", r"\hat{" + (_LATEX_MATH.get(ch) or ch) + "}"))
            hat = False
        elif ch in _LATEX_TEXT:
            pieces.append(("text", _LATEX_TEXT[ch]))
        elif ch in _LATEX_SCRIPT:
            pieces.append(_LATEX_SCRIPT[ch])
        elif ch in _LATEX_MATH:
            pieces.append(("math", _LATEX_MATH[ch]))
        elif ord(ch) < 128:
            pieces.append(("text", ch))
        else:
            ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
            pieces.append(("text", "".join(_LATEX_TEXT.get(c, c) for c in ascii_)))
    out, run = [], []                               # run: the math of one $…$, scripts grouped: ^{(3)}
    for kind, text in pieces + [("text", "")]:
        if kind == "text":
            if run:
                out.append("$" + "".join(f"{k}{{{t}}}" if k in "^_" else t + " " for k, t in run).strip() + "$")
                run = []
            out.append(text)
        elif kind in "^_" and run and run[-1][0] == kind:
            run[-1] = (kind, run[-1][1] + text)
        else:
            run.append((kind, text))
    return "".join(out)


def _prose_latex(parts):
    return "".join(f"${p.tex}$" if isinstance(p, M) else _latex_prose(str(p)) for p in parts)


def _render_latex(blocks):
    out = []
    commands = {1: r"\section*", 2: r"\subsection*", 3: r"\subsubsection*"}
    for b in _grouped(blocks):
        if isinstance(b, Heading):
            out.append(commands.get(b.level, r"\paragraph*") + "{" + _prose_latex(b.parts) + "}")
        elif isinstance(b, Para):
            out.append(r"\noindent " + (r"\textbf{" + _latex_prose(b.label) + "} " if b.label else "")
                       + _prose_latex(b.parts))
        elif isinstance(b, Math):
            if b.inline:
                out.append("\\begin{gather*}\n" + " \\\\\n".join(map(_inline_tex, b.rows)) + "\n\\end{gather*}")
            else:
                out.append("\\begin{align*}\n" + _aligned(b.rows) + "\n\\end{align*}")
        else:
            tag = r"\textbf{Erratum:}" if b.kind == "erratum" else r"\textbf{Note:}"
            out.append(r"\noindent " + tag + " " + _prose_latex(b.parts))
    return "\n\n".join(out) + "\n"


_RENDERERS = {"text": _render_text, "markdown": _render_markdown, "latex": _render_latex}
