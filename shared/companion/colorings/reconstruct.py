"""Reconstructing six-colorings: the combinatorial structure and the vertex optimiser.

The 2024 paper formalised colorings suggested by a neural network; its tile coordinates are not
available to us.  This module is how the companion rebuilds colorings of the same kind.

**Why the structure.**  Call two tiles *adjacent* when they touch.  If two tiles of one of the five
unit-distance colours touch a common tile ``T``, their distance is at most ``diam T <= 1``; so (up
to equality cases) tiles of the same colour must be at least three steps apart in the adjacency
graph.  Hence a tile may touch at most four other unit-distance tiles (it and its neighbours are
pairwise within two steps, and only five colours exist), and a colour-6 island may touch at most five.
With every tile touching exactly four others, the five colours form a *covering of K5*; the linear
coloring ``(i + 2j) mod 5`` of the triangular lattice does this once, for every tile, one of its
"vertical" contacts ``+-(0, 1)`` and one of its "diagonal" contacts ``+-(1, 1)`` are cut by colour-6
islands.  The cut contacts form staircases with steps ``u = (0, 1)`` and ``l = (-1, -1)``; where a
staircase turns, two cut contacts meet at one vertex and merge into a pentagonal island (five tiles),
elsewhere a cut contact becomes a quadrilateral island (four tiles).  All-``u`` is Soifer's coloring.
The step word ``"uulul"`` on the period ``(5, 0), (3, 1)`` gives one quadrilateral and two pentagonal
islands per five tiles; this is the structure of our colorings ``B*`` (and, with one extra
triangular island at a free vertex, ``A*``).

**The optimiser.**  With the combinatorics fixed, every vertex is a free point of a
:class:`~companion.colorings.templates.PeriodicMap`; :func:`optimise_map` maximises a uniform margin
``m`` subject to: unit-colour tiles have ``diam <= 1 - m`` and gaps ``>= 1 + m``; colour-6 tiles have
``diam <= lo - m`` and gaps ``>= hi + m``.  Constraints are the vertex-vertex distances (diameters)
and vertex-segment distances (gaps), with exact Jacobians from torch, solved by SciPy's SLSQP; the
active set of pairs is rebuilt between rounds.  A positive margin means the coloring avoids every
``d in [lo, hi]`` with strict inequalities -- which :func:`~companion.colorings.templates.certify`
then proves in rational arithmetic.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import minimize

from .templates import PeriodicMap

__all__ = ["NEIGHBOURS", "staircase_map", "optimise_map", "map_margin"]

#: the six neighbours of a tile of the triangular lattice, in counter-clockwise order
NEIGHBOURS = [(1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1)]
_STEP = {"u": (0, 1), "l": (-1, -1)}


def _chi(p) -> int:
    return (p[0] + 2 * p[1]) % 5


class _Torus:
    """Tiles ``Z^2`` modulo the period lattice ``M`` (lower-triangular Hermite form ``(a,0),(b,c)``)."""

    def __init__(self, M):
        (a, z), (b, c) = M
        if z != 0:
            raise ValueError("period must be in Hermite form ((a, 0), (b, c))")
        self.a, self.b, self.c = a, b, c
        self.reps = [(x, y) for y in range(c) for x in range(a)]

    def reduce(self, p):
        x, y = p
        k2 = y // self.c
        y2 = y - k2 * self.c
        x2 = x - k2 * self.b
        k1 = x2 // self.a
        return (x2 - k1 * self.a, y2)

    def index(self, p):
        return self.reps.index(self.reduce(p))


def _triangle(Y, k):
    """Honeycomb vertex ``k`` of tile ``Y``: the triangle of tiles ``Y, Y+N_k, Y+N_{k+1}``."""
    n1, n2 = NEIGHBOURS[k], NEIGHBOURS[(k + 1) % 6]
    return frozenset({Y, (Y[0] + n1[0], Y[1] + n1[1]), (Y[0] + n2[0], Y[1] + n2[1])})


def _contact_triangles(Y, s):
    """The two honeycomb vertices at the ends of the contact between ``Y`` and ``Y + s``."""
    k = NEIGHBOURS.index(s)
    return [_triangle(Y, (k - 1) % 6), _triangle(Y, k)]


def staircase_map(
    steps: str = "uulul", period=((5, 0), (3, 1)), triangle_islands=(), scale: float = 0.8, name: str = ""
) -> PeriodicMap:
    """The staircase structure described in the module docstring, on a hexagonal starting geometry.

    Args:
        steps: the step (``u`` or ``l``) of each tile of one period, in the order of the period's
            representatives ``(x, y)``, ``y < c``, ``x < a``.  Every tile must have exactly one
            predecessor and no tile may be the middle of two turns (islands touch <= 5 tiles).
        period: period lattice in tile coordinates; its vectors must satisfy ``i + 2j = 0 mod 5``.
        triangle_islands: indices of uncut honeycomb vertices that become triangular islands.
        scale: tile spacing of the starting geometry.
    """
    tor = _Torus(period)
    for v in period:
        if _chi(v) != 0:
            raise ValueError("period vectors must lie in the kernel of (i + 2j) mod 5")
    T = len(tor.reps)
    if len(steps) != T:
        raise ValueError(f"need one step per tile of the period ({T})")
    A = [_STEP[s] for s in steps]
    succ = [tor.index((r[0] + A[i][0], r[1] + A[i][1])) for i, r in enumerate(tor.reps)]
    if sorted(succ) != list(range(T)):
        raise ValueError("the steps do not define staircases (a tile has two predecessors)")
    pred = {s: i for i, s in enumerate(succ)}
    for z in range(T):
        if A[pred[z]] != A[z] and A[z] != A[succ[z]]:
            raise ValueError("two consecutive turns: an island would touch six tiles")
    # islands: runs of cut contacts joined at turns
    islands, seen = [], set()
    for i in range(T):
        if i in seen:
            continue
        j = i
        while A[pred[j]] != A[j] and pred[j] != i:
            j = pred[j]
        chain, k = [j], j
        seen.add(j)
        while A[k] != A[succ[k]] and succ[k] not in seen:
            k = succ[k]
            chain.append(k)
            seen.add(k)
        tris, Y = set(), tor.reps[chain[0]]
        for e in chain:
            tris.update(_contact_triangles(Y, A[e]))
            Y = (Y[0] + A[e][0], Y[1] + A[e][1])
        islands.append(tris)

    def red_tri(t):
        a = min(t)
        r = tor.reduce(a)
        d = (r[0] - a[0], r[1] - a[1])
        return frozenset((p[0] + d[0], p[1] + d[1]) for p in t), (a[0] - r[0], a[1] - r[1])

    used = {red_tri(t)[0] for tris in islands for t in tris}
    free = []
    for r in tor.reps:
        for k in (0, 1):  # the two honeycomb vertices owned by tile r: Y,Y+(1,0),Y+(1,1) and Y,Y+(1,1),Y+(0,1)
            t = _triangle(r, k)
            if red_tri(t)[0] not in used:
                used.add(red_tri(t)[0])
                free.append(t)
    for k in triangle_islands:
        islands.append({free[k]})
    canon = {}
    for iid, tris in enumerate(islands):
        for t in tris:
            canon[red_tri(t)[0]] = iid
    E = np.array([[scale, 0.0], [-scale / 2, scale * np.sqrt(3) / 2]])
    emb = lambda p: np.asarray(p, float) @ E  # noqa: E731
    points, init = {}, []

    def instance(t):
        key, off = red_tri(t)
        iid = canon.get(key)
        if iid is None:
            return None, None
        for t0 in islands[iid]:
            k0, off0 = red_tri(t0)
            if k0 == key:
                return iid, (off[0] - off0[0], off[1] - off0[1])
        raise RuntimeError("island bookkeeping")

    def point(key, offset, guess):
        if key not in points:
            points[key] = len(init)
            init.append(guess - emb(offset))
        return (points[key], int(offset[0]), int(offset[1]))

    def vertex_point(t):
        key, off = red_tri(t)
        return point(("v", key), off, np.mean([emb(p) for p in t], 0))

    def corner_point(iid, pair, off):
        pp = sorted(pair)
        centre = np.mean([np.mean([emb(p) for p in t], 0) for t in islands[iid]], 0) + emb(off)
        mid = (emb(pp[0]) + emb(pp[1])) / 2 + emb(off)
        return point(("c", iid, frozenset(pair)), off, 0.55 * centre + 0.45 * mid)

    def tile_polygon(Y):
        tris = [_triangle(Y, k) for k in range(6)]
        info = [instance(t) for t in tris]
        verts = []
        for k in range(6):
            iid, off = info[k]
            if iid is None:
                verts.append(vertex_point(tris[k]))
                continue
            same_prev = info[k - 1] == (iid, off)
            same_next = info[(k + 1) % 6] == (iid, off)
            for flag, n in ((same_prev, NEIGHBOURS[k]), (same_next, NEIGHBOURS[(k + 1) % 6])):
                if not flag:
                    pair = {(Y[0] - off[0], Y[1] - off[1]), (Y[0] + n[0] - off[0], Y[1] + n[1] - off[1])}
                    verts.append(corner_point(iid, pair, off))
        return verts

    def island_polygon(iid, off):
        tris = list(islands[iid])
        cut = {frozenset(a & b) for a, b in itertools.combinations(tris, 2) if len(a & b) == 2}
        corners = [
            frozenset(pq) for t in tris for pq in itertools.combinations(sorted(t), 2) if frozenset(pq) not in cut
        ]
        order, rest = [corners[0]], corners[1:]
        while rest:
            k = next(i for i, c in enumerate(rest) if len(c & order[-1]) == 1)
            order.append(rest.pop(k))
        verts = [corner_point(iid, c, off) for c in order]
        pts = np.array([init[i] + emb((a, b)) for i, a, b in verts])
        area = np.dot(pts[:, 0], np.roll(pts[:, 1], -1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], -1))
        return verts if area > 0 else verts[::-1]

    tiles, colors = [], []
    for Y in tor.reps:
        tiles.append(tile_polygon(Y))
        colors.append(_chi(Y))
    for iid in range(len(islands)):
        tiles.append(island_polygon(iid, (0, 0)))
        colors.append(5)
    return PeriodicMap(
        E.tolist(),
        np.array(init).tolist(),
        tiles,
        colors,
        [list(v) for v in period],
        name=name or f"staircase {steps}",
        meta={"steps": steps, "triangle_islands": list(triangle_islands)},
    )


# ----------------------------------------------------------------------------------- optimiser
class _Constraints:
    """Vectorised constraint values of a PeriodicMap as a function of (base, points, margin)."""

    def __init__(self, pmap: PeriodicMap, special: int = 5, min_separation: float = 0.0):
        self.pmap = pmap
        self.special = special
        self.min_separation = float(min_separation)
        self.n = len(pmap.points)
        vidx, voff, self.start = [], [], [0]
        for t in pmap.tiles:
            for i, a, b in t:
                vidx.append(i)
                voff.append((a, b))
            self.start.append(len(vidx))
        self.vidx = torch.tensor(vidx)
        self.voff = torch.tensor(voff, dtype=torch.float64)
        self.K = torch.tensor(np.asarray(pmap.period, float))
        self.colors = np.asarray(pmap.colors)

    def pack(self, pmap: PeriodicMap) -> np.ndarray:
        E = pmap.base_array()
        return np.concatenate([[E[0, 0], E[1, 0], E[1, 1]], pmap.points_array().ravel()])

    def unpack(self, x) -> PeriodicMap:
        E = [[float(x[0]), 0.0], [float(x[1]), float(x[2])]]
        pts = np.asarray(x[3 : 3 + 2 * self.n]).reshape(-1, 2).tolist()
        p = self.pmap
        return PeriodicMap(E, pts, p.tiles, p.colors, p.period, p.name, p.note, dict(p.meta))

    def vertices(self, x):
        e = torch.stack([torch.stack([x[0], x[0] * 0]), torch.stack([x[1], x[2]])])
        q = x[3 : 3 + 2 * self.n].reshape(-1, 2)
        return q[self.vidx] + self.voff @ e, e

    def rebuild(self, x: np.ndarray, lo: float, hi: float, slack: float = 0.6):
        """Select the vertex pairs that matter near the current geometry."""
        V, e = self.vertices(torch.as_tensor(x))
        V = V.detach().numpy()
        L = self.K.numpy() @ e.detach().numpy()
        P = [V[self.start[k] : self.start[k + 1]] for k in range(len(self.start) - 1)]
        di, dj, d6 = [], [], []
        for k, p in enumerate(P):
            for a, b in itertools.combinations(range(len(p)), 2):
                di.append(self.start[k] + a)
                dj.append(self.start[k] + b)
                d6.append(self.colors[k] == self.special)
        gv, ga, gb, gs, g6 = [], [], [], [], []
        cents = [p.mean(0) for p in P]
        for i, j in itertools.product(range(len(P)), repeat=2):
            if self.colors[i] != self.colors[j]:
                continue
            six = self.colors[i] == self.special
            reach = (hi if six else 1.0) + slack
            for m, n in itertools.product(range(-3, 4), repeat=2):
                if i == j and m == 0 and n == 0:
                    continue
                t = m * L[0] + n * L[1]
                if np.linalg.norm(cents[j] + t - cents[i]) > reach + 2.0:
                    continue
                for (A, sa, na), (B, sb, nb), sh in (
                    ((P[i], self.start[i], len(P[i])), (P[j] + t, self.start[j], len(P[j])), (m, n)),
                    ((P[j] + t, self.start[j], len(P[j])), (P[i], self.start[i], len(P[i])), (-m, -n)),
                ):
                    for a in range(na):
                        for b in range(nb):
                            b2 = (b + 1) % nb
                            if min(np.linalg.norm(A[a] - B[b]), np.linalg.norm(A[a] - B[b2])) < reach:
                                gv.append(sa + a)
                                ga.append(sb + b)
                                gb.append(sb + b2)
                                gs.append(sh)
                                g6.append(six)
        self.di, self.dj, self.d6 = torch.tensor(di), torch.tensor(dj), torch.tensor(d6)
        self.gv, self.ga, self.gb = torch.tensor(gv), torch.tensor(ga), torch.tensor(gb)
        self.gs, self.g6 = torch.tensor(gs, dtype=torch.float64), torch.tensor(g6)
        # separation inside each tile: every vertex against every edge not incident to it
        sv, sa, sb = [], [], []
        if self.min_separation > 0:
            for k, p in enumerate(P):
                n = len(p)
                for a in range(n):
                    for b in range(n):
                        if a not in (b, (b + 1) % n):
                            sv.append(self.start[k] + a)
                            sa.append(self.start[k] + b)
                            sb.append(self.start[k] + (b + 1) % n)
        self.sv, self.sa, self.sb = (
            torch.tensor(sv, dtype=torch.long),
            torch.tensor(sa, dtype=torch.long),
            torch.tensor(sb, dtype=torch.long),
        )
        #: number of trailing constraints that are not distance conditions (separations and areas)
        self.n_extra = len(sv) + len(P)

    @staticmethod
    def _pt_seg(p, a, b):
        ab = b - a
        t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-18)).clamp(0, 1)
        return (a + t[:, None] * ab - p).norm(dim=-1)

    def values(self, x, lo: float, hi: float):
        """Constraint vector ``>= 0`` (last entry of ``x`` is the margin): distance conditions, then
        the in-tile separations (if ``min_separation > 0``), then the tile areas."""
        m = x[-1]
        V, e = self.vertices(x[:-1])
        L = self.K @ e
        diam = (V[self.di] - V[self.dj]).norm(dim=-1)
        p, sh = V[self.gv], self.gs @ L
        a, b = V[self.ga] + sh, V[self.gb] + sh
        ab = b - a
        t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-18)).clamp(0, 1)
        gap = (a + t[:, None] * ab - p).norm(dim=-1)
        areas = []
        for k in range(len(self.start) - 1):
            Q = V[self.start[k] : self.start[k + 1]]
            areas.append(0.5 * (Q[:, 0] * torch.roll(Q[:, 1], -1) - Q[:, 1] * torch.roll(Q[:, 0], -1)).sum())
        D = torch.where(self.d6, lo - m, 1 - m)
        G = torch.where(self.g6, hi + m, 1 + m)
        sep = self._pt_seg(V[self.sv], V[self.sa], V[self.sb]) - self.min_separation
        return torch.cat([D - diam, gap - G, sep, torch.stack(areas) - 1e-3])


def map_margin(pmap: PeriodicMap, lo: float, hi: float | None = None) -> float:
    """Uniform margin of a map for the target interval ``[lo, hi]`` (float geometry):
    ``min(1 - diam, gap - 1)`` over unit colours, ``min(lo - diam, gap - hi)`` for colour 6."""
    from .verify import admissible_intervals

    hi = lo if hi is None else hi
    ai = admissible_intervals(pmap.coloring([1.0] * 6))
    unit = ai.drop(index=6)
    return float(
        min(
            (1 - unit["max_diameter"]).min(),
            (unit["min_gap"] - 1).min(),
            lo - ai.loc[6, "max_diameter"],
            ai.loc[6, "min_gap"] - hi,
        )
    )


def optimise_map(
    pmap: PeriodicMap,
    lo: float,
    hi: float | None = None,
    rounds: int = 2,
    maxiter: int = 300,
    min_separation: float = 0.0,
) -> tuple[PeriodicMap, float]:
    """Maximise the uniform margin of ``pmap`` for the colour-6 target interval ``[lo, hi]``.

    The geometry is first scaled so that the widest unit-colour tile has diameter 1.  Returns the
    optimised map and its margin (positive: strictly valid on ``[lo, hi]``; verify with
    :func:`~companion.colorings.templates.certify`).

    The distance conditions do not keep the tiles simple: an edge whose length the margin does not
    need can shrink to nothing and fold over.  ``min_separation > 0`` adds, inside every tile, the
    constraint that each vertex is at least that far from every edge not incident to it (which also
    bounds every edge length from below); :func:`~companion.colorings.templates.certify_tiling` then
    proves that the result is a tiling.
    """
    hi = lo if hi is None else hi
    C = _Constraints(pmap, min_separation=min_separation)
    x = C.pack(pmap)
    polys = pmap.polygons()
    scale = max(np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1)).max() for P, c in zip(polys, pmap.colors) if c != 5)
    x = x / scale
    margin = -np.inf
    for _ in range(rounds):
        C.rebuild(x, lo, hi)
        v = C.values(torch.as_tensor(np.concatenate([x, [0.0]])), lo, hi).detach().numpy()
        x0 = np.concatenate([x, [min(v[: -C.n_extra].min(), 0.0) - 1e-4]])
        fun = lambda z: C.values(torch.as_tensor(z), lo, hi).detach().numpy()  # noqa: E731
        jac = lambda z: torch.func.jacfwd(lambda w: C.values(w, lo, hi))(torch.as_tensor(z)).detach().numpy()  # noqa: E731
        res = minimize(
            lambda z: -z[-1],
            x0,
            jac=lambda z: np.concatenate([np.zeros(len(z) - 1), [-1.0]]),
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": fun, "jac": jac}],
            options={"maxiter": maxiter, "ftol": 1e-13},
        )
        x, margin = res.x[:-1], float(res.x[-1])
    return C.unpack(x), margin
