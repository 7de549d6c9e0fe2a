"""Jet samples from Pythia 8 (``pythia8mc``) and FastJet (``fastjet``, scikit-hep).

One :class:`JetGenerator` per process generates events, applies the detector response,
clusters each event with anti-kT (``fastjet.ClusterSequence`` through its awkward-array
interface, many events per call), selects jets (pT window, ``|eta|``, leading
``max_jets_per_event``), matches them to the truth partons of the hard process and
computes substructure on all constituents:

- soft-drop mass (beta = 0, z_cut = 0.1, R0 = jet R) with FastJet: the constituents are
  reclustered with Cambridge/Aachen into exactly one jet and groomed by
  ``exclusive_jets_softdrop_grooming`` (fjcontrib RecursiveTools' SoftDrop);
- N-subjettiness tau_1..tau_3 with FastJet (fjcontrib Nsubjettiness: one-pass kT axes,
  normalised measure, beta = 1, R0 = jet R).

Constituents are kept pT-ordered, at most ``max_particles`` per jet; jet kinematics and
substructure use all of them. Event ``i`` of a sample depends only on
``(seed, process, i)`` (Pythia is re-seeded per event), so chunks can be generated in
any order and in any process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lhcml.errors import LhcmlError
from lhcml.jets.config import LABELS, GenerationConfig
from lhcml.jets.detector import apply_response

# Pythia's Rndm::init accepts seeds 0..900,000,000 (0 means "time based").
_PYTHIA_SEED_MAX = 900_000_000
_MAX_TRIES = 20
_INVISIBLE = {12, 14, 16, 51, 52, 53}  # neutrinos and the Hidden Valley invisible states


def event_seed(seed: int, process: str, event_id: int, stream: int = 0) -> int:
    """A 63-bit seed depending only on ``(seed, process, event_id, stream)``."""
    ss = np.random.SeedSequence([int(seed), LABELS[process], int(event_id), int(stream)])
    return int(ss.generate_state(2, np.uint64)[0] >> np.uint64(1))


@dataclass
class TruthObject:
    """A hard-process object a jet can be matched to.

    Attributes:
        eta, phi: direction of the object (top, W or dark quark) [after ISR recoil].
        prongs: ``(k, 2)`` eta, phi of its decay quarks (top: b q q'; W: q q'; dark: none).
        pt: transverse momentum [GeV].
    """

    eta: float
    phi: float
    pt: float
    prongs: np.ndarray


@dataclass
class EventRecord:
    """The visible final state and truth objects of one event.

    Attributes:
        event_id: event number in the sample.
        pdg, charge: ``(n,)`` PDG ids and charges of the detector-level particles.
        p4: ``(n, 4)`` ``px, py, pz, E`` [GeV].
        truth: objects jets are matched to (empty for QCD).
    """

    event_id: int
    pdg: np.ndarray
    charge: np.ndarray
    p4: np.ndarray
    truth: list[TruthObject]


def _eta_phi(p: Any) -> tuple[float, float]:
    return float(p.eta()), float(p.phi())


class PythiaEvents:
    """An initialised Pythia for one :class:`GenerationConfig`, re-seeded per event.

    Args:
        config: the sample configuration (validated).
    """

    def __init__(self, config: GenerationConfig) -> None:
        import pythia8mc

        self.config = config
        self.pythia: Any = pythia8mc.Pythia("", False)  # False: no banner
        base = ["Print:quiet = on", "Next:numberCount = 0", "Random:setSeed = on"]
        for line in [*base, "Random:seed = 1", *config.pythia_settings()]:
            if not self.pythia.readString(line):
                raise LhcmlError(f"Pythia rejected the setting '{line}'")
        if not self.pythia.init():
            raise LhcmlError(f"Pythia initialisation failed for process '{config.process}'")
        self._species: dict[int, tuple[float, bool]] = {}

    def _species_info(self, pdg: int) -> tuple[float, bool]:
        info = self._species.get(pdg)
        if info is None:
            data = self.pythia.particleData
            visible = abs(pdg) not in _INVISIBLE and abs(pdg) < 1_000_000
            visible = visible and bool(data.isVisible(pdg))
            info = (float(data.charge(pdg)), visible)
            self._species[pdg] = info
        return info

    def generate(self, event_id: int) -> EventRecord:
        """Generate event ``event_id``: visible final state (before detector) + truth."""
        cfg = self.config
        self.pythia.rndm.init(event_seed(cfg.seed, cfg.process, event_id) % _PYTHIA_SEED_MAX + 1)
        for _ in range(_MAX_TRIES):
            if self.pythia.next():
                break
        else:
            raise LhcmlError(f"Pythia failed to generate event {event_id} in {_MAX_TRIES} tries")
        rows = []
        append = rows.append
        # The hot loop (~600-2500 entries per event): one pass, tuples, numpy at the end.
        for p in self.pythia.event:
            if p.isFinal():
                append((p.id(), p.px(), p.py(), p.pz(), p.e()))
        raw = np.array(rows, dtype=np.float64).reshape(-1, 5)
        pdg = raw[:, 0].astype(np.int64)
        species, inverse = np.unique(pdg, return_inverse=True)
        table = [self._species_info(int(s)) for s in species]
        charge = np.array([t[0] for t in table])[inverse]
        visible = np.array([t[1] for t in table], dtype=bool)[inverse]
        return EventRecord(
            event_id=event_id,
            pdg=pdg[visible],
            charge=charge[visible],
            p4=raw[visible, 1:5],
            truth=self._truth(),
        )

    def _truth(self) -> list[TruthObject]:
        """Tops / Ws with their hadronic decay quarks, or dark quarks from the Z'.

        The event record starts as a copy of the process record, so a hard-process
        index is valid in the event record; the bottom copy of a resonance is the one
        after ISR/FSR recoils, just before it decays, and its daughters are the first
        copies of the decay products (decays are appended later, at other indices).
        """
        process = self.config.process
        if process == "qcd":
            return []
        ev = self.pythia.event
        hard = self.pythia.process
        out: list[TruthObject] = []
        for i in range(hard.size()):
            pid = abs(hard[i].id())
            if process == "top" and pid == 6 and hard[i].status() == -22:
                top = ev[ev[i].iBotCopyId()]
                d = [ev[j] for j in top.daughterList()]
                w = [p for p in d if p.idAbs() == 24]
                b = [p for p in d if 1 <= p.idAbs() <= 5]
                if len(w) != 1 or len(b) != 1:
                    continue
                wb = ev[w[0].iBotCopyId()]
                quarks = [ev[j] for j in wb.daughterList() if 1 <= ev[j].idAbs() <= 5]
                if len(quarks) != 2:
                    continue  # leptonic W (not with the forced decays)
                prongs = np.array([_eta_phi(p) for p in (b[0], *quarks)])
                out.append(TruthObject(*_eta_phi(top), float(top.pT()), prongs))
            elif process == "w" and pid == 24 and hard[i].status() == -22:
                w = ev[ev[i].iBotCopyId()]
                quarks = [ev[j] for j in w.daughterList() if 1 <= ev[j].idAbs() <= 5]
                if len(quarks) != 2:
                    continue
                prongs = np.array([_eta_phi(p) for p in quarks])
                out.append(TruthObject(*_eta_phi(w), float(w.pT()), prongs))
            elif process == "dark" and pid == 4900023 and hard[i].status() == -22:
                zv = ev[ev[i].iBotCopyId()]
                for j in zv.daughterList():
                    if ev[j].idAbs() == 4900101:
                        q = ev[j]
                        out.append(TruthObject(*_eta_phi(q), float(q.pT()), np.zeros((0, 2))))
        return out


def delta_phi(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """``a - b`` wrapped into [-pi, pi)."""
    return (np.asarray(a) - np.asarray(b) + np.pi) % (2 * np.pi) - np.pi


def match_truth(
    jet_eta: float, jet_phi: float, truth: list[TruthObject], radius: float
) -> TruthObject | None:
    """The truth object whose direction and all prongs lie within ``radius`` of the jet."""
    for obj in truth:
        if np.hypot(jet_eta - obj.eta, delta_phi(jet_phi, obj.phi)) >= radius:
            continue
        if len(obj.prongs):
            dr = np.hypot(jet_eta - obj.prongs[:, 0], delta_phi(jet_phi, obj.prongs[:, 1]))
            if np.any(dr >= radius):
                continue
        return obj
    return None


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level stdout (FastJet prints its banner on first use)."""
    try:
        fd = os.dup(1)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


