"""Neural search for plane colorings.

A network ``f_theta(x, y, d_1, ..., d_k)`` maps a point of the plane and the vector of forbidden
distances to ``k`` colour logits; the softmax is a *probabilistic* coloring ``p(. | x)``.  Training
minimises the probability of monochromatic pairs at the forbidden distances::

    L(theta) = sum_k E_x E_{|y - x| = d_k} [ p_k(x) p_k(y) ],

estimated on random anchors ``x`` in a box and ``m`` points ``y_j`` on the circle of radius ``d_k``
around each anchor, with a soft maximum over the circle points (temperature ``T``) that emphasises
the worst direction.  This follows the method released with the follow-up paper (Mundinger et al.,
ICML 2025, repository ``ZIB-IOL/neural-discovery-icml25``): sine activations with SIREN
initialisation (Sitzmann et al., 2020), every anchor replicated for every colour, the sixth distance
drawn uniformly from an interval so that one network learns colorings for a whole range of ``d``.

Evaluation uses the *conflict rate*: on a grid, each point takes its argmax colour ``c(x)`` and
``n_directions`` points at distance ``d_{c(x)}`` are tested; a point is in conflict if any test point
has the same colour.  The extraction at the end reads a periodic cell grid off the learned coloring
and measures the empirical admissible interval of the sixth colour.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = [
    "Sine",
    "SirenMLP",
    "SearchConfig",
    "sample_batch",
    "conflict_loss",
    "linear_warmup_schedule",
    "train_coloring",
    "distance_vector",
    "color_grid",
    "conflict_map",
    "conflict_rate",
    "PeriodicGrid",
    "find_periods",
    "extract_periodic_grid",
    "component_interval",
    "PeriodicColoringModel",
    "raster_component_interval",
]


def _progress(iterable, **kw):
    """``companion.progress`` when available (quiet under COMPANION_QUIET=1), else tqdm."""
    try:
        from companion import progress  # type: ignore

        return progress(iterable, **kw)
    except ImportError:
        from tqdm.auto import tqdm

        return tqdm(iterable, disable=os.environ.get("COMPANION_QUIET") == "1", **kw)


class Sine(nn.Module):
    """Elementwise ``sin``: the periodic activation of SIREN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.sin(x)


