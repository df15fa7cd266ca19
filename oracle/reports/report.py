"""Rows and tables: the verdicts of all cases, for people (tabulate) and machines (JSON).

Text from the cases (titles, headings, names, notes, messages) is shown safely: control
characters as visible escapes in text, markdown and CSV (``safetext.terminal``), and
HTML-escaped in the page (``safetext.html``); in JSON as JSON escapes (``\u001b``: the strings
stay exactly what the case says).
"""

from __future__ import annotations

import json

from tabulate import tabulate

from oracle.verdict.compare import ERRATUM, MATCH, MISMATCH
from oracle.reports.safetext import html as escape
from oracle.reports.safetext import json_text, terminal

ERRATA_FORMATS = ("text", "markdown", "html", "json")


def _label(check, element):
    if len(check.elements) > 1:
        return f"{check.quantity}[{','.join(map(str, element.index))}]"
    return check.quantity


def _num(v):
    if v is None:
        return "—"
    return f"{v:.10g}"


def rows(checks, engine_names):
    """One row per documented number, one per other quantity (its largest difference)."""
    out = []
    for check in checks:
        if (check.documented or check.computed) and check.printed is None:
            for e in check.elements:
                out.append(_row(check, e, _label(check, e), engine_names))
        else:
            worst = max(check.elements, key=lambda e: (e.status == MISMATCH, e.difference), default=None)
            if worst is not None:
                row = _row(check, worst, check.quantity, engine_names)
                if len(check.elements) > 1:
                    row["quantity"] = f"{check.quantity} ({len(check.elements)} values, worst shown)"
                out.append(row)
    return out


def _row(check, e, label, engine_names):
    doc = check.printed if check.printed is not None else e.document
    if check.texts and e.document is not None:
        doc = check.texts[e.index[0]]
    return {
        "case": check.case.id,
        "file": str(check.case.path),
        "source": check.case.source.get("document"),
        "heading": check.source_heading,
        "quantity": label,
        "document": doc,
        "decimals": None if check.decimals is None or e.document is None else check.decimals[e.index[0]],
        "kind": "formula"
        if check.printed is not None
        else ("computed" if check.computed else ("documented" if check.documented else "engines")),
        "engines": {n: e.engines.get(n) for n in engine_names},
        "largest_diff": e.difference,
        "tolerance": e.tolerance,
        "status": e.status if e.status != MATCH or check.status != MISMATCH else check.status,
        "message": e.message or check.message,
        "erratum": check.erratum if e.status == ERRATUM or check.printed is not None else None,
        "correct": check.correct,
        "allowance": check.allowance or None,
        "reason": check.reason,
    }


def summary(checks):
    counts = {MATCH: 0, ERRATUM: 0, MISMATCH: 0}
    for c in checks:
        counts[c.status] += 1
    cases = len({c.case.path for c in checks})
    return counts, cases


def text(checks, engine_names):
    """The terminal report: table, summary, errata."""
    table = []
    for r in rows(checks, engine_names):
        doc = r["document"]
        doc = "—" if doc is None else (doc if isinstance(doc, str) else _num(doc))
        if isinstance(doc, str) and len(doc) > 40:
            doc = doc[:39] + "…"
        quantity = r["quantity"] if len(r["quantity"]) <= 40 else r["quantity"][:39] + "…"
        table.append(
            [
                r["case"],
                quantity,
                doc,
                *(_num(r["engines"][n]) for n in engine_names),
                f"{r['largest_diff']:.2g}" if r["largest_diff"] == r["largest_diff"] else "—",
                r["status"].upper() if r["status"] == MISMATCH else r["status"],
            ]
        )
    headers = ["case", "quantity", "document", *engine_names, "largest diff", "status"]
    parts = [tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)]
    counts, cases = summary(checks)
    parts.append(
        f"\n{cases} cases, {len(checks)} quantities: {counts[MATCH]} match, "
        f"{counts[ERRATUM]} declared errata, {counts[MISMATCH]} mismatches"
    )
    errata = [c for c in checks if c.status == ERRATUM]
    if errata:
        parts.append("\nErrata in the documents:")
        for c in errata:
            correct = f" Correct: {_fmt_correct(c.correct)}." if c.correct is not None else ""
            parts.append(f"- {c.case.source.get('document')} — {c.source_heading} — {c.quantity}: {c.erratum}{correct}")
    mismatches = [c for c in checks if c.status == MISMATCH]
    if mismatches:
        parts.append("\nMismatches:")
        for c in mismatches:
            msg = c.message or next((e.message for e in c.elements if e.status == MISMATCH), "")
            parts.append(f"- {c.case.path}: {c.quantity}: {msg}")
    return terminal("\n".join(parts))


