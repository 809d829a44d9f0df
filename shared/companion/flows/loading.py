"""Continuous network loading for fixed routes: a multi-commodity flow over time with point queues.

Each commodity sends flow along a fixed path at a piecewise-constant departure rate. Every edge
``e`` is a Vickrey point queue: flow entering at time ``t`` waits ``z_e(t)/nu_e`` and then travels
``tau_e``, so it leaves at ``T_e(t) = t + z_e(t)/nu_e + tau_e``; the queue grows at rate
``f^+_e(t) - nu_e`` while it is positive (or while the inflow exceeds the capacity) and the edge is FIFO
across commodities: the commodity mix of the outflow at time ``T_e(t)`` is the mix of the inflow at ``t``.
This is the continuous reference of the packet simulation (the role of the multi-commodity tool of
Zimmer, 2020, in the paper's experiments).

Because all inflows are piecewise constant, the loading is exact: queues are piecewise linear, exit
times piecewise linear, rates piecewise constant. The network is processed in time windows of length
``min_e tau_e``: the outflow of an edge during a window depends only on its inflow before the window
started, so windows are solved one after another without iteration, and networks with cycles are fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import networkx as nx
import numpy as np

from .network import Commodity, edge_map
from .piecewise import PiecewiseLinear

EPS = 1e-12


@dataclass
class _EdgeState:
    tau: float
    nu: float
    z: float = 0.0  # queue at the end of the processed time
    inflow: list = field(default_factory=list)  # contiguous pieces (a, b, rates per commodity)
    outflow: list = field(default_factory=list)  # pieces (a, b, rates); contiguous up to zero-rate gaps
    queue_pts: list = field(default_factory=lambda: [(0.0, 0.0)])


class FlowLoading:
    """Result of :func:`network_loading`: exact edge flows, queues, exit and travel times."""

    def __init__(self, G: nx.MultiDiGraph, commodities: Sequence[Commodity], states: dict[str, _EdgeState], end: float):
        self.G, self.commodities, self._s, self.end = G, list(commodities), states, end
        self._index = {c.name: i for i, c in enumerate(self.commodities)}

    def _ci(self, commodity: str | int | None) -> int | None:
        if commodity is None or isinstance(commodity, int):
            return commodity
        return self._index[commodity]

    @staticmethod
    def _cumulative(pieces: list, i: int | None) -> PiecewiseLinear:
        xs, ys, total = [0.0], [0.0], 0.0
        for a, b, g in sorted(pieces, key=lambda p: p[0]):
            r = float(g.sum() if i is None else g[i])
            if a > xs[-1] + EPS:
                xs.append(a)
                ys.append(total)
            total += r * (b - a)
            xs.append(b)
            ys.append(total)
        order = np.argsort(xs, kind="stable")
        return PiecewiseLinear(np.array(xs)[order], np.array(ys)[order])

    def cumulative_inflow(self, edge: str, commodity: str | int | None = None) -> PiecewiseLinear:
        """``t -> F^+_e(t)`` (of one commodity, or all together)."""
        return self._cumulative(self._s[edge].inflow, self._ci(commodity))

    def cumulative_outflow(self, edge: str, commodity: str | int | None = None) -> PiecewiseLinear:
        """``t -> F^-_e(t)`` (of one commodity, or all together)."""
        return self._cumulative(self._s[edge].outflow, self._ci(commodity))

    def queue_function(self, edge: str) -> PiecewiseLinear:
        """``t -> z_e(t)``: the queue a particle entering ``e`` at time t finds."""
        pts = np.array(self._s[edge].queue_pts)
        return PiecewiseLinear(pts[:, 0], pts[:, 1])

    def queue(self, edge: str, t):
        """``z_e(t)`` (see :meth:`queue_function`)."""
        return self.queue_function(edge)(t)

    def exit_time(self, edge: str, t):
        """``T_e(t) = t + z_e(t)/nu_e + tau_e``."""
        st = self._s[edge]
        t = np.asarray(t, dtype=float)
        return t + self.queue(edge, t) / st.nu + st.tau

    def arrival_time(self, commodity: str | int, theta):
        """Arrival time at the end of the commodity's path of a particle departing at ``theta``."""
        c = self.commodities[self._ci(commodity)]
        t = np.asarray(theta, dtype=float)
        for k in c.path:
            t = self.exit_time(k, t)
        return t

    def travel_time(self, commodity: str | int, theta):
        """Path travel time of the commodity as a function of the departure time."""
        return self.arrival_time(commodity, theta) - np.asarray(theta, dtype=float)


