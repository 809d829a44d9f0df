"""Every ``papers/<slug>.yaml`` follows the schema and matches its notebooks."""

from __future__ import annotations

import pytest
from companion import notebooks, papers, runner
from companion.papers import PaperError

SLUGS = papers.slugs()


def test_there_are_chapters():
    assert "sfw" in SLUGS


@pytest.mark.parametrize("slug", SLUGS)
def test_paper_file_is_valid_and_matches_notebooks(slug):
    paper = papers.load(slug)
    assert paper.slug == slug and paper.claims, "every chapter states the paper's claims"
    for nb in paper.notebooks:
        assert nb.path.exists(), nb.path
        defaults = notebooks.default_parameters(nb.path)
        for required in ("profile", "seed", "device"):
            assert required in defaults, f"{nb.path.name}: parameters cell lacks {required!r}"
        assert defaults["profile"] == "book"
        for profile in papers.PROFILES:
            params, _ = runner.resolve_parameters(nb, profile)  # unknown names/wrong types raise
            assert params["profile"] == profile


@pytest.mark.parametrize("slug", SLUGS)
def test_papermill_reads_every_parameter(slug):
    # papermill parses the parameters cell itself (``papermill --help-notebook``; an override it cannot match
    # to a parsed line is reported as an "unknown parameter"): it must see the names and defaults we see.
    # A comment holding "=" after a value, for instance, makes it skip the line.
    import papermill

    for nb in papers.load(slug).notebooks:
        seen = papermill.inspect_notebook(str(nb.path))
        ours = notebooks.default_parameters(nb.path)
        assert list(seen) == list(ours), f"{nb.path.name}: papermill reads {sorted(seen)}, the cell has {list(ours)}"


@pytest.mark.parametrize("slug", SLUGS)
def test_bibkey_is_in_the_bibliography(slug):
    from companion import paths

    bib = (paths.book_dir() / "references.bib").read_text()
    assert "{" + papers.load(slug).bibkey + "," in bib


def test_schema_errors_are_one_readable_line(demo_project):
    path = demo_project / "papers" / "demo.yaml"
    path.write_text(path.read_text().replace('where: "Table 1"', "where: 3"))
    with pytest.raises(PaperError) as info:
        papers.load("demo")
    assert "demo.yaml: claims/0/where: 3 is not of type 'string'" in str(info.value)
    assert "\n" not in str(info.value)


def test_non_checked_claim_needs_a_reason(demo_project):
    path = demo_project / "papers" / "demo.yaml"
    path.write_text(path.read_text().replace('    reason: "needs a big x"\n', ""))
    with pytest.raises(PaperError, match="reason"):
        papers.load("demo")


def test_unknown_chapter_names_the_known_ones(demo_project):
    with pytest.raises(PaperError, match="unknown chapter 'nope'; known chapters: demo"):
        papers.load("nope")


def test_claim_expressions_have_no_builtins():
    with pytest.raises(NameError):
        papers.safe_eval("__import__('os')", {})
    assert papers.safe_eval("mean(x) > std(x)", {"x": [1.0, 2.0, 3.0]})
    assert papers.safe_eval("all(v < limit for v in x)", {"x": [1.0, 2.0], "limit": 3})


def test_claims_evaluate_on_recorded_results(demo_project):
    from companion import results

    path = results.results_path("demo", "01-square", "book")
    path.parent.mkdir(parents=True)
    path.write_text('{"values": {"square": 9}}')
    verdicts = {v.claim.id: v for v in papers.evaluate_all("demo")}
    assert verdicts["square-positive"].holds is True and verdicts["square-positive"].label == "holds"
    assert verdicts["square-huge"].holds is False and verdicts["square-huge"].label == "fails (gpu-only)"
    assert papers.evaluate_all("demo", "gpu")[0].holds is None  # nothing recorded at gpu


@pytest.mark.parametrize("slug", SLUGS)
def test_declared_choices_include_every_profile_value(slug):
    # The book defaults and every profile's overrides must be among the choices papers/<slug>.yaml declares.
    for nb in papers.load(slug).notebooks:
        defaults = notebooks.default_parameters(nb.path)
        for name in nb.choices:
            assert name in defaults, f"{nb.name}: choices for unknown parameter {name!r}"
        for profile in papers.PROFILES:
            params, _ = runner.resolve_parameters(nb, profile)
            for name in nb.choices:
                runner.check_choice(nb, name, params[name])
