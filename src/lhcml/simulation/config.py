"""Typed configuration of the event simulation, with documented defaults.

Units follow the event format: lengths in mm, momenta in GeV, field in T.
Every value is checked by :meth:`SimulationConfig.validate`, which raises
:class:`lhcml.errors.ConfigError` naming the offending option (the CLI spelling, e.g.
``--mu``), so a bad value fails before any generator or detector is built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lhcml.errors import ConfigError

Process = Literal["ttbar", "gun", "minbias"]
PROCESSES: tuple[str, ...] = ("ttbar", "gun", "minbias")

#: Volumes of the ACTS Generic detector (TrackML layout): pixel 7/8/9, short strips
#: 12/13/14, long strips 16/17/18.
ALL_VOLUMES: tuple[int, ...] = (7, 8, 9, 12, 13, 14, 16, 17, 18)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: Smearing digitization: pixel 50x50 um, short strips 80 um x 1.2 mm, long strips
#: 120 um x 10.8 mm, Gaussian sigma = pitch / sqrt(12).
DEFAULT_DIGI_CONFIG = CONFIG_DIR / "generic-digi-smearing.json"
#: Pixel (volume, layer) pairs that get space points (ACTS' Generic seeding selection).
DEFAULT_SPACEPOINT_SELECTION = CONFIG_DIR / "generic-pixel-spacepoints.json"


@dataclass(frozen=True)
class PythiaConfig:
    """Pythia 8 settings for the hard scatter and the pile-up.

    Attributes:
        ecm_gev: centre-of-mass energy (``Beams:eCM``), 14 TeV.
        hard_settings: Pythia settings of the ttbar hard scatter.
        pileup_settings: Pythia settings of each pile-up (minimum-bias) interaction; also
            used for the hard scatter of ``process="minbias"``.
        extra_settings: more ``"Key = value"`` lines given to both instances.
        cache_mpi_init: initialise Pythia's multiparton interactions from a set-up saved
            on disk (``MultipartonInteractions:reuseInit``; computed and saved on first
            use), which turns the ~4 s start-up of the min-bias instance into ~0.1 s.
            The set-up is always loaded from the file, also right after computing it,
            so events do not depend on whether a cache existed. ``False`` initialises in
            memory: slightly different events (Pythia saves its set-up rounded).
        cache_dir: where the cache lives (default ``$XDG_CACHE_HOME/lhcml`` or
            ``~/.cache/lhcml``).
    """

    ecm_gev: float = 14000.0
    hard_settings: tuple[str, ...] = ("Top:qqbar2ttbar = on", "Top:gg2ttbar = on")
    pileup_settings: tuple[str, ...] = ("SoftQCD:all = on",)
    extra_settings: tuple[str, ...] = ()
    cache_mpi_init: bool = True
    cache_dir: Path | None = None


@dataclass(frozen=True)
class ParticleGunConfig:
    """Particle gun: ``multiplicity`` particles per event from one smeared vertex.

    pT, eta and phi are drawn uniformly in their ranges.

    Attributes:
        pdg: PDG id of the particles (13 muon, 211 pion, 11 electron, ...); its sign is
            the charge convention used when ``random_charge`` is off.
        random_charge: draw particle or antiparticle with equal probability.
        multiplicity: particles per event.
        pt_min, pt_max: transverse momentum range [GeV].
        eta_min, eta_max: pseudorapidity range.
        phi_min, phi_max: azimuth range [rad].
    """

    pdg: int = 13
    random_charge: bool = True
    multiplicity: int = 10
    pt_min: float = 1.0
    pt_max: float = 10.0
    eta_min: float = -2.5
    eta_max: float = 2.5
    phi_min: float = -math.pi
    phi_max: float = math.pi


@dataclass(frozen=True)
class DetectorConfig:
    """ACTS Fatras on the Generic detector, smearing digitization, noise.

    Attributes:
        pmin_gev: Fatras drops particles below this momentum (ACTS' own default is 0.5).
        bfield_t: constant solenoid field along z [T].
        interactions: multiple scattering, energy loss, photon conversion in Fatras.
        digi_config: smearing digitization JSON; None: the packaged
            ``configs/generic-digi-smearing.json`` (pixel 50x50 um, short strips
            80 um x 1.2 mm, long strips 120 um x 10.8 mm, Gaussian sigma = pitch/sqrt(12)).
        spacepoint_selection: JSON list of pixel (volume, layer) pairs that get space
            points; None: the packaged ``configs/generic-pixel-spacepoints.json``, the
            ACTS Generic seeding selection (barrel 8: layers 2-8; endcaps 7: 8-14 and
            9: 2-8, the disks nearest the barrel).
        merge_hits: merge sim hits closer than one sigma on a module into one
            measurement (ACTS' default, ``doMerge``). Off by default: it affects ~0.2% of
            the hits of a mu=200 event but doubles the digitization time (+0.12 s), and
            without it every hit has exactly one particle, as in the TrackML data.
        noise_fraction: random noise hits as a fraction of the signal hits.
        noise_count: a fixed number of noise hits per event (added to the fraction).
        noise_volumes: volumes that receive noise; each noise hit lands on a module
            drawn uniformly among the sensitive modules of these volumes, at a uniform
            position on it.
    """

    pmin_gev: float = 0.1
    bfield_t: float = 2.0
    interactions: bool = True
    digi_config: Path | None = None
    spacepoint_selection: Path | None = None
    merge_hits: bool = False
    noise_fraction: float = 0.0
    noise_count: int = 0
    noise_volumes: tuple[int, ...] = ALL_VOLUMES

    @property
    def digi_config_path(self) -> Path:
        """The digitization config in use."""
        return Path(self.digi_config) if self.digi_config else DEFAULT_DIGI_CONFIG

    @property
    def spacepoint_selection_path(self) -> Path:
        """The space-point selection in use."""
        return (
            Path(self.spacepoint_selection)
            if self.spacepoint_selection
            else DEFAULT_SPACEPOINT_SELECTION
        )


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines the simulated events (with the event id).

    Two runs with equal configs produce identical events: each event's random streams
    are derived from ``(seed, event_id)`` only, whatever the split across workers.

    Attributes:
        process: ``ttbar`` (Pythia ttbar hard scatter), ``minbias`` (a min-bias
            interaction as hard scatter) or ``gun`` (particle gun).
        mu: mean number of pile-up interactions, 0 to 1000; each event draws
            Poisson(mu) min-bias interactions (also with the gun).
        seed: global seed.
        vertex_sigma_xy: Gaussian beam-spot width in x and y [mm] (12.5 um).
        vertex_sigma_z: Gaussian beam-spot length in z [mm].
        pythia: Pythia settings.
        gun: particle gun settings (``process="gun"``).
        detector: detector simulation settings.
    """

    process: Process = "ttbar"
    mu: float = 0.0
    seed: int = 42
    vertex_sigma_xy: float = 0.0125
    vertex_sigma_z: float = 50.0
    pythia: PythiaConfig = field(default_factory=PythiaConfig)
    gun: ParticleGunConfig = field(default_factory=ParticleGunConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def validate(self) -> SimulationConfig:
        """Check every value; return ``self`` or raise :class:`ConfigError`."""
        if self.process not in PROCESSES:
            raise ConfigError(
                f"--process: unknown process '{self.process}'; choose from {', '.join(PROCESSES)}"
            )
        _finite_range("--mu", self.mu, 0.0, 1000.0)
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed: must be in [0, 2^63), got {self.seed}")
        _finite_range("--vertex-sigma-xy", self.vertex_sigma_xy, 0.0, 1000.0)
        _finite_range("--vertex-sigma-z", self.vertex_sigma_z, 0.0, 10000.0)
        p = self.pythia
        _finite_range("pythia.ecm_gev", p.ecm_gev, 1.0, 1e6, low_open=True)
        for name in ("hard_settings", "pileup_settings", "extra_settings"):
            for line in getattr(p, name):
                if "=" not in line:
                    raise ConfigError(f"pythia.{name}: '{line}' is not a 'Key = value' setting")
        g = self.gun
        if g.pdg == 0:
            raise ConfigError("--gun-pdg: must be a non-zero PDG id")
        if self.process == "gun":
            from lhcml.simulation.species import species

            species(g.pdg)  # unknown ids raise ConfigError naming --gun-pdg
        # The particle number has 16 bits in the particle id.
        if not 1 <= g.multiplicity <= 65_535:
            raise ConfigError(f"--gun-multiplicity: must be in [1, 65535], got {g.multiplicity}")
        _ordered("--gun-pt-min", "--gun-pt-max", g.pt_min, g.pt_max, low=0.0, low_open=True)
        _ordered("--gun-eta-min", "--gun-eta-max", g.eta_min, g.eta_max, low=-10.0, high=10.0)
        _ordered("--gun-phi-min", "--gun-phi-max", g.phi_min, g.phi_max, low=-10.0, high=10.0)
        d = self.detector
        _finite_range("--pmin", d.pmin_gev, 0.0, 1e4)
        _finite_range("detector.bfield_t", d.bfield_t, 0.0, 100.0)
        _finite_range("--noise", d.noise_fraction, 0.0, 100.0)
        if d.noise_count < 0:
            raise ConfigError(f"--noise-count: must be >= 0, got {d.noise_count}")
        bad = sorted(set(d.noise_volumes) - set(ALL_VOLUMES))
        if bad or not d.noise_volumes:
            raise ConfigError(
                f"--noise-volume: unknown volume(s) {bad or '(none given)'}; "
                f"choose from {list(ALL_VOLUMES)}"
            )
        for name in ("digi_config", "spacepoint_selection"):
            path = getattr(d, f"{name}_path")
            if not path.is_file():
                raise ConfigError(f"detector.{name}: file not found: {path}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (paths as strings, tuples as lists); the events' provenance."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        """Inverse of :meth:`to_dict` (missing keys take their defaults)."""
        sub = {"pythia": PythiaConfig, "gun": ParticleGunConfig, "detector": DetectorConfig}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sub:
                kwargs[key] = _build(sub[key], value)
            elif key in {f.name for f in dataclasses.fields(cls)}:
                kwargs[key] = value
            else:
                raise ConfigError(f"simulation config: unknown key '{key}'")
        return cls(**kwargs)


def _build(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"simulation config: unknown key '{cls.__name__}.{key}'")
        if isinstance(value, list):
            value = tuple(value)
        if key in ("digi_config", "spacepoint_selection", "cache_dir") and value is not None:
            value = Path(value)
        kwargs[key] = value
    return cls(**kwargs)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _finite_range(
    option: str, value: float, low: float, high: float, *, low_open: bool = False
) -> None:
    ok = math.isfinite(value) and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{option}: must be in {bracket}{low:g}, {high:g}], got {value}")


def _ordered(
    opt_min: str,
    opt_max: str,
    lo: float,
    hi: float,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
) -> None:
    for option, value in ((opt_min, lo), (opt_max, hi)):
        if not math.isfinite(value):
            raise ConfigError(f"{option}: must be finite, got {value}")
        if (value <= low if low_open else value < low) or value > high:
            bracket = "(" if low_open else "["
            raise ConfigError(f"{option}: must be in {bracket}{low:g}, {high:g}], got {value}")
    if lo > hi:
        raise ConfigError(f"{opt_min} ({lo:g}) must not exceed {opt_max} ({hi:g})")
