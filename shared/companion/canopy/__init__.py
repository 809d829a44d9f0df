"""Estimating Canopy Height at Scale (Pauls et al., ICML 2024): a synthetic world with known canopy height, a
GEDI simulator, the official code's data format, the shift-resilient losses, the SRTM slope filter, a small
U-Net with tiled inference, and the metrics of the paper's comparison table.

- :mod:`~companion.canopy.world`: terrain from matplotlib's bundled DEMs, canopy height, S1/S2-like inputs;
- :mod:`~companion.canopy.gedi`: GEDI tracks with per-granule geolocation offsets, slope-inflated RH100;
- :mod:`~companion.canopy.data`: patches, the ``.npz`` + CSV format, the weighted sampler, GeoTIFF loaders;
- :mod:`~companion.canopy.geopackage`: GEDI shots from a GeoPackage with the standard library;
- :mod:`~companion.canopy.losses`: L1, L2, scaled Huber and their shift-resilient versions, the slope filter;
- :mod:`~companion.canopy.model`: the U-Net (optional ``segmentation_models_pytorch``), tiled inference;
- :mod:`~companion.canopy.metrics`: MAE / RMSE overall, above 5 m and per height bin;
- :mod:`~companion.canopy.experiment`: the schedule, training (cached), the Potapov-like baseline.
"""

from .data import (
    Patches,
    extract_patches,
    load_scene,
    normalisation,
    rasterise_gedi,
    read_gedi_points,
    read_geotiff,
    read_patch_dataset,
    sampler_weights,
    slope_from_dem,
    to_tensor,
    weighted_order,
    windows,
    write_geotiff,
    write_patch_dataset,
)
from .experiment import (
    BlockRidge,
    Scene,
    chosen_vs_planted,
    evaluate,
    make_scene,
    predict_patches,
    scene_from_files,
    train_unet,
    train_unet_cached,
    warmup_linear,
)
from .gedi import Gedi, footprint_rh100, simulate
from .losses import PlainLoss, ShiftLoss, make_loss, pointwise, shift_labels, shifts, slope_filter
from .metrics import height_errors, label_pairs, mae, per_bin, rmse
from .model import UNet, make_model, num_params, predict_tiled
from .world import CHANNELS, RGB, World, make_world, slope_degrees, srtm_slope

__all__ = [
    "scene_from_files",
    "Scene",
    "chosen_vs_planted",
    "evaluate",
    "make_scene",
    "CHANNELS",
    "RGB",
    "BlockRidge",
    "Gedi",
    "Patches",
    "PlainLoss",
    "ShiftLoss",
    "UNet",
    "World",
    "extract_patches",
    "footprint_rh100",
    "height_errors",
    "label_pairs",
    "load_scene",
    "mae",
    "make_loss",
    "make_model",
    "make_world",
    "normalisation",
    "num_params",
    "per_bin",
    "pointwise",
    "predict_patches",
    "predict_tiled",
    "rasterise_gedi",
    "read_gedi_points",
    "read_geotiff",
    "read_patch_dataset",
    "rmse",
    "sampler_weights",
    "shift_labels",
    "shifts",
    "simulate",
    "slope_degrees",
    "slope_filter",
    "slope_from_dem",
    "srtm_slope",
    "to_tensor",
    "train_unet",
    "train_unet_cached",
    "warmup_linear",
    "weighted_order",
    "windows",
    "write_geotiff",
    "write_patch_dataset",
]
