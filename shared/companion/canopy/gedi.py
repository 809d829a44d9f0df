"""A GEDI simulator: RH100 along ISS-like tracks, with per-granule geolocation offsets, slope inflation and
outliers, rasterised to the 10 m grid in the official code's label format (one channel per granule, cm,
0 = no label).

Geometry (Pauls et al. 2024, section 3; GEDI's instrument description): footprints of 25 m diameter (a disk of
radius 1.25 px) every 60 m along-track (6 px), parallel beams across-track (600 m apart in orbit; the ``book``
world packs them closer so that 32 px patches carry labels), tracks at an azimuth of 30-60 degrees. RH100 is the
height of the highest return above the lowest ground return in the footprint, so on a slope it includes the
terrain relief across the disk: ``max(H + z) - min(z)`` over the disk (25 m x tan(slope) on a plane: the bias
the slope filter removes). A geolocation error is one systematic offset per granule (``N(0, sigma^2)`` per axis)
plus a small per-shot jitter; labels are written at the *reported* (offset) pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .world import PIXEL_M


@dataclass
class Gedi:
    """Simulated GEDI shots of one scene.

    ``labels``: (G, H, W) uint16 RH100 in cm at the reported pixels (0 = no label); ``offsets``: (G, 2) planted
    offsets (dx, dy) in pixels (x = column, y = row); ``shots``: per-shot arrays ``granule``, ``x``, ``y`` (true
    centre, pixels), ``col``, ``row`` (reported pixel), ``rh100`` (m, as labelled), ``rh100_clean`` (before
    noise and outliers), ``canopy`` (the true max canopy height in the footprint), ``outlier`` (bool), ``inside`` (the reported
    pixel lies in the scene, so the shot is labelled).
    """

    labels: np.ndarray
    offsets: np.ndarray
    shots: dict


def track_positions(
    shape: tuple[int, int],
    rng: np.random.Generator,
    beam_spacing_px: float = 60.0,
    along_px: float = 6.0,
    azimuth_range: tuple[float, float] = (30.0, 60.0),
) -> np.ndarray:
    """True footprint centres (x, y) in pixels of one granule: parallel beams ``beam_spacing_px`` apart, shots
    every ``along_px`` along a random azimuth (degrees from north, ascending or descending), covering the scene
    with random phases; only centres inside the scene are kept."""
    h, w = shape
    theta = np.radians(rng.uniform(*azimuth_range))
    sign = rng.choice([-1.0, 1.0])
    u = np.array([sign * np.sin(theta), -np.cos(theta)])  # along-track, y = row (pointing down)
    n = np.array([-u[1], u[0]])
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], float)
    across = corners @ n
    along = corners @ u
    c = np.arange(across.min() + rng.uniform(0, beam_spacing_px), across.max(), beam_spacing_px)
    t = np.arange(along.min() + rng.uniform(0, along_px), along.max(), along_px)
    cc, tt = np.meshgrid(c, t, indexing="ij")
    pts = cc.reshape(-1, 1) * n + tt.reshape(-1, 1) * u
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= h - 1)
    return pts[inside]


def footprint_rh100(
    height: np.ndarray, dem: np.ndarray, x: np.ndarray, y: np.ndarray, radius_px: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """RH100 of footprints centred at (x, y) (pixels; pixel (i, j) has its centre at x = j, y = i): over the
    pixels whose centres lie within ``radius_px``, ``max(H + z) - min(z)`` (canopy top above the lowest
    ground), and the slope-free canopy maximum ``max(H)``. Pixels outside the scene are ignored."""
    h, w = height.shape
    reach = int(np.ceil(radius_px)) + 1
    offs = np.arange(-reach, reach + 1)
    cols = np.rint(x)[:, None, None].astype(int) + offs[None, None, :]
    rows = np.rint(y)[:, None, None].astype(int) + offs[None, :, None]
    cols, rows = np.broadcast_arrays(cols, rows)
    inside = (cols - x[:, None, None]) ** 2 + (rows - y[:, None, None]) ** 2 <= radius_px**2
    inside &= (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    rc, cc = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    top = np.where(inside, height[rc, cc] + dem[rc, cc], -np.inf).max(axis=(1, 2))
    ground = np.where(inside, dem[rc, cc], np.inf).min(axis=(1, 2))
    canopy = np.where(inside, height[rc, cc], -np.inf).max(axis=(1, 2))
    return top - ground, canopy


def simulate(
    height: np.ndarray,
    dem: np.ndarray,
    sigma_m: float = 10.0,
    seed: int = 0,
    granules: int = 3,
    beam_spacing_px: float = 60.0,
    along_px: float = 6.0,
    radius_px: float = 1.25,
    noise_m: float = 1.0,
    outlier_fraction: float = 0.02,
    jitter_m: float = 3.0,
    offsets_px: np.ndarray | None = None,
) -> Gedi:
    """Simulate ``granules`` GEDI granules over a scene (see the module docstring).

    Offsets are ``sigma_m / 10 m`` times standard normal draws that depend on ``seed`` only, so scenes
    simulated at different ``sigma_m`` share tracks, noise and outliers and differ only in the size of the
    offsets; ``offsets_px`` (G x 2, (dx, dy) in pixels) overrides them. Labels are written in cm (at least 1,
    so that a 0 m return stays distinguishable from "no label"); of two shots of one granule in one pixel the
    later one is kept.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((granules, 2))
    offsets = z * sigma_m / PIXEL_M if offsets_px is None else np.asarray(offsets_px, float)
    labels = np.zeros((granules,) + height.shape, np.uint16)
    names = ("granule", "x", "y", "col", "row", "rh100", "rh100_clean", "canopy", "outlier", "inside")
    cols = {k: [] for k in names}
    h, w = height.shape
    for g in range(granules):
        pts = track_positions(height.shape, rng, beam_spacing_px, along_px)
        x, y = pts[:, 0], pts[:, 1]
        clean, canopy = footprint_rh100(height, dem, x, y, radius_px)
        rh = clean + noise_m * rng.standard_normal(len(x))
        outlier = rng.random(len(x)) < outlier_fraction
        rh = np.where(outlier, rng.uniform(0.0, 60.0, len(x)), rh)
        jitter = rng.standard_normal((len(x), 2)) * jitter_m / PIXEL_M
        col = np.rint(x + offsets[g, 0] + jitter[:, 0]).astype(int)
        row = np.rint(y + offsets[g, 1] + jitter[:, 1]).astype(int)
        keep = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        cm = np.maximum(np.rint(100.0 * np.clip(rh, 0.0, None)), 1).astype(np.uint16)
        labels[g, row[keep], col[keep]] = cm[keep]
        for k, v in zip(cols, (np.full(len(x), g), x, y, col, row, cm / 100.0, clean, canopy, outlier, keep)):
            cols[k].append(np.asarray(v))
    shots = {k: np.concatenate(v) for k, v in cols.items()}
    return Gedi(labels, offsets, shots)
