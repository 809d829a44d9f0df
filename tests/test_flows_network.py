"""Networks as data: readers/writers, the MATSim XML loader, routes and piecewise functions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from companion import flows
from companion.flows import PiecewiseConstant, PiecewiseLinear
from hypothesis import given, settings
from hypothesis import strategies as st


def _same(G, H):
    assert flows.network_to_dict(G)["edges"] == flows.network_to_dict(H)["edges"]
    for attr in ("source", "sink"):
        assert G.graph[attr] == H.graph[attr]
    assert [(c.name, c.path, c.inflow.pairs()) for c in G.graph["commodities"]] == [
        (c.name, c.path, c.inflow.pairs()) for c in H.graph["commodities"]
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".txt"])
@pytest.mark.parametrize("build", [flows.braess_network, flows.simple_merge, flows.two_routes])
def test_round_trip(tmp_path, build, suffix):
    G = build()
    H = flows.read_network(flows.write_network(G, tmp_path / f"net{suffix}"))
    _same(G, H)
    if G.graph["inflow"] is not None:
        assert H.graph["inflow"].pairs() == G.graph["inflow"].pairs()


def test_text_format_by_hand():
    G = flows.parse_network_text("""
        # two routes
        source s
        sink t
        inflow 0:3 10:0
        edge s t tau=1 nu=1 id=r1
        edge s t tau=3 nu=2 id=r2   # parallel edge
        commodity X path=r2 inflow=0:1,5:0
    """)
    assert flows.edge_map(G)["r2"][2]["tau"] == 3.0
    assert G.graph["inflow"](9.9) == 3.0 and G.graph["inflow"](10.0) == 0.0
    assert G.graph["commodities"][0].path == ("r2",)
    assert G.graph["commodities"][0].volume == pytest.approx(5.0)


def test_text_format_error_names_the_line():
    with pytest.raises(ValueError, match="line 2"):
        flows.parse_network_text("source s\nedge s t tau=1\n")


def test_matsim_xml_loader(tmp_path):
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<network name="toy">
  <nodes>
    <node id="1" x="0" y="0"/>
    <node id="2" x="1000" y="0"/>
    <node id="3" x="2000" y="0"/>
  </nodes>
  <links capperiod="00:30:00" effectivecellsize="7.5">
    <link id="a" from="1" to="2" length="1000" freespeed="20" capacity="1800" permlanes="2"/>
    <link id="b" from="2" to="3" length="750" freespeed="15" capacity="900" permlanes="1"/>
  </links>
</network>"""
    path = tmp_path / "network.xml"
    path.write_text(xml)
    G = flows.read_network(path)
    e = flows.edge_map(G)
    assert e["a"][:2] == ("1", "2")
    assert e["a"][2]["tau"] == pytest.approx(50.0)  # 1000 m / 20 m/s
    assert e["a"][2]["nu"] == pytest.approx(1.0)  # 1800 veh per 1800 s
    assert e["a"][2]["storage"] == pytest.approx(1000 * 2 / 7.5)
    assert e["b"][2]["tau"] == pytest.approx(50.0) and e["b"][2]["nu"] == pytest.approx(0.5)
    assert G.nodes["3"]["pos"] == (2000.0, 0.0)
    # a MATSim network is usable for fixed-route loading right away
    c = flows.make_commodity(G, "car", ["1", "2", "3"], [[0, 2], [100, 0]])
    L = flows.network_loading(G, [c])
    assert L.travel_time("car", 0.0) == pytest.approx(100.0)
    # rate 2 into capacity 1: the particle departing at 100 waits 100 on link a, then link b (capacity 0.5)
    # receives rate 1 and queues too
    assert L.travel_time("car", 100.0) > 200.0


def test_parallel_routes_need_edge_keys():
    G = flows.two_routes()
    with pytest.raises(ValueError, match="several edges"):
        flows.route_edges(G, ["s", "t"])
    assert flows.route_edges(G, ["r2"]) == ("r2",)


def test_grid_network_inflow_exceeds_min_cut():
    G = flows.grid_network(3, 4, seed=1)
    assert G.number_of_edges() == 3 * 3 + 2 * 4
    assert G.graph["inflow"](0) == pytest.approx(1.5 * flows.min_cut_capacity(G))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 5), st.floats(0, 4)), min_size=1, max_size=6))
def test_integral_of_step_function(pieces):
    times = np.cumsum([p[0] for p in pieces])
    f = PiecewiseConstant(times, [p[1] for p in pieces[:-1]] + [0.0])
    F = f.integral()
    grid = np.linspace(0, times[-1] + 1, 301)
    # F' = f between breakpoints, F is continuous and non-decreasing
    mids = 0.5 * (grid[1:] + grid[:-1])
    inside = ~np.any((grid[:-1, None] < times[None, :]) & (times[None, :] < grid[1:, None]), axis=1)
    slope = np.diff(F(grid)) / np.diff(grid)
    assert np.allclose(slope[inside], f(mids[inside]), atol=1e-9)
    assert np.all(np.diff(F(grid)) >= -1e-12)
    # the inverse is a left inverse on the range
    ys = np.linspace(0, float(F(grid[-1])), 50)
    assert np.allclose(F(F.inverse(ys)), ys, atol=1e-9)


def test_piecewise_linear_extrapolation_and_derivative():
    F = PiecewiseLinear([0, 1, 3], [0, 2, 2], right_slope=0.5)
    assert F(-1) == 0 and F(2) == 2 and F(5) == pytest.approx(3.0)
    d = F.derivative()
    assert d(0.5) == 2 and d(2) == 0 and d(10) == 0.5
    assert math.isinf(PiecewiseLinear([0, 1], [0, 1]).inverse(2.0))


def test_matsim_xml_round_trip(tmp_path):
    G = flows.grid_network(3, 3, seed=4)
    flows.edge_map(G)["0,0-0,1"][2]["storage"] = 12.0
    H = flows.read_matsim_network(flows.write_matsim_network(G, tmp_path / "grid.xml"))
    for key, (u, v, d) in flows.edge_map(G).items():
        u2, v2, d2 = flows.edge_map(H)[key]
        assert (u2, v2) == (u, v)
        assert d2["tau"] == pytest.approx(d["tau"]) and d2["nu"] == pytest.approx(d["nu"])
    assert flows.edge_map(H)["0,0-0,1"][2]["storage"] == pytest.approx(12.0)
