"""The anomaly stage end to end on tiny generated samples: read, train, evaluate, score;
encoder invariances; bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from lhcml.anomaly.data import ConstituentJets, read_constituents
from lhcml.anomaly.model import JetEncoder
from lhcml.anomaly.train import load_config, load_detector, train
from lhcml.cli.main import app
from lhcml.errors import InputError
from lhcml.jets.config import DarkSectorConfig, GenerationConfig
from lhcml.jets.writer import generate_jets

TINY = Path(__file__).resolve().parents[2] / "experiments" / "anomaly" / "tiny.yaml"


def _sample(out: Path, process: str, events: int, **kw: object) -> Path:
    cfg = GenerationConfig(
        process=process, pt_min=450, pt_max=650, events_per_chunk=events, seed=5, **kw
    )
    generate_jets(cfg, out, events=events)
    return out


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """About 190 QCD and 80 semi-visible (r_inv 0.3) jets of pT 450-650 GeV."""
    base = tmp_path_factory.mktemp("anomaly")
    return {
        "qcd": _sample(base / "qcd", "qcd", 350),
        "dark": _sample(base / "dark", "dark", 160, dark=DarkSectorConfig(r_inv=0.3)),
    }


def test_read_constituents_centred_ordered_scaled(samples: dict[str, Path]) -> None:
    jets = read_constituents(samples["qcd"], n_constituents=40, pt_scale=100.0)
    assert jets.x.shape[1:] == (40, 3) and len(jets) > 100
    pt = jets.x[..., 0]
    assert (np.diff(pt, axis=1) <= 0).all()  # pT-ordered, padding last
    w = pt / pt.sum(1, keepdims=True)
    assert np.abs((w[..., None] * jets.x[..., 1:]).sum(1)).max() < 1e-4  # centred
    # The constituents carry most of the jet pT: sum(pT) * scale vs the jet's pT.
    ratio = pt.sum(1) * 100.0 / jets.jet_pt
    assert 0.8 < np.median(ratio) <= 1.01
    assert (jets.multiplicity <= 40).all()
    scaled = read_constituents(samples["qcd"], n_constituents=40, pt_scale=200.0)
    assert np.allclose(scaled.x[..., 0] * 2, pt, atol=1e-6)


def test_encoder_ignores_padding_and_order() -> None:
    torch.manual_seed(0)
    for pair_bias in (False, True):
        enc = JetEncoder(
            model_dim=16,
            n_layers=2,
            n_heads=2,
            dim_feedforward=32,
            head_dim=16,
            output_dim=8,
            pair_bias=pair_bias,
        ).eval()
        x = torch.rand(3, 6, 3) * torch.tensor([1.0, 0.2, 0.2])
        x[2, 4:] = 0  # a shorter jet
        padded = torch.cat([x, torch.zeros(3, 5, 3)], 1)
        perm = torch.randperm(6)
        with torch.no_grad():
            h = enc.represent(x)
            assert torch.allclose(enc.represent(padded), h, atol=1e-5)
            assert torch.allclose(enc.represent(x[:, perm]), h, atol=1e-5)


def test_train_evaluate_score_end_to_end(samples: dict[str, Path], tmp_path: Path) -> None:
    cfg = load_config(TINY)
    cfg["data"]["background"] = [str(samples["qcd"])]
    model = tmp_path / "model"
    summary = train(cfg, model, progress=False)
    assert summary["n_train"] > 60 and len(summary["epochs"]) == 1
    assert np.isfinite(summary["epochs"][0]["train_loss"])
    det, _ = load_detector(model)
    assert det.bank_z.abs().sum() > 0
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        [
            "anomaly",
            "evaluate",
            str(model),
            "--background",
            str(samples["qcd"]),
            "--signal",
            str(samples["dark"]),
            "--out",
            str(out),
            "--split",
            "all",
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["auc"] <= 1.0
    dark = metrics["signals"]["dark"]
    assert set(dark) >= {"clr", "nae", "knn", "norm"}
    assert dark["clr"]["n_signal"] > 40 and dark["clr"]["auc_unc"] > 0
    assert (out / "roc.png").stat().st_size > 1000
    scores = tmp_path / "scores.parquet"
    result = CliRunner().invoke(
        app, ["anomaly", "score", str(model), "--jets", str(samples["dark"]), "--out", str(scores)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(scores)
    assert table.num_rows == dark["clr"]["n_signal"]
    assert set(table.column_names) >= {"jet", "jet_pt", "score_clr", "score_nae"}


def _rewrite(src: Path, dst: Path, edit: Callable[[pa.Table], pa.Table]) -> Path:
    dst.mkdir()
    for f in sorted(src.glob("*.parquet")):
        pq.write_table(edit(pq.read_table(f)), dst / f.name)
    return dst


def test_bad_input_clear_errors(samples: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="signal directory has no jet files"):
        read_constituents(empty, what="signal")
    dropped = _rewrite(samples["qcd"], tmp_path / "nopx", lambda t: t.drop_columns(["part_px"]))
    with pytest.raises(InputError, match="part_px"):
        read_constituents(dropped)

    def nan_first(t: pa.Table) -> pa.Table:
        col = t.column("part_px").combine_chunks()
        values = col.values.to_numpy(zero_copy_only=False).copy()
        values[0] = np.nan
        fixed = pa.ListArray.from_arrays(col.offsets, pa.array(values, col.type.value_type))
        return t.set_column(t.schema.get_field_index("part_px"), "part_px", fixed)

    nan = _rewrite(samples["qcd"], tmp_path / "nan", nan_first)
    with pytest.raises(InputError, match="NaN"):
        read_constituents(nan, what="background")

    def no_constituents(t: pa.Table) -> pa.Table:
        for name in ("part_px",):
            col = t.column(name).combine_chunks()
            offsets = col.offsets.to_numpy().copy()
            offsets[1] = offsets[0]  # jet 0 loses its constituents
            vals = col.values.slice(0)
            fixed = pa.ListArray.from_arrays(pa.array(offsets), vals)
            t = t.set_column(t.schema.get_field_index(name), name, fixed)
        return t

    hollow = _rewrite(samples["qcd"], tmp_path / "hollow", no_constituents)
    with pytest.raises(InputError, match="without constituents"):
        read_constituents(hollow)
    # Through the CLI: one line, exit code 2, the path named.
    result = CliRunner().invoke(
        app,
        ["anomaly", "score", "shipped", "--jets", str(empty), "--out", str(tmp_path / "s.parquet")],
    )
    assert result.exit_code == 2
    assert "no jet files" in result.output


def test_concat_and_take() -> None:
    a = ConstituentJets(
        np.ones((2, 3, 3), np.float32), np.ones(2, np.float32), np.zeros(2, np.int64), "a"
    )
    b = a.take(np.array([1]))
    c = ConstituentJets.concat([a, b])
    assert len(c) == 3 and c.source == "a + a"


def test_shipped_detector_scores_the_samples(samples: dict[str, Path], tmp_path: Path) -> None:
    from lhcml.anomaly.evaluate import evaluate
    from lhcml.anomaly.models import SHIPPED_MODEL_DIR

    det, cfg = load_detector(SHIPPED_MODEL_DIR)
    assert cfg["primary_score"] == "knn" and cfg["data"]["n_constituents"] == 100
    m = evaluate(det, cfg, [str(samples["qcd"])], [str(samples["dark"])], tmp_path, split=None)
    assert m["primary_score"] == "knn"
    assert all(np.isfinite(v["auc"]) for k, v in m["signals"]["dark"].items() if k != "path")
