"""Distances between a packet simulation and its continuous limit.

Three kinds of functions are compared, each with a sup distance and an L1 distance:

* **travel times** as a function of the departure time: vehicle ``m`` of a commodity departs in step
  ``k`` (time ``theta_m = k alpha``) and its simulated travel time is compared with the continuous
  ``tau(theta_m)``; every vehicle stands for ``beta / r(theta_m)`` units of departure time (``r`` the
  departure rate), which turns the sum of absolute errors into the integral ``int |TT_sim - TT| dtheta``;
* **queues** ``z_e(t) = F^+_e(t) - F^-_e(t + tau_e)`` in flow units at every step time, L1 by the step
  length;
* **flow rates** per step: ``beta`` times the vehicles leaving (or entering) an edge in step ``k``, divided
  by ``alpha``, against the continuous average rate over ``[k alpha, (k+1) alpha)``. This is the flow over
  time itself, not its integral, and the quantity on which the two refinements ``beta = alpha`` and
  ``beta = alpha^2`` differ (chapter notebook 3).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .loading import FlowLoading
from .nash import NashFlowOverTime
from .network import edge_map
from .packet import SimulationResult

Reference = FlowLoading | NashFlowOverTime


def _reference_travel_time(reference: Reference, sim: SimulationResult, ci: int) -> Callable:
    if isinstance(reference, FlowLoading):
        name = sim.commodities[ci].name
        return lambda th: reference.travel_time(name, th)
    return reference.travel_time


def travel_time_distance(sim: SimulationResult, reference: Reference, commodity: str | int) -> dict[str, float]:
    """``sup`` and ``l1`` distance of the commodity's travel times, ``mean = l1 / window`` (the length of its
    departure window) and the number of vehicles."""
    ci = sim.commodity_index(commodity)
    dep, tt = sim.travel_times(ci)
    if dep.size == 0:
        return {"sup": float("nan"), "l1": float("nan"), "mean": float("nan"), "vehicles": 0, "window": 0.0}
    err = np.abs(tt - _reference_travel_time(reference, sim, ci)(dep))
    rate = sim.commodities[ci].inflow(dep)
    w = sim.beta / np.where(rate > 0, rate, np.inf)
    return {
        "sup": float(err.max()),
        "l1": float((err * w).sum()),
        "mean": float((err * w).sum() / w.sum()),
        "vehicles": int(dep.size),
        "window": float(w.sum()),
    }


def step_grid(sim: SimulationResult) -> np.ndarray:
    """The simulation's step times ``0, alpha, ..., steps * alpha``."""
    return np.arange(sim.steps + 1) * sim.alpha


def queue_distance(
    sim: SimulationResult, reference: Reference, edge: str, t: np.ndarray | None = None
) -> dict[str, float]:
    """``sup`` and ``l1`` distance of the queue functions ``z_e`` on the step grid (or on ``t``)."""
    t = step_grid(sim) if t is None else np.asarray(t, float)
    d = np.abs(sim.queue(edge, t) - reference.queue(edge, t))
    dt = np.diff(t, append=t[-1])
    return {"sup": float(d.max()), "l1": float((d * dt).sum())}


def rate_distance(
    sim: SimulationResult, reference: Reference, edge: str, which: str = "out", commodity: str | int | None = None
) -> dict[str, float]:
    """``sup`` and ``l1`` distance of per-step flow rates (see the module docstring)."""
    t, r = sim.step_rates(edge, which, commodity)
    if isinstance(reference, FlowLoading):
        F = (reference.cumulative_outflow if which == "out" else reference.cumulative_inflow)(
            edge, None if commodity is None else sim.commodities[sim.commodity_index(commodity)].name
        )
    else:
        if commodity is not None:
            raise ValueError("a Nash flow over time has a single commodity")
        F = (reference.cumulative_outflow if which == "out" else reference.cumulative_inflow)(edge)
    ref = (F(t + sim.alpha) - F(t)) / sim.alpha
    d = np.abs(r - ref)
    return {"sup": float(d.max()), "l1": float(d.sum() * sim.alpha)}


def compare(sim: SimulationResult, reference: Reference, edges: list[str] | None = None) -> dict[str, Any]:
    """All distances at once: the worst commodity and the worst edge for each measure.

    Keys: ``tt_sup``, ``tt_l1``, ``tt_mean``, ``queue_sup``, ``queue_l1``, ``rate_sup``, ``rate_l1``, plus
    ``per_commodity`` and ``per_edge`` dictionaries.
    """
    per_c = {c.name: travel_time_distance(sim, reference, i) for i, c in enumerate(sim.commodities)}
    used = sorted({k for c in sim.commodities for k in c.path}, key=list(edge_map(sim.G)).index)
    edges = edges or used
    per_e = {}
    for e in edges:
        q = queue_distance(sim, reference, e)
        r = rate_distance(sim, reference, e)
        per_e[e] = {"queue_sup": q["sup"], "queue_l1": q["l1"], "rate_sup": r["sup"], "rate_l1": r["l1"]}
    out: dict[str, Any] = {
        "tt_sup": max(v["sup"] for v in per_c.values()),
        "tt_l1": sum(v["l1"] for v in per_c.values()),
        "tt_mean": sum(v["l1"] for v in per_c.values()) / sum(v["window"] for v in per_c.values()),
    }
    for m in ("queue_sup", "queue_l1", "rate_sup", "rate_l1"):
        out[m] = max(v[m] for v in per_e.values())
    out["per_commodity"], out["per_edge"] = per_c, per_e
    return out


def fit_rate(alphas, errors) -> tuple[float, float]:
    """Least-squares fit ``error ~ C * alpha**p`` on log-log axes; returns ``(p, C)``.

    ``p`` close to 1 means first-order convergence, ``p`` close to 0 means no convergence.
    """
    a = np.log(np.asarray(alphas, float))
    e = np.log(np.asarray(errors, float))
    p, logc = np.polyfit(a, e, 1)
    return float(p), float(np.exp(logc))
