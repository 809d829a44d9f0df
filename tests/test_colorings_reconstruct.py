"""The reconstructed colorings A*, B* and the extensions: each verifies over its whole claimed range."""

import numpy as np
import pytest
from companion.colorings import polygon_distance_batch, verify
from companion.colorings.constructions import (
    PAPER_A,
    PAPER_B,
    PAPER_UNION,
    certified_interval,
    coloring_a,
    coloring_b,
    covered_range,
    family_a,
    reconstructed_maps,
)
from companion.colorings.reconstruct import staircase_map
from companion.colorings.templates import PeriodicMap, certify

MAPS = reconstructed_maps()


@pytest.mark.parametrize("name", sorted(MAPS))
def test_map_is_certified_exactly_over_its_claimed_interval(name):
    pm = MAPS[name]
    lo, hi = pm.meta["certified_interval"]
    cert = certify(pm, lo, hi)
    assert cert.ok and cert.strict  # strict: valid on the closed interval without boundary conventions
    col = pm.coloring([1, 1, 1, 1, 1, float(lo)])
    assert col.check_tiling()["ok"]
    for d in (float(lo), float(hi), (float(lo) + float(hi)) / 2):
        rep = verify(col, [1, 1, 1, 1, 1, d], check_tiling=False)
        assert rep.ok and not rep.tight
    # the certified interval is the admissible interval rounded inwards to 1e-4: just outside, it fails
    for d in (float(lo) - 2e-4, float(hi) + 2e-4):
        assert not verify(col, [1, 1, 1, 1, 1, d], check_tiling=False).ok


def test_paper_ranges_are_covered():
    lo, hi = covered_range(family_a())
    assert lo <= PAPER_A[0] and hi >= PAPER_A[1]
    blo, bhi = certified_interval(MAPS["B*"])
    assert blo <= PAPER_B[0] and bhi >= PAPER_B[1]  # one coloring for the whole of B's interval
    ulo, uhi = covered_range([MAPS[k] for k in MAPS if k.startswith(("A*", "B*"))])
    assert ulo <= PAPER_UNION[0] and uhi >= PAPER_UNION[1]


def test_coloring_a_and_b_helpers():
    for d in np.linspace(*PAPER_A, 7):
        assert verify(coloring_a(d), check_tiling=False).ok
    for d in (PAPER_B[0], 0.5, PAPER_B[1]):
        assert verify(coloring_b(d), check_tiling=False).ok
    with pytest.raises(ValueError):
        coloring_a(0.7)


def _touch_graph(col):
    """Which tiles of one period touch which tiles (any translate), by exact polygon distance 0."""
    n = len(col.tiles)
    shifts = np.array([(m, k) for m in range(-2, 3) for k in range(-2, 3)]) @ col.lattice
    touch = {i: set() for i in range(n)}
    for i in range(n):
        for j in range(n):
            d = polygon_distance_batch(col.tiles[i], col.tiles[j], shifts)
            for s, dist in enumerate(d):
                if dist < 1e-9 and not (i == j and np.allclose(shifts[s], 0)):
                    touch[i].add((j, s))
    return touch


def test_b_star_has_the_k5_cover_structure():
    """Every unit-colour tile touches exactly four unit-colour tiles, all of different colours; every
    island touches at most five tiles, all of different colours (module docstring of reconstruct)."""
    col = MAPS["B*"].coloring([1] * 6)
    touch = _touch_graph(col)
    for i, nb in touch.items():
        cols = [col.colors[j] for j, _ in nb]
        if col.colors[i] == 5:
            assert len(cols) <= 5 and len(set(cols)) == len(cols) and 5 not in cols
        else:
            unit = [c for c in cols if c != 5]
            assert len(unit) == 4 and len(set(unit) | {col.colors[i]}) == 5


def test_staircase_structures():
    soifer_like = staircase_map("uuuuu")
    assert sorted(len(t) for t, c in zip(soifer_like.tiles, soifer_like.colors) if c == 5) == [4] * 5
    b = staircase_map("uulul")
    assert sorted(len(t) for t, c in zip(b.tiles, b.colors) if c == 5) == [4, 5, 5]
    assert b.coloring([1] * 6).check_tiling()["ok"]
    a = staircase_map("uulul", triangle_islands=(0,))
    assert sorted(len(t) for t, c in zip(a.tiles, a.colors) if c == 5) == [3, 4, 5, 5]
    with pytest.raises(ValueError):
        staircase_map("uuuul")  # two consecutive turns: an island would touch six tiles
    with pytest.raises(ValueError):
        staircase_map("uuuu")


def test_map_roundtrip_and_rounding():
    pm = MAPS["A*1"]
    again = PeriodicMap.from_dict(pm.to_dict())
    assert again.to_dict() == pm.to_dict()
    np.testing.assert_allclose(pm.rounded(5).points_array(), pm.points_array(), atol=6e-6)
