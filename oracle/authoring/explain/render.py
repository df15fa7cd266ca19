"""Layer 5: one renderer per format (terminal text, Markdown with $…$ math, a LaTeX fragment)."""

from __future__ import annotations

import re
import unicodedata


from oracle.reports.safetext import terminal
from oracle.authoring.explain.common import (
    Heading,
    M,
    Math,
    Para,
)


# =============================================================== 5. renderers

TEXT_WIDTH = 100


def _prose_text(parts):
    return terminal("".join(p.text if isinstance(p, M) else str(p) for p in parts))


def _render_text(blocks):
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            title = _prose_text(b.parts)
            if b.level == 1:
                out += [title, "═" * len(title), ""]
            elif b.level == 2:
                out += ["", title, "─" * len(title)]
            else:
                out += ["", "▸ " + title]
        elif isinstance(b, Para):
            out.append((f"{b.label}  " if b.label else "") + _prose_text(b.parts))
        elif isinstance(b, Math):
            out += _math_text(b)
        else:
            tag = "⚠ ERRATUM" if b.kind == "erratum" else "NOTE"
            out.append(f"    {tag}: {_prose_text(b.parts)}")
    return "\n".join(out).strip() + "\n"


def _math_text(block):
    if block.inline:
        return ["    " + ",   ".join(" = ".join(p.text for p in row) for row in line) for line in block.rows]
    lines = []
    for row in block.rows:
        texts = [p.text for p in row]
        line = "    " + " = ".join(texts)
        if len(line) <= TEXT_WIDTH or len(texts) <= 2:
            lines.append(line)
            continue
        lines.append("    " + texts[0] + " = " + texts[1])
        pad = " " * (4 + len(texts[0]))
        lines += [pad + " = " + t for t in texts[2:]]
    return lines


def _escape_markdown(s):
    return re.sub(r"([\\`*_$<])", r"\\\1", s)


def _prose_markdown(parts):
    return "".join(f"${p.tex}$" if isinstance(p, M) else _escape_markdown(str(p)) for p in parts)


def _aligned(rows, width=80):
    """Rows of a chain as the body of aligned / align*: lhs &= p1 (\\\\ &= p2 when long)."""
    lines = []
    for row in rows:
        texs = [p.tex for p in row]
        if len(row) == 1:
            lines.append(texs[0])
        elif sum(len(p.text) for p in row) + 3 * len(row) <= width:
            lines.append(texs[0] + " &= " + " = ".join(texs[1:]))
        else:
            lines.append(texs[0] + " &= " + texs[1])
            lines += ["&= " + t for t in texs[2:]]
    return " \\\\\n".join(lines)


def _inline_tex(rows):
    return r",\quad ".join(" = ".join(p.tex for p in row) for row in rows)


def _grouped(blocks):
    """Consecutive displays merged into one (chains aligned at their = signs, inline lines centred)."""
    out = []
    for b in blocks:
        if isinstance(b, Math) and out and isinstance(out[-1], Math) and out[-1].inline == b.inline:
            out[-1] = Math(out[-1].rows + b.rows, b.inline)
        else:
            out.append(b)
    return out


def _render_markdown(blocks):
    out = []
    for b in _grouped(blocks):
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + _prose_markdown(b.parts))
        elif isinstance(b, Para):
            out.append((f"**{b.label}** " if b.label else "") + _prose_markdown(b.parts))
        elif isinstance(b, Math):
            if b.inline and len(b.rows) == 1:
                out.append("$$" + _inline_tex(b.rows[0]) + "$$")
            elif b.inline:
                lines = " \\\\\n".join(map(_inline_tex, b.rows))
                out.append("$$\n\\begin{gathered}\n" + lines + "\n\\end{gathered}\n$$")
            elif len(b.rows) == 1 and "\\\\" not in _aligned(b.rows):
                out.append("$$" + " = ".join(p.tex for p in b.rows[0]) + "$$")
            else:
                out.append("$$\n\\begin{aligned}\n" + _aligned(b.rows) + "\n\\end{aligned}\n$$")
        else:
            tag = "⚠️ **Erratum:**" if b.kind == "erratum" else "**Note:**"
            out.append(f"> {tag} {_prose_markdown(b.parts)}")
    return "\n\n".join(out) + "\n"


