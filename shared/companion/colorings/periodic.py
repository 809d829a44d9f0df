"""Periodic tile colorings of the plane.

A periodic tile coloring is given by two lattice vectors ``v1, v2``, finitely
many polygons ``P_j`` (the tiles of one period), a colour ``c_j`` per tile, and a forbidden
distance ``d_c`` per colour.  The translates ``P_j + m v1 + n v2`` must tile the plane.  Colours are
0-based in code (``0..k-1``); the book prints them 1-based, so "colour 6" is ``5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .geometry import as_polygon, circumradius, points_in_polygon, polygon_area, polygon_centroid

__all__ = ["PeriodicColoring", "lattice_points"]


def lattice_points(lattice: np.ndarray, radius: float, center=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """All lattice vectors ``m v1 + n v2`` within ``radius`` of ``center``.

    Returns ``(mn, vec)``: integer coefficients ``(N, 2)`` and vectors ``(N, 2)``.  The range of
    ``m, n`` is bounded with the dual basis, so no lattice point inside the disc is missed.
    """
    L = np.asarray(lattice, dtype=float)
    inv = np.linalg.inv(L)  # row vector x = (m, n) @ L  ->  (m, n) = x @ inv
    # |m| <= radius * |column of inv| for points within radius of the centre
    c = np.asarray(center, dtype=float) @ inv
    span = radius * np.sqrt((inv**2).sum(0)) + 1
    ms = np.arange(np.floor(c[0] - span[0]), np.ceil(c[0] + span[0]) + 1)
    ns = np.arange(np.floor(c[1] - span[1]), np.ceil(c[1] + span[1]) + 1)
    M, N = np.meshgrid(ms, ns, indexing="ij")
    mn = np.stack([M.ravel(), N.ravel()], -1)
    vec = mn @ L
    keep = ((vec - np.asarray(center)) ** 2).sum(-1) <= radius**2
    return mn[keep].astype(int), vec[keep]


@dataclass
class PeriodicColoring:
    """A periodic coloring of the plane by polygonal tiles.

    Attributes:
        lattice: ``(2, 2)`` array whose rows are the period vectors ``v1, v2``.
        tiles: list of ``(n_j, 2)`` vertex arrays, the tiles of one period.
        colors: colour (0-based) of each tile.
        distances: forbidden distance ``d_c`` per colour; the coloring has *type* ``distances``
            when no two points of colour ``c`` are at distance exactly ``d_c``.
        name: short label used in tables and figures.
        note: one sentence on where the construction comes from.
    """

    lattice: np.ndarray
    tiles: list
    colors: np.ndarray
    distances: np.ndarray
    name: str = ""
    note: str = ""
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.lattice = np.asarray(self.lattice, dtype=float).reshape(2, 2)
        self.tiles = [as_polygon(t) for t in self.tiles]
        self.colors = np.asarray(self.colors, dtype=int)
        self.distances = np.asarray(self.distances, dtype=float)
        if len(self.colors) != len(self.tiles):
            raise ValueError("one colour per tile")
        if self.colors.min() < 0 or self.colors.max() >= len(self.distances):
            raise ValueError("colours must be 0..len(distances)-1")

    # ------------------------------------------------------------------ basic properties
    @property
    def n_colors(self) -> int:
        """Number of colours ``k`` (the length of the type)."""
        return len(self.distances)

    @property
    def cell_area(self) -> float:
        """Area of a fundamental parallelogram, ``|det(v1, v2)|``."""
        return abs(float(np.linalg.det(self.lattice)))

    def with_distances(self, distances) -> "PeriodicColoring":
        """The same tiles with another type (forbidden distance per colour)."""
        return replace(self, distances=np.asarray(distances, dtype=float), tiles=list(self.tiles))

    def color_fractions(self) -> np.ndarray:
        """Fraction of the plane's area covered by each colour."""
        frac = np.zeros(self.n_colors)
        for P, c in zip(self.tiles, self.colors):
            frac[c] += polygon_area(P)
        return frac / self.cell_area

    # ------------------------------------------------------------------ tiling property
    def check_tiling(self, n_samples: int = 20000, seed: int = 0) -> dict:
        """Check that the translates of the tiles tile the plane.

        Two facts are checked: the tile areas add up to the area of a period cell (exact, up to
        rounding), and on ``n_samples`` random points every point lies in exactly one tile.  Area
        identity plus no overlap implies covering (tiles are closed).
        Returns ``{'area_ratio', 'overlap_fraction', 'uncovered_fraction', 'ok'}``.
        """
        area = sum(polygon_area(P) for P in self.tiles)
        rng = np.random.default_rng(seed)
        pts = rng.random((n_samples, 2)) @ self.lattice
        counts = self._containment_counts(pts)
        res = {
            "area_ratio": area / self.cell_area,
            "overlap_fraction": float((counts > 1).mean()),
            "uncovered_fraction": float((counts == 0).mean()),
        }
        res["ok"] = (
            abs(res["area_ratio"] - 1) < 1e-9 and res["overlap_fraction"] == 0 and res["uncovered_fraction"] == 0
        )
        return res

    def _reduce(self, pts: np.ndarray) -> np.ndarray:
        """Translate points into the fundamental parallelogram ``{s v1 + t v2 : 0 <= s, t < 1}``."""
        coef = pts @ np.linalg.inv(self.lattice)
        return (coef - np.floor(coef)) @ self.lattice

    def _tile_shifts(self, i: int) -> np.ndarray:
        """Lattice shifts ``t`` such that tile ``i`` + ``t`` can meet the fundamental parallelogram."""
        coef = self.tiles[i] @ np.linalg.inv(self.lattice)
        lo, hi = coef.min(0), coef.max(0)
        ms = np.arange(np.floor(-hi[0]), np.ceil(1 - lo[0]) + 1)
        ns = np.arange(np.floor(-hi[1]), np.ceil(1 - lo[1]) + 1)
        M, N = np.meshgrid(ms, ns, indexing="ij")
        return np.stack([M.ravel(), N.ravel()], -1) @ self.lattice

    def _candidates(self, red: np.ndarray):
        """Yield ``(tile index, mask, shifted points)``: points of ``red`` inside the bounding box of
        a translate of a tile (a cheap filter before the exact point-in-polygon test)."""
        for i, P in enumerate(self.tiles):
            lo, hi = P.min(0), P.max(0)
            for t in self._tile_shifts(i):
                q = red - t
                m = (q[:, 0] >= lo[0]) & (q[:, 0] <= hi[0]) & (q[:, 1] >= lo[1]) & (q[:, 1] <= hi[1])
                if m.any():
                    yield i, m, q[m]

    def _containment_counts(self, pts: np.ndarray) -> np.ndarray:
        red = self._reduce(pts)
        counts = np.zeros(len(pts), dtype=int)
        for i, m, q in self._candidates(red):
            counts[np.nonzero(m)[0]] += points_in_polygon(q, self.tiles[i])
        return counts

    def color_at(self, points) -> np.ndarray:
        """Colour of each point (``(m, 2)`` array) under the periodic coloring; -1 if a point lies in
        no tile (only possible on a boundary, up to rounding)."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        red = self._reduce(pts)
        out = np.full(len(pts), -1, dtype=int)
        for i, m, q in self._candidates(red):
            idx = np.nonzero(m)[0]
            out[idx[points_in_polygon(q, self.tiles[i])]] = self.colors[i]
        return out

    # ------------------------------------------------------------------ drawing support
    def tiles_in_window(self, xlim, ylim, margin: float = 0.0) -> list[tuple[np.ndarray, int]]:
        """All translated tiles meeting the box ``xlim x ylim`` as ``(polygon, colour)`` pairs."""
        cx, cy = (xlim[0] + xlim[1]) / 2, (ylim[0] + ylim[1]) / 2
        half = np.hypot(xlim[1] - xlim[0], ylim[1] - ylim[0]) / 2 + margin
        out = []
        for P, c in zip(self.tiles, self.colors):
            g = polygon_centroid(P)
            r = circumradius(P, g)
            _, vec = lattice_points(self.lattice, half + r, center=(cx - g[0], cy - g[1]))
            for t in vec:
                Q = P + t
                if (
                    Q[:, 0].max() >= xlim[0] - margin
                    and Q[:, 0].min() <= xlim[1] + margin
                    and Q[:, 1].max() >= ylim[0] - margin
                    and Q[:, 1].min() <= ylim[1] + margin
                ):
                    out.append((Q, int(c)))
        return out
