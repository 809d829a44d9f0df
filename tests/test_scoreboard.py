"""The claim tables readers see (scoreboard page and chapter pages) show every claim with its verdict."""

from __future__ import annotations

import re

from companion import papers, scoreboard


def test_values_are_formatted_for_readers():
    assert scoreboard.format_ours(0.123456) == "0.1235"
    assert scoreboard.format_ours(26.25) == "26.25"
    assert scoreboard.format_ours(1.93e-15) == "1.93e-15"
    assert scoreboard.format_ours(True) == "yes" and scoreboard.format_ours(False) == "no"
    assert scoreboard.format_ours({"70%": 0.02, "90%": 0.5}) == "70%: 0.02, 90%: 0.5"
    assert scoreboard.format_ours([1.0, 2.5], unit="s") == "[1, 2.5] s"
    assert scoreboard.format_ours(None) == "–"
    assert scoreboard.format_ours(list(range(100))).endswith("…")


def _claim(**kw):
    base = dict(
        slug="sfw",
        id="x",
        claim="A",
        where="W",
        paper="P",
        values={"a": "01-features:k"},
        ours="a",
        check="a > 0",
        status="checked",
    )
    return papers.Claim(**{**base, **kw})


def test_verdict_keys_separate_untestable_claims_from_failures():
    assert scoreboard.verdict_key(papers.Verdict(_claim(), "book", 1, True)) == "holds"
    assert scoreboard.verdict_key(papers.Verdict(_claim(), "book", 1, False)) == "fails"
    assert scoreboard.verdict_key(papers.Verdict(_claim(), "book", None, None)) == "no result"
    gpu = _claim(status="gpu-only", reason="needs CIFAR")
    assert scoreboard.verdict_key(papers.Verdict(gpu, "book", 1, False)) == "gpu-only"
    html = scoreboard.claims_html([papers.Verdict(gpu, "book", 1, False)])
    assert "needs the GPU scale" in html and "needs CIFAR" in html and "the book-scale check fails" in html


def test_every_claim_appears_once_with_a_link_to_its_notebook():
    verdicts = papers.evaluate_all()
    table = scoreboard.claims_html(verdicts, link_base="../")
    ids = re.findall(r"<tr id='claim-([a-z0-9-]+)'", table)
    assert sorted(ids) == sorted(f"{v.claim.slug}-{v.claim.id}" for v in verdicts)
    for v in verdicts:
        notebook = next(iter(v.claim.values.values())).split(":")[0]
        assert f"href='../{v.claim.slug}/{notebook}.html'" in table
    summary = scoreboard.summary_html(verdicts)
    assert f"<b>{len(verdicts)}</b>" in summary
