"""Fixed-route network loading on the multi-commodity tool's ``simple_merge`` instance (brief section 5.1)."""

from __future__ import annotations

import numpy as np
import pytest
from companion import flows


@pytest.fixture(scope="module")
def merge():
    return flows.network_loading(flows.simple_merge())


def travel_time_a(th):
    return np.where(th <= 1, 3.0, np.where(th <= 2.5, th + 2, 2 * th - 0.5))


def travel_time_b(th):
    return np.where(th <= 4, 3.0, np.where(th <= 11.5, 2 * th - 5, th + 6.5))


def test_exact_travel_times(merge):
    a = np.linspace(0, 10, 201)
    b = np.linspace(0, 20, 401)
    assert merge.travel_time("A", a) == pytest.approx(travel_time_a(a), abs=1e-12)
    assert merge.travel_time("B", b) == pytest.approx(travel_time_b(b), abs=1e-12)
    # the repository's hand-written expectation 18.5 at theta = 11.5 is wrong; the exact value is 18
    assert merge.travel_time("B", 11.5) == pytest.approx(18.0, abs=1e-12)
    assert merge.travel_time("A", 10.0) == pytest.approx(19.5)
    assert merge.travel_time("B", 20.0) == pytest.approx(26.5)


@pytest.mark.parametrize(
    "edge,times,values",
    [
        ("01", [1, 10], [0, 18]),
        ("s1", [20], [64]),
        ("12", [5, 20, 37], [3, 48, 82]),
        ("23", [6, 28.5], [3, 18]),
        ("2t", [28.5, 45.5], [30, 64]),
    ],
)
def test_cumulative_inflows_of_the_tool(merge, edge, times, values):
    assert merge.cumulative_inflow(edge)(times) == pytest.approx(values, abs=1e-12)


def test_queue_on_the_shared_edge(merge):
    # grows at rate 1 from t = 5 to 15 at t = 20, stays until t = 37, drains by t = 44.5
    assert merge.queue("12", [5, 12.5, 20, 30, 37, 40.75, 44.5, 50]) == pytest.approx(
        [0, 7.5, 15, 15, 15, 7.5, 0, 0], abs=1e-12
    )


def test_fifo_shares_on_the_shared_edge(merge):
    # from t = 6 to 28.5 the edge 1->2 releases 2 per unit time shared 1 : 2 between A and B
    for name, share in (("A", 2 / 3), ("B", 4 / 3)):
        F = merge.cumulative_outflow("12", name)
        assert (F(28.5) - F(6)) / 22.5 == pytest.approx(share)
    F = merge.cumulative_outflow("12", "B")
    assert (F(45.5) - F(28.5)) / 17 == pytest.approx(2.0)


def test_conservation_fifo_and_nonnegative_queues(merge):
    G = merge.G
    emap = flows.edge_map(G)
    t = np.linspace(0, 60, 1201)
    for k, (u, v, d) in emap.items():
        z = merge.queue(k, t)
        assert z.min() >= -1e-12
        # the queue is what entered by t and has not left by t + tau
        assert z == pytest.approx(merge.cumulative_inflow(k)(t) - merge.cumulative_outflow(k)(t + d["tau"]), abs=1e-9)
        T = merge.exit_time(k, t)
        assert np.all(np.diff(T) >= -1e-12)
        for c in ("A", "B"):  # per commodity: particles leave in the order they entered
            assert merge.cumulative_outflow(k, c)(T) == pytest.approx(merge.cumulative_inflow(k, c)(t), abs=1e-9)
    # nodes hold no flow: what leaves node 1's in-edges enters 1->2
    into_1 = merge.cumulative_outflow("01")(t) + merge.cumulative_outflow("s1")(t)
    assert into_1 == pytest.approx(merge.cumulative_inflow("12")(t), abs=1e-9)
    # everything arrives: 18 units of A and 64 of B
    assert merge.cumulative_outflow("23")(100) == pytest.approx(18)
    assert merge.cumulative_outflow("2t")(100) == pytest.approx(64)


def test_loading_with_a_cycle_in_the_network():
    # a detour through a cycle is fine for the window method; two commodities meet on the cycle's edge
    G = flows.make_network(
        [("s", "a", 1, 1, "sa"), ("a", "b", 2, 1, "ab"), ("b", "a", 1, 1, "ba"), ("b", "t", 1, 1, "bt")]
    )
    c1 = flows.make_commodity(G, "one", ["sa", "ab", "bt"], [[0, 1], [4, 0]])
    c2 = flows.make_commodity(G, "two", ["sa", "ab", "ba"], [[0, 1], [4, 0]])
    L = flows.network_loading(G, [c1, c2])
    # both share sa (capacity 1, inflow 2): the queue grows at rate 1, so theta -> 2 theta + 1 on sa
    assert L.exit_time("sa", [0, 2, 4]) == pytest.approx([1, 5, 9])
    assert L.arrival_time("one", 4.0) == pytest.approx(9 + 2 + 1)
