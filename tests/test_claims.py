"""The paper claims marked ``checked`` hold on the committed ``book`` results."""

from __future__ import annotations

import json

import pytest
from companion import papers

VERDICTS = papers.evaluate_all(profile="book")


@pytest.mark.parametrize("verdict", VERDICTS, ids=[f"{v.claim.slug}:{v.claim.id}" for v in VERDICTS])
def test_claim(verdict):
    assert verdict.holds is not None, f"no recorded result: {verdict.note}"
    if verdict.claim.status == "checked":
        assert verdict.holds, f"{verdict.claim.claim} -- ours: {verdict.ours} {verdict.note}"


def _perturbed(value):
    """Nearby and far-away variants of a recorded value (numbers shifted and scaled, booleans flipped, one item
    of a list or dict changed in every way its own type is, at any depth; lists shortened and lengthened)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, (int, float)):
        shifted = [value + d for d in (-100, -10, -1, -0.1, 0.1, 1, 10, 100)]
        scaled = [value * f for f in (-1, 0, 0.5, 2, 10)] + [0, -1e6, 1e6]
        return [int(x) for x in shifted + scaled] if isinstance(value, int) else shifted + scaled
    if isinstance(value, str):
        return [value + "x", ""]
    if isinstance(value, list):
        out = [value[:-1], value + (value[-1:] or ["x"])]
        for i, item in enumerate(value):
            out += [value[:i] + [other] + value[i + 1 :] for other in _perturbed(item)]
        return out
    if isinstance(value, dict):
        return [{**value, k: other} for k, item in value.items() for other in _perturbed(item)]
    return [0.0] if value is None else []


HOLDING = [v for v in VERDICTS if v.claim.status == "checked" and v.holds]


@pytest.mark.parametrize("verdict", HOLDING, ids=[f"{v.claim.slug}:{v.claim.id}" for v in HOLDING])
def test_holding_claim_could_have_failed(verdict):
    # A check that stays true whatever its inputs are is a truth by construction, not a claim.
    from companion import results

    claim = verdict.claim
    names = {}
    for name, ref in claim.values.items():
        notebook, key = ref.split(":", 1)
        names[name] = results.load(claim.slug, notebook, "book")[key]

    def holds(changed):
        try:
            return bool(papers.safe_eval(claim.check, changed))
        except Exception:
            return False

    assert any(not holds({**names, name: other}) for name, value in names.items() for other in _perturbed(value)), (
        f"{claim.id}: `{claim.check}` holds for every perturbation of its inputs"
    )


@pytest.mark.parametrize("slug", papers.slugs())
def test_claims_read_records_of_a_runner_execution(slug):
    # Every record a claim reads was moved into place by `companion run` at book (label and the kernel's
    # environment report are written by the runner and the notebook), never typed in.
    from companion import results

    for claim in papers.load(slug).claims:
        for ref in claim.values.values():
            notebook = ref.split(":", 1)[0]
            record = json.loads(results.results_path(slug, notebook, "book").read_text())
            assert record.get("label") == "book" and record["profile"] == "book", (claim.id, notebook)
            assert record.get("environment", {}).get("cpu_model"), (claim.id, notebook)