def _fmt_correct(v):
    if isinstance(v, list) and len(v) == 1:
        return str(v[0])
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def as_json(checks, engine_names):
    counts, cases = summary(checks)
    return json_text(
        json.dumps(
            {
                "engines": engine_names,
                "summary": {"cases": cases, "quantities": len(checks), **counts},
                "rows": rows(checks, engine_names),
                "errata": [
                    {
                        "document": c.case.source.get("document"),
                        "heading": c.source_heading,
                        "case": c.case.id,
                        "quantity": c.quantity,
                        "note": c.erratum,
                        "correct": c.correct,
                    }
                    for c in checks
                    if c.status == ERRATUM
                ],
            },
            indent=2,
            ensure_ascii=False,
            default=_json_default,
        )
    )


def _json_default(v):
    if v != v:  # NaN
        return None
    raise TypeError(type(v).__name__)


# ---------------------------------------------------------------- other formats


def _cell(v):
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return _num(v) if v == v else "—"


def _table_rows(rows_, engine_names):
    return [
        [
            r["quantity"],
            _cell(r["document"]),
            *(_cell(r["engines"][n]) for n in engine_names),
            f"{r['largest_diff']:.2g}" if r["largest_diff"] == r["largest_diff"] else "—",
            r["status"],
        ]
        for r in rows_
    ]


def _by_case(checks, engine_names):
    cases = {}
    for r, check in _rows_with_checks(checks, engine_names):
        cases.setdefault(check.case.path, (check.case, []))[1].append(r)
    return cases.values()


def _rows_with_checks(checks, engine_names):
    for check in checks:
        for r in rows([check], engine_names):
            yield r, check


def _md(text):
    """Case text in markdown: no raw HTML (a markdown page may render it) and no table-breaking | or newline."""
    return (
        terminal(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\n", " ")
    )


def markdown(checks, engine_names):
    """One section per case: source, table, errata; then the summary."""
    counts, n = summary(checks)
    parts = [
        f"# Backpropagation cases: {n} cases, {len(checks)} quantities — {counts[MATCH]} match, "
        f"{counts[ERRATUM]} declared errata, {counts[MISMATCH]} mismatches\n"
    ]
    headers = ["quantity", "document", *engine_names, "largest diff", "status"]
    for case, case_rows in _by_case(checks, engine_names):
        parts.append(
            f"## {_md(case.title)}\n\n`{_md(case.path.name)}` — {_md(case.source.get('document'))}, "
            f"*{_md(case.source.get('heading'))}*\n"
        )
        table = [[_md(c) for c in row] for row in _table_rows(case_rows, engine_names)]
        parts.append(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True))
        errata = [r for r in case_rows if r["status"] == ERRATUM or (r["kind"] == "formula" and r["erratum"])]
        if errata:
            parts.append("\n**Errata**\n")
            parts.extend(
                f"- **{_md(r['quantity'])}** (printed {_md(_cell(r['document']))}): {_md(r['erratum'])}" for r in errata
            )
        parts.append("")
    return terminal("\n".join(parts))


def csv_text(checks, engine_names):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "case",
            "file",
            "source",
            "heading",
            "quantity",
            "document",
            "decimals",
            *engine_names,
            "largest_diff",
            "tolerance",
            "status",
            "message",
            "erratum",
        ]
    )
    for r in rows(checks, engine_names):
        writer.writerow(
            [
                terminal(v) if isinstance(v, str) else v
                for v in [
                    r["case"],
                    r["file"],
                    r["source"],
                    r["heading"],
                    r["quantity"],
                    "" if r["document"] is None else r["document"],
                    "" if r["decimals"] is None else r["decimals"],
                    *("" if r["engines"][n] is None else repr(r["engines"][n]) for n in engine_names),
                    r["largest_diff"],
                    "" if r["tolerance"] is None else r["tolerance"],
                    r["status"],
                    r["message"],
                    r["erratum"] or "",
                ]
            ]
        )
    return out.getvalue()


