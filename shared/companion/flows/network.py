"""Networks as data: a ``networkx.MultiDiGraph`` with a transit time and a capacity on every edge.

Conventions (shared by every module of :mod:`companion.flows`):

* nodes are strings; every edge has a unique string ``key`` (its id, as MATSim link ids), and the
  attributes ``tau`` (free-flow transit time, > 0), ``nu`` (capacity = queue service rate, > 0) and
  ``storage`` (flow volume the edge can hold, ``inf`` = no spillback);
* graph attributes ``source``, ``sink`` and ``inflow`` (a :class:`PiecewiseConstant` network inflow rate
  ``u_0``) describe a single-commodity instance (Nash flows over time); ``commodities`` (a list of
  :class:`Commodity`) describes fixed routes (network loading, packet simulation).

Three formats are read: a small line-based text format, YAML (the same content as a mapping), and a
MATSim ``network.xml`` (see :func:`read_matsim_network`). The reference instances of the chapter
(Braess network of NashFlowComputation, ``simple_merge`` of the multi-commodity tool, ...) are built by
functions at the end of this module, with the values of the original network files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import networkx as nx
import numpy as np
import yaml

from .piecewise import PiecewiseConstant

INF = float("inf")


@dataclass(frozen=True)
class Commodity:
    """A group of particles with a fixed route: ``path`` (edge keys) and departure rate ``inflow``."""

    name: str
    path: tuple[str, ...]
    inflow: PiecewiseConstant

    @property
    def volume(self) -> float:
        """Total flow volume of the commodity (``inf`` when its inflow never stops)."""
        if self.inflow.end == INF:
            return INF
        return float(self.inflow.integral()(self.inflow.end))


def as_inflow(spec: Any) -> PiecewiseConstant:
    """Turn ``3``, ``[[0, 1], [100, 0]]``, ``"0:1 100:0"`` or a :class:`PiecewiseConstant` into one.

    A number is a constant rate from time 0; pairs are ``(time, rate from that time on)``.
    """
    if isinstance(spec, PiecewiseConstant):
        return spec
    if isinstance(spec, (int, float)):
        return PiecewiseConstant.constant(float(spec))
    if isinstance(spec, str):
        items = spec.replace(",", " ").split()
        if len(items) == 1 and ":" not in items[0]:
            return PiecewiseConstant.constant(float(items[0]))
        return PiecewiseConstant.from_pairs([tuple(map(float, it.split(":"))) for it in items])
    return PiecewiseConstant.from_pairs(spec)


def make_network(
    edges: Iterable[Any],
    source: str | None = None,
    sink: str | None = None,
    inflow: Any = None,
    commodities: Sequence[Any] = (),
    name: str = "",
) -> nx.MultiDiGraph:
    """Build a network from edges ``(tail, head, tau, nu[, key[, storage]])`` or mappings with the keys
    ``tail``/``from``, ``head``/``to``, ``tau``, ``nu`` and optional ``id`` and ``storage``.

    Edge keys default to ``f"{tail}-{head}"`` (with a suffix for parallel edges). ``commodities`` are
    :class:`Commodity` objects or mappings ``{name, path, inflow}`` whose path lists nodes or edge keys.
    """
    G = nx.MultiDiGraph(name=name)
    for item in edges:
        if isinstance(item, dict):
            tail = item.get("tail", item.get("from"))
            head = item.get("head", item.get("to"))
            tau, nu = item["tau"], item["nu"]
            key, storage = item.get("id"), item.get("storage", INF)
        else:
            tail, head, tau, nu, *rest = item
            key = rest[0] if rest else None
            storage = rest[1] if len(rest) > 1 else INF
        add_edge(G, str(tail), str(head), float(tau), float(nu), None if key is None else str(key), float(storage))
    G.graph["source"] = None if source is None else str(source)
    G.graph["sink"] = None if sink is None else str(sink)
    G.graph["inflow"] = None if inflow is None else as_inflow(inflow)
    G.graph["commodities"] = [
        c if isinstance(c, Commodity) else make_commodity(G, c["name"], c["path"], c["inflow"]) for c in commodities
    ]
    return G


def add_edge(
    G: nx.MultiDiGraph, tail: str, head: str, tau: float, nu: float, key: str | None = None, storage: float = INF
) -> str:
    """Add one edge with validated attributes; returns its (unique) key."""
    if not (tau > 0 and nu > 0 and storage > 0):
        raise ValueError(f"edge {tail}->{head}: need tau > 0, nu > 0, storage > 0 (got {tau}, {nu}, {storage})")
    keys = _edge_keys(G)
    if key is None:
        key = f"{tail}-{head}"
        n = 1
        while key in keys:
            n += 1
            key = f"{tail}-{head}#{n}"
    if key in keys:
        raise ValueError(f"duplicate edge key {key!r}")
    G.add_edge(tail, head, key=key, tau=tau, nu=nu, storage=storage, order=len(keys))
    keys.add(key)
    return key


def _edge_keys(G: nx.MultiDiGraph) -> set[str]:
    """The set of edge keys, cached on the graph so that building large (MATSim) networks stays linear.

    The cache belongs to one adjacency structure: ``G.copy()`` (which shares the graph attributes) gets a
    fresh one. Edges should be added with :func:`add_edge`; after removing edges with plain networkx
    calls, drop ``G.graph["_edge_keys"]``.
    """
    owner = id(G._adj)
    cached = G.graph.get("_edge_keys")
    if cached is None or cached[0] != owner:
        cached = (owner, {k for _, _, k in G.edges(keys=True)})
        G.graph["_edge_keys"] = cached
    return cached[1]


def edge_map(G: nx.MultiDiGraph) -> dict[str, tuple[str, str, dict]]:
    """``{key: (tail, head, attributes)}`` for every edge, in insertion order (attribute ``order``)."""
    edges = sorted(G.edges(keys=True, data=True), key=lambda e: e[3].get("order", 0))
    return {k: (u, v, d) for u, v, k, d in edges}


def route_edges(G: nx.MultiDiGraph, route: Sequence[str]) -> tuple[str, ...]:
    """Edge keys of a route given as edge keys or as a node sequence (unambiguous parallel edges only)."""
    emap = edge_map(G)
    route = [str(r) for r in route]
    if all(r in emap for r in route) and not all(r in G for r in route):
        keys = tuple(route)
    else:
        keys = []
        for a, b in zip(route[:-1], route[1:]):
            cand = list(G.get_edge_data(a, b, default={}))
            if len(cand) != 1:
                raise ValueError(
                    f"route {route}: {'no' if not cand else 'several'} edges from {a} to {b}; "
                    "give the route as edge keys"
                )
            keys.append(cand[0])
        keys = tuple(keys)
    for k1, k2 in zip(keys[:-1], keys[1:]):
        if emap[k1][1] != emap[k2][0]:
            raise ValueError(f"route {keys}: edge {k1} does not end where {k2} starts")
    if len(set(keys)) != len(keys):
        raise ValueError(f"route {keys} uses an edge twice")
    return keys


def make_commodity(G: nx.MultiDiGraph, name: str, route: Sequence[str], inflow: Any) -> Commodity:
    """A :class:`Commodity` on ``G`` (route as nodes or edge keys, inflow as in :func:`as_inflow`)."""
    return Commodity(str(name), route_edges(G, route), as_inflow(inflow))


# -- reading and writing ---------------------------------------------------------------------------


def network_to_dict(G: nx.MultiDiGraph) -> dict[str, Any]:
    """The YAML/JSON mapping of a network (inverse of :func:`network_from_dict`)."""
    edges = []
    for key, (u, v, d) in edge_map(G).items():
        e = {"id": key, "from": u, "to": v, "tau": d["tau"], "nu": d["nu"]}
        if d.get("storage", INF) != INF:
            e["storage"] = d["storage"]
        edges.append(e)
    out: dict[str, Any] = {"name": G.graph.get("name", ""), "edges": edges}
    for attr in ("source", "sink"):
        if G.graph.get(attr) is not None:
            out[attr] = G.graph[attr]
    if G.graph.get("inflow") is not None:
        out["inflow"] = [list(p) for p in G.graph["inflow"].pairs()]
    if G.graph.get("commodities"):
        out["commodities"] = [
            {"name": c.name, "path": list(c.path), "inflow": [list(p) for p in c.inflow.pairs()]}
            for c in G.graph["commodities"]
        ]
    return out


def network_from_dict(data: dict[str, Any]) -> nx.MultiDiGraph:
    """Build a network from the mapping written by :func:`network_to_dict` (or typed by hand)."""
    return make_network(
        data["edges"],
        data.get("source"),
        data.get("sink"),
        data.get("inflow"),
        data.get("commodities", ()),
        data.get("name", ""),
    )


def parse_network_text(text: str) -> nx.MultiDiGraph:
    """Parse the line format::

        # comment
        source s
        sink t
        inflow 1                      # or: inflow 0:1 100:0  (time:rate pairs)
        edge s 0 tau=5 nu=1 [id=s0] [storage=50]
        commodity A path=0,1,2,3 inflow=1:2,10:0

    Blank lines and ``#`` comments are ignored; unknown directives raise ``ValueError`` with the line.
    """
    data: dict[str, Any] = {"edges": [], "commodities": []}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word, *rest = line.split()
        try:
            if word in ("source", "sink", "name"):
                data[word] = rest[0]
            elif word == "inflow":
                data["inflow"] = " ".join(rest)
            elif word == "edge":
                kv = dict(item.split("=", 1) for item in rest[2:])
                data["edges"].append(
                    {
                        "from": rest[0],
                        "to": rest[1],
                        "tau": float(kv["tau"]),
                        "nu": float(kv["nu"]),
                        "id": kv.get("id"),
                        "storage": float(kv.get("storage", INF)),
                    }
                )
            elif word == "commodity":
                kv = dict(item.split("=", 1) for item in rest[1:])
                data["commodities"].append({"name": rest[0], "path": kv["path"].split(","), "inflow": kv["inflow"]})
            else:
                raise ValueError(f"unknown directive {word!r}")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"line {lineno}: {raw.strip()!r}: {exc}") from None
    return network_from_dict(data)


def write_network(G: nx.MultiDiGraph, path: str | Path) -> Path:
    """Write ``G`` as YAML (``.yaml``/``.yml``) or in the line format (any other suffix)."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        path.write_text(yaml.safe_dump(network_to_dict(G), sort_keys=False))
        return path
    lines = [f"# {G.graph.get('name', '')}".rstrip()]
    for attr in ("source", "sink"):
        if G.graph.get(attr) is not None:
            lines.append(f"{attr} {G.graph[attr]}")
    if G.graph.get("inflow") is not None:
        lines.append("inflow " + " ".join(f"{t:g}:{r:g}" for t, r in G.graph["inflow"].pairs()))
    for key, (u, v, d) in edge_map(G).items():
        extra = f" storage={d['storage']:.17g}" if d.get("storage", INF) != INF else ""
        lines.append(f"edge {u} {v} tau={d['tau']:.17g} nu={d['nu']:.17g} id={key}{extra}")
    for c in G.graph.get("commodities") or []:
        lines.append(
            f"commodity {c.name} path={','.join(c.path)} inflow="
            + ",".join(f"{t:g}:{r:g}" for t, r in c.inflow.pairs())
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _seconds(hms: str) -> float:
    parts = [float(p) for p in hms.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    h, m, s = parts
    return 3600 * h + 60 * m + s


def read_matsim_network(
    path: str | Path, source: str | None = None, sink: str | None = None, inflow: Any = None
) -> nx.MultiDiGraph:
    """Read a MATSim ``network.xml`` (nodes and links) into a flow network.

    Per link: ``tau = length / freespeed`` (seconds), ``nu = capacity / capperiod`` (vehicles per second;
    ``capperiod`` is the ``links`` element's ``hh:mm:ss``, default one hour) and
    ``storage = length * permlanes / effectivecellsize`` (vehicles; cell size 7.5 m unless the file says
    otherwise) -- the quantities MATSim's ``QueueWithBuffer`` derives from the same attributes. Node
    coordinates are kept as the node attribute ``pos``. Source, sink and inflow are not part of a MATSim
    network and may be given here.
    """
    root = ET.parse(path).getroot()
    default = Path(path).stem if isinstance(path, (str, Path)) else "matsim"
    G = nx.MultiDiGraph(name=root.get("name", default))
    nodes = root.find("nodes")
    for node in nodes if nodes is not None else []:
        G.add_node(node.get("id"), pos=(float(node.get("x", 0)), float(node.get("y", 0))))
    links = root.find("links")
    if links is None:
        raise ValueError(f"{path}: no <links> element")
    capperiod = _seconds(links.get("capperiod", "01:00:00"))
    cell = float(links.get("effectivecellsize", 7.5))
    for link in links:
        length, speed = float(link.get("length")), float(link.get("freespeed"))
        lanes = float(link.get("permlanes", 1.0))
        add_edge(
            G,
            link.get("from"),
            link.get("to"),
            length / speed,
            float(link.get("capacity")) / capperiod,
            link.get("id"),
            length * lanes / cell,
        )
    G.graph.update(source=source, sink=sink, inflow=None if inflow is None else as_inflow(inflow), commodities=[])
    return G


def write_matsim_network(
    G: nx.MultiDiGraph, path: str | Path, freespeed: float = 10.0, capperiod: str = "01:00:00", cell: float = 7.5
) -> Path:
    """Write ``G`` as a MATSim ``network.xml`` that :func:`read_matsim_network` reads back unchanged.

    Every link gets the speed ``freespeed`` (m/s), hence ``length = tau * freespeed``; the capacity is
    ``nu`` per second times the ``capperiod``; ``permlanes`` is chosen so that the storage (in vehicles)
    is the edge's ``storage``, or one lane where the storage is unlimited. Node coordinates come from the
    node attribute ``pos`` (0, 0 if missing).
    """
    period = _seconds(capperiod)
    root = ET.Element("network", name=G.graph.get("name", "") or "network")
    nodes = ET.SubElement(root, "nodes")
    for v, d in G.nodes(data=True):
        x, y = d.get("pos", (0.0, 0.0))
        ET.SubElement(nodes, "node", id=str(v), x=repr(float(x)), y=repr(float(y)))
    links = ET.SubElement(root, "links", capperiod=capperiod, effectivecellsize=repr(cell))
    for key, (u, v, d) in edge_map(G).items():
        length = d["tau"] * freespeed
        lanes = 1.0 if d.get("storage", INF) == INF else d["storage"] * cell / length
        ET.SubElement(
            links,
            "link",
            id=key,
            to=v,
            length=repr(length),
            freespeed=repr(freespeed),
            capacity=repr(d["nu"] * period),
            permlanes=repr(lanes),
            modes="car",
            **{"from": u},
        )
    ET.indent(root)
    Path(path).write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")
    return Path(path)


def read_network(path: str | Path) -> nx.MultiDiGraph:
    """Read a network: ``.yaml``/``.yml`` (mapping), ``.json``, ``.xml`` (MATSim) or the line format."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml", ".json"):
        return network_from_dict(yaml.safe_load(path.read_text()))
    if path.suffix == ".xml":
        return read_matsim_network(path)
    return parse_network_text(path.read_text())


# -- reference instances ---------------------------------------------------------------------------


def braess_network() -> nx.MultiDiGraph:
    """NashFlowComputation's ``example_networks/braess_network.cg`` with inflow rate 1.

    Its Nash flow over time has phases starting at theta = 0, 15, 26.25, 82.5 and ends in the steady state
    ``l_t(theta) = theta + 85``.
    """
    edges = [
        ("s", "0", 5, 1, "s0"),
        ("0", "1", 5, 0.5, "01"),
        ("0", "2", 40, 1, "02"),
        ("1", "2", 5, 1 / 3, "12"),
        ("1", "3", 40, 1, "13"),
        ("2", "3", 5, 0.5, "23"),
        ("3", "t", 5, 2, "3t"),
    ]
    return make_network(edges, "s", "t", 1.0, name="braess")


def two_routes() -> nx.MultiDiGraph:
    """Two parallel s-t routes (tau, nu) = (1, 1) and (3, 2), inflow 3 (small enough to check by hand).

    Phase 1 on [0, 1) uses route 1 only; from theta = 1 the split is 1 : 2 and ``l_t = theta + 3``.
    """
    return make_network([("s", "t", 1, 1, "r1"), ("s", "t", 3, 2, "r2")], "s", "t", 3.0, name="two-routes")


def simple_merge() -> nx.MultiDiGraph:
    """The multi-commodity tool's ``simple_merge`` instance with its two fixed-route commodities
    (``LeonSering/multi-commodity-flows-over-time``, ``example/simple_merge.cg``).

    Commodity A: rate 2 on [1, 10] along 0-1-2-3; commodity B: rate 4 on [4, 20] along s-1-2-t. They
    queue separately on their first edges and share the edge 1->2 (capacity 2).
    """
    edges = [
        ("s", "1", 1, 2, "s1"),
        ("0", "1", 1, 1, "01"),
        ("1", "2", 1, 2, "12"),
        ("2", "t", 1, 3, "2t"),
        ("2", "3", 1, 3, "23"),
    ]
    G = make_network(edges, name="simple_merge")
    G.graph["commodities"] = [
        make_commodity(G, "A", ["0", "1", "2", "3"], [[1, 2], [10, 0]]),
        make_commodity(G, "B", ["s", "1", "2", "t"], [[4, 4], [20, 0]]),
    ]
    return G


def fractional_merge() -> nx.MultiDiGraph:
    """A merge at a bottleneck whose capacity is a fraction of a vehicle per step when beta = alpha.

    Commodity A (rate 1 on [0, 20], from ``a``) and commodity B (rate 0.5 on [0, 20], from ``b``) merge at
    ``m`` onto the bottleneck ``m -> n`` (tau 1, nu 2/3) and split again towards ``c`` and ``d``; all other
    capacities are generous. With beta = alpha the bottleneck releases 2/3 of a vehicle per step whatever
    alpha is; with beta = alpha^2 it releases 2/(3 alpha) vehicles per step, never a whole number for
    alpha = 1/(5 * 2^k). Used to separate the two refinements (chapter notebook 3).
    """
    edges = [
        ("a", "m", 1, 2, "am"),
        ("b", "m", 1, 2, "bm"),
        ("m", "n", 1, 2 / 3, "mn"),
        ("n", "c", 1, 2, "nc"),
        ("n", "d", 1, 2, "nd"),
    ]
    G = make_network(edges, name="fractional_merge")
    G.graph["commodities"] = [
        make_commodity(G, "A", ["a", "m", "n", "c"], [[0, 1], [20, 0]]),
        make_commodity(G, "B", ["b", "m", "n", "d"], [[0, 0.5], [20, 0]]),
    ]
    return G


def thesis_example_4_1() -> tuple[nx.MultiDiGraph, set[str], set[str], float]:
    """Zimmer's thesis Example 4.1: a thin-flow-with-resetting instance ``(G, E', E*, u_0)``.

    ``E' = {sa, ab, at, bt}``, ``E* = {ab}``, capacities 5, 2, 7, 5 and ``u_0 = 10``; the normalised thin flow
    is x' = (10, 4, 6, 4) with labels l'_s = 1 and l'_a = l'_b = l'_t = 2. Transit times are irrelevant for
    a thin flow and set to 1.
    """
    G = make_network(
        [("s", "a", 1, 5, "sa"), ("a", "b", 1, 2, "ab"), ("a", "t", 1, 7, "at"), ("b", "t", 1, 5, "bt")],
        "s",
        "t",
        10.0,
        name="thesis-4.1",
    )
    return G, {"sa", "ab", "at", "bt"}, {"ab"}, 10.0


def grid_network(
    rows: int,
    cols: int,
    seed: int = 0,
    inflow: float | None = None,
    tau_range: tuple[int, int] = (1, 4),
    nu_choices: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
) -> nx.MultiDiGraph:
    """A ``rows x cols`` grid with edges pointing right and down, source top-left, sink bottom-right.

    Transit times are integers drawn from ``tau_range`` (inclusive) and capacities from ``nu_choices``
    (seeded). The default inflow is 1.5 times the minimum s-t cut capacity, so that queues form and the
    Nash flow passes through several phases. Used by the scaling study.
    """
    rng = np.random.default_rng(seed)
    edges = []
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < rows and c + dc < cols:
                    edges.append(
                        (
                            f"{r},{c}",
                            f"{r + dr},{c + dc}",
                            int(rng.integers(tau_range[0], tau_range[1] + 1)),
                            float(rng.choice(nu_choices)),
                        )
                    )
    G = make_network(edges, "0,0", f"{rows - 1},{cols - 1}", 1.0, name=f"grid-{rows}x{cols}")
    if inflow is None:
        inflow = 1.5 * min_cut_capacity(G)
    G.graph["inflow"] = as_inflow(inflow)
    return G


def min_cut_capacity(G: nx.MultiDiGraph) -> float:
    """The minimum s-t cut capacity (parallel edges added up); ``u_0`` above it means queues grow forever."""
    H = nx.DiGraph()
    for u, v, d in G.edges(data=True):
        cap = H.get_edge_data(u, v, {}).get("capacity", 0.0)
        H.add_edge(u, v, capacity=cap + d["nu"])
    return float(nx.maximum_flow_value(H, G.graph["source"], G.graph["sink"]))
