"""Periodic maps: tilings given by shared free points, and their exact rational certificates.

A :class:`PeriodicMap` describes a periodic tiling combinatorially.  There are ``n`` free points
``q_i``; every tile vertex is a free point plus an integer combination of two *base* vectors,
``q_i + a e_1 + b e_2``; the whole coloring repeats under the *period* lattice, whose vectors are
integer combinations of the base vectors.  Neighbouring tiles reference the same free points, so
any choice of coordinates (that keeps the polygons simple) is again a tiling -- this is what makes
the map a convenient object to optimise (see :mod:`.reconstruct`) and to certify.

Exact certificate.  Coordinates are stored as decimal strings; :meth:`PeriodicMap.exact_tiles`
builds every vertex in rational arithmetic (``fractions.Fraction``), so shared vertices coincide
exactly.  :func:`certify` then decides the conditions of Section 2.1 with *squared* distances, which
are rational: diameters (vertex-vertex), polygon gaps (vertex-segment, with exact orientation tests
for crossings).  Floating point is used only to discard pairs of tiles that are at least 0.05
farther apart than the bound being certified -- a margin a billion times larger than the rounding
error of the float pre-filter.

Shared free points make a map a tiling only while every tile stays a simple, positively oriented
polygon; an optimiser can fold a tile over (a tiny self-intersection) without any distance condition
noticing.  :func:`certify_tiling` therefore proves the tiling itself, also exactly and without any
floating point: every tile is simple, the interiors of all tiles and lattice translates are pairwise
disjoint (exact overlap areas are zero), and the tile areas sum to the cell area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .geometry import polygon_distance_batch
from .periodic import PeriodicColoring, lattice_points

__all__ = ["PeriodicMap", "certify", "Certificate", "certify_tiling", "TilingCertificate"]


def _frac(x) -> Fraction:
    return x if isinstance(x, Fraction) else Fraction(str(x)) if isinstance(x, str) else Fraction(float(x))


@dataclass
class PeriodicMap:
    """A periodic tiling by polygons whose vertices are shared free points.

    Attributes:
        base: ``(2, 2)`` base vectors ``e_1, e_2`` (rows), as decimal strings or floats.
        points: ``(n, 2)`` free points, as decimal strings or floats.
        tiles: per tile, its vertices in order as ``(i, a, b)`` = ``q_i + a e_1 + b e_2``.
        colors: colour of each tile (0-based).
        period: ``(2, 2)`` integer matrix; its rows are the period vectors in base coordinates.
        name, note: labels.
    """

    base: list
    points: list
    tiles: list
    colors: list
    period: list
    name: str = ""
    note: str = ""
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ float view
    def base_array(self) -> np.ndarray:
        """Base vectors as floats."""
        return np.array([[float(v) for v in row] for row in self.base])

    def points_array(self) -> np.ndarray:
        """Free points as floats."""
        return np.array([[float(v) for v in row] for row in self.points])

    def polygons(self) -> list[np.ndarray]:
        """Tile polygons as float arrays."""
        E, Q = self.base_array(), self.points_array()
        return [np.array([Q[i] + a * E[0] + b * E[1] for i, a, b in t]) for t in self.tiles]

    def coloring(self, distances) -> PeriodicColoring:
        """The float :class:`PeriodicColoring` of this map with the given type."""
        L = np.asarray(self.period, float) @ self.base_array()
        return PeriodicColoring(L, self.polygons(), self.colors, distances, name=self.name, note=self.note)

    # ------------------------------------------------------------------ exact view
    def exact_base(self) -> list[list[Fraction]]:
        """Base vectors as fractions."""
        return [[_frac(v) for v in row] for row in self.base]

    def exact_tiles(self) -> list[list[tuple[Fraction, Fraction]]]:
        """Every tile vertex in exact rational arithmetic."""
        E = self.exact_base()
        Q = [[_frac(v) for v in row] for row in self.points]
        out = []
        for t in self.tiles:
            out.append([(Q[i][0] + a * E[0][0] + b * E[1][0], Q[i][1] + a * E[0][1] + b * E[1][1]) for i, a, b in t])
        return out

    def exact_period(self) -> list[tuple[Fraction, Fraction]]:
        """Period vectors as fractions."""
        E = self.exact_base()
        return [(m * E[0][0] + n * E[1][0], m * E[0][1] + n * E[1][1]) for m, n in self.period]

    def rounded(self, digits: int = 7) -> "PeriodicMap":
        """The same map with coordinates rounded to ``digits`` decimals, stored as strings."""
        fmt = lambda v: f"{float(v):.{digits}f}"  # noqa: E731
        return PeriodicMap(
            [[fmt(v) for v in row] for row in self.base],
            [[fmt(v) for v in row] for row in self.points],
            [list(map(tuple, t)) for t in self.tiles],
            list(self.colors),
            [list(r) for r in self.period],
            self.name,
            self.note,
            dict(self.meta),
        )

    def to_dict(self) -> dict:
        """Plain-data form (JSON-serialisable)."""
        return {
            "name": self.name,
            "note": self.note,
            "base": [[str(v) for v in row] for row in self.base],
            "points": [[str(v) for v in row] for row in self.points],
            "tiles": [[list(v) for v in t] for t in self.tiles],
            "colors": [int(c) for c in self.colors],
            "period": [list(map(int, r)) for r in self.period],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PeriodicMap":
        """Inverse of :meth:`to_dict`."""
        return cls(
            d["base"],
            d["points"],
            [[tuple(v) for v in t] for t in d["tiles"]],
            d["colors"],
            d["period"],
            d.get("name", ""),
            d.get("note", ""),
            d.get("meta", {}),
        )


# ---------------------------------------------------------------------------- exact arithmetic
def _sq(x):
    return x * x


def _pt_seg_sq(p, a, b) -> Fraction:
    """Squared distance from point ``p`` to segment ``[a, b]``, exactly."""
    abx, aby = b[0] - a[0], b[1] - a[1]
    apx, apy = p[0] - a[0], p[1] - a[1]
    den = abx * abx + aby * aby
    t = Fraction(0) if den == 0 else (apx * abx + apy * aby) / den
    t = min(max(t, Fraction(0)), Fraction(1))
    return _sq(a[0] + t * abx - p[0]) + _sq(a[1] + t * aby - p[1])


def _orient(a, b, c) -> int:
    v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    return (v > 0) - (v < 0)


def _segments_touch(a, b, c, d) -> bool:
    o1, o2, o3, o4 = _orient(a, b, c), _orient(a, b, d), _orient(c, d, a), _orient(c, d, b)
    if o1 != o2 and o3 != o4:
        return True

    def on(p, q, r):  # r on segment pq, given collinear
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    return (
        (o1 == 0 and on(a, b, c)) or (o2 == 0 and on(a, b, d)) or (o3 == 0 and on(c, d, a)) or (o4 == 0 and on(c, d, b))
    )


def _inside(p, P) -> bool:
    """Even-odd test for a point strictly off the boundary, exactly."""
    c = False
    n = len(P)
    for k in range(n):
        a, b = P[k], P[(k + 1) % n]
        if (a[1] > p[1]) != (b[1] > p[1]):
            x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if p[0] < x:
                c = not c
    return c


def _poly_dist_sq(P, Q) -> Fraction:
    """Squared distance between two closed polygons, exactly (0 if they meet)."""
    n, m = len(P), len(Q)
    for i in range(n):
        for j in range(m):
            if _segments_touch(P[i], P[(i + 1) % n], Q[j], Q[(j + 1) % m]):
                return Fraction(0)
    if _inside(Q[0], P) or _inside(P[0], Q):
        return Fraction(0)
    best = None
    for A, B in ((P, Q), (Q, P)):
        k = len(B)
        for p in A:
            for j in range(k):
                v = _pt_seg_sq(p, B[j], B[(j + 1) % k])
                if best is None or v < best:
                    best = v
    return best


@dataclass
class Certificate:
    """Outcome of :func:`certify`: exact squared extremes per colour and the verdict."""

    name: str
    lo: Fraction
    hi: Fraction
    unit: Fraction
    rows: list  # per colour: dict(color, diam_sq, gap_sq, bound_lo, bound_hi, strict_ok, ok)
    ok: bool  # the distance conditions hold *and* the tiles tile the plane (``tiling.ok``)
    strict: bool  # every distance inequality is strict
    tiling: "TilingCertificate | None" = None

    @property
    def distances_ok(self) -> bool:
        """The distance conditions alone (diameters and gaps), without the tiling."""
        return all(r["ok"] for r in self.rows)

    def to_frame(self):
        """Per-colour table with the square roots as floats (colours 1-based)."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "color": r["color"] + 1,
                    "max_diameter": float(r["diam_sq"]) ** 0.5,
                    "min_gap": float(r["gap_sq"]) ** 0.5,
                    "must_avoid": r["avoid"],
                    "ok": r["ok"],
                    "strict": r["strict"],
                }
                for r in self.rows
            ]
        ).set_index("color")


