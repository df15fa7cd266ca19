"""Graph figures: inputs, gates and wires with forward values and gradients."""

from __future__ import annotations

import textwrap

import numpy as np

from oracle.authoring.draw.common import (
    _get,
    fmt,
    _GATE_SYMBOL,
    GRAY,
    GREEN,
    _header,
    _legend,
    _legend_height,
    RED,
    _text,
    _title_height,
    _wrap_legend,
)


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
    needs = (
        p < parent
        or (p == parent and right and kind in ("sub", "div", "add", "mul"))
        or (p == parent and not right and kind == "pow")
    )
    return f"({text})" if needs else text


def _gate(tree):
    """(symbol, operand names) for a one-operation node over names only, else None."""
    kind = tree[0]
    if kind in ("add", "sub", "mul", "div", "pow") and tree[1][0] == "var" and tree[2][0] == "var":
        return _GATE_SYMBOL[kind], [tree[1][1], tree[2][1]]
    if kind == "neg" and tree[1][0] == "var":
        return "−", [tree[1][1]]
    if kind == "call" and len(tree) == 3 and tree[2][0] == "var":
        symbol = {"sigmoid": "σ", "relu": "ReLU", "identity": "id", "leaky_relu": "LReLU", "prelu": "PReLU"}.get(
            tree[1], tree[1]
        )
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
    for names in by_col.values():  # no two nodes of a column closer than one slot
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
            text = "\n".join(
                textwrap.wrap(
                    _breakable(f"{name} = {unparse(tree)}"), 46, break_on_hyphens=False, break_long_words=False
                )
            )
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
            ax.add_patch(
                mpl.patches.FancyBboxPatch(
                    (p[0] - w / 2, p[1] - h / 2),
                    w,
                    h,
                    boxstyle="round,pad=0,rounding_size=0.06",
                    fc="#e8f0fb",
                    ec="#333333",
                    lw=1.1,
                    zorder=4,
                )
            )
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
    parts = [
        f"Above each wire (green): the forward value of the input or node it leaves; below it (red): "
        f"∂{out}/∂(that value), the gradient of the output {out}."
        + (" A dot marks a value used by several gates (its gradient is the sum over them)." if fanout else "")
        + " Values computed by refimpl (numpy), rounded to 4 significant digits."
    ]
    for offsets in g["perturbations"]:
        from oracle.verdict.cases import perturbation_label

        label = perturbation_label(offsets)
        what = ", ".join(f"{k} by {fmt(v)}" for k, v in offsets.items())
        new, delta = _get(values, f"{out}({label})"), _get(values, f"Δ{out}({label})")
        grads = ", ".join(
            f"∂{out}/∂{k} = {fmt(_get(values, f'd{out}/d{k}'))}"
            for k in offsets
            if _get(values, f"d{out}/d{k}") is not None
        )
        text = (
            f"Increase {what}: {out} = {'—' if new is None else fmt(new)}, "
            f"Δ{out} = {'—' if delta is None else fmt(delta)}"
        )
        parts.append(text + (f" ({grads})." if grads else "."))
    return parts
