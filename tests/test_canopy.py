"""Unit tests of companion.canopy (Pauls et al. 2024): GEDI simulator, shift-resilient loss, slope filter,
metrics, tiled inference, GeoTIFF and patch-format round trips, sampler weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from companion import canopy
from companion.canopy import data as cdata
from companion.canopy import losses
from sklearn.metrics import mean_absolute_error, mean_squared_error


def test_scaled_huber_values():
    r = torch.tensor([0.5, 1.0, 3.0, 5.0, 10.0])
    got = losses.pointwise("huber", r, 3.0)
    assert torch.allclose(got, torch.tensor([0.5**2 / 6, 1 / 6, 1.5, 3.5, 8.5]), atol=1e-6)
    with pytest.raises(ValueError):
        losses.pointwise("huberf", r)


def test_gedi_offsets_and_footprint_maxima_on_hand_built_scene():
    h = np.zeros((40, 40))
    h[20, 20] = 30.0  # one tall tree
    dem = np.zeros((40, 40))
    rh, canopy_max = canopy.footprint_rh100(h, dem, np.array([20.0, 21.0, 21.6]), np.array([20.0, 20.0, 20.0]))
    # 1.25 px disk: (21, 20) reaches the tree at distance 1, (21.6, 20) does not (1.6 > 1.25)
    assert rh.tolist() == [30.0, 30.0, 0.0] and canopy_max.tolist() == [30.0, 30.0, 0.0]
    # a plane rising 0.5 m per metre in x: relief over the disk is 2 x 1 px x 10 m x 0.5 = 10 m
    plane = np.tile(np.arange(40) * 10.0 * 0.5, (40, 1))
    rh, _ = canopy.footprint_rh100(np.zeros((40, 40)), plane, np.array([20.0]), np.array([20.0]))
    assert rh[0] == pytest.approx(10.0)
    # planted offsets: labels sit at the true centre + offset (no noise, jitter or outliers)
    flat = np.full((60, 60), 12.0)
    g = canopy.simulate(
        flat,
        np.zeros((60, 60)),
        seed=3,
        granules=2,
        beam_spacing_px=10,
        noise_m=0,
        outlier_fraction=0,
        jitter_m=0,
        offsets_px=np.array([[2.0, -1.0], [0.0, 3.0]]),
    )
    assert g.offsets.tolist() == [[2.0, -1.0], [0.0, 3.0]]
    s = g.shots
    for k, (ox, oy) in enumerate(g.offsets):
        sel = s["granule"] == k
        assert np.array_equal(s["col"][sel], np.rint(s["x"][sel] + ox).astype(int))
        assert np.array_equal(s["row"][sel], np.rint(s["y"][sel] + oy).astype(int))
    assert set(np.unique(g.labels)) <= {0, 1200}
    assert (g.labels[0] > 0).sum() > 10
    # offsets scale with sigma, tracks are shared
    a = canopy.simulate(flat, np.zeros((60, 60)), sigma_m=10, seed=5)
    b = canopy.simulate(flat, np.zeros((60, 60)), sigma_m=20, seed=5)
    assert np.allclose(2 * a.offsets, b.offsets) and np.array_equal(a.shots["x"], b.shots["x"])


def _planted(dx, dy, n_labels=8):
    pred = torch.arange(1.0, 1.0 + 16 * 16).reshape(1, 16, 16)
    labels = torch.zeros(1, 1, 16, 16)
    rng = np.random.default_rng(0)
    for i, j in rng.choice(np.arange(3, 13), size=(n_labels, 2)):
        labels[0, 0, i + dy, j + dx] = pred[0, i, j]  # the label at reported pixel (i + dy, j + dx) equals pred(i, j)
    return pred, labels


@pytest.mark.parametrize("name", ["l1", "l2", "huber"])
def test_shift_loss_finds_planted_shift(name):
    pred, labels = _planted(0, 1)
    loss = losses.ShiftLoss(name, radius=1)
    assert loss(pred, labels).item() == 0.0
    assert loss.last_shifts[0, 0].tolist() == [0, 1]
    assert losses.PlainLoss(name)(pred, labels).item() > 0
    pred, labels = _planted(-1, -1)
    loss(pred, labels)
    assert loss.last_shifts[0, 0].tolist() == [-1, -1]
    # fewer than 5 labels: no shift
    pred, labels = _planted(0, 1, n_labels=1)
    loss(pred, labels)
    assert loss.last_shifts[0, 0].tolist() == [0, 0]


def test_shift_loss_equals_plain_at_radius_zero_and_ignores_missing():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 12, 12, generator=g) * 5 + 10
    labels = torch.zeros(2, 1, 12, 12)
    mask = torch.rand(2, 1, 12, 12, generator=g) < 0.2
    labels[mask] = torch.rand(int(mask.sum()), generator=g) * 30 + 0.5
    for name in losses.LOSSES:
        assert torch.allclose(losses.ShiftLoss(name, radius=0)(pred, labels), losses.PlainLoss(name)(pred, labels))
    # labels shifted in from outside are missing
    edge = torch.zeros(1, 1, 4, 4)
    edge[0, 0, 0, 0] = 7.0
    assert losses.shift_labels(edge, 0, 1).sum() == 0 and losses.shift_labels(edge, 0, -1)[0, 0, 1, 0] == 7.0
    assert losses.shift_labels(edge, -1, -1)[0, 0, 1, 1] == 7.0


def test_slope_filter_on_plane_of_known_slope():
    x = np.arange(60) * 10.0
    for deg in (10.0, 25.0, 35.0):
        dem = np.tile(np.tan(np.radians(deg)) * x, (60, 1))
        assert np.allclose(canopy.slope_degrees(dem), deg)
        assert np.allclose(canopy.srtm_slope(dem), deg)
        labels = np.full((2, 60, 60), 1500, np.uint16)
        kept = canopy.slope_filter(labels, canopy.srtm_slope(dem), 20.0)
        assert (kept == 0).all() if deg > 20 else (kept == labels).all()
    assert canopy.slope_filter(labels, canopy.srtm_slope(dem), None) is labels


def test_mae_rmse_match_sklearn():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 40, 500)
    p = t + rng.normal(0, 3, 500)
    e = canopy.height_errors(p, t)
    assert e["mae"] == pytest.approx(mean_absolute_error(t, p), rel=1e-12)
    assert e["rmse"] == pytest.approx(np.sqrt(mean_squared_error(t, p)), rel=1e-12)
    tall = t > 5
    assert e["mae_gt5"] == pytest.approx(mean_absolute_error(t[tall], p[tall]), rel=1e-12)
    assert e["n_gt5"] == tall.sum()
    bins = canopy.per_bin(p, t)
    assert bins["n"].sum() == 500 and list(bins.index)[-1] == "> 30"


def test_tiled_equals_whole_image_inference():
    torch.manual_seed(0)
    net = canopy.UNet(14, base=4, depth=3, convs=1).eval()
    image = torch.randn(14, 96, 128)
    whole = net(image[None])[0].detach()
    tiled = canopy.predict_tiled(net, image, tile=64, overlap=32)
    assert torch.allclose(tiled, whole, atol=1e-5)
    # without overlap the tile borders differ
    assert not torch.allclose(canopy.predict_tiled(net, image, tile=32, overlap=0), whole, atol=1e-5)


def test_geotiff_round_trip_and_windows(tmp_path):
    from rasterio.transform import from_origin

    rng = np.random.default_rng(2)
    arr = rng.integers(-2000, 9000, size=(14, 64, 64)).astype(np.int16)
    transform = from_origin(500000.0, 5000000.0, 10.0, 10.0)
    path = canopy.write_geotiff(tmp_path / "s1s2.tif", arr, "EPSG:32633", transform)
    back, crs, tr = canopy.read_geotiff(path)
    assert np.array_equal(back, arr) and crs.to_epsg() == 32633 and tr == transform
    part, _, tr2 = canopy.read_geotiff(path, ((16, 48), (8, 40)))
    assert np.array_equal(part, arr[:, 16:48, 8:40]) and tr2.c == 500080.0 and tr2.f == 5000000.0 - 160.0
    blocks = list(canopy.windows(path, 40))
    assert len(blocks) == 4 and sum(b.size for _, b in blocks) == arr.size


def test_gedi_points_rasterised_and_paper_scene(tmp_path):
    from rasterio.transform import from_origin
    from rasterio.warp import transform as warp

    transform = from_origin(500000.0, 5000000.0, 10.0, 10.0)
    # pixel centres (row, col) -> lon/lat
    cells = [(3, 4, "a", 12.34), (10, 20, "b", 30.0), (50, 60, "a", 5.0)]
    xs = [500000.0 + (c + 0.5) * 10 for _, c, _, _ in cells]
    ys = [5000000.0 - (r + 0.5) * 10 for r, _, _, _ in cells]
    lon, lat = warp("EPSG:32633", "EPSG:4326", xs, ys)
    lines = ["lon,lat,rh100,granule"] + [f"{a!r},{b!r},{c[3]},{c[2]}" for a, b, c in zip(lon, lat, cells)]
    (tmp_path / "gedi.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(FileNotFoundError, match="s1s2.tif"):
        canopy.load_scene(tmp_path)
    canopy.write_geotiff(tmp_path / "s1s2.tif", np.zeros((14, 64, 64), np.int16), "EPSG:32633", transform)
    dem = np.tile(np.arange(64) * 10.0 * np.tan(np.radians(30)), (64, 1)).astype(np.float32)
    canopy.write_geotiff(tmp_path / "srtm.tif", dem, "EPSG:32633", transform)
    scene = canopy.load_scene(tmp_path)
    lab = scene["labels"]
    assert lab[0, 3, 4] == 1234 and lab[1, 10, 20] == 3000 and lab[0, 50, 60] == 500 and (lab > 0).sum() == 3
    assert np.allclose(scene["srtm_slope"], 30.0, atol=1e-3)
    sc = canopy.scene_from_files(tmp_path, patch=32)
    assert len(sc.split("train")) == 2 and len(sc.split("test")) == 2
    assert (sc.patches.labels != 0).sum() == 3 and np.isnan(sc.patches.truth).all()


def test_patch_format_round_trip(tmp_path):
    world = canopy.make_world(64, seed=0)
    g = canopy.simulate(world.height, world.dem, seed=0, beam_spacing_px=12)
    patches = canopy.extract_patches(world, g, 32, {"train": (0, 1), "val": (1, 2)})
    canopy.write_patch_dataset(tmp_path, patches)
    x, y, rows = canopy.read_patch_dataset(tmp_path, "train")
    tr = patches.select("train")
    assert np.array_equal(x, tr.data.astype(np.float32))
    assert np.allclose(y, tr.labels / 100.0)  # cm -> m: 2350 -> 23.5
    assert int(rows[0]["totals"]) == (tr.labels[0] != 0).sum()
    assert int(rows[0]["g10"]) == (tr.labels[0] > 1000).sum()
    with pytest.raises(FileNotFoundError, match="test.csv"):
        canopy.read_patch_dataset(tmp_path, "test")


def test_sampler_weights_quantile_floor():
    w = cdata.sampler_weights([0, 1, 5, 9, 0], [0, 10, 10, 10, 10], quantile=None)
    assert w.tolist() == [0.0, 0.1, 0.5, 0.9, 0.0]
    floored = cdata.sampler_weights([0, 1, 5, 9, 0], [0, 10, 10, 10, 10], quantile=50)
    assert floored.tolist() == [0.5, 0.5, 0.5, 0.9, 0.5]
    order = cdata.weighted_order(np.array([0.0, 1.0, 0.0]), 20, seed=0)
    assert (order == 1).all()


def test_schedule_and_world_shape():
    f = canopy.warmup_linear(0.1)
    assert [f(i, 100) for i in (0, 9, 10, 55, 99)] == [0.1, 1.0, 1.0, 0.5, 1 / 90]
    world = canopy.make_world(96, seed=1, steep_fraction=0.2)
    assert world.inputs.shape == (14, 96, 96) and world.inputs.dtype == np.int16
    assert (world.slope > 20).mean() == pytest.approx(0.2, abs=0.01)
    assert (world.top >= world.height).all()


def test_unet_norms_and_unknown_names():
    x = torch.randn(2, 14, 32, 32)
    for norm in ("batch", "group", "none"):
        assert canopy.make_model("unet", 14, base=4, norm=norm)(x).shape == (2, 32, 32)
    with pytest.raises(ValueError):
        canopy.make_model("unet", 14, norm="layer")
    with pytest.raises(ValueError):
        canopy.make_loss("huberf")