def certify(pmap: PeriodicMap, lo, hi, unit=1, special: int = 5, prefilter: float = 0.05) -> Certificate:
    """Decide exactly (rational arithmetic) that the map's coloring avoids distance ``unit`` in every
    colour except ``special``, and every distance ``d in [lo, hi]`` in colour ``special``.

    The conditions: for colours ``c != special`` every tile has ``diam^2 <= unit^2`` and any two
    distinct tiles have ``gap^2 >= unit^2``; for ``special`` ``diam^2 <= lo^2`` and ``gap^2 >= hi^2``.
    ``strict`` reports whether all inequalities are strict -- then no boundary convention is needed
    and the interval ``[lo, hi]`` is avoided as a closed interval.

    The distance conditions say nothing if the tiles do not tile the plane, so the certificate also
    runs :func:`certify_tiling` (simple tiles, disjoint interiors, areas summing to the cell area, all
    exact); ``ok`` requires both, ``tiling`` holds the tiling certificate with its defects.
    """
    lo, hi, unit = _frac(lo), _frac(hi), _frac(unit)
    col = pmap.coloring([1.0] * (max(pmap.colors) + 1))
    exact = pmap.exact_tiles()
    per = pmap.exact_period()
    colors = np.asarray(pmap.colors)
    rows = []
    cents = [P.mean(0) for P in col.tiles]
    radii = [float(np.sqrt(((P - g) ** 2).sum(1)).max()) for P, g in zip(col.tiles, cents)]
    for c in sorted(set(pmap.colors)):
        need_lo, need_hi = (lo, hi) if c == special else (unit, unit)
        idx = np.nonzero(colors == c)[0]
        diam_sq = max(max(_sq(p[0] - q[0]) + _sq(p[1] - q[1]) for p in exact[i] for q in exact[i]) for i in idx)
        gap_sq = None
        far = np.inf  # smallest float distance among the pairs certified by the pre-filter
        R = float(need_hi) + prefilter
        for i in idx:
            for j in idx:
                mn, vec = lattice_points(col.lattice, R + radii[i] + radii[j], center=cents[i] - cents[j])
                keep = ~((mn == 0).all(1) & (i == j))
                mn, vec = mn[keep], vec[keep]
                if len(vec) == 0:
                    continue
                fd = polygon_distance_batch(col.tiles[i], col.tiles[j], vec)
                for (m, n), dist in zip(mn, fd):
                    if dist >= float(need_hi) + prefilter:
                        far = min(far, float(dist))
                        continue  # certified by the float value with a 0.05 margin
                    sx = m * per[0][0] + n * per[1][0]
                    sy = m * per[0][1] + n * per[1][1]
                    Q = [(x + sx, y + sy) for x, y in exact[j]]
                    v = _poly_dist_sq(exact[i], Q)
                    if gap_sq is None or v < gap_sq:
                        gap_sq = v
        if gap_sq is None:  # every nearby translate is beyond need_hi + prefilter: report the float gap
            gap_sq = _sq(Fraction(far)) if np.isfinite(far) else _sq(need_hi + Fraction(1, 20))
        ok = diam_sq <= _sq(need_lo) and gap_sq >= _sq(need_hi)
        strict = diam_sq < _sq(need_lo) and gap_sq > _sq(need_hi)
        rows.append(
            {
                "color": int(c),
                "diam_sq": diam_sq,
                "gap_sq": gap_sq,
                "avoid": f"[{float(need_lo):.4f}, {float(need_hi):.4f}]",
                "ok": ok,
                "strict": strict,
            }
        )
    tiling = certify_tiling(pmap)
    return Certificate(
        pmap.name, lo, hi, unit, rows, all(r["ok"] for r in rows) and tiling.ok, all(r["strict"] for r in rows), tiling
    )