def _merge(pieces: list, lo: float, hi: float, K: int) -> list:
    """Sum overlapping pieces into contiguous pieces covering ``[lo, hi)`` (zero rate where nothing flows)."""
    cuts = {lo, hi}
    for a, b, _ in pieces:
        cuts.update(x for x in (a, b) if lo < x < hi)
    cuts = sorted(cuts)
    merged_cuts = [cuts[0]]
    for x in cuts[1:]:
        if x - merged_cuts[-1] > EPS:
            merged_cuts.append(x)
    merged_cuts[-1] = hi
    out = []
    for a, b in zip(merged_cuts[:-1], merged_cuts[1:]):
        mid = 0.5 * (a + b)
        g = np.zeros(K)
        for pa, pb, pg in pieces:
            if pa <= mid < pb:
                g = g + pg
        out.append((a, b, g))
    return out


def _process(st: _EdgeState, a: float, b: float, g: np.ndarray) -> list:
    """Advance one edge over an inflow piece; returns the outflow pieces it produces."""
    f, nu, tau, z = float(g.sum()), st.nu, st.tau, st.z
    st.inflow.append((a, b, g))
    out = []
    if z <= EPS and f <= nu + EPS:  # free flow
        st.z = 0.0
        if f > 0:
            out.append((a + tau, b + tau, g))
        st.queue_pts.append((b, 0.0))
    elif f >= nu:  # queue grows (or stays)
        zb = z + (f - nu) * (b - a)
        ta, tb = a + z / nu + tau, b + zb / nu + tau
        out.append((ta, tb, g * (b - a) / (tb - ta)))
        st.z = zb
        st.queue_pts.append((b, zb))
    else:  # queue drains at rate nu - f
        tstar = a + z / (nu - f)
        if tstar >= b - EPS:
            zb = max(0.0, z - (nu - f) * (b - a))
            if f > 0:
                out.append((a + z / nu + tau, b + zb / nu + tau, g * nu / f))
            st.z = zb
            st.queue_pts.append((b, zb))
        else:
            if f > 0:
                out.append((a + z / nu + tau, tstar + tau, g * nu / f))
                out.append((tstar + tau, b + tau, g))
            st.z = 0.0
            st.queue_pts.append((tstar, 0.0))
            st.queue_pts.append((b, 0.0))
    return [p for p in out if p[1] - p[0] > EPS]


def network_loading(
    G: nx.MultiDiGraph, commodities: Sequence[Commodity] | None = None, horizon: float | None = None
) -> FlowLoading:
    """Load fixed-route commodities (default: ``G.graph["commodities"]``) onto ``G`` exactly.

    Runs until every commodity has stopped departing and all queues are empty, or until ``horizon``.
    """
    commodities = list(commodities if commodities is not None else G.graph["commodities"])
    if not commodities:
        raise ValueError("no commodities to load")
    emap = edge_map(G)
    K = len(commodities)
    states = {k: _EdgeState(float(d["tau"]), float(d["nu"])) for k, (_, _, d) in emap.items()}
    nxt: dict[tuple[str, int], str | None] = {}
    pending: dict[str, list] = {k: [] for k in emap}
    last_departure = 0.0
    for i, c in enumerate(commodities):
        for j, k in enumerate(c.path):
            nxt[(k, i)] = c.path[j + 1] if j + 1 < len(c.path) else None
        if c.inflow.end == float("inf") and horizon is None:
            raise ValueError(f"commodity {c.name} never stops departing; give a horizon")
        times = np.append(c.inflow.times, c.inflow.end if c.inflow.end < float("inf") else horizon)
        for a, b, r in zip(times[:-1], times[1:], c.inflow.values):
            if r > 0 and b > a:
                vec = np.zeros(K)
                vec[i] = r
                pending[c.path[0]].append((float(a), float(b), vec))
        last_departure = max(last_departure, float(times[-1]))
    used = {k for c in commodities for k in c.path}
    delta = min(states[k].tau for k in used)
    w0 = 0.0
    while True:
        w1 = w0 + delta
        for k in emap:
            if k not in used:
                continue
            now, later = [], []
            for a, b, g in pending[k]:
                if a < w1 - EPS:
                    now.append((a, min(b, w1), g))
                    if b > w1 + EPS:
                        later.append((w1, b, g))
                else:
                    later.append((a, b, g))
            pending[k] = later
            st = states[k]
            if not now and st.z <= EPS:
                st.inflow.append((w0, w1, np.zeros(K)))
                st.queue_pts.append((w1, 0.0))
                continue
            for a, b, g in _merge(now, w0, w1, K):
                for oa, ob, og in _process(st, a, b, g):
                    targets: dict[str, np.ndarray] = {}
                    for i in np.flatnonzero(og > 0):
                        n = nxt[(k, int(i))]
                        if n is not None:
                            targets.setdefault(n, np.zeros(K))[i] = og[i]
                    for n, vec in targets.items():
                        pending[n].append((oa, ob, vec))
                    st.outflow.append((oa, ob, og))
        w0 = w1
        done = w0 >= last_departure and all(not p for p in pending.values()) and all(states[k].z <= EPS for k in used)
        if done or (horizon is not None and w0 >= horizon):
            break
    return FlowLoading(G, commodities, states, w0)
