"""Figures of cases, drawn the way the lecture notes draw them (optional extra ``[figures]``).

    draw(case, path)          the figure of one case, written to ``path`` (.svg or .png)
    plot_history(case, path)  a gradient-descent case: loss and parameters per step, numpy and torch

What each kind of case becomes:

- **network**: the layers as columns of neurons (a⁰ = x on the left). Every edge i → j carries its
  weight w_ji (the row convention's W[l][i, j]); with ``gradient_descent`` the label reads
  ``w → w'`` (the weight after the first update, printed with as many digits as it takes to
  show the change). Under each neuron: z, a (forward, green), δ = ∂C_n/∂z (backward, red), the
  bias b (``b → b'`` after the update) and, at the output, the target y. With a batch of N > 1
  examples each of z, a, δ, x, y lists its N values in the order of the examples.
- **graph**: inputs on the left, gates as circles labelled with their operation (+, ×, ÷, exp, σ …)
  or, for a node whose expression is more than one operation, a box ``name = expression``;
  wires are arrows. On the wire that leaves each input or node: its forward value above (green)
  and ∂f/∂(that wire) below (red), f being the graph's output. The case's perturbations
  ("increase q by 1") are listed under the figure.
- **activation**: the curve a = f(z) and f'(z) with the case's z marked (elementwise
  activations); softmax and log_softmax, which are not elementwise, as a table of z and a.
- **loss**, **jacobian**: a table of the given values and the computed quantities.

Every number comes from ``compute(case, refimpl)`` (the history plot also runs the torch
engine), rounded to 4 significant digits; negative numbers are written with the minus sign
U+2212 (−0.2, not -0.2). SVG text is kept as text (``svg.fonttype: none``), so every label can
be searched in the file. Edge labels of a network are placed along their edges by a small
search that keeps them off each other, off the neurons and off the annotations.

``draw`` and ``plot_history`` take a loaded Case or the path of a case file. They raise
ValueError for a file name that does not end in .svg or .png (and ``plot_history`` for a case
that is not a network case with ``gradient_descent``), ImportError with the install hint when
matplotlib is missing.

matplotlib is imported inside the functions, so the rest of the oracle works without it; the
figures never touch pyplot or the global backend (a Figure on an Agg canvas, rcParams changed
only inside ``rc_context``).

The package follows the kinds of case: ``common`` (numbers, colours, matplotlib, titles and
legends), ``network``, ``graph``, ``activation_loss_jacobian`` and ``history``.
"""

from __future__ import annotations

from oracle.authoring.draw.activation_loss_jacobian import (
    _activation_figure as _activation_figure,
    _jacobian_figure as _jacobian_figure,
    _loss_figure as _loss_figure,
)
from oracle.authoring.draw.common import (
    BLUE as BLUE,
    ENGINE_LABELS as ENGINE_LABELS,
    FONT as FONT,
    FORMATS as FORMATS,
    GRAY as GRAY,
    GREEN as GREEN,
    MISSING_MATPLOTLIB as MISSING_MATPLOTLIB,
    RED as RED,
    _check_path as _check_path,
    _finite as _finite,
    _load as _load,
    _Mpl as _Mpl,
    _save as _save,
    fmt as fmt,
    fmt_change as fmt_change,
    fmt_values as fmt_values,
    sub as sub,
    sup as sup,
)
from oracle.authoring.draw.graph import _graph_figure as _graph_figure, unparse as unparse
from oracle.authoring.draw.history import _history as _history, plot_history as plot_history
from oracle.authoring.draw.network import (
    _network_figure as _network_figure,
    _place_edge_labels as _place_edge_labels,
    _sat as _sat,
)


def draw(case, path):
    """Write the figure of ``case`` (a Case or a case file) to ``path`` (.svg or .png).

    ValueError for an unknown file type; ImportError (with the install hint) without matplotlib.
    """
    path = _check_path(path)
    mpl = _Mpl()
    case = _load(case)
    import refimpl
    from oracle.verdict.run import compute, require_all

    values = compute(case, refimpl)
    require_all(values)  # a figure of numbers that cannot be computed: refused, with the reason
    with mpl.rc(), _finite("figure"):
        fig = _DRAWERS[case.kind](mpl, case, values)
        _save(fig, path)
    return path


_DRAWERS = {
    "network": _network_figure,
    "graph": _graph_figure,
    "activation": _activation_figure,
    "loss": _loss_figure,
    "jacobian": _jacobian_figure,
}
