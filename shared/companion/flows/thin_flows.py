"""Normalised thin flows with resetting (Koch & Skutella 2011; Cominetti, Correa & Larré 2015).

Given the current shortest-path network ``E'``, its resetting edges ``E* ⊆ E'`` (edges with a queue) and
the inflow rate ``u_0``, a *normalised thin flow with resetting* (NTF) is a static s-t flow ``x'`` of value
``u_0`` supported on ``E'`` and labels ``l'`` with

    l'_s = 1,
    l'_w = min_{e=(v,w) in E'} rho_e(l'_v, x'_e)   for every node w != s,
    l'_w = rho_e(l'_v, x'_e)                     for every e = (v,w) with x'_e > 0,

where ``rho_e(l, x) = x / nu_e`` on resetting edges and ``max(l, x / nu_e)`` otherwise. The labels are
unique, the flow need not be. ``l'_v`` is the derivative of the earliest-arrival time ``l_v(theta)`` in the
current phase of a Nash flow over time; ``x'_e`` is how much of the particles departing per unit of
theta use edge ``e``.

Two exact solvers, both with SciPy's HiGHS (no commercial solver):

* ``method="milp"`` -- one mixed-integer program (the thesis' "Method 2"): binaries ``y_e`` mark the
  edges attaining the minimum and ``z_e`` pick the branch of the max; solved by
  :func:`scipy.optimize.milp`.
* ``method="enumerate"`` -- the combinatorial definition itself: every edge of ``E'`` is given one of
  the modes *tight via the queue*, *tight via l_v*, *tight via x/nu* or *not tight*, and each assignment
  in which every node has a tight incoming edge is a linear feasibility problem
  (:func:`scipy.optimize.linprog`). Exponential; a reference for tiny graphs and the tests.

In both cases the answer is *polished*: with the modes fixed, the linear program without big-M
constants is solved again, which removes the MILP's integrality tolerance from the labels (the phase
boundaries of the Braess example then come out exact to ~1e-12). Every returned NTF is verified with
:func:`check_thin_flow`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from dataclasses import dataclass
from typing import Iterable

import networkx as nx
import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from .network import edge_map

# Modes of an edge of E' (see module docstring).
TIGHT_QUEUE, TIGHT_LABEL, TIGHT_FLOW, NOT_TIGHT = "queue", "label", "flow", "not-tight"


@dataclass(frozen=True)
class ThinFlow:
    """A normalised thin flow with resetting: flow ``x`` (edge key -> x'_e) and labels (node -> l'_v)."""

    x: dict[str, float]
    labels: dict[str, float]
    active: frozenset[str]
    resetting: frozenset[str]
    value: float
    source: str
    sink: str


def rho(label_tail: float, x: float, nu: float, resetting: bool) -> float:
    """The NTF edge function ``rho_e(l, x)``: ``x/nu`` on resetting edges, ``max(l, x/nu)`` otherwise."""
    return x / nu if resetting else max(label_tail, x / nu)


class _Problem:
    """Index bookkeeping shared by the MILP and the enumeration."""

    def __init__(
        self, G: nx.MultiDiGraph, active: Iterable[str], resetting: Iterable[str], value: float, source: str, sink: str
    ):
        emap = edge_map(G)
        active = set(active)
        resetting = set(resetting)
        if not resetting <= active:
            raise ValueError("resetting edges must be active (E* is a subset of E')")
        # Nodes that matter: reachable from the source along active edges (all others carry no flow
        # and have no label in the current phase).
        H = nx.MultiDiGraph()
        H.add_node(source)
        for k in active:
            u, v, _ = emap[k]
            H.add_edge(u, v, key=k)
        self.nodes = [source] + sorted(nx.descendants(H, source))
        node_set = set(self.nodes)
        self.edges = [k for k in emap if k in active and emap[k][0] in node_set]
        if value > 0 and sink not in node_set:
            raise ValueError(f"sink {sink!r} is not reachable from {source!r} in the active network")
        self.tail = {k: emap[k][0] for k in self.edges}
        self.head = {k: emap[k][1] for k in self.edges}
        self.nu = {k: float(emap[k][2]["nu"]) for k in self.edges}
        self.resetting = {k for k in self.edges if k in resetting}
        self.value, self.source, self.sink = float(value), source, sink
        self.m, self.n = len(self.edges), len(self.nodes)
        self.ei = {k: i for i, k in enumerate(self.edges)}
        self.ni = {v: self.m + j for j, v in enumerate(self.nodes)}  # label variables follow the flow
        self.incoming = {v: [k for k in self.edges if self.head[k] == v] for v in self.nodes}
        # l' <= M for every label: along a tight edge l'_w <= max(l'_v, u_0/nu_e) (thesis Lemma 4.4).
        self.M = max(1.0, self.value / min(self.nu.values())) if self.edges else 1.0

    def conservation(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``sum_out x - sum_in x = u_0 [v = s]`` for all nodes but the sink (which is implied)."""
        rows, rhs = [], []
        for v in self.nodes:
            if v == self.sink:
                continue
            row = np.zeros(self.m + self.n)
            for k in self.edges:
                if self.tail[k] == v:
                    row[self.ei[k]] += 1
                if self.head[k] == v:
                    row[self.ei[k]] -= 1
            rows.append(row)
            rhs.append(self.value if v == self.source else 0.0)
        return np.array(rows).reshape(-1, self.m + self.n), np.array(rhs)

    def mode_lp(self, modes: dict[str, str]) -> np.ndarray | None:
        """Solve the linear feasibility problem for fixed edge modes; the solution vector or None."""
        nv = self.m + self.n
        A_eq, b_eq = self.conservation()
        eq_rows, eq_rhs = list(A_eq), list(b_eq)
        ub_rows, ub_rhs = [], []

        def vec(*pairs: tuple[int, float]) -> np.ndarray:
            r = np.zeros(nv)
            for idx, c in pairs:
                r[idx] += c
            return r

        src = np.zeros(nv)
        src[self.ni[self.source]] = 1
        eq_rows.append(src)
        eq_rhs.append(1.0)
        for k in self.edges:
            x, lv, lw, nu = self.ei[k], self.ni[self.tail[k]], self.ni[self.head[k]], self.nu[k]
            mode = modes[k]
            if mode == TIGHT_QUEUE or mode == TIGHT_FLOW:  # nu l_w = x
                eq_rows.append(vec((lw, nu), (x, -1.0)))
                eq_rhs.append(0.0)
                if mode == TIGHT_FLOW:  # x/nu >= l_v
                    ub_rows.append(vec((lv, nu), (x, -1.0)))
                    ub_rhs.append(0.0)
            elif mode == TIGHT_LABEL:  # l_w = l_v >= x/nu
                eq_rows.append(vec((lw, 1.0), (lv, -1.0)))
                eq_rhs.append(0.0)
                ub_rows.append(vec((x, 1.0), (lv, -nu)))
                ub_rhs.append(0.0)
            else:  # x = 0 and l_w <= rho(l_v, 0)
                eq_rows.append(vec((x, 1.0)))
                eq_rhs.append(0.0)
                if k in self.resetting:
                    ub_rows.append(vec((lw, 1.0)))
                    ub_rhs.append(0.0)
                else:
                    ub_rows.append(vec((lw, 1.0), (lv, -1.0)))
                    ub_rhs.append(0.0)
        res = linprog(
            np.zeros(nv),
            A_ub=np.array(ub_rows) if ub_rows else None,
            b_ub=np.array(ub_rhs) if ub_rhs else None,
            A_eq=np.array(eq_rows),
            b_eq=np.array(eq_rhs),
            bounds=[(0, None)] * nv,
            method="highs",
            options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
        )
        return res.x if res.status == 0 else None

    def result(self, sol: np.ndarray) -> ThinFlow:
        """Package a solution vector (x, l) as a :class:`ThinFlow` (tiny negative round-off clipped to 0)."""
        x = {k: max(0.0, float(sol[self.ei[k]])) for k in self.edges}
        labels = {v: max(0.0, float(sol[self.ni[v]])) for v in self.nodes}
        return ThinFlow(x, labels, frozenset(self.edges), frozenset(self.resetting), self.value, self.source, self.sink)

    def modes_from(self, sol: np.ndarray, tol: float = 1e-6) -> dict[str, str]:
        """Read the edge modes off an (approximate) solution."""
        modes = {}
        for k in self.edges:
            x, lv, lw = sol[self.ei[k]], sol[self.ni[self.tail[k]]], sol[self.ni[self.head[k]]]
            xr = x / self.nu[k]
            if k in self.resetting:
                modes[k] = TIGHT_QUEUE if abs(lw - xr) <= tol * self.M or x > tol else NOT_TIGHT
            elif abs(lw - max(lv, xr)) <= tol * self.M or x > tol:
                modes[k] = TIGHT_FLOW if xr > lv + tol * self.M else TIGHT_LABEL
            else:
                modes[k] = NOT_TIGHT
        return modes


