"""Hand-built events for the metrics tests (numbers checked against hand counts)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from lhcml.data.event import Event

#: particle_id -> (pt [GeV], eta, primary, hit ids). Hits 21-25, 31 are noise.
HAND_PARTICLES: dict[int, tuple[float, float, bool, list[int]]] = {
    1: (2.0, 0.5, True, [1, 2, 3, 4]),
    2: (5.0, -1.0, True, [5, 6, 7, 8, 9, 10]),
    3: (0.5, 0.0, True, [11, 12, 13, 14]),  # below pT 1 GeV: not fiducial
    4: (3.0, 2.0, False, [15, 16, 17, 18]),  # secondary: not fiducial
    5: (1.5, 0.2, True, [19, 20]),  # 2 hits: not fiducial
    6: (1.2, -2.5, True, [26, 27, 28, 29, 30]),
    7: (10.0, 3.0, True, [32, 33, 34, 35]),  # no track at all
}
HAND_NOISE: list[int] = [21, 22, 23, 24, 25, 31]

#: track_id -> hit ids. T6 has 2 hits (fails the track selection).
HAND_TRACKS: dict[int, list[int]] = {
    1: [1, 2, 3],
    2: [4, 5, 6, 7, 8],
    3: [9, 10, 21],
    4: [11, 12, 13, 14],
    5: [15, 16, 22, 23],
    6: [17, 18],
    7: [19, 24, 25],
    8: [26, 27, 31],
}
#: Track kinematics given to the binned fake / duplicate rates.
HAND_TRACK_PARAMS = pd.DataFrame(
    {
        "track_id": [1, 2, 3, 4, 5, 6, 7, 8],
        "pt": [2.2, 4.5, 4.8, 0.5, 3.0, 3.0, 1.5, 1.1],
        "eta": [0.5, -1.0, -1.0, 0.0, 2.0, 2.0, 0.2, -2.5],
    }
)


def build_hand_event(event_id: int = 1) -> tuple[Event, pd.DataFrame]:
    """The hand event and its track assignment (hit 32 listed as unassigned, -1)."""
    rows = []
    for pid, (_, _, _, hits) in HAND_PARTICLES.items():
        rows += [(h, pid) for h in hits]
    rows += [(h, 0) for h in HAND_NOISE]
    truth = pd.DataFrame(rows, columns=["hit_id", "particle_id"]).sort_values("hit_id")
    n = len(truth)
    rng = np.random.default_rng(event_id)
    pos = rng.normal(0.0, 100.0, size=(n, 3))
    truth = truth.assign(
        tx=pos[:, 0], ty=pos[:, 1], tz=pos[:, 2], tpx=1.0, tpy=0.0, tpz=0.0, weight=0.0
    ).reset_index(drop=True)
    pids = list(HAND_PARTICLES)
    pt = np.array([HAND_PARTICLES[p][0] for p in pids])
    eta = np.array([HAND_PARTICLES[p][1] for p in pids])
    particles = pd.DataFrame(
        {
            "particle_id": pids,
            "vx": 0.0,
            "vy": 0.0,
            "vz": 0.0,
            "px": pt,
            "py": 0.0,
            "pz": pt * np.sinh(eta),
            "q": 1,
            "nhits": [len(HAND_PARTICLES[p][3]) for p in pids],
            "particle_type": 211,
            "primary": [HAND_PARTICLES[p][2] for p in pids],
        }
    )
    hits = pd.DataFrame(
        {
            "hit_id": truth["hit_id"],
            "x": truth["tx"],
            "y": truth["ty"],
            "z": truth["tz"],
            "volume_id": 8,
            "layer_id": 2,
            "module_id": 1,
        }
    )
    assignment = pd.DataFrame(
        [(h, t) for t, hs in HAND_TRACKS.items() for h in hs] + [(32, -1)],
        columns=["hit_id", "track_id"],
    )
    return Event(event_id, hits=hits, particles=particles, truth=truth), assignment


@pytest.fixture
def hand_event() -> Callable[[int], tuple[Event, pd.DataFrame]]:
    """Factory of the hand event (see ``HAND_PARTICLES`` / ``HAND_TRACKS``)."""
    return build_hand_event
