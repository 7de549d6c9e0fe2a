"""Tracking performance: the TrackML score, efficiency / fake / duplicate rates,
resolutions and their plots."""

from __future__ import annotations

from lhcml.metrics.trackml import check_submission, hit_weights, score_event

__all__ = ["check_submission", "hit_weights", "score_event"]