class SirenMLP(nn.Module):
    """Sine-activated MLP ``(x, y, d_1..d_k) -> k`` colour logits (the released code's ``ResMLP``).

    SIREN initialisation (Sitzmann et al., 2020) as in the released code: the first layer is drawn
    from ``U(-1/fan_in, 1/fan_in)`` and multiplied by ``omega0`` (default 30), so the network starts
    with features of many frequencies; later layers from ``U(-sqrt(6/fan_in), sqrt(6/fan_in))``.
    Residual connections are off, as in the provided configs.

    Args:
        n_colors: number of colours ``k``.
        hidden: width of each hidden layer.
        layers: number of hidden layers after the first (the default config: 4 x 32 hidden units
            means one input layer and three hidden-to-hidden layers).
        omega0: first-layer frequency scale.
        condition_on_distances: feed the ``k`` forbidden distances as extra inputs.
    """

    def __init__(
        self,
        n_colors: int = 6,
        hidden: int = 32,
        layers: int = 4,
        omega0: float = 30.0,
        condition_on_distances: bool = True,
    ):
        super().__init__()
        self.n_colors = n_colors
        self.condition_on_distances = condition_on_distances
        in_dim = 2 + (n_colors if condition_on_distances else 0)
        dims = [in_dim] + [hidden] * layers
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(hidden, n_colors)
        self.act = Sine()
        with torch.no_grad():
            for idx, lin in enumerate(list(self.hidden_layers) + [self.out]):
                bound = 1.0 / lin.in_features if idx == 0 else math.sqrt(6.0 / lin.in_features)
                lin.weight.uniform_(-bound, bound)
                lin.bias.uniform_(-bound, bound)
                if idx == 0:
                    lin.weight.mul_(omega0)

    def forward(self, points: torch.Tensor, distances: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``points`` (``(..., 2)``) under the forbidden ``distances`` (``(..., k)``)."""
        h = points
        if self.condition_on_distances:
            if distances is None:
                raise ValueError("this model is conditioned on the forbidden distances")
            h = torch.cat([points, distances.expand(*points.shape[:-1], self.n_colors)], -1)
        for lin in self.hidden_layers:
            h = self.act(lin(h))
        return self.out(h)


@dataclass
class SearchConfig:
    """Hyper-parameters of one neural search run (defaults: the repository's
    ``configs/polychromatic_one_free.yaml`` scaled to a CPU)."""

    n_colors: int = 6
    hidden: int = 32
    layers: int = 4
    omega0: float = 30.0
    box: float = 3.0  # anchors uniform in [-box, box]^2
    d_low: float = 0.30  # the sixth distance ~ U[d_low, d_high]
    d_high: float = 0.70
    unit: float = 1.0  # forbidden distance of colours 1..k-1
    n_anchors: int = 256
    n_circle: int = 8
    temperature: float = 5.0  # soft maximum over circle points; <= 0 means hard max
    steps: int = 3000
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: float = 0.05  # fraction of steps with linear warm-up, then linear decay to 0
    extra: dict = field(default_factory=dict)


def distance_vector(d6: float, n_colors: int = 6, unit: float = 1.0) -> torch.Tensor:
    """The type ``(1, ..., 1, d6)`` as a tensor."""
    v = torch.full((n_colors,), float(unit))
    v[-1] = float(d6)
    return v


def sample_batch(cfg: SearchConfig, generator: torch.Generator | None = None) -> dict:
    """One training batch: anchors uniform in the box, each replicated for every colour; per anchor
    a sixth distance ``d ~ U[d_low, d_high]``; ``n_circle`` uniformly spaced points (random phase) on
    the circle of radius ``d_colour`` around each (anchor, colour) pair."""
    k, n, m = cfg.n_colors, cfg.n_anchors, cfg.n_circle
    g = generator
    anchors = (torch.rand(n, 2, generator=g) * 2 - 1) * cfg.box
    d6 = torch.rand(n, generator=g) * (cfg.d_high - cfg.d_low) + cfg.d_low
    dist = torch.full((n, k), cfg.unit)
    dist[:, -1] = d6
    anchors = anchors.repeat_interleave(k, 0)  # (n k, 2)
    dist = dist.repeat_interleave(k, 0)  # (n k, k)
    colours = torch.arange(k).repeat(n)  # (n k,)
    radius = dist[torch.arange(n * k), colours]  # (n k,)
    phase = torch.rand(n * k, 1, generator=g) * 2 * math.pi
    ang = phase + 2 * math.pi * torch.arange(m)[None, :] / m
    circle = anchors[:, None, :] + radius[:, None, None] * torch.stack([torch.cos(ang), torch.sin(ang)], -1)
    return {"anchors": anchors, "distances": dist, "colours": colours, "circle": circle}


def conflict_loss(model: nn.Module, batch: dict, temperature: float = 5.0) -> torch.Tensor:
    """Probability of a monochromatic pair at the forbidden distance (the "prob" loss).

    For an anchor ``x`` and colour ``k`` with circle points ``y_j``: ``s_j = p_k(x) p_k(y_j)``,
    aggregated by the soft maximum ``sum_j softmax(T s)_j s_j`` (hard max for ``T <= 0``), then
    averaged over anchors and colours.
    """
    d = batch["distances"]
    px = torch.softmax(model(batch["anchors"], d), -1)  # (N, k)
    m = batch["circle"].shape[1]
    py = torch.softmax(model(batch["circle"], d[:, None, :].expand(-1, m, -1)), -1)  # (N, m, k)
    idx = torch.arange(len(px))
    c = batch["colours"]
    s = px[idx, c][:, None] * py[idx, :, c]  # (N, m)
    if temperature > 0:
        agg = (torch.softmax(temperature * s, -1) * s).sum(-1)
    else:
        agg = s.max(-1).values
    return agg.mean()


def linear_warmup_schedule(
    optimizer: torch.optim.Optimizer, steps: int, warmup: float = 0.05
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup * steps`` steps, then linear decay to zero."""
    w = max(1, int(warmup * steps))

    def f(step: int) -> float:
        if step < w:
            return (step + 1) / w
        return max(0.0, (steps - step) / max(1, steps - w))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)


