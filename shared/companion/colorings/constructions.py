"""Known periodic colorings of the plane, as data: the classical ones (Soifer, Isbell, Hoffman-Soifer) and
colorings A and B of Mundinger, Pokutta, Spiegel & Zimmer, "Extending the Continuum of Six-Colorings" (2024)."""

from __future__ import annotations

import numpy as np

from .geometry import regular_polygon
from .periodic import PeriodicColoring

__all__ = [
    "SQRT2_MINUS_1",
    "INV_SQRT5",
    "PAPER_A",
    "PAPER_B",
    "PAPER_UNION",
    "CLASSICAL",
    "soifer",
    "isbell",
    "hoffman_soifer",
    "reconstructed_maps",
    "rejected_maps",
    "certified_interval",
    "coloring_b",
    "family_a",
    "coloring_a",
    "covered_range",
]

SQRT2_MINUS_1 = np.sqrt(2) - 1
INV_SQRT5 = 1 / np.sqrt(5)


def soifer(d: float | None = None) -> PeriodicColoring:
    """Soifer's six-coloring of type (1, 1, 1, 1, 1, 1/sqrt5) (see Soifer, *The Mathematical Coloring Book*, 2009).

    Square grid of pitch ``p = 2/sqrt5``; a diamond (45-degree square) of half-diagonal ``h = p/4``
    at every grid corner takes colour 6; each cell minus its four corner diamonds is an octagon of
    diameter 1, cell ``(i, j)`` coloured ``(i + 2j) mod 5``.  Same-coloured octagons differ by
    ``(2, -1) p`` or ``(1, 2) p`` -- the period lattice.  ``d`` only sets the declared type (default
    ``1/sqrt5``, the only value the construction avoids).
    """
    p = 2 / np.sqrt(5)
    h = p / 4
    octagon = np.array([(h, 0), (p - h, 0), (p, h), (p, p - h), (p - h, p), (h, p), (0, p - h), (0, h)])
    diamond = np.array([(h, 0), (0, h), (-h, 0), (0, -h)])
    tiles, colors = [], []
    for i in range(5):
        tiles.append(octagon + (i * p, 0))
        colors.append(i)
        tiles.append(diamond + (i * p, 0))
        colors.append(5)
    lattice = np.array([(2 * p, -p), (p, 2 * p)])
    return PeriodicColoring(
        lattice,
        tiles,
        colors,
        [1, 1, 1, 1, 1, INV_SQRT5 if d is None else d],
        name="Soifer",
        note="Soifer's coloring of type (1,1,1,1,1,1/sqrt5)",
    )


def isbell(diameter: float = 0.99) -> PeriodicColoring:
    """Isbell's hexagonal seven-coloring of type (1, ..., 1) (see Soifer, *The Mathematical Coloring Book*, 2009).

    Regular flat-top hexagons of circumradius ``a = diameter / 2`` centred on the triangular lattice
    ``i b1 + j b2`` with ``b1 = (1.5a, sqrt3/2 a)``, ``b2 = (0, sqrt3 a)``, coloured ``(i + 3j) mod 7``.
    Same-coloured hexagons are ``a sqrt7`` apart, so the coloring is valid for
    ``1/sqrt7 <= a <= 1/2``.
    """
    a = diameter / 2
    b1 = np.array([1.5 * a, np.sqrt(3) / 2 * a])
    b2 = np.array([0.0, np.sqrt(3) * a])
    hexagon = regular_polygon(6, a)
    tiles = [hexagon + i * b1 for i in range(7)]
    lattice = np.array([-3 * b1 + b2, b1 + 2 * b2])
    return PeriodicColoring(
        lattice, tiles, list(range(7)), [1.0] * 7, name="Isbell", note="Isbell's hexagonal 7-coloring"
    )


def hoffman_soifer(d: float) -> PeriodicColoring:
    """A square-and-octagon six-coloring of type (1, 1, 1, 1, 1, d) for ``sqrt2 - 1 <= d <= 1/sqrt5``.

    Our reconstruction of the classical Hoffman-Soifer range (as quoted by Mundinger et al. 2024): the
    combinatorics of Soifer's coloring, but the colour-6 tiles are squares of circumradius ``d/2``
    rotated by an angle ``theta`` and the grid pitch is ``p = 2 d cos(theta)``.  All conditions hold
    with equality when

        d = 1 / sqrt((2 cos(theta) + sin(theta))^2 + cos(theta)^2),   0 <= theta <= pi/8,

    which runs from ``1/sqrt5`` (``theta = 0``, Soifer's diamonds) to ``sqrt2 - 1``
    (``theta = pi/8``, where the squares' mutual gap reaches ``d``).  We derived this family by
    optimising the vertices of Soifer's tiling (see the chapter); it is not transcribed from
    Hoffman and Soifer's papers.
    """
    if not (SQRT2_MINUS_1 - 1e-12 <= d <= INV_SQRT5 + 1e-12):
        raise ValueError("the square-and-octagon family exists for sqrt(2)-1 <= d <= 1/sqrt(5)")
    # d(theta) is decreasing on [0, pi/8]: solve 4c^2 + 1 + 2 sin(2 theta) = 1/d^2 for theta
    target = 1 / d**2
    lo, hi = 0.0, np.pi / 8
    for _ in range(200):
        mid = (lo + hi) / 2
        val = 4 * np.cos(mid) ** 2 + 1 + 2 * np.sin(2 * mid)
        if val < target:
            lo = mid
        else:
            hi = mid
    theta = (lo + hi) / 2
    c, s = np.cos(theta), np.sin(theta)
    r = d / 2
    p = 2 * d * c
    q = [r * np.array((c, s)), r * np.array((-s, c)), r * np.array((-c, -s)), r * np.array((s, -c))]
    e1, e2 = np.array([p, 0.0]), np.array([0.0, p])
    octagon = np.array([q[0], q[2] + e1, q[1] + e1, q[3] + e1 + e2, q[2] + e1 + e2, q[0] + e2, q[3] + e2, q[1]])
    square = np.array(q)
    tiles, colors = [], []
    for i in range(5):
        tiles += [octagon + i * e1, square + i * e1]
        colors += [i, 5]
    lattice = np.array([2 * e1 - e2, e1 + 2 * e2])
    return PeriodicColoring(
        lattice,
        tiles,
        colors,
        [1, 1, 1, 1, 1, d],
        name=f"Hoffman-Soifer type (d={d:.4f})",
        note="square-and-octagon family reconstructing the classical range [sqrt2-1, 1/sqrt5]",
        params={"theta": theta, "pitch": p},
    )


