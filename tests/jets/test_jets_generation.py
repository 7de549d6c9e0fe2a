"""Jet generation: physics of the samples, file layout, resume, detector response."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import make_sample

from lhcml.errors import ConfigError, InputError
from lhcml.jets.config import LABELS, DarkSectorConfig, DetectorResponse, GenerationConfig
from lhcml.jets.detector import apply_response
from lhcml.jets.writer import META_FILE, chunk_info, generate_jets

WEAVER_COLUMNS = [
    "part_px",
    "part_py",
    "part_pz",
    "part_energy",
    "part_deta",
    "part_dphi",
    "part_charge",
    "part_pid",
    "part_isChargedHadron",
    "part_isNeutralHadron",
    "part_isPhoton",
    "part_isElectron",
    "part_isMuon",
    "jet_pt",
    "jet_eta",
    "jet_phi",
    "jet_energy",
    "jet_mass",
    "jet_sdmass",
    "jet_nparticles",
    "jet_tau1",
    "jet_tau2",
    "jet_tau3",
    "label",
    "label_qcd",
    "label_top",
]


def _table(path: Path) -> pq.ParquetDataset:
    return pq.read_table(path)  # a directory: "_generation.json" is skipped


def test_top_jets_peak_near_top_mass(samples: dict[str, Path]) -> None:
    sd = _table(samples["top"]).column("jet_sdmass").to_numpy()
    assert len(sd) >= 25
    # Fully contained hadronic tops: the soft-drop mass peaks at m_t = 173 GeV.
    assert 160 < np.median(sd) < 185
    assert np.mean((sd > 140) & (sd < 210)) > 0.7


def test_w_jets_peak_near_w_mass(samples: dict[str, Path]) -> None:
    sd = _table(samples["w"]).column("jet_sdmass").to_numpy()
    assert len(sd) >= 20
    assert 70 < np.median(sd) < 92
    assert np.mean((sd > 60) & (sd < 100)) > 0.55


def test_qcd_jet_mass_falls(samples: dict[str, Path]) -> None:
    t = _table(samples["qcd"])
    sd = t.column("jet_sdmass").to_numpy()
    counts, _ = np.histogram(sd, bins=[0, 60, 120, 180, 240])
    assert len(sd) >= 50
    assert counts[0] > counts[1] > counts[2]  # falling, no peak
    assert np.median(sd) < 60
    # Soft drop removes soft wide-angle radiation: groomed <= plain mass.
    assert np.all(sd <= t.column("jet_mass").to_numpy() * (1 + 1e-4) + 1e-3)


def test_layout_selection_and_constituents(samples: dict[str, Path]) -> None:
    t = _table(samples["top"])
    assert all(c in t.column_names for c in WEAVER_COLUMNS)
    pt = t.column("jet_pt").to_numpy()
    eta = t.column("jet_eta").to_numpy()
    assert np.all((pt >= 500) & (pt < 600)) and np.all(np.abs(eta) < 2.0)
    assert np.all(t.column("label").to_numpy() == LABELS["top"])
    assert np.all(t.column("label_top").to_numpy() == 1)
    # Constituents: pT-ordered, at most 128, four-momenta summing to the jet (when
    # nothing was truncated), deta / dphi relative to the axis.
    px = t.column("part_px").to_pylist()
    py = t.column("part_py").to_pylist()
    pz = t.column("part_pz").to_pylist()
    e = t.column("part_energy").to_pylist()
    deta = t.column("part_deta").to_pylist()
    dphi = t.column("part_dphi").to_pylist()
    n_all = t.column("jet_nparticles").to_numpy()
    for k in range(len(px)):
        cpt = np.hypot(px[k], py[k])
        assert len(cpt) <= 128 and np.all(np.diff(cpt) <= 1e-4)
        if n_all[k] == len(cpt):
            jet_pt = np.hypot(np.sum(px[k]), np.sum(py[k]))
            assert jet_pt == pytest.approx(pt[k], rel=1e-4)
            assert np.sum(e[k]) == pytest.approx(t.column("jet_energy")[k].as_py(), rel=1e-4)
        # anti-kT R = 0.8 jets are round in (rapidity, phi) around the axis.
        ek, pzk = np.asarray(e[k]), np.asarray(pz[k])
        rap = 0.5 * np.log((ek + pzk) / (ek - pzk))
        jp = [np.sum(c) for c in (px[k], py[k], pz[k], e[k])]
        jet_rap = 0.5 * np.log((jp[3] + jp[2]) / (jp[3] - jp[2]))
        assert np.all(np.hypot(rap - jet_rap, dphi[k]) < 0.8 + 0.05)
        ceta = np.arcsinh(np.asarray(pz[k]) / cpt)
        np.testing.assert_allclose(ceta - eta[k], deta[k], atol=2e-3)
    taus = np.column_stack([t.column(f"jet_tau{i}").to_numpy() for i in (1, 2, 3)])
    assert np.all(taus[:, 0] >= taus[:, 1]) and np.all(taus[:, 1] >= taus[:, 2])
    # Three-prong top jets: tau_32 is small compared with QCD jets.
    q = _table(samples["qcd"])
    tau32_qcd = q.column("jet_tau3").to_numpy() / q.column("jet_tau2").to_numpy()
    assert np.median(taus[:, 2] / taus[:, 1]) < np.median(tau32_qcd)


def test_awkward_reads_the_files(samples: dict[str, Path]) -> None:
    import awkward as ak

    arr = ak.from_parquet(min(samples["qcd"].glob("*.parquet")))
    assert str(ak.type(arr.part_px)).endswith("var * float32")
    assert ak.all(ak.num(arr.part_px) == ak.num(arr.part_deta))


def test_resume_and_config_mismatch(tmp_path: Path) -> None:
    cfg = GenerationConfig(process="qcd", events_per_chunk=10, seed=3)
    first = generate_jets(cfg, tmp_path, events=20)
    assert first.written == [0, 1] and first.skipped == []
    before = (tmp_path / "qcd-000000.parquet").read_bytes()
    again = generate_jets(cfg, tmp_path, events=30)
    assert again.skipped == [0, 1] and again.written == [2]
    assert (tmp_path / "qcd-000000.parquet").read_bytes() == before
    info = chunk_info(tmp_path / "qcd-000002.parquet")
    assert info["first_event"] == 20 and info["n_events"] == 10
    assert again.jets == first.jets + info["n_jets"]
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["config"]["process"] == "qcd"
    # Chunks are reproducible: regenerating chunk 1 alone gives the same jets.
    other = tmp_path / "again"
    generate_jets(cfg, other, events=20)
    a = pq.read_table(tmp_path / "qcd-000001.parquet").column("jet_pt").to_numpy()
    b = pq.read_table(other / "qcd-000001.parquet").column("jet_pt").to_numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="another configuration"):
        generate_jets(
            GenerationConfig(process="qcd", events_per_chunk=10, seed=4), tmp_path, events=10
        )
    # --jets: stops once enough jets exist (here already on disk: nothing to do).
    enough = generate_jets(cfg, tmp_path, jets=1)
    assert enough.written == [] and enough.jets >= 1


def test_bad_options() -> None:
    with pytest.raises(ConfigError, match="--process"):
        GenerationConfig(process="higgs").validate()
    with pytest.raises(ConfigError, match="--pt-min"):
        GenerationConfig(pt_min=600, pt_max=500).validate()
    with pytest.raises(ConfigError, match="--r-inv"):
        GenerationConfig(process="dark", dark=DarkSectorConfig(r_inv=1.5)).validate()
    with pytest.raises(ConfigError, match="exactly one"):
        generate_jets(GenerationConfig(), "/nonexistent", events=1, jets=1)


def test_chunk_info_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "qcd-000000.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InputError, match=r"qcd-000000\.parquet"):
        chunk_info(bad)


def test_dark_sector_cards_and_jets(tmp_path: Path) -> None:
    lines = DarkSectorConfig(r_inv=0.3).pythia_settings()
    assert "HiddenValley:ffbar2Zv = on" in lines
    # Every dark meson: branching ratios sum to 1, invisible fraction r_inv.
    for pid in (4900111, 4900211, 4900113, 4900213):
        chans = [ln for ln in lines if ln.startswith(f"{pid}:") and "Channel" in ln]
        brs = [float(ln.split("=")[1].split()[1]) for ln in chans]
        inv = [
            float(ln.split("=")[1].split()[1]) for ln in chans if ln.endswith(("51 -51", "53 -53"))
        ]
        assert sum(brs) == pytest.approx(1.0, abs=1e-5)
        assert inv == [pytest.approx(0.3)]
    out = make_sample(tmp_path / "dark", "dark", 30, pt_min=300, pt_max=900)
    t = pq.read_table(out)
    assert t.num_rows >= 10
    assert np.all(t.column("label").to_numpy() == LABELS["dark"])


def test_detector_response_hand_counts() -> None:
    rng = np.random.default_rng(0)
    n = 20000
    pt = np.full(n, 10.0)
    eta = np.zeros(n)
    p4 = np.column_stack([pt, np.zeros(n), pt * np.sinh(eta), pt * np.cosh(eta)])
    pdg = np.full(n, 211)
    charge = np.ones(n)
    # No tracking at all: charged pions become neutral hadrons (PDG 130, charge 0).
    r = DetectorResponse(track_efficiency=0.0, hcal_stochastic=0.0, hcal_constant=0.0)
    out_pdg, out_q, out_p4 = apply_response(pdg, charge, p4, r, rng)
    assert np.all(out_pdg == 130) and np.all(out_q == 0) and len(out_pdg) == n
    np.testing.assert_allclose(out_p4, p4)
    # 95% efficiency: ~5% calorimeter-only (binomial, 5 sigma), track pT resolution.
    r = DetectorResponse()
    out_pdg, _, out_p4 = apply_response(pdg, charge, p4, r, rng)
    lost = np.mean(out_pdg == 130)
    assert abs(lost - 0.05) < 5 * np.sqrt(0.05 * 0.95 / n)
    trk = out_pdg == 211
    res = np.std(np.hypot(out_p4[trk, 0], out_p4[trk, 1]) / 10.0 - 1)
    assert res == pytest.approx(np.hypot(0.005, 1e-4 * 10), rel=0.05)
    # Photons: ECAL resolution 10%/sqrt(E) (+) 1% at E = 100 GeV.
    e = 100.0
    p4g = np.tile([e, 0.0, 0.0, e], (n, 1))
    out_pdg, _, out_p4 = apply_response(np.full(n, 22), np.zeros(n), p4g, r, rng)
    assert np.std(out_p4[:, 3] / e - 1) == pytest.approx(np.hypot(0.1 / 10, 0.01), rel=0.05)
    # Muons outside the tracker are lost; soft charged particles curl up and are lost.
    mu = np.array([[10.0, 0, 10.0 * np.sinh(3.0), 10.0 * np.cosh(3.0)]])
    assert len(apply_response(np.array([13]), np.array([-1.0]), mu, r, rng)[0]) == 0
    soft = np.array([[0.2, 0, 0, 0.25]])
    assert len(apply_response(np.array([211]), np.array([1.0]), soft, r, rng)[0]) == 0
    # Disabled: unchanged.
    same = apply_response(pdg, charge, p4, DetectorResponse(enabled=False), rng)
    assert same[0] is pdg and same[2] is p4


@pytest.mark.slow
def test_mass_peaks_large_samples(tmp_path: Path) -> None:
    """More events: the peak (mode) of the soft-drop mass within a few GeV."""
    peaks = {}
    for process, events in (("top", 1500), ("w", 1500), ("qcd", 800)):
        out = make_sample(tmp_path / process, process, events)
        sd = pq.read_table(out).column("jet_sdmass").to_numpy()
        counts, edges = np.histogram(sd, bins=np.arange(0, 260, 10))
        peaks[process] = 0.5 * (edges[counts.argmax()] + edges[counts.argmax() + 1])
    assert 160 <= peaks["top"] <= 185
    assert 70 <= peaks["w"] <= 90
    assert peaks["qcd"] < 40