def train_coloring(
    cfg: SearchConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    model: nn.Module | None = None,
    progress: bool = True,
) -> tuple[nn.Module, list]:
    """Train a :class:`SirenMLP` on :func:`conflict_loss` with AdamW and a linear schedule.

    Returns the model (in eval mode) and the list of per-step losses.
    """
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    if model is None:
        model = SirenMLP(cfg.n_colors, cfg.hidden, cfg.layers, cfg.omega0)
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = linear_warmup_schedule(opt, cfg.steps, cfg.warmup)
    losses = []
    it = range(cfg.steps)
    if progress:
        it = _progress(it, desc=f"train seed {seed}", leave=False)
    model.train()
    for _ in it:
        batch = {k: v.to(device) for k, v in sample_batch(cfg, g).items()}
        loss = conflict_loss(model, batch, cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return model, losses


def _grid_points(grid_size: int, box: float) -> torch.Tensor:
    t = torch.linspace(-box, box, grid_size)
    X, Y = torch.meshgrid(t, t, indexing="xy")
    return torch.stack([X, Y], -1)  # (G, G, 2); row index = y


@torch.no_grad()
def color_grid(
    model: nn.Module, distances: torch.Tensor, grid_size: int = 200, box: float = 3.0, device="cpu"
) -> np.ndarray:
    """Argmax colour on a ``grid_size x grid_size`` grid over ``[-box, box]^2`` (row = y, col = x)."""
    pts = _grid_points(grid_size, box).reshape(-1, 2).to(device)
    d = distances.to(device)
    out = torch.cat([model(chunk, d).argmax(-1) for chunk in pts.split(65536)])
    return out.reshape(grid_size, grid_size).cpu().numpy()


@torch.no_grad()
def conflict_map(
    model: nn.Module,
    distances: torch.Tensor,
    grid_size: int = 150,
    n_directions: int = 64,
    box: float = 3.0,
    device="cpu",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Argmax colours on the grid and a boolean map of grid points in conflict.

    A grid point ``x`` of colour ``c`` is in conflict when one of ``n_directions`` equally spaced
    points (random phase) at distance ``d_c`` has the network's colour ``c`` too (the metric of the
    released code, "fraction of points with conflict").
    """
    g = torch.Generator().manual_seed(seed)
    pts = _grid_points(grid_size, box).reshape(-1, 2).to(device)
    d = distances.to(device)
    cols, conf = [], []
    for chunk in pts.split(4096):
        c = model(chunk, d).argmax(-1)
        r = d[c]
        phase = torch.rand(len(chunk), 1, generator=g).to(device) * 2 * math.pi
        ang = phase + 2 * math.pi * torch.arange(n_directions, device=device)[None, :] / n_directions
        y = chunk[:, None, :] + r[:, None, None] * torch.stack([torch.cos(ang), torch.sin(ang)], -1)
        cy = model(y.reshape(-1, 2), d).argmax(-1).reshape(len(chunk), n_directions)
        cols.append(c)
        conf.append((cy == c[:, None]).any(-1))
    shape = (grid_size, grid_size)
    return torch.cat(cols).reshape(shape).cpu().numpy(), torch.cat(conf).reshape(shape).cpu().numpy()


def conflict_rate(
    model: nn.Module,
    distances: torch.Tensor,
    grid_size: int = 150,
    n_directions: int = 64,
    box: float = 3.0,
    device="cpu",
    seed: int = 0,
) -> float:
    """Fraction of grid points in conflict (see :func:`conflict_map`)."""
    return float(conflict_map(model, distances, grid_size, n_directions, box, device, seed)[1].mean())


# ---------------------------------------------------------------------------------- extraction
@dataclass
class PeriodicGrid:
    """A periodic cell grid read off a raster coloring.

    ``lattice`` rows are the two period vectors (plane units); the fundamental parallelogram is cut
    into ``cells.shape`` cells ``(a, b)`` with centre ``((a + 0.5)/na) v1 + ((b + 0.5)/nb) v2`` and
    colour ``cells[a, b]``; ``agreement`` is the fraction of raster pixels whose colour equals the
    periodic cell colour (1 = perfectly periodic).
    """

    lattice: np.ndarray
    cells: np.ndarray
    agreement: float


def find_periods(
    img: np.ndarray, pixel: float, n_colors: int, min_len: float = 0.3, max_len: float | None = None
) -> np.ndarray:
    """Two shortest independent period vectors of a raster coloring (rows; plane units).

    The autocorrelation of the one-hot colour images (via FFT) is large at the image's periods;
    its peaks away from the origin are ranked by height, and the shortest strong peak plus the
    shortest strong peak not parallel to it form the lattice basis, reduced (Lagrange-Gauss).
    """
    H, W = img.shape
    # full (non-cyclic) autocorrelation with zero padding, normalised by overlap area
    acf = np.zeros((2 * H, 2 * W))
    for c in range(n_colors):
        f = (img == c).astype(float)
        F = np.fft.fft2(f, s=(2 * H, 2 * W))
        acf += np.real(np.fft.ifft2(F * np.conj(F)))
    ones = np.fft.fft2(np.ones((H, W)), s=(2 * H, 2 * W))
    overlap = np.real(np.fft.ifft2(ones * np.conj(ones)))
    score = acf / np.maximum(overlap, 1)  # fraction of overlapping pixels with equal colour
    dy = np.fft.fftfreq(2 * H, 1 / (2 * H)).astype(int)
    dx = np.fft.fftfreq(2 * W, 1 / (2 * W)).astype(int)
    DY, DX = np.meshgrid(dy, dx, indexing="ij")
    length = np.hypot(DX, DY) * pixel
    max_len = max_len if max_len is not None else 0.5 * min(H, W) * pixel
    valid = (length >= min_len) & (length <= max_len) & (overlap > 0.25 * H * W)
    # local maxima of the score
    from scipy.ndimage import maximum_filter

    peaks = (
        valid
        & (score == maximum_filter(score, size=5, mode="wrap"))
        & (score > 0.5 * score[valid].max() + 0.5 * np.median(score[valid]))
    )
    cand = np.stack([DX[peaks], DY[peaks]], -1) * pixel
    sc = score[peaks]
    order = np.lexsort((np.hypot(*cand.T), -np.round(sc, 2)))
    cand = cand[order]
    # shortest strong peak, then shortest non-parallel one
    strong = cand[sc[order] >= sc.max() - 0.05]
    slen = np.hypot(*strong.T)
    v1 = strong[np.argmin(slen)]
    v2 = None
    for v in strong[np.argsort(np.hypot(*strong.T))]:
        if abs(v1[0] * v[1] - v1[1] * v[0]) > 0.2 * np.hypot(*v1) * np.hypot(*v):
            v2 = v
            break
    if v2 is None:
        raise ValueError("no two independent periods found")
    return _gauss_reduce(np.array([v1, v2], dtype=float))


def _gauss_reduce(B: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduction of a 2D lattice basis (shortest, nearly orthogonal basis)."""
    u, v = B[0].copy(), B[1].copy()
    if u @ u > v @ v:
        u, v = v, u
    while True:
        mu = round(float(u @ v) / float(u @ u))
        v = v - mu * u
        if v @ v >= u @ u:
            return np.array([u, v])
        u, v = v, u


def extract_periodic_grid(
    img: np.ndarray, box: float, lattice: np.ndarray, n_colors: int, cells: int = 48
) -> PeriodicGrid:
    """Fold a raster coloring onto one period: every pixel votes for the cell of the fundamental
    parallelogram it falls into (modulo the lattice); each cell takes its majority colour."""
    H, W = img.shape
    t = np.linspace(-box, box, W)
    s = np.linspace(-box, box, H)
    X, Y = np.meshgrid(t, s, indexing="xy")
    pts = np.stack([X.ravel(), Y.ravel()], -1)
    coef = pts @ np.linalg.inv(lattice)
    frac = coef - np.floor(coef)
    a = np.minimum((frac[:, 0] * cells).astype(int), cells - 1)
    b = np.minimum((frac[:, 1] * cells).astype(int), cells - 1)
    votes = np.zeros((cells, cells, n_colors))
    np.add.at(votes, (a, b, img.ravel()), 1)
    grid = votes.argmax(-1)
    agreement = float((grid[a, b] == img.ravel()).mean())
    return PeriodicGrid(np.asarray(lattice, float), grid, agreement)


def component_interval(grid: PeriodicGrid, color: int) -> dict:
    """Empirical admissible interval of one colour of a periodic cell grid.

    Connected components of the colour's cells are found on the torus (4-neighbourhood, with
    wrap-around bookkeeping so that a component's cells get consistent lattice offsets).  A
    component's diameter is the largest distance between corners of its cells; the gap is the
    smallest distance between cells of two distinct components (all lattice translates).  Returns
    ``{'n_components', 'max_diameter', 'min_gap', 'area_fraction'}``; ``max_diameter <= min_gap``
    means the cell grid avoids every distance in between.  Resolution: one cell diagonal.
    """
    from scipy.spatial import cKDTree

    C = grid.cells
    na, nb = C.shape
    L = grid.lattice
    mask = C == color
    comp = -np.ones((na, nb), dtype=int)
    offset = np.zeros((na, nb, 2), dtype=int)  # lattice offset of the cell's copy in its component
    n_comp = 0
    for a0, b0 in zip(*np.nonzero(mask)):
        if comp[a0, b0] >= 0:
            continue
        comp[a0, b0] = n_comp
        stack = [(a0, b0, 0, 0)]
        while stack:
            a, b, oa, ob = stack.pop()
            for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                a2, b2 = a + da, b + db
                oa2, ob2 = oa + (a2 // na), ob + (b2 // nb)
                a2, b2 = a2 % na, b2 % nb
                if not mask[a2, b2]:
                    continue
                if comp[a2, b2] < 0:
                    comp[a2, b2] = n_comp
                    offset[a2, b2] = (oa2, ob2)
                    stack.append((a2, b2, oa2, ob2))
                elif comp[a2, b2] == n_comp and tuple(offset[a2, b2]) != (oa2, ob2):
                    # the component wraps around the torus: it is unbounded in the plane
                    return {
                        "n_components": n_comp + 1,
                        "max_diameter": float("inf"),
                        "min_gap": 0.0,
                        "area_fraction": float(mask.mean()),
                    }
        n_comp += 1
    if n_comp == 0:
        return {"n_components": 0, "max_diameter": 0.0, "min_gap": float("inf"), "area_fraction": 0.0}
    idx = np.argwhere(mask)
    # cell centres in the plane, shifted by the component's lattice offset
    uv = (idx + 0.5) / np.array([na, nb]) + offset[idx[:, 0], idx[:, 1]]
    centres = uv @ L
    cell_vecs = np.array([L[0] / na, L[1] / nb])
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) @ cell_vecs
    labels = comp[idx[:, 0], idx[:, 1]]
    max_diam = 0.0
    for k in range(n_comp):
        pts = (centres[labels == k][:, None, :] + corners[None]).reshape(-1, 2)
        from scipy.spatial import ConvexHull

        if len(pts) >= 3:
            try:
                hv = pts[ConvexHull(pts).vertices]
            except Exception:  # degenerate (collinear) hull
                hv = pts
        else:
            hv = pts
        dd = np.sqrt(((hv[:, None] - hv[None]) ** 2).sum(-1)).max()
        max_diam = max(max_diam, float(dd))
    # gaps: every component against all cells of the colour outside it (5 x 5 neighbouring translates)
    shifts = np.array([(m, n) for m in range(-2, 3) for n in range(-2, 3)]) @ L
    all_c = (centres[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    all_lab = np.tile(labels, len(shifts)) + n_comp * np.repeat(np.arange(len(shifts)), len(labels))
    middle = len(shifts) // 2  # shift (0, 0)
    cell_diag = float(np.sqrt(((corners[0] - corners[2]) ** 2).sum()))
    best = np.inf
    for k in range(n_comp):
        own = labels == k
        others = all_lab != k + n_comp * middle
        if not others.any():
            continue
        dist, _ = cKDTree(all_c[others]).query(centres[own], k=1)
        # centre distance minus one cell diagonal bounds the true cell-cell distance from below
        best = min(best, float(dist.min()) - cell_diag)
    return {
        "n_components": int(n_comp),
        "max_diameter": max_diam,
        "min_gap": max(best, 0.0),
        "area_fraction": float(mask.mean()),
    }


class PeriodicColoringModel(nn.Module):
    """Wrap an exact :class:`~companion.colorings.periodic.PeriodicColoring` as a "network" with
    one-hot logits, so that the grid metrics (:func:`conflict_rate`, :func:`color_grid`) measure the
    exact constructions and the learned colorings on the same footing."""

    def __init__(self, coloring, scale: float = 50.0):
        super().__init__()
        self.coloring = coloring
        self.scale = scale

    def forward(self, points: torch.Tensor, distances: torch.Tensor | None = None) -> torch.Tensor:  # noqa: D102
        pts = points.detach().cpu().numpy().reshape(-1, 2)
        c = self.coloring.color_at(pts)
        c = np.where(c < 0, 0, c)  # boundary points (measure zero) get colour 1
        out = torch.zeros(len(pts), self.coloring.n_colors, dtype=points.dtype)
        out[torch.arange(len(pts)), torch.as_tensor(c)] = self.scale
        return out.reshape(*points.shape[:-1], self.coloring.n_colors).to(points.device)


def raster_component_interval(img: np.ndarray, box: float, color: int, min_pixels: int = 6) -> dict:
    """Empirical admissible interval of one colour read directly off a raster coloring.

    The colour's connected components (4-neighbourhood) are labelled; components touching the
    image border (cut off) and specks of fewer than ``min_pixels`` pixels (noise) are dropped and
    counted.  A component's diameter is the largest distance between its pixels' corners; the gap
    is the smallest centre distance to a pixel of another kept component minus one pixel diagonal (a
    lower bound).  Unlike :func:`component_interval` this needs no periodicity, so it also works on a
    network coloring with defects.  Returns ``{'n_components', 'n_dropped', 'max_diameter',
    'median_diameter', 'min_gap', 'median_gap'}`` (the medians describe typical islands).
    """
    from scipy import ndimage
    from scipy.spatial import ConvexHull, cKDTree

    H, W = img.shape
    px = 2 * box / (W - 1)
    lab, n = ndimage.label(img == color)
    keep, dropped = [], 0
    for k in range(1, n + 1):
        yy, xx = np.nonzero(lab == k)
        if len(yy) < min_pixels or yy.min() == 0 or xx.min() == 0 or yy.max() == H - 1 or xx.max() == W - 1:
            dropped += 1
            continue
        keep.append(np.stack([xx, yy], -1) * px - box)
    if not keep:
        return {
            "n_components": 0,
            "n_dropped": dropped,
            "max_diameter": float("nan"),
            "median_diameter": float("nan"),
            "min_gap": float("nan"),
            "median_gap": float("nan"),
        }
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * px
    diams = []
    for c in keep:
        pts = (c[:, None, :] + corners[None]).reshape(-1, 2)
        try:
            hv = pts[ConvexHull(pts).vertices]
        except Exception:  # degenerate hull (a line of pixels)
            hv = pts
        diams.append(float(np.sqrt(((hv[:, None] - hv[None]) ** 2).sum(-1)).max()))
    gaps = []
    allpts = np.concatenate(keep)
    owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(keep)])
    for i, c in enumerate(keep):
        others = allpts[owner != i]
        if len(others):
            gaps.append(float(cKDTree(others).query(c, k=1)[0].min()) - px * np.sqrt(2))
    return {
        "n_components": len(keep),
        "n_dropped": dropped,
        "max_diameter": float(max(diams)),
        "median_diameter": float(np.median(diams)),
        "min_gap": float(min(gaps)) if gaps else float("inf"),
        "median_gap": float(np.median(gaps)) if gaps else float("inf"),
    }
