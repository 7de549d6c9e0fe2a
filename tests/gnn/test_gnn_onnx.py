"""ONNX export of the GNN chain's networks: parity with torch on the real TrackML event,
dynamic axes, ``GNNChain(backend="onnx")`` and ``lhcml export onnx``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lhcml.errors import ConfigError
from lhcml.gnn.pipeline import DEFAULT_MODEL_DIR, GNNChain

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "chain.yaml").is_file(), reason="no shipped GNN model set"
)
runner = CliRunner()


@pytest.fixture(scope="module")
def real_graph(trackml_prefix: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Node features and module-map edges of the real event (the chain's own inputs)."""
    from lhcml.gnn.features import compact, event_nodes
    from lhcml.gnn.graph_construction.module_map import translate_modules
    from lhcml.io import read_detectors, read_event

    event = read_event(trackml_prefix, parts=["hits"])
    det = read_detectors(trackml_prefix.parent / "detectors.csv.gz")
    chain = GNNChain(threads=1)
    nodes = event_nodes(event, use_cells=chain.use_cells, detectors=det)
    edges = chain.module_map.build_edges(translate_modules(event.hits, det, chain.centres))
    return compact(torch.from_numpy(nodes.x), torch.from_numpy(edges))


@pytest.mark.parametrize("name", ["edge_classifier", "metric_learning"])
def test_onnx_matches_torch_on_real_inputs(
    name: str, real_graph: tuple[torch.Tensor, torch.Tensor]
) -> None:
    from lhcml.gnn.files import load_model
    from lhcml.gnn.onnx import OnnxEdgeModel, to_onnx

    model, _ = load_model(DEFAULT_MODEL_DIR / f"{name}.pt")
    session = OnnxEdgeModel(to_onnx(model), threads=2)
    x, edge_index = real_graph
    inputs = (x, edge_index) if name == "edge_classifier" else (x,)
    with torch.no_grad():
        ref = model(*inputs)  # the fused CPU path for the classifier: what reconstruct runs
    out = session(*inputs)
    assert out.shape == ref.shape
    assert out.shape[0] == (edge_index.shape[1] if name == "edge_classifier" else x.shape[0])
    assert float((out - ref).abs().max()) < 1e-4
    # Dynamic axes: a tenth of the edges (or hits) runs through the same file.
    part = (x, edge_index[:, ::10]) if name == "edge_classifier" else (x[::10],)
    with torch.no_grad():
        np.testing.assert_allclose(session(*part).numpy(), model(*part).numpy(), atol=1e-4)


def test_edge_sums_do_not_race_with_threads() -> None:
    # Every node of in-degree > 1 repeats an index of the message-passing ScatterND; with
    # several ONNX Runtime threads its kernel raced (logit errors up to 3.6), so such
    # models run on one thread whatever is asked.
    from lhcml.gnn.files import load_model
    from lhcml.gnn.onnx import OnnxEdgeModel, example_inputs, to_onnx

    model, _ = load_model(DEFAULT_MODEL_DIR / "edge_classifier.pt")
    session = OnnxEdgeModel(to_onnx(model), threads=4)
    assert session.session.get_session_options().intra_op_num_threads == 1
    x, edge_index = example_inputs(model, 3000, 20000)  # ~7 edges into each node
    model.fused = False
    with torch.no_grad():
        ref = model(x, edge_index)
    assert float((session(x, edge_index) - ref).abs().max()) < 1e-4


def test_onnx_backend_gives_the_same_tracks(trackml_prefix: Path) -> None:
    from lhcml.io import read_detectors, read_event
    from lhcml.metrics.tracking import FiducialSelection, tracking_performance

    event = read_event(trackml_prefix)
    det = read_detectors(trackml_prefix.parent / "detectors.csv.gz")
    fid = FiducialSelection(pt_min=1.0, min_hits=5)
    perf = {}
    tracks = {}
    for backend in ("torch", "onnx"):
        # float32 products: the ONNX graph's arithmetic (auto may pick bfloat16).
        chain = GNNChain(threads=1, backend=backend, precision="float32")
        res = chain.reconstruct(event, detectors=det)
        tracks[backend] = res.tracks["track_id"].to_numpy()
        perf[backend] = tracking_performance(res.tracks, event.truth, event.particles, fiducial=fid)
    # Scores agree to 1e-4: at most a few edges near the cut may flip.
    assert np.mean(tracks["torch"] == tracks["onnx"]) > 0.995
    assert perf["onnx"].efficiency.k == perf["torch"].efficiency.k


def test_export_command_writes_a_checked_file(tmp_path: Path) -> None:
    from lhcml.cli.main import app

    out = tmp_path / "ec.onnx"
    res = runner.invoke(app, ["export", "onnx", "edge_classifier", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1e6 and "max |diff|" in res.output
    res = runner.invoke(app, ["export", "onnx", "edge_filter"])
    assert res.exit_code == 2 and "has no edge_filter" in res.output
    res = runner.invoke(app, ["export", "onnx", str(tmp_path / "missing.pt")])
    assert res.exit_code == 2 and "not found" in res.output


def test_a_model_set_uses_its_exported_file(tmp_path: Path) -> None:
    import shutil

    from lhcml.cli.main import app

    models = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, models)
    res = runner.invoke(app, ["export", "onnx", str(models / "edge_classifier.pt")])
    assert res.exit_code == 0, res.output
    chain = GNNChain(models, backend="onnx")
    assert chain.gnn.source == models / "edge_classifier.onnx"
    # Retrained weights (newer than the file): the stale file is not used.
    (models / "edge_classifier.pt").touch()
    assert GNNChain(models, backend="onnx").gnn.source is None
    with pytest.raises(ConfigError, match="--backend"):
        GNNChain(models, backend="tensorrt")
