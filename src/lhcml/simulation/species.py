"""Charge and mass of a particle species by PDG id (the particle gun's, and the check of
``--gun-pdg`` in the config). Below both ``config.py`` and ``generators.py``."""

from __future__ import annotations

from lhcml.errors import ConfigError

#: Charge and mass [GeV] of common gun species (positive PDG id); others are looked up
#: in Pythia's particle table.
_SPECIES: dict[int, tuple[float, float]] = {
    11: (-1.0, 0.000511),
    13: (-1.0, 0.10566),
    15: (-1.0, 1.77686),
    211: (1.0, 0.13957),
    321: (1.0, 0.49368),
    2212: (1.0, 0.93827),
    22: (0.0, 0.0),
    130: (0.0, 0.49761),
    2112: (0.0, 0.93957),
}


def species(pdg: int) -> tuple[float, float]:
    """Charge [e] and mass [GeV] of a PDG id (sign-aware)."""
    sign = 1.0 if pdg > 0 else -1.0
    known = _SPECIES.get(abs(pdg))
    if known is not None:
        return sign * known[0], known[1]
    import pythia8mc  # heavy: only for unusual gun species

    table = pythia8mc.Pythia("", False).particleData
    if not table.isParticle(pdg):
        raise ConfigError(f"--gun-pdg: unknown PDG id {pdg}")
    return float(table.charge(pdg)), float(table.m0(pdg))
