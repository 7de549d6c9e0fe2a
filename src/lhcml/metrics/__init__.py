"""Tracking performance: the TrackML score and weights, efficiency / fake / duplicate rates
with ATLAS, double-majority and ACTS matching, resolution estimators and their plots.

Modules: :mod:`~lhcml.metrics.trackml` (score, weights), :mod:`~lhcml.metrics.tracking`
(rates), :mod:`~lhcml.metrics.resolution`, :mod:`~lhcml.metrics.stats` (binomial
intervals), :mod:`~lhcml.metrics.plots` (matplotlib, imported on use) and
:mod:`~lhcml.metrics.evaluate` (events + submissions -> ``summary.json`` and plots).
"""

from __future__ import annotations

from lhcml.metrics.evaluate import EvaluationResult, evaluate_events, read_submission
from lhcml.metrics.resolution import binned_resolution, clipped_rms, gaussian_core, sigma68
from lhcml.metrics.stats import BinnedRatio, Ratio, binomial_interval
from lhcml.metrics.tracking import (
    FiducialSelection,
    TrackingPerformance,
    TrackSelection,
    match_tracks,
    tracking_performance,
)
from lhcml.metrics.trackml import check_submission, hit_weights, score_event

__all__ = [
    "BinnedRatio",
    "EvaluationResult",
    "FiducialSelection",
    "Ratio",
    "TrackSelection",
    "TrackingPerformance",
    "binned_resolution",
    "binomial_interval",
    "check_submission",
    "clipped_rms",
    "evaluate_events",
    "gaussian_core",
    "hit_weights",
    "match_tracks",
    "read_submission",
    "score_event",
    "sigma68",
    "tracking_performance",
]
