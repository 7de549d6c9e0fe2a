"""Track reconstruction: turn an event's hits into track candidates (``hit_id, track_id``)."""

from __future__ import annotations

from lhcml.reco.dbscan import HelixDBSCAN, HelixDBSCANConfig

__all__ = ["HelixDBSCAN", "HelixDBSCANConfig"]
