"""Seed parameter estimates from three space points against helices of known parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from seeding_helpers import BARREL_R, helix_points

from lhcml.seeding.estimate import estimate_parameters, particle_perigee


def estimate(points: np.ndarray) -> pd.Series:
    p = points[None, :, :]
    return estimate_parameters(p[..., 0], p[..., 1], p[..., 2]).iloc[0]


@pytest.mark.parametrize(
    ("pt", "charge", "phi0", "cot", "z0", "d0"),
    [
        (1.0, 1, 0.3, 0.5, 10.0, 0.0),
        (0.6, -1, -2.5, -1.2, -35.0, 0.0),
        (5.0, 1, 3.0, 0.0, 0.0, 1.5),
        (2.0, -1, -0.7, 2.0, 60.0, -2.0),
    ],
)
def test_helix_parameters_are_recovered(
    pt: float, charge: int, phi0: float, cot: float, z0: float, d0: float
) -> None:
    points = helix_points(
        BARREL_R[:3], pt=pt, charge=charge, phi0=phi0, cot_theta=cot, z0=z0, d0=d0
    )
    est = estimate(points)
    assert est["charge"] == charge
    assert est["pt"] == pytest.approx(pt, rel=2e-3)
    assert est["q_over_pt"] == pytest.approx(charge / pt, rel=2e-3)
    assert est["phi"] == pytest.approx(phi0, abs=1e-4)
    assert est["theta"] == pytest.approx(np.arctan2(1.0, cot), abs=1e-5)
    assert est["eta"] == pytest.approx(np.arcsinh(cot), abs=1e-5)
    assert est["d0"] == pytest.approx(d0, abs=2e-3)
    assert est["z0"] == pytest.approx(z0, abs=2e-3)


def test_straight_line_has_no_curvature() -> None:
    est = estimate(helix_points(BARREL_R[1:], phi0=1.2, cot_theta=-0.4, z0=5.0, d0=0.8))
    assert est["charge"] == 0 and est["q_over_pt"] == 0.0 and np.isinf(est["pt"])
    assert est["phi"] == pytest.approx(1.2, abs=1e-6)
    assert est["d0"] == pytest.approx(0.8, abs=1e-4)
    assert est["z0"] == pytest.approx(5.0, abs=1e-4)


def test_particle_perigee_from_its_vertex() -> None:
    # A particle produced away from its perigee: vertex on the helix, 50 mm downstream.
    pt, phi0, cot, z0, d0 = 1.5, 0.8, 0.3, -12.0, 0.4
    vertex = helix_points([20.0], pt=pt, charge=-1, phi0=phi0, cot_theta=cot, z0=z0, d0=d0)[0]
    # Direction at the vertex: finite difference along the helix.
    step = helix_points([20.01], pt=pt, charge=-1, phi0=phi0, cot_theta=cot, z0=z0, d0=d0)[0]
    u = (step[:2] - vertex[:2]) / np.linalg.norm(step[:2] - vertex[:2])
    particles = pd.DataFrame(
        {
            "particle_id": [7],
            "vx": [vertex[0]],
            "vy": [vertex[1]],
            "vz": [vertex[2]],
            "px": [pt * u[0]],
            "py": [pt * u[1]],
            "pz": [pt * cot],
            "q": [-1],
        }
    )
    truth = particle_perigee(particles).iloc[0]
    assert truth["charge"] == -1 and truth["pt"] == pytest.approx(pt)
    assert truth["phi"] == pytest.approx(phi0, abs=1e-3)
    assert truth["d0"] == pytest.approx(d0, abs=1e-3)
    assert truth["z0"] == pytest.approx(z0, abs=1e-2)
    assert truth["q_over_pt"] == pytest.approx(-1 / pt)