# ------------------------------------------------------------------------ the reconstructed colorings
#: the paper's published intervals (abstract): coloring A is a family for 0.354 <= d <= 0.553,
#: coloring B one coloring whose sixth colour avoids every d in [0.418, 0.657]
PAPER_A = (0.354, 0.553)
PAPER_B = (0.418, 0.657)
PAPER_UNION = (0.354, 0.657)
CLASSICAL = (SQRT2_MINUS_1, INV_SQRT5)


def reconstructed_maps() -> dict:
    """All colorings reconstructed for the chapter, as :class:`PeriodicMap` objects by name.

    ``B*`` is our counterpart of the paper's coloring B (one coloring for the whole interval);
    ``A*1..A*4`` cover the range of the paper's family A; ``X-low-k`` and ``X-high-k`` extend the range
    beyond the published end points.  Each carries ``meta['certified_interval']``, the colour-6
    interval proven in exact rational arithmetic (:func:`companion.colorings.templates.certify`,
    which also proves that the tiles tile the plane),
    and ``meta['structure']``, its combinatorial type (:mod:`companion.colorings.reconstruct`).
    """
    from ._maps import MAPS
    from .templates import PeriodicMap

    return {k: PeriodicMap.from_dict(v) for k, v in MAPS.items()}


def rejected_maps() -> dict:
    """Maps an earlier version of the chapter stored and the exact tiling check rejects, by name.

    ``A*3-folded`` is the first stored ``A*3``: its distance conditions hold strictly, but the short
    edge between free points 0 and 1 (2.2e-5 long) had folded over, so tiles 0 and 2 self-intersect
    and tiles 1 and 7 overlap, by areas of about 1e-10 that a Monte-Carlo tiling check does not see
    (:func:`companion.colorings.templates.certify_tiling`).  The stored ``A*3`` replaces it.
    """
    from ._maps import REJECTED
    from .templates import PeriodicMap

    return {k: PeriodicMap.from_dict(v) for k, v in REJECTED.items()}


def certified_interval(pmap) -> tuple[float, float]:
    """The colour-6 interval a reconstructed map is certified for, as floats."""
    lo, hi = pmap.meta["certified_interval"]
    return float(lo), float(hi)


def coloring_b(d: float = 0.5) -> PeriodicColoring:
    """Our reconstruction ``B*`` of the paper's coloring B with type ``(1, 1, 1, 1, 1, d)``: a single
    coloring whose sixth colour avoids every ``d`` in its certified interval (which contains the
    paper's ``[0.418, 0.657]``)."""
    return reconstructed_maps()["B*"].coloring([1, 1, 1, 1, 1, d])


def family_a() -> list:
    """The members ``A*1..A*4`` (PeriodicMaps) whose certified intervals together cover the paper's
    range ``[0.354, 0.553]`` of family A."""
    maps = reconstructed_maps()
    return [maps[k] for k in sorted(maps) if k.startswith("A*")]


def coloring_a(d: float) -> PeriodicColoring:
    """A coloring of type ``(1, 1, 1, 1, 1, d)`` from our family ``A*``: the member whose certified
    interval contains ``d`` with the most room on both sides."""
    best, room = None, -1.0
    for m in family_a():
        lo, hi = certified_interval(m)
        if lo <= d <= hi and min(d - lo, hi - d) > room:
            best, room = m, min(d - lo, hi - d)
    if best is None:
        raise ValueError(f"d = {d} is outside the range covered by family A* ({covered_range(family_a())})")
    return best.coloring([1, 1, 1, 1, 1, d])


def covered_range(maps) -> tuple[float, float] | None:
    """The connected interval covered by the certified intervals of ``maps`` that contains the
    lowest start point (``None`` for no maps); gaps end the interval."""
    ivs = sorted(certified_interval(m) for m in maps)
    if not ivs:
        return None
    lo, hi = ivs[0]
    for a, b in ivs[1:]:
        if a > hi:
            break
        hi = max(hi, b)
    return lo, hi