# ---------------------------------------------------------------------------- exact tiling check
def _area2(P) -> Fraction:
    """Twice the signed (shoelace) area of a closed polygon, exactly."""
    n = len(P)
    return sum((P[k][0] * P[(k + 1) % n][1] - P[(k + 1) % n][0] * P[k][1] for k in range(n)), Fraction(0))


def _on_segment(p, a, b) -> bool:
    """``p`` lies on the closed segment ``[a, b]``."""
    return (
        _orient(a, b, p) == 0
        and min(a[0], b[0]) <= p[0] <= max(a[0], b[0])
        and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])
    )


def _line_cross(a, b, c, d):
    """Intersection point of the lines ``ab`` and ``cd`` (not parallel), exactly."""
    r = (b[0] - a[0], b[1] - a[1])
    s = (d[0] - c[0], d[1] - c[1])
    den = r[0] * s[1] - r[1] * s[0]
    t = ((c[0] - a[0]) * s[1] - (c[1] - a[1]) * s[0]) / den
    return (a[0] + t * r[0], a[1] + t * r[1])


def _simplicity_defects(P) -> list[dict]:
    """Why the closed polygon ``P`` is not simple, exactly: repeated vertices, adjacent edges that
    overlap beyond their shared vertex, non-adjacent edges that meet, zero area.  For two crossing
    edges ``k, k2`` the *loop area* is the area of the loop the crossing cuts off (the shorter side)."""
    n = len(P)
    out = []
    for k in range(n):
        for k2 in range(k + 1, n):
            if P[k] == P[k2]:
                out.append({"kind": "repeated vertex", "edges": (k, k2), "loop_area": Fraction(0)})
    E = [(P[k], P[(k + 1) % n]) for k in range(n)]
    for k in range(n):
        a, b = E[k]
        c, d = E[(k + 1) % n]  # b == c is the shared vertex
        if a != b and c != d and (_on_segment(d, a, b) or _on_segment(a, c, d)):
            out.append({"kind": "adjacent edges overlap", "edges": (k, (k + 1) % n), "loop_area": Fraction(0)})
    for k in range(n):
        for k2 in range(k + 2, n):
            if k == 0 and k2 == n - 1:
                continue  # adjacent through vertex 0
            a, b = E[k]
            c, d = E[k2]
            if not _segments_touch(a, b, c, d):
                continue
            loop = Fraction(0)
            if _orient(a, b, c) * _orient(a, b, d) < 0 and _orient(c, d, a) * _orient(c, d, b) < 0:
                x = _line_cross(a, b, c, d)
                inner = abs(_area2([x] + [P[i] for i in range(k + 1, k2 + 1)])) / 2
                outer = abs(_area2([x] + [P[i % n] for i in range(k2 + 1, k + n + 1)])) / 2
                loop = min(inner, outer)
            out.append({"kind": "edges intersect", "edges": (k, k2), "loop_area": loop})
    if _area2(P) == 0:
        out.append({"kind": "zero area", "edges": (), "loop_area": Fraction(0)})
    return out


