"""A packet-based queue simulation in the style of MATSim's ``QueueWithBuffer`` / ``QNode``.

Time advances in steps of length ``alpha``; every vehicle (packet) carries ``beta`` units of flow. In
flow units a link ``e`` may release ``c_e = nu_e * alpha / beta`` vehicles per step and hold
``storage_e / beta`` vehicles; a commodity with departure rate ``r`` releases ``r * alpha / beta`` vehicles
per step. One step, in MATSim's order (nodes first, then links):

1. **Nodes.** Every node looks at its incoming links whose *buffer* is non-empty and serves them in
   random order weighted by capacity (``node_order="random"``, MATSim's rule) or in a fixed priority
   order (``"fixed"``: edge insertion order). A served link's buffer is emptied as far as possible: the
   head vehicle moves to the next link of its route if that link's used storage is below its storage
   capacity (otherwise the link waits: spillback), or leaves the network if its route ends here.
2. **Departures.** Vehicles whose departure falls in this step enter the first link of their route (FIFO
   waiting list if that link is full).
3. **Links.** The *flow accumulator* refills by ``c_e`` and is capped at ``c_e``; while it is positive,
   the head of the FIFO link queue has reached its earliest exit time and the buffer (capacity
   ``ceil(c_e)``) has room, the head vehicle moves into the buffer and the accumulator drops by one
   vehicle (it may become negative). Fractional capacities are thus met on average.

A vehicle entering link ``e`` at step ``k`` has earliest exit step ``k + ceil(tau_e/alpha) - 1`` with the
default ``correction=True`` and leaves the link (node phase) one step later, i.e. after exactly ``tau_e``.
Without the correction (MATSim's plain rule, earliest exit ``k + tau_e/alpha``) each node hand-off adds one
step, a bias of ``alpha`` per link.

Departures are mass-based: the vehicles released in step k are those whose volume
``[m beta, (m+1) beta)`` is completed by the commodity's cumulative departures at ``(k+1) alpha``; they
represent the particles departing in ``[k alpha, (k+1) alpha)``. Two deliberate differences from MATSim:
vehicles enter their first link at its tail (the continuous model has no "start at the link's end"), and
vehicles at the end of their route still need the last link's flow capacity to leave (the last edge of
a continuous path has a capacity too).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np

from .. import progress
from .network import Commodity, edge_map

INF = float("inf")


@dataclass
class SimulationResult:
    """Vehicle trajectories of one packet simulation, with flow-unit views for the comparison.

    Times are in the network's time unit (step index times ``alpha``). ``hop_*`` arrays hold one row per
    (vehicle, link) pair: the link index, the entry time and the exit time (``nan`` if never left).
    """

    G: nx.MultiDiGraph
    commodities: list[Commodity]
    alpha: float
    beta: float
    edges: list[str]
    veh_commodity: np.ndarray
    veh_departure: np.ndarray
    veh_arrival: np.ndarray
    hop_vehicle: np.ndarray
    hop_edge: np.ndarray
    hop_entry: np.ndarray
    hop_exit: np.ndarray
    steps: int

    @property
    def n_vehicles(self) -> int:
        """Number of simulated vehicles (packets)."""
        return int(self.veh_commodity.size)

    def commodity_index(self, commodity: str | int) -> int:
        """Position of a commodity given by name (or already by index) in ``commodities``."""
        if isinstance(commodity, int):
            return commodity
        return [c.name for c in self.commodities].index(commodity)

    def travel_times(self, commodity: str | int) -> tuple[np.ndarray, np.ndarray]:
        """(departure times, travel times) of the commodity's vehicles that arrived."""
        m = (self.veh_commodity == self.commodity_index(commodity)) & np.isfinite(self.veh_arrival)
        return self.veh_departure[m], self.veh_arrival[m] - self.veh_departure[m]

    def _times(self, edge: str, which: str, commodity: str | int | None) -> np.ndarray:
        m = self.hop_edge == self.edges.index(edge)
        if commodity is not None:
            m &= self.veh_commodity[self.hop_vehicle] == self.commodity_index(commodity)
        t = (self.hop_entry if which == "in" else self.hop_exit)[m]
        return np.sort(t[np.isfinite(t)])

    def cumulative_inflow(self, edge: str, t, commodity: str | int | None = None) -> np.ndarray:
        """``beta`` times the number of vehicles that entered ``edge`` strictly before time t.

        Vehicles entering in step k stand for the flow entering during ``[k alpha, (k+1) alpha)``, so
        counting strictly earlier entries compares with the continuous ``F^+_e(t)`` at step times.
        """
        return self.beta * np.searchsorted(self._times(edge, "in", commodity), np.asarray(t, float), side="left")

    def cumulative_outflow(self, edge: str, t, commodity: str | int | None = None) -> np.ndarray:
        """``beta`` times the number of vehicles that left ``edge`` strictly before time t."""
        return self.beta * np.searchsorted(self._times(edge, "out", commodity), np.asarray(t, float), side="left")

    def queue(self, edge: str, t) -> np.ndarray:
        """``F^+_e(t) - F^-_e(t + tau_e)`` in flow units: the same definition as the continuous ``z_e(t)``."""
        tau = edge_map(self.G)[edge][2]["tau"]
        t = np.asarray(t, float)
        return self.cumulative_inflow(edge, t) - self.cumulative_outflow(edge, t + tau)

    def step_rates(
        self, edge: str, which: str = "out", commodity: str | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(step start times, flow rate per step): ``beta * (vehicles entering/leaving in step k) / alpha``."""
        t = self._times(edge, "in" if which == "in" else "out", commodity)
        k = np.rint(t / self.alpha).astype(int)
        counts = np.bincount(k, minlength=self.steps + 1)
        return np.arange(counts.size) * self.alpha, counts * self.beta / self.alpha


def _departure_counts(c: Commodity, alpha: float, beta: float) -> tuple[int, np.ndarray]:
    """(first step, vehicles released per step) for a commodity with finite volume."""
    if c.inflow.end == INF:
        raise ValueError(f"commodity {c.name} never stops departing")
    R = c.inflow.integral()
    k0 = int(math.floor(c.inflow.times[0] / alpha + 1e-9))
    k1 = int(math.ceil(c.inflow.end / alpha - 1e-9))
    ks = np.arange(k0, k1 + 1)
    vol = R(ks * alpha) / beta  # volume completed by the start of each step
    cum = np.floor(vol * (1 + 1e-12) + 1e-9).astype(np.int64)
    return k0, np.diff(cum)


def simulate(
    G: nx.MultiDiGraph,
    commodities: Sequence[Commodity] | None = None,
    alpha: float = 0.1,
    beta: float | None = None,
    correction: bool = True,
    node_order: str = "random",
    seed: int = 0,
    max_steps: int | None = None,
    show_progress: bool = False,
) -> SimulationResult:
    """Run the packet simulation of the module docstring (``beta`` defaults to ``alpha**2``).

    ``commodities`` default to ``G.graph["commodities"]``; edge attribute ``storage`` (flow units, ``inf``
    by default) bounds how many vehicles a link holds. Stops when every vehicle has arrived or after
    ``max_steps`` steps.
    """
    if node_order not in ("random", "fixed"):
        raise ValueError("node_order must be 'random' or 'fixed'")
    beta = alpha**2 if beta is None else beta
    commodities = list(commodities if commodities is not None else G.graph["commodities"])
    emap = edge_map(G)
    keys = list(emap)
    eidx = {k: i for i, k in enumerate(keys)}
    E = len(keys)
    tau = np.array([emap[k][2]["tau"] for k in keys])
    nu = np.array([emap[k][2]["nu"] for k in keys])
    T = np.maximum(1, np.ceil(tau / alpha - 1e-9)).astype(int)
    delay = (T - 1 if correction else T).tolist()
    # Rounded to 9 significant digits so that e.g. 2 / 0.025 is exactly 80 vehicles per step.
    cap = [float(f"{x:.9g}") for x in nu * alpha / beta]
    buf_cap = [max(1, math.ceil(x - 1e-9)) for x in cap]
    storage = []
    for i, k in enumerate(keys):
        s = emap[k][2].get("storage", INF)
        # MATSim raises the storage to hold at least one step's flow and a free-flowing link at capacity.
        storage.append(INF if s == INF else max(s / beta, cap[i], T[i] * cap[i]))

    paths = [[eidx[k] for k in c.path] for c in commodities]
    # Vehicles in departure order; hop records laid out per vehicle.
    dep_step, veh_com = [], []
    first_step = {}
    for ci, c in enumerate(commodities):
        k0, counts = _departure_counts(c, alpha, beta)
        first_step[ci] = k0
        for j, n in enumerate(counts):
            dep_step.extend([k0 + j] * int(n))
            veh_com.extend([ci] * int(n))
    order = np.lexsort((np.array(veh_com), np.array(dep_step))) if dep_step else np.array([], int)
    dep_step = np.array(dep_step, dtype=np.int64)[order]
    veh_com = np.array(veh_com, dtype=np.int64)[order]
    N = dep_step.size
    plen = np.array([len(paths[c]) for c in veh_com], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(plen)[:-1]]).astype(np.int64)
    H = int(plen.sum())
    hop_entry = [-1] * H
    hop_exit = [-1] * H
    arrival = [-1] * N
    hop = [0] * N
    veh_paths = [paths[c] for c in veh_com.tolist()]
    offs = offset.tolist()

    heads = {}
    for i, k in enumerate(keys):
        heads.setdefault(emap[k][1], []).append(i)
    node_inlinks = [heads[v] for v in sorted(heads)]
    node_weights = [np.array([nu[i] for i in links]) for links in node_inlinks]
    rng = np.random.default_rng(seed)

    queues = [deque() for _ in range(E)]  # (earliest exit step, vehicle)
    buffers = [deque() for _ in range(E)]
    used = [0] * E
    acc = list(cap)
    last = [-1] * E
    waiting = [deque() for _ in range(E)]  # departed vehicles waiting for storage on their first link
    dep_list = dep_step.tolist()
    next_dep = 0
    arrived = 0
    limit = max_steps if max_steps is not None else 10**9
    k = 0
    bar = progress(total=N, desc=f"simulate alpha={alpha:g}") if show_progress else None
    while arrived < N and k < limit:
        # 1. nodes
        for links, w in zip(node_inlinks, node_weights):
            offering = [j for j in range(len(links)) if buffers[links[j]]]
            if not offering:
                continue
            if len(offering) > 1 and node_order == "random":
                p = w[offering] / w[offering].sum()
                offering = [offering[j] for j in rng.choice(len(offering), len(offering), replace=False, p=p)]
            for j in offering:
                e = links[j]
                buf = buffers[e]
                while buf:
                    v = buf[0]
                    h = hop[v]
                    path = veh_paths[v]
                    if h == len(path) - 1:
                        buf.popleft()
                        used[e] -= 1
                        hop_exit[offs[v] + h] = k
                        arrival[v] = k
                        arrived += 1
                        continue
                    n = path[h + 1]
                    if used[n] >= storage[n]:
                        break
                    buf.popleft()
                    used[e] -= 1
                    used[n] += 1
                    hop_exit[offs[v] + h] = k
                    hop[v] = h + 1
                    hop_entry[offs[v] + h + 1] = k
                    queues[n].append((k + delay[n], v))
        # 2. departures
        while next_dep < N and dep_list[next_dep] == k:
            v = next_dep
            waiting[veh_paths[v][0]].append(v)
            next_dep += 1
        for e in range(E):
            wl = waiting[e]
            while wl and used[e] < storage[e]:
                v = wl.popleft()
                used[e] += 1
                hop_entry[offs[v]] = k
                queues[e].append((k + delay[e], v))
        # 3. links
        for e in range(E):
            q = queues[e]
            if not q or q[0][0] > k:
                continue
            a = min(acc[e] + (k - last[e]) * cap[e], cap[e])
            last[e] = k
            buf = buffers[e]
            bc = buf_cap[e]
            while q and q[0][0] <= k and a > 1e-9 and len(buf) < bc:
                buf.append(q.popleft()[1])
                a -= 1.0
            acc[e] = a
        if bar is not None and k % 100 == 0:
            bar.n = arrived
            bar.refresh()
        k += 1
    if bar is not None:
        bar.close()

    def times(lst):
        arr = np.array(lst, dtype=float)
        arr[arr < 0] = np.nan
        return arr * alpha

    hop_vehicle = np.repeat(np.arange(N), plen)
    hop_edge = np.array([e for v in range(N) for e in veh_paths[v]], dtype=np.int64)
    return SimulationResult(
        G,
        commodities,
        alpha,
        beta,
        keys,
        veh_com,
        dep_step * alpha,
        times(arrival),
        hop_vehicle,
        hop_edge,
        times(hop_entry),
        times(hop_exit),
        k,
    )
