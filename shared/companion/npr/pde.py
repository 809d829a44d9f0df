"""PDE references for the NPR chapter: initial conditions, the exact heat solution, a pseudo-spectral Burgers
solver and the exact Cole-Hopf solution of viscous Burgers.

Every problem lives on the periodic interval x in [0, 1) and t in [0, T]. An initial condition is a zero-mean
trigonometric polynomial

    u0(x) = sum_{k=1}^{K} a_k sin(2 pi k x) + b_k cos(2 pi k x),

stored as :class:`FourierIC` (coefficient arrays over the modes 1..K). This representation is exact: u0 and
its derivatives are known everywhere, m > 2K equispaced sensors determine it uniquely (trigonometric
interpolation), and its primitive, which Cole-Hopf needs, is again a trigonometric polynomial. All references
here are float64 numpy; none is learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FourierIC:
    """A batch of initial conditions u0_i(x) = sum_k a[i, k-1] sin(2 pi k x) + b[i, k-1] cos(2 pi k x)."""

    a: np.ndarray  # (n, K) sine coefficients of the modes 1..K
    b: np.ndarray  # (n, K) cosine coefficients

    def __post_init__(self):
        self.a = np.atleast_2d(np.asarray(self.a, dtype=np.float64))
        self.b = np.atleast_2d(np.asarray(self.b, dtype=np.float64))
        if self.a.shape != self.b.shape:
            raise ValueError(f"sine and cosine coefficients differ in shape: {self.a.shape} vs {self.b.shape}")

    @property
    def modes(self) -> np.ndarray:
        return np.arange(1, self.a.shape[1] + 1)

    def __len__(self) -> int:
        return self.a.shape[0]

    def __getitem__(self, idx) -> "FourierIC":
        return FourierIC(self.a[idx], self.b[idx])

    def padded(self, K: int) -> "FourierIC":
        """The same functions with coefficient arrays zero-padded to K modes."""
        pad = ((0, 0), (0, K - self.a.shape[1]))
        return FourierIC(np.pad(self.a, pad), np.pad(self.b, pad))

    def __call__(self, x: np.ndarray, derivative: int = 0) -> np.ndarray:
        """u0 (or its ``derivative``-th x-derivative) of every initial condition at the points ``x``: (n, len(x))."""
        w = 2 * np.pi * self.modes  # (K,)
        ph = np.outer(w, np.ravel(x))  # (K, P)
        # d^m/dx^m sin(wx) = w^m sin(wx + m pi/2), same for cos
        s, c = np.sin(ph + derivative * np.pi / 2), np.cos(ph + derivative * np.pi / 2)
        wm = w[None, :] ** derivative
        return (self.a * wm) @ s + (self.b * wm) @ c

    def primitive(self, x: np.ndarray) -> np.ndarray:
        """U0(x) = int_0^x u0(y) dy (periodic because u0 has zero mean): (n, len(x))."""
        w = 2 * np.pi * self.modes
        ph = np.outer(w, np.ravel(x))
        return (self.a / w) @ (1 - np.cos(ph)) + (self.b / w) @ np.sin(ph)


def fourier_ic(
    n: int,
    K: int = 4,
    sigma: float = 1.0,
    decay: float = 1.0,
    k_min: int = 1,
    rng: np.random.Generator | int | None = None,
) -> FourierIC:
    """In-distribution initial conditions: a_k, b_k ~ N(0, (sigma / k^decay)^2) for k_min <= k <= K, zero below.

    ``k_min = 5, K = 8`` gives the higher-mode out-of-distribution family, ``sigma`` doubled the
    larger-amplitude one. The decay is relative to k_min (the first drawn mode has standard deviation sigma).
    """
    rng = np.random.default_rng(rng)
    k = np.arange(1, K + 1)
    std = np.where(k >= k_min, sigma / np.maximum(k - k_min + 1.0, 1.0) ** decay, 0.0)
    return FourierIC(rng.standard_normal((n, K)) * std, rng.standard_normal((n, K)) * std)


def grf_ic(
    n: int,
    K: int = 16,
    sigma: float = 25.0,
    tau: float = 5.0,
    alpha: float = 4.0,
    rng: np.random.Generator | int | None = None,
) -> FourierIC:
    """A periodic Gaussian random field u0 ~ N(0, sigma^2 (-Delta + tau^2 I)^(-alpha)) on [0, 1), zero mean,
    truncated to the modes 1..K (Karhunen-Loeve expansion in the Fourier basis).

    The eigenfunctions of -Delta are sqrt(2) sin(2 pi k x), sqrt(2) cos(2 pi k x) with eigenvalue (2 pi k)^2, so
    each coefficient is sqrt(2) sigma ((2 pi k)^2 + tau^2)^(-alpha/2) times a standard normal. The defaults are
    the covariance written in the PI-DeepONet Burgers benchmark (Wang, Wang & Perdikaris 2021, Sec. 4.3).
    """
    rng = np.random.default_rng(rng)
    k = np.arange(1, K + 1)
    std = np.sqrt(2.0) * sigma * ((2 * np.pi * k) ** 2 + tau**2) ** (-alpha / 2)
    return FourierIC(rng.standard_normal((n, K)) * std, rng.standard_normal((n, K)) * std)


def from_samples(values: np.ndarray, K: int | None = None) -> FourierIC:
    """The trigonometric interpolant of equispaced samples u0(j/m), j < m, as a :class:`FourierIC`.

    Exact when the sampled function is a zero-mean trigonometric polynomial with K < m/2 modes; the mean
    (mode 0) and the Nyquist mode are dropped.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    m = values.shape[1]
    K = K if K is not None else (m - 1) // 2
    c = np.fft.rfft(values, axis=1) / m  # u = sum_k c_k e^{2 pi i k x} + conj
    return FourierIC(-2 * c[:, 1 : K + 1].imag, 2 * c[:, 1 : K + 1].real)