def _triangulate(P) -> list:
    """Ear-clipping triangulation of a *simple* polygon in exact arithmetic (counter-clockwise
    triangles).  Collinear vertices are dropped (they do not change the region)."""
    V = list(P) if _area2(P) > 0 else list(P)[::-1]
    tris = []
    while len(V) > 3:
        n = len(V)
        flat = next((k for k in range(n) if _orient(V[k - 1], V[k], V[(k + 1) % n]) == 0), None)
        if flat is not None:
            V.pop(flat)
            continue
        for k in range(n):
            a, b, c = V[k - 1], V[k], V[(k + 1) % n]
            if _orient(a, b, c) <= 0:
                continue
            if any(
                _orient(a, b, p) >= 0 and _orient(b, c, p) >= 0 and _orient(c, a, p) >= 0
                for i, p in enumerate(V)
                if i not in (k - 1 if k else n - 1, k, (k + 1) % n)
            ):
                continue
            tris.append((a, b, c))
            V.pop(k)
            break
        else:  # pragma: no cover - impossible for a simple polygon
            raise ValueError("polygon is not simple: no ear")
    if len(V) == 3 and _orient(*V) > 0:
        tris.append(tuple(V))
    return tris


def _clip_area(T, U) -> Fraction:
    """Area of the intersection of two counter-clockwise triangles (Sutherland-Hodgman), exactly."""
    poly = list(T)
    for k in range(3):
        a, b = U[k], U[(k + 1) % 3]
        if not poly:
            break
        new = []
        for i in range(len(poly)):
            p, q = poly[i], poly[(i + 1) % len(poly)]
            sp, sq = _orient(a, b, p), _orient(a, b, q)
            if sp >= 0:
                new.append(p)
            if sp * sq < 0:
                new.append(_line_cross(a, b, p, q))
        poly = new
    return _area2(poly) / 2 if len(poly) >= 3 else Fraction(0)


