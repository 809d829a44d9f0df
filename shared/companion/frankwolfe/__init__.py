"""Stochastic Frank-Wolfe training of constrained networks (``sfw`` and ``sfw-compression`` chapters).

* :mod:`~companion.frankwolfe.constraints` -- feasible regions with one interface (LMO, diameter, gauge, feasibility
  rescaling, exact projection) and the sizing rules of the reference code;
* :mod:`~companion.frankwolfe.optimizers` -- SFW, AdaSFW, projected SGD and the variance-reduced variants
  SVRF / SPIDER-FW / ORGFW;
* :mod:`~companion.frankwolfe.bench` -- step-time comparison of SFW with ``torch.optim.SGD``.

Typical use::

    groups = fw.constraints_for(model, kind="l2", width=30.0)   # one region per parameter tensor
    fw.make_feasible_(groups)                                    # gauge-rescale the initial weights
    opt = fw.SFW(groups, lr=0.1, momentum=0.9, rescale="gradient")
"""

from .bench import step_time_ratio
from .constraints import (
    REGIONS,
    KNormBall,
    KSparsePolytope,
    L1Ball,
    L2Ball,
    LInfBall,
    LpBall,
    Permutahedron,
    ProbabilitySimplex,
    Region,
    UnitSimplex,
    constraints_for,
    init_norm,
    init_norms,
    iter_units,
    make_feasible_,
    make_region,
    max_gauge,
    register_region,
    resolve_k,
)
from .optimizers import (
    MOMENTUM_STYLES,
    ORGFW,
    RESCALE_MODES,
    SFW,
    SVRF,
    AdaSFW,
    ProjectedSGD,
    SpiderFW,
    attach_regions,
    frank_wolfe_update_,
    orgfw_rho,
)

__all__ = [
    "Region",
    "LpBall",
    "L1Ball",
    "L2Ball",
    "LInfBall",
    "KSparsePolytope",
    "KNormBall",
    "UnitSimplex",
    "ProbabilitySimplex",
    "Permutahedron",
    "REGIONS",
    "register_region",
    "make_region",
    "resolve_k",
    "init_norms",
    "init_norm",
    "constraints_for",
    "iter_units",
    "make_feasible_",
    "max_gauge",
    "RESCALE_MODES",
    "MOMENTUM_STYLES",
    "attach_regions",
    "frank_wolfe_update_",
    "SFW",
    "AdaSFW",
    "ProjectedSGD",
    "SVRF",
    "SpiderFW",
    "ORGFW",
    "orgfw_rho",
    "step_time_ratio",
]

from .recipes import constrained_sfw  # noqa: E402  (one-call set-up used by the notebooks)

__all__ += ["constrained_sfw"]

from . import compression, structured  # noqa: E402  (compression-aware regions and baselines, Zimmer et al. 2022)
from .compression import Penalty, ProxSGD, structured_constraints  # noqa: E402
from .structured import (  # noqa: E402
    GroupKSupportBall,
    KSupportBall,
    NuclearBall,
    SpectralKSparsePolytope,
    SpectralKSupportBall,
    ksupport_norm,
    top_k_svd,
)

__all__ += [
    "structured",
    "compression",
    "KSupportBall",
    "GroupKSupportBall",
    "NuclearBall",
    "SpectralKSupportBall",
    "SpectralKSparsePolytope",
    "ksupport_norm",
    "top_k_svd",
    "structured_constraints",
    "Penalty",
    "ProxSGD",
]
