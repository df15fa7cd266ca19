"""Network figures: layers of neurons, edge labels placed off each other and off the annotations."""

from __future__ import annotations

import math

import numpy as np

from oracle.authoring.draw.common import (
    _ACT_SYMBOL,
    BLUE,
    GRAY,
    GREEN,
    RED,
    _get,
    _header,
    _legend,
    _legend_height,
    _text,
    _title_height,
    _wrap_legend,
    fmt,
    fmt_change,
    fmt_values,
    sub,
    sup,
)


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

    r = 0.25  # neuron radius
    fs, lh = 7.5, 7.5 * 1.32 / 72  # annotation font size and line height
    efs = 7  # edge label font size
    notes = {(l, j): _neuron_lines(values, l, j, case, sizes) for l in range(L + 1) for j in range(sizes[l])}
    labels = {
        (l, i, j): _edge_label(values, l, i, j, case)
        for l in range(1, L + 1)
        for j in range(sizes[l])
        for i in range(sizes[l - 1])
    }
    block_w = {
        l: max(mpl.text_width(t, fs) for j in range(sizes[l]) for t, _ in notes[(l, j)]) + 0.1 for l in range(L + 1)
    }
    block_h = max(len(v) for v in notes.values()) * lh + 0.06
    label_w = {
        l: max(mpl.text_width(labels[(l, i, j)], efs) for j in range(sizes[l]) for i in range(sizes[l - 1]))
        for l in range(1, L + 1)
    }
    dy = 2 * r + block_h + 0.3
    # the gap between columns: room between the two annotation blocks for a label or so, and
    # for about two labels side by side between the circles
    gaps = []
    for l in range(1, L + 1):
        fan = max(sizes[l], sizes[l - 1])
        gaps.append(
            max(
                (block_w[l - 1] + block_w[l]) / 2 + 1.2 * label_w[l] + 0.4,
                2 * r + 2.1 * label_w[l] + 0.5 + 0.12 * fan,
                2.0,
            )
        )
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
            _text(
                ax,
                xs[l],
                y - k * 0.17,
                h,
                8,
                "black" if k == 0 else GRAY,
                ha="center",
                va="top",
                weight="bold" if k == 0 else "normal",
            )
    top = y - 0.42
    middle = top - r - (max(sizes) - 1) * dy / 2  # the circles of every column centred on one line

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
        items.append(
            {
                "key": key,
                "p0": p0,
                "p1": p1,
                "text": labels[key],
                "w": mpl.text_width(labels[key], efs) + 0.08,
                "h": h_label,
            }
        )
    _place_edge_labels(items, obstacles, [(p0, p1) for _, p0, p1 in edges], r)
    for it in items:
        c, ang = it["center"], it["angle"]
        _text(
            ax,
            c[0],
            c[1],
            it["text"],
            efs,
            "black",
            ha="center",
            va="center",
            rotation=ang,
            rotation_mode="anchor",
            zorder=3,
            bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="#d0d0d0", lw=0.4, alpha=0.95),
        )

    for (l, j), p in pos.items():
        face = "#f3f3f3" if l == 0 else "#e8f0fb"
        ax.add_patch(mpl.patches.Circle(p, r, fc=face, ec="#333333", lw=1.1, zorder=4))
        if l == 0:
            inner, size = f"x{sub(j + 1)}", 10
        else:
            inner = _ACT_SYMBOL.get(g["f"][l][0], g["f"][l][0])
            size = 11 if len(inner) <= 2 else 7 if "\n" not in inner else 6
        _text(ax, p[0], p[1], inner, size, "black", ha="center", va="center", zorder=5, linespacing=0.9)
        bc, bw, bh = blocks[(l, j)]
        ax.add_patch(
            mpl.patches.FancyBboxPatch(
                (bc[0] - bw / 2, bc[1] - bh / 2),
                bw,
                bh,
                boxstyle="round,pad=0.0,rounding_size=0.04",
                fc="white",
                ec="#e0e0e0",
                lw=0.4,
                alpha=0.93,
                zorder=5,
            )
        )
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
    act = {"sigmoid": "σ", "identity": "identity", "relu": "ReLU", "leaky_relu": "leaky ReLU", "prelu": "PReLU"}.get(
        name, name
    )
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
        edge += f"; w → w' is the weight after one gradient-descent step, η = {fmt(g['eta'])}" + (
            f" (the first of {steps} steps)" if steps > 1 else ""
        )
        if g["frozen"]:
            edge += f"; frozen: {', '.join(g['frozen'])}"
    parts.append(edge + ".")
    neuron = "Under each neuron: z = weighted input and a = activation (forward, green), δ = ∂Cₙ/∂z (backward, red)"
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
    e = P[:, 1 : n_axes + 1] - P[:, :n_axes]
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
