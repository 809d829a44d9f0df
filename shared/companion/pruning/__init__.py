"""Pruning: masks that survive training, selection criteria, retraining schedules, IMP/BIMP and the
prune-during-training baselines (Zimmer, Spiegel & Pokutta, ICLR 2023, and its "Back to Basics" version).

Reused by the sparse-model-soups, compression-aware Frank-Wolfe and PERP chapters.
"""

from . import baselines
from .baselines import STRATEGIES, SparseRun, train_sparse
from .criteria import (
    CRITERIA,
    cumulative_sparsity,
    global_top,
    lamp_scores,
    layer_sparsities,
    phase_rate,
    prune_,
    select,
)
from .imp import BimpResult, ImpResult, Pretrained, bimp, imp, pretrain, split_epochs
from .masks import KeepMasked, Masks
from .metrics import Flops, flops, sparsity
from .schedules import SCHEDULES, allr_factor, retrain_schedule

__all__ = [
    "Masks",
    "KeepMasked",
    "CRITERIA",
    "select",
    "prune_",
    "layer_sparsities",
    "lamp_scores",
    "phase_rate",
    "cumulative_sparsity",
    "global_top",
    "sparsity",
    "flops",
    "Flops",
    "SCHEDULES",
    "retrain_schedule",
    "allr_factor",
    "Pretrained",
    "pretrain",
    "imp",
    "bimp",
    "ImpResult",
    "BimpResult",
    "split_epochs",
    "baselines",
    "STRATEGIES",
    "SparseRun",
    "train_sparse",
]

from . import structured  # noqa: E402  (structured compression, Zimmer et al. 2022)
from .structured import (  # noqa: E402
    DecomposedConv2d,
    filter_masks,
    low_rank,
    prune_filters_,
    relative_distance_to_pruned,
)

__all__ += [
    "structured",
    "filter_masks",
    "prune_filters_",
    "DecomposedConv2d",
    "low_rank",
    "relative_distance_to_pruned",
]
