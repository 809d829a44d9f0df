"""Training and evaluation of the chapter's methods on the synthetic world.

- :func:`warmup_linear`: the official schedule (linear warm-up over the first 10 % of the iterations, then
  linear decay to 0), as a ``companion.train`` schedule;
- :func:`train_unet`: the U-Net trained by ``companion.train.fit`` with AdamW on patches drawn by the weighted
  sampler, a plain or shift-resilient loss, optionally slope-filtered labels and a subset of input channels;
  :func:`train_unet_cached` shares the trained weights between notebooks through ``companion.cache``;
- :class:`BlockRidge`: the "Potapov-like" baseline, a per-pixel ridge regression on quadratic features of
  30 m block-averaged optical bands, trained with plain L2 on block-averaged labels, predictions repeated back
  to 10 m.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .. import cache, train
from .data import Patches, extract_patches, labels_in_metres, normalisation, sampler_weights, to_tensor, weighted_order
from .gedi import Gedi, simulate
from .losses import ShiftLoss, make_loss
from .metrics import height_errors, label_pairs
from .model import make_model
from .world import World, make_world

S2_ONLY = tuple(range(4, 14))
CACHE_VERSION = 2  # bump when the world, the simulator or the training code changes what a key builds


def warmup_linear(warmup_fraction: float = 0.1):
    """Learning-rate factor ``(it + 1) / w`` for ``it < w = warmup_fraction * total``, then
    ``(total - it) / (total - w)`` (linear decay to 0), as in the official ``runner.py``."""

    def factor(it: int, total: int) -> float:
        w = max(1, int(round(warmup_fraction * total)))
        if it < w:
            return (it + 1) / w
        return max(0.0, (total - it) / max(1, total - w))

    return factor


def train_unet(
    patches: Patches,
    stats,
    loss: str = "huber",
    shift: bool = False,
    radius: int = 1,
    max_slope: float | None = None,
    channels=None,
    steps: int = 150,
    batch: int = 8,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    seed: int = 0,
    model: str = "unet",
    base: int = 8,
    depth: int = 3,
    convs: int = 1,
    norm: str = "batch",
    quantile: float | None = 10.0,
    device="cpu",
) -> tuple[torch.nn.Module, float]:
    """Train a network on the training ``patches`` for ``steps`` AdamW steps of ``batch`` patches (drawn with
    replacement by :func:`~companion.canopy.data.sampler_weights`); returns the model (on the CPU) and the
    training seconds. The weights are initialised from ``torch.manual_seed(seed)``."""
    weights = sampler_weights(
        [((patches.labels[k] / 100.0) > 10).sum() for k in range(len(patches))],
        [(patches.labels[k] != 0).sum() for k in range(len(patches))],
        quantile,
    )
    order = weighted_order(weights, steps * batch, seed)
    x = to_tensor(patches.data, stats, channels)[order]
    y = labels_in_metres(patches.labels, patches.slope, max_slope)[order]
    torch.manual_seed(seed)
    net = make_model(model, x.shape[1], base, depth, convs, norm)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    start = time.perf_counter()
    train.fit(
        net,
        opt,
        TensorDataset(x, y),
        epochs=1,
        batch_size=batch,
        lr_schedule=warmup_linear(0.1),
        loss_fn=make_loss(loss, shift, radius),
        device=device,
        seed=seed,
        desc=f"{'shift-' if shift else ''}{loss}",
    )
    return net.cpu().eval(), time.perf_counter() - start


def train_unet_cached(patches: Patches, stats, world_key: dict, **kwargs) -> tuple[torch.nn.Module, float]:
    """:func:`train_unet` through ``companion.cache`` (namespace ``canopy``), keyed by the world's settings
    ``world_key`` and the training arguments; returns the model and the seconds of the original build."""
    kw = {k: (list(v) if isinstance(v, (tuple, range)) else v) for k, v in kwargs.items() if k != "device"}
    settings = {"world": world_key, **kw, "version": CACHE_VERSION}
    holder = {}

    def build():
        net, secs = train_unet(patches, stats, device=kwargs.get("device", "cpu"), **kw)
        holder["net"] = net
        return {"state_dict": net.state_dict(), "seconds": secs}

    out = cache.cached("canopy", "unet", settings, build)
    if "net" in holder:
        return holder["net"], out.value["seconds"]
    chans = kw.get("channels")
    net = make_model(
        kw.get("model", "unet"),
        14 if chans is None else len(chans),
        kw.get("base", 8),
        kw.get("depth", 3),
        kw.get("convs", 1),
        kw.get("norm", "batch"),
    )
    net.load_state_dict(out.value["state_dict"])
    return net.eval(), float(out.value["seconds"])


@torch.no_grad()
def predict_patches(net: torch.nn.Module, patches: Patches, stats, channels=None, batch: int = 64) -> np.ndarray:
    """Predictions (N, P, P) in metres for every patch (eval mode)."""
    x = to_tensor(patches.data, stats, channels)
    net.eval()
    return torch.cat([net(x[k : k + batch]) for k in range(0, len(x), batch)]).numpy()


def block_average(image: np.ndarray, block: int = 3) -> np.ndarray:
    """(C, H, W) averaged over ``block`` x ``block`` blocks (edge-padded to multiples of ``block``)."""
    c, h, w = image.shape
    pad = np.pad(image, ((0, 0), (0, -h % block), (0, -w % block)), mode="edge")
    return pad.reshape(c, pad.shape[1] // block, block, pad.shape[2] // block, block).mean(axis=(2, 4))


def quadratic_features(x: np.ndarray) -> np.ndarray:
    """Rows of (1, x, all products x_i x_j with i <= j)."""
    i, j = np.triu_indices(x.shape[1])
    return np.concatenate([np.ones((len(x), 1)), x, x[:, i] * x[:, j]], axis=1)


class BlockRidge:
    """The "Potapov-like" 30 m per-pixel model: ridge regression (``alpha``) on quadratic features of
    block-averaged, standardised optical inputs, fitted to the mean GEDI label of every 30 m block that has
    one (plain L2, no shift, no slope filter)."""

    def __init__(self, block: int = 3, alpha: float = 1.0, channels=S2_ONLY):
        self.block, self.alpha, self.channels = block, alpha, list(channels)

    def _features(self, inputs: np.ndarray) -> np.ndarray:
        coarse = block_average(inputs[self.channels].astype(float), self.block)
        return coarse.reshape(len(self.channels), -1).T

    def fit(self, inputs: np.ndarray, labels_m: np.ndarray, region: np.ndarray) -> BlockRidge:
        """Fit on a scene: ``inputs`` (C, H, W) standardised, ``labels_m`` (G, H, W) in metres, ``region``
        (H, W) bool: the training area."""
        x = self._features(inputs)
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-9
        lab = np.where(region[None], labels_m, 0.0)
        total = block_average(lab.sum(0, keepdims=True), self.block)[0].ravel()
        count = block_average((lab != 0).sum(0, keepdims=True).astype(float), self.block)[0].ravel()
        keep = count > 0
        f = quadratic_features((x[keep] - self.mu) / self.sd)
        y = total[keep] / count[keep]
        a = f.T @ f + self.alpha * np.eye(f.shape[1])
        self.coef = np.linalg.solve(a, f.T @ y)
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(H, W) predictions at 10 m (each 30 m block's value repeated)."""
        h, w = inputs.shape[1:]
        f = quadratic_features((self._features(inputs) - self.mu) / self.sd)
        hb, wb = -(-h // self.block), -(-w // self.block)
        coarse = (f @ self.coef).reshape(hb, wb)
        return np.repeat(np.repeat(coarse, self.block, 0), self.block, 1)[:h, :w]


@dataclass
class Scene:
    """A synthetic world with its GEDI simulation, patches, the training split's input statistics and the
    settings that key the training cache."""

    world: World
    gedi: Gedi
    patches: Patches
    stats: tuple
    key: dict

    def split(self, name: str) -> Patches:
        """The patches of one split (``train``, ``val``, ``test``)."""
        return self.patches.select(name)


def make_scene(
    size: int = 512,
    seed: int = 0,
    sigma_m: float = 10.0,
    granules: int = 3,
    beam_spacing_px: float = 12.0,
    patch: int = 32,
    splits: dict | None = None,
    steep_fraction: float = 0.15,
) -> Scene:
    """The chapter's scene: :func:`~companion.canopy.world.make_world` (seed ``seed``), GEDI simulated with
    seed ``seed + 1`` at geolocation error ``sigma_m``, cut into ``patch`` px patches split by patch rows
    (default: the first 56 % of rows train, one row validation, the last quarter test, with one-row gaps)."""
    rows = size // patch
    splits = splits or {
        "train": (0, int(0.56 * rows)),
        "val": (int(0.56 * rows) + 1, int(0.56 * rows) + 2),
        "test": (rows - rows // 4, rows),
    }
    world = make_world(size, seed, steep_fraction)
    gedi = simulate(world.height, world.dem, sigma_m, seed + 1, granules, beam_spacing_px)
    patches = extract_patches(world, gedi, patch, splits)
    stats = normalisation(patches.select("train").data)
    key = {
        "size": size,
        "seed": seed,
        "sigma_m": sigma_m,
        "granules": granules,
        "beam_spacing_px": beam_spacing_px,
        "patch": patch,
        "splits": {k: list(v) for k, v in splits.items()},
        "steep_fraction": steep_fraction,
    }
    return Scene(world, gedi, patches, stats, key)


def evaluate(pred: np.ndarray, test: Patches) -> dict[str, float]:
    """Errors of (N, P, P) predictions on test patches against every GEDI label (``label.*``, unfiltered,
    unshifted) and against the true footprint-scale height at every pixel (``truth.*``)."""
    p, lab = label_pairs(pred, test.labels / 100.0)
    out = {f"label.{k}": v for k, v in height_errors(p, lab).items() if not k.startswith("n")}
    out.update({f"truth.{k}": v for k, v in height_errors(pred, test.truth).items() if not k.startswith("n")})
    return out


def chosen_vs_planted(
    net, scene: Scene, radius: int = 1, name: str = "huber", split: str = "train", mode: str = "sum"
) -> dict:
    """The shift the loss picks for every (patch, granule channel) with at least 5 labels, under the trained
    ``net``, against the planted offset of that granule rounded to whole pixels and clipped to ``radius``:
    ``agree`` (share of exact matches per axis pair), ``chosen`` (K, 2) and ``planted`` (K, 2) arrays;
    ``mode`` as in :class:`~companion.canopy.losses.ShiftLoss` (``sum``: the official argmin)."""
    part = scene.split(split)
    loss = ShiftLoss(name, radius, mode=mode)
    pred = torch.from_numpy(predict_patches(net, part, scene.stats))
    _, _, chosen = loss.choose(pred, torch.from_numpy(part.labels.astype(np.float32) / 100.0))
    enough = (part.labels != 0).sum((2, 3)) >= loss.min_measurements
    ids = part.granules[enough]
    planted = np.clip(np.rint(scene.gedi.offsets[ids]), -radius, radius).astype(int)
    chosen = chosen.numpy()[enough]
    return {"agree": float((chosen == planted).all(1).mean()), "chosen": chosen, "planted": planted}


def scene_from_files(data_root: str, patch: int = 512, splits: dict | None = None, window=None) -> Scene:
    """The ``paper`` profile's :class:`Scene` from real files (:func:`~companion.canopy.data.load_scene`:
    ``s1s2.tif``, ``gedi.csv``, ``srtm.tif`` under ``data_root``; missing files stop with one line naming
    them). The truth is unknown: ``height`` and ``top`` are NaN, so every ``truth.*`` metric is NaN and only
    the label metrics, the paper's, are defined."""
    from .data import load_scene

    real = load_scene(data_root, window)
    h, w = real["inputs"].shape[1:]
    h, w = h - h % patch, w - w % patch
    nan = np.full((h, w), np.nan)
    slope = real["srtm_slope"][:h, :w]
    world = World(nan, slope, slope, nan, real["inputs"][:, :h, :w], 0, nan, {"data_root": str(data_root)})
    gedi = Gedi(real["labels"][:, :h, :w], np.zeros((len(real["labels"]), 2)), {})
    rows = h // patch
    splits = splits or {"train": (0, max(1, int(0.56 * rows))), "test": (rows - max(1, rows // 4), rows)}
    patches = extract_patches(world, gedi, patch, splits)
    stats = normalisation(patches.select("train").data)
    key = {"data_root": str(data_root), "patch": patch, "splits": {k: list(v) for k, v in splits.items()}}
    return Scene(world, gedi, patches, stats, key)
