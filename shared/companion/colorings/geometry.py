"""Exact planar geometry for polygonal tiles (numpy only).

Everything here is an exact algorithm evaluated in IEEE double precision: the diameter of a
polygon is the largest vertex-vertex distance (the diameter of a compact set equals that of its
convex hull, whose extreme points are vertices), and the distance between two polygons is the
smallest segment-segment distance over all pairs of edges, or 0 when they intersect (one contains
the other, or two edges cross/touch).  Rounding errors are of order 1e-15 relative; the verifier in
:mod:`companion.colorings.verify` compares with an explicit tolerance (default 1e-9).

Polygons are ``(n, 2)`` float arrays of vertices in order (either orientation); they need not be
convex but must be simple (no self-intersections).  Tiles are *closed* sets; boundary points are
discussed in the verifier.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_polygon",
    "polygon_area",
    "polygon_centroid",
    "polygon_diameter",
    "diameter_pair",
    "circumradius",
    "point_segment_distance",
    "segment_distance",
    "segments_intersect",
    "points_in_polygon",
    "polygon_distance",
    "polygon_distance_batch",
    "regular_polygon",
]


def as_polygon(vertices) -> np.ndarray:
    """Return ``vertices`` as a float ``(n, 2)`` array, counter-clockwise, without a closing repeat."""
    P = np.asarray(vertices, dtype=float).reshape(-1, 2)
    if len(P) > 1 and np.allclose(P[0], P[-1]):
        P = P[:-1]
    if len(P) < 3:
        raise ValueError("a polygon needs at least three vertices")
    if _signed_area(P) < 0:
        P = P[::-1].copy()
    return P


def _signed_area(P: np.ndarray) -> float:
    x, y = P[:, 0], P[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def polygon_area(P) -> float:
    """Area of a simple polygon (shoelace formula)."""
    return abs(_signed_area(np.asarray(P, dtype=float)))


def polygon_centroid(P) -> np.ndarray:
    """Area centroid of a simple polygon."""
    P = np.asarray(P, dtype=float)
    x, y = P[:, 0], P[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2.0
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6.0 * a)


def polygon_diameter(P) -> float:
    """Diameter of a polygon: the largest distance between two of its vertices.

    The diameter of a compact set equals the diameter of its convex hull, and a convex polygon's
    farthest pair of points is a pair of vertices, so this is exact for any polygon.
    """
    P = np.asarray(P, dtype=float)
    diff = P[:, None, :] - P[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max())


def diameter_pair(P) -> tuple[np.ndarray, np.ndarray]:
    """The two vertices of ``P`` that realise its diameter (used to draw test segments)."""
    P = np.asarray(P, dtype=float)
    d2 = ((P[:, None, :] - P[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmax(d2), d2.shape)
    return P[i].copy(), P[j].copy()


def circumradius(P, center=None) -> float:
    """Largest distance from ``center`` (default: the vertex mean) to a vertex of ``P``."""
    P = np.asarray(P, dtype=float)
    c = P.mean(0) if center is None else np.asarray(center, dtype=float)
    return float(np.sqrt(((P - c) ** 2).sum(-1)).max())


def regular_polygon(n: int, circumradius: float, center=(0.0, 0.0), phase: float = 0.0) -> np.ndarray:
    """Vertices of a regular ``n``-gon with the given circumradius, first vertex at angle ``phase``."""
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([center[0] + circumradius * np.cos(t), center[1] + circumradius * np.sin(t)], -1)


def point_segment_distance(p, a, b) -> np.ndarray:
    """Distance from point(s) ``p`` to segment(s) ``[a, b]`` (all broadcastable ``(..., 2)`` arrays)."""
    p, a, b = (np.asarray(z, dtype=float) for z in (p, a, b))
    ab = b - a
    denom = (ab**2).sum(-1)
    t = np.where(denom > 0, ((p - a) * ab).sum(-1) / np.where(denom > 0, denom, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    proj = a + t[..., None] * ab
    return np.sqrt(((p - proj) ** 2).sum(-1))


def _cross(u, v):
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def segments_intersect(a, b, c, d, eps: float = 0.0) -> np.ndarray:
    """Whether segments ``[a, b]`` and ``[c, d]`` *properly* cross (each splits the other), broadcast.

    Uses strict orientation signs (with threshold ``eps``).  Touching configurations (an endpoint on
    the other segment, collinear overlap) are not reported: their distance is 0 anyway, and the
    distance functions below find it through the point-segment distances.
    """
    a, b, c, d = (np.asarray(z, dtype=float) for z in (a, b, c, d))
    d1 = _cross(b - a, c - a)
    d2 = _cross(b - a, d - a)
    d3 = _cross(d - c, a - c)
    d4 = _cross(d - c, b - c)
    proper = (((d1 > eps) & (d2 < -eps)) | ((d1 < -eps) & (d2 > eps))) & (
        ((d3 > eps) & (d4 < -eps)) | ((d3 < -eps) & (d4 > eps))
    )
    return proper


def segment_distance(a, b, c, d) -> np.ndarray:
    """Exact distance between closed segments ``[a, b]`` and ``[c, d]`` (0 if they cross).

    For non-crossing segments the minimum is attained at an endpoint of one of them, so it is the
    smallest of four point-segment distances.
    """
    a, b, c, d = (np.asarray(z, dtype=float) for z in (a, b, c, d))
    m = np.minimum(
        np.minimum(point_segment_distance(a, c, d), point_segment_distance(b, c, d)),
        np.minimum(point_segment_distance(c, a, b), point_segment_distance(d, a, b)),
    )
    return np.where(segments_intersect(a, b, c, d), 0.0, m)


def points_in_polygon(points, P) -> np.ndarray:
    """Boolean mask: which of ``points`` (``(m, 2)``) lie in the polygon ``P`` (even-odd rule).

    Points exactly on the boundary may go either way; callers that care use distances instead.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    P = np.asarray(P, dtype=float)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = P[:, 0][None, :], P[:, 1][None, :]
    x2, y2 = np.roll(P[:, 0], -1)[None, :], np.roll(P[:, 1], -1)[None, :]
    cond = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    crossings = cond & (x < xint)
    return (crossings.sum(1) % 2) == 1