_BANNER_SHOWN = False


def _cluster(events: list[np.ndarray], algorithm: str, r: float) -> Any:
    """``fastjet.ClusterSequence`` over a list of ``(n, 4)`` arrays (awkward interface)."""
    global _BANNER_SHOWN
    import awkward as ak
    import fastjet

    counts = np.array([len(e) for e in events], dtype=np.int64)
    flat = np.concatenate(events) if len(events) else np.zeros((0, 4))
    arr = ak.unflatten(
        ak.zip(
            {"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]},
            with_name="Momentum4D",
        ),
        counts,
    )
    algo = {"antikt": fastjet.antikt_algorithm, "ca": fastjet.cambridge_algorithm}[algorithm]
    jetdef = fastjet.JetDefinition(algo, r)
    if not _BANNER_SHOWN:
        with _quiet_stdout():
            cs = fastjet.ClusterSequence(arr, jetdef)
        _BANNER_SHOWN = True
        return cs
    return fastjet.ClusterSequence(arr, jetdef)


def substructure(constituents: list[np.ndarray], r: float) -> dict[str, np.ndarray]:
    """Soft-drop mass and N-subjettiness of jets given as ``(n_i, 4)`` constituent arrays.

    Args:
        constituents: one ``px, py, pz, E`` array per jet (all constituents).
        r: the jet radius (soft-drop R0 and N-subjettiness R0).

    Returns:
        ``sdmass`` and ``tau1``, ``tau2``, ``tau3`` (each ``(n_jets,)``, float64); tau_N
        of a jet with at most N constituents is 0.
    """
    import awkward as ak

    n = len(constituents)
    out = {k: np.zeros(n) for k in ("sdmass", "tau1", "tau2", "tau3")}
    if n == 0:
        return out
    # C/A with a radius covering any anti-kT jet: every constituent ends in one jet.
    cs = _cluster(constituents, "ca", 2.0 * r + 1.0)
    sd = cs.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=r)
    out["sdmass"] = ak.to_numpy(sd.msoftdrop).astype(np.float64)
    sizes = np.array([len(c) for c in constituents])
    taus = cs.njettiness(njets=[1, 2, 3], beta=1.0, R0=r)
    taus = np.asarray(ak.to_numpy(ak.flatten(taus, axis=None)), dtype=np.float64).reshape(n, 3)
    for k in range(3):
        out[f"tau{k + 1}"] = np.where(sizes > k + 1, taus[:, k], 0.0)
    return out


