"""What every figure shares: colours and labels, numbers, matplotlib (lazily), titles and legends."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from oracle.reports.safetext import terminal


MISSING_MATPLOTLIB = "drawing needs matplotlib: pip install 'backprop-oracle[figures]'"
FORMATS = (".svg", ".png")

FONT = "DejaVu Sans"
GREEN = "#1b7a34"  # forward values
RED = "#c0262d"  # gradients
BLUE = "#1f4e96"  # parameters
GRAY = "#555555"
ENGINE_LABELS = {"numpy": "numpy (refimpl)", "torch": "torch (autograd oracle)"}

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_ACT_SYMBOL = {
    "sigmoid": "σ",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "LReLU",
    "prelu": "PReLU",
    "swish": "swish",
    "identity": "id",
    "softmax": "soft\nmax",
    "log_softmax": "log\nsoftmax",
}
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
        self._renderer = RendererAgg(10, 10, 72)  # 72 dpi: pixels are points
        self._widths = {}

    def rc(self):
        return self.matplotlib.rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "backprop-oracle",
                "font.family": "sans-serif",
                "font.sans-serif": [FONT],
                "axes.unicode_minus": True,
            }
        )

    def text_width(self, text, size, weight="normal", style="normal"):
        """Width in inches of (the widest line of) ``text`` at ``size`` points."""
        key = (text, size, weight, style)
        if key not in self._widths:
            prop = self.FontProperties(family=FONT, size=size, weight=weight, style=style)
            self._widths[key] = (
                max(
                    self._renderer.get_text_width_height_descent(line, prop, ismath=False)[0]
                    for line in text.split("\n")
                )
                / 72
            )
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
    metadata = {"Date": None} if kind == "svg" else {}  # reproducible SVG: no time stamp
    fig.savefig(path, format=kind, dpi=150, metadata=metadata, facecolor="white")


def _load(case):
    if isinstance(case, (str, Path)):
        from oracle.verdict.cases import load_case

        return load_case(case)
    return case


def _get(values, key):
    from oracle.verdict.run import Missing

    v = values.get(key)
    return None if v is None or isinstance(v, Missing) else v


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


@contextlib.contextmanager
def _finite(what):
    """Floating-point problems while drawing are a ValueError with a message, never a RuntimeWarning."""
    from oracle.verdict.run import Uncomputable, finite_math

    try:
        with finite_math():
            yield
    except FloatingPointError as exc:
        raise Uncomputable(
            f"the {what} needs a number that is not finite ({exc}): the case's numbers "
            f"overflow float64 or leave a function's domain"
        ) from None
