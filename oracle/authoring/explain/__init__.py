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

Modules: ``common`` (layers 1–3 and the header), ``activation_loss``, ``network``, ``graph``,
``jacobian``, ``case_values`` (what every kind may add), ``render`` (layer 5); ``explain`` here.
"""

from __future__ import annotations

from oracle.verdict.run import Uncomputable, finite_math, require_all
from oracle.reports.safetext import terminal
from oracle.authoring.explain.activation_loss import _activation as _activation, _loss as _loss
from oracle.authoring.explain.case_values import (
    _defined_values as _defined_values,
    _printed_formulas as _printed_formulas,
    _remaining_errata as _remaining_errata,
)
from oracle.authoring.explain.common import (
    GIVEN_DECIMALS as GIVEN_DECIMALS,
    Heading as Heading,
    M as M,
    Math as Math,
    Note as Note,
    Para as Para,
    Writer as Writer,
    _header as _header,
    sym as sym,
)
from oracle.authoring.explain.graph import _graph_with_perturbations as _graph_with_perturbations
from oracle.authoring.explain.jacobian import _jacobian as _jacobian
from oracle.authoring.explain.network import _network as _network
from oracle.authoring.explain.render import _RENDERERS as _RENDERERS, TEXT_WIDTH as TEXT_WIDTH

FORMATS = ("text", "markdown", "latex")


def explain(case, fmt="text", decimals=4) -> str:
    """The worked solution of a loaded case (``load_case``) in ``fmt``, numbers to ``decimals`` places."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    if int(decimals) != decimals or decimals < 0:
        raise ValueError(f"decimals must be a whole number ≥ 0, not {decimals!r}")
    try:
        with finite_math():
            w = Writer(case, int(decimals))
            require_all(w.values)  # every step needs its number: refuse, with the reason, if one fails
            _header(w)
            _EXPLAINERS[case.kind](w)
            _defined_values(w)
            _printed_formulas(w)
            _remaining_errata(w)
    except FloatingPointError as exc:
        raise Uncomputable(
            f"a step of the explanation is not finite ({exc}): the case's numbers overflow "
            f"float64 or leave a function's domain"
        ) from None
    return terminal(_RENDERERS[fmt](w.blocks))


_EXPLAINERS = {
    "network": _network,
    "graph": _graph_with_perturbations,
    "activation": _activation,
    "loss": _loss,
    "jacobian": _jacobian,
}