def _bbox(P):
    xs, ys = [p[0] for p in P], [p[1] for p in P]
    return min(xs), min(ys), max(xs), max(ys)


def _bbox_open_overlap(A, B) -> bool:
    return A[0] < B[2] and B[0] < A[2] and A[1] < B[3] and B[1] < A[3]


def _overlap_area(TP, TQ, shift) -> Fraction:
    """Area of ``P ∩ (Q + shift)`` from triangulations ``TP``, ``TQ``, exactly."""
    sx, sy = shift
    total = Fraction(0)
    for U0 in TQ:
        U = tuple((x + sx, y + sy) for x, y in U0)
        bu = _bbox(U)
        for T in TP:
            if _bbox_open_overlap(_bbox(T), bu):
                total += _clip_area(T, U)
    return total


@dataclass
class TilingCertificate:
    """Outcome of :func:`certify_tiling`: the three exact facts and what went wrong.

    Attributes:
        simple: every tile is a simple polygon with non-zero area.
        disjoint: the interiors of all tiles and all their lattice translates are pairwise disjoint.
        area_sum: sum of the tile areas; ``cell_area``: ``|det(v1, v2)|`` of the period lattice.
        ok: all three hold (``area_sum == cell_area``), i.e. the translates tile the plane.
        defects: one dict per failure, ``kind``, ``tiles`` and ``amount`` (an exact area).
    """

    simple: bool
    disjoint: bool
    area_sum: Fraction
    cell_area: Fraction
    defects: list
    pairs_checked: int = 0

    @property
    def covers(self) -> bool:
        return self.area_sum == self.cell_area

    @property
    def ok(self) -> bool:
        return self.simple and self.disjoint and self.covers

    def summary(self) -> str:
        """One line per defect (tiles 0-based, areas as floats)."""
        if self.ok:
            return "tiling: every tile simple, interiors disjoint, areas sum to the cell area (exact)"
        return "\n".join(f"{d['kind']}: tiles {d['tiles']}, {d['what']} {float(d['amount']):.3e}" for d in self.defects)


