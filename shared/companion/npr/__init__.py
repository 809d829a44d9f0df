"""Neural Parameter Regression (Mundinger, Zimmer & Pokutta 2024): PDE references, the low-rank solution network
and its hypernetwork, the physics-informed DeepONet baseline, PINN residuals and fine-tuning.

- :mod:`~companion.npr.pde`: initial conditions (Fourier, out-of-distribution, Gaussian random field), the exact
  heat solution, the pseudo-spectral Burgers solver and the exact Cole-Hopf solution; the 2D heat equation on
  the periodic unit square (``FourierIC2D``, ``heat_exact2d``);
- :mod:`~companion.npr.models`: :class:`LowRankMLP`, :class:`HyperNetwork`, :class:`DeepONet`, batched
  evaluation with ``torch.func``;
- :mod:`~companion.npr.physics`: residuals, :func:`train_operator`, :func:`predict_operator`, :func:`fine_tune`.
"""

from .models import DeepONet, HyperNetwork, LowRankMLP, batched_call, deeponet_matching, num_params
from .pde import (
    FourierIC,
    FourierIC2D,
    burgers_cole_hopf,
    burgers_reference,
    burgers_spectral,
    fourier_ic,
    fourier_ic2d,
    from_samples,
    grf_ic,
    grf_ic2d,
    grid2d,
    heat_exact,
    heat_exact2d,
    relative_l2,
    wave_vectors,
)
from .physics import (
    Problem,
    fine_tune,
    grid,
    inference_seconds,
    predict,
    predict2d,
    predict_operator,
    random_networks,
    residual,
    residual2d,
    residual_of,
    residual_of2d,
    sensor_values,
    steps_to_reach,
    train_operator,
    train_operator_cached,
)

__all__ = [
    "DeepONet",
    "FourierIC",
    "FourierIC2D",
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
    "fourier_ic2d",
    "from_samples",
    "grf_ic",
    "grf_ic2d",
    "grid",
    "grid2d",
    "heat_exact",
    "heat_exact2d",
    "inference_seconds",
    "num_params",
    "predict",
    "predict2d",
    "predict_operator",
    "random_networks",
    "relative_l2",
    "residual",
    "residual2d",
    "residual_of",
    "residual_of2d",
    "sensor_values",
    "steps_to_reach",
    "train_operator",
    "train_operator_cached",
    "wave_vectors",
]
