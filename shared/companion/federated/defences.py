"""Prediction aggregators of the server with per-client outlier scores (paper Sec. 4-5; official code
``byzantine/defences.py``), and the memory mechanism ExpGuard (FilterExp in the arXiv versions).

Every aggregator takes the clients' predictions ``Y`` of shape ``[n, N, C]`` (n clients, N public samples,
C classes) and returns ``(aggregate [N, C], scores [n])``; the score of a client is the mean over samples
of its distance (or absolute filter score) to the aggregate, the quantity ExpGuard accumulates over rounds.
"""

from __future__ import annotations

import math

import torch

DEFENCES = {
    "NoDefence": "mean",
    "PredictionMedian": "median",
    "PredictionGeoMedian": "GM",
    "PredictionFilter": "Filter",
    "Cronus": "Cronus",
}
_ALIAS = {a.lower(): c for c, a in DEFENCES.items()} | {c.lower(): c for c in DEFENCES}


def canonical(name: str) -> str:
    """The code name of a defence from its code name or alias (case-insensitive)."""
    try:
        return _ALIAS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown defence {name!r}; accepted: {', '.join(DEFENCES)} or {', '.join(DEFENCES.values())}")


def _distance_scores(Y: torch.Tensor, agg: torch.Tensor) -> torch.Tensor:
    return (Y - agg).norm(dim=-1).mean(-1)


