"""Byzantine-resilient federated learning with knowledge distillation (Roux, Zimmer and Pokutta, 2024,
"On the Byzantine-Resilience of Distillation-Based Federated Learning", arXiv:2402.12265; ICLR 2025).

- :mod:`~companion.federated.data`: public / private / test splits, IID and Dirichlet client partitions,
  the shifted public set.
- :mod:`~companion.federated.attacks`: parameter attacks for FedAvg, prediction attacks for FedDistill
  (naive, fixed, adversarial sign flip, LMA, CPA), HIPS obfuscation and partial attacks.
- :mod:`~companion.federated.defences`: prediction aggregators with per-client outlier scores (mean,
  coordinate-wise median, geometric median, Filter, Cronus) and the ExpGuard / FilterExp memory.
- :mod:`~companion.federated.loop`: clients trained side by side with ``torch.func`` (or one by one with
  :func:`companion.train.fit`), the FedAvg and FedDistill round loop, detection AUROC.
- :mod:`~companion.federated.experiment`: what the chapter's notebooks share (the cached central model for
  CPA's matrix, grids of runs over seeds, mean ± std summaries).
"""

from . import attacks, data, defences, experiment, loop
from .attacks import ATTACKS, PARAMETER_ATTACKS, cpa_matrix, hips, parameter_attack, prediction_attack
from .data import FederatedTask, dirichlet_partition, iid_partition, make_task
from .defences import DEFENCES, ExpGuard, aggregate, cronus_keep, filter_scores, geometric_median
from .loop import FLConfig, auroc, central_model, local_epoch_split, run

__all__ = [
    "attacks",
    "data",
    "defences",
    "loop",
    "experiment",
    "ATTACKS",
    "PARAMETER_ATTACKS",
    "cpa_matrix",
    "hips",
    "parameter_attack",
    "prediction_attack",
    "FederatedTask",
    "dirichlet_partition",
    "iid_partition",
    "make_task",
    "DEFENCES",
    "ExpGuard",
    "aggregate",
    "cronus_keep",
    "filter_scores",
    "geometric_median",
    "FLConfig",
    "auroc",
    "central_model",
    "local_epoch_split",
    "run",
]
