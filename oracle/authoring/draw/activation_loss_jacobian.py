"""Activation curves and the tables of loss, jacobian and softmax cases."""

from __future__ import annotations


import numpy as np

from oracle.authoring.draw.common import (
    _get,
    fmt,
    GREEN,
    _header,
    _legend,
    _legend_height,
    RED,
    sub,
    _text,
    _title_height,
    _wrap_legend,
)


# ---------------------------------------------------------------- activation, loss, jacobian


def _activation_figure(mpl, case, values):
    (name, param), z = case.given["activation"], np.asarray(case.given["z"], dtype=float)
    if name in ("softmax", "log_softmax"):
        rows = [("z", z, "black"), ("a = " + name + "(z)", _get(values, "a"), GREEN)]
        notes = [
            f"{name} is not elementwise: each a_j depends on every z of its example, so it is shown as "
            f"a table (axis: {'0, columns' if case.convention == 'column' else 'last, rows'})."
        ]
        return _table_figure(mpl, case, rows, notes)
    import refimpl

    zs = z.reshape(-1)
    a, d = _get(values, "a"), _get(values, "f'(z)")
    a = None if a is None else np.asarray(a, dtype=float).reshape(-1)
    d = None if d is None else np.asarray(d, dtype=float).reshape(-1)
    rows = (
        [("z", zs, "black")]
        + ([("a = f(z)", a, GREEN)] if a is not None else [])
        + ([("f'(z)", d, RED)] if d is not None else [])
    )
    cells = [[fmt(v) for v in vals] for _, vals, _ in rows]
    cell_w = max(mpl.text_width(c, 8) for row in cells for c in row) + 0.15
    name_w = max(mpl.text_width(n, 8) for n, _, _ in rows) + 0.2
    width = max(7.0, 0.6 + name_w + cell_w * min(len(zs), 24) + 0.4)
    label = name + (f" ({fmt(param)})" if param is not None else "")
    legend = _wrap_legend(
        mpl,
        [
            f"Curves: a = {label}(z) (green) and f'(z) (red, dashed). Marked: the case's z with "
            f"a (green dots) and f'(z) (red squares), computed by refimpl (numpy), as in the "
            f"table."
        ],
        width,
    )
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
    d_curve[jumps] = np.nan  # no vertical line where f' jumps (ReLU at 0)
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
            _text(
                canvas_ax, x0 + name_w + (c + 1) * cell_w - 0.05, ty - k * 0.2, cell, 8, color, ha="right", va="center"
            )
    _legend(canvas_ax, legend, 0.2)
    return fig


def _loss_figure(mpl, case, values):
    (name, factor, reduction), a, y = case.given["loss"], case.given["a"], case.given["y"]
    rows = [
        ("a", a, "black"),
        ("y", y, "black"),
        ("C", _get(values, "C"), GREEN),
        ("∂Cₙ/∂a", _get(values, "dC/da"), RED),
    ]
    examples = "one column per example" if case.convention == "column" else "one row per example"
    notes = [
        f"Loss {name.replace('_', ' ')}, factor {fmt(factor)}, reduction {reduction} ({examples} where a is "
        f"a matrix); C is the batch cost, ∂Cₙ/∂a the per-example gradient. Values computed by refimpl (numpy)."
    ]
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
    return [
        ("⎡" if k == 0 else "⎣" if k == len(cells) - 1 else "⎢")
        + "  ".join(c.rjust(w) for c in row)
        + ("⎤" if k == 0 else "⎦" if k == len(cells) - 1 else "⎥")
        if len(cells) > 1
        else "[" + "  ".join(c.rjust(w) for c in row) + "]"
        for k, row in enumerate(cells)
    ]


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
