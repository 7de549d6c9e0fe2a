from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lhcml.data import Event
from lhcml.data.event import particle_kinematics


def _particles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "particle_id": [1, 2, 3],
            "vx": [0.0, 3.0, 0.0],
            "vy": [0.0, 4.0, 0.0],
            "vz": [0.0, 0.0, 0.0],
            # pT 1 GeV at eta 0; pT 2 GeV at eta asinh(1); a particle along the beam.
            "px": [1.0, 0.0, 0.0],
            "py": [0.0, 2.0, 0.0],
            "pz": [0.0, 2.0, 5.0],
            "q": [1, -1, 0],
            "nhits": [2, 1, 0],
        }
    )


def test_particle_kinematics_by_hand() -> None:
    k = particle_kinematics(_particles())
    np.testing.assert_allclose(k["pt"][:2], [1.0, 2.0])
    np.testing.assert_allclose(k["eta"][:2], [0.0, np.arcsinh(1.0)])
    np.testing.assert_allclose(k["phi"][:2], [0.0, np.pi / 2])
    np.testing.assert_allclose(k["prod_r"], [0.0, 5.0, 0.0])
    np.testing.assert_allclose(k["p"][1], np.sqrt(8.0))
    # Along the beam eta is undefined: NaN, not a warning or inf.
    assert np.isnan(k["eta"][2])


def test_event_tables_and_truth_join() -> None:
    hits = pd.DataFrame(
        {
            "hit_id": [1, 2, 3],
            "x": [30.0, 70.0, 31.0],
            "y": [0.0, 0.0, 1.0],
            "z": [0.0, 0.0, 2.0],
            "volume_id": [8, 8, 8],
            "layer_id": [2, 4, 2],
            "module_id": [1, 1, 2],
        }
    )
    truth = pd.DataFrame(
        {
            "hit_id": [1, 2, 3],
            "particle_id": [1, 1, 0],
            "tx": [30.0, 70.0, 31.0],
            "ty": [0.0, 0.0, 1.0],
            "tz": [0.0, 0.0, 2.0],
            "tpx": [1.0, 1.0, 0.0],
            "tpy": [0.0, 0.0, 0.0],
            "tpz": [0.0, 0.0, 0.0],
            "weight": [0.5, 0.5, 0.0],
        }
    )
    event = Event(event_id=7, hits=hits, truth=truth, particles=_particles())
    assert list(event.tables()) == ["hits", "truth", "particles"]
    assert event.has_truth
    joined = event.hits_with_truth()
    assert joined["particle_id"].tolist() == [1, 1, 0]
    np.testing.assert_allclose(joined["pt"][:2], [1.0, 1.0])
    assert np.isnan(joined["pt"][2])  # noise hit has no particle
    assert "hits=3" in repr(event)


def test_hits_with_truth_needs_truth() -> None:
    event = Event(event_id=1, hits=pd.DataFrame({"hit_id": [1]}))
    with pytest.raises(ValueError, match="no truth"):
        event.hits_with_truth()
