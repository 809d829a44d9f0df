"""The Asymmetric Feature Correlation (AFC) toy: an exact example in which the kappa = 1 bound fails.

Built from the paper's AFC illustration (section 3; also S. Wäldchen's blog post "Interactive
Classification 4"): ``m`` feature slots ``phi_1..phi_m`` and one slot ``psi``. Every class-B point (label 0)
contains exactly one ``phi_i`` (``n_B / m`` points each); a fraction ``q`` of the class-A points (label 1)
contains all ``phi_i``, and every class-A point contains ``psi``. A slot's value is +1 (present) or -1
(absent), so 0 can mean hidden. With ``k = 1``: Arthur says B on a present ``phi_i``, A on a present ``psi``
and ⊥ on anything else; Merlin shows ``phi_i`` for B and ``psi`` for A; Morgana shows a present ``phi_i``
for A points that have one (else an absent slot) and the absent ``psi`` for B points.

Everything here is computed by counting on the explicit data set, except :func:`toy_closed_form`, the
analytic values the counts must reproduce.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .core import binary_entropy, class_entropy, information_bound, precision_bound, precision_by_matching


def toy_data(m: int, q: float, n_a: int = 1000, n_b: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy's points ``(n_a + n_b, m + 1)`` in {-1, +1} (slot ``m`` is ``psi``) and labels (A = 1, B = 0).
    Needs ``m | n_b`` and ``q n_a`` integral (so that every count is exact)."""
    n_full = round(q * n_a)
    if n_b % m or abs(n_full - q * n_a) > 1e-9:
        raise ValueError("the toy needs m to divide n_b and q * n_a to be an integer")
    X = -torch.ones(n_a + n_b, m + 1)
    X[:n_a, m] = 1.0  # every A point has psi
    X[:n_full, :m] = 1.0  # a fraction q of them has every phi
    X[n_a + torch.arange(n_b), torch.arange(n_b) % m] = 1.0  # B points: one phi each, n_b / m per slot
    y = torch.cat([torch.ones(n_a, dtype=torch.long), torch.zeros(n_b, dtype=torch.long)])
    return X, y


def toy_agents(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merlin's and Morgana's one-hot masks and Arthur's decisions on them (0 = B, 1 = A, 2 = ⊥)."""
    n, width = X.shape
    m = width - 1
    phi_present = X[:, :m] > 0
    is_a = X[:, m] > 0
    first_phi = phi_present.float().argmax(1)
    merlin = torch.where(is_a, torch.full((n,), m), first_phi)
    # Morgana: a present phi for A points that have one, else an absent phi (A) or the absent psi (B).
    morgana = torch.where(
        is_a, torch.where(phi_present.any(1), first_phi, torch.zeros(n, dtype=torch.long)), torch.full((n,), m)
    )

    def arthur(slot: torch.Tensor) -> torch.Tensor:
        value = X[torch.arange(n), slot]
        return torch.where(value < 0, 2, torch.where(slot == m, 1, 0))

    eye = torch.eye(width)
    return eye[merlin], eye[morgana], arthur(merlin), arthur(morgana)


def afc_kappa(X: torch.Tensor, y: torch.Tensor, features: list[tuple[int, float]], label: int) -> float:
    """``E_{y ~ D_l | F*} max_{z in F, z ⊆ y} kappa_l(z, F)`` for one feature set ``F`` of single-slot
    features ``(slot, value)``, by counting (the definition of the AFC, section 3). ``kappa_l(z, F)`` is the
    ratio of ``P_{D_-l}[z ⊆ x | x in F*]`` to ``P_{D_l}[z ⊆ x | x in F*]``; when ``D_-l`` has no point in
    ``F*`` the ratio is undefined and taken as 1 (our convention)."""
    contains = torch.stack([X[:, s] == v for s, v in features], 1)  # (N, |F|)
    in_star = contains.any(1)
    own, other = in_star & (y == label), in_star & (y != label)
    if not bool(other.any()):
        return 1.0
    p_own = contains[own].double().mean(0)
    p_other = contains[other].double().mean(0)
    ratio = torch.where(p_own > 0, p_other / p_own.clamp_min(1e-300), torch.zeros_like(p_own))
    best = torch.where(contains[own], ratio[None, :], torch.full_like(contains[own], -math.inf, dtype=torch.double))
    return float(best.max(1).values.mean())


def toy_measured(m: int, q: float, n_a: int = 1000, n_b: int = 1000) -> dict[str, float]:
    """The toy's completeness, soundness, precision, kappa (for ``F = {phi_i}`` and ``F = {psi}``), the
    bounds and the information quantities, all by counting on the explicit data set (alpha = 1: Morgana
    finds a usable feature wherever one exists)."""
    X, y = toy_data(m, q, n_a, n_b)
    mk, mh, dk, dh = toy_agents(X)
    ok = dk == y
    wrong = dh == 1 - y
    eps_c = 1.0 - min(float(ok[y == c].double().mean()) for c in (0, 1))
    eps_s = max(float(wrong[y == c].double().mean()) for c in (0, 1))
    match = precision_by_matching(X, y, X, mk, y)
    kappa = max(afc_kappa(X, y, [(i, 1.0) for i in range(m)], 0), afc_kappa(X, y, [(m, 1.0)], 1))
    h_c = class_entropy(y.numpy())
    naive, true = precision_bound(eps_c, eps_s, 1.0), precision_bound(eps_c, eps_s, kappa)
    return {
        "eps_c": eps_c,
        "eps_s": eps_s,
        "precision": float(match["precision"].mean()),
        "precision_b": float(match["precision"][y.numpy() == 0].mean()),
        "kappa": kappa,
        "bound_naive": naive,
        "bound_true": true,
        "mi_bound_naive": information_bound(naive, h_c),
        "mi_bound_true": information_bound(true, h_c),
        "mi": h_c - float(np.mean(match["entropy"])),
    }


def toy_closed_form(m: int, q: float, n_a: int = 1000, n_b: int = 1000) -> dict[str, float]:
    """The toy's analytic values: ``eps_c = 0``, ``eps_s = q``, a B-feature's precision
    ``(n_b/m) / (n_b/m + q n_a)``, psi's precision 1, kappa = m, the two bounds and the MI."""
    p_b = (n_b / m) / (n_b / m + q * n_a)
    prec = (n_b * p_b + n_a * 1.0) / (n_a + n_b)
    h_c = binary_entropy(n_a / (n_a + n_b))
    naive = 1.0 - q / (1.0 + q)
    true = 1.0 - m * q / (1.0 + m * q)
    return {
        "eps_c": 0.0,
        "eps_s": q,
        "precision": prec,
        "precision_b": p_b,
        "kappa": float(m),
        "bound_naive": naive,
        "bound_true": true,
        "mi_bound_naive": information_bound(naive, h_c),
        "mi_bound_true": information_bound(true, h_c),
        "mi": h_c - n_b / (n_a + n_b) * binary_entropy(p_b),
    }
