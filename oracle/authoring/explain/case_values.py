"""What every kind of case may add: its own derived values, wrongly printed formulas, other errata."""

from __future__ import annotations

import re


from oracle.authoring.explain.common import (
    M,
    _one_line,
    paren,
    partial,
    plain_var,
    sym,
)
from oracle.authoring.explain.graph import (
    _expr,
)
from oracle.authoring.explain.render import (
    _latex_prose,
)


# --------------------------------------------------------------- the case's own values and formulas


def _binding_symbol(case):
    """How the names of a case's expressions are written: z1 → z¹ (h¹ in the row convention), dC_dW2 → ∂C/∂W², …"""
    if case.kind != "network":
        return plain_var
    row = case.convention == "row"
    cost = M("E", "E") if row else M("C", "C")
    z = "h" if row else "z"
    patterns = [
        (r"W(\d+)_new", lambda l: sym("W", l, prime=True)),
        (r"b(\d+)_new", lambda l: sym("b", l, prime=True)),
        (r"W(\d+)", lambda l: sym("W", l)),
        (r"b(\d+)", lambda l: sym("b", l)),
        (r"z(\d+)", lambda l: sym(z, l)),
        (r"a(\d+)", lambda l: sym("a", l)),
        (r"delta(\d+)", lambda l: sym("δ", l, tex=r"\delta")),
        (r"fprime(\d+)", lambda l: M("f'", "f'") + paren(sym(z, l))),
        (r"dC_dW(\d+)", lambda l: partial(cost, sym("W", l))),
        (r"dC_db(\d+)", lambda l: partial(cost, sym("b", l))),
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
        parts = [
            f"the lecture prints the formula “{_one_line(f.printed)}” here; erratum: {_one_line(f.erratum)}",
            "; the printed formula gives ",
            w.num(w.value(f"formula:{f.name}")),
        ]
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
