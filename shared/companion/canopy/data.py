"""Patches, the official code's dataset format, the weighted patch sampler and the real-data loaders.

Format (official ``training/runner.py`` and the CSVs of its dataset): one ``.npz`` per patch with ``data``
(14, P, P) and ``labels`` (G, P, P) in cm (0 = no label; the loader divides by 100 and keeps the first 3
granule channels), and CSV indices (``train.csv``, ``val.csv``, ...) with columns ``paths``, ``g5`` ...
``g30`` (labels above 5 ... 30 m), ``totals`` (labels), ``transforms``, ``epsg``, ``lat``, ``long`` and
``has_corrupt_s2_channel_flag`` (corrupt rows are dropped).

Real data for the ``paper`` profile (GeoTIFF route, read with ``rasterio``): a 14-band S1/S2 composite, GEDI
shots as a CSV (``lon``, ``lat``, ``rh100`` in m, ``granule``) rasterised onto the composite's grid, an SRTM
DEM for the slope; all read in windows so that scenes larger than memory stream. The shots may also come as
a GeoPackage (:mod:`~companion.canopy.geopackage`, read with the standard library).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .gedi import Gedi
from .losses import slope_filter
from .world import PIXEL_M, World, slope_degrees

THRESHOLDS_M = (5, 10, 15, 20, 25, 30)
MAX_GRANULES = 3


@dataclass
class Patches:
    """Patches of a scene: ``data`` (N, 14, P, P) int16, ``labels`` (N, 3, P, P) uint16 cm, ``truth``
    (N, P, P) m (the world's footprint-scale true height ``World.top``), ``slope`` (N, P, P) SRTM slope in degrees, ``origin`` (N, 2) row/column of the top-left
    pixel, ``granules`` (N, 3) the granule id of every label channel (-1: empty), ``split`` (N,) names."""

    data: np.ndarray
    labels: np.ndarray
    truth: np.ndarray
    slope: np.ndarray
    origin: np.ndarray
    granules: np.ndarray
    split: np.ndarray

    def select(self, name: str) -> Patches:
        """The patches of one split."""
        keep = self.split == name
        return Patches(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.data)


def split_rows(n_rows: int, splits: dict[str, tuple[int, int]]) -> np.ndarray:
    """Split name of every patch row from ``{name: (first, stop)}`` ranges of patch rows (rows not named, the
    gaps that keep the splits spatially disjoint, get ``""``)."""
    out = np.full(n_rows, "", dtype=object)
    for name, (a, b) in splits.items():
        out[a:b] = name
    return out


def extract_patches(world: World, gedi: Gedi, size: int, row_splits: dict[str, tuple[int, int]]) -> Patches:
    """Cut the scene into non-overlapping ``size`` x ``size`` patches, assigned to splits by patch row
    (``row_splits`` as in :func:`split_rows`; patches in no split are dropped). Each patch keeps at most 3
    granule channels: the granules with labels in the patch, in id order (the official loader's cap)."""
    h, w = world.shape
    names = split_rows(h // size, row_splits)
    data, labels, truth, slope, origin, granules, split = [], [], [], [], [], [], []
    for i in range(h // size):
        if not names[i]:
            continue
        for j in range(w // size):
            r, c = i * size, j * size
            lab = gedi.labels[:, r : r + size, c : c + size]
            present = [g for g in range(len(lab)) if lab[g].any()][:MAX_GRANULES]
            chans = np.zeros((MAX_GRANULES, size, size), np.uint16)
            ids = np.full(MAX_GRANULES, -1)
            for k, g in enumerate(present):
                chans[k], ids[k] = lab[g], g
            data.append(world.inputs[:, r : r + size, c : c + size])
            labels.append(chans)
            truth.append(world.top[r : r + size, c : c + size])
            slope.append(world.srtm_slope[r : r + size, c : c + size])
            origin.append((r, c))
            granules.append(ids)
            split.append(names[i])
    return Patches(
        *(
            np.stack(v) if k < 6 else np.array(v)
            for k, v in enumerate((data, labels, truth, slope, origin, granules, split))
        )
    )


def counts(labels_cm: np.ndarray) -> dict[str, int]:
    """The CSV counts of one patch: ``g5`` ... ``g30`` (labels above 5 ... 30 m, over all granule channels)
    and ``totals`` (labels)."""
    m = labels_cm.astype(float) / 100.0
    out = {f"g{t}": int((m > t).sum()) for t in THRESHOLDS_M}
    out["totals"] = int((labels_cm != 0).sum())
    return out


def sampler_weights(g10, totals, quantile: float | None = 10.0) -> np.ndarray:
    """Patch weights of the official weighted sampler: ``g10 / totals`` (the share of labels above 10 m),
    NaN (no labels) -> 0; with ``quantile`` (percent, ``use_weighting_quantile``) clipped from below at that
    quantile of the non-zero weights and from above at 1."""
    g10, totals = np.asarray(g10, float), np.asarray(totals, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = g10 / totals
    w = np.nan_to_num(w, nan=0.0, posinf=0.0)
    if quantile is not None and (w > 0).any():
        w = np.clip(w, np.quantile(w[w > 0], quantile / 100.0), 1.0)
    return w


def weighted_order(weights: np.ndarray, n: int, seed: int) -> torch.Tensor:
    """``n`` patch indices drawn with replacement with probability proportional to ``weights`` (as
    ``torch.utils.data.WeightedRandomSampler``), from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.as_tensor(weights, dtype=torch.float64), n, replacement=True, generator=g)


# ----------------------------------------------------------------------------------------------- the format
def write_patch_dataset(root: str | Path, patches: Patches, epsg: int = 32633, pixel_m: float = PIXEL_M) -> Path:
    """Write ``patches`` in the official format: ``<root>/patches/<split>_<k>.npz`` (``data``, ``labels``)
    and one ``<split>.csv`` per split. ``transforms`` holds the patch's affine (a, b, c, d, e, f) of a
    synthetic UTM grid whose origin is (500000, 5000000)."""
    root = Path(root)
    (root / "patches").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {}
    for k in range(len(patches)):
        name = str(patches.split[k])
        rel = f"patches/{name}_{k:05d}.npz"
        np.savez(root / rel, data=patches.data[k], labels=patches.labels[k])
        r, c = patches.origin[k]
        transform = (pixel_m, 0.0, 500000.0 + c * pixel_m, 0.0, -pixel_m, 5000000.0 - r * pixel_m)
        row = {"paths": rel, **counts(patches.labels[k])}
        row.update(transforms=" ".join(str(float(v)) for v in transform), epsg=epsg, lat=45.0, long=15.0)
        row["has_corrupt_s2_channel_flag"] = False
        rows.setdefault(name, []).append(row)
    for name, items in rows.items():
        with open(root / f"{name}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(items[0]))
            writer.writeheader()
            writer.writerows(items)
    return root


def read_patch_dataset(root: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Read one split of the official format: inputs (N, 14, P, P) float32, labels (N, <=3, P, P) in **metres**
    (cm / 100, first 3 granule channels) and the CSV rows; rows flagged ``has_corrupt_s2_channel_flag`` are
    dropped. A missing index or patch file stops with one line naming it."""
    root = Path(root)
    index = root / f"{split}.csv"
    if not index.is_file():
        raise FileNotFoundError(f"missing dataset index {index}")
    with open(index, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("has_corrupt_s2_channel_flag", "False") not in ("True", "1")]
    missing = [r["paths"] for r in rows if not (root / r["paths"]).is_file()]
    if missing:
        raise FileNotFoundError(f"missing patch files under {root}: {', '.join(missing[:5])}")
    data, labels = [], []
    for r in rows:
        with np.load(root / r["paths"]) as z:
            data.append(z["data"].astype(np.float32))
            labels.append(z["labels"][:MAX_GRANULES].astype(np.float32) / 100.0)
    return np.stack(data), np.stack(labels), rows


def normalisation(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over (N, C, H, W) or (C, H, W) inputs (missing zeros included,
    as the official per-channel standardisation)."""
    axes = (0, 2, 3) if data.ndim == 4 else (1, 2)
    x = data.astype(np.float64)
    return x.mean(axes), np.maximum(x.std(axes), 1e-6)


def to_tensor(data: np.ndarray, stats: tuple[np.ndarray, np.ndarray], channels=None) -> torch.Tensor:
    """Standardised float32 inputs; ``channels`` selects input channels (e.g. S2 only: range(4, 14))."""
    mean, std = stats
    shape = (1, -1, 1, 1) if data.ndim == 4 else (-1, 1, 1)
    x = (data.astype(np.float64) - mean.reshape(shape)) / std.reshape(shape)
    if channels is not None:
        x = x[:, list(channels)] if data.ndim == 4 else x[list(channels)]
    return torch.from_numpy(x.astype(np.float32))


def labels_in_metres(labels_cm: np.ndarray, slope=None, max_slope: float | None = None) -> torch.Tensor:
    """Labels (cm) as float32 metres, with the slope filter applied when ``max_slope`` is given (``slope``
    broadcasting over the granule axis)."""
    lab = labels_cm.astype(np.float32) / 100.0
    if max_slope is not None:
        lab = slope_filter(lab, np.asarray(slope)[:, None] if lab.ndim == 4 else slope, max_slope)
    return torch.from_numpy(lab)


# ----------------------------------------------------------------------------------------- GeoTIFF route
def write_geotiff(path: str | Path, array: np.ndarray, crs: str, transform) -> Path:
    """Write a (bands, H, W) or (H, W) array as a GeoTIFF with ``crs`` (e.g. ``"EPSG:32633"``) and an affine
    ``transform`` (``rasterio.transform.from_origin`` ...)."""
    import rasterio

    arr = array[None] if array.ndim == 2 else array
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[1],
        width=arr.shape[2],
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
    ) as dst:
        dst.write(arr)
    return Path(path)


def read_geotiff(path: str | Path, window=None) -> tuple[np.ndarray, object, object]:
    """(bands, h, w) array, CRS and the affine transform of ``window`` (a ``rasterio.windows.Window`` or
    ``((row0, row1), (col0, col1))``; ``None`` reads everything)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        if window is not None and not isinstance(window, Window):
            (r0, r1), (c0, c1) = window
            window = Window(c0, r0, c1 - c0, r1 - r0)
        arr = src.read(window=window)
        transform = src.window_transform(window) if window is not None else src.transform
        return arr, src.crs, transform


def windows(path: str | Path, size: int):
    """Iterate ``(window, array)`` over ``size`` x ``size`` blocks of a raster (the last ones clipped at the
    border), reading one block at a time so that a scene larger than memory streams."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        for r in range(0, src.height, size):
            for c in range(0, src.width, size):
                win = Window(c, r, min(size, src.width - c), min(size, src.height - r))
                yield win, src.read(window=win)


def read_gedi_points(path: str | Path, layer: str | None = None) -> dict:
    """GEDI shots from a CSV (``lon``, ``lat`` in degrees, EPSG:4326, ``rh100`` in m, ``granule`` id) or a
    GeoPackage (``.gpkg``: a point layer with ``rh100`` and ``granule`` columns, in any CRS that its
    ``gpkg_spatial_ref_sys`` defines; :func:`~companion.canopy.geopackage.read_points`): ``x``, ``y``
    (float arrays in ``crs``), ``rh100`` (float array, m), ``granule`` (list of str) and ``crs``."""
    path = Path(path)
    if path.suffix.lower() == ".gpkg":
        from .geopackage import read_points

        pts = read_points(path, layer)
        rh = np.array([np.nan if v is None else float(v) for v in pts["rh100"]], dtype=float)
        return {
            "x": pts["x"],
            "y": pts["y"],
            "rh100": rh,
            "granule": [str(g) for g in pts["granule"]],
            "crs": pts["crs"],
        }
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"lon", "lat", "rh100", "granule"}
    if rows and not need <= set(rows[0]):
        raise ValueError(f"{path} needs columns {sorted(need)}, has {sorted(rows[0])}")
    return {
        "x": np.array([float(r["lon"]) for r in rows], dtype=float),
        "y": np.array([float(r["lat"]) for r in rows], dtype=float),
        "rh100": np.array([float(r["rh100"]) for r in rows], dtype=float),
        "granule": [r["granule"] for r in rows],
        "crs": "EPSG:4326",
    }


def rasterise_gedi(
    points_path: str | Path, crs, transform, shape: tuple[int, int], granules: int = MAX_GRANULES
) -> np.ndarray:
    """GEDI shots (:func:`read_gedi_points`: a CSV in EPSG:4326 or a GeoPackage in its own CRS) on a raster
    grid: (``granules``, H, W) uint16 in cm (0 = no label), one channel per granule in order of first
    appearance, coordinates transformed from the points' CRS to the raster's ``crs``, each shot at the pixel
    containing its centre; shots outside the grid, without coordinates or height, and granules beyond
    ``granules`` are dropped."""
    from rasterio.transform import rowcol
    from rasterio.warp import transform as warp

    pts = read_gedi_points(points_path)
    out = np.zeros((granules,) + tuple(shape), np.uint16)
    if not len(pts["x"]):
        return out
    xs, ys = warp(pts["crs"], crs, pts["x"].tolist(), pts["y"].tolist())
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(pts["rh100"])
    rr, cc = np.full(len(xs), -1), np.full(len(xs), -1)
    if ok.any():
        r_ok, c_ok = rowcol(transform, xs[ok].tolist(), ys[ok].tolist())
        rr[ok], cc[ok] = np.atleast_1d(r_ok), np.atleast_1d(c_ok)
    order: dict[str, int] = {}
    for r, c, h, g_id, good in zip(rr, cc, pts["rh100"], pts["granule"], ok):
        g = order.setdefault(g_id, len(order))
        if good and g < granules and 0 <= r < shape[0] and 0 <= c < shape[1]:
            out[g, r, c] = max(1, int(round(100 * float(h))))
    return out


def slope_from_dem(path: str | Path, window=None) -> np.ndarray:
    """Slope (degrees) of a DEM GeoTIFF in a projected CRS (pixel size from its transform)."""
    dem, _, transform = read_geotiff(path, window)
    return slope_degrees(dem[0].astype(float), abs(transform.a))


PAPER_FILES = ("s1s2.tif", "srtm.tif")
POINT_FILES = ("gedi.gpkg", "gedi.csv")


def load_scene(data_root: str | Path, window=None) -> dict:
    """The ``paper`` profile's scene from ``data_root``: ``s1s2.tif`` (14 bands: 4 S1 in dB x 100, 10 S2 as
    reflectance x 10^4), the GEDI shots ``gedi.gpkg`` or, if there is none, ``gedi.csv``
    (:func:`read_gedi_points`), ``srtm.tif`` (DEM on the same grid). Returns ``inputs``, ``labels`` (cm),
    ``srtm_slope``, ``crs``, ``transform``. Missing files stop with one line naming them."""
    root = Path(data_root or ".")
    missing = [f for f in PAPER_FILES if not (root / f).is_file()]
    points = next((root / f for f in POINT_FILES if (root / f).is_file()), None)
    if points is None:
        missing.insert(1, " or ".join(reversed(POINT_FILES)))
    if missing:
        raise FileNotFoundError(f"paper profile: missing {', '.join(missing)} under {root.resolve()}")
    inputs, crs, transform = read_geotiff(root / "s1s2.tif", window)
    if inputs.shape[0] != 14:
        raise ValueError(f"{root / 's1s2.tif'} has {inputs.shape[0]} bands, expected 14")
    labels = rasterise_gedi(points, crs, transform, inputs.shape[1:])
    dem, _, dem_transform = read_geotiff(root / "srtm.tif", window)
    slope = slope_degrees(dem[0].astype(float), abs(dem_transform.a))
    return {"inputs": inputs, "labels": labels, "srtm_slope": slope, "crs": crs, "transform": transform}
