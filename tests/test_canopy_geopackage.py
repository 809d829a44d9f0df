"""GEDI shots as a GeoPackage (companion.canopy.geopackage): the standard-library reader against files written by
an independent writer (pyogrio, i.e. GDAL's GPKG driver) and against blobs built byte by byte from the
specification (OGC 12-128r18, clause 2.1.3), and the CRS handling when the shots are rasterised."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from companion import canopy
from companion.canopy import data as cdata
from companion.canopy import geopackage as gpkg

pyogrio = pytest.importorskip("pyogrio")
from rasterio.transform import from_origin  # noqa: E402
from rasterio.warp import transform as warp  # noqa: E402

TRANSFORM = from_origin(500000.0, 5000000.0, 10.0, 10.0)  # EPSG:32633, 10 m pixels
CELLS = [(3, 4, "a", 12.34), (10, 20, "b", 30.0), (50, 60, "a", 5.0), (63, 0, "c", 41.5)]


def wkb_point(x: float, y: float, big: bool = False) -> bytes:
    order = ">" if big else "<"
    return struct.pack(order + "BIdd", 0 if big else 1, 1, x, y)


def write_points(path, crs: str, cells=CELLS, columns=("rh100", "granule")) -> None:
    """Shots at the centres of raster pixels (row, col), written by pyogrio in ``crs`` (``None``: no CRS)."""
    xs = [500000.0 + (c + 0.5) * 10 for _, c, _, _ in cells]
    ys = [5000000.0 - (r + 0.5) * 10 for r, _, _, _ in cells]
    x, y = warp("EPSG:32633", crs, xs, ys) if crs else (xs, ys)
    geometry = np.array([wkb_point(a, b) for a, b in zip(x, y)], dtype=object)
    fields = {
        "rh100": np.array([h for *_, h in cells], dtype=float),
        "granule": np.array([g for _, _, g, _ in cells], dtype=object),
    }
    cols = [c for c in columns if c in fields]
    pyogrio.raw.write(
        str(path),
        geometry,
        [fields[c] for c in cols],
        cols,
        layer="shots",
        driver="GPKG",
        geometry_type="Point",
        crs=crs,
    )


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:32633", "EPSG:3035"])
def test_geopackage_shots_rasterised_from_their_crs(tmp_path, crs):
    path = tmp_path / "gedi.gpkg"
    write_points(path, crs)
    pts = gpkg.read_points(path)
    assert pts["crs"] == crs and pts["rh100"] == [12.34, 30.0, 5.0, 41.5] and pts["granule"] == list("abac")
    lab = cdata.rasterise_gedi(path, "EPSG:32633", TRANSFORM, (64, 64))
    assert lab.shape == (3, 64, 64) and (lab > 0).sum() == 4
    assert lab[0, 3, 4] == 1234 and lab[1, 10, 20] == 3000 and lab[0, 50, 60] == 500 and lab[2, 63, 0] == 4150


def test_paper_scene_prefers_the_geopackage_and_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"s1s2.tif, gedi.csv or gedi.gpkg, srtm.tif"):
        canopy.load_scene(tmp_path)
    canopy.write_geotiff(tmp_path / "s1s2.tif", np.zeros((14, 64, 64), np.int16), "EPSG:32633", TRANSFORM)
    canopy.write_geotiff(tmp_path / "srtm.tif", np.zeros((64, 64), np.float32), "EPSG:32633", TRANSFORM)
    with pytest.raises(FileNotFoundError, match=r"^paper profile: missing gedi.csv or gedi.gpkg under"):
        canopy.load_scene(tmp_path)
    (tmp_path / "gedi.csv").write_text("lon,lat,rh100,granule\n")  # empty CSV: would give no labels
    write_points(tmp_path / "gedi.gpkg", "EPSG:4326")
    scene = canopy.load_scene(tmp_path)
    assert (scene["labels"] > 0).sum() == 4 and scene["labels"][1, 10, 20] == 3000


def test_undefined_crs_and_missing_columns_are_rejected(tmp_path):
    write_points(tmp_path / "nocrs.gpkg", None)  # GDAL writes an undefined spatial reference
    with pytest.raises(ValueError, match="undefined"):
        gpkg.read_points(tmp_path / "nocrs.gpkg")
    write_points(tmp_path / "nogranule.gpkg", "EPSG:4326", columns=("rh100",))
    with pytest.raises(ValueError, match=r"lacks \['granule'\]"):
        cdata.read_gedi_points(tmp_path / "nogranule.gpkg")


def header(flags: int, envelope: bytes, srs_id: int = 4326, big: bool = False) -> bytes:
    return b"GP" + bytes([0, flags]) + struct.pack((">" if big else "<") + "i", srs_id) + envelope


def test_point_blobs_with_every_envelope_and_byte_order():
    plain = header(0b1, b"") + wkb_point(13.5, 45.25)
    assert gpkg.parse_point(plain) == (13.5, 45.25)
    xy_env_big = header(0b010, struct.pack(">4d", 13.5, 13.5, 45.25, 45.25), big=True) + wkb_point(13.5, 45.25, True)
    assert gpkg.parse_point(xy_env_big) == (13.5, 45.25)
    zm = struct.pack("<BIdddd", 1, 3001, 1.0, 2.0, 3.0, 4.0)  # ISO WKB Point ZM
    xyzm_env = header(0b1001, struct.pack("<8d", 1, 1, 2, 2, 3, 3, 4, 4)) + zm
    assert gpkg.parse_point(xyzm_env) == (1.0, 2.0)
    empty = header(0b10001, b"") + struct.pack("<BIdd", 1, 1, np.nan, np.nan)
    assert all(np.isnan(gpkg.parse_point(empty)))
    with pytest.raises(ValueError, match="must be points"):
        gpkg.parse_point(header(0b1, b"") + struct.pack("<BII", 1, 2, 0))  # an empty LineString
    with pytest.raises(ValueError, match="magic"):
        gpkg.parse_point(b"XX" + plain[2:])
