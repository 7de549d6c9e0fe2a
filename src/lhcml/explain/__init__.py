"""Interpretability of the tracking and jet models (``lhcml explain``).

- :mod:`~lhcml.explain.mi`: mutual information of a multi-dimensional X with Y (KSG, and a
  learned-sufficient-statistic lower bound that holds in 12 dimensions), entropies,
  proficiency;
- :mod:`~lhcml.explain.permutation`: permutation importance of inputs and of single
  neurons (forward hooks), model-agnostic;
- :mod:`~lhcml.explain.formulas`: neurons as formulas (gplearn symbolic regression);
- :mod:`~lhcml.explain.probes`: the shipped models as (model, data set, metric);
- :mod:`~lhcml.explain.study` + :mod:`~lhcml.explain.plots`: the steps of
  ``lhcml explain`` with their JSON and plots.
"""

from __future__ import annotations

from lhcml.explain.mi import conditional_entropy, entropy, mutual_information, proficiency
from lhcml.explain.permutation import Importance, channel_importance, permutation_importance

__all__ = [
    "Importance",
    "channel_importance",
    "conditional_entropy",
    "entropy",
    "mutual_information",
    "permutation_importance",
    "proficiency",
]
