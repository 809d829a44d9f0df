"""The book's own Sphinx extension: a ``claims`` directive and two fixes to the pages Jupyter Book 1.x writes.

- The bibliography in one author-year style: the reference list is labelled "Pokutta et al. 2020" (with "a",
  "b" where an author has two papers in a year), like the citations in the text, and sorted by author and year
  (pybtex style ``companion_author_year``).
- ``{claims} <slug>`` in a chapter page renders that chapter's claim table from ``papers/<slug>.yaml`` and the
  committed records, with the same code as the scoreboard (:mod:`companion.scoreboard`).

- MathJax on every page: titles with math appear in the sidebar of every page, so MathJax must load on pages
  whose body has none (Sphinx's ``html_assets_policy = "always"``).
- Each script tag once: ``sphinx-thebe`` and ``sphinx-togglebutton`` are set up twice by Jupyter Book 1.0.4's
  extension list (once with filename None, once with ""), which declares ``const THEBE_JS_URL`` twice and stops the second script with a SyntaxError
  in the browser console. Duplicates (same file, same inline body, same attributes) are dropped.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


def _author_year_style():
    """A pybtex formatting style: ``plain``'s entries and sorting, with author-year labels."""
    import codecs

    import latexcodec  # noqa: F401  (registers the "ulatex" codec: Besan{\c{c}}on -> Besançon)
    from pybtex.style.formatting.plain import Style as PlainStyle
    from pybtex.style.labels import BaseLabelStyle

    def base_label(entry) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [codecs.decode(" ".join(p.last_names), "ulatex") for p in persons]
        if not names:
            who = entry.fields.get("organization") or entry.fields.get("title", "?").split(":")[0]
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        who = who.replace("{", "").replace("}", "")
        return f"{who} {entry.fields.get('year', 'n.d.')}"

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            entries = list(sorted_entries)
            labels = [base_label(e) for e in entries]
            counts = {label: labels.count(label) for label in labels}
            seen: dict[str, int] = {}
            for label in labels:
                if counts[label] > 1:
                    seen[label] = seen.get(label, 0) + 1
                    yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
                else:
                    yield label

    class AuthorYearStyle(PlainStyle):
        default_label_style = AuthorYearLabels

    return AuthorYearStyle


class ClaimsDirective(SphinxDirective):
    """``{claims} <slug>``: the chapter's claims, the paper's values, ours and the verdicts, as an HTML table."""

    required_arguments = 1

    def run(self):
        from companion import papers, paths, scoreboard

        slug = self.arguments[0]
        self.env.note_dependency(str(paths.papers_dir() / f"{slug}.yaml"))
        self.env.note_dependency(scoreboard.__file__)
        for record in sorted((paths.project_root() / "results" / slug).glob("*.book.json")):
            self.env.note_dependency(str(record))
        verdicts = papers.evaluate_all(slug, "book")
        table = scoreboard.claims_html(verdicts, link_base="../", show_chapter=False)
        summary = ", ".join(
            f"{n} {scoreboard.VERDICTS[k][0]}"
            for k, n in sorted(
                scoreboard.counts(verdicts).get(slug, {}).items(),
                key=lambda kv: scoreboard.ORDER.index(kv[0]),
            )
        )
        return [
            nodes.paragraph(text=f"{len(verdicts)} claims: {summary}."),
            nodes.raw(
                "",
                f"<div class='claims-table' style='overflow-x:auto'>{table}</div>",
                format="html",
            ),
        ]


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (
            getattr(script, "filename", None) or "",
            repr(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    from pybtex.plugin import register_plugin

    register_plugin("pybtex.style.formatting", "companion_author_year", _author_year_style())
    app.add_directive("claims", ClaimsDirective)
    app.set_html_assets_policy("always")
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
