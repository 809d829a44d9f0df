"""Two fixes to the HTML pages Jupyter Book 1.x writes, as a local Sphinx extension.

- MathJax on every page: titles with math appear in the sidebar of every page, so MathJax must load on pages
  whose body has none (Sphinx's ``html_assets_policy = "always"``).
- Each script tag once: ``sphinx-thebe`` and ``sphinx-togglebutton`` are set up twice by Jupyter Book 1.0.4's
  extension list (once with filename None, once with ""), which declares ``const THEBE_JS_URL`` twice and stops the second script with a SyntaxError
  in the browser console. Duplicates (same file, same inline body, same attributes) are dropped.
"""

from __future__ import annotations


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", None) or "", repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.set_html_assets_policy("always")
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