@contextlib.contextmanager
def _silenced_stdout():
    """Silence file-descriptor-level stdout: HiGHS' MIP solver occasionally prints a debug line from C++,
    which would otherwise end up in notebook outputs."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _solve_milp(p: _Problem) -> np.ndarray:
    """The single MILP (thesis Method 2); returns the raw solution vector (x, l)."""
    nr = [k for k in p.edges if k not in p.resetting]
    zi = {k: 2 * p.m + p.n + i for i, k in enumerate(nr)}
    yi = {k: p.m + p.n + i for i, k in enumerate(p.edges)}
    nv = 2 * p.m + p.n + len(nr)
    big = 2 * p.M
    rows, lo, hi = [], [], []

    def add(coef: dict[int, float], lb: float, ub: float) -> None:
        r = np.zeros(nv)
        for i, c in coef.items():
            r[i] += c
        rows.append(r)
        lo.append(lb)
        hi.append(ub)

    A_eq, b_eq = p.conservation()
    for r, b in zip(A_eq, b_eq):
        rows.append(np.concatenate([r, np.zeros(nv - r.size)]))
        lo.append(b)
        hi.append(b)
    for k in p.edges:
        x, lv, lw, nu, y = p.ei[k], p.ni[p.tail[k]], p.ni[p.head[k]], p.nu[k], yi[k]
        add({x: 1.0, y: -p.value}, -np.inf, 0.0)  # flow only on tight edges
        if k in p.resetting:
            add({lw: 1.0, x: -1 / nu}, -np.inf, 0.0)  # l_w <= x/nu
            add({lw: 1.0, x: -1 / nu, y: -big}, -big, np.inf)  # tight => l_w >= x/nu
        else:
            z = zi[k]
            add({x: 1 / nu, lv: -1.0, z: -big}, -big, np.inf)  # z=1 => x/nu >= l_v
            add({lv: 1.0, x: -1 / nu, z: big}, 0.0, np.inf)  # z=0 => l_v >= x/nu
            add({lw: 1.0, lv: -1.0, z: -big}, -np.inf, 0.0)  # l_w <= l_v + big z
            add({lw: 1.0, x: -1 / nu, z: big}, -np.inf, big)  # l_w <= x/nu + big (1-z)
            add({lw: 1.0, lv: -1.0, y: -big}, -big, np.inf)  # tight => l_w >= l_v
            add({lw: 1.0, x: -1 / nu, y: -big}, -big, np.inf)  # tight => l_w >= x/nu
    for w in p.nodes:
        if w != p.source and p.incoming[w]:
            add({yi[k]: 1.0 for k in p.incoming[w]}, 1.0, np.inf)  # the minimum is attained
    lb = np.zeros(nv)
    ub = np.concatenate([np.full(p.m, p.value), np.full(p.n, p.M), np.ones(nv - p.m - p.n)])
    lb[p.ni[p.source]] = ub[p.ni[p.source]] = 1.0
    integrality = np.concatenate([np.zeros(p.m + p.n), np.ones(nv - p.m - p.n)])
    with _silenced_stdout():
        res = milp(
            np.zeros(nv),
            constraints=LinearConstraint(np.array(rows), lo, hi),
            integrality=integrality,
            bounds=Bounds(lb, ub),
        )
    if res.status != 0:
        raise RuntimeError(f"thin-flow MILP failed: {res.message}")
    return res.x[: p.m + p.n]


def _solve_enumerate(p: _Problem) -> np.ndarray:
    """Try every assignment of edge modes (exponential; tiny graphs only)."""
    options = {
        k: ([TIGHT_QUEUE, NOT_TIGHT] if k in p.resetting else [TIGHT_LABEL, TIGHT_FLOW, NOT_TIGHT]) for k in p.edges
    }
    for combo in itertools.product(*(options[k] for k in p.edges)):
        modes = dict(zip(p.edges, combo))
        if any(w != p.source and not any(modes[k] != NOT_TIGHT for k in p.incoming[w]) for w in p.nodes):
            continue
        sol = p.mode_lp(modes)
        if sol is not None:
            return sol
    raise RuntimeError("no thin flow found by enumeration (this contradicts the existence theorem)")


def _from_hint(p: _Problem, hint: ThinFlow, max_changed: int = 4) -> np.ndarray | None:
    """Try the edge modes of a neighbouring thin flow (the previous phase), varying only the edges whose
    status changed; a feasible mode assignment is *the* thin flow because the labels are unique."""
    vec = np.zeros(p.m + p.n)
    for k in p.edges:
        vec[p.ei[k]] = hint.x.get(k, 0.0)
    for v in p.nodes:
        vec[p.ni[v]] = hint.labels.get(v, 0.0)
    base = p.modes_from(vec)
    changed = [k for k in p.edges if k not in hint.active or (k in hint.resetting) != (k in p.resetting)]
    if len(changed) > max_changed:
        return None
    options = [[TIGHT_QUEUE, NOT_TIGHT] if k in p.resetting else [TIGHT_LABEL, TIGHT_FLOW, NOT_TIGHT] for k in changed]
    for combo in itertools.product(*options):
        modes = {**base, **dict(zip(changed, combo))}
        if any(w != p.source and p.incoming[w] and all(modes[k] == NOT_TIGHT for k in p.incoming[w]) for w in p.nodes):
            continue
        sol = p.mode_lp(modes)
        if sol is not None:
            return sol
    return None


def thin_flow(
    G: nx.MultiDiGraph,
    active: Iterable[str],
    resetting: Iterable[str],
    value: float,
    source: str | None = None,
    sink: str | None = None,
    method: str = "milp",
    tol: float = 1e-7,
    hint: ThinFlow | None = None,
) -> ThinFlow:
    """Compute a normalised thin flow with resetting on ``(E', E*)`` with flow value ``value`` (= u_0).

    ``method`` is ``"milp"`` (default) or ``"enumerate"``. With a ``hint`` (typically the thin flow of the
    previous phase) a few linear programs around the hint's edge modes are tried first; the MILP is
    solved only if none is feasible. The result is polished with the modes fixed and verified with
    :func:`check_thin_flow` (``RuntimeError`` if a condition fails by more than ``tol``).
    """
    source = source or G.graph["source"]
    sink = sink or G.graph["sink"]
    p = _Problem(G, active, resetting, value, source, sink)
    if not p.edges:
        return ThinFlow({}, {source: 1.0}, frozenset(), frozenset(), p.value, source, sink)
    raw = _from_hint(p, hint) if hint is not None else None
    if raw is not None:
        tf = p.result(raw)
        if not check_thin_flow(G, tf, tol):
            return tf
    raw = _solve_milp(p) if method == "milp" else _solve_enumerate(p)
    polished = p.mode_lp(p.modes_from(raw))
    tf = p.result(polished if polished is not None else raw)
    problems = check_thin_flow(G, tf, tol)
    if problems:
        raise RuntimeError("thin flow violates: " + "; ".join(problems[:5]))
    return tf


def check_thin_flow(G: nx.MultiDiGraph, tf: ThinFlow, tol: float = 1e-7) -> list[str]:
    """Every NTF condition that ``tf`` violates by more than ``tol`` (empty list: it is an NTF)."""
    emap = edge_map(G)
    out = []
    balance = {v: 0.0 for v in tf.labels}
    for k, x in tf.x.items():
        u, v, _ = emap[k]
        if x < -tol:
            out.append(f"negative flow on {k}")
        if k not in tf.active and x > tol:
            out.append(f"flow on inactive edge {k}")
        balance[u] = balance.get(u, 0.0) + x
        balance[v] = balance.get(v, 0.0) - x
    for v, b in balance.items():
        want = tf.value if v == tf.source else -tf.value if v == tf.sink else 0.0
        if abs(b - want) > tol:
            out.append(f"flow conservation at {v}: net outflow {b:.6g}, expected {want:.6g}")
    if abs(tf.labels[tf.source] - 1.0) > tol:
        out.append("l'_s != 1")
    for w, lw in tf.labels.items():
        if w == tf.source:
            continue
        if lw < -tol:
            out.append(f"negative label at {w}")
        vals = []
        for k in tf.active:
            u, v, d = emap[k]
            if v != w or u not in tf.labels:
                continue
            r = rho(tf.labels[u], tf.x[k], d["nu"], k in tf.resetting)
            vals.append(r)
            if tf.x[k] > tol and abs(lw - r) > tol:
                out.append(f"edge {k} carries flow but l'_{w} = {lw:.6g} != rho = {r:.6g}")
        if vals and abs(lw - min(vals)) > tol:
            out.append(f"l'_{w} = {lw:.6g} != min rho = {min(vals):.6g}")
    return out
