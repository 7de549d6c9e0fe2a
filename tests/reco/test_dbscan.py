from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lhcml.errors import ConfigError
from lhcml.reco import HelixDBSCAN, HelixDBSCANConfig

RADII = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0, 820.0, 1020.0])


def helices(n: int, z0_sigma: float, seed: int = 1) -> pd.DataFrame:
    """Noise-free hits of ``n`` helices from the beam line in 2 T on 10 barrel layers."""
    rng = np.random.default_rng(seed)
    pt = rng.uniform(1, 10, n)
    q = rng.choice([-1, 1], n)
    phi0 = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-1.5, 1.5, n)
    z0 = rng.normal(0, z0_sigma, n) if z0_sigma > 0 else np.zeros(n)
    radius = pt / (0.299792458e-3 * 2.0)  # mm
    turn = np.arcsin(RADII[None, :] / (2 * radius[:, None]))
    phi = phi0[:, None] - q[:, None] * turn
    s = 2 * radius[:, None] * turn
    z = z0[:, None] + s * np.sinh(eta)[:, None]
    r = np.broadcast_to(RADII, phi.shape)
    return pd.DataFrame(
        {
            "hit_id": np.arange(1, phi.size + 1),
            "x": (r * np.cos(phi)).ravel(),
            "y": (r * np.sin(phi)).ravel(),
            "z": z.ravel(),
            "volume_id": 8,
            "layer_id": np.broadcast_to(np.arange(10), phi.shape).ravel(),
            "particle_id": np.repeat(np.arange(1, n + 1), len(RADII)),
        }
    )


def majority_fraction(hits: pd.DataFrame, tracks: pd.DataFrame) -> float:
    """Mean share of a particle's hits that sit in its most common track."""
    m = hits.merge(tracks, on="hit_id")
    counts = m.groupby(["particle_id", "track_id"]).size()
    return float((counts.groupby(level=0).max() / len(RADII)).mean())


def test_well_separated_helices_from_origin_are_found_whole() -> None:
    hits = helices(50, z0_sigma=0.0)
    tracks = HelixDBSCAN(HelixDBSCANConfig(n_z0=1)).find_tracks(hits)
    assert len(tracks) == len(hits)
    assert tracks["hit_id"].tolist() == hits["hit_id"].tolist()
    assert majority_fraction(hits, tracks) > 0.98
    assert tracks["track_id"].nunique() <= 55


def test_curvature_scan_needed_for_low_pt() -> None:
    # With only the straight-line hypothesis, 1-10 GeV tracks are cut into pieces.
    hits = helices(50, z0_sigma=0.0)
    straight = HelixDBSCAN(HelixDBSCANConfig(n_z0=1, n_curvatures=1)).find_tracks(hits)
    scanned = HelixDBSCAN(HelixDBSCANConfig(n_z0=1)).find_tracks(hits)
    assert majority_fraction(hits, scanned) > majority_fraction(hits, straight) + 0.2


def test_curvatures_cover_both_charges_up_to_pt_min() -> None:
    c = HelixDBSCAN(HelixDBSCANConfig(pt_min=1.0, n_curvatures=5)).curvatures()
    c_max = 0.299792458e-3 * 2.0 / 2.0
    np.testing.assert_allclose(sorted(c), [-c_max, -c_max / 2, 0, c_max / 2, c_max])


@pytest.mark.parametrize(
    ("field", "value"), [("eps", 0.0), ("pt_min", -1.0), ("n_z0", 0), ("max_track_hits", 1)]
)
def test_bad_config_names_the_option(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        HelixDBSCANConfig(**{field: value})
