"""Pythia 8 (``pythia8mc``) event generation: hard scatter plus Poisson pile-up.

Two Pythia instances are used, one for the hard scatter (ttbar) and one for minimum
bias (pile-up, and the hard scatter of ``process="minbias"``); each is initialised once
per process and re-seeded per event with :meth:`Rndm.init`, so an event depends only on
``(seed, event_id)``. Only stable final-state particles (``isFinal``) are kept; their
production vertex is the sub-event's primary vertex plus Pythia's own displacement
(``vProd`` in mm, non-zero after decays of long-lived hadrons).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import LhcmlError
from lhcml.simulation.config import SimulationConfig
from lhcml.simulation.generators import (
    STREAM_EVENT,
    STREAM_PYTHIA_HARD,
    STREAM_PYTHIA_PILEUP,
    GenParticles,
    derive_seed,
    event_rng,
    particle_gun,
    smear_vertices,
)

# Pythia's Random:seed / Rndm::init accept 0..900,000,000 (0 means "time based").
_PYTHIA_SEED_MAX = 900_000_000
_MAX_TRIES = 20


def pythia_seed(seed: int, event_id: int, stream: int) -> int:
    """Seed for :meth:`pythia8mc.Rndm.init` in 1..900,000,000."""
    return derive_seed(seed, event_id, stream) % _PYTHIA_SEED_MAX + 1


def _cache_dir(configured: Path | None) -> Path:
    if configured is not None:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lhcml"


class PythiaInstance:
    """One initialised Pythia with quiet output and a final-state extractor.

    Args:
        settings: ``"Key = value"`` lines (process, beams, ...).
        cache_mpi_init: initialise from the multiparton-interaction set-up saved on disk
            (computed and saved on first use, ~4 s for min bias; then ~0.1 s).
        cache_dir: directory of that cache.
    """

    def __init__(
        self, settings: list[str], *, cache_mpi_init: bool = True, cache_dir: Path | None = None
    ) -> None:
        import pythia8mc

        self._module = pythia8mc
        base = [
            "Print:quiet = on",
            "Next:numberCount = 0",
            # Fixed: the initialisation (and hence its saved file) is deterministic;
            # events are re-seeded one by one with reseed().
            "Random:setSeed = on",
            "Random:seed = 1",
            *settings,
        ]
        self._species_cache: dict[int, tuple[float, float]] = {}
        pythia = self._init_from_file(base, cache_dir) if cache_mpi_init else self._init(base)
        if pythia is None:
            raise LhcmlError(f"Pythia initialisation failed for settings {settings}")
        self.pythia: Any = pythia

    def _init(self, settings: list[str]) -> Any:
        pythia = self._module.Pythia("", False)  # False: no banner
        for line in settings:
            if not pythia.readString(line):
                raise LhcmlError(f"Pythia rejected the setting '{line}'")
        return pythia if pythia.init() else None

    def _init_from_file(self, settings: list[str], cache_dir: Path | None) -> Any:
        """Initialise from the saved multiparton-interaction set-up, saving it first if
        there is none.

        Pythia saves the set-up rounded, so events from a saved set-up differ (slightly)
        from events of a fresh one; loading it every time, also right after saving,
        makes the events the same whether or not a cache existed.
        """
        from importlib.metadata import version

        key = hashlib.sha256("\n".join([version("pythia8mc"), *settings]).encode()).hexdigest()[:16]
        directory = _cache_dir(cache_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            directory = Path(tempfile.mkdtemp(prefix="lhcml-pythia-"))  # unwritable cache
        cache = directory / f"pythia-mpi-{key}.dat"
        if not cache.is_file():
            fd, tmp = tempfile.mkstemp(prefix=".pythia-mpi-", suffix=".tmp", dir=directory)
            os.close(fd)
            try:
                saved = self._init(
                    [
                        *settings,
                        "MultipartonInteractions:reuseInit = 1",
                        f"MultipartonInteractions:initFile = {tmp}",
                    ]
                )
                if saved is None or Path(tmp).stat().st_size == 0:
                    return None
                # Atomic: concurrent workers never read a half-written file.
                Path(tmp).replace(cache)
            finally:
                Path(tmp).unlink(missing_ok=True)
        return self._init(
            [
                *settings,
                "MultipartonInteractions:reuseInit = 2",
                f"MultipartonInteractions:initFile = {cache}",
            ]
        )

    def reseed(self, seed: int) -> None:
        """Restart the random number stream (cheap; no re-initialisation)."""
        self.pythia.rndm.init(int(seed))

    def next_final_state(self) -> np.ndarray:
        """Generate one interaction; ``(n, 10)`` rows of
        ``pdg, charge, mass, px, py, pz, x, y, z, t`` of the final-state particles."""
        for _ in range(_MAX_TRIES):
            if self.pythia.next():
                break
        else:
            raise LhcmlError(f"Pythia failed to generate an event in {_MAX_TRIES} tries")
        rows = []
        append = rows.append
        # The hot loop of generation (~30k final-state particles per mu=200 event): one
        # pass, tuples, numpy once at the end; charge and mass come from the particle
        # table per species instead of two more calls per particle.
        for p in self.pythia.event:
            if p.isFinal():
                append((p.id(), p.px(), p.py(), p.pz(), p.xProd(), p.yProd(), p.zProd(), p.tProd()))
        raw = np.array(rows, dtype=np.float64).reshape(-1, 8)
        out = np.empty((len(raw), 10))
        out[:, 0] = raw[:, 0]
        out[:, 3:10] = raw[:, 1:8]
        species, inverse = np.unique(raw[:, 0].astype(np.int64), return_inverse=True)
        table = np.array([self._species(int(pdg)) for pdg in species]).reshape(-1, 2)
        out[:, 1:3] = table[inverse]
        return out

    def _species(self, pdg: int) -> tuple[float, float]:
        """Charge and nominal mass of ``pdg`` (stable final-state particles have no
        width, so the nominal mass is the mass)."""
        known = self._species_cache.get(pdg)
        if known is None:
            data = self.pythia.particleData
            known = (float(data.charge(pdg)), float(data.m0(pdg)))
            self._species_cache[pdg] = known
        return known


class EventGenerator:
    """Hard scatter (Pythia ttbar / min-bias, or particle gun) plus Poisson(mu) pile-up.

    Pythia instances are created on first use and kept for the life of the object.
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self._hard: PythiaInstance | None = None
        self._minbias: PythiaInstance | None = None

    def _pythia(self, kind: str) -> PythiaInstance:
        p = self.config.pythia
        common = [f"Beams:eCM = {p.ecm_gev}", *p.extra_settings]
        if kind == "hard":
            if self._hard is None:
                self._hard = PythiaInstance(
                    [*common, *p.hard_settings],
                    cache_mpi_init=p.cache_mpi_init,
                    cache_dir=p.cache_dir,
                )
            return self._hard
        if self._minbias is None:
            self._minbias = PythiaInstance(
                [*common, *p.pileup_settings],
                cache_mpi_init=p.cache_mpi_init,
                cache_dir=p.cache_dir,
            )
        return self._minbias

    def warm_up(self) -> None:
        """Initialise the Pythia instances this configuration needs (for timing)."""
        if self.config.process == "ttbar":
            self._pythia("hard")
        if self.config.process == "minbias" or self.config.mu > 0:
            self._pythia("minbias")

    def generate(self, event_id: int) -> GenParticles:
        """The generator-level final state of event ``event_id``."""
        cfg = self.config
        rng = event_rng(cfg.seed, event_id, STREAM_EVENT)
        n_pileup = int(rng.poisson(cfg.mu)) if cfg.mu > 0 else 0
        vertices = smear_vertices(cfg, rng, 1 + n_pileup)
        blocks: list[np.ndarray] = []
        if cfg.process == "gun":
            blocks.append(particle_gun(cfg.gun, rng))
        elif cfg.process == "ttbar":
            hard = self._pythia("hard")
            hard.reseed(pythia_seed(cfg.seed, event_id, STREAM_PYTHIA_HARD))
            blocks.append(hard.next_final_state())
        if n_pileup or cfg.process == "minbias":
            mb = self._pythia("minbias")
            mb.reseed(pythia_seed(cfg.seed, event_id, STREAM_PYTHIA_PILEUP))
            n_mb = n_pileup + (1 if cfg.process == "minbias" else 0)
            blocks.extend(mb.next_final_state() for _ in range(n_mb))
        return GenParticles.from_subevents(blocks, vertices)
