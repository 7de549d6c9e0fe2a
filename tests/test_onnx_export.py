"""``lhcml export onnx`` for every kind of shipped network, and the TrackFormer / ParT
exports' parity with torch on realistic inputs (the GNN chain's: tests/gnn/test_gnn_onnx.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from shipped_outputs import seeded_jets
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
runner = CliRunner()


@pytest.mark.parametrize("name", ["metric_learning", "trackformer", "part"])
def test_export_command_for_every_kind(name: str, tmp_path: Path) -> None:
    from lhcml.cli.main import app

    out = tmp_path / f"{name}.onnx"
    res = runner.invoke(app, ["export", "onnx", name, "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert out.is_file() and text.count("max |diff|") == 2


def test_export_refuses_what_it_cannot_export(tmp_path: Path) -> None:
    from lhcml.cli.main import app

    (tmp_path / "x.txt").write_text("no model")
    for target, message in (
        (tmp_path / "x.txt", "not an lhcml model"),
        (tmp_path / "missing", "not found"),
    ):
        res = runner.invoke(app, ["export", "onnx", str(target)])
        assert res.exit_code == 2 and message in " ".join(res.output.split())
    res = runner.invoke(app, ["export", "onnx", "part", "--out", str(tmp_path / "p.bin")])
    assert res.exit_code == 2 and "must end in .onnx" in res.output


def test_trackformer_onnx_on_real_candidates(trackml_prefix: Path) -> None:
    import lhcml.fitting
    from lhcml.fitting.candidates import truth_candidates
    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.dataset import encode, length_buckets
    from lhcml.fitting.onnx import onnx_signature
    from lhcml.io import read_event
    from lhcml.portable.onnx import OnnxModule

    model, features, _ = load_model(Path(lhcml.fitting.__file__).parent / "models" / "default")
    sig = onnx_signature(model)
    session = OnnxModule(sig.export(), threads=1)
    enc = encode(truth_candidates(read_event(trackml_prefix)), features)
    n = 0
    for batch in length_buckets(enc, 256):  # every candidate length of the event
        inputs = (batch["hits"], batch["detector_id"], batch["global"])
        with torch.no_grad():
            ref = sig.module(*inputs)
        for out, r in zip(session.run(*inputs), ref, strict=True):
            assert out.shape == tuple(r.shape)
            assert np.abs(out - r.numpy()).max() < 1e-4
        n += len(batch["index"])
    assert n == len(enc.lengths) > 50


def test_part_onnx_on_jets_of_every_size() -> None:
    from lhcml.jets.models import SHIPPED_MODEL_DIR
    from lhcml.jets.onnx import onnx_signature
    from lhcml.jets.training import load_model
    from lhcml.portable.onnx import OnnxModule

    model, cfg = load_model(SHIPPED_MODEL_DIR)
    sig = onnx_signature(model)
    session = OnnxModule(sig.export())
    inputs = seeded_jets(cfg)  # as the shipped-output check draws them
    n_jets = len(inputs[0])
    with torch.no_grad():
        ref = model(*inputs)  # the sparse pair path with trimming: what evaluation runs
    out = session.run(*inputs)[0]
    assert out.shape == (n_jets, 2)
    assert np.abs(out - ref.numpy()).max() < 1e-4
    # Fewer jets and a shorter padding length run through the same file.
    short = tuple(t[:5, :40] for t in inputs)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(*short)[0], model(*short).numpy(), atol=1e-4)


def test_fit_infer_onnx_backend_gives_the_torch_fits(trackml_prefix: Path, tmp_path: Path) -> None:
    import pandas as pd

    from lhcml.cli.main import app

    tables = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        args = ["fit", "infer", str(trackml_prefix.parent), "--out", str(out)]
        res = runner.invoke(app, [*args, "--backend", backend])
        assert res.exit_code == 0, res.output
        tables[backend] = pd.read_csv(out / "event000000001-tracks.csv")
        sub = pd.read_csv(out / "event000000001-submission.csv")
        tables[f"{backend}_sub"] = sub
    a, b = tables["torch"], tables["onnx"]
    assert len(a) == len(b) > 50 and list(a.columns) == list(b.columns)
    assert tables["torch_sub"].equals(tables["onnx_sub"])  # the same cleaning decisions
    num = a.select_dtypes("number").columns
    assert float((a[num] - b[num]).abs().to_numpy().max()) < 1e-3
