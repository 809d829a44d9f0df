"""Exact verification of periodic colorings on the classical reference instances (brief, Section 5)."""

import numpy as np
import pytest
from companion.colorings import admissible_intervals, sampling_conflict_rate, verify
from companion.colorings.constructions import INV_SQRT5, SQRT2_MINUS_1, hoffman_soifer, isbell, soifer
from companion.colorings.templates import PeriodicMap, certify


def test_soifer_passes_at_inverse_sqrt5_with_margin_zero():
    rep = verify(soifer())
    assert rep.ok and rep.tight
    assert abs(rep.margin) < 1e-12
    assert rep.tiling["ok"]
    ai = admissible_intervals(soifer())
    np.testing.assert_allclose(ai.loc[6].values, [INV_SQRT5, INV_SQRT5], atol=1e-12)
    np.testing.assert_allclose(ai.drop(index=6).values, 1.0, atol=1e-12)


@pytest.mark.parametrize("d", [0.40, 0.50])
def test_soifer_fails_off_its_distance(d):
    rep = verify(soifer(), [1, 1, 1, 1, 1, d], check_tiling=False)
    assert not rep.ok
    six = rep.colors[5]
    if d < INV_SQRT5:  # a diamond contains two points at distance 0.40
        assert six.max_diameter > d
    else:  # two neighbouring diamonds contain points at distance 0.50
        assert six.min_gap < d


def test_soifer_single_random_direction_misses_violations():
    """Brief, Section 5.1: one random direction per point sees almost no conflict at d = 0.40
    (about 1.4e-4), although 0.40 is invalid; many directions and the exact test do find it."""
    weak = sampling_conflict_rate(
        soifer(), [1, 1, 1, 1, 1, 0.40], n_points=100_000, n_directions=1, random_directions=True, seed=1
    )
    strong = sampling_conflict_rate(soifer(), [1, 1, 1, 1, 1, 0.40], n_points=4000, n_directions=64, seed=1)
    assert weak < 1e-3
    assert strong > 3 * weak
    assert not verify(soifer(), [1, 1, 1, 1, 1, 0.40], check_tiling=False).ok


def test_isbell_hexagons_of_diameter_099():
    col = isbell(0.99)
    rep = verify(col)
    assert rep.ok and not rep.tight
    a = 0.495
    for r in rep.colors:
        assert r.max_diameter == pytest.approx(0.99)
        assert r.min_gap == pytest.approx(a * np.sqrt(7))  # same-coloured hexagons are a*sqrt7 apart
    assert sampling_conflict_rate(col, n_points=3000, n_directions=64) == 0.0


def test_isbell_valid_range():
    # valid for 1/sqrt7 <= a <= 1/2, i.e. diameters in [2/sqrt7, 1]
    assert verify(isbell(2 / np.sqrt(7) + 1e-6), check_tiling=False).ok
    assert not verify(isbell(2 / np.sqrt(7) - 1e-3), check_tiling=False).ok
    assert not verify(isbell(1.01), check_tiling=False).ok


@pytest.mark.parametrize("d", [SQRT2_MINUS_1, 0.42, 0.43, 0.44, INV_SQRT5])
def test_square_octagon_family_covers_classical_range(d):
    rep = verify(hoffman_soifer(d))
    assert rep.ok and rep.tiling["ok"]
    assert rep.margin > -1e-9


def test_square_octagon_family_endpoints():
    assert hoffman_soifer(INV_SQRT5).params["theta"] == pytest.approx(0.0, abs=1e-9)
    # d(theta) is stationary at pi/8, so theta is only determined to about sqrt(machine eps) there
    assert hoffman_soifer(SQRT2_MINUS_1).params["theta"] == pytest.approx(np.pi / 8, abs=1e-6)
    with pytest.raises(ValueError):
        hoffman_soifer(0.40)


def _soifer_map(tip: float = 0.0) -> PeriodicMap:
    """Soifer's coloring as a PeriodicMap; ``tip`` pushes the diamond's right vertex outwards."""
    p = 2 / np.sqrt(5)
    h = p / 4
    pts = [(h + tip, 0), (0, h), (-h, 0), (0, -h)]
    octagon = [(0, 0, 0), (2, 1, 0), (1, 1, 0), (3, 1, 1), (2, 1, 1), (0, 0, 1), (3, 0, 1), (1, 0, 0)]
    diamond = [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)]
    tiles, colors = [], []
    for i in range(5):
        tiles += [[(v, a + i, b) for v, a, b in octagon], [(v, a + i, b) for v, a, b in diamond]]
        colors += [i, 5]
    return PeriodicMap([[p, 0], [0, p]], pts, tiles, colors, [[2, -1], [1, 2]], "Soifer map")


def test_verifier_rejects_a_vertex_moved_across_the_forbidden_distance():
    ok = _soifer_map()
    assert verify(ok.coloring([1, 1, 1, 1, 1, INV_SQRT5])).ok
    moved = _soifer_map(tip=0.01)  # the diamond's diameter now exceeds 1/sqrt5
    rep = verify(moved.coloring([1, 1, 1, 1, 1, INV_SQRT5]))
    assert rep.tiling["ok"]  # still a tiling: the vertex is shared with the octagons
    assert not rep.ok
    assert rep.colors[5].max_diameter > INV_SQRT5


def test_exact_certificate_on_reference_instances():
    # Soifer: every condition is an equality -> ok, not strict; a moved vertex -> not ok
    cert = certify(_soifer_map(), "0.4472135954999579", "0.4472135954999579")
    assert not cert.strict
    assert not certify(_soifer_map(tip=0.01), "0.44721", "0.44721").ok
    # a quarter-turn check of the rational arithmetic: the diamond's squared diameter is (2h)^2
    row = cert.rows[5]
    assert float(row["diam_sq"]) == pytest.approx(1 / 5, abs=1e-15)
