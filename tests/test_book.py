"""The HTML book builds with Jupyter Book 1.x, warnings as errors, from the committed notebooks."""

from __future__ import annotations

import pytest
from companion import notebooks, papers, paths

pytestmark = pytest.mark.slow


def test_every_chapter_notebook_is_in_the_toc_and_executed():
    import yaml

    toc = (paths.book_dir() / "_toc.yml").read_text()
    files = set()

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(toc))
    for slug in papers.slugs():
        assert f"{slug}/index" in files
        for nb in papers.load(slug).notebooks:
            assert f"{slug}/{nb.name}" in files, f"{slug}/{nb.name} missing from _toc.yml"
            meta = notebooks.read(nb.path).metadata.get("companion", {})
            assert meta.get("profile") == "book", f"{nb.path} was not executed by the runner at book"


def test_book_builds_strictly(built_book):
    out, html = built_book
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert (html / "intro.html").exists() and (html / "scoreboard.html").exists()
    for slug in papers.slugs():
        assert (html / slug / "index.html").exists()
        for nb in papers.load(slug).notebooks:
            page = (html / slug / f"{nb.name}.html").read_text()
            assert "Traceback" not in page, f"{slug}/{nb.name} shows a traceback"
    images = list((html / "_images").glob("*.png"))
    assert images, "the book shows figures"


def test_math_is_served_by_the_book_itself(built_book):
    _, html = built_book
    page = (html / "intro.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in page and "cdn.jsdelivr" not in page
    assert (html / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000
