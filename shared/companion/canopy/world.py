"""A synthetic world with known canopy height, for the analog of Pauls et al. (2024).

The paper trains on Sentinel-1/2 composites with GEDI RH100 labels; none of that can be downloaded here. This
module builds a scene whose truth is known (seeded numpy only):

- terrain from a real DEM bundled with matplotlib (``jacksboro_fault_dem.npz``, about 3 arc-seconds, i.e.
  SRTM-like; or ``topobathy.npz``), a crop upsampled bilinearly to 10 m pixels, its relief rescaled so that a
  chosen fraction of the pixels is steeper than 20 degrees;
- the true canopy height ``H`` (forest mask from a thresholded Gaussian random field, fields cut out as
  rectangles with sharp edges, stand heights from a second field, lower toward ridges, a treeline, crowns);
- 14 input channels in the layout of the official code (4 Sentinel-1 channels in dB x 100, then 10 Sentinel-2
  bands B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 as reflectance x 10^4), with speckle, saturation in height and
  hillshade illumination;
- the "SRTM" slope: the slope of the DEM block-averaged to 30 m.

The GEDI simulator is :mod:`companion.canopy.gedi`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

PIXEL_M = 10.0  # metres per pixel (the Sentinel-2 grid of the paper)
S1_CHANNELS = ("VV asc", "VH asc", "VV desc", "VH desc")
S2_CHANNELS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
CHANNELS = S1_CHANNELS + S2_CHANNELS
RGB = (6, 5, 4)  # B4, B3, B2: the channels the official visualisation shows as RGB
# Endmember reflectances (B2 ... B12) of a closed canopy and of bare soil (shapes of typical spectra).
VEGETATION = np.array([0.030, 0.060, 0.030, 0.100, 0.250, 0.300, 0.350, 0.360, 0.170, 0.080])
SOIL = np.array([0.080, 0.110, 0.140, 0.170, 0.200, 0.220, 0.240, 0.250, 0.300, 0.260])


def load_dem(name: str = "jacksboro_fault_dem.npz") -> np.ndarray:
    """Elevation (metres, float) of one of matplotlib's bundled sample DEMs; for ``topobathy.npz`` the land
    part (sea set to 0)."""
    from matplotlib import cbook

    with np.load(cbook.get_sample_data(name, asfileobj=False)) as data:
        if "elevation" in data.files:
            return data["elevation"].astype(float)
        return np.clip(data["topo"].astype(float), 0.0, None)


def slope_degrees(dem: np.ndarray, pixel_m: float = PIXEL_M) -> np.ndarray:
    """Terrain slope in degrees by central finite differences (``np.gradient``) at pixel size ``pixel_m``."""
    gy, gx = np.gradient(dem, pixel_m)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def srtm_slope(dem: np.ndarray, block: int = 3, pixel_m: float = PIXEL_M) -> np.ndarray:
    """The slope the filter sees: the DEM block-averaged to ``block`` x ``pixel_m`` (30 m, SRTM's posting),
    its slope there, repeated back to the 10 m grid (the scene's sides must be multiples of ``block``; the
    remainder is padded by edge values)."""
    h, w = dem.shape
    ph, pw = -h % block, -w % block
    padded = np.pad(dem, ((0, ph), (0, pw)), mode="edge")
    coarse = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block).mean(axis=(1, 3))
    slope = slope_degrees(coarse, block * pixel_m)
    return np.repeat(np.repeat(slope, block, 0), block, 1)[:h, :w]


def gaussian_field(shape: tuple[int, int], scale_px: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary Gaussian random field: white noise filtered in Fourier space by a Gaussian of length
    ``scale_px``, standardised to mean 0 and standard deviation 1."""
    noise = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    spectrum = np.fft.fft2(noise) * np.exp(-2.0 * (np.pi * scale_px) ** 2 * (kx**2 + ky**2))
    out = np.fft.ifft2(spectrum).real
    return (out - out.mean()) / out.std()


def terrain(
    size: int, rng: np.random.Generator, steep_fraction: float = 0.15, dem: str = "jacksboro_fault_dem.npz"
) -> np.ndarray:
    """A ``size`` x ``size`` DEM at 10 m: a random crop (a sixth of the sample DEM's shorter side) of a bundled
    DEM, upsampled bilinearly, its relief normalised to [0, 1] and cubed (flat valley floors, steep ridges: the
    median slope is then about 6 degrees rather than 15) and scaled so that exactly ``steep_fraction`` of the
    pixels are steeper than 20 degrees (``slope = atan(s * abs(grad z))`` is monotone in s)."""
    z = load_dem(dem)
    crop = max(8, min(z.shape) // 6)
    i = rng.integers(0, z.shape[0] - crop)
    j = rng.integers(0, z.shape[1] - crop)
    patch = z[i : i + crop, j : j + crop]
    up = ndimage.zoom(patch, size / crop, order=1)[:size, :size]
    up = ((up - up.min()) / max(np.ptp(up), 1e-9)) ** 3  # flat valley floors, steep ridges
    gy, gx = np.gradient(up, PIXEL_M)
    grad = np.hypot(gx, gy)
    scale = np.tan(np.radians(20.0)) / max(np.quantile(grad, 1.0 - steep_fraction), 1e-9)
    return 200.0 + scale * up


def canopy_height(dem: np.ndarray, rng: np.random.Generator, fields: int = 10, max_height: float = 45.0) -> np.ndarray:
    """True canopy height (m): forest where a smooth random field exceeds a threshold (about 55 % cover),
    rectangular fields and clearings with sharp edges, stand heights 3-40 m from a second field, reduced toward
    high ground and zero above a treeline (the top 8 % of elevations), times a crown texture of Poisson crowns.
    Heavy at 0-10 m with a tail to about 40 m."""
    shape = dem.shape
    forest = gaussian_field(shape, 30.0, rng) > -0.15
    for _ in range(fields):
        h0, w0 = rng.integers(12, 70, size=2)
        i, j = rng.integers(0, shape[0] - h0), rng.integers(0, shape[1] - w0)
        forest[i : i + h0, j : j + w0] = False
    age = gaussian_field(shape, 20.0, rng)
    stand = np.clip(18.0 + 9.0 * age, 3.0, 40.0)
    rel = (dem - dem.min()) / max(np.ptp(dem), 1e-9)
    stand = stand * (1.0 - 0.5 * rel)
    forest &= rel < np.quantile(rel, 0.92)
    crowns = np.zeros(shape)
    n = rng.poisson(shape[0] * shape[1] / 6.0)
    crowns[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = 1.0
    crowns = ndimage.gaussian_filter(crowns, 0.8)
    crowns = crowns / crowns.max()
    height = stand * (0.8 + 0.4 * crowns) * forest
    return np.clip(height, 0.0, max_height)


def hillshade(dem: np.ndarray, azimuth: float = 135.0, altitude: float = 45.0) -> np.ndarray:
    """Illumination in [0, 1] by ``matplotlib.colors.LightSource.hillshade`` at 10 m pixels."""
    from matplotlib.colors import LightSource

    return LightSource(azdeg=azimuth, altdeg=altitude).hillshade(dem, dx=PIXEL_M, dy=PIXEL_M)


def sentinel1(height: np.ndarray, dem: np.ndarray, rng: np.random.Generator, looks: float = 4.0) -> np.ndarray:
    """Four S1-like channels in dB x 100: VV and VH, ascending and descending. Backscatter saturates in
    height (``a + b log(1 + H)``), is modulated by the terrain facing the sensor (ascending looks east,
    descending west: foreshortening-like, opposite signs) and carries multiplicative gamma speckle of
    ``looks`` looks."""
    gy, gx = np.gradient(dem, PIXEL_M)
    facing = np.degrees(np.arctan(gx))  # positive where the terrain rises toward the east
    grow = np.log1p(height)
    out = []
    for sign in (-1.0, 1.0):  # ascending (looks east: slopes facing west, gx > 0, are brighter) / descending
        vv = -15.0 + 2.2 * grow - sign * 0.12 * facing
        vh = -22.0 + 3.0 * grow - sign * 0.10 * facing
        for db in (vv, vh):
            speckle = rng.gamma(looks, 1.0 / looks, size=db.shape)
            out.append(db + 10.0 * np.log10(speckle))
    return np.stack(out)


def sentinel2(
    height: np.ndarray, dem: np.ndarray, rng: np.random.Generator, noise: float = 0.006, clouds: int = 0
) -> np.ndarray:
    """Ten S2-like bands (reflectance): a linear mixture of a vegetation and a soil spectrum weighted by the
    canopy cover ``1 - exp(-H / 6)`` (saturating by about 15 m), darkened by canopy shadow (``1 - 0.008 H``),
    times hillshade illumination, plus Gaussian noise; ``clouds`` rectangles are set to 0 (missing)."""
    cover = 1.0 - np.exp(-height / 6.0)
    light = (0.45 + 0.55 * hillshade(dem)) * (1.0 - 0.008 * height)
    refl = (cover[None] * VEGETATION[:, None, None] + (1.0 - cover[None]) * SOIL[:, None, None]) * light[None]
    refl = refl + noise * rng.standard_normal(refl.shape)
    for _ in range(clouds):
        h0, w0 = rng.integers(8, 40, size=2)
        i, j = rng.integers(0, height.shape[0] - h0), rng.integers(0, height.shape[1] - w0)
        refl[:, i : i + h0, j : j + w0] = 0.0
    return np.clip(refl, 0.0, 1.0)


def encode_inputs(s1_db: np.ndarray, s2_reflectance: np.ndarray) -> np.ndarray:
    """The 14 channels as the real patches store them: int16, S1 in dB x 100, S2 in reflectance x 10^4."""
    s1 = np.round(100.0 * s1_db)
    s2 = np.round(1e4 * s2_reflectance)
    return np.concatenate([s1, s2]).astype(np.int16)


@dataclass
class World:
    """One synthetic scene: ``dem`` (m), ``slope`` (degrees, 10 m), ``srtm_slope`` (degrees, from the 30 m
    DEM), ``height`` (true canopy height, m), ``inputs`` (14 x H x W, int16, the real data's scaling) and
    ``top``: the true canopy top height a footprint centred on each pixel would see on flat ground (the
    maximum of ``height`` over the 25 m disk, see :func:`top_height`): the truth the chapter's "against the
    truth" metrics use, since RH100 is a maximum over the footprint."""

    dem: np.ndarray
    slope: np.ndarray
    srtm_slope: np.ndarray
    height: np.ndarray
    inputs: np.ndarray
    seed: int
    top: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    settings: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height.shape


def top_height(height: np.ndarray, radius_px: float = 1.25) -> np.ndarray:
    """The maximum of ``height`` over the pixels whose centres lie within ``radius_px`` of each pixel centre
    (for 1.25 px: the pixel and its four edge neighbours)."""
    r = int(np.ceil(radius_px))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = xx**2 + yy**2 <= radius_px**2
    return ndimage.maximum_filter(height, footprint=disk, mode="nearest")


def make_world(
    size: int = 512, seed: int = 0, steep_fraction: float = 0.15, clouds: int = 0, dem: str = "jacksboro_fault_dem.npz"
) -> World:
    """Build the synthetic scene (deterministic in ``seed``); see the module docstring."""
    rng = np.random.default_rng(seed)
    z = terrain(size, rng, steep_fraction, dem)
    height = canopy_height(z, rng)
    inputs = encode_inputs(sentinel1(height, z, rng), sentinel2(height, z, rng, clouds=clouds))
    settings = {"size": size, "seed": seed, "steep_fraction": steep_fraction, "clouds": clouds, "dem": dem}
    return World(z, slope_degrees(z), srtm_slope(z), height, inputs, seed, top_height(height), settings)


def pseudo_rgb(inputs: np.ndarray, channels=RGB) -> np.ndarray:
    """(H, W, 3) pseudo-RGB in [0, 1] from the S2 channels B4, B3, B2, each stretched between its 2nd and
    98th percentile."""
    out = []
    for c in channels:
        band = inputs[c].astype(float)
        lo, hi = np.percentile(band, [2, 98])
        out.append(np.clip((band - lo) / max(hi - lo, 1e-9), 0, 1))
    return np.stack(out, -1)
