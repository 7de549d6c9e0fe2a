"""The simple detector response of :class:`lhcml.jets.config.DetectorResponse` (numpy).

Tracks, calorimeter photons and calorimeter neutral hadrons, as a particle-flow
reconstruction would see them; see the class docstring for the model.
"""

from __future__ import annotations

import numpy as np

from lhcml.jets.config import DetectorResponse

PHOTON = 22
NEUTRAL_HADRON = 130  # K0L: the PDG code given to calorimeter-only hadrons


def pt_eta(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Transverse momentum and pseudorapidity of ``(n, 4)`` rows ``px, py, pz, E``."""
    pt = np.hypot(p4[:, 0], p4[:, 1])
    # arcsinh(pz / pT) is eta, finite for pT > 0; pT = 0 (along the beam) gives +-inf.
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(p4[:, 2] / pt)
    eta = np.where(pt > 0, eta, np.copysign(np.inf, p4[:, 2]))
    return pt, eta


def apply_response(
    pdg: np.ndarray,
    charge: np.ndarray,
    p4: np.ndarray,
    response: DetectorResponse,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector-level particles from visible generator-level ones.

    Args:
        pdg: ``(n,)`` PDG ids.
        charge: ``(n,)`` electric charges [e].
        p4: ``(n, 4)`` ``px, py, pz, E`` [GeV].
        response: the detector model; ``enabled=False`` returns the input unchanged.
        rng: random numbers of this event.

    Returns:
        ``pdg, charge, p4`` of the reconstructed candidates (fewer rows; untracked
        charged particles re-labelled 130 / 22 with charge 0).
    """
    if not response.enabled or len(pdg) == 0:
        return pdg, charge, p4
    pdg = pdg.copy()
    charge = charge.copy()
    p4 = p4.copy()
    n = len(pdg)
    pt, eta = pt_eta(p4)
    abseta = np.abs(eta)
    apdg = np.abs(pdg)
    charged = charge != 0
    in_tracker = abseta < response.tracker_eta_max
    # One uniform number per particle for the track efficiency, one normal for smearing:
    # the draws do not depend on which branch a particle takes.
    u = rng.random(n)
    g = rng.standard_normal(n)
    tracked = charged & in_tracker & (pt > response.track_pt_min) & (u < response.track_efficiency)
    # Untracked charged particles: below the track threshold inside the tracker they are
    # lost; otherwise (inefficiency, or outside the tracker) only calorimeters see them.
    lost = charged & ~tracked & ((in_tracker & (pt <= response.track_pt_min)) | (apdg == 13))
    calo_charged = charged & ~tracked & ~lost
    pdg[calo_charged & (apdg == 11)] = PHOTON
    pdg[calo_charged & (apdg != 11)] = NEUTRAL_HADRON
    charge[calo_charged] = 0.0

    scale = np.ones(n)
    res_t = np.hypot(response.track_res_const, response.track_res_pt * pt)
    scale[tracked] = 1.0 + res_t[tracked] * g[tracked]
    energy = np.maximum(p4[:, 3], 1e-9)
    em = ~tracked & (pdg == PHOTON)
    had = ~tracked & ~em & ~lost
    res_em = np.hypot(response.ecal_stochastic / np.sqrt(energy), response.ecal_constant)
    res_had = np.hypot(response.hcal_stochastic / np.sqrt(energy), response.hcal_constant)
    scale[em] = 1.0 + res_em[em] * g[em]
    scale[had] = 1.0 + res_had[had] * g[had]
    # A Gaussian can go negative for large stochastic terms at low E: clip to keep a
    # physical (if tiny) deposit; the energy thresholds below then remove it.
    scale = np.clip(scale, 0.0, None)
    p4 *= scale[:, None]
    e_new = p4[:, 3]
    in_calo = abseta < response.calo_eta_max
    keep = tracked | (em & in_calo & (e_new > response.photon_e_min))
    keep |= had & in_calo & (e_new > response.neutral_e_min)
    return pdg[keep], charge[keep], p4[keep]
