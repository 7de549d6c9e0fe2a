"""Helix fit and perigee conventions on analytic helices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lhcml.fitting.helix import helix_fit
from lhcml.fitting.targets import (
    K_FIELD,
    eta_from_theta,
    helix_position,
    perigee_from_state,
    theta_from_eta,
    truth_targets,
)
from lhcml.fitting.toys import toy_tracks


def test_perigee_of_a_known_track() -> None:
    # A 1 GeV positive track along +x through (0, 1 mm): it turns clockwise, the z axis
    # is on its right, so d0 = +1 mm (PCA at (-d0 sin phi, d0 cos phi)).
    p = perigee_from_state(
        np.array([[0.0, 1.0, 5.0]]), np.array([[1.0, 0.0, 1.0]]), np.array([1.0])
    )
    qopt, theta, phi, d0, z0 = p[0]
    assert qopt == pytest.approx(1.0)
    assert theta == pytest.approx(np.pi / 4)
    assert phi == pytest.approx(0.0, abs=1e-12)
    assert d0 == pytest.approx(1.0, abs=1e-12)
    assert z0 == pytest.approx(5.0, abs=1e-12)
    # Radius of curvature of a 1 GeV track in 2 T: 1 / (0.3 * 2) m = 1667.8 mm.
    assert pytest.approx(1667.8, rel=1e-4) == 1.0 / (K_FIELD * 2.0)


def test_perigee_is_invariant_along_the_helix() -> None:
    rng = np.random.default_rng(3)
    n = 200
    params = np.column_stack(
        [
            rng.choice([-1, 1], n) / rng.uniform(0.5, 20, n),
            rng.uniform(0.2, 2.9, n),
            rng.uniform(-np.pi, np.pi, n),
            rng.normal(0, 1.0, n),
            rng.normal(0, 50, n),
        ]
    )
    s = rng.uniform(-300, 800, n)
    pos, phi = helix_position(params, s)
    theta = params[:, 1]
    pt = 1.0 / np.abs(params[:, 0])
    mom = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt / np.tan(theta)])
    back = perigee_from_state(pos, mom, np.sign(params[:, 0]))
    np.testing.assert_allclose(back, params, atol=1e-8)
    assert np.allclose(eta_from_theta(theta_from_eta(np.array([-2.0, 0.3]))), [-2.0, 0.3])


def test_truth_targets_of_particles() -> None:
    particles = pd.DataFrame(
        {
            "particle_id": [1, 2],
            "vx": [0.0, 0.0],
            "vy": [0.0, -2.0],
            "vz": [10.0, 0.0],
            "px": [3.0, 0.0],
            "py": [4.0, 2.0],
            "pz": [0.0, 2.0],
            "q": [-1, 1],
        }
    )
    t = truth_targets(particles)
    assert t["pt"].tolist() == pytest.approx([5.0, 2.0])
    assert t["qopt"].tolist() == pytest.approx([-0.2, 0.5])
    assert t["eta"].tolist() == pytest.approx([0.0, np.arcsinh(1.0)])
    # Particle 2 starts 2 mm below the beam line going up (+y) and bends clockwise,
    # centre at (R, -2): it passes the beam line at R - hypot(R, 2) on its left (d0 < 0).
    radius = 2.0 / (K_FIELD * 2.0)
    assert t["d0"].tolist() == pytest.approx([0.0, radius - np.hypot(radius, 2.0)], abs=1e-9)
    assert t["z0"].iloc[0] == pytest.approx(10.0)
    assert t["z0"].iloc[1] == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize(("kind", "eta"), [("barrel", (-0.8, 0.8)), ("endcap", (1.8, 2.5))])
def test_helix_fit_recovers_noise_free_helices(kind: str, eta: tuple[float, float]) -> None:
    rng = np.random.default_rng(1)
    t = toy_tracks(
        500, rng, geometry_kind=kind, eta_range=eta, pt_range=(0.5, 50), d0_sigma=0.5, smear=False
    )
    p = helix_fit(t.xyz, t.mask, t.volume)
    pt_fit, pt_true = 1 / np.abs(p[:, 0]), 1 / np.abs(t.params[:, 0])
    assert np.max(np.abs(pt_fit / pt_true - 1)) < 1e-8
    assert np.all(np.sign(p[:, 0]) == np.sign(t.params[:, 0]))
    np.testing.assert_allclose(p[:, 3], t.params[:, 3], atol=1e-8)  # d0
    np.testing.assert_allclose(p[:, 1:3], t.params[:, 1:3], atol=1e-10)
    np.testing.assert_allclose(p[:, 4], t.params[:, 4], atol=1e-8)


def test_helix_fit_resolution_with_smearing() -> None:
    rng = np.random.default_rng(2)
    t = toy_tracks(3000, rng, pt_range=(1, 10), smear=True)
    p = helix_fit(t.xyz, t.mask, t.volume)
    rel = (p[:, 0] - t.params[:, 0]) / t.params[:, 0]
    # Pixel + strip barrel, no scattering: a few per mille in q/pT, ~10 um in d0.
    assert 0.0005 < np.std(rel) < 0.005
    assert 0.003 < np.std(p[:, 3] - t.params[:, 3]) < 0.03
    assert abs(np.mean(rel)) < 3 * np.std(rel) / np.sqrt(len(rel))


def test_helix_fit_needs_three_hits() -> None:
    xyz = np.zeros((1, 4, 3))
    xyz[0, :2] = [[30, 1, 0], [70, 3, 1]]
    mask = np.array([[True, True, False, False]])
    assert np.isnan(helix_fit(xyz, mask)).all()
