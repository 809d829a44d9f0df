"""The exact tiling certificate (:func:`companion.colorings.templates.certify_tiling`): simple tiles,
disjoint interiors against all lattice translates, areas summing to the cell area -- hand-built
counter-examples, a hand-built tiling, and the verdicts on the stored reconstructions."""

from fractions import Fraction

import pytest
from companion.colorings._maps import REJECTED
from companion.colorings.constructions import reconstructed_maps
from companion.colorings.reconstruct import staircase_map
from companion.colorings.templates import PeriodicMap, _simplicity_defects, certify, certify_tiling

UNIT = [["1", "0"], ["0", "1"]]  # base = period: the unit square lattice


def _map(polys, colors=None, name="hand-built"):
    """A PeriodicMap on the unit square lattice whose tiles are the given polygons (each vertex its
    own free point, offsets 0)."""
    points, tiles = [], []
    for P in polys:
        tiles.append([(len(points) + k, 0, 0) for k in range(len(P))])
        points += [[str(x), str(y)] for x, y in P]
    return PeriodicMap(UNIT, points, tiles, colors or [0] * len(polys), [[1, 0], [0, 1]], name=name)


def test_two_triangles_tile_the_square():
    pm = _map([[(0, 0), (1, 0), (1, 1)], [(0, 0), (1, 1), (0, 1)]])
    t = certify_tiling(pm)
    assert t.ok and t.simple and t.disjoint and t.covers and not t.defects
    assert t.area_sum == t.cell_area == 1
    # the only pair whose (open) bounding boxes overlap is the two triangles; translates only touch
    assert t.pairs_checked == 1


def test_bent_shared_boundary_and_non_convex_tiles_pass():
    # the boundary between the two tiles is bent at (0.4, 0.6): tile 1 is non-convex, both are
    # simple and together they tile the cell
    pm = _map([[(0, 0), (1, 0), (1, 1), ("0.4", "0.6")], [(0, 0), ("0.4", "0.6"), (1, 1), (0, 1)]])
    assert certify_tiling(pm).ok
    # and a structure of the reconstruction module: its hexagonal start is a tiling
    assert certify_tiling(staircase_map("uulul", triangle_islands=(0,))).ok


def test_self_intersecting_tile_fails_with_its_loop_area():
    # the unit square whose top edge is replaced by a path with a small loop: edge (1,1)-(0.4,1) is
    # crossed by the edge (0.6,0.9)-(0.6,1.1); the loop (0.6,1), (0.4,1), (0.6,0.9) has area 1/100
    P = [(0, 0), (1, 0), (1, 1), ("0.4", "1"), ("0.6", "0.9"), ("0.6", "1.1"), (0, 1)]
    defects = _simplicity_defects(
        PeriodicMap(
            UNIT, [[str(x), str(y)] for x, y in P], [[(k, 0, 0) for k in range(7)]], [0], [[1, 0], [0, 1]]
        ).exact_tiles()[0]
    )
    assert [d["kind"] for d in defects] == ["edges intersect"] and defects[0]["edges"] == (2, 4)
    assert defects[0]["loop_area"] == Fraction(1, 100)
    t = certify_tiling(_map([P]))
    assert not t.ok and not t.simple
    assert t.defects[0]["tiles"] == (0,) and t.defects[0]["amount"] == Fraction(1, 100)
    assert "tile not simple" in t.summary() and "1.000e-02" in t.summary()


def test_degenerate_tiles_fail():
    # an edge that doubles back along its predecessor, and a repeated vertex
    spike = [(0, 0), (1, 0), (1, 1), ("0.5", "1"), ("0.7", "1"), (0, 1)]
    assert any(d["kind"] == "adjacent edges overlap" for d in _simplicity_defects(_map([spike]).exact_tiles()[0]))
    rep = [(0, 0), (1, 0), (1, 1), ("0.5", "0.5"), ("0.5", "0.5"), (0, 1)]
    assert any(d["kind"] == "repeated vertex" for d in _simplicity_defects(_map([rep]).exact_tiles()[0]))
    assert not certify_tiling(_map([spike])).ok