# Unicode in prose (titles, notes) → LaTeX that a standard article with amsmath typesets
_LATEX_TEXT = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    "—": "---",
    "–": "--",
    "…": r"\dots{}",
    "“": "``",
    "”": "''",
    "‘": "`",
    "’": "'",
    "\u00a0": "~",
    "⚠": "(!)",
}
_LATEX_MATH = {
    "<": "<",
    ">": ">",
    "|": "|",
    "·": r"\cdot",
    "×": r"\times",
    "−": "-",
    "±": r"\pm",
    "½": r"\frac{1}{2}",
    "¼": r"\frac{1}{4}",
    "¾": r"\frac{3}{4}",
    "‖": r"\|",
    "∂": r"\partial",
    "∇": r"\nabla",
    "≈": r"\approx",
    "≡": r"\equiv",
    "≤": r"\leq",
    "≥": r"\geq",
    "≠": r"\neq",
    "⊙": r"\odot",
    "→": r"\rightarrow",
    "←": r"\leftarrow",
    "⇒": r"\Rightarrow",
    "∞": r"\infty",
    "√": r"\surd",
    "∈": r"\in",
    "Σ": r"\Sigma",
    "Δ": r"\Delta",
    "Π": r"\Pi",
    "Γ": r"\Gamma",
    "Λ": r"\Lambda",
    "Θ": r"\Theta",
    "Φ": r"\Phi",
    "Ψ": r"\Psi",
    "Ω": r"\Omega",
    "ᵀ": "^{T}",
    "ŷ": r"\hat{y}",
    "′": "'",
    "ε": r"\varepsilon",
    "ϵ": r"\epsilon",
}
_GREEK_LOWER = "αβγδεζηθικλμνξπρστυφχψω"
_GREEK_NAMES = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
]
_LATEX_MATH.update({ch: "\\" + name for ch, name in zip(_GREEK_LOWER, _GREEK_NAMES)})
_LATEX_SCRIPT = {ch: ("^", c) for c, ch in zip("0123456789+-=()nilLNT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱˡᴸᴺᵀ")}
_LATEX_SCRIPT.update({ch: ("_", c) for c, ch in zip("0123456789+-=()aeijklmnopstx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢⱼₖₗₘₙₒₚₛₜₓ")})


def _latex_prose(s):
    """Prose with Unicode symbols as LaTeX: δ → $\\delta$, ŷ → $\\hat{y}$, a⁽³⁾ → a$^{(3)}$; special
    characters escaped. Anything unknown is reduced to ASCII: the fragment needs no Unicode-aware engine."""
    s = terminal(s)  # control characters as visible escapes: \x1b
    s = re.sub(r"(.)\u0302", lambda m: "\u0000" + m.group(1), s)  # x̂ (combining circumflex) → hat
    pieces, hat = [], False  # (kind, text): kind "text", "math", "^" or "_"
    for ch in s:
        if ch == "\u0000":
            hat = True
            continue
        if hat:
            pieces.append(("math", r"\hat{" + (_LATEX_MATH.get(ch) or ch) + "}"))
            hat = False
        elif ch in _LATEX_TEXT:
            pieces.append(("text", _LATEX_TEXT[ch]))
        elif ch in _LATEX_SCRIPT:
            pieces.append(_LATEX_SCRIPT[ch])
        elif ch in _LATEX_MATH:
            pieces.append(("math", _LATEX_MATH[ch]))
        elif ord(ch) < 128:
            pieces.append(("text", ch))
        else:
            ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
            pieces.append(("text", "".join(_LATEX_TEXT.get(c, c) for c in ascii_)))
    out, run = [], []  # run: the math of one $…$, scripts grouped: ^{(3)}
    for kind, text in pieces + [("text", "")]:
        if kind == "text":
            if run:
                out.append("$" + "".join(f"{k}{{{t}}}" if k in "^_" else t + " " for k, t in run).strip() + "$")
                run = []
            out.append(text)
        elif kind in "^_" and run and run[-1][0] == kind:
            run[-1] = (kind, run[-1][1] + text)
        else:
            run.append((kind, text))
    return "".join(out)


def _prose_latex(parts):
    return "".join(f"${p.tex}$" if isinstance(p, M) else _latex_prose(str(p)) for p in parts)


def _render_latex(blocks):
    out = []
    commands = {1: r"\section*", 2: r"\subsection*", 3: r"\subsubsection*"}
    for b in _grouped(blocks):
        if isinstance(b, Heading):
            out.append(commands.get(b.level, r"\paragraph*") + "{" + _prose_latex(b.parts) + "}")
        elif isinstance(b, Para):
            out.append(
                r"\noindent " + (r"\textbf{" + _latex_prose(b.label) + "} " if b.label else "") + _prose_latex(b.parts)
            )
        elif isinstance(b, Math):
            if b.inline:
                out.append("\\begin{gather*}\n" + " \\\\\n".join(map(_inline_tex, b.rows)) + "\n\\end{gather*}")
            else:
                out.append("\\begin{align*}\n" + _aligned(b.rows) + "\n\\end{align*}")
        else:
            tag = r"\textbf{Erratum:}" if b.kind == "erratum" else r"\textbf{Note:}"
            out.append(r"\noindent " + tag + " " + _prose_latex(b.parts))
    return "\n\n".join(out) + "\n"


_RENDERERS = {"text": _render_text, "markdown": _render_markdown, "latex": _render_latex}
