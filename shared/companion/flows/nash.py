"""Nash flows over time in the Vickrey point-queue model, phase by phase (the alpha-extension).

A Nash flow over time (dynamic equilibrium) with network inflow rate ``u_0`` is described by its
earliest-arrival labels ``l_v(theta)``: the time at which the particle that leaves the source at time
``theta`` reaches node ``v``. Koch & Skutella (2011) and Cominetti, Correa & Larré (2015) show that the
labels are piecewise linear and that their derivatives ``l'_v`` on each *phase* form a normalised thin
flow with resetting (:mod:`companion.flows.thin_flows`) on

    E'_theta = {e = (v,w) : l_w(theta) >= l_v(theta) + tau_e}   (current shortest-path network),
    E*_theta = {e = (v,w) : l_w(theta) >  l_v(theta) + tau_e}   (resetting edges = edges with a queue).

:func:`nash_flow_over_time` computes the phases: at ``theta_k`` it builds ``E'`` and ``E*`` (tolerance
1e-8, as NashFlowComputation), solves the thin flow, and extends the labels linearly,
``l_v(theta) = l_v(theta_k) + (theta - theta_k) l'_v``, as far as possible: until a queue would vanish
(an edge of E* would leave it) or an inactive edge would become shorter than the current routes,

    alpha_k = min( min_{e in E*, l'_w < l'_v} (l_w - l_v - tau_e) / (l'_v - l'_w),
                   min_{e not in E', l'_w > l'_v} (tau_e + l_v - l_w) / (l'_w - l'_v) ),

or the inflow rate changes. A phase with ``alpha_k = inf`` is the steady state.

From the phases, :class:`NashFlowOverTime` derives edge in- and outflows (a particle of phase k uses edge
e at rate ``x'_e`` per unit of theta; it enters at ``l_v(theta)`` and leaves at ``l_w(theta)``), cumulative
flows, queue sizes ``z_e(t) = F^+_e(t) - F^-_e(t + tau_e)`` (the queue a particle entering e at time t
finds, so its exit time is ``T_e(t) = t + z_e(t)/nu_e + tau_e``) and a path decomposition that turns the
equilibrium into fixed-route commodities for network loading and the packet simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import networkx as nx
import numpy as np
import pandas as pd

from .. import progress
from .network import Commodity, edge_map
from .piecewise import PiecewiseConstant, PiecewiseLinear
from .thin_flows import ThinFlow, check_thin_flow, thin_flow

INF = float("inf")


@dataclass(frozen=True)
class Phase:
    """One phase ``[start, end)`` of a Nash flow over time: labels at its start and its thin flow."""

    start: float
    end: float
    labels: dict[str, float]
    thin_flow: ThinFlow

    @property
    def derivatives(self) -> dict[str, float]:
        """``l'_v`` for every node (the thin-flow labels)."""
        return self.thin_flow.labels


def free_flow_labels(G: nx.MultiDiGraph, source: str) -> dict[str, float]:
    """Shortest transit-time distances from ``source``: the labels ``l_v(0)`` of the empty network."""
    return dict(
        nx.single_source_dijkstra_path_length(G, source, weight=lambda u, v, d: min(dd["tau"] for dd in d.values()))
    )


