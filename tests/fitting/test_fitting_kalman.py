"""lhcml Kalman filter on analytic helices: exact without noise, calibrated with it."""

from __future__ import annotations

import numpy as np
import pytest

from lhcml.fitting.kalman import kalman_fit, pad
from lhcml.fitting.toys import ToyTracks, toy_tracks


def _flat(t: ToyTracks) -> tuple[np.ndarray, ...]:
    lengths = t.mask.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    layer = np.broadcast_to(2 * np.arange(1, t.mask.shape[1] + 1), t.mask.shape)
    return t.xyz[t.mask], t.volume[t.mask], layer[t.mask], offsets


def _pulls(params: np.ndarray, sigma: np.ndarray, truth: np.ndarray) -> np.ndarray:
    d = params - truth
    d[:, 2] = (d[:, 2] + np.pi) % (2 * np.pi) - np.pi
    return d / sigma


@pytest.mark.parametrize(("kind", "eta"), [("barrel", (-0.8, 0.8)), ("endcap", (1.8, 2.5))])
@pytest.mark.parametrize("ms", [False, True])
def test_kalman_recovers_noise_free_helices(kind: str, eta: tuple[float, float], ms: bool) -> None:
    rng = np.random.default_rng(5)
    t = toy_tracks(
        300, rng, geometry_kind=kind, eta_range=eta, pt_range=(0.5, 50), d0_sigma=0.3, smear=False
    )
    xyz, vol, lay, off = _flat(t)
    # A wrong seed (2 % in q/pT, 2 mrad, 0.2 mm, like a poor helix fit): the extended
    # filter linearises around it, refits converge quadratically to the exact helix.
    seeds = t.params * [1.02, 1.0, 1.0, 1.0, 1.0] + [0.0, 0.002, 0.002, 0.2, 0.2]
    r = kalman_fit(xyz, vol, lay, off, seeds, multiple_scattering=ms, iterations=3)
    pt_fit, pt_true = 1 / np.abs(r.params[:, 0]), 1 / np.abs(t.params[:, 0])
    assert np.max(np.abs(pt_fit / pt_true - 1)) < 1e-5
    np.testing.assert_allclose(r.params[:, 3], t.params[:, 3], atol=1e-5)  # d0 [mm]
    np.testing.assert_allclose(r.params[:, 4], t.params[:, 4], atol=1e-4)  # z0 [mm]
    assert np.nanmax(r.chi2) < 1e-3


@pytest.mark.parametrize(("kind", "eta"), [("barrel", (-0.8, 0.8)), ("endcap", (1.8, 2.5))])
def test_kalman_pulls_with_noise_and_scattering(kind: str, eta: tuple[float, float]) -> None:
    rng = np.random.default_rng(7)
    t = toy_tracks(
        2000,
        rng,
        geometry_kind=kind,
        eta_range=eta,
        pt_range=(0.7, 10),
        smear=True,
        scattering=True,
    )
    r = kalman_fit(*_flat(t))
    assert np.isfinite(r.params).all()
    p = _pulls(r.params, r.sigma, t.params)
    width = np.std(p, axis=0)
    # The toys scatter at the layers only; the filter also adds the beam pipe and the
    # pixel support tube, so its uncertainties may be slightly wide.
    assert np.all((width > 0.8) & (width < 1.15)), width
    assert np.all(np.abs(np.mean(p, axis=0)) < 0.1)
    # chi2 / ndf of a calibrated fit is ~1.
    assert 0.8 < np.mean(r.chi2 / r.ndf) < 1.2


def test_kalman_beats_helix_fit_with_scattering() -> None:
    from lhcml.fitting.helix import helix_fit

    rng = np.random.default_rng(9)
    t = toy_tracks(2000, rng, pt_range=(0.5, 2), smear=True, scattering=True)
    r = kalman_fit(*_flat(t))
    h = helix_fit(t.xyz, t.mask, t.volume)
    d0_kf = np.std(r.params[:, 3] - t.params[:, 3])
    d0_helix = np.std(h[:, 3] - t.params[:, 3])
    assert d0_kf < 0.7 * d0_helix


def test_pad_round_trip() -> None:
    values = np.arange(10.0)[:, None]
    padded, mask = pad(values, np.array([0, 3, 3, 10]))
    assert padded.shape == (3, 7, 1)
    assert mask.sum(axis=1).tolist() == [3, 0, 7]
    np.testing.assert_array_equal(padded[mask][:, 0], np.arange(10.0))


def test_too_short_candidates_give_nan() -> None:
    xyz = np.array([[30.0, 0, 0], [70.0, 0.5, 0]])
    r = kalman_fit(xyz, np.array([8, 8]), np.array([2, 4]), np.array([0, 2]))
    assert np.isnan(r.params).all()
