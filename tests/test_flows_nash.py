"""Thin flows and Nash flows over time: the brief's hand-checked instances and the equilibrium invariants."""

from __future__ import annotations

import numpy as np
import pytest
from companion import flows
from companion.flows import ThinFlow, check_thin_flow, nash_flow_over_time, thin_flow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# -- thin flows ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["milp", "enumerate"])
def test_thesis_example_4_1(method):
    G, active, resetting, u0 = flows.thesis_example_4_1()
    tf = thin_flow(G, active, resetting, u0, method=method)
    assert tf.labels == pytest.approx({"s": 1, "a": 2, "b": 2, "t": 2})
    assert tf.x == pytest.approx({"sa": 10, "ab": 4, "at": 6, "bt": 4})


def test_thesis_example_4_1_naive_routing_is_not_a_thin_flow():
    # All flow along s-a-b-t would need l'_b = 10/2 = 5 on the resetting edge ab and l'_t = 5 on bt,
    # while the edge at offers l'_t = max(l'_a, 0/7) = 2 < 5: the minimum condition fails.
    G, active, resetting, u0 = flows.thesis_example_4_1()
    naive = ThinFlow(
        {"sa": 10.0, "ab": 10.0, "at": 0.0, "bt": 10.0},
        {"s": 1.0, "a": 2.0, "b": 5.0, "t": 5.0},
        frozenset(active),
        frozenset(resetting),
        u0,
        "s",
        "t",
    )
    problems = check_thin_flow(G, naive)
    assert any("l'_t" in p for p in problems)


@st.composite
def thin_flow_instances(draw):
    """Random acyclic active networks on s < a < b < t in which every node is reachable from s."""
    order = ["s", "a", "b", "t"]
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=3, max_size=5, unique=True))
    edges = set(chosen) | {(0, 3)}
    for j in (1, 2):  # every node needs an incoming edge
        if not any(b == j for _, b in edges):
            edges.add((j - 1, j))
    edges = sorted(edges)
    nus = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=len(edges), max_size=len(edges)))
    G = flows.make_network(
        [(order[i], order[j], 1.0, nu, f"{order[i]}{order[j]}") for (i, j), nu in zip(edges, nus)], "s", "t", 1.0
    )
    keys = [f"{order[i]}{order[j]}" for i, j in edges]
    resetting = {k for k in keys if draw(st.booleans())}
    value = draw(st.sampled_from([0.0, 1.0, 2.5, 4.0]))
    return G, set(keys), resetting, value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(thin_flow_instances())
def test_milp_and_enumeration_agree_on_the_unique_labels(instance):
    G, active, resetting, value = instance
    a = thin_flow(G, active, resetting, value, method="milp")
    b = thin_flow(G, active, resetting, value, method="enumerate")
    assert check_thin_flow(G, a) == [] and check_thin_flow(G, b) == []
    assert a.labels == pytest.approx(b.labels, abs=1e-7)


# -- Nash flows over time --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def braess():
    return nash_flow_over_time(flows.braess_network(), horizon=200)


def test_braess_phases_exact(braess):
    starts = [p.start for p in braess.phases]
    assert starts == pytest.approx([0, 15, 26.25, 82.5], abs=1e-9)
    assert braess.phases[-1].end == float("inf")
    assert [p.derivatives["t"] for p in braess.phases] == pytest.approx([3, 2, 4 / 3, 1], abs=1e-9)
    assert [p.labels["t"] for p in braess.phases] == pytest.approx([25, 70, 92.5, 167.5], abs=1e-9)
    assert [sorted(p.thin_flow.resetting) for p in braess.phases] == [
        [],
        ["01", "12"],
        ["01", "12", "23"],
        ["01", "23"],
    ]
    # the steady state: l_t(theta) = theta + 85
    th = np.array([82.5, 100, 250, 1000])
    assert braess.arrival_time(th) == pytest.approx(th + 85, abs=1e-9)


def test_braess_first_phase_by_hand(braess):
    p = braess.phases[0]
    assert p.labels == pytest.approx({"s": 0, "0": 5, "1": 10, "2": 15, "3": 20, "t": 25})
    assert p.derivatives == pytest.approx({"s": 1, "0": 1, "1": 2, "2": 3, "3": 3, "t": 3})
    # edge 0->2 becomes active when l_2 - l_0 = 10 + 2 theta reaches 40
    assert braess.label("2", 15) - braess.label("0", 15) == pytest.approx(40)


def test_braess_phase_two_thin_flow(braess):
    x = braess.phases[1].thin_flow.x
    expect = {"s0": 1, "01": 1 / 3, "02": 2 / 3, "12": 1 / 3, "23": 1, "3t": 1}
    assert {k: v for k, v in x.items() if v > 1e-9} == pytest.approx(expect)


