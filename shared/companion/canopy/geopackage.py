"""GEDI shots from an OGC GeoPackage, read with the standard library (``sqlite3`` and ``struct``).

A GeoPackage (OGC 12-128r18) is an SQLite database. ``gpkg_contents`` lists its tables (``data_type =
'features'`` for vector layers), ``gpkg_geometry_columns`` names each layer's geometry column and its spatial
reference id ``srs_id``, and ``gpkg_spatial_ref_sys`` maps the id to a CRS (``organization``,
``organization_coordsys_id``, ``definition`` as WKT). Every geometry is a blob: the GeoPackage binary header
(clause 2.1.3)

- ``magic`` ``b"GP"``, ``version`` (1 byte, 0 = version 1), ``flags`` (1 byte),
- ``srs_id`` (int32), then an envelope of 0, 32, 48, 48 or 64 bytes,

followed by the geometry as ISO well-known binary (WKB). In ``flags``, bit 0 is the byte order of
``srs_id`` and the envelope (1 = little endian), bits 1-3 the envelope indicator (0: none; 1: x and y; 2: x, y,
z; 3: x, y, m; 4: x, y, z, m; 8 bytes per bound, two bounds per axis), bit 4 the empty-geometry flag and bit 5
the extended-type flag. The WKB carries its own byte order. Coordinates are always (x, y) = (easting or
longitude, northing or latitude), whatever the CRS's axis order (clause 2.1.3.1.1).
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np

ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
WKB_POINT = 1  # ISO WKB type codes: 1 Point, 1001 Point Z, 2001 Point M, 3001 Point ZM


def parse_point(blob: bytes) -> tuple[float, float]:
    """(x, y) of a GeoPackage point geometry blob (header + WKB point, any byte orders, any envelope; Z and M
    ordinates are skipped). An empty point gives (nan, nan); other geometry types raise ``ValueError``."""
    blob = bytes(blob)
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob (magic bytes are not 'GP')")
    flags = blob[3]
    if flags & 0b100000:
        raise ValueError("extended GeoPackage geometry types are not supported")
    indicator = (flags >> 1) & 0b111
    if indicator not in ENVELOPE_BYTES:
        raise ValueError(f"invalid GeoPackage envelope indicator {indicator}")
    wkb = blob[8 + ENVELOPE_BYTES[indicator] :]
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", wkb[1:5])
    if kind % 1000 != WKB_POINT or kind >= 4000:
        raise ValueError(f"GEDI shots must be points, found WKB geometry type {kind}")
    if flags & 0b10000:
        return float("nan"), float("nan")
    x, y = struct.unpack(order + "dd", wkb[5:21])
    return x, y


def _crs(con: sqlite3.Connection, srs_id: int, path) -> str:
    row = con.execute(
        "SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
        (srs_id,),
    ).fetchone()
    if row is None or srs_id in (-1, 0):
        raise ValueError(f"{path}: the points' spatial reference (srs_id {srs_id}) is undefined; need a real CRS")
    org, code, definition = row
    if str(org).upper() == "EPSG":
        return f"EPSG:{int(code)}"
    wkt = (definition or "").strip()
    if wkt.upper().startswith(("LOCAL_CS", "ENGCRS", "ENGINEERINGCRS")):
        raise ValueError(f"{path}: the points' spatial reference ({org}:{code}) is a local, undefined CRS")
    if wkt and wkt.lower() != "undefined":
        return wkt
    raise ValueError(f"{path}: the CRS of srs_id {srs_id} ({org}:{code}) has no definition")


def read_points(path: str | Path, layer: str | None = None, columns=("rh100", "granule")) -> dict:
    """The point layer of a GeoPackage: ``x`` and ``y`` (float arrays, the geometry's coordinates), one list per
    name in ``columns`` and ``crs`` (``"EPSG:<code>"`` or the WKT definition). ``layer`` names the table; it
    may be left out when the file has a single feature table. Missing columns, several layers, an undefined
    CRS (``srs_id`` -1 or 0, or a local engineering CRS such as GDAL's "Undefined SRS") or non-point geometries
    raise ``ValueError`` with one line naming them."""
    path = Path(path)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")]
        if layer is None:
            if len(tables) != 1:
                raise ValueError(f"{path}: choose the layer of GEDI shots among {tables}")
            layer = tables[0]
        elif layer not in tables:
            raise ValueError(f"{path}: no feature table {layer!r}; has {tables}")
        geom, srs_id = con.execute(
            "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
        have = [r[1] for r in con.execute(f'PRAGMA table_info("{layer}")')]
        missing = [c for c in columns if c not in have]
        if missing:
            raise ValueError(f"{path}: layer {layer!r} needs columns {list(columns)}, lacks {missing}")
        crs = _crs(con, srs_id, path)
        select = ", ".join(f'"{c}"' for c in (geom, *columns))
        rows = con.execute(f'SELECT {select} FROM "{layer}" WHERE "{geom}" IS NOT NULL').fetchall()
    finally:
        con.close()
    xy = np.array([parse_point(r[0]) for r in rows], dtype=float).reshape(-1, 2)
    out = {"x": xy[:, 0], "y": xy[:, 1], "crs": crs}
    out.update({c: [r[k + 1] for r in rows] for k, c in enumerate(columns)})
    return out
