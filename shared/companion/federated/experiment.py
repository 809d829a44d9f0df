"""Helpers the chapter's notebooks share: the task with CPA's matrix from a cached central model, a grid of
runs over seeds as one table (each run cached, so that notebooks running the same configuration share it),
and mean ± std summaries."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

import pandas as pd
import torch

from .. import cache, progress
from .attacks import canonical as canonical_attack
from .attacks import cpa_matrix
from .data import PAPER_TASKS, FederatedTask, make_task
from .defences import canonical as canonical_defence
from .loop import MEMORY_DEFENCES, FLConfig, auroc, central_model, run

CACHE_NAMESPACE = "kd-fl-byzantine"


def task_and_matrix(
    name: str = "digits",
    seed: int = 0,
    shifted_public: bool = False,
    hidden=(128,),
    epochs: int = 30,
    device: torch.device | str = "cpu",
    **options,
) -> tuple[FederatedTask, torch.Tensor, float]:
    """The task of :func:`.data.make_task`, CPA's matrix S (covariance of a centrally trained model's softmax
    on the public set, :func:`.attacks.cpa_matrix`) and that model's test accuracy. The central model is
    built once per settings (and device type) and shared by the notebooks through
    :func:`companion.cache.cached`."""
    task = make_task(name, seed, shifted_public=shifted_public, **options)
    settings = {
        "task": name,
        "seed": seed,
        "shifted": shifted_public,
        "hidden": list(hidden),
        "epochs": epochs,
        "options": options,
        "device": torch.device(device).type,
        "version": 2,
    }

    def build():
        _, probs, acc = central_model(task, hidden, epochs, seed=seed, device=device)
        return {"S": cpa_matrix(probs), "acc": acc}

    out = cache.cached(CACHE_NAMESPACE, f"central-{name}", settings, build).value
    return task, out["S"], float(out["acc"])


def task_options(name: str, n_samples: int = 1800, data_root: str = "") -> dict:
    """The keyword options of :func:`.data.make_task` a notebook passes for task ``name``: the size of a
    ``synth`` task, the data root of the paper's data sets (:data:`.data.PAPER_TASKS`), nothing for digits
    (so that the cache keys of the book's tasks do not depend on unused parameters)."""
    if name == "synth":
        return {"n_samples": n_samples}
    if name in PAPER_TASKS:
        return {"data_root": data_root}
    return {}


def run_grid(
    task: FederatedTask,
    variations: list[dict],
    seeds: int,
    S: torch.Tensor | None = None,
    base: dict | None = None,
    seed: int = 0,
    desc: str = "runs",
    device: torch.device | str = "cpu",
    cache_runs: bool = True,
) -> tuple[pd.DataFrame, list[dict]]:
    """Run every variation (a dict of :class:`.loop.FLConfig` fields over ``base``) for seeds
    ``seed, ..., seed + seeds - 1``. Returns one row per run (the variation, ``seed``, ``final_acc``,
    ``auroc1``: detection AUROC of the round-1 outlier scores when there are byzantine clients, ``p_byz``:
    the largest final ExpGuard weight of a byzantine client, ``seconds``) and the raw run outputs.

    With ``cache_runs`` every run goes through :func:`companion.cache.cached`, keyed on the full config, a
    hash of the task's tensors and of S, and the device type: a configuration that another notebook already
    ran is loaded, not trained again (``seconds`` is then the original run's wall time)."""
    rows, outs = [], []
    jobs = [(v, s) for v in variations for s in range(seed, seed + seeds)]
    fingerprint = task_fingerprint(task, S) if cache_runs else None
    for v, s in progress(jobs, desc=desc):
        cfg = FLConfig(**{**(base or {}), **v, "seed": s})
        if cache_runs:
            settings = {
                "config": run_key(cfg),
                "task": fingerprint,
                "device": torch.device(device).type,
                "version": 1,
            }
            out = cache.cached(CACHE_NAMESPACE, "run", settings, lambda c=cfg: _bare(run(task, c, S, device))).value
        else:
            out = _bare(run(task, cfg, S, device))
        byz = out["byzantine"]
        row = {**v, "seed": s, "final_acc": out["final_acc"], "seconds": out["seconds"]}
        if out["scores"] is not None and 0 < int(byz.sum()) < len(byz):
            row["auroc1"] = auroc(out["scores"][0], byz)
        if out["weights"] is not None and int(byz.sum()):
            row["p_byz"] = float(out["weights"][-1][byz].max())
        rows.append(row)
        outs.append(out)
    return pd.DataFrame(rows), outs


def run_key(cfg: FLConfig) -> dict:
    """The config as the run cache keys it: fields that do not affect the run are set to ``None`` (ExpGuard's
    ``eta`` and ``memory_base`` without ExpGuard, the Filter quantile without Filter, the HIPS weighting
    without HIPS, the scaled attack's bug flag without that attack, ``beta`` with IID splits), so that the
    same run asked for by two notebooks with different unused settings is trained once."""
    key = asdict(cfg)
    memory = cfg.defence in MEMORY_DEFENCES
    base = cfg.memory_base if memory else cfg.defence
    if not memory:
        key["eta"] = key["memory_base"] = None
    if canonical_defence(base) != "PredictionFilter":
        key["filter_quantile"] = None
    if not cfg.hips:
        key["hips_weighting"] = None
    if cfg.attack == "none" or canonical_attack(cfg.attack) != "ParameterRandomVectorScaled":
        key["scaled_random_code_bug"] = None
    if cfg.partition == "iid":
        key["beta"] = None
    return key


def task_fingerprint(task: FederatedTask, S: torch.Tensor | None = None) -> str:
    """SHA-256 of the task's tensors (and of S): two tasks with the same fingerprint give the same runs."""
    h = hashlib.sha256(task.name.encode())
    tensors = [task.x_private, task.y_private, task.x_public, task.x_test, task.y_test]
    for t in tensors + ([] if S is None else [S]):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _bare(out: dict) -> dict:
    """A run's outputs without the server model (what the notebooks use and the cache stores)."""
    return {k: v for k, v in out.items() if k != "server"}


def summarise(frame: pd.DataFrame, by: list[str], value: str = "final_acc") -> pd.DataFrame:
    """Mean and (sample) standard deviation of ``value`` over seeds per group ``by``."""
    return frame.groupby(by, sort=False)[value].agg(["mean", "std"]).reset_index()


def pm(mean: float, std: float, digits: int = 3) -> str:
    """``"mean ± std"`` with ``digits`` decimals."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"