def heat_exact(ic: FourierIC, x: np.ndarray, t: np.ndarray, nu: float) -> np.ndarray:
    """The exact solution of u_t = nu u_xx: every Fourier mode k decays as exp(-nu (2 pi k)^2 t).

    Returns (n, len(t), len(x)).
    """
    w = 2 * np.pi * ic.modes
    decay = np.exp(-nu * np.outer(np.ravel(t), w**2))  # (T, K)
    ph = np.outer(w, np.ravel(x))
    return np.einsum("nk,tk,kp->ntp", ic.a, decay, np.sin(ph)) + np.einsum("nk,tk,kp->ntp", ic.b, decay, np.cos(ph))


def burgers_spectral(u0: np.ndarray, t_out: np.ndarray, nu: float, dt: float = 1e-3) -> np.ndarray:
    """Viscous Burgers u_t + u u_x = nu u_xx on the periodic [0, 1), pseudo-spectral in x, integrating-factor RK4
    in time, vectorised over initial conditions.

    ``u0``: (n, N) values on the grid j/N (N even); ``t_out``: increasing output times, multiples of ``dt``
    up to rounding. In Fourier space u_hat' = -nu k^2 u_hat - (i k / 2) FFT(u^2); with v = exp(nu k^2 t) u_hat the
    stiff linear part is integrated exactly and RK4 handles the nonlinear term, de-aliased by the 2/3 rule.
    Returns (n, len(t_out), N).
    """
    u0 = np.atleast_2d(np.asarray(u0, dtype=np.float64))
    N = u0.shape[1]
    k = 2 * np.pi * np.fft.rfftfreq(N, d=1.0 / N)
    dealias = np.fft.rfftfreq(N, d=1.0 / N) < N / 3
    lin = -nu * k**2

    def nonlinear(uh):
        u = np.fft.irfft(uh, n=N, axis=-1)
        return -0.5j * k * np.fft.rfft(u * u, axis=-1) * dealias

    e_half, e_full = np.exp(lin * dt / 2), np.exp(lin * dt)
    uh = np.fft.rfft(u0, axis=-1)
    out = np.empty((u0.shape[0], len(t_out), N))
    j = 0
    steps = np.rint(np.asarray(t_out) / dt).astype(int)
    for step in range(steps[-1] + 1):
        while j < len(steps) and steps[j] == step:
            out[:, j] = np.fft.irfft(uh, n=N, axis=-1)
            j += 1
        if j == len(steps):
            break
        k1 = nonlinear(uh)
        k2 = nonlinear(e_half * (uh + dt / 2 * k1))
        k3 = nonlinear(e_half * uh + dt / 2 * k2)
        k4 = nonlinear(e_full * uh + dt * e_half * k3)
        uh = e_full * uh + dt / 6 * (e_full * k1 + 2 * e_half * (k2 + k3) + k4)
    return out


