"""Metrics of the comparison table (Pauls et al. 2024, Table 1 / abstract): MAE and RMSE overall and for
reference heights above 5 m, per height bin, against GEDI labels (at the labelled pixels) and, in the
synthetic world only, against the true canopy height (at every pixel)."""

from __future__ import annotations

import numpy as np
import pandas as pd

HEIGHT_BINS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, np.inf)


def mae(pred, target) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(target, float))))


def rmse(pred, target) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(target, float)) ** 2)))


def height_errors(pred, target, above: float = 5.0) -> dict[str, float]:
    """``mae``, ``rmse`` over all pairs and ``mae_gt5``, ``rmse_gt5`` over the pairs whose reference exceeds
    ``above`` metres, with the counts ``n`` and ``n_gt5``."""
    p, t = np.asarray(pred, float).ravel(), np.asarray(target, float).ravel()
    tall = t > above
    return {
        "mae": mae(p, t),
        "rmse": rmse(p, t),
        "mae_gt5": mae(p[tall], t[tall]) if tall.any() else float("nan"),
        "rmse_gt5": rmse(p[tall], t[tall]) if tall.any() else float("nan"),
        "n": int(t.size),
        "n_gt5": int(tall.sum()),
    }


def label_pairs(pred, labels) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, label) at every labelled pixel: ``pred`` (N, H, W), ``labels`` (N, G, H, W) in metres with
    0 = no label (every granule channel counts separately)."""
    p = np.broadcast_to(np.asarray(pred)[:, None], np.shape(labels))
    lab = np.asarray(labels)
    mask = lab != 0
    return p[mask].astype(float), lab[mask].astype(float)


def bin_label(lo: float, hi: float) -> str:
    """``"0-5"``, ..., ``"> 30"``."""
    return f"> {lo:g}" if not np.isfinite(hi) else f"{lo:g}-{hi:g}"


def per_bin(pred, target, bins=HEIGHT_BINS) -> pd.DataFrame:
    """Per reference-height bin: count, mean error (bias, prediction minus reference), MAE and RMSE."""
    p, t = np.asarray(pred, float).ravel(), np.asarray(target, float).ravel()
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (t >= lo) & (t < hi)
        e = p[m] - t[m]
        rows.append(
            {
                "bin": bin_label(lo, hi),
                "n": int(m.sum()),
                "bias": float(e.mean()) if m.any() else float("nan"),
                "mae": float(np.abs(e).mean()) if m.any() else float("nan"),
                "rmse": float(np.sqrt((e**2).mean())) if m.any() else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("bin")
