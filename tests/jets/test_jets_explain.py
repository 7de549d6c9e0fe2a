"""``lhcml explain`` on the shipped ParT with the session's small jet samples."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lhcml.cli.main import app
from lhcml.jets.dataset import PARTICLE_FEATURES


def test_part_input_importance_and_neurons(samples: dict[str, Path], tmp_path: Path) -> None:
    base = ["--out", str(tmp_path), "--repeats", "2", "--quiet"]
    jets = [str(samples["qcd"]), str(samples["top"])]
    r = CliRunner().invoke(app, ["explain", "importance", "part", *jets, *base])
    assert r.exit_code == 0, r.output
    imp = json.loads((tmp_path / "importance.json").read_text())["groups"]["inputs"]
    assert [it["name"] for it in imp["items"]] == list(PARTICLE_FEATURES)
    assert 0.5 < imp["baseline"] <= 1.0
    drops = {it["name"]: it["drop"] for it in imp["items"]}
    # A top tagger needs the constituents' angular spread more than their muon flag.
    assert max(drops["part_deta"], drops["part_dphi"], drops["part_deltaR"]) > drops["part_isMuon"]
    r = CliRunner().invoke(app, ["explain", "neurons", "part", *jets, *base, "--modules", "fc.0"])
    assert r.exit_code == 0, r.output
    neurons = json.loads((tmp_path / "neurons.json").read_text())
    assert set(neurons["layers"]) == {"fc.0"}
