"""Flows over time with deterministic queues and their packet-based (MATSim-style) simulation.

Modules:

* :mod:`~companion.flows.network` -- networks as data (``networkx.MultiDiGraph`` with ``tau``, ``nu``,
  ``storage`` per edge), text/YAML/MATSim-XML readers and the chapter's reference instances;
* :mod:`~companion.flows.thin_flows` -- normalised thin flows with resetting (exact, SciPy HiGHS);
* :mod:`~companion.flows.nash` -- Nash flows over time by the alpha-extension (phases, labels, queues);
* :mod:`~companion.flows.loading` -- exact network loading of fixed-route commodities;
* :mod:`~companion.flows.packet` -- the packet simulation with time step alpha and vehicle size beta;
* :mod:`~companion.flows.compare` -- sup/L1 distances between simulation and continuous model;
* :mod:`~companion.flows.piecewise` -- exact piecewise-constant/-linear functions;
* :mod:`~companion.flows.drawing` -- a network drawing helper.
"""

from .compare import compare, fit_rate, queue_distance, rate_distance, travel_time_distance
from .drawing import draw_network
from .loading import FlowLoading, network_loading
from .nash import NashFlowOverTime, Phase, free_flow_labels, nash_flow_over_time
from .network import (
    Commodity,
    as_inflow,
    braess_network,
    edge_map,
    fractional_merge,
    grid_network,
    make_commodity,
    make_network,
    min_cut_capacity,
    network_from_dict,
    network_to_dict,
    parse_network_text,
    read_matsim_network,
    read_network,
    route_edges,
    simple_merge,
    thesis_example_4_1,
    two_routes,
    write_matsim_network,
    write_network,
)
from .packet import SimulationResult, simulate
from .piecewise import PiecewiseConstant, PiecewiseLinear
from .thin_flows import ThinFlow, check_thin_flow, rho, thin_flow

__all__ = [
    "Commodity",
    "FlowLoading",
    "NashFlowOverTime",
    "Phase",
    "PiecewiseConstant",
    "PiecewiseLinear",
    "SimulationResult",
    "ThinFlow",
    "as_inflow",
    "braess_network",
    "check_thin_flow",
    "compare",
    "draw_network",
    "edge_map",
    "fit_rate",
    "fractional_merge",
    "free_flow_labels",
    "grid_network",
    "make_commodity",
    "make_network",
    "min_cut_capacity",
    "nash_flow_over_time",
    "network_from_dict",
    "network_loading",
    "network_to_dict",
    "parse_network_text",
    "queue_distance",
    "rate_distance",
    "read_matsim_network",
    "read_network",
    "rho",
    "route_edges",
    "simple_merge",
    "simulate",
    "thesis_example_4_1",
    "thin_flow",
    "travel_time_distance",
    "two_routes",
    "write_matsim_network",
    "write_network",
]
