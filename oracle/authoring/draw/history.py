"""Gradient-descent history: loss and every parameter per step, numpy and torch."""

from __future__ import annotations

import math

import numpy as np

from oracle.authoring.draw.common import (
    _get,
    _check_path,
    ENGINE_LABELS,
    _finite,
    fmt,
    GRAY,
    _load,
    _Mpl,
    _save,
    sub,
    sup,
    _wrap,
)


# ---------------------------------------------------------------- history


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
        raise ValueError(
            f"{case.id}: plot_history needs a network case with gradient_descent "
            f"(this one is a {case.kind} case{'' if case.kind != 'network' else ' without it'})"
        )
    import refimpl

    from oracle.engines import torch_engine

    with _finite("history"):
        histories = {"numpy": _history(case, refimpl), "torch": _history(case, torch_engine)}
    with mpl.rc(), _finite("history"):
        fig = _history_figure(mpl, case, histories)
        _save(fig, path)
    return path


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
        last_b[l] is not None for l in g["W"] if g["b"][l] is not None
    ):
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
    head = 0.15 + 0.21 * len(title) + 0.45  # title lines, then the legend row
    note = _wrap(
        mpl,
        f"t = number of gradient-descent updates applied (η = {fmt(g['eta'])}"
        + (f"; frozen: {', '.join(g['frozen'])}" if g["frozen"] else "")
        + "). C at t is the cost at the parameters after t updates (the forward pass of step t + 1); "
        "the parameters are their values after t updates. numpy: line; torch: rings on it"
        + ("; ×: the value the notes print." if printed else "."),
        7.5,
        width - 0.4,
    )
    foot = 0.55 + len(note) * 0.15
    height = head + 2.5 * nrows + foot
    fig = mpl.Figure(figsize=(width, height), dpi=100)
    mpl.FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=0.8 / width,
        right=1 - 0.2 / width,
        top=1 - (head + 0.3) / height,
        bottom=foot / height,
        hspace=0.55,
        wspace=0.5,
    )
    for k, line in enumerate(title):
        fig.text(
            0.5,
            1 - (0.15 + 0.21 * k) / height,
            line,
            ha="center",
            va="top",
            fontsize=11,
            weight="bold",
            parse_math=False,
        )
    for k, line in enumerate(note):
        fig.text(
            0.2 / width,
            (0.1 + (len(note) - 1 - k) * 0.15) / height,
            line,
            fontsize=7.5,
            color=GRAY,
            va="bottom",
            parse_math=False,
        )
    handles = {}
    for k, (series, idx) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for engine, style in (
            ("numpy", dict(color="#1f77b4", lw=1.8, marker=".", ms=5)),
            ("torch", dict(color="#d62728", lw=0, marker="o", ms=8, mfc="none", mew=1.4)),
        ):
            hist = histories[engine][series]
            if idx is None:
                ys = [np.nan if v is None else float(v) for v in hist]
                lines = [(ys, None)]
            else:
                shape = np.asarray(ref[series][0]).shape
                cells = [idx] if idx != "all" else list(np.ndindex(shape))
                lines = [
                    ([np.nan if v is None else float(np.asarray(v, dtype=float).reshape(shape)[c]) for v in hist], c)
                    for c in cells
                ]
            for ys, c in lines:
                (h,) = ax.plot(ts[: len(ys)], ys, label=ENGINE_LABELS[engine], **style)
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
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")  # 0.400003, not 1e−6+4e−1
        ax.tick_params(labelsize=7.5)
        ax.grid(alpha=0.3)
        ax.set_xlabel("updates t", fontsize=8)
    order = list(handles.values())
    fig.legend(
        order,
        [h.get_label() for h in order],
        loc="center",
        ncol=len(order),
        fontsize=8.5,
        frameon=False,
        bbox_to_anchor=(0.5, 1 - (head - 0.2) / height),
    )
    return fig


def _panel_title(series, idx, conv, g):
    if series == "C":
        return f"cost C ({g['loss'][0].replace('_', ' ')})"
    kind, l = series[0], series[1:]
    if idx == "all":
        return f"{kind}{sup(l)}: every entry"
    if kind == "b":
        return f"b{sup(l)}{sub(idx[0] + 1)}" if np.asarray(g["b"][int(l)]).size > 1 else f"b{sup(l)}"
    if np.asarray(g["W"][int(l)]).size == 1:
        return f"w{sup(l)}"
    r, c = idx
    j, i = (r, c) if conv == "column" else (c, r)
    return f"w{sup(l)}{sub(j + 1)}{sub(i + 1)}"