def test_overlapping_tiles_fail_with_the_overlap_area():
    # tile 0 bulges across the diagonal into tile 1 (triangle (0,0), (1,1), (0.4,0.6), area 1/10);
    # tile 1 has a notch of the same area on its left edge, so the areas still sum to the cell area
    # and only the disjointness test can see the error
    A = [(0, 0), (1, 0), (1, 1), ("0.4", "0.6")]
    B = [(0, 0), (1, 1), (0, 1), ("0.2", "0.5")]
    t = certify_tiling(_map([A, B]))
    assert t.simple and t.covers and not t.disjoint and not t.ok
    over = [d for d in t.defects if d["kind"].startswith("interiors overlap")]
    assert len(over) == 1 and over[0]["tiles"] == (0, 1) and over[0]["amount"] == Fraction(1, 10)


def test_overlap_with_a_lattice_translate_is_found():
    # one tile per cell that sticks out of the cell by a triangle of area 1/20, into its own translate
    # by (1, 0); the areas then sum to 1 + 1/20
    P = [(0, 0), (1, 0), ("1.1", "0.5"), (1, 1), (0, 1)]
    t = certify_tiling(_map([P]))
    assert t.simple and not t.covers and not t.disjoint
    over = [d for d in t.defects if d["kind"].startswith("interiors overlap")]
    assert over and over[0]["tiles"] == (0, 0) and "(1, 0)" in over[0]["kind"] and over[0]["amount"] == Fraction(1, 20)
    gap = [d for d in t.defects if d["kind"].startswith("areas")]
    assert gap and gap[0]["amount"] == Fraction(1, 20)


def test_missing_area_fails():
    t = certify_tiling(_map([[(0, 0), (1, 0), (1, 1)]]))
    assert t.simple and t.disjoint and not t.covers and not t.ok
    assert t.defects[-1]["amount"] == Fraction(-1, 2)


@pytest.mark.parametrize("name", sorted(reconstructed_maps()))
def test_every_stored_reconstruction_is_an_exact_tiling(name):
    pm = reconstructed_maps()[name]
    t = certify_tiling(pm)
    assert t.ok, t.summary()
    cert = certify(pm, *pm.meta["certified_interval"])
    assert cert.ok and cert.tiling.ok and cert.distances_ok


def test_the_folded_a3_is_rejected_although_its_distances_pass():
    """The first stored A*3: free points 0 and 1 (2.2e-5 apart) had swapped sides, so tiles 0 and 2
    self-intersect in loops of area ~1e-10 and tiles 1 and 7 overlap; the Monte-Carlo check cannot
    see it, the exact one must."""
    pm = PeriodicMap.from_dict(REJECTED["A*3-folded"])
    assert pm.coloring([1] * 6).check_tiling()["ok"]  # the sampling check is fooled
    cert = certify(pm, *pm.meta["certified_interval"])
    assert cert.distances_ok and cert.strict and not cert.ok and not cert.tiling.ok
    bad = {d["tiles"] for d in cert.tiling.defects}
    assert bad == {(0,), (2,), (1, 7)}
    for d in cert.tiling.defects:
        assert 0 < d["amount"] < 1e-9


def test_min_separation_constraint_sees_the_fold():
    """``optimise_map(min_separation=s)`` constrains every vertex to be >= s from the other edges of
    its tile: the stored A*3 (optimised with s = 0.005) satisfies it, the folded one violates it."""
    import numpy as np
    import torch
    from companion.colorings.reconstruct import _Constraints

    def worst(pm):
        C = _Constraints(pm, min_separation=0.005)
        x = C.pack(pm)
        C.rebuild(x, *pm.meta["target"])
        v = C.values(torch.as_tensor(np.concatenate([x, [0.0]])), *pm.meta["target"]).detach().numpy()
        sep = v[-C.n_extra : -len(pm.tiles)]
        assert len(sep) > 0
        return sep.min()

    good = reconstructed_maps()["A*3"]
    assert good.meta["min_separation"] == 0.005 and worst(good) > -1e-6
    assert worst(PeriodicMap.from_dict(REJECTED["A*3-folded"])) < -0.004
