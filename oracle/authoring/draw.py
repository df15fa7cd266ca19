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
"""
from __future__ import annotations

import contextlib
import math
import textwrap
from pathlib import Path

import numpy as np

from oracle.reports.safetext import terminal

MISSING_MATPLOTLIB = "drawing needs matplotlib: pip install 'backprop-oracle[figures]'"
FORMATS = (".svg", ".png")

FONT = "DejaVu Sans"
GREEN = "#1b7a34"       # forward values
RED = "#c0262d"         # gradients
BLUE = "#1f4e96"        # parameters
GRAY = "#555555"
ENGINE_LABELS = {"numpy": "numpy (refimpl)", "torch": "torch (autograd oracle)"}

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_ACT_SYMBOL = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "LReLU", "prelu": "PReLU",
               "swish": "swish", "identity": "id", "softmax": "soft\nmax", "log_softmax": "log\nsoftmax"}
_GATE_SYMBOL = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "neg": "−", "pow": "^"}


# ---------------------------------------------------------------- numbers

def fmt(value, sig=4):
    """A number rounded to ``sig`` significant digits, plainly written (no trailing zeros, U+2212 minus)."""
    v = float(value)
    if not math.isfinite(v):
        return {math.inf: "∞", -math.inf: "−∞"}.get(v, "nan")
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-4:
        mant, exp = f"{v:.{sig - 1}e}".split("e")
        mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
        return f"{mant}·10{str(int(exp)).translate(_SUP).replace('-', '⁻')}".replace("-", "−")
    decimals = max(sig - 1 - math.floor(math.log10(abs(v))), 0)
    text = f"{v:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.replace("-", "−")


def fmt_change(old, new, sig=4):
    """``new`` with enough digits to differ from ``old`` as printed (up to 9 significant digits)."""
    s = sig
    while fmt(new, s) == fmt(old, s) and float(new) != float(old) and s < 9:
        s += 1
    return fmt(new, s)


def fmt_values(values, sig=4):
    """One number as is; several (one per example) in brackets, with one digit less."""
    values = np.asarray(values, dtype=float).reshape(-1)
    if values.size == 1:
        return fmt(values[0], sig)
    return "[" + ", ".join(fmt(v, sig - 1) for v in values) + "]"


def sub(i):
    return str(i).translate(_SUB)


def sup(i):
    return str(i).translate(_SUP)


# ---------------------------------------------------------------- matplotlib, lazily

class _Mpl:
    """The few matplotlib pieces the figures use, imported on first use."""

    def __init__(self):
        try:
            import matplotlib
            from matplotlib import patches
            from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
            from matplotlib.figure import Figure
            from matplotlib.font_manager import FontProperties
        except ImportError as exc:
            raise ImportError(MISSING_MATPLOTLIB) from exc
        self.matplotlib, self.patches, self.Figure = matplotlib, patches, Figure
        self.FigureCanvasAgg, self.FontProperties = FigureCanvasAgg, FontProperties
        self._renderer = RendererAgg(10, 10, 72)      # 72 dpi: pixels are points
        self._widths = {}

    def rc(self):
        return self.matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "backprop-oracle",
                                           "font.family": "sans-serif", "font.sans-serif": [FONT],
                                           "axes.unicode_minus": True})

    def text_width(self, text, size, weight="normal", style="normal"):
        """Width in inches of (the widest line of) ``text`` at ``size`` points."""
        key = (text, size, weight, style)
        if key not in self._widths:
            prop = self.FontProperties(family=FONT, size=size, weight=weight, style=style)
            self._widths[key] = max(self._renderer.get_text_width_height_descent(line, prop, ismath=False)[0]
                                    for line in text.split("\n")) / 72
        return self._widths[key]

    def sheet(self, width, height):
        """A figure of width × height inches whose single axes has inches as data units."""
        fig = self.Figure(figsize=(width, height), dpi=100)
        self.FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(0, height)
        ax.axis("off")
        return fig, ax


def _check_path(path):
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot draw to {path.name!r}: the file name must end in .svg or .png")
    return path


def _save(fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = path.suffix.lower()[1:]
    metadata = {"Date": None} if kind == "svg" else {}     # reproducible SVG: no time stamp
    fig.savefig(path, format=kind, dpi=150, metadata=metadata, facecolor="white")


def _load(case):
    if isinstance(case, (str, Path)):
        from oracle.verdict.cases import load_case
        return load_case(case)
    return case


def _text(ax, x, y, s, size=8, color="black", **kw):
    return ax.text(x, y, terminal(s), fontsize=size, color=color, parse_math=False, **kw)


def _wrap(mpl, text, size, max_width, **font):
    """Greedy word wrap of ``text`` to lines at most ``max_width`` inches wide (measured)."""
    lines = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            trial = f"{line} {word}" if line else word
            if line and mpl.text_width(trial, size, **font) > max_width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def _title_lines(mpl, case, width):
    title = _wrap(mpl, terminal(case.title), 12, width - 0.5, weight="bold")
    src = terminal(case.source.get("document", ""))
    if case.source.get("heading"):
        src += " — " + terminal(case.source["heading"])
    return title, _wrap(mpl, src, 8, width - 0.5, style="italic")


def _title_height(mpl, case, width):
    title, src = _title_lines(mpl, case, width)
    return 0.24 * len(title) + 0.17 * len(src)


def _header(mpl, ax, case, width, top):
    """Title (wrapped) and source line from ``top`` down; returns the y below them."""
    y = top
    title, src = _title_lines(mpl, case, width)
    for line in title:
        _text(ax, width / 2, y, line, 12, ha="center", va="top", weight="bold")
        y -= 0.24
    for line in src:
        _text(ax, width / 2, y, line, 8, GRAY, ha="center", va="top", style="italic")
        y -= 0.17
    return y


def _legend(ax, lines, bottom, size=7.5):
    """Legend text (already wrapped) upwards from ``bottom``."""
    y = bottom
    for line in reversed(lines):
        _text(ax, 0.25, y, line, size, GRAY, ha="left", va="bottom")
        y += size * 1.45 / 72


def _wrap_legend(mpl, parts, width, size=7.5):
    out = []
    for part in parts:
        out.extend(_wrap(mpl, part, size, width - 0.5))
    return out


def _legend_height(lines, size=7.5):
    return len(lines) * size * 1.45 / 72


# ---------------------------------------------------------------- public API

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
    require_all(values)                 # a figure of numbers that cannot be computed: refused, with the reason
    with mpl.rc(), _finite("figure"):
        fig = _DRAWERS[case.kind](mpl, case, values)
        _save(fig, path)
    return path


@contextlib.contextmanager
def _finite(what):
    """Floating-point problems while drawing are a ValueError with a message, never a RuntimeWarning."""
    from oracle.verdict.run import Uncomputable, finite_math
    try:
        with finite_math():
            yield
    except FloatingPointError as exc:
        raise Uncomputable(f"the {what} needs a number that is not finite ({exc}): the case's numbers "
                           f"overflow float64 or leave a function's domain") from None


def plot_history(case, path):
    """Loss and every parameter per gradient-descent step, from numpy (line) and torch (markers).

    Step t on the x axis means "after t updates": the loss at the parameters θ_t and θ_t itself,
    t = 0 … steps (the loss of the last parameters is computed by each engine's forward pass and
    loss). Values the document prints for these quantities are marked too. ValueError when the
    case is not a network case with gradient_descent.
    """
    path = _check_path(path)
    mpl = _Mpl()
    case = _load(case)
    if case.kind != "network" or not case.given.get("steps"):
        raise ValueError(f"{case.id}: plot_history needs a network case with gradient_descent "
                         f"(this one is a {case.kind} case{'' if case.kind != 'network' else ' without it'})")
    import refimpl

    from oracle.engines import torch_engine
    with _finite("history"):
        histories = {"numpy": _history(case, refimpl), "torch": _history(case, torch_engine)}
    with mpl.rc(), _finite("history"):
        fig = _history_figure(mpl, case, histories)
        _save(fig, path)
    return path


# ---------------------------------------------------------------- network

def _as_columns(array, convention, n=None):
    """An engine array (column: (n, N); row: (N, n)) or a given flat vector → (n, N)."""
    a = np.asarray(array, dtype=float)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    return a if convention == "column" else a.T


def _column_w(W, convention):
    """W[l] as (out, in), whatever the convention."""
    W = np.asarray(W, dtype=float)
    return W if convention == "column" else W.T


def _get(values, key):
    from oracle.verdict.run import Missing
    v = values.get(key)
    return None if v is None or isinstance(v, Missing) else v


def _neuron_lines(values, l, j, case, sizes):
    """Annotation lines (text, color) under neuron j (0-based) of layer l."""
    g, conv = case.given, case.convention
    L = len(sizes) - 1
    if l == 0:
        x = _as_columns(g["x"], conv)
        return [(f"x{sub(j + 1)} = {fmt_values(x[j])}", GREEN)]
    lines = []
    for key, name, color in (("z", "z", GREEN), ("a", "a", GREEN), ("delta", "δ", RED)):
        v = _get(values, f"{key}[{l}]")
        lines.append((f"{name} = {'—' if v is None else fmt_values(_as_columns(v, conv)[j])}", color))
    b = g["b"][l]
    if b is not None:
        text = f"b = {fmt(b[j])}"
        new = _get(values, f"b[{l}]'")
        if f"b{l}" in g["frozen"]:
            text += " (frozen)"
        elif new is not None:
            text += f" → {fmt_change(b[j], np.reshape(new, -1)[j])}"
        lines.append((text, BLUE))
    if l == L:
        y = _as_columns(g["y"], conv)
        lines.append((f"y = {fmt_values(y[j])}", GRAY))
    return lines


def _edge_label(values, l, i, j, case):
    W = _column_w(case.given["W"][l], case.convention)
    text = fmt(W[j, i])
    new = _get(values, f"W[{l}]'")
    if new is not None and f"W{l}" not in case.given["frozen"]:
        text += f" → {fmt_change(W[j, i], _column_w(new, case.convention)[j, i])}"
    return text


def _network_figure(mpl, case, values):
    g = case.given
    conv = case.convention
    L = max(g["W"])
    Wc = {l: _column_w(g["W"][l], conv) for l in g["W"]}
    sizes = [Wc[1].shape[1]] + [Wc[l].shape[0] for l in range(1, L + 1)]

    r = 0.25                       # neuron radius
    fs, lh = 7.5, 7.5 * 1.32 / 72  # annotation font size and line height
    efs = 7                        # edge label font size
    notes = {(l, j): _neuron_lines(values, l, j, case, sizes) for l in range(L + 1) for j in range(sizes[l])}
    labels = {(l, i, j): _edge_label(values, l, i, j, case)
              for l in range(1, L + 1) for j in range(sizes[l]) for i in range(sizes[l - 1])}
    block_w = {l: max(mpl.text_width(t, fs) for j in range(sizes[l]) for t, _ in notes[(l, j)]) + 0.1
               for l in range(L + 1)}
    block_h = max(len(v) for v in notes.values()) * lh + 0.06
    label_w = {l: max(mpl.text_width(labels[(l, i, j)], efs) for j in range(sizes[l]) for i in range(sizes[l - 1]))
               for l in range(1, L + 1)}
    dy = 2 * r + block_h + 0.3
    # the gap between columns: room between the two annotation blocks for a label or so, and
    # for about two labels side by side between the circles
    gaps = []
    for l in range(1, L + 1):
        fan = max(sizes[l], sizes[l - 1])
        gaps.append(max((block_w[l - 1] + block_w[l]) / 2 + 1.2 * label_w[l] + 0.4,
                        2 * r + 2.1 * label_w[l] + 0.5 + 0.12 * fan, 2.0))
    heads = {l: _layer_heads(case, l, L) for l in range(L + 1)}
    head_w = {l: max(mpl.text_width(h, 8) for h in heads[l]) for l in range(L + 1)}
    left = max(block_w[0] / 2, head_w[0] / 2, r) + 0.3
    right = max(block_w[L] / 2, head_w[L] / 2, r) + 0.3
    xs = [left]
    for gap in gaps:
        xs.append(xs[-1] + gap)
    width = max(xs[-1] + right, 6.0)
    shift = (width - (xs[-1] + right)) / 2
    xs = [x + shift for x in xs]

    legend = _wrap_legend(mpl, _network_legend(case, values), width)
    net_h = (max(sizes) - 1) * dy + 2 * r + block_h + 0.1
    height = 0.25 + _title_height(mpl, case, width) + 0.2 + 0.42 + net_h + 0.1 + _legend_height(legend) + 0.2
    fig, ax = mpl.sheet(width, height)
    y = _header(mpl, ax, case, width, height - 0.25) - 0.2
    for l in range(L + 1):
        for k, h in enumerate(heads[l]):
            _text(ax, xs[l], y - k * 0.17, h, 8, "black" if k == 0 else GRAY, ha="center", va="top",
                  weight="bold" if k == 0 else "normal")
    top = y - 0.42
    middle = top - r - (max(sizes) - 1) * dy / 2     # the circles of every column centred on one line

    pos = {}
    for l in range(L + 1):
        n = sizes[l]
        for j in range(n):
            pos[(l, j)] = np.array([xs[l], middle + ((n - 1) / 2 - j) * dy])

    # obstacles for the labels: circles and annotation blocks
    obstacles = []
    blocks = {}
    for (l, j), p in pos.items():
        obstacles.append(_rect(p, r + 0.04, r + 0.04))
        bw, bh = block_w[l], len(notes[(l, j)]) * lh + 0.06
        bc = np.array([p[0], p[1] - r - 0.04 - bh / 2])
        blocks[(l, j)] = (bc, bw, bh)
        obstacles.append(_rect(bc, bw / 2 + 0.03, bh / 2 + 0.03))

    edges = []
    for l in range(1, L + 1):
        for j in range(sizes[l]):
            for i in range(sizes[l - 1]):
                edges.append(((l, i, j), pos[(l - 1, i)], pos[(l, j)]))
    for _, p0, p1 in edges:
        ax.plot([p0[0], p1[0]], [p0[1], p1[1]], color="#8c8c8c", lw=0.9, zorder=1, solid_capstyle="round")

    items = []
    h_label = efs * 1.25 / 72 + 0.05
    for key, p0, p1 in edges:
        items.append({"key": key, "p0": p0, "p1": p1, "text": labels[key],
                      "w": mpl.text_width(labels[key], efs) + 0.08, "h": h_label})
    _place_edge_labels(items, obstacles, [(p0, p1) for _, p0, p1 in edges], r)
    for it in items:
        c, ang = it["center"], it["angle"]
        _text(ax, c[0], c[1], it["text"], efs, "black", ha="center", va="center", rotation=ang,
              rotation_mode="anchor", zorder=3,
              bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="#d0d0d0", lw=0.4, alpha=0.95))

    for (l, j), p in pos.items():
        face = "#f3f3f3" if l == 0 else "#e8f0fb"
        ax.add_patch(mpl.patches.Circle(p, r, fc=face, ec="#333333", lw=1.1, zorder=4))
        if l == 0:
            inner, size = f"x{sub(j + 1)}", 10
        else:
            inner = _ACT_SYMBOL.get(g["f"][l][0], g["f"][l][0])
            size = 11 if len(inner) <= 2 else 7 if "\n" not in inner else 6
        _text(ax, p[0], p[1], inner, size, "black", ha="center", va="center", zorder=5,
              linespacing=0.9)
        bc, bw, bh = blocks[(l, j)]
        ax.add_patch(mpl.patches.FancyBboxPatch((bc[0] - bw / 2, bc[1] - bh / 2), bw, bh,
                                                boxstyle="round,pad=0.0,rounding_size=0.04",
                                                fc="white", ec="#e0e0e0", lw=0.4, alpha=0.93, zorder=5))
        yy = bc[1] + bh / 2 - 0.03
        for text, color in notes[(l, j)]:
            _text(ax, bc[0], yy, text, fs, color, ha="center", va="top", zorder=6)
            yy -= lh
    _legend(ax, legend, 0.2)
    return fig


def _layer_heads(case, l, L):
    g = case.given
    if l == 0:
        return ["input", "a⁰ = x"]
    name, param = g["f"][l]
    act = {"sigmoid": "σ", "identity": "identity", "relu": "ReLU", "leaky_relu": "leaky ReLU",
           "prelu": "PReLU"}.get(name, name)
    if param is not None:
        act += f" ({fmt(param)})"
    kind = "output" if l == L else "hidden"
    return [f"layer {l} ({kind})", f"a{sup(l)} = {act}(z{sup(l)})"]


def _network_legend(case, values):
    g = case.given
    conv = case.convention
    parts = []
    edge = "Edges: the weight w_ji from neuron i to neuron j"
    if conv == "row":
        edge += " (row convention: W of shape (in, out), so w_ji is W[i, j])"
    else:
        edge += " (column convention: W of shape (out, in), w_ji is W[j, i])"
    if g["eta"] is not None:
        steps = g["steps"]
        edge += (f"; w → w' is the weight after one gradient-descent step, η = {fmt(g['eta'])}"
                 + (f" (the first of {steps} steps)" if steps > 1 else ""))
        if g["frozen"]:
            edge += f"; frozen: {', '.join(g['frozen'])}"
    parts.append(edge + ".")
    neuron = ("Under each neuron: z = weighted input and a = activation (forward, green), "
              "δ = ∂Cₙ/∂z (backward, red)")
    if any(b is not None for b in g["b"].values()):
        neuron += ", b = bias" + (" → after the update" if g["eta"] is not None else "")
    else:
        neuron += "; the layers have no bias"
    neuron += ", y = target."
    if g["N"] > 1:
        neuron += f" Batch of N = {g['N']} examples: one value per example, in their order."
    parts.append(neuron)
    name, factor, reduction = g["loss"]
    C = _get(values, "C")
    cost = f"C = {fmt(C) if C is not None else '—'} ({name.replace('_', ' ')}, factor {fmt(factor)}"
    cost += f", {reduction} over N = {g['N']})" if g["N"] > 1 else ")"
    parts.append(cost + ". Values computed by refimpl (numpy), rounded to 4 significant digits.")
    return parts


def _rect(center, hx, hy):
    """The corners of an axis-aligned rectangle with half-sizes hx, hy."""
    c = np.asarray(center, dtype=float)
    return np.array([c + (-hx, -hy), c + (hx, -hy), c + (hx, hy), c + (-hx, hy)])


def _oriented(center, u, w, h):
    v = np.array([-u[1], u[0]])
    return np.array([center + sx * u * w / 2 + sy * v * h / 2 for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def _normals(P, n_axes):
    """Normals of the first ``n_axes`` edges of polygons P (n, k, 2) → (n, n_axes, 2)."""
    e = P[:, 1:n_axes + 1] - P[:, :n_axes]
    return np.stack([-e[..., 1], e[..., 0]], axis=-1)


def _sat(A, B, a_axes=2, b_axes=2):
    """Which convex polygons of A (n, k, 2) overlap which of B (m, p, 2)? → (n, m) booleans.

    Separating-axis test, vectorised; rectangles need 2 axes, a segment (p = 2) needs 1.
    """
    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    sep = np.zeros((len(A), len(B)), dtype=bool)
    for axes in (_normals(A, a_axes)[:, None], _normals(B, b_axes)[None, :]):
        pa = np.einsum("nkd,nmad->nmak", A, np.broadcast_to(axes, (len(A), len(B)) + axes.shape[2:]))
        pb = np.einsum("mkd,nmad->nmak", B, np.broadcast_to(axes, (len(A), len(B)) + axes.shape[2:]))
        sep |= ((pa.max(-1) <= pb.min(-1)) | (pb.max(-1) <= pa.min(-1))).any(-1)
    return ~sep


def _place_edge_labels(items, obstacles, segments, r, restarts=12):
    """Place each label along its own edge where it overlaps nothing, preferring the middle-to-target part.

    Candidates are NC points along each edge (clear of both circles). Cost of a choice: overlaps
    with circles and annotation blocks and with other labels (heavy), other edges running under
    the label (light), distance from the preferred spot (lighter). Greedy (most constrained label
    first), then rounds of re-placing each label against all others until nothing changes;
    repeated from a few shuffled orders (fixed seed: the same figure every time), best kept.
    """
    NC = 33
    seg = np.array([[p0, p1] for p0, p1 in segments], dtype=float)
    obst = np.array(obstacles, dtype=float)
    for it in items:
        d = it["p1"] - it["p0"]
        length = float(np.hypot(*d))
        it["u"] = d / length
        it["angle"] = math.degrees(math.atan2(d[1], d[0]))
        lo = r + it["w"] / 2 + 0.06
        hi = length - r - it["w"] / 2 - 0.06
        if hi <= lo:
            lo = hi = length / 2
        it["cands"] = [it["p0"] + it["u"] * s for s in np.linspace(lo, hi, NC)]
        quads = np.array([_oriented(c, it["u"], it["w"] + 0.06, it["h"] + 0.05) for c in it["cands"]])
        it["quads"] = quads
        cross = _sat(quads, seg, 2, 1)
        own = [k for k, (p0, p1) in enumerate(segments) if p0 is it["p0"] and p1 is it["p1"]]
        cross[:, own] = False
        n_obst = _sat(quads, obst).sum(1)
        it["free"] = int((n_obst == 0).sum())
        it["base"] = 100.0 * n_obst + 1.5 * cross.sum(1) + 2.0 * np.abs(np.linspace(0, 1, NC) - 0.62)
    # which candidate pairs of two labels collide (only for labels that can come near each other)
    n = len(items)
    boxes = [np.concatenate([it["quads"].reshape(-1, 2).min(0), it["quads"].reshape(-1, 2).max(0)]) for it in items]
    conflict = {}
    for i in range(n):
        for j in range(i + 1, n):
            bi, bj = boxes[i], boxes[j]
            if bi[0] > bj[2] or bj[0] > bi[2] or bi[1] > bj[3] or bj[1] > bi[3]:
                continue
            c = _sat(items[i]["quads"], items[j]["quads"])
            if c.any():
                conflict[(i, j)], conflict[(j, i)] = c, c.T
    near = {i: [j for j in range(n) if (i, j) in conflict] for i in range(n)}

    def cost_of(i, choice):
        total = items[i]["base"].copy()
        for j in near[i]:
            if choice[j] is not None:
                total += 100.0 * conflict[(i, j)][:, choice[j]]
        return total

    def settle(choice, order):
        for _ in range(20):
            changed = False
            for i in order:
                c = cost_of(i, choice)
                k = int(np.argmin(c))
                if c[k] < c[choice[i]]:
                    choice[i], changed = k, True
            if not changed:
                break
        return choice

    def score(choice):
        total = sum(items[i]["base"][choice[i]] for i in range(n))
        clashes = sum(int(conflict[(i, j)][choice[i], choice[j]]) for (i, j) in conflict if i < j)
        hidden = sum(int(items[i]["base"][choice[i]] >= 100) for i in range(n))
        return clashes + hidden, total + 100.0 * clashes

    def solve(order):
        choice = [None] * n
        for i in order:
            choice[i] = int(np.argmin(cost_of(i, choice)))
        choice = settle(choice, order)
        best = score(choice)
        # a label still in trouble: force it onto each free spot, let its neighbours move away
        for i in range(n):
            bad = items[i]["base"][choice[i]] >= 100 or any(conflict[(i, j)][choice[i], choice[j]] for j in near[i])
            if not bad:
                continue
            for k in np.flatnonzero(items[i]["base"] < 100):
                trial = list(choice)
                trial[i] = int(k)
                for j in near[i]:
                    if conflict[(i, j)][k, trial[j]]:
                        c = cost_of(j, trial)
                        trial[j] = int(np.argmin(c))
                trial = settle(trial, [j for j in order if j != i])
                s = score(trial)
                if s < best:
                    best, choice = s, trial
        return best[0], best[1], choice

    rng = np.random.default_rng(0)
    best = solve(sorted(range(n), key=lambda i: items[i]["free"]))
    for _ in range(restarts):
        if best[0] == 0:
            break
        trial = solve(list(rng.permutation(n)))
        if trial[:2] < best[:2]:
            best = trial
    for it, k in zip(items, best[2]):
        it["k"], it["center"] = k, it["cands"][k]
        if it["angle"] > 90:
            it["angle"] -= 180
        elif it["angle"] < -90:
            it["angle"] += 180


# ---------------------------------------------------------------- graph

_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}
_OPS = {"add": " + ", "sub": " − ", "mul": "·", "div": "/", "matmul": " @ ", "pow": "^"}


def unparse(node, parent=0, right=False):
    """An expression tree back to text, with · and − and only the parentheses it needs."""
    kind = node[0]
    if kind == "num":
        return fmt(node[1], 6)
    if kind == "var":
        return node[1]
    if kind == "call":
        name = {"sigmoid": "σ"}.get(node[1], node[1])
        return f"{name}(" + ", ".join(unparse(n) for n in node[2:]) + ")"
    if kind == "list":
        return "[" + ", ".join(unparse(n) for n in node[1:]) + "]"
    p = _PREC[kind]
    if kind == "neg":
        text = "−" + unparse(node[1], p)
    else:
        a = unparse(node[1], p, right=False)
        b = unparse(node[2], p, right=True)
        text = a + _OPS[kind] + b
    needs = p < parent or (p == parent and right and kind in ("sub", "div", "add", "mul")) or \
        (p == parent and not right and kind == "pow")
    return f"({text})" if needs else text


def _gate(tree):
    """(symbol, operand names) for a one-operation node over names only, else None."""
    kind = tree[0]
    if kind in ("add", "sub", "mul", "div", "pow") and tree[1][0] == "var" and tree[2][0] == "var":
        return _GATE_SYMBOL[kind], [tree[1][1], tree[2][1]]
    if kind == "neg" and tree[1][0] == "var":
        return "−", [tree[1][1]]
    if kind == "call" and len(tree) == 3 and tree[2][0] == "var":
        symbol = {"sigmoid": "σ", "relu": "ReLU", "identity": "id", "leaky_relu": "LReLU",
                  "prelu": "PReLU"}.get(tree[1], tree[1])
        return symbol, [tree[2][1]]
    return None


def _operands(tree):
    """Names a tree uses, in order of first appearance."""
    out = []

    def walk(n):
        if n[0] == "var":
            if n[1] not in out:
                out.append(n[1])
        elif n[0] != "num":
            for c in n[2:] if n[0] == "call" else n[1:]:
                walk(c)
    walk(tree)
    return out


def _graph_figure(mpl, case, values):
    g = case.given
    program, inputs = g["program"], g["inputs"]
    out = program[-1][0]
    trees = dict(program)
    operands = {name: _operands(tree) for name, tree in program}
    consumers = {n: [] for n in list(inputs) + list(trees)}
    for name in trees:
        for o in operands[name]:
            consumers[o].append(name)

    # columns: a gate one right of its deepest operand gate; an input one left of its first consumer
    col = {}
    for name, _ in program:
        col[name] = 1 + max([col[o] for o in operands[name] if o in trees] + [0])
    for name in inputs:
        col[name] = min([col[c] for c in consumers[name]] or [1]) - 1

    # rows: a tidy tree from the sinks (the output last), leaves in order, a gate at the mean of its operands
    sinks = [n for n in trees if not consumers[n] and n != out] + [out]
    row, next_leaf = {}, [0.0]

    def place(name):
        if name in row:
            return row[name]
        ops = operands.get(name, [])
        if not ops:
            row[name] = next_leaf[0]
            next_leaf[0] += 1
        else:
            ys = [place(o) for o in ops]
            row[name] = sum(ys) / len(ys)
        return row[name]
    for s in sinks:
        place(s)
    for name in inputs:
        place(name)
    by_col = {}
    for name, c in col.items():
        by_col.setdefault(c, []).append(name)
    for names in by_col.values():      # no two nodes of a column closer than one slot
        names.sort(key=lambda n: row[n])
        for a, b in zip(names, names[1:]):
            if row[b] - row[a] < 1:
                row[b] = row[a] + 1

    # sizes of the nodes and of their value/gradient labels
    fs, gfs = 8.5, 7.5
    R = 0.26
    shape = {}
    for name in inputs:
        shape[name] = ("input", mpl.text_width(name, 11, style="italic") + 0.04, 0.3, None)
    for name, tree in program:
        gate = _gate(tree)
        if gate:
            shape[name] = ("circle", 2 * R, 2 * R, gate[0])
        else:
            text = "\n".join(textwrap.wrap(_breakable(f"{name} = {unparse(tree)}"), 46, break_on_hyphens=False,
                                           break_long_words=False))
            w = mpl.text_width(text, gfs) + 0.2
            h = (text.count("\n") + 1) * gfs * 1.35 / 72 + 0.16
            shape[name] = ("box", w, h, text)
    fanout = any(len(c) > 1 for c in consumers.values())
    val = {n: _get(values, n) for n in consumers}
    grad = {n: _get(values, f"d{out}/d{n}") for n in consumers}
    vtext = {n: "—" if val[n] is None else fmt(val[n]) for n in consumers}
    gtext = {n: "—" if grad[n] is None else fmt(grad[n]) for n in consumers}
    stub = {n: max(mpl.text_width(vtext[n], fs), mpl.text_width(gtext[n], fs)) + 0.3 for n in consumers}
    ncol = max(col.values()) + 1
    colw = [max(shape[n][1] for n in consumers if col[n] == c) for c in range(ncol)]
    colstub = [max(stub[n] for n in consumers if col[n] == c) for c in range(ncol)]
    run = 0.9
    xs = [0.35 + colw[0] / 2]
    for c in range(1, ncol):
        xs.append(xs[-1] + colw[c - 1] / 2 + colstub[c - 1] + run + colw[c] / 2)
    out_len = max(colstub[-1], 0.9)
    end = xs[-1] + colw[-1] / 2 + out_len + 0.35 + max(mpl.text_width(s, 11) for s in sinks)
    width = max(end + 0.3, 6.0)
    shift = (width - end - 0.3) / 2
    xs = [x + shift for x in xs]

    slot = 0.95
    rows = max(row.values()) - min(row.values()) + 1
    legend = _wrap_legend(mpl, _graph_legend(case, values, out, fanout), width)
    box_extra = max(s[2] for s in shape.values()) / 2
    graph_h = (rows - 1) * slot + 2 * max(box_extra, 0.35) + 0.3
    height = 0.25 + _title_height(mpl, case, width) + 0.2 + graph_h + 0.15 + _legend_height(legend) + 0.25
    fig, ax = mpl.sheet(width, height)
    y_top = _header(mpl, ax, case, width, height - 0.25) - 0.2 - max(box_extra, 0.35) - 0.15
    rmin = min(row.values())
    pos = {n: np.array([xs[col[n]], y_top - (row[n] - rmin) * slot]) for n in consumers}

    def right_end(n):
        return pos[n] + (shape[n][1] / 2, 0)

    def entry(n, frm):
        """Where a wire from ``frm`` meets node n."""
        kind, w, h, _ = shape[n]
        c = pos[n]
        d = frm - c
        if kind == "circle":
            return c + d / np.hypot(*d) * R
        # box: on its left side, at the height of the wire clipped to the box
        t = (w / 2) / abs(d[0]) if d[0] else 1
        p = c + d * t
        p[1] = min(max(p[1], c[1] - h / 2 + 0.05), c[1] + h / 2 - 0.05)
        return p

    arrow = dict(arrowstyle="-|>", mutation_scale=9, lw=1.0, color="#333333", shrinkA=0, shrinkB=0)
    for n in consumers:
        s0 = right_end(n) + (0.04 if shape[n][0] == "input" else 0, 0)
        length = colstub[col[n]] if consumers[n] else out_len
        s1 = s0 + (length, 0)
        _text(ax, (s0[0] + s1[0]) / 2, s0[1] + 0.05, vtext[n], fs, GREEN, ha="center", va="bottom", weight="bold")
        _text(ax, (s0[0] + s1[0]) / 2, s0[1] - 0.05, gtext[n], fs, RED, ha="center", va="top", weight="bold")
        if not consumers[n]:
            ax.add_patch(mpl.patches.FancyArrowPatch(tuple(s0), tuple(s1), zorder=2, **arrow))
            _text(ax, s1[0] + 0.08, s1[1], n, 11, "black", ha="left", va="center", style="italic")
            continue
        ax.plot([s0[0], s1[0]], [s0[1], s1[1]], color="#333333", lw=1.0, zorder=2)
        if len(consumers[n]) > 1:
            ax.add_patch(mpl.patches.Circle(tuple(s1), 0.03, color="#333333", zorder=3))
        for c in consumers[n]:
            e = entry(c, s1)
            ax.add_patch(mpl.patches.FancyArrowPatch(tuple(s1), tuple(e), zorder=2, **arrow))
    for n in consumers:
        kind, w, h, label = shape[n]
        p = pos[n]
        if kind == "input":
            _text(ax, p[0] + w / 2, p[1], n, 11, "black", ha="right", va="center", style="italic")
        elif kind == "circle":
            ax.add_patch(mpl.patches.Circle(tuple(p), R, fc="#e8f0fb", ec="#333333", lw=1.1, zorder=4))
            size = 16 if len(label) == 1 else 9 if len(label) <= 3 else 7.5
            _text(ax, p[0], p[1], label, size, "black", ha="center", va="center_baseline", zorder=5)
            _text(ax, p[0], p[1] + R + 0.04, n, 8, GRAY, ha="center", va="bottom", style="italic", zorder=5)
        else:
            ax.add_patch(mpl.patches.FancyBboxPatch((p[0] - w / 2, p[1] - h / 2), w, h,
                                                    boxstyle="round,pad=0,rounding_size=0.06",
                                                    fc="#e8f0fb", ec="#333333", lw=1.1, zorder=4))
            _text(ax, p[0], p[1], label, gfs, "black", ha="center", va="center", zorder=5, linespacing=1.35)
    _legend(ax, legend, 0.2)
    return fig


def _breakable(text):
    """Spaces inside two or more levels of parentheses become no-break spaces (wrap at the outer + and −)."""
    out, depth = [], 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        out.append("\u00a0" if ch == " " and depth > 1 else ch)
    return "".join(out)


def _graph_legend(case, values, out, fanout):
    g = case.given
    parts = [f"Above each wire (green): the forward value of the input or node it leaves; below it (red): "
             f"∂{out}/∂(that value), the gradient of the output {out}."
             + (" A dot marks a value used by several gates (its gradient is the sum over them)." if fanout else "")
             + " Values computed by refimpl (numpy), rounded to 4 significant digits."]
    for offsets in g["perturbations"]:
        from oracle.verdict.cases import perturbation_label
        label = perturbation_label(offsets)
        what = ", ".join(f"{k} by {fmt(v)}" for k, v in offsets.items())
        new, delta = _get(values, f"{out}({label})"), _get(values, f"Δ{out}({label})")
        grads = ", ".join(f"∂{out}/∂{k} = {fmt(_get(values, f'd{out}/d{k}'))}" for k in offsets
                          if _get(values, f"d{out}/d{k}") is not None)
        text = f"Increase {what}: {out} = {'—' if new is None else fmt(new)}, " \
               f"Δ{out} = {'—' if delta is None else fmt(delta)}"
        parts.append(text + (f" ({grads})." if grads else "."))
    return parts


# ---------------------------------------------------------------- activation, loss, jacobian

def _activation_figure(mpl, case, values):
    (name, param), z = case.given["activation"], np.asarray(case.given["z"], dtype=float)
    if name in ("softmax", "log_softmax"):
        rows = [("z", z, "black"), ("a = " + name + "(z)", _get(values, "a"), GREEN)]
        notes = [f"{name} is not elementwise: each a_j depends on every z of its example, so it is shown as "
                 f"a table (axis: {'0, columns' if case.convention == 'column' else 'last, rows'})."]
        return _table_figure(mpl, case, rows, notes)
    import refimpl
    zs = z.reshape(-1)
    a, d = _get(values, "a"), _get(values, "f'(z)")
    a = None if a is None else np.asarray(a, dtype=float).reshape(-1)
    d = None if d is None else np.asarray(d, dtype=float).reshape(-1)
    rows = [("z", zs, "black")] + ([("a = f(z)", a, GREEN)] if a is not None else []) + \
        ([("f'(z)", d, RED)] if d is not None else [])
    cells = [[fmt(v) for v in vals] for _, vals, _ in rows]
    cell_w = max(mpl.text_width(c, 8) for row in cells for c in row) + 0.15
    name_w = max(mpl.text_width(n, 8) for n, _, _ in rows) + 0.2
    width = max(7.0, 0.6 + name_w + cell_w * min(len(zs), 24) + 0.4)
    label = name + (f" ({fmt(param)})" if param is not None else "")
    legend = _wrap_legend(mpl, [f"Curves: a = {label}(z) (green) and f'(z) (red, dashed). Marked: the case's z with "
                                f"a (green dots) and f'(z) (red squares), computed by refimpl (numpy), as in the "
                                f"table."], width)
    plot_h, table_h = 3.4, 0.2 * len(rows)
    height = 0.25 + _title_height(mpl, case, width) + 0.2 + plot_h + 0.55 + table_h + 0.2 + _legend_height(legend) + 0.2
    fig, canvas_ax = mpl.sheet(width, height)
    y = _header(mpl, canvas_ax, case, width, height - 0.25) - 0.2
    ax = fig.add_axes((0.75 / width, (y - plot_h) / height, (width - 1.1) / width, plot_h / height))
    lo, hi = float(zs.min()), float(zs.max())
    span = max(hi - lo, 2.0)
    grid = np.linspace(lo - 0.35 * span, hi + 0.35 * span, 1201)
    a_curve = refimpl.activation(name, grid, param, 0)
    d_curve = np.array(refimpl.activation_derivative(name, grid, param, 0), dtype=float)
    jumps = np.flatnonzero(np.abs(np.diff(d_curve)) > 0.05 * (np.ptp(d_curve) or 1) + 1e-12)
    d_curve[jumps] = np.nan          # no vertical line where f' jumps (ReLU at 0)
    ax.plot(grid, a_curve, color=GREEN, lw=1.6, label=f"a = {label}(z)")
    ax.plot(grid, d_curve, color=RED, lw=1.3, ls="--", label="f'(z)")
    if d is not None:
        ax.plot(zs, d, "s", color=RED, ms=9, mfc="white", mew=1.3, zorder=5)
    if a is not None:
        ax.plot(zs, a, "o", color=GREEN, ms=5, zorder=6)
    ax.axhline(0, color="#bbbbbb", lw=0.7, zorder=0)
    ax.axvline(0, color="#bbbbbb", lw=0.7, zorder=0)
    ax.set_xlabel("z", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ty = y - plot_h - 0.55
    x0 = (width - name_w - cell_w * len(zs)) / 2 if len(zs) <= 24 else 0.4
    for k, ((rname, _, color), row) in enumerate(zip(rows, cells)):
        _text(canvas_ax, x0 + name_w - 0.1, ty - k * 0.2, rname, 8, color, ha="right", va="center", weight="bold")
        for c, cell in enumerate(row[:24]):
            _text(canvas_ax, x0 + name_w + (c + 1) * cell_w - 0.05, ty - k * 0.2, cell, 8, color, ha="right",
                  va="center")
    _legend(canvas_ax, legend, 0.2)
    return fig


def _loss_figure(mpl, case, values):
    (name, factor, reduction), a, y = case.given["loss"], case.given["a"], case.given["y"]
    rows = [("a", a, "black"), ("y", y, "black"), ("C", _get(values, "C"), GREEN),
            ("∂Cₙ/∂a", _get(values, "dC/da"), RED)]
    examples = "one column per example" if case.convention == "column" else "one row per example"
    notes = [f"Loss {name.replace('_', ' ')}, factor {fmt(factor)}, reduction {reduction} ({examples} where a is "
             f"a matrix); C is the batch cost, ∂Cₙ/∂a the per-example gradient. Values computed by refimpl (numpy)."]
    return _table_figure(mpl, case, rows, notes)


def _jacobian_figure(mpl, case, values):
    g = case.given
    rows = [("W", g["W"], "black")]
    if g["b"] is not None:
        rows.append(("b", g["b"], "black"))
    rows += [("x", g["x"], "black"), ("∂z/∂x", _get(values, "dz/dx"), RED)]
    dW = _get(values, "dz/dW")
    if dW is not None:
        for i in range(dW.shape[0]):
            rows.append((f"∂z{sub(i + 1)}/∂W", dW[i], RED))
    conv = "z = W x + b, W of shape (out, in)" if case.convention == "column" else "z = x W + b, W of shape (in, out)"
    notes = [f"{conv}; ∂z_i/∂W has entry [p, q] = ∂z_i/∂W_pq. Values computed by refimpl (numpy)."]
    return _table_figure(mpl, case, rows, notes)


def _matrix_lines(array):
    a = np.asarray(array, dtype=float)
    if a.ndim == 0:
        return [fmt(a)]
    if a.ndim == 1:
        return ["[" + ",  ".join(fmt(v) for v in a) + "]"]
    cells = [[fmt(v) for v in row] for row in a.reshape(a.shape[0], -1)]
    w = max(len(c) for row in cells for c in row)
    return [("⎡" if k == 0 else "⎣" if k == len(cells) - 1 else "⎢") + "  ".join(c.rjust(w) for c in row)
            + ("⎤" if k == 0 else "⎦" if k == len(cells) - 1 else "⎥") if len(cells) > 1
            else "[" + "  ".join(c.rjust(w) for c in row) + "]" for k, row in enumerate(cells)]


def _table_figure(mpl, case, rows, notes):
    """A small table: one row per named value, matrices written out."""
    fs = 9
    lh = fs * 1.4 / 72
    blocks = [(label, ["—"] if value is None else _matrix_lines(value), color) for label, value, color in rows]
    mono = "DejaVu Sans Mono"
    name_w = max(mpl.text_width(label, fs) for label, _, _ in blocks) + 0.3
    char_w = 0.6 * fs / 72
    val_w = max(len(line) for _, lines, _ in blocks for line in lines) * char_w
    width = max(name_w + val_w + 0.8, 6.0)
    legend = _wrap_legend(mpl, notes, width)
    body_h = sum(len(lines) * lh + 0.12 for _, lines, _ in blocks)
    height = 0.25 + _title_height(mpl, case, width) + 0.25 + body_h + 0.15 + _legend_height(legend) + 0.2
    fig, ax = mpl.sheet(width, height)
    y = _header(mpl, ax, case, width, height - 0.25) - 0.25
    x0 = 0.4
    for label, lines, color in blocks:
        mid = y - len(lines) * lh / 2
        _text(ax, x0 + name_w - 0.15, mid, label + " =", fs, color, ha="right", va="center")
        for k, line in enumerate(lines):
            _text(ax, x0 + name_w, y - (k + 0.5) * lh, line, fs, color, ha="left", va="center", family=mono)
        y -= len(lines) * lh + 0.12
    _legend(ax, legend, 0.2)
    return fig


_DRAWERS = {"network": _network_figure, "graph": _graph_figure, "activation": _activation_figure,
            "loss": _loss_figure, "jacobian": _jacobian_figure}


# ---------------------------------------------------------------- history

def _history(case, engine):
    """{"C": [C(θ_0) … C(θ_k)], "W1": [W1 at θ_0 … θ_k], "b1": …} from one engine."""
    from oracle.verdict.run import compute
    g = case.given
    steps, conv = g["steps"], case.convention
    values = compute(case, engine)
    out = {"C": []}
    params = {}
    for l in sorted(g["W"]):
        params[f"W{l}"] = [np.asarray(g["W"][l], dtype=float)]
        if g["b"][l] is not None:
            params[f"b{l}"] = [np.asarray(g["b"][l], dtype=float)]
    for t in range(1, steps + 1):
        at = "" if t == 1 else f"@{t}"
        C = _get(values, f"C{at}")
        out["C"].append(None if C is None else float(C))
        for l in sorted(g["W"]):
            params[f"W{l}"].append(_get(values, f"W[{l}]'{at}"))
            if g["b"][l] is not None:
                params[f"b{l}"].append(_get(values, f"b[{l}]'{at}"))
    # the loss at the parameters after the last update: this engine's forward pass and loss
    last_W = {l: params[f"W{l}"][-1] for l in g["W"]}
    last_b = {l: params[f"b{l}"][-1] if g["b"][l] is not None else None for l in g["W"]}
    C_last = None
    if all(w is not None for w in last_W.values()) and all(
            last_b[l] is not None for l in g["W"] if g["b"][l] is not None):
        try:
            axis = 0 if conv == "column" else 1
            _, a = engine.forward(last_W, last_b, g["f"], np.array(g["x"], dtype=float), conv)
            aL = a[max(a)]
            y = np.asarray(g["y"], dtype=float)
            y = y.reshape(np.shape(aL)) if y.size == np.size(aL) else y
            name, factor, reduction = g["loss"]
            C_last = float(engine.loss(name, np.asarray(aL, dtype=float), y, factor, reduction, axis))
        except (NotImplementedError, ValueError, TypeError, KeyError):
            C_last = None
    out["C"].append(C_last)
    out.update(params)
    return out


def _printed_history(case):
    """Values the document prints for C@t, W[l]'@t, b[l]'@t, as {series: {step: array}}."""
    import re
    out = {}
    for e in case.expect:
        m = re.fullmatch(r"C(?:@(\d+))?", e.quantity)
        if m:
            out.setdefault("C", {})[int(m.group(1) or 1) - 1] = e.value
            continue
        m = re.fullmatch(r"([Wb])\[(\d+)\]'(?:@(\d+))?", e.quantity)
        if m:
            out.setdefault(f"{m.group(1)}{m.group(2)}", {})[int(m.group(3) or 1)] = e.value
    return out


def _history_figure(mpl, case, histories):
    g = case.given
    steps = g["steps"]
    ts = np.arange(steps + 1)
    conv = case.convention
    ref = histories["numpy"]
    names = [k for k in ref if k != "C"]
    scalars = sum(np.asarray(ref[k][0]).size for k in names)
    # one subplot per scalar parameter when there are few; else one per parameter array
    panels = [("C", None)]
    for k in names:
        if scalars <= 8:
            panels += [(k, idx) for idx in np.ndindex(np.asarray(ref[k][0]).shape)]
        else:
            panels.append((k, "all"))
    printed = _printed_history(case)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    width = 3.3 * ncols + 0.6
    title = _wrap(mpl, case.title, 11, width - 0.5, weight="bold")
    head = 0.15 + 0.21 * len(title) + 0.45          # title lines, then the legend row
    note = _wrap(mpl, f"t = number of gradient-descent updates applied (η = {fmt(g['eta'])}"
                 + (f"; frozen: {', '.join(g['frozen'])}" if g["frozen"] else "")
                 + "). C at t is the cost at the parameters after t updates (the forward pass of step t + 1); "
                   "the parameters are their values after t updates. numpy: line; torch: rings on it"
                 + ("; ×: the value the notes print." if printed else "."), 7.5, width - 0.4)
    foot = 0.55 + len(note) * 0.15
    height = head + 2.5 * nrows + foot
    fig = mpl.Figure(figsize=(width, height), dpi=100)
    mpl.FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.2 / width, top=1 - (head + 0.3) / height,
                        bottom=foot / height, hspace=0.55, wspace=0.5)
    for k, line in enumerate(title):
        fig.text(0.5, 1 - (0.15 + 0.21 * k) / height, line, ha="center", va="top", fontsize=11, weight="bold",
                 parse_math=False)
    for k, line in enumerate(note):
        fig.text(0.2 / width, (0.1 + (len(note) - 1 - k) * 0.15) / height, line, fontsize=7.5, color=GRAY,
                 va="bottom", parse_math=False)
    handles = {}
    for k, (series, idx) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for engine, style in (("numpy", dict(color="#1f77b4", lw=1.8, marker=".", ms=5)),
                              ("torch", dict(color="#d62728", lw=0, marker="o", ms=8, mfc="none", mew=1.4))):
            hist = histories[engine][series]
            if idx is None:
                ys = [np.nan if v is None else float(v) for v in hist]
                lines = [(ys, None)]
            else:
                shape = np.asarray(ref[series][0]).shape
                cells = [idx] if idx != "all" else list(np.ndindex(shape))
                lines = [([np.nan if v is None else float(np.asarray(v, dtype=float).reshape(shape)[c]) for v in hist],
                          c) for c in cells]
            for ys, c in lines:
                (h,) = ax.plot(ts[:len(ys)], ys, label=ENGINE_LABELS[engine], **style)
                handles[engine] = h
        if series in printed and idx != "all":
            pts = printed[series]
            xs_, ys_ = [], []
            for t, v in sorted(pts.items()):
                v = np.asarray(v, dtype=float).reshape(-1)
                flat = 0 if idx is None else int(np.ravel_multi_index(idx, np.asarray(ref[series][0]).shape))
                if flat < v.size:
                    xs_.append(t)
                    ys_.append(v[flat])
            if xs_:
                (h,) = ax.plot(xs_, ys_, "x", color="black", ms=7, mew=1.5, label="printed in the notes")
                handles["printed"] = h
        ax.set_title(_panel_title(series, idx, conv, g), fontsize=9)
        ax.set_xticks(ts)
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")   # 0.400003, not 1e−6+4e−1
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.3)
        ax.set_xlabel("updates t", fontsize=8)
    order = list(handles.values())
    fig.legend(order, [h.get_label() for h in order], loc="center", ncol=len(order), fontsize=8.5,
               frameon=False, bbox_to_anchor=(0.5, 1 - (head - 0.2) / height))
    return fig


def _panel_title(series, idx, conv, g):
    if series == "C":
        return f"cost C ({g['loss'][0].replace('_', ' ')})"
    kind, l = series[0], series[1:]
    if idx == "all":
        return f"{kind}{sup(l)}: every entry"
    if kind == "b":
        return f"b{sup(l)}{sub(idx[0] + 1)}" if np.asarray(g['b'][int(l)]).size > 1 else f"b{sup(l)}"
    if np.asarray(g["W"][int(l)]).size == 1:
        return f"w{sup(l)}"
    r, c = idx
    j, i = (r, c) if conv == "column" else (c, r)
    return f"w{sup(l)}{sub(j + 1)}{sub(i + 1)}"