def errata(checks, fmt="text"):
    """Every documented value or formula that disagrees with all engines, grouped by source document."""
    groups = {}
    for check in checks:
        if check.status != ERRATUM:
            continue
        texts = check.texts or []
        printed = (
            check.printed
            if check.printed is not None
            else (texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
        )
        groups.setdefault(check.case.source.get("document"), []).append(
            {
                "heading": check.source_heading,
                "case": check.case.id,
                "quantity": check.quantity,
                "printed": printed,
                "correct": "" if check.correct is None else _fmt_correct(check.correct),
                "note": " ".join((check.erratum or "").split()),
            }
        )
    if fmt == "json":
        return json_text(json.dumps(groups, indent=2, ensure_ascii=False))
    if fmt == "html":
        return _errata_html(groups)
    if fmt not in ERRATA_FORMATS:
        raise ValueError(f"the errata come as {', '.join(ERRATA_FORMATS)}, not {fmt!r}")
    md = fmt == "markdown"
    parts = ["# Errata in the lecture notes" if md else "Errata in the lecture notes", ""]
    for document, items in sorted(groups.items()):
        parts.append(f"## {document}" if md else f"{document}")
        parts.append("")
        for e in items:
            where = f"*{e['heading']}*" if md else e["heading"]
            parts.append(
                f"- {where} — {e['quantity']}: printed {e['printed']}"
                + (f"; correct {e['correct']}" if e["correct"] else "")
                + f". {e['note']}"
            )
        parts.append("")
    parts.append(f"{sum(len(v) for v in groups.values())} errata in {len(groups)} documents.")
    return terminal("\n".join(parts))


def _errata_html(groups):
    """The errata as one self-contained page: a section per document, one item per erratum."""
    body = ["<h1>Errata in the lecture notes</h1>"]
    for document, items in sorted(groups.items(), key=lambda kv: str(kv[0])):
        lis = "".join(
            f"<li><em>{escape(e['heading'] or '')}</em> — <b>{escape(e['quantity'])}</b>: printed "
            f"<code>{escape(e['printed'])}</code>"
            + (f"; correct <code>{escape(e['correct'])}</code>" if e["correct"] else "")
            + f". {escape(e['note'])} <span class='source'>({escape(e['case'])})</span></li>"
            for e in items
        )
        body.append(f"<section><h2>{escape(document)}</h2><ul>{lis}</ul></section>")
    body.append(f"<p class='summary'>{sum(len(v) for v in groups.values())} errata in {len(groups)} documents.</p>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Errata in the lecture notes</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 78em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; }
th { background: #f4f4f4; } td.q, td.doc { text-align: left; font-family: monospace; }
tr.erratum td { background: #fff3cd; } tr.mismatch td { background: #f8d7da; }
.errata { background: #fff3cd; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
.source { color: #555; } figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.summary { font-weight: bold; }
"""


def html(checks, engine_names, figures=None):
    """A self-contained page: each case a section with its table, errata highlighted, figure inline.

    figures: {case path: SVG text} drawn beforehand (none: no figures).
    """
    counts, n = summary(checks)
    body = [
        f"<h1>Backpropagation cases</h1><p class='summary'>{n} cases, {len(checks)} quantities: "
        f"{counts[MATCH]} match, {counts[ERRATUM]} declared errata, {counts[MISMATCH]} mismatches</p>"
    ]
    for case, case_rows in _by_case(checks, engine_names):
        body.append(
            f"<section id='{escape(case.id)}'><h2>{escape(case.title)}</h2>"
            f"<p class='source'><code>{escape(case.path.name)}</code> — "
            f"{escape(str(case.source.get('document')))}, "
            f"<em>{escape(str(case.source.get('heading')))}</em></p>"
        )
        svg = (figures or {}).get(case.path)
        if svg:
            body.append(f"<figure>{svg[svg.find('<svg') :]}</figure>")
        head = "".join(
            f"<th>{escape(h)}</th>" for h in ["quantity", "document", *engine_names, "largest diff", "status"]
        )
        trs = []
        for r, cells in zip(case_rows, _table_rows(case_rows, engine_names)):
            klass = r["status"] if r["status"] in (ERRATUM, MISMATCH) else ""
            tds = [f"<td class='q'>{escape(cells[0])}</td>", f"<td class='doc'>{escape(cells[1])}</td>"]
            tds += [f"<td>{escape(c)}</td>" for c in cells[2:]]
            trs.append(f"<tr class='{klass}'>{''.join(tds)}</tr>")
        body.append(f"<table><tr>{head}</tr>{''.join(trs)}</table>")
        errata_rows = [r for r in case_rows if r["status"] == ERRATUM]
        if errata_rows:
            items = "".join(
                f"<li><b>{escape(r['quantity'])}</b> (printed {escape(_cell(r['document']))}"
                + (f"; correct {escape(_fmt_correct(r['correct']))}" if r["correct"] else "")
                + f"): {escape(' '.join((r['erratum'] or '').split()))}</li>"
                for r in errata_rows
            )
            body.append(f"<div class='errata'><b>Errata</b><ul>{items}</ul></div>")
        body.append("</section>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Backpropagation cases</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