def certify_tiling(pmap: "PeriodicMap") -> TilingCertificate:
    """Prove exactly (rational arithmetic) that the lattice translates of the map's tiles tile the plane.

    Three facts are decided:

    1. every tile is a *simple* polygon: no two non-adjacent edges meet, adjacent edges meet only in
       their shared vertex, no vertex repeats, the area is non-zero;
    2. the *interiors* are pairwise disjoint: for every pair of tiles ``P_i``, ``P_j + t`` (``t`` in
       the period lattice, ``(j, t) != (i, 0)``) whose bounding boxes in lattice coordinates overlap
       -- a complete enumeration -- the area of ``P_i ∩ (P_j + t)`` is zero; it is computed exactly by
       triangulating both tiles (ear clipping) and clipping triangle against triangle.  Two open sets
       meet iff their intersection has positive area, so this is equivalent;
    3. the tile areas sum to the area ``|det(v1, v2)|`` of a period cell.

    (2) and (3) give covering: the closed tiles' translates cover the plane up to a null set, and the
    complement of a locally finite union of closed sets is open, hence empty.  Failures are listed
    in ``defects`` with the tiles and the exact area by which the condition fails (loop area of a
    self-intersection, overlap area, area surplus or deficit).
    """
    exact = pmap.exact_tiles()
    per = pmap.exact_period()
    det = per[0][0] * per[1][1] - per[0][1] * per[1][0]
    defects = []
    simple = [True] * len(exact)
    for i, P in enumerate(exact):
        for d in _simplicity_defects(P):
            simple[i] = False
            where = "vertices" if d["kind"] == "repeated vertex" else "edges"
            defects.append(
                {
                    "kind": f"tile not simple ({d['kind']}, {where} {d['edges']})",
                    "tiles": (i,),
                    "what": "loop area",
                    "amount": d["loop_area"],
                }
            )
    area_sum = sum((abs(_area2(P)) / 2 for P in exact), Fraction(0))
    # lattice coordinates of every vertex: x = (m, n) @ per  ->  (m, n) = x @ per^-1
    inv = [[per[1][1] / det, -per[0][1] / det], [-per[1][0] / det, per[0][0] / det]]
    coef = [[(x * inv[0][0] + y * inv[1][0], x * inv[0][1] + y * inv[1][1]) for x, y in P] for P in exact]
    cbox = [_bbox(C) for C in coef]
    tri = [_triangulate(P) if simple[i] else None for i, P in enumerate(exact)]
    boxes = [_bbox(P) for P in exact]
    disjoint, pairs = True, 0
    for i in range(len(exact)):
        for j in range(i, len(exact)):
            # P_j + m v1 + n v2 can meet P_i only if the lattice-coordinate boxes overlap
            m_lo, m_hi = math.floor(cbox[i][0] - cbox[j][2]), math.ceil(cbox[i][2] - cbox[j][0])
            n_lo, n_hi = math.floor(cbox[i][1] - cbox[j][3]), math.ceil(cbox[i][3] - cbox[j][1])
            for m in range(m_lo, m_hi + 1):
                for n in range(n_lo, n_hi + 1):
                    if i == j and (m, n) <= (0, 0):
                        continue  # the tile itself, and each pair of translates once
                    sx, sy = m * per[0][0] + n * per[1][0], m * per[0][1] + n * per[1][1]
                    bj = (boxes[j][0] + sx, boxes[j][1] + sy, boxes[j][2] + sx, boxes[j][3] + sy)
                    if not _bbox_open_overlap(boxes[i], bj):
                        continue
                    pairs += 1
                    if tri[i] is None or tri[j] is None:
                        continue  # a non-simple tile already fails; its overlaps are not defined
                    a = _overlap_area(tri[i], tri[j], (sx, sy))
                    if a != 0:
                        disjoint = False
                        defects.append(
                            {
                                "kind": f"interiors overlap (tile {j} shifted by period ({m}, {n}))",
                                "tiles": (i, j),
                                "what": "overlap area",
                                "amount": a,
                            }
                        )
    if area_sum != abs(det):
        defects.append(
            {
                "kind": "areas do not sum to the cell area",
                "tiles": tuple(range(len(exact))),
                "what": "area sum - cell area",
                "amount": area_sum - abs(det),
            }
        )
    return TilingCertificate(all(simple), disjoint and all(simple), area_sum, abs(det), defects, pairs)
