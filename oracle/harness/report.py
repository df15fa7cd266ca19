"""Rows and tables: the verdicts of all cases, for people (tabulate) and machines (JSON)."""
from __future__ import annotations

import json

from tabulate import tabulate

from .compare import ERRATUM, MATCH, MISMATCH

COLUMNS = ["case", "quantity", "document", "numpy", "torch", "fd", "largest diff", "status"]


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
        "kind": "formula" if check.printed is not None else
                ("computed" if check.computed else ("documented" if check.documented else "engines")),
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
        table.append([r["case"], quantity, doc, *(_num(r["engines"][n]) for n in engine_names),
                      f"{r['largest_diff']:.2g}" if r["largest_diff"] == r["largest_diff"] else "—",
                      r["status"].upper() if r["status"] == MISMATCH else r["status"]])
    headers = ["case", "quantity", "document", *engine_names, "largest diff", "status"]
    parts = [tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)]
    counts, cases = summary(checks)
    parts.append(f"\n{cases} cases, {len(checks)} quantities: {counts[MATCH]} match, "
                 f"{counts[ERRATUM]} declared errata, {counts[MISMATCH]} mismatches")
    errata = [c for c in checks if c.status == ERRATUM]
    if errata:
        parts.append("\nErrata in the documents:")
        for c in errata:
            correct = f" Correct: {_fmt_correct(c.correct)}." if c.correct is not None else ""
            parts.append(f"- {c.case.source.get('document')} — {c.source_heading} — "
                         f"{c.quantity}: {c.erratum}{correct}")
    mismatches = [c for c in checks if c.status == MISMATCH]
    if mismatches:
        parts.append("\nMismatches:")
        for c in mismatches:
            msg = c.message or next((e.message for e in c.elements if e.status == MISMATCH), "")
            parts.append(f"- {c.case.path}: {c.quantity}: {msg}")
    return "\n".join(parts)


def _fmt_correct(v):
    if isinstance(v, list) and len(v) == 1:
        return str(v[0])
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def as_json(checks, engine_names):
    counts, cases = summary(checks)
    return json.dumps({
        "engines": engine_names,
        "summary": {"cases": cases, "quantities": len(checks), **counts},
        "rows": rows(checks, engine_names),
        "errata": [{"document": c.case.source.get("document"), "heading": c.source_heading,
                    "case": c.case.id, "quantity": c.quantity, "note": c.erratum, "correct": c.correct}
                   for c in checks if c.status == ERRATUM],
    }, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(v):
    if v != v:  # NaN
        return None
    raise TypeError(type(v).__name__)
