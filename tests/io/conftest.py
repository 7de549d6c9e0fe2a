"""Fixtures of the reader tests: copies of the real TrackML event, real ACTS CSV output."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM_CONFIGS = ROOT / "src" / "lhcml" / "simulation" / "configs"

#: Cell pitch (u, v) in mm of the Generic detector volumes (TrackML layout).
GENERIC_PITCH = {
    **dict.fromkeys((7, 8, 9), (0.05, 0.05)),
    **dict.fromkeys((12, 13, 14), (0.08, 1.2)),
    **dict.fromkeys((16, 17, 18), (0.12, 10.8)),
}
#: Pixel (volume, layers) pairs that get space points.
PIXEL_LAYERS = {7: (8, 10, 12, 14), 8: (2, 4, 6, 8), 9: (2, 4, 6, 8)}
N_MUONS = 4
N_EVENTS = 3


@pytest.fixture
def trackml_copy(trackml_prefix: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy tables of the real event into ``tmp_path/<name>``; returns the new prefix.

    ``make(name, tables=("hits", ...), gunzip=False)``: with ``gunzip`` the copies are
    plain ``.csv``.
    """

    def make(
        name: str = "event",
        tables: tuple[str, ...] = ("hits", "cells", "truth", "particles"),
        gunzip: bool = False,
    ) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        for table in tables:
            src = Path(f"{trackml_prefix}-{table}.csv.gz")
            if gunzip:
                with gzip.open(src, "rb") as fin:
                    (directory / f"{trackml_prefix.name}-{table}.csv").write_bytes(fin.read())
            else:
                shutil.copy(src, directory)
        return directory / trackml_prefix.name

    return make


def _smearing_config(path: Path) -> Path:
    """Gaussian smearing per volume, sigma = pitch / sqrt(12) (used if lhcml has none)."""
    packaged = SIM_CONFIGS / "generic-digi-smearing.json"
    if packaged.is_file():
        return packaged
    entries = [
        {
            "volume": volume,
            "value": {
                "smearing": [
                    {"index": i, "mean": 0.0, "stddev": pitch / math.sqrt(12), "type": "Gauss"}
                    for i, pitch in enumerate(pitches)
                ]
            },
        }
        for volume, pitches in GENERIC_PITCH.items()
    ]
    config = {
        "acts-geometry-hierarchy-map": {
            "format-version": 0,
            "value-identifier": "digitization-configuration",
        },
        "entries": entries,
    }
    path.write_text(json.dumps(config))
    return path


def _spacepoint_config(path: Path) -> Path:
    packaged = SIM_CONFIGS / "generic-pixel-spacepoints.json"
    if packaged.is_file():
        return packaged
    pairs = [{"volume": v, "layer": layer} for v, ls in PIXEL_LAYERS.items() for layer in ls]
    path.write_text(json.dumps(pairs))
    return path


def _simulate(out: Path, pdg: str, seed: int) -> Path:
    """Particle gun -> Fatras -> smearing digitization -> space points, CSV writers."""
    acts = pytest.importorskip("acts")
    examples = pytest.importorskip("acts.examples")
    from acts.examples.reconstruction import addSpacePointsMaking
    from acts.examples.simulation import (
        EtaConfig,
        MomentumConfig,
        ParticleConfig,
        addDigitization,
        addFatras,
        addParticleGun,
    )

    u = acts.UnitConstants
    out.mkdir(parents=True)
    detector = examples.GenericDetector()  # keep referenced until run() returns
    geometry = detector.trackingGeometry()
    field = acts.ConstantBField(acts.Vector3(0, 0, 2 * u.T))
    rnd = examples.RandomNumbers(seed=seed)
    s = examples.Sequencer(
        events=N_EVENTS, numThreads=1, trackFpes=False, logLevel=acts.logging.WARNING
    )
    addParticleGun(
        s,
        outputDirCsv=out,
        momentumConfig=MomentumConfig(1 * u.GeV, 10 * u.GeV, transverse=True),
        etaConfig=EtaConfig(-2.0, 2.0),
        particleConfig=ParticleConfig(N_MUONS, getattr(acts.PdgParticle, pdg), True),
        rnd=rnd,
        logLevel=acts.logging.WARNING,
    )
    addFatras(s, geometry, field, rnd=rnd, outputDirCsv=out, logLevel=acts.logging.WARNING)
    addDigitization(
        s,
        geometry,
        field,
        digiConfigFile=_smearing_config(out.parent / "digi-smearing.json"),
        outputDirCsv=out,
        rnd=rnd,
        logLevel=acts.logging.WARNING,
    )
    spacepoints = addSpacePointsMaking(
        s, geometry, _spacepoint_config(out.parent / "spacepoint-layers.json"), None
    )
    s.addWriter(
        examples.CsvSpacePointWriter(
            level=acts.logging.WARNING, inputSpacePoints=spacepoints, outputDir=str(out)
        )
    )
    s.run()
    del detector
    return out


@pytest.fixture(scope="session")
def acts_gun() -> dict[str, object]:
    """Settings of the ACTS fixtures: events, particles per event, space point layers."""
    return {"events": N_EVENTS, "particles": N_MUONS, "pixel_layers": PIXEL_LAYERS}


@pytest.fixture(scope="session")
def acts_muons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ACTS CSV output of 3 events x 4 muons (1-10 GeV pT, |eta| < 2), ~0.5 s."""
    return _simulate(tmp_path_factory.mktemp("acts") / "muons", "eMuon", seed=42)


@pytest.fixture(scope="session")
def acts_electrons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same with electrons: bremsstrahlung gives Fatras secondaries (generation 1)."""
    return _simulate(tmp_path_factory.mktemp("acts") / "electrons", "eElectron", seed=7)


@pytest.fixture
def acts_copy(acts_muons: Path, tmp_path: Path) -> Path:
    """A writable copy of event 0 of the muon output (for corrupting files)."""
    directory = tmp_path / "acts"
    directory.mkdir()
    for f in acts_muons.glob("event000000000-*"):
        shutil.copy(f, directory)
    return directory