def burgers_reference(
    ic: FourierIC, x: np.ndarray, t: np.ndarray, nu: float, N: int = 256, dt: float = 1e-3
) -> np.ndarray:
    """:func:`burgers_spectral` from the exact u0 on N grid points, read off at the grid points ``x`` (which
    must be a subset of j/N) and times ``t``: (n, len(t), len(x))."""
    grid = np.arange(N) / N
    idx = np.rint(np.asarray(x) * N).astype(int)
    if not np.allclose(grid[idx % N], np.mod(x, 1.0)):
        raise ValueError(f"the evaluation points must lie on the solver grid j/{N}")
    return burgers_spectral(ic(grid), t, nu, dt)[:, :, idx % N]


def burgers_cole_hopf(ic: FourierIC, x: np.ndarray, t: float, nu: float, n_quad: int = 20001) -> np.ndarray:
    """The exact solution of viscous Burgers by the Cole-Hopf transform, evaluated by quadrature.

    u = -2 nu phi_x / phi with phi_t = nu phi_xx and phi(x, 0) = exp(-U0(x) / (2 nu)) turns, with the heat
    kernel on the line, into

        u(x, t) = int (x - y)/t w(x, y) dy / int w(x, y) dy,   w = exp(-U0(y)/(2 nu) - (x - y)^2/(4 nu t)).

    The weights are normalised in log space (log-sum-exp), so the formula stays computable for small nu, where
    exp(-U0 / (2 nu)) overflows any spectral representation. U0 is periodic (u0 has zero mean), so the
    integral over the line is truncated to ``|x - y| <= 12 sqrt(nu t)``, where the kernel is below e^-36.
    Needs t > 0 large enough that the kernel is resolved by the quadrature. Returns (n, len(x)).
    """
    if t <= 0:
        raise ValueError("Cole-Hopf quadrature needs t > 0")
    x = np.ravel(x)
    half = 12 * np.sqrt(nu * t)
    s = np.linspace(-half, half, n_quad)  # y = x - s
    out = np.empty((len(ic), len(x)))
    for j, xj in enumerate(x):
        logw = -ic.primitive(xj - s) / (2 * nu) - s**2 / (4 * nu * t)  # (n, n_quad)
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        w[:, [0, -1]] *= 0.5  # trapezoid
        out[:, j] = (w @ (s / t)) / w.sum(axis=1)
    return out


