"""Exact polygon geometry: hand-computed diameters and distances, and invariants (hypothesis)."""

import numpy as np
import pytest
from companion.colorings.geometry import (
    points_in_polygon,
    polygon_area,
    polygon_diameter,
    polygon_distance,
    polygon_distance_batch,
    regular_polygon,
    segment_distance,
)
from hypothesis import given, settings
from hypothesis import strategies as st

UNIT_SQUARE = np.array([(0, 0), (1, 0), (1, 1), (0, 1)], float)


def test_square_diameter_and_area():
    assert polygon_diameter(UNIT_SQUARE) == pytest.approx(np.sqrt(2), abs=1e-15)
    assert polygon_area(UNIT_SQUARE) == pytest.approx(1.0)


def test_regular_hexagon_diameter_is_twice_circumradius():
    H = regular_polygon(6, 0.495)
    assert polygon_diameter(H) == pytest.approx(0.99, abs=1e-14)
    assert polygon_area(H) == pytest.approx(3 * np.sqrt(3) / 2 * 0.495**2)


def test_nonconvex_diameter_uses_vertices():
    # an L-shaped hexagon: the farthest pair is (0,0)-(2,1)
    L = np.array([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)], float)
    assert polygon_diameter(L) == pytest.approx(np.sqrt(8))


def test_segment_distances_hand_computed():
    # parallel horizontal segments one unit apart, overlapping in projection
    assert segment_distance([0, 0], [2, 0], [1, 1], [3, 1]) == pytest.approx(1.0)
    # skew, closest endpoints (1,0)-(4,4): distance 5
    assert segment_distance([0, 0], [1, 0], [4, 4], [5, 6]) == pytest.approx(5.0)
    # crossing segments
    assert segment_distance([0, 0], [1, 1], [0, 1], [1, 0]) == 0.0
    # endpoint to interior of the other segment
    assert segment_distance([0, 0], [0, 2], [3, 1], [5, 1]) == pytest.approx(3.0)


def test_polygon_distance_hand_computed():
    # unit squares with a gap of 0.5 along x and of 0.5 along y: corner-to-corner sqrt(0.5)
    Q = UNIT_SQUARE + (1.5, 1.5)
    assert polygon_distance(UNIT_SQUARE, Q) == pytest.approx(np.sqrt(0.5))
    # side by side: distance 0.25
    assert polygon_distance(UNIT_SQUARE, UNIT_SQUARE + (1.25, 0.3)) == pytest.approx(0.25)
    # touching along an edge, overlapping, and nested: 0
    assert polygon_distance(UNIT_SQUARE, UNIT_SQUARE + (1, 0)) == 0.0
    assert polygon_distance(UNIT_SQUARE, UNIT_SQUARE + (0.5, 0.5)) == 0.0
    assert polygon_distance(UNIT_SQUARE, 0.2 * UNIT_SQUARE + (0.4, 0.4)) == 0.0
    assert polygon_distance(0.2 * UNIT_SQUARE + (0.4, 0.4), UNIT_SQUARE) == 0.0


def test_diamond_tips_soifer_geometry():
    # two diamonds of half-diagonal h whose tips are p - 2h apart (brief, Section 5.1)
    p = 2 / np.sqrt(5)
    h = p / 4
    D = np.array([(h, 0), (0, h), (-h, 0), (0, -h)])
    assert polygon_diameter(D) == pytest.approx(1 / np.sqrt(5))
    assert polygon_distance(D, D + (p, 0)) == pytest.approx(1 / np.sqrt(5))


def test_batch_matches_single():
    rng = np.random.default_rng(1)
    P = regular_polygon(5, 0.4)
    Q = regular_polygon(7, 0.3, phase=0.2)
    shifts = rng.normal(size=(50, 2))
    batch = polygon_distance_batch(P, Q, shifts)
    single = [polygon_distance(P, Q + t) for t in shifts]
    np.testing.assert_allclose(batch, single)


def test_points_in_polygon():
    pts = np.array([(0.5, 0.5), (1.5, 0.5), (-0.1, 0.2), (0.99, 0.01)])
    assert points_in_polygon(pts, UNIT_SQUARE).tolist() == [True, False, False, True]


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.05, 1.0), st.floats(0.05, 1.0), st.floats(-3, 3), st.floats(-3, 3), st.integers(3, 9), st.floats(0, 6.3)
)
def test_distance_between_discs_bounds(r1, r2, dx, dy, n, phase):
    """Regular polygons inscribed in circles: their distance lies between the circles' distance and
    the distance of the inscribed circles (exact geometry sanity bound), and is symmetric."""
    P = regular_polygon(n, r1, phase=phase)
    Q = regular_polygon(n, r2, center=(dx, dy), phase=-phase)
    d = polygon_distance(P, Q)
    c = np.hypot(dx, dy)
    outer = max(c - r1 - r2, 0.0)
    inner = max(c - (r1 + r2) * np.cos(np.pi / n), 0.0)
    assert outer - 1e-12 <= d <= inner + 1e-12 or (d == 0.0 and c <= r1 + r2 + 1e-12)
    assert d == pytest.approx(polygon_distance(Q, P), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.1, 2.0), st.floats(0, 6.3), st.integers(3, 10))
def test_diameter_scales_and_rotates(scale, angle, n):
    P = regular_polygon(n, 0.5, phase=0.3) * np.array([1.0, 0.6])
    R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    assert polygon_diameter(scale * P @ R.T) == pytest.approx(scale * polygon_diameter(P), rel=1e-12)
