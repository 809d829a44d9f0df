"""Matplotlib helpers to draw periodic colorings, test circles and learned colorings."""

from __future__ import annotations

import numpy as np

from .geometry import diameter_pair, polygon_diameter
from .periodic import PeriodicColoring
from .verify import closest_points, color_gaps

__all__ = ["COLORING_PALETTE", "coloring_cmap", "draw_coloring", "draw_test_circles", "draw_raster"]

# five muted colours for the unit-distance classes, red for the sixth colour (as in the paper's figures)
COLORING_PALETTE = ["#4c72b0", "#55a868", "#dd8452", "#8172b3", "#ccb974", "#c44e52", "#64b5cd"]


def coloring_cmap(n_colors: int = 6):
    """A ListedColormap with :data:`COLORING_PALETTE`'s first ``n_colors`` entries."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(COLORING_PALETTE[:n_colors])


def draw_coloring(
    ax,
    coloring: PeriodicColoring,
    xlim=(-1.5, 1.5),
    ylim=(-1.5, 1.5),
    edgecolor="white",
    linewidth=0.6,
    show_cell: bool = False,
    alpha: float = 1.0,
):
    """Fill every tile translate meeting the window with its colour; optionally outline one period cell."""
    from matplotlib.patches import Polygon

    for P, c in coloring.tiles_in_window(xlim, ylim, margin=0.5):
        ax.add_patch(
            Polygon(
                P, closed=True, facecolor=COLORING_PALETTE[c], edgecolor=edgecolor, linewidth=linewidth, alpha=alpha
            )
        )
    if show_cell:
        v1, v2 = coloring.lattice
        cell = np.array([[0, 0], v1, v1 + v2, v2])
        ax.add_patch(Polygon(cell, closed=True, fill=False, edgecolor="black", linestyle="--", linewidth=1.0))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    return ax


def draw_test_circles(
    ax,
    coloring: PeriodicColoring,
    color: int,
    d: float | None = None,
    tile: int | None = None,
    circle_kw: dict | None = None,
    center=None,
    which: str = "both",
):
    """Draw the two extremal configurations of colour ``color`` (0-based) as test circles.

    Around one end of the diameter of the colour's widest tile a circle of radius ``d`` (default
    the colour's forbidden distance) shows that the tile stays inside; around the closest point of
    the nearest same-coloured tile a second circle shows that the other tile stays outside.  Both
    configurations are moved by lattice vectors next to ``center`` (default: the centre of the view).
    ``which`` selects ``"diameter"``, ``"gap"`` or ``"both"`` configurations.
    """
    from matplotlib.patches import Circle

    d = float(coloring.distances[color]) if d is None else d
    kw = dict(fill=False, linestyle="--", linewidth=1.2, edgecolor="black")
    kw.update(circle_kw or {})
    idx = np.nonzero(coloring.colors == color)[0]
    if tile is None:
        diams = [polygon_diameter(coloring.tiles[i]) for i in idx]
        tile = int(idx[int(np.argmax(diams))])
    if center is None:
        center = (np.mean(ax.get_xlim()), np.mean(ax.get_ylim()))
    center = np.asarray(center, float)
    inv = np.linalg.inv(coloring.lattice)

    def near(*pts):  # move points by the lattice vector that brings their midpoint closest to center
        mid = np.mean(pts, 0)
        base = np.floor((center - mid) @ inv)
        best = min(
            ((base + np.array(o)) @ coloring.lattice for o in ((0, 0), (1, 0), (0, 1), (1, 1))),
            key=lambda t: np.hypot(*(mid + t - center)),
        )
        return [pt + best for pt in pts]

    lc = kw.get("edgecolor", "black")
    if which in ("both", "diameter"):
        a, b = near(*diameter_pair(coloring.tiles[tile]))
        ax.add_patch(Circle(a, d, **kw))
        ax.plot(*np.stack([a, b]).T, ".-", color=lc, linewidth=1.0, markersize=4)
    if which in ("both", "gap"):
        w = color_gaps(coloring, [color])[color]
        p, q = near(*closest_points(coloring.tiles[w.i], coloring.tiles[w.j] + w.shift))
        ax.add_patch(Circle(p, d, **kw))
        ax.plot(*np.stack([p, q]).T, ".-", color=lc, linewidth=1.0, markersize=4)
    return ax


def draw_raster(
    ax, img: np.ndarray, box: float, conflicts: np.ndarray | None = None, n_colors: int = 6, marker_size: float = 1.0
):
    """Show an argmax colour raster over ``[-box, box]^2`` and mark conflicted grid points in black."""
    ax.imshow(
        img,
        origin="lower",
        extent=[-box, box, -box, box],
        cmap=coloring_cmap(n_colors),
        vmin=0,
        vmax=n_colors - 1,
        interpolation="nearest",
    )
    if conflicts is not None and conflicts.any():
        t = np.linspace(-box, box, img.shape[0])
        yy, xx = np.nonzero(conflicts)
        ax.scatter(t[xx], t[yy], s=marker_size, c="black", marker="s", linewidths=0)
    ax.grid(False)
    ax.set_aspect("equal")
    return ax
