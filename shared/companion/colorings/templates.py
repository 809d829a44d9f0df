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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .geometry import polygon_distance_batch
from .periodic import PeriodicColoring, lattice_points

__all__ = ["PeriodicMap", "certify", "Certificate"]


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
        return cls(d["base"], d["points"], [[tuple(v) for v in t] for t in d["tiles"]], d["colors"], d["period"], d.get("name", ""), d.get("note", ""), d.get("meta", {}))


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

    return (o1 == 0 and on(a, b, c)) or (o2 == 0 and on(a, b, d)) or (o3 == 0 and on(c, d, a)) or (o4 == 0 and on(c, d, b))


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
    ok: bool
    strict: bool

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
        diam_sq = max(
            max(_sq(p[0] - q[0]) + _sq(p[1] - q[1]) for p in exact[i] for q in exact[i]) for i in idx
        )
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
        rows.append({"color": int(c), "diam_sq": diam_sq, "gap_sq": gap_sq, "avoid": f"[{float(need_lo):.4f}, {float(need_hi):.4f}]", "ok": ok, "strict": strict})
    return Certificate(pmap.name, lo, hi, unit, rows, all(r["ok"] for r in rows), all(r["strict"] for r in rows))
