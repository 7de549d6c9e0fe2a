"""Typed configuration of jet-sample generation (Pythia 8 + FastJet), with Pythia cards.

Units: GeV, radians. Every value is checked by :meth:`GenerationConfig.validate`, which
raises :class:`lhcml.errors.ConfigError` naming the option in its CLI spelling, so a bad
value fails before Pythia starts.

Processes (the ``label`` written for each jet in brackets):

- ``qcd`` (0): ``HardQCD:all`` with a pT-hat window; every selected jet is a QCD jet.
- ``top`` (1): ``Top:qqbar2ttbar`` + ``Top:gg2ttbar``, W forced to quarks
  (``24:onMode = off``, ``24:onIfAny = 1 2 3 4 5``); a jet is a top jet when the top
  and its three decay quarks (b, q, q') lie within ``match_r`` of the jet axis.
- ``w`` (2): ``WeakBosonAndParton:qqbar2Wg`` + ``qg2Wq``, W -> q q'; a jet is a W jet
  when the W and both quarks lie within ``match_r``.
- ``dark`` (3): semi-visible jets from Hidden Valley ``Z' -> q_D q_D-bar``
  (:class:`DarkSectorConfig`); a jet is a dark jet when a dark quark from the Z' decay
  lies within ``match_r``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lhcml.errors import ConfigError

#: Processes and the integer ``label`` of their jets.
LABELS: dict[str, int] = {"qcd": 0, "top": 1, "w": 2, "dark": 3}
PROCESSES: tuple[str, ...] = tuple(LABELS)


@dataclass(frozen=True)
class DarkSectorConfig:
    """Hidden Valley dark sector of the semi-visible-jet literature.

    Follows Cohen, Lisanti, Lou, Mishra-Sharma, JHEP 11 (2017) 196 (arXiv:1707.05326)
    and the CMS s-channel semi-visible-jet cards (CMS-EXO-19-020): a leptophobic Z'
    (``4900023``) decays to a dark quark pair (``4900101``, mass = dark meson mass / 2),
    which showers and hadronises in an SU(``n_colours``) dark sector with ``n_flavours``
    dark flavours and running coupling (``alphaOrder = 1``) fixed by ``lambda_dark``.
    Every dark meson (pseudoscalar ``4900111``/``4900211``, vector
    ``4900113``/``4900213``, all of mass ``meson_mass``) decays with probability
    ``r_inv`` into a pair of stable invisible states (``51`` for pseudoscalars, ``53``
    for vectors, as in the cards) and otherwise into Standard Model quarks that
    hadronise (``meMode 91``): pseudoscalars to s s-bar, vectors democratically to the
    five light flavours. Making the off-diagonal mesons (``49002xx``) decay too keeps the
    invisible fraction equal to ``r_inv`` (in the 2019 cards they were stable, which
    raised the effective r_inv).

    Attributes:
        zprime_mass: Z' mass [GeV] (width 0.01 GeV, mass window +-1 GeV).
        meson_mass: dark hadron mass [GeV] of all four meson species.
        lambda_dark: confinement scale ``HiddenValley:Lambda`` [GeV]; the dark shower
            stops at ``pTminFSR = 1.1 * lambda_dark``.
        r_inv: invisible fraction of dark-meson decays, in [0, 1].
        n_colours: ``HiddenValley:Ngauge``.
        n_flavours: ``HiddenValley:nFlav``.
        prob_vector: ``HiddenValley:probVector``, fraction of vector dark mesons.
    """

    zprime_mass: float = 1500.0
    meson_mass: float = 20.0
    lambda_dark: float = 20.0
    r_inv: float = 0.3
    n_colours: int = 2
    n_flavours: int = 2
    prob_vector: float = 0.75

    def validate(self) -> DarkSectorConfig:
        if self.zprime_mass <= 2 * self.meson_mass:
            raise ConfigError("--zprime-mass: must exceed twice --dark-meson-mass")
        if self.meson_mass <= 0:
            raise ConfigError(f"--dark-meson-mass: must be > 0, got {self.meson_mass}")
        if self.lambda_dark <= 0:
            raise ConfigError(f"--dark-lambda: must be > 0, got {self.lambda_dark}")
        if not 0.0 <= self.r_inv <= 1.0:
            raise ConfigError(f"--r-inv: must be in [0, 1], got {self.r_inv}")
        if self.n_colours < 2:
            raise ConfigError(f"--dark-colours: must be >= 2, got {self.n_colours}")
        if not 1 <= self.n_flavours <= 8:
            raise ConfigError(f"--dark-flavours: must be in 1..8, got {self.n_flavours}")
        if not 0.0 <= self.prob_vector <= 1.0:
            raise ConfigError(f"--dark-prob-vector: must be in [0, 1], got {self.prob_vector}")
        return self

    def pythia_settings(self) -> list[str]:
        """Pythia lines of this dark sector (process, spectrum, decays)."""
        m_z, m = self.zprime_mass, self.meson_mass
        r = self.r_inv
        lines = [
            "HiddenValley:ffbar2Zv = on",
            f"4900023:m0 = {m_z:g}",
            f"4900023:mMin = {m_z - 1:g}",
            f"4900023:mMax = {m_z + 1:g}",
            "4900023:mWidth = 0.01",
            "4900023:onMode = off",
            "4900023:onIfAny = 4900101",
            f"HiddenValley:Ngauge = {self.n_colours}",
            f"HiddenValley:nFlav = {self.n_flavours}",
            "HiddenValley:fragment = on",
            "HiddenValley:FSR = on",
            "HiddenValley:alphaOrder = 1",
            f"HiddenValley:Lambda = {self.lambda_dark:g}",
            f"HiddenValley:pTminFSR = {1.1 * self.lambda_dark:g}",
            "HiddenValley:spinFv = 0",
            f"HiddenValley:probVector = {self.prob_vector:g}",
            f"4900101:m0 = {m / 2:g}",
            "51:m0 = 0.0",
            "51:isResonance = false",
            "53:m0 = 0.0",
            "53:isResonance = false",
        ]
        # Decouple the heavy HV fermions Fv (not used by the Z' portal).
        lines += [
            f"{pid}:m0 = 5000" for pid in (*range(4900001, 4900007), *range(4900011, 4900017))
        ]
        vis = 1.0 - r
        for pid in (4900111, 4900211):  # pseudoscalars
            lines += [
                f"{pid}:m0 = {m:g}",
                f"{pid}:oneChannel = 1 {r:.6f} 0 51 -51",
                f"{pid}:addChannel = 1 {vis:.6f} 91 3 -3",
            ]
        for pid in (4900113, 4900213):  # vectors
            lines += [f"{pid}:m0 = {m:g}", f"{pid}:oneChannel = 1 {r:.6f} 0 53 -53"]
            lines += [f"{pid}:addChannel = 1 {vis / 5:.6f} 91 {q} -{q}" for q in range(1, 6)]
        return lines


@dataclass(frozen=True)
class DetectorResponse:
    """A simple particle-flow-like detector response, so models do not train on truth.

    Applied to every visible final-state particle before clustering:

    - Charged particles with ``|eta| < tracker_eta_max`` and ``pT > track_pt_min`` are
      tracked with probability ``track_efficiency``; a track's pT is smeared by
      ``sigma(pT)/pT = track_res_const (+) track_res_pt * pT`` (quadrature sum).
    - Charged particles that are not tracked reach only the calorimeters: hadrons are
      measured like neutral hadrons (charge 0, PDG id 130), electrons like photons
      (PDG id 22), muons are lost. Charged particles below ``track_pt_min`` are lost
      (they curl up in the field).
    - Photons (and untracked electrons): ``sigma(E)/E = ecal_stochastic/sqrt(E) (+)
      ecal_constant``; neutral hadrons: ``hcal_stochastic/sqrt(E) (+) hcal_constant``.
      Calorimeter objects need ``|eta| < calo_eta_max`` and ``E > photon_e_min`` /
      ``neutral_e_min``.

    Smearing scales the whole four-vector (direction kept). Directions are not smeared.

    Attributes:
        enabled: apply the response (``False``: generator-level particles, no cuts).
    """

    enabled: bool = True
    tracker_eta_max: float = 2.5
    calo_eta_max: float = 5.0
    track_pt_min: float = 0.4
    track_efficiency: float = 0.95
    track_res_const: float = 0.005
    track_res_pt: float = 1.0e-4
    ecal_stochastic: float = 0.10
    ecal_constant: float = 0.01
    hcal_stochastic: float = 1.0
    hcal_constant: float = 0.05
    photon_e_min: float = 0.5
    neutral_e_min: float = 1.0

    def validate(self) -> DetectorResponse:
        if not 0.0 <= self.track_efficiency <= 1.0:
            raise ConfigError(f"--track-efficiency: must be in [0, 1], got {self.track_efficiency}")
        for name in (
            "tracker_eta_max",
            "calo_eta_max",
            "track_pt_min",
            "track_res_const",
            "track_res_pt",
            "ecal_stochastic",
            "ecal_constant",
            "hcal_stochastic",
            "hcal_constant",
            "photon_e_min",
            "neutral_e_min",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"detector.{name}: must be >= 0, got {getattr(self, name)}")
        return self


@dataclass(frozen=True)
class GenerationConfig:
    """One jet sample: process, selection, clustering, detector response.

    Attributes:
        process: ``qcd``, ``top``, ``w`` or ``dark``.
        pt_min, pt_max: jet pT window [GeV].
        eta_max: jet ``|eta|`` limit.
        pthat_min, pthat_max: Pythia ``PhaseSpace:pTHatMin/Max`` (qcd, top, w); None:
            ``0.8 * pt_min`` and ``1.2 * pt_max``. Unused for ``dark`` (s-channel Z').
        jet_r: anti-kT radius.
        max_particles: constituents kept per jet, highest pT first.
        max_jets_per_event: only the leading jets (in pT) of an event are candidates.
        match_r: truth-matching radius (top, W, dark).
        ecm: centre-of-mass energy [GeV].
        mpi: multiparton interactions (underlying event) on.
        seed: global seed; event ``i`` depends only on ``(seed, process, i)``.
        events_per_chunk: events per output file (the unit of work and of resuming).
        dark: the dark sector (``process="dark"``).
        detector: the detector response.
        extra_settings: more Pythia ``"Key = value"`` lines, read last.
    """

    process: str = "qcd"
    pt_min: float = 500.0
    pt_max: float = 600.0
    eta_max: float = 2.0
    pthat_min: float | None = None
    pthat_max: float | None = None
    jet_r: float = 0.8
    max_particles: int = 128
    max_jets_per_event: int = 2
    match_r: float = 0.8
    ecm: float = 13000.0
    mpi: bool = True
    seed: int = 42
    events_per_chunk: int = 500
    dark: DarkSectorConfig = field(default_factory=DarkSectorConfig)
    detector: DetectorResponse = field(default_factory=DetectorResponse)
    extra_settings: tuple[str, ...] = ()

    @property
    def label(self) -> int:
        """The integer label of this process's jets."""
        return LABELS[self.process]

    def validate(self) -> GenerationConfig:
        """Check every value; raise :class:`ConfigError` naming the option; return self."""
        if self.process not in LABELS:
            raise ConfigError(
                f"--process: unknown process '{self.process}'; choose one of "
                + ", ".join(PROCESSES)
            )
        if not 0 <= self.pt_min < self.pt_max:
            raise ConfigError(
                f"--pt-min/--pt-max: need 0 <= pt-min < pt-max, got {self.pt_min}, {self.pt_max}"
            )
        if self.eta_max <= 0:
            raise ConfigError(f"--eta-max: must be > 0, got {self.eta_max}")
        lo, hi = self.pthat_window
        if not 0 <= lo < hi:
            raise ConfigError(f"--pthat-min/--pthat-max: need 0 <= min < max, got {lo}, {hi}")
        if not 0.05 <= self.jet_r <= 2.0:
            raise ConfigError(f"--jet-r: must be in [0.05, 2], got {self.jet_r}")
        if not 1 <= self.max_particles <= 1024:
            raise ConfigError(f"--max-particles: must be in 1..1024, got {self.max_particles}")
        if self.max_jets_per_event < 1:
            raise ConfigError(f"--max-jets-per-event: must be >= 1, got {self.max_jets_per_event}")
        if self.match_r <= 0:
            raise ConfigError(f"--match-r: must be > 0, got {self.match_r}")
        if self.ecm <= 0:
            raise ConfigError(f"--ecm: must be > 0, got {self.ecm}")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed: must be in [0, 2^63), got {self.seed}")
        if not 1 <= self.events_per_chunk <= 1_000_000:
            raise ConfigError(
                f"--events-per-chunk: must be in 1..1000000, got {self.events_per_chunk}"
            )
        self.dark.validate()
        self.detector.validate()
        return self

    @property
    def pthat_window(self) -> tuple[float, float]:
        """``(pTHatMin, pTHatMax)`` actually used [GeV]."""
        lo = 0.8 * self.pt_min if self.pthat_min is None else self.pthat_min
        hi = 1.2 * self.pt_max if self.pthat_max is None else self.pthat_max
        return float(lo), float(hi)

    def pythia_settings(self) -> list[str]:
        """All Pythia ``"Key = value"`` lines of this sample (beams, process, extras)."""
        lines = [f"Beams:eCM = {self.ecm:g}"]
        if not self.mpi:
            lines.append("PartonLevel:MPI = off")
        lo, hi = self.pthat_window
        window = [f"PhaseSpace:pTHatMin = {lo:g}", f"PhaseSpace:pTHatMax = {hi:g}"]
        hadronic_w = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
        if self.process == "qcd":
            lines += ["HardQCD:all = on", *window]
        elif self.process == "top":
            lines += ["Top:qqbar2ttbar = on", "Top:gg2ttbar = on", *window, *hadronic_w]
        elif self.process == "w":
            lines += [
                "WeakBosonAndParton:qqbar2Wg = on",
                "WeakBosonAndParton:qg2Wq = on",
                *window,
                *hadronic_w,
            ]
        elif self.process == "dark":
            lines += self.dark.pythia_settings()
        return [*lines, *self.extra_settings]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (round-trips through :meth:`from_dict`)."""
        d = dataclasses.asdict(self)
        d["extra_settings"] = list(self.extra_settings)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenerationConfig:
        """Build from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`."""
        d = dict(d)
        try:
            dark = DarkSectorConfig(**d.pop("dark", {}))
            detector = DetectorResponse(**d.pop("detector", {}))
            extra = tuple(d.pop("extra_settings", ()))
            return cls(**d, dark=dark, detector=detector, extra_settings=extra)
        except TypeError as e:
            raise ConfigError(f"jet generation config: {e}") from e