def polygon_distance(P, Q) -> float:
    """Exact distance between two closed polygons: 0 if they intersect, else the smallest
    segment-segment distance over all pairs of edges."""
    return float(polygon_distance_batch(P, Q, np.zeros((1, 2)))[0])


def polygon_distance_batch(P, Q, shifts) -> np.ndarray:
    """Distances ``dist(P, Q + t)`` for every row ``t`` of ``shifts`` (``(T, 2)``), vectorised.

    Two polygons intersect iff an edge of one crosses an edge of the other or one contains a
    vertex of the other; otherwise the distance is attained between a vertex and an edge.
    """
    P = np.asarray(P, dtype=float)
    Q = np.asarray(Q, dtype=float)
    shifts = np.asarray(shifts, dtype=float).reshape(-1, 2)
    T = len(shifts)
    Qs = Q[None, :, :] + shifts[:, None, :]  # (T, nQ, 2)
    Pa, Pb = P, np.roll(P, -1, axis=0)  # edges of P
    Qa, Qb = Qs, np.roll(Qs, -1, axis=1)  # edges of Q + t
    # vertex of P to edge of Q: (T, nP, nQ)
    d_pq = point_segment_distance(P[None, :, None, :], Qa[:, None, :, :], Qb[:, None, :, :])
    # vertex of Q to edge of P: (T, nQ, nP)
    d_qp = point_segment_distance(Qs[:, :, None, :], Pa[None, None, :, :], Pb[None, None, :, :])
    dist = np.minimum(d_pq.reshape(T, -1).min(1), d_qp.reshape(T, -1).min(1))
    # proper edge crossings
    cross = (
        segments_intersect(Pa[None, :, None, :], Pb[None, :, None, :], Qa[:, None, :, :], Qb[:, None, :, :])
        .reshape(T, -1)
        .any(1)
    )
    # containment: a vertex of one strictly inside the other (only matters if no crossing)
    inside = np.zeros(T, dtype=bool)
    cand = np.nonzero(~cross & (dist > 0))[0]
    if len(cand):
        inside[cand] = points_in_polygon(Qs[cand, 0, :], P)
        back = points_in_polygon(P[0:1] - shifts[cand], Q)
        inside[cand] |= back
    return np.where(cross | inside, 0.0, dist)
