"""The paper claims marked ``checked`` hold on the committed ``book`` results."""

from __future__ import annotations

import pytest

from companion import papers

VERDICTS = papers.evaluate_all(profile="book")


@pytest.mark.parametrize("verdict", VERDICTS, ids=[f"{v.claim.slug}:{v.claim.id}" for v in VERDICTS])
def test_claim(verdict):
    assert verdict.holds is not None, f"no recorded result: {verdict.note}"
    if verdict.claim.status == "checked":
        assert verdict.holds, f"{verdict.claim.claim} -- ours: {verdict.ours} {verdict.note}"
