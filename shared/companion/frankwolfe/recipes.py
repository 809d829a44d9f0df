"""One-call set-ups of the optimizers for the common case of a whole model."""

from __future__ import annotations

from typing import Any

from torch import nn

from .constraints import constraints_for, make_feasible_
from .optimizers import SFW


def constrained_sfw(
    model: nn.Module,
    kind: str = "l2",
    width: float = 30.0,
    *,
    lr: float = 0.1,
    momentum: float = 0.9,
    momentum_style: str = "convex",
    rescale: str = "gradient",
    mode: str = "initialization",
    global_: bool = False,
    **region_options: Any,
) -> SFW:
    """SFW over ``model`` with one ``kind`` region per parameter tensor (all of them, biases and BatchNorm
    included, as in the paper), sized by ``width`` (``D_l = 2 w E||theta_l^init||``, as in the official code
    ``ZIB-IOL/StochasticFrankWolfe``), with the initial weights made feasible by gauge rescaling -- the three
    steps every experiment repeats.

    ``region_options`` go to the region class (``p`` for ``lp``, ``k`` for ``ksparse``/``knorm``).
    """
    groups = constraints_for(model, kind, width, mode, global_=global_, **region_options)
    make_feasible_(groups)
    return SFW(groups, lr=lr, momentum=momentum, momentum_style=momentum_style, rescale=rescale)
