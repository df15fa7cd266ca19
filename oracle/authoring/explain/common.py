"""Layers 1–3 of the worked solutions, shared by every kind of case: math fragments ``M``, the
document's blocks, the ``Writer`` (numbers → fragments, equations with errata) and the header.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

import refimpl

from oracle.verdict.run import Missing, compute


GIVEN_DECIMALS = 6  # the case's own numbers are shown as given, to at most this many places


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
JUX = M("", " ")  # juxtaposition: W¹a⁰
SPACE = M(" ", " ")  # product of two written-out matrices
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


_GREEK = {
    "eta": ("η", r"\eta"),
    "alpha": ("α", r"\alpha"),
    "beta": ("β", r"\beta"),
    "gamma": ("γ", r"\gamma"),
    "lambda": ("λ", r"\lambda"),
    "sigma": ("σ", r"\sigma"),
}


def plain_var(name):
    """A name of a graph or an expression: v1 → v₁, eta → η, exp_z → exp_z (upright)."""
    if name in _GREEK:
        return M(*_GREEK[name])
    m = re.fullmatch(r"([A-Za-z])(\d*)", name)
    if m:
        return sym(m.group(1), sub=m.group(2) or None)
    return M(name, r"\mathrm{" + name.replace("_", r"\_") + "}")


# activation functions: their symbol, value and derivative notation
_ACT_SYMBOL = {
    "sigmoid": M("σ", r"\sigma"),
    "tanh": M("tanh", r"\tanh"),
    "relu": M("ReLU", r"\mathrm{ReLU}"),
    "leaky_relu": M("LeakyReLU", r"\mathrm{LeakyReLU}"),
    "prelu": M("PReLU", r"\mathrm{PReLU}"),
    "swish": M("swish", r"\mathrm{swish}"),
    "identity": M("id", r"\mathrm{id}"),
    "softmax": M("softmax", r"\mathrm{softmax}"),
    "log_softmax": M("log softmax", r"\log\mathrm{softmax}"),
}


def unknown(what, name, known):
    """The error for a name of an activation or loss that the explanation does not know."""
    return ValueError(f"unknown {what} {name!r} (known: {', '.join(known)})")


def act_symbol(name):
    if name not in _ACT_SYMBOL:
        raise unknown("activation", name, tuple(_ACT_SYMBOL))
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
    parts: list  # prose (str) and inline math (M)
    label: str | None = None  # BP1, BP2, …: shown in bold / first


@dataclass
class Math:
    rows: list  # chains of M (rows[i][0] = rows[i][1] = …); inline: lines of such chains
    inline: bool = False  # short equations side by side, one line each (givens)


@dataclass
class Note:
    parts: list
    kind: str = "note"  # "erratum" or "note"


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
        """+ v (or − |v| for a negative number)."""
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
            self.note(
                "the lecture prints ",
                printed(e.texts, e.value.shape),
                " here, from rounded intermediates: ",
                _one_line(e.reason or ""),
            )


def printed(texts, shape):
    """Numbers as the case writes them (e.g. 0.20, −0.060), laid out like the quantity."""
    cells = [M(t.replace("-", "−"), t) for t in texts]
    dims = [n for n in shape if n != 1]
    rows = [cells] if len(dims) <= 1 else [cells[i : i + dims[-1]] for i in range(0, len(cells), dims[-1])]
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
    w.para(
        f"All numbers are rounded to {w.decimals} decimals for display only (the case's given numbers are "
        f"shown as given); every step is computed from the unrounded values of the steps before it "
        f"(NumPy reference engine{', in float32' if precision == 'float32' else ''})."
    )
