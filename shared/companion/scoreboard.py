"""What readers see of the claims: the scoreboard page and the claim table on every chapter page.

Both are rendered from the same data, :func:`companion.papers.evaluate_all` on the recorded results, as HTML
tables: the claim in words (with its id and where it is in the paper), the paper's value, ours (formatted, with
the claim's unit), the check, a coloured verdict and a link to the notebook that computes it.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any, Iterable

from . import papers

# verdict key -> (what the reader reads, colour of the badge)
VERDICTS = {
    "holds": ("holds", "#1a7f37"),
    "fails": ("fails", "#cf222e"),
    "not-reproduced": ("not reproduced at this scale", "#9a6700"),
    "gpu-only": ("needs the GPU scale", "#0969da"),
    "no result": ("no result yet", "#6e7781"),
}
ORDER = ("holds", "fails", "not-reproduced", "gpu-only", "no result")


def verdict_key(v: papers.Verdict) -> str:
    """``holds`` / ``fails`` / ``no result`` for checked claims; the claim's status otherwise (its book-scale
    check is still evaluated and shown beside it, but it is not what the claim's verdict is)."""
    if v.claim.status != "checked":
        return v.claim.status
    return {True: "holds", False: "fails", None: "no result"}[v.holds]


def format_ours(value: Any, unit: str = "", digits: int = 4) -> str:
    """A recorded value for readers: floats to ``digits`` significant figures, booleans as yes/no, dicts as
    ``key: value`` pairs, lists element-wise; long values are cut with an ellipsis."""

    def one(x: Any) -> str:
        if isinstance(x, bool):
            return "yes" if x else "no"
        if isinstance(x, float):
            if x == 0:
                return "0"
            return f"{x:.{digits}g}" if abs(x) < 1e-3 or abs(x) >= 1e5 else f"{x:.{digits}g}".rstrip(".")
        if isinstance(x, dict):
            return ", ".join(f"{k}: {one(val)}" for k, val in x.items())
        if isinstance(x, (list, tuple)):
            return "[" + ", ".join(one(val) for val in x) + "]"
        return "–" if x is None else str(x)

    text = one(value)
    if len(text) > 90:
        text = text[:87] + "…"
    return f"{text} {unit}".strip() if value is not None else text


def counts(verdicts: Iterable[papers.Verdict]) -> dict[str, Counter]:
    """Per chapter, how many claims have each verdict key."""
    out: dict[str, Counter] = {}
    for v in verdicts:
        out.setdefault(v.claim.slug, Counter())[verdict_key(v)] += 1
    return out


def _badge(key: str, title: str = "") -> str:
    text, colour = VERDICTS[key]
    tip = f' title="{html.escape(title)}"' if title else ""
    return (
        f'<span class="claim-verdict claim-{key}"{tip} style="background:{colour};color:#fff;'
        f'border-radius:0.6em;padding:0.05em 0.55em;white-space:nowrap;font-size:0.85em">{text}</span>'
    )


def summary_html(verdicts: list[papers.Verdict], link_base: str = "") -> str:
    """One row per chapter with the count of each verdict, and a total row."""
    per = counts(verdicts)
    keys = [k for k in ORDER if any(c[k] for c in per.values())]
    head = "".join(f"<th>{_badge(k)}</th>" for k in keys)
    rows = []
    for slug, c in per.items():
        title = html.escape(papers.load(slug).title)
        cells = "".join(f"<td style='text-align:center'>{c[k] or ''}</td>" for k in keys)
        rows.append(
            f"<tr><td><a href='{link_base}{slug}/index.html'>{title}</a></td>{cells}"
            f"<td style='text-align:center'>{sum(c.values())}</td></tr>"
        )
    total = Counter()
    for c in per.values():
        total.update(c)
    cells = "".join(f"<td style='text-align:center'><b>{total[k]}</b></td>" for k in keys)
    rows.append(
        f"<tr><td><b>all chapters</b></td>{cells}<td style='text-align:center'><b>{sum(total.values())}</b></td></tr>"
    )
    return (
        f"<table class='claims-summary'><thead><tr><th>chapter</th>{head}<th>claims</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def claims_html(verdicts: list[papers.Verdict], link_base: str = "", show_chapter: bool = True) -> str:
    """The claim table, three columns that fit the book's column: the claim (in words, its id, where it is in
    the paper, the notebook that computes it and the check behind a toggle), the paper's value beside ours, the
    verdict (with the reason for claims the book scale cannot test). ``link_base`` is the path from the page
    to the book's root ("" for the scoreboard, "../" for a chapter page)."""
    small = "font-size:0.8em;color:#57606a"
    rows = []
    for v in verdicts:
        c = v.claim
        key = verdict_key(v)
        notebook = next(iter(c.values.values())).split(":", 1)[0]
        chapter = f"<a href='{link_base}{c.slug}/index.html'>{html.escape(c.slug)}</a> · " if show_chapter else ""
        check = html.escape(c.explain) if c.explain else f"<code>{html.escape(c.check)}</code>"
        note = ""
        if c.status != "checked":
            book = {True: "holds", False: "fails", None: "has no result"}[v.holds]
            note = f"<div style='{small}'>{html.escape(c.reason)} (the book-scale check {book})</div>"
        elif v.note:
            note = f"<div style='{small}'>{html.escape(v.note)}</div>"
        rows.append(
            f"<tr id='claim-{c.slug}-{c.id}' style='vertical-align:top'>"
            f"<td>{html.escape(c.claim)}"
            f"<div style='{small}'>{chapter}<code>{c.id}</code> · {html.escape(c.where)} · "
            f"<a href='{link_base}{c.slug}/{notebook}.html'>notebook {notebook}</a></div>"
            f"<details style='{small}'><summary>check</summary>{check}</details></td>"
            f"<td><div><span style='{small}'>paper</span> {html.escape(c.paper)}</div>"
            f"<div><span style='{small}'>ours</span> {html.escape(format_ours(v.ours, c.unit))}</div></td>"
            f"<td>{_badge(key, c.reason)}{note}</td></tr>"
        )
    return (
        "<table class='claims' style='width:100%'><thead><tr><th style='width:55%'>claim</th>"
        "<th style='width:27%'>paper · ours</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