class NashFlowOverTime:
    """The result of :func:`nash_flow_over_time`: phases plus everything derived from them.

    Valid for departure times ``theta < valid_until`` (``inf`` once the steady state is reached).
    """

    def __init__(self, G: nx.MultiDiGraph, phases: list[Phase]):
        self.G, self.phases = G, phases
        self.source, self.sink = G.graph["source"], G.graph["sink"]
        self.inflow: PiecewiseConstant = G.graph["inflow"]
        self.valid_until = phases[-1].end
        self._emap = edge_map(G)

    # -- labels ------------------------------------------------------------------------------------
    def _points(self, values) -> tuple[np.ndarray, np.ndarray]:
        xs = [p.start for p in self.phases]
        ys = [values(p, p.start) for p in self.phases]
        if math.isfinite(self.valid_until):
            xs.append(self.valid_until)
            last = self.phases[-1]
            ys.append(values(last, last.end))
        return np.array(xs), np.array(ys)

    @cached_property
    def _labels(self) -> dict[str, PiecewiseLinear]:
        out = {}
        for v in self.phases[0].labels:
            x, y = self._points(lambda p, th, v=v: p.labels[v] + (th - p.start) * p.derivatives.get(v, 0.0))
            out[v] = PiecewiseLinear(x, y, self.phases[-1].derivatives.get(v, 0.0))
        return out

    def label_function(self, v: str) -> PiecewiseLinear:
        """``theta -> l_v(theta)`` as an exact piecewise-linear function."""
        return self._labels[v]

    def label(self, v: str, theta):
        """Earliest arrival time ``l_v(theta)`` at node ``v`` of the particle leaving the source at ``theta``."""
        return self._labels[v](theta)

    def arrival_time(self, theta):
        """``l_t(theta)``: arrival time at the sink."""
        return self.label(self.sink, theta)

    def travel_time(self, theta):
        """``l_t(theta) - theta``: the equilibrium travel time of a particle departing at ``theta``."""
        return self.arrival_time(theta) - np.asarray(theta, dtype=float)

    # -- edge flows --------------------------------------------------------------------------------
    @cached_property
    def _volume(self) -> dict[str, PiecewiseLinear]:
        """``theta -> X_e(theta)``: volume of the particles departing before theta that use edge e."""
        out = {}
        for k in self._emap:
            starts = np.array([p.start for p in self.phases])
            rates = np.array([p.thin_flow.x.get(k, 0.0) for p in self.phases])
            lengths = np.diff(np.append(starts, self.valid_until))
            cum = np.concatenate([[0.0], np.cumsum(rates[:-1] * lengths[:-1])])
            xs, ys = starts, cum
            if math.isfinite(self.valid_until):
                xs, ys = np.append(xs, self.valid_until), np.append(ys, cum[-1] + rates[-1] * lengths[-1])
            out[k] = PiecewiseLinear(xs, ys, rates[-1])
        return out

    def _cumulative(self, k: str, node: str) -> PiecewiseLinear:
        if node not in self.phases[0].labels:  # edge never reachable from the source
            return PiecewiseLinear([0.0], [0.0])
        lab = self._labels[node]
        vol = self._volume[k]
        xs = np.union1d(lab.x, vol.x)
        t, y = lab(xs), vol(xs)
        last = self.phases[-1]
        d = last.derivatives.get(node, 0.0)
        slope = last.thin_flow.x.get(k, 0.0) / d if d > 0 else 0.0
        return PiecewiseLinear(t, y, slope)

    @cached_property
    def _inflows(self) -> dict[str, PiecewiseLinear]:
        return {k: self._cumulative(k, u) for k, (u, v, _) in self._emap.items()}

    @cached_property
    def _outflows(self) -> dict[str, PiecewiseLinear]:
        return {k: self._cumulative(k, v) for k, (u, v, _) in self._emap.items()}

    def cumulative_inflow(self, edge: str) -> PiecewiseLinear:
        """``t -> F^+_e(t)``: flow volume that has entered edge ``e`` by time t."""
        return self._inflows[edge]

    def cumulative_outflow(self, edge: str) -> PiecewiseLinear:
        """``t -> F^-_e(t)``: flow volume that has left edge ``e`` by time t."""
        return self._outflows[edge]

    def inflow_rate(self, edge: str) -> PiecewiseConstant:
        """``f^+_e``: inflow rate of edge ``e`` (``x'_e / l'_v`` on ``[l_v(theta_k), l_v(theta_{k+1}))``)."""
        return self._inflows[edge].derivative()

    def outflow_rate(self, edge: str) -> PiecewiseConstant:
        """``f^-_e``: outflow rate of edge ``e`` (``x'_e / l'_w`` on ``[l_w(theta_k), l_w(theta_{k+1}))``)."""
        return self._outflows[edge].derivative()

    def queue(self, edge: str, t):
        """``z_e(t) = F^+_e(t) - F^-_e(t + tau_e)``: the queue a particle entering ``e`` at time t waits behind."""
        tau = self._emap[edge][2]["tau"]
        t = np.asarray(t, dtype=float)
        return self._inflows[edge](t) - self._outflows[edge](t + tau)

    def exit_time(self, edge: str, t):
        """``T_e(t) = t + z_e(t)/nu_e + tau_e``."""
        d = self._emap[edge][2]
        t = np.asarray(t, dtype=float)
        return t + self.queue(edge, t) / d["nu"] + d["tau"]

    # -- summaries ---------------------------------------------------------------------------------
    def phase_table(self, digits: int = 6) -> pd.DataFrame:
        """One row per phase: start/end, ``l_t`` at the start, ``l'_t``, the thin flow and the resetting edges.

        Flow values are shown as fractions with denominators up to 100 (exact for the reference instances).
        """

        def frac(x: float) -> str:
            f = Fraction(x).limit_denominator(100)
            return str(f) if abs(float(f) - x) < 1e-9 else f"{x:.{digits}g}"

        rows = []
        for i, p in enumerate(self.phases):
            rows.append(
                {
                    "phase": i + 1,
                    "theta_start": round(p.start, digits),
                    "theta_end": round(p.end, digits),
                    "l_t_start": round(p.labels[self.sink], digits),
                    "l'_t": frac(p.derivatives[self.sink]),
                    "thin flow x'": ", ".join(f"{k} {frac(x)}" for k, x in p.thin_flow.x.items() if x > 1e-9),
                    "resetting E*": ", ".join(sorted(p.thin_flow.resetting)) or "-",
                }
            )
        return pd.DataFrame(rows)

    def path_commodities(self, until: float | None = None, tol: float = 1e-9) -> list[Commodity]:
        """Decompose the equilibrium into fixed-route commodities (one per s-t path that carries flow).

        In each phase the thin flow x' (an acyclic s-t flow of value u_0) is split into paths; the path's
        departure rate in that phase is its share of x'. Departures stop at ``until`` (default: the end of
        the computed phases). Loading these commodities reproduces the Nash flow (a test checks it).
        """
        until = self.valid_until if until is None else until
        if not math.isfinite(until):
            raise ValueError("give a finite `until` for a Nash flow that reaches its steady state")
        rates: dict[tuple[str, ...], dict[int, float]] = {}
        for i, p in enumerate(self.phases):
            if p.start >= until:
                break
            rest = {k: x for k, x in p.thin_flow.x.items() if x > tol}
            while True:
                out = [k for k in rest if self._emap[k][0] == self.source]
                if not out:
                    break
                path, node = [], self.source
                while node != self.sink:
                    cand = [k for k in rest if self._emap[k][0] == node]
                    k = max(cand, key=lambda e: rest[e])
                    path.append(k)
                    node = self._emap[k][1]
                amount = min(rest[k] for k in path)
                for k in path:
                    rest[k] -= amount
                    if rest[k] <= tol:
                        del rest[k]
                rates.setdefault(tuple(path), {})
                rates[tuple(path)][i] = rates[tuple(path)].get(i, 0.0) + amount
        commodities = []
        for j, (path, by_phase) in enumerate(sorted(rates.items(), key=lambda kv: min(kv[1]))):
            times, values = [], []
            for i, p in enumerate(self.phases):
                if p.start >= until:
                    break
                times.append(p.start)
                values.append(by_phase.get(i, 0.0))
            times.append(until)
            values.append(0.0)
            commodities.append(Commodity(f"P{j + 1}", path, PiecewiseConstant(times, values)))
        return commodities

    def check(self, tol: float = 1e-6, samples: int = 5) -> list[str]:
        """Verify the equilibrium: thin-flow conditions per phase and, at sample times in every phase,
        ``l_w <= T_e(l_v)`` for all edges with equality on used edges, queues >= 0 and queue = nu * slack on
        active edges. Returns the violations (empty list: all hold)."""
        out = []
        for i, p in enumerate(self.phases):
            out += [f"phase {i + 1}: {m}" for m in check_thin_flow(self.G, p.thin_flow, tol)]
            end = p.end if math.isfinite(p.end) else p.start + 10.0
            for th in np.linspace(p.start, end, samples + 2)[1:-1]:
                for k, (v, w, d) in self._emap.items():
                    if v not in p.labels:
                        continue
                    lv, lw = self.label(v, th), self.label(w, th)
                    z = float(self.queue(k, lv))
                    if z < -tol:
                        out.append(f"negative queue on {k} at theta={th:.4g}")
                    T = lv + z / d["nu"] + d["tau"]
                    if lw > T + tol:
                        out.append(f"l_{w} > T_{k}(l_{v}) at theta={th:.4g}")
                    if p.thin_flow.x.get(k, 0.0) > tol and abs(lw - T) > tol:
                        out.append(f"used edge {k} not on a shortest path at theta={th:.4g}")
        return out


