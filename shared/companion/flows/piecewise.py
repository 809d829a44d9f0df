"""Piecewise-constant and piecewise-linear functions of time.

Everything in a flow over time with deterministic queues and piecewise-constant inflow is piecewise
linear (cumulative flows, queues, earliest-arrival labels, exit times) or piecewise constant (flow rates).
These two small classes carry breakpoints exactly, so reference values such as the Braess phase
boundaries are computed without sampling error.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

ArrayLike = float | Sequence[float] | np.ndarray


class PiecewiseConstant:
    """A right-continuous step function ``f(t) = values[i]`` on ``[times[i], times[i+1])``.

    Before ``times[0]`` the function equals ``left`` (0 by default); after the last breakpoint it keeps the
    last value. Used for inflow rates ``u_0(theta)`` and commodity departure rates.
    """

    def __init__(self, times: Sequence[float], values: Sequence[float], left: float = 0.0):
        t = np.asarray(times, dtype=float)
        v = np.asarray(values, dtype=float)
        if t.ndim != 1 or t.shape != v.shape or t.size == 0:
            raise ValueError("times and values must be 1-d sequences of equal, positive length")
        if np.any(np.diff(t) <= 0):
            raise ValueError(f"breakpoints must be strictly increasing, got {t.tolist()}")
        self.times, self.values, self.left = t, v, float(left)

    @classmethod
    def constant(cls, rate: float, start: float = 0.0) -> "PiecewiseConstant":
        """The rate ``rate`` from ``start`` on (0 before)."""
        return cls([start], [rate])

    @classmethod
    def from_pairs(cls, pairs: Sequence[Sequence[float]]) -> "PiecewiseConstant":
        """From ``[(t0, r0), (t1, r1), ...]``: rate ``r_i`` from ``t_i`` until ``t_{i+1}``."""
        pairs = sorted((float(t), float(r)) for t, r in pairs)
        return cls([p[0] for p in pairs], [p[1] for p in pairs])

    def __call__(self, t: ArrayLike) -> np.ndarray | float:
        t_arr = np.asarray(t, dtype=float)
        idx = np.searchsorted(self.times, t_arr, side="right") - 1
        out = np.where(idx >= 0, self.values[np.clip(idx, 0, None)], self.left)
        return float(out) if np.ndim(t) == 0 else out

    def next_breakpoint(self, t: float) -> float:
        """The first breakpoint strictly after ``t`` (``inf`` if none)."""
        i = np.searchsorted(self.times, t, side="right")
        return float(self.times[i]) if i < self.times.size else float("inf")

    @property
    def end(self) -> float:
        """Where the function becomes zero for good (``inf`` if the last value is not zero)."""
        return float(self.times[-1]) if self.values[-1] == 0 else float("inf")

    def integral(self) -> "PiecewiseLinear":
        """The cumulative function ``F(t) = int_{-inf}^t f`` (requires ``left == 0``)."""
        if self.left != 0:
            raise ValueError("the integral of a function that is non-zero before its first breakpoint diverges")
        cum = np.concatenate([[0.0], np.cumsum(self.values[:-1] * np.diff(self.times))])
        return PiecewiseLinear(self.times, cum, right_slope=float(self.values[-1]))

    def pairs(self) -> list[tuple[float, float]]:
        """``[(t_i, value_i), ...]``, the YAML/text representation."""
        return [(float(t), float(v)) for t, v in zip(self.times, self.values)]

    def __repr__(self) -> str:
        return f"PiecewiseConstant({self.pairs()})"


class PiecewiseLinear:
    """A continuous piecewise-linear function through the points ``(x[i], y[i])``.

    Constant ``y[0]`` left of ``x[0]``; right of ``x[-1]`` it continues with slope ``right_slope``.
    Repeated abscissae are merged (keeping the last ordinate), which happens when a phase has zero
    length in some label's time scale.
    """

    def __init__(self, x: Sequence[float], y: Sequence[float], right_slope: float = 0.0):
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise ValueError("x and y must be 1-d sequences of equal, positive length")
        if np.any(np.diff(x) < 0):
            raise ValueError("x must be non-decreasing")
        keep = np.append(np.diff(x) > 0, True)
        self.x, self.y, self.right_slope = x[keep], y[keep], float(right_slope)

    def __call__(self, t: ArrayLike) -> np.ndarray | float:
        t_arr = np.asarray(t, dtype=float)
        out = np.interp(t_arr, self.x, self.y)
        right = t_arr > self.x[-1]
        out = np.where(right, self.y[-1] + self.right_slope * (t_arr - self.x[-1]), out)
        return float(out) if np.ndim(t) == 0 else out

    def slopes(self) -> np.ndarray:
        """Slope on each segment ``[x[i], x[i+1]]``."""
        return np.diff(self.y) / np.diff(self.x)

    def derivative(self) -> PiecewiseConstant:
        """The right derivative as a step function (0 left of ``x[0]``)."""
        return PiecewiseConstant(self.x, np.append(self.slopes(), self.right_slope))

    def inverse(self, y: ArrayLike) -> np.ndarray | float:
        """For a non-decreasing function: the smallest ``t`` with ``f(t) >= y``.

        Values below ``y[0]`` map to ``x[0]``; values above the last point use ``right_slope`` (``inf`` if 0).
        """
        if np.any(np.diff(self.y) < 0) or self.right_slope < 0:
            raise ValueError("inverse needs a non-decreasing function")
        y_arr = np.asarray(y, dtype=float)
        i = np.searchsorted(self.y, y_arr, side="left")
        out = np.empty_like(y_arr, dtype=float)
        inside = (i > 0) & (i < self.y.size)
        j = i[inside]
        y0, y1, x0, x1 = self.y[j - 1], self.y[j], self.x[j - 1], self.x[j]
        out[inside] = x0 + (y_arr[inside] - y0) * (x1 - x0) / (y1 - y0)
        out[i == 0] = self.x[0]
        beyond = i >= self.y.size
        if self.right_slope > 0:
            out[beyond] = self.x[-1] + (y_arr[beyond] - self.y[-1]) / self.right_slope
        else:
            out[beyond] = np.inf
        return float(out) if np.ndim(y) == 0 else out

    def __add__(self, other: "PiecewiseLinear") -> "PiecewiseLinear":
        xs = np.union1d(self.x, other.x)
        return PiecewiseLinear(xs, self(xs) + other(xs), self.right_slope + other.right_slope)

    def __repr__(self) -> str:
        pts = ", ".join(f"({a:g}, {b:g})" for a, b in zip(self.x, self.y))
        return f"PiecewiseLinear([{pts}], right_slope={self.right_slope:g})"