_PID_FLAGS = ("isChargedHadron", "isNeutralHadron", "isPhoton", "isElectron", "isMuon")


def pid_flags(pdg: np.ndarray, charge: np.ndarray) -> dict[str, np.ndarray]:
    """JetClass particle-type flags (0/1 float32) from PDG ids and charges."""
    apdg = np.abs(pdg)
    ele, mu, pho = apdg == 11, apdg == 13, pdg == 22
    lep = ele | mu
    return {
        "isChargedHadron": ((charge != 0) & ~lep).astype(np.float32),
        "isNeutralHadron": ((charge == 0) & ~pho & ~lep).astype(np.float32),
        "isPhoton": pho.astype(np.float32),
        "isElectron": ele.astype(np.float32),
        "isMuon": mu.astype(np.float32),
    }


class JetGenerator:
    """Events -> selected, labelled jets with constituents, for one sample.

    Args:
        config: the sample configuration (validated here).
    """

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config.validate()
        self._pythia: PythiaEvents | None = None

    @property
    def pythia(self) -> PythiaEvents:
        if self._pythia is None:
            self._pythia = PythiaEvents(self.config)
        return self._pythia

    def event(self, event_id: int) -> EventRecord:
        """One event at detector level (detector response applied)."""
        rec = self.pythia.generate(event_id)
        rng = np.random.default_rng(event_seed(self.config.seed, self.config.process, event_id, 1))
        rec.pdg, rec.charge, rec.p4 = apply_response(
            rec.pdg, rec.charge, rec.p4, self.config.detector, rng
        )
        return rec

    def jets(self, event_ids: list[int], on_event: Any = None) -> dict[str, Any]:
        """Generate ``event_ids`` and return their selected jets as columns.

        Args:
            event_ids: events to generate.
            on_event: called with each event id once generated (progress).

        Returns:
            A dict of columns (see :mod:`lhcml.jets.writer` for the layout): per-jet
            numpy arrays and per-particle lists as ``(flat array, counts)`` pairs
            under ``"_particles"``.
        """
        records = []
        for e in event_ids:
            records.append(self.event(e))
            if on_event is not None:
                on_event(e)
        return self.select(records)

    def select(self, records: list[EventRecord]) -> dict[str, Any]:
        """Cluster, select, match and describe the jets of ``records``."""
        import awkward as ak

        cfg = self.config
        cs = _cluster([r.p4 for r in records], "antikt", cfg.jet_r)
        # A loose pT floor for the clustering output; the window is applied below.
        floor = 0.5 * cfg.pt_min
        jets = cs.inclusive_jets(min_pt=floor)
        index = cs.constituent_index(min_pt=floor)
        jpx, jpy = ak.to_list(jets.px), ak.to_list(jets.py)
        jpz, je = ak.to_list(jets.pz), ak.to_list(jets.E)
        idx = ak.to_list(index)
        rows: dict[str, list[Any]] = {k: [] for k in ("event_id", "truth_pt")}
        cons: list[np.ndarray] = []
        cons_pdg: list[np.ndarray] = []
        cons_charge: list[np.ndarray] = []
        jet_p4: list[np.ndarray] = []
        for rec, px, py, pz, e, ci in zip(records, jpx, jpy, jpz, je, idx, strict=True):
            if not px:
                continue
            p4 = np.column_stack([px, py, pz, e])
            pt = np.hypot(p4[:, 0], p4[:, 1])
            order = np.argsort(-pt, kind="stable")[: cfg.max_jets_per_event]
            for j in order:
                eta = float(np.arcsinh(p4[j, 2] / pt[j]))
                if not (cfg.pt_min <= pt[j] < cfg.pt_max and abs(eta) < cfg.eta_max):
                    continue
                phi = float(np.arctan2(p4[j, 1], p4[j, 0]))
                truth_pt = 0.0
                if cfg.process != "qcd":
                    obj = match_truth(eta, phi, rec.truth, cfg.match_r)
                    if obj is None:
                        continue
                    truth_pt = obj.pt
                k = np.asarray(ci[j], dtype=np.int64)
                rows["event_id"].append(rec.event_id)
                rows["truth_pt"].append(truth_pt)
                cons.append(rec.p4[k])
                cons_pdg.append(rec.pdg[k])
                cons_charge.append(rec.charge[k])
                jet_p4.append(p4[j])
        return self._columns(rows, jet_p4, cons, cons_pdg, cons_charge)

    def _columns(
        self,
        rows: dict[str, list[Any]],
        jet_p4: list[np.ndarray],
        cons: list[np.ndarray],
        cons_pdg: list[np.ndarray],
        cons_charge: list[np.ndarray],
    ) -> dict[str, Any]:
        cfg = self.config
        n = len(cons)
        jp4 = np.array(jet_p4, dtype=np.float64).reshape(n, 4)
        jpt = np.hypot(jp4[:, 0], jp4[:, 1])
        jeta = np.arcsinh(jp4[:, 2] / np.where(jpt > 0, jpt, 1.0))
        jphi = np.arctan2(jp4[:, 1], jp4[:, 0])
        jmass = np.sqrt(np.clip(jp4[:, 3] ** 2 - (jp4[:, :3] ** 2).sum(1), 0.0, None))
        sub = substructure(cons, cfg.jet_r)
        # Constituents: pT-ordered, truncated.
        kept_p4, kept_pdg, kept_q = [], [], []
        for c, pdg, q in zip(cons, cons_pdg, cons_charge, strict=True):
            o = np.argsort(-np.hypot(c[:, 0], c[:, 1]), kind="stable")[: cfg.max_particles]
            kept_p4.append(c[o])
            kept_pdg.append(pdg[o])
            kept_q.append(q[o])
        counts = np.array([len(c) for c in kept_p4], dtype=np.int64)
        p4 = np.concatenate(kept_p4) if n else np.zeros((0, 4))
        pdg = np.concatenate(kept_pdg) if n else np.zeros(0, np.int64)
        charge = np.concatenate(kept_q) if n else np.zeros(0)
        ppt, peta = np.hypot(p4[:, 0], p4[:, 1]), np.zeros(len(p4))
        ok = ppt > 0
        peta[ok] = np.arcsinh(p4[ok, 2] / ppt[ok])
        pphi = np.arctan2(p4[:, 1], p4[:, 0])
        jet_of = np.repeat(np.arange(n), counts)
        particles = {
            "part_px": p4[:, 0],
            "part_py": p4[:, 1],
            "part_pz": p4[:, 2],
            "part_energy": p4[:, 3],
            "part_deta": peta - jeta[jet_of],
            "part_dphi": delta_phi(pphi, jphi[jet_of]),
            "part_charge": charge,
            "part_pid": pdg,
            **{f"part_{k}": v for k, v in pid_flags(pdg, charge).items()},
        }
        label = np.full(n, cfg.label, dtype=np.int64)
        columns: dict[str, Any] = {
            "jet_pt": jpt,
            "jet_eta": jeta,
            "jet_phi": jphi,
            "jet_energy": jp4[:, 3],
            "jet_mass": jmass,
            "jet_sdmass": sub["sdmass"],
            "jet_nparticles": np.array([len(c) for c in cons], dtype=np.int64),
            "jet_tau1": sub["tau1"],
            "jet_tau2": sub["tau2"],
            "jet_tau3": sub["tau3"],
            "aux_truth_pt": np.array(rows["truth_pt"], dtype=np.float64),
            "event_id": np.array(rows["event_id"], dtype=np.int64),
            "label": label,
            **{f"label_{p}": (label == v).astype(np.int8) for p, v in LABELS.items()},
            "_particles": (particles, counts),
        }
        return columns