def relative_l2(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """||pred - ref||_2 / ||ref||_2 per initial condition over the (t, x) grid (all axes but the first)."""
    pred, ref = np.asarray(pred), np.asarray(ref)
    axes = tuple(range(1, ref.ndim))
    return np.sqrt(((pred - ref) ** 2).sum(axes) / (ref**2).sum(axes))


# --- 2D: the periodic unit square (the ``gpu`` profile's heat problem) -----------------------------------------


def wave_vectors(K: int) -> np.ndarray:
    """The integer wave vectors k = (k1, k2) with ``max(|k1|, |k2|) <= K`` in the half plane k1 > 0 or (k1 = 0,
    k2 > 0): one of each pair +-k, so that sin/cos(2 pi k.x) over them are linearly independent. (M, 2),
    M = 2K(K + 1)."""
    ks = [(k1, k2) for k1 in range(0, K + 1) for k2 in range(-K, K + 1) if k1 > 0 or k2 > 0]
    return np.array(ks, dtype=np.int64)


@dataclass
class FourierIC2D:
    """A batch of initial conditions on the periodic unit square,
    u0_i(x) = sum_j a[i, j] sin(2 pi k_j . x) + b[i, j] cos(2 pi k_j . x), x = (x1, x2), over the wave vectors
    ``k`` (M, 2) of :func:`wave_vectors`: the 2D analogue of :class:`FourierIC`."""

    a: np.ndarray  # (n, M)
    b: np.ndarray  # (n, M)
    k: np.ndarray  # (M, 2) integer wave vectors

    def __post_init__(self):
        self.a = np.atleast_2d(np.asarray(self.a, dtype=np.float64))
        self.b = np.atleast_2d(np.asarray(self.b, dtype=np.float64))
        self.k = np.asarray(self.k, dtype=np.int64).reshape(-1, 2)
        if self.a.shape != self.b.shape or self.a.shape[1] != len(self.k):
            raise ValueError(f"coefficients {self.a.shape}, {self.b.shape} do not fit {len(self.k)} wave vectors")

    def __len__(self) -> int:
        return self.a.shape[0]

    def __getitem__(self, idx) -> "FourierIC2D":
        return FourierIC2D(self.a[idx], self.b[idx], self.k)

    def __call__(self, points: np.ndarray, laplacian: bool = False) -> np.ndarray:
        """u0 (or its Laplacian) of every initial condition at ``points`` (P, 2): (n, P)."""
        ph = 2 * np.pi * np.reshape(points, (-1, 2)) @ self.k.T  # (P, M)
        scale = -((2 * np.pi) ** 2) * (self.k**2).sum(1) if laplacian else np.ones(len(self.k))
        return (self.a * scale) @ np.sin(ph).T + (self.b * scale) @ np.cos(ph).T


def fourier_ic2d(
    n: int,
    K: int = 4,
    sigma: float = 1.0,
    decay: float = 1.0,
    rng: np.random.Generator | int | None = None,
) -> FourierIC2D:
    """The 2D version of :func:`fourier_ic`: ``a_k, b_k ~ N(0, (sigma / |k|^decay)^2)`` for the wave vectors of
    :func:`wave_vectors` (``max(|k1|, |k2|) <= K``)."""
    rng = np.random.default_rng(rng)
    k = wave_vectors(K)
    std = sigma / np.sqrt((k**2).sum(1)) ** decay
    return FourierIC2D(rng.standard_normal((n, len(k))) * std, rng.standard_normal((n, len(k))) * std, k)


def grf_ic2d(
    n: int,
    K: int = 8,
    sigma: float = 25.0,
    tau: float = 5.0,
    alpha: float = 4.0,
    rng: np.random.Generator | int | None = None,
) -> FourierIC2D:
    """The 2D version of :func:`grf_ic`: a periodic Gaussian random field N(0, sigma^2 (-Delta + tau^2 I)^(-alpha))
    on the unit square, zero mean, truncated to the wave vectors with ``max(|k1|, |k2|) <= K``. The eigenvalue of
    -Delta at sqrt(2) sin/cos(2 pi k.x) is ``4 pi^2 |k|^2``."""
    rng = np.random.default_rng(rng)
    k = wave_vectors(K)
    std = np.sqrt(2.0) * sigma * (4 * np.pi**2 * (k**2).sum(1) + tau**2) ** (-alpha / 2)
    return FourierIC2D(rng.standard_normal((n, len(k))) * std, rng.standard_normal((n, len(k))) * std, k)


def heat_exact2d(ic: FourierIC2D, points: np.ndarray, t: np.ndarray, nu: float) -> np.ndarray:
    """The exact solution of u_t = nu (u_xx + u_yy) on the periodic unit square: the mode k decays as
    ``exp(-nu 4 pi^2 |k|^2 t)``. ``points`` (P, 2); returns (n, len(t), P)."""
    ph = 2 * np.pi * np.reshape(points, (-1, 2)) @ ic.k.T  # (P, M)
    decay = np.exp(-nu * np.outer(np.ravel(t), 4 * np.pi**2 * (ic.k**2).sum(1)))  # (T, M)
    return np.einsum("nm,tm,pm->ntp", ic.a, decay, np.sin(ph)) + np.einsum("nm,tm,pm->ntp", ic.b, decay, np.cos(ph))


def grid2d(n: int) -> np.ndarray:
    """The n x n points (i / n, j / n) of the unit square, x1 running slowest: (n^2, 2)."""
    g = np.arange(n) / n
    X1, X2 = np.meshgrid(g, g, indexing="ij")
    return np.stack([X1.ravel(), X2.ravel()], axis=1)