def test_enumeration_gives_the_same_braess_phases(braess):
    other = nash_flow_over_time(flows.braess_network(), horizon=200, method="enumerate")
    assert [p.start for p in other.phases] == pytest.approx([p.start for p in braess.phases], abs=1e-9)


def test_two_routes():
    nf = nash_flow_over_time(flows.two_routes())
    assert [p.start for p in nf.phases] == pytest.approx([0, 1])
    assert nf.phases[0].derivatives["t"] == pytest.approx(3)
    assert nf.phases[1].thin_flow.x == pytest.approx({"r1": 1, "r2": 2})
    th = np.linspace(1, 50, 20)
    assert nf.arrival_time(th) == pytest.approx(th + 3)


def test_inflow_change_starts_a_phase():
    G = flows.two_routes()
    G.graph["inflow"] = flows.as_inflow([[0, 3], [2, 0]])
    nf = nash_flow_over_time(G, horizon=10)
    assert 2.0 in [round(p.start, 12) for p in nf.phases]
    # after the inflow stops the queue on route 1 (2 units at theta=2) drains: l_t stays at 2 + 3 = 5
    # until theta = 4, then free flow with l_t = theta + 1
    assert nf.arrival_time([2, 3, 4, 6]) == pytest.approx([5, 5, 5, 7])


@pytest.fixture(scope="module", params=["braess", "grid"])
def equilibrium(request):
    if request.param == "braess":
        return nash_flow_over_time(flows.braess_network(), horizon=150)
    return nash_flow_over_time(flows.grid_network(3, 3, seed=2), horizon=60)


def test_thin_flow_conditions_hold_in_every_phase(equilibrium):
    assert equilibrium.check() == []


def test_flow_conservation(equilibrium):
    G = equilibrium.G
    emap = flows.edge_map(G)
    t = np.linspace(0, 120, 241)
    U = G.graph["inflow"].integral()
    for v in G.nodes:
        inflow = sum(equilibrium.cumulative_outflow(k)(t) for k, (a, b, _) in emap.items() if b == v)
        outflow = sum(equilibrium.cumulative_inflow(k)(t) for k, (a, b, _) in emap.items() if a == v)
        if v == G.graph["source"]:
            assert np.allclose(outflow, U(t), atol=1e-7)
        elif v != G.graph["sink"]:
            assert np.allclose(inflow, outflow, atol=1e-7)
    # everything that left the source by theta has arrived by l_t(theta)
    th = np.linspace(0, 60, 61)
    arrived = sum(
        equilibrium.cumulative_outflow(k)(equilibrium.arrival_time(th))
        for k, (a, b, _) in emap.items()
        if b == G.graph["sink"]
    )
    assert np.allclose(arrived, U(th), atol=1e-7)


def test_queues_nonnegative_and_fifo(equilibrium):
    t = np.linspace(0, 150, 601)
    for k in flows.edge_map(equilibrium.G):
        z = equilibrium.queue(k, t)
        assert z.min() >= -1e-9
        T = equilibrium.exit_time(k, t)
        assert np.all(np.diff(T) >= -1e-9)  # first in, first out
        Fin, Fout = equilibrium.cumulative_inflow(k), equilibrium.cumulative_outflow(k)
        assert np.allclose(Fout(T), Fin(t), atol=1e-7)  # leaves in the order it entered


def test_queue_equals_capacity_times_slack_on_active_edges(braess):
    for p in braess.phases[:-1]:
        th = 0.5 * (p.start + p.end)
        for k, (v, w, d) in flows.edge_map(braess.G).items():
            if k in p.thin_flow.active:
                lv, lw = braess.label(v, th), braess.label(w, th)
                assert braess.queue(k, lv) == pytest.approx(d["nu"] * (lw - lv - d["tau"]), abs=1e-9)


def test_loading_the_path_decomposition_reproduces_the_equilibrium(braess):
    commodities = braess.path_commodities(until=100)
    assert {c.path for c in commodities} == {
        ("s0", "01", "12", "23", "3t"),
        ("s0", "02", "23", "3t"),
        ("s0", "01", "13", "3t"),
    }
    L = flows.network_loading(braess.G, commodities)
    th = np.linspace(0, 99.9, 400)
    for i, c in enumerate(commodities):
        used = c.inflow(th) > 0
        assert L.arrival_time(i, th[used]) == pytest.approx(braess.arrival_time(th[used]), abs=1e-9)


def test_grid_nash_flow_reaches_steady_state():
    nf = nash_flow_over_time(flows.grid_network(3, 3, seed=0))
    assert nf.phases[-1].end == float("inf")
    # inflow above the min cut: the sink label grows faster than theta for ever
    assert nf.phases[-1].derivatives[nf.sink] > 1.0
