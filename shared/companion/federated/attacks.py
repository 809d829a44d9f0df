"""Byzantine attacks (paper Sec. 3-4; official code ``byzantine/attacks.py``).

Prediction attacks act on the honest clients' softmax predictions on the public set, a tensor ``honest`` of
shape ``[h, N, C]``; every byzantine client sends the same message of shape ``[N, C]``. Names are the
official code's, with the paper's names as aliases:

=================================  ==========  =========================================================
code name                          alias       message for public sample x
=================================  ==========  =========================================================
``PredictionNaiveSignFlip``        ``naive``   one-hot on a uniformly random class
``PredictionFixedSignFlip``        ``fixed``   one-hot on class 0
``PredictionAdversarialSignFlip``  ``ASF``     one-hot on the second most likely class of the honest mean
``CELMAX``                         ``LMA``     one-hot on the least likely class of the honest mean
``CPA``                            ``CPA``     one-hot on ``argmin_j S[j, c*]``, ``c*`` the honest top class
=================================  ==========  =========================================================

Parameter attacks (FedAvg) replace a byzantine client's parameters: ``ParameterRandomVector`` (i.i.d.
standard normal) and ``ParameterRandomVectorScaled`` (a Gaussian rescaled to the norm of the tensor it
replaces).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PREDICTION_ATTACKS = {
    "PredictionNaiveSignFlip": "naive",
    "PredictionFixedSignFlip": "fixed",
    "PredictionAdversarialSignFlip": "ASF",
    "CELMAX": "LMA",
    "CPA": "CPA",
}
PARAMETER_ATTACKS = {"ParameterRandomVector": "random", "ParameterRandomVectorScaled": "scaled-random"}
ATTACKS = {**PREDICTION_ATTACKS, **PARAMETER_ATTACKS}
_ALIAS = {alias.lower(): code for code, alias in ATTACKS.items()} | {code.lower(): code for code in ATTACKS}


def canonical(name: str) -> str:
    """The code name of an attack given its code name or paper alias (case-insensitive)."""
    try:
        return _ALIAS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown attack {name!r}; accepted: {', '.join(ATTACKS)} or {', '.join(ATTACKS.values())}")


def cpa_matrix(probs: torch.Tensor) -> torch.Tensor:
    """CPA's class-similarity matrix S: the ``C x C`` covariance of predicted probability vectors ``probs``
    (``[N, C]``, e.g. a centrally trained model's softmax on the public set). Like the official
    ``byzantine/cpa_info/stl10-cov.pt`` it is symmetric with rows summing to zero."""
    return torch.cov(probs.T.double()).to(probs.dtype)


def _one_hot(classes: torch.Tensor, num_classes: int, dtype) -> torch.Tensor:
    return F.one_hot(classes, num_classes).to(dtype)


def vertex(
    name: str, mean: torch.Tensor, S: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The simplex vertex each prediction attack sends, per sample, given the honest mean ``mean`` ``[N, C]``
    (paper Fig. 2 for LMA and CPA)."""
    code = canonical(name)
    n, c = mean.shape
    if code == "PredictionNaiveSignFlip":
        # drawn on the CPU generator and moved, so that every device sees the same classes
        cls = torch.randint(0, c, (n,), generator=generator).to(mean.device)
    elif code == "PredictionFixedSignFlip":
        cls = torch.zeros(n, dtype=torch.long, device=mean.device)
    elif code == "PredictionAdversarialSignFlip":
        cls = mean.topk(2, dim=1).indices[:, 1]
    elif code == "CELMAX":
        cls = mean.argmin(dim=1)
    elif code == "CPA":
        if S is None:
            raise ValueError("CPA needs its class matrix S (see cpa_matrix)")
        cls = S[:, mean.argmax(dim=1)].argmin(dim=0)
    else:
        raise ValueError(f"{code} is a parameter attack (FedAvg), not a prediction attack")
    return _one_hot(cls, c, mean.dtype)


def hips(
    name: str,
    honest: torch.Tensor,
    alpha: float,
    S: torch.Tensor | None = None,
    weighting: str = "intended",
) -> torch.Tensor:
    """HIPS ("hide in plain sight"): per sample, the honest client's prediction vector that best serves the
    attack, so that the byzantine message is one of the honest messages (paper Sec. on HIPS).

    - LMA: the ``j`` maximising the cross-entropy ``-sum_c Ybar_c log(m_c)`` of the honest mean ``Ybar``
      against the mixture the mean aggregate would form, ``m = (1 - alpha) Ybar + alpha Y_j`` with
      ``alpha = f / n`` (``weighting="intended"``). The official code mixes ``alpha Ybar + (1 - alpha) Y_j``
      (``weighting="code"``), which looks swapped.
    - CPA: the ``j`` minimising ``<S[c*, :], Y_j>``.
    """
    code = canonical(name)
    mean = honest.mean(0)
    if code == "CELMAX":
        if weighting == "intended":
            mix = (1 - alpha) * mean + alpha * honest
        elif weighting == "code":
            mix = alpha * mean + (1 - alpha) * honest
        else:
            raise ValueError("weighting must be 'intended' or 'code'")
        objective = -(mean * torch.log(mix.clamp_min(1e-12))).sum(-1)  # [h, N]
        pick = objective.argmax(0)
    elif code == "CPA":
        if S is None:
            raise ValueError("CPA needs its class matrix S (see cpa_matrix)")
        rows = S[mean.argmax(1)]  # [N, C]
        pick = (honest * rows).sum(-1).argmin(0)
    else:
        raise ValueError(f"HIPS is defined for LMA and CPA, not for {code}")
    return honest[pick, torch.arange(honest.shape[1], device=honest.device)]


def prediction_attack(
    name: str,
    honest: torch.Tensor,
    n_byzantine: int,
    alpha: float | None = None,
    S: torch.Tensor | None = None,
    use_hips: bool = False,
    sample_frac: float = 1.0,
    hips_weighting: str = "intended",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Messages ``[n_byzantine, N, C]`` of the byzantine clients given the honest predictions ``[h, N, C]``.

    ``use_hips`` replaces the vertex by :func:`hips`; ``sample_frac`` = p < 1 is the partial attack
    (``sample_attack_frac`` in the code): a random fraction p of the public samples is attacked, the others
    get the honest mean. ``alpha`` defaults to ``n_byzantine / (h + n_byzantine)``."""
    mean = honest.mean(0)
    if alpha is None:
        alpha = n_byzantine / (honest.shape[0] + n_byzantine)
    msg = hips(name, honest, alpha, S, hips_weighting) if use_hips else vertex(name, mean, S, generator)
    if sample_frac < 1.0:
        attacked = (torch.rand(mean.shape[0], generator=generator) < sample_frac).to(mean.device)
        msg = torch.where(attacked[:, None], msg, mean)
    return msg.unsqueeze(0).expand(n_byzantine, *msg.shape).clone()


@torch.no_grad()
def parameter_attack(
    name: str, params: dict[str, torch.Tensor], generator: torch.Generator | None = None, code_bug: bool = False
) -> dict[str, torch.Tensor]:
    """A byzantine FedAvg client's parameters in place of ``params`` (the broadcast model it skipped
    training on): i.i.d. N(0, 1) per tensor, or that Gaussian rescaled to each tensor's L2 norm.

    ``code_bug=True`` reproduces the official ``ParameterRandomVectorScaled``, which takes the new norm from
    the old tensor and rescales the old tensor, so that the attack returns ``params`` unchanged (a
    no-op). The Gaussians are drawn on ``generator`` (a CPU generator) and moved to each tensor's device."""
    code = canonical(name)
    out = {}
    for k, p in params.items():
        if code == "ParameterRandomVector":
            out[k] = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        elif code == "ParameterRandomVectorScaled":
            if code_bug:
                out[k] = p.clone()
                continue
            z = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
            out[k] = z * (p.norm() / z.norm().clamp_min(1e-12))
        else:
            raise ValueError(f"{code} is a prediction attack (FedDistill), not a parameter attack")
    return out
