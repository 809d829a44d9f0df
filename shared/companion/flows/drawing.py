"""Drawing a flow network with matplotlib: nodes, curved parallel edges and per-edge annotations."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

from .network import edge_map


def _fmt(x: float) -> str:
    from fractions import Fraction

    f = Fraction(x).limit_denominator(12)
    return str(f) if abs(float(f) - x) < 1e-9 else f"{x:.3g}"


def draw_network(
    G: nx.MultiDiGraph,
    pos: Mapping[str, tuple[float, float]],
    ax=None,
    edge_text: Mapping[str, str] | None = None,
    edge_color: Mapping[str, str] | None = None,
    edge_width: Mapping[str, float] | None = None,
    node_color: str = "#f0f0f0",
    font_size: float = 8.0,
):
    """Draw ``G`` at positions ``pos``; returns the axes.

    Every edge is annotated with ``edge_text[key]`` (default ``"(tau, nu)"``), coloured with
    ``edge_color[key]`` (default grey) and drawn with width ``edge_width[key]`` (default 1.2). Parallel edges
    are bent apart so that both stay visible.
    """
    ax = ax or plt.gca()
    emap = edge_map(G)
    seen: dict[tuple[str, str], int] = {}
    for key, (u, v, d) in emap.items():
        n_par = G.number_of_edges(u, v)
        idx = seen.get((u, v), 0)
        seen[(u, v)] = idx + 1
        rad = 0.0 if n_par == 1 else 0.35 * (idx - (n_par - 1) / 2)
        color = (edge_color or {}).get(key, "#555555")
        width = (edge_width or {}).get(key, 1.2)
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(
                arrowstyle="-|>", color=color, lw=width, shrinkA=11, shrinkB=11, connectionstyle=f"arc3,rad={rad}"
            ),
        )
        text = (edge_text or {}).get(key, f"({_fmt(d['tau'])}, {_fmt(d['nu'])})")
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        dx, dy = x1 - x0, y1 - y0
        norm = np.hypot(dx, dy) or 1.0
        # The midpoint of an arc3 curve is shifted by rad/2 times the chord, perpendicular to it.
        ox, oy = -dy / norm, dx / norm
        shift = rad * norm / 2 + (0.12 if rad >= 0 else -0.12)
        ax.text(
            mx - ox * shift,
            my - oy * shift,
            text,
            ha="center",
            va="center",
            fontsize=font_size,
            color=color,
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
        )
    for node, (x, y) in pos.items():
        if node in G:
            ax.scatter([x], [y], s=320, color=node_color, edgecolor="#333333", zorder=3)
            ax.text(x, y, node, ha="center", va="center", fontsize=font_size + 1, zorder=4)
    ax.set_aspect("equal")
    ax.axis("off")
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    return ax
