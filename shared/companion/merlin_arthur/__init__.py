"""Merlin-Arthur classifiers (Wäldchen, Sharma, Turan, Zimmer, Pokutta, AISTATS 2024).

* :mod:`~companion.merlin_arthur.core` -- Arthur (MLP or CNN) with the ⊥ output, masking (0 = hidden), the Morgana
  criterion, completeness/soundness, precision and conditional entropy by feature matching, the precision
  bound with kappa, alpha, B and the information bound;
* :mod:`~companion.merlin_arthur.provers` -- brute force over k-subsets, greedy forward selection, SFW over the
  positive k-sparse polytope (``companion.frankwolfe``), an amortised prover (MLP or CNN scores);
* :mod:`~companion.merlin_arthur.game` -- pretraining, min-max training, evaluation;
* :mod:`~companion.merlin_arthur.afc` -- the asymmetric-feature-correlation toy with exact values;
* :mod:`~companion.merlin_arthur.datasets` -- binarised digits (8x8 or upsampled), discretised breast cancer, MNIST and Census.
"""

from .afc import afc_kappa, toy_agents, toy_closed_form, toy_data, toy_measured
from .core import (
    ARTHURS,
    BOTTOM,
    ArthurCNN,
    apply_mask,
    arthur_cnn,
    arthur_mlp,
    binary_entropy,
    class_entropy,
    completeness_soundness,
    decisions,
    expand_mask,
    hoeffding_margin,
    information_bound,
    make_arthur,
    morgana_criterion,
    morgana_criterion_reference,
    precision_bound,
    precision_by_matching,
    prover_loss,
)
from .datasets import (
    DATASETS,
    binarised_digits,
    binarised_mnist,
    census,
    discretised_breast_cancer,
    load,
    read_census,
    upsample_images,
)
from .game import FeatureData, GameHistory, evaluate_game, pretrain_arthur, train_min_max
from .provers import (
    PROVER_NETS,
    PROVERS,
    AmortisedProver,
    BruteForce,
    Greedy,
    PositiveKSparsePolytope,
    SFWProver,
    all_subsets,
    frozen,
    make_prover,
    score_cnn,
    topk_mask,
)

__all__ = [
    "ARTHURS",
    "BOTTOM",
    "ArthurCNN",
    "apply_mask",
    "arthur_cnn",
    "arthur_mlp",
    "binary_entropy",
    "class_entropy",
    "completeness_soundness",
    "decisions",
    "expand_mask",
    "hoeffding_margin",
    "information_bound",
    "make_arthur",
    "morgana_criterion",
    "morgana_criterion_reference",
    "precision_bound",
    "precision_by_matching",
    "prover_loss",
    "PROVER_NETS",
    "PROVERS",
    "AmortisedProver",
    "BruteForce",
    "Greedy",
    "PositiveKSparsePolytope",
    "SFWProver",
    "all_subsets",
    "frozen",
    "make_prover",
    "score_cnn",
    "topk_mask",
    "FeatureData",
    "GameHistory",
    "evaluate_game",
    "pretrain_arthur",
    "train_min_max",
    "afc_kappa",
    "toy_agents",
    "toy_closed_form",
    "toy_data",
    "toy_measured",
    "DATASETS",
    "binarised_digits",
    "binarised_mnist",
    "census",
    "discretised_breast_cancer",
    "load",
    "read_census",
    "upsample_images",
]
