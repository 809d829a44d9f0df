"""Neural Parameter Regression (Mundinger, Zimmer & Pokutta 2024): PDE references, the low-rank solution network
and its hypernetwork, the physics-informed DeepONet baseline, PINN residuals and fine-tuning.

- :mod:`~companion.npr.pde`: initial conditions (Fourier, out-of-distribution, Gaussian random field), the exact
  heat solution, the pseudo-spectral Burgers solver and the exact Cole-Hopf solution;
- :mod:`~companion.npr.models`: :class:`LowRankMLP`, :class:`HyperNetwork`, :class:`DeepONet`, batched
  evaluation with ``torch.func``;
- :mod:`~companion.npr.physics`: residuals, :func:`train_operator`, :func:`predict_operator`, :func:`fine_tune`.
"""

from .models import DeepONet, HyperNetwork, LowRankMLP, batched_call, deeponet_matching, num_params
from .pde import (
    FourierIC,
    burgers_cole_hopf,
    burgers_reference,
    burgers_spectral,
    fourier_ic,
    from_samples,
    grf_ic,
    heat_exact,
    relative_l2,
)
from .physics import (
    Problem,
    fine_tune,
    grid,
    inference_seconds,
    predict,
    predict_operator,
    random_networks,
    residual,
    residual_of,
    sensor_values,
    steps_to_reach,
    train_operator,
    train_operator_cached,
)

__all__ = [
    "DeepONet",
    "FourierIC",
    "HyperNetwork",
    "LowRankMLP",
    "Problem",
    "batched_call",
    "burgers_cole_hopf",
    "burgers_reference",
    "burgers_spectral",
    "deeponet_matching",
    "fine_tune",
    "fourier_ic",
    "from_samples",
    "grf_ic",
    "grid",
    "heat_exact",
    "inference_seconds",
    "num_params",
    "predict",
    "predict_operator",
    "random_networks",
    "relative_l2",
    "residual",
    "residual_of",
    "sensor_values",
    "steps_to_reach",
    "train_operator",
    "train_operator_cached",
]
