"""Helpers the chapter's notebooks share: the task with CPA's matrix from a cached central model, a grid of
runs over seeds as one table, and mean ± std summaries."""

from __future__ import annotations

import pandas as pd
import torch

from .. import cache, progress
from .attacks import cpa_matrix
from .data import FederatedTask, make_task
from .loop import FLConfig, auroc, central_model, run

CACHE_NAMESPACE = "kd-fl-byzantine"


def task_and_matrix(
    name: str = "digits", seed: int = 0, shifted_public: bool = False, hidden=(128,), epochs: int = 30, **options
) -> tuple[FederatedTask, torch.Tensor, float]:
    """The task of :func:`.data.make_task`, CPA's matrix S (covariance of a centrally trained model's softmax
    on the public set, :func:`.attacks.cpa_matrix`) and that model's test accuracy. The central model is
    built once per settings and shared by the notebooks through :func:`companion.cache.cached`."""
    task = make_task(name, seed, shifted_public=shifted_public, **options)
    settings = {
        "task": name,
        "seed": seed,
        "shifted": shifted_public,
        "hidden": list(hidden),
        "epochs": epochs,
        "options": options,
        "version": 2,
    }

    def build():
        _, probs, acc = central_model(task, hidden, epochs, seed=seed)
        return {"S": cpa_matrix(probs), "acc": acc}

    out = cache.cached(CACHE_NAMESPACE, f"central-{name}", settings, build).value
    return task, out["S"], float(out["acc"])


def run_grid(
    task: FederatedTask,
    variations: list[dict],
    seeds: int,
    S: torch.Tensor | None = None,
    base: dict | None = None,
    seed: int = 0,
    desc: str = "runs",
) -> tuple[pd.DataFrame, list[dict]]:
    """Run every variation (a dict of :class:`.loop.FLConfig` fields over ``base``) for seeds
    ``seed, ..., seed + seeds - 1``. Returns one row per run (the variation, ``seed``, ``final_acc``,
    ``auroc1``: detection AUROC of the round-1 outlier scores when there are byzantine clients, ``p_byz``:
    the largest final ExpGuard weight of a byzantine client, ``seconds``) and the raw run outputs."""
    rows, outs = [], []
    jobs = [(v, s) for v in variations for s in range(seed, seed + seeds)]
    for v, s in progress(jobs, desc=desc):
        cfg = FLConfig(**{**(base or {}), **v, "seed": s})
        out = run(task, cfg, S)
        out.pop("server")
        byz = out["byzantine"]
        row = {**v, "seed": s, "final_acc": out["final_acc"], "seconds": out["seconds"]}
        if out["scores"] is not None and 0 < int(byz.sum()) < len(byz):
            row["auroc1"] = auroc(out["scores"][0], byz)
        if out["weights"] is not None and int(byz.sum()):
            row["p_byz"] = float(out["weights"][-1][byz].max())
        rows.append(row)
        outs.append(out)
    return pd.DataFrame(rows), outs


def summarise(frame: pd.DataFrame, by: list[str], value: str = "final_acc") -> pd.DataFrame:
    """Mean and (sample) standard deviation of ``value`` over seeds per group ``by``."""
    return frame.groupby(by, sort=False)[value].agg(["mean", "std"]).reset_index()


def pm(mean: float, std: float, digits: int = 3) -> str:
    """``"mean ± std"`` with ``digits`` decimals."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