def nash_flow_over_time(
    G: nx.MultiDiGraph,
    horizon: float = INF,
    method: str = "milp",
    tol: float = 1e-8,
    max_phases: int = 10_000,
    warm_start: bool = True,
    show_progress: bool = False,
) -> NashFlowOverTime:
    """Compute the Nash flow over time of ``G`` (graph attributes ``source``, ``sink``, ``inflow``) phase by
    phase until the steady state or until the phase containing ``horizon`` ends.

    ``method`` selects the thin-flow solver (``"milp"`` or ``"enumerate"``); ``tol`` is the tolerance of the
    label comparisons that define E' and E*. With ``warm_start`` each phase first tries linear programs
    around the previous phase's thin flow (only the edges whose status changed are varied) and falls back
    to the solver when none fits; the result is the same because the thin-flow labels are unique.
    """
    s, t, u = G.graph["source"], G.graph["sink"], G.graph["inflow"]
    if u is None:
        raise ValueError("the network has no inflow rate (graph attribute 'inflow')")
    emap = edge_map(G)
    labels = free_flow_labels(G, s)
    if t not in labels:
        raise ValueError(f"sink {t!r} is not reachable from source {s!r}")
    theta, phases = 0.0, []
    bar = progress(total=None, desc="phases") if show_progress else None
    while theta < horizon and len(phases) < max_phases:
        slack = {k: labels[w] - labels[v] - d["tau"] for k, (v, w, d) in emap.items() if v in labels}
        active = {k for k, sl in slack.items() if sl >= -tol}
        resetting = {k for k, sl in slack.items() if sl > tol}
        tf = thin_flow(
            G,
            active,
            resetting,
            float(u(theta)),
            s,
            t,
            method,
            hint=phases[-1].thin_flow if (phases and warm_start) else None,
        )
        lp = tf.labels
        alpha = u.next_breakpoint(theta) - theta
        for k, sl in slack.items():
            v, w, _ = emap[k]
            dl = lp[w] - lp[v]
            if k in resetting and dl < -1e-12:
                alpha = min(alpha, sl / -dl)  # the queue on k runs empty
            elif k not in active and dl > 1e-12:
                alpha = min(alpha, -sl / dl)  # k becomes a shortest path
        phases.append(Phase(theta, theta + alpha, dict(labels), tf))
        if bar is not None:
            bar.update(1)
        if math.isinf(alpha):
            break
        labels = {v: labels[v] + alpha * lp.get(v, 0.0) for v in labels}
        theta += alpha
    if bar is not None:
        bar.close()
    return NashFlowOverTime(G, phases)