def mean(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``NoDefence``: the plain mean over clients; score = mean L2 distance to it."""
    agg = Y.mean(0)
    return agg, _distance_scores(Y, agg)


def median(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``PredictionMedian``: the coordinate-wise median over clients (``torch.median``: for an even number
    of clients the lower of the two middle values), renormalised to sum 1; score = L2 distance to it."""
    med = Y.median(dim=0).values
    agg = med / med.sum(-1, keepdim=True).clamp_min(1e-12)
    return agg, _distance_scores(Y, agg)


def geometric_median(Y: torch.Tensor, max_iter: int = 100, ftol: float = 1e-8, eps: float = 1e-12) -> torch.Tensor:
    """Per-sample geometric median ``argmin_z sum_i ||Y_i - z||_2`` of ``Y`` ``[n, N, C]`` by Weiszfeld's
    iteration ``z <- sum_i w_i Y_i / sum_i w_i`` with ``w_i = 1 / max(eps, ||Y_i - z||)``, started at the mean;
    stops when the objective's relative decrease is below ``ftol`` for every sample, or after ``max_iter``."""
    z = Y.mean(0)
    obj = (Y - z).norm(dim=-1).sum(0)
    for _ in range(max_iter):
        w = 1.0 / (Y - z).norm(dim=-1).clamp_min(eps)  # [n, N]
        z = (w[..., None] * Y).sum(0) / w.sum(0)[..., None]
        new = (Y - z).norm(dim=-1).sum(0)
        done = bool(((obj - new).abs() <= ftol * new.clamp_min(eps)).all())
        obj = new
        if done:
            break
    return z


def geomedian(Y: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """``PredictionGeoMedian``: :func:`geometric_median`, clamped to >= 0 and L1-normalised; score =
    distance to it."""
    z = geometric_median(Y, **kwargs).clamp_min(0)
    agg = z / z.sum(-1, keepdim=True).clamp_min(1e-12)
    return agg, _distance_scores(Y, agg)


def filter_scores(Y: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Spectral filter scores ``s_i(x) = <Y_i(x) - Ybar(x), v(x)>`` ``[n, N]``, where ``v(x)`` is the top
    eigenvector of the ``C x C`` covariance of the client predictions at sample x (robust mean estimation's
    filter). ``keep`` (``[n, N]`` booleans) restricts mean and covariance to the kept clients per sample.

    The official code finds ``v`` by 400 power iterations from the all-ones vector; the rows of every
    centred prediction sum to zero, so the all-ones vector is in the covariance's null space and the
    iteration only leaves it through rounding errors. We take ``v`` from ``torch.linalg.eigh`` instead (the
    sign of ``v`` does not matter: only ``|s|`` is used)."""
    w = torch.ones(Y.shape[:2], dtype=Y.dtype, device=Y.device) if keep is None else keep.to(Y.dtype)
    cnt = w.sum(0).clamp_min(1.0)  # [N]
    mu = (w[..., None] * Y).sum(0) / cnt[:, None]
    D = Y - mu  # [n, N, C]
    cov = torch.einsum("in,inc,ind->ncd", w, D, D) / cnt[:, None, None]
    v = torch.linalg.eigh(cov.double()).eigenvectors[..., -1].to(Y.dtype)  # [N, C]
    return (D * v).sum(-1)


def _filter_mean(Y: torch.Tensor, s: torch.Tensor, q: float | None, threshold: float | None, keep0=None):
    a = s.abs()
    if keep0 is not None:
        a = torch.where(keep0, a, torch.full_like(a, math.inf))
    if threshold is not None:
        keep = a <= threshold
    else:
        # Quantile over clients per sample with 'higher' interpolation, among the clients still in play.
        n_in = (a < math.inf).sum(0)  # [N]
        k = torch.ceil(q * (n_in - 1)).long()  # 0-based rank of the 'higher' quantile
        tau = a.sort(dim=0).values.gather(0, k[None]).squeeze(0)
        keep = a <= tau
    if keep0 is not None:
        keep = keep & keep0
    w = keep.to(Y.dtype)
    cnt = w.sum(0)
    agg = (w[..., None] * Y).sum(0) / cnt.clamp_min(1.0)[:, None]
    agg = torch.where((cnt > 0)[:, None], agg, Y.mean(0))  # nobody kept: the plain mean
    return agg


def filter_(Y: torch.Tensor, quantile: float | None = 0.9, threshold: float | None = None):
    """``PredictionFilter``: keep, per sample, the clients with ``|s_i(x)| <= tau`` and average them; ``tau``
    is the fixed ``threshold`` or (exclusively) the per-sample ``quantile`` of ``|s|`` over clients
    ('higher' interpolation); if nobody is kept, the plain mean. Score = mean over samples of ``|s_i|``."""
    if (quantile is None) == (threshold is None):
        raise ValueError("give exactly one of quantile and threshold")
    s = filter_scores(Y)
    return _filter_mean(Y, s, quantile, threshold), s.abs().mean(-1)


def cronus_keep(n: int) -> tuple[int, float, int]:
    """Cronus' constants for ``n`` clients: ``f_max = ceil(n/2) - 1`` (most byzantine clients tolerated),
    ``q = 1 - f_max / (2n)`` and the number ``floor(q n)`` of clients kept in its first stage."""
    f_max = math.ceil(n / 2) - 1
    q = 1 - f_max / (2 * n)
    return f_max, q, int(math.floor(q * n + 1e-9))


def cronus(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Cronus``: keep per sample the ``floor(q n)`` clients with the smallest ``|s_i|``
    (:func:`cronus_keep`), recompute the filter scores on them and filter them again with quantile ``q``.
    Score = mean ``|s_i|`` of the first stage."""
    n = Y.shape[0]
    _, q, k = cronus_keep(n)
    s = filter_scores(Y)
    order = s.abs().argsort(dim=0)
    keep0 = torch.zeros_like(s, dtype=torch.bool).scatter_(0, order[:k], True)
    s2 = filter_scores(Y, keep0)
    return _filter_mean(Y, s2, q, None, keep0), s.abs().mean(-1)


def aggregate(name: str, Y: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the defence ``name`` (code name or alias) on ``Y`` ``[n, N, C]``: ``(aggregate, scores)``."""
    code = canonical(name)
    fn = {
        "NoDefence": mean,
        "PredictionMedian": median,
        "PredictionGeoMedian": geomedian,
        "PredictionFilter": filter_,
        "Cronus": cronus,
    }[code]
    return fn(Y, **kwargs)


class ExpGuard:
    """ExpGuard (ICLR 2025; FilterExp in the arXiv versions; ``memory_method='expweights'`` in the code):
    exponential weights over rounds on top of a base defence.

    Weights start at 1; in round t the base defence gives each client its mean outlier score ``s_i^t`` and
    ``w_i <- w_i exp(-eta s_i^t)``; the aggregate is ``sum_i p_i Y_i`` with ``p = w / ||w||_1`` over *all*
    clients (no per-sample filtering at that stage). The weights are kept as logarithms, so that they can
    fall far below the smallest float without becoming 0/0.
    """

    def __init__(self, n_clients: int, eta: float = 1.0, base: str = "Filter", **base_kwargs):
        self.eta, self.base, self.base_kwargs = eta, base, base_kwargs
        self.log_w = torch.zeros(n_clients, dtype=torch.float64)

    @property
    def weights(self) -> torch.Tensor:
        """The normalised weights ``p`` (sum 1)."""
        return torch.softmax(self.log_w, 0)

    def update(self, scores: torch.Tensor) -> torch.Tensor:
        """One exponential-weights step with the round's scores; returns the new ``p``."""
        self.log_w = self.log_w.to(scores.device) - self.eta * scores.double()
        return self.weights

    def __call__(self, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, scores = aggregate(self.base, Y, **self.base_kwargs)
        p = self.update(scores).to(Y.dtype)
        return (p[:, None, None] * Y).sum(0), scores
