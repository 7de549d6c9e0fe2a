"""Every stage end to end on the tiny config (a few gun events at <mu> = 2, one epoch) in a
temporary folder, the stage CLI, the in-memory chain and ``reconstruct --method gnn``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from lhcml.gnn.chain import train_chain
from lhcml.gnn.config import load_config
from lhcml.gnn.edge_classification.evaluate import efficiency_at_purity
from lhcml.gnn.features import truth_edges_found
from lhcml.gnn.files import list_graphs, load_graph

TINY = Path(__file__).resolve().parents[2] / "experiments" / "gnn" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("gnn-tiny")
    logs: list[str] = []
    metrics = train_chain(
        load_config(TINY), work, progress=False, export=work / "export", log=logs.append
    )
    return work, metrics


def cli() -> typer.Typer:
    """The gnn sub-app under lhcml's error-handling root group."""
    from lhcml.cli.gnn import gnn_app
    from lhcml.cli.main import _Group

    root = typer.Typer(cls=_Group)
    root.add_typer(gnn_app, name="gnn")

    @root.callback()
    def _main() -> None:
        """root"""

    return root


def test_every_stage_writes_its_outputs(tiny_run: tuple[Path, dict]) -> None:
    work, metrics = tiny_run
    for part in ("module_map", "metric_learning", "edge_filter", "edge_classifier", "chain_test"):
        assert part in metrics, part
    for split in ("train", "val", "test"):
        assert list_graphs(work / "module_map" / "graphs" / split)
    export = work / "export"
    for name in ("chain.yaml", "metrics.json", "module_map.parquet", "edge_classifier.pt"):
        assert (export / name).is_file(), name
    saved = json.loads((export / "metrics.json").read_text())
    assert saved["module_map"]["events"] == 1
    at = {r["purity_min"]: r for r in saved["edge_classifier"]["at_purity"]}
    assert set(at) == {0.9, 0.95} and at[0.95]["stage_efficiency"] <= at[0.9]["stage_efficiency"]
    # The efficiency is a share of the target truth edges, counted by hand here.
    g = load_graph(list_graphs(work / "module_map" / "graphs" / "test")[0])
    found = truth_edges_found(g.edge_index, g.truth_edge_index, g.n_nodes)
    eff = (found & g.truth_target).sum() / g.truth_target.sum()
    assert metrics["module_map"]["efficiency"] == pytest.approx(eff)
    assert 0.2 < eff <= 1.0


def test_efficiency_at_purity_by_hand() -> None:
    # Scores best first: T T F T(tie) F(tie) T F; targets: the first, second and last true.
    scores = np.array([0.9, 0.8, 0.7, 0.5, 0.5, 0.3, 0.1])
    y = np.array([1, 1, 0, 1, 0, 1, 0], bool)
    target = np.array([1, 1, 0, 0, 0, 1, 0], bool)
    # Purity >= 0.6: cut 0.3 keeps 6 edges, 4 true (0.67); all 3 targets.
    assert efficiency_at_purity(scores, y, target, 0.6) == pytest.approx((0.3, 1.0, 4 / 6))
    # Purity >= 0.7: the tie at 0.5 goes in or out as a whole: cut 0.8 (2/2), not 0.5 (3/5).
    assert efficiency_at_purity(scores, y, target, 0.7) == pytest.approx((0.8, 2 / 3, 1.0))
    cut, eff, pur = efficiency_at_purity(scores, ~y, target, 0.99)
    assert cut == float("inf") and eff == 0.0 and np.isnan(pur)


def test_filter_keeps_a_subset_and_classifier_scores_all(tiny_run: tuple[Path, dict]) -> None:
    work, _ = tiny_run
    before = load_graph(list_graphs(work / "module_map" / "graphs" / "test")[0])
    after = load_graph(list_graphs(work / "edge_filter" / "graphs" / "test")[0])
    scored = load_graph(list_graphs(work / "edge_classifier" / "graphs" / "test")[0])
    pairs = set(map(tuple, before.edge_index.T.tolist()))
    assert set(map(tuple, after.edge_index.T.tolist())) <= pairs
    assert after.n_edges <= before.n_edges
    np.testing.assert_array_equal(scored.edge_index, after.edge_index)
    assert scored.scores is not None and ((scored.scores >= 0) & (scored.scores <= 1)).all()
    # Labels follow the edges through the stages.
    lookup = dict(zip(map(tuple, before.edge_index.T.tolist()), before.y, strict=True))
    assert [lookup[e] for e in map(tuple, after.edge_index.T.tolist())] == after.y.tolist()


def test_submissions_assign_every_hit_once(tiny_run: tuple[Path, dict]) -> None:
    from lhcml.io import read_event

    work, metrics = tiny_run
    sub = pd.read_csv(work / "chain" / "test" / "submissions" / "event000000200-submission.csv")
    event = read_event(work / "events" / "test", 200)
    assert sorted(sub["hit_id"]) == sorted(event.hits["hit_id"])
    tid = sub["track_id"].to_numpy()
    sizes = np.bincount(tid[tid >= 0])
    assert (sizes[sizes > 0] >= 3).all()  # min_hits 3; shorter groups are unassigned (-1)
    chain = metrics["chain_test"]
    assert set(chain["seconds_per_event"]) >= {"graph_construction", "edge_classifier", "total"}
    assert 0.0 <= chain["atlas"]["efficiency"]["value"] <= 1.0


def test_resume_skips_finished_steps(tiny_run: tuple[Path, dict]) -> None:
    work, _ = tiny_run
    logs: list[str] = []
    train_chain(load_config(TINY), work, progress=False, log=logs.append, until="edge_filter")
    assert logs and all("skipped" in line for line in logs)


def test_stage_commands(tiny_run: tuple[Path, dict], tmp_path: Path) -> None:
    work, _ = tiny_run
    runner = CliRunner()
    app = cli()
    events = work / "events" / "test"
    steps = [
        [
            "module-map",
            "infer",
            "-m",
            str(work / "module_map"),
            "-e",
            str(events),
            "-o",
            str(tmp_path / "g"),
            "-q",
        ],
        ["module-map", "evaluate", str(tmp_path / "g"), "-o", str(tmp_path / "g.json")],
        [
            "edge-filter",
            "infer",
            "-m",
            str(work / "edge_filter" / "edge_filter.pt"),
            "-g",
            str(tmp_path / "g"),
            "-o",
            str(tmp_path / "f"),
            "-q",
            "--threads",
            "1",
        ],
        [
            "edge-classifier",
            "infer",
            "-m",
            str(work / "edge_classifier" / "edge_classifier.pt"),
            "-g",
            str(tmp_path / "f"),
            "-o",
            str(tmp_path / "s"),
            "-q",
            "--threads",
            "1",
        ],
        ["edge-classifier", "evaluate", str(tmp_path / "s"), "-o", str(tmp_path / "ec")],
        [
            "track-building",
            "infer",
            "-g",
            str(tmp_path / "s"),
            "-o",
            str(tmp_path / "sub"),
            "--method",
            "junction",
            "-q",
        ],
        [
            "track-building",
            "evaluate",
            "-e",
            str(events),
            "-s",
            str(tmp_path / "sub"),
            "-o",
            str(tmp_path / "te"),
        ],
    ]
    for args in steps:
        result = runner.invoke(app, ["gnn", *args])
        assert result.exit_code == 0, (args, result.output)
    assert json.loads((tmp_path / "g.json").read_text())["events"] == 1
    assert (tmp_path / "ec" / "roc.png").is_file()
    assert "trackml_score" in json.loads((tmp_path / "te" / "tracks.json").read_text())


def test_stage_commands_report_user_errors_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli(), ["gnn", "module-map", "evaluate", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "graph directory not found" in result.output and "Traceback" not in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("edge_filter:\n  model: {hidden: 8, wings: 2}\n")
    (tmp_path / "g").mkdir()
    result = runner.invoke(
        cli(),
        [
            "gnn",
            "edge-filter",
            "train",
            "--train",
            str(tmp_path / "g"),
            "--val",
            str(tmp_path / "g"),
            "-o",
            str(tmp_path / "m.pt"),
            "-c",
            str(bad),
        ],
    )
    assert result.exit_code == 2, result.output


def test_reconstruct_with_the_gnn_chain(tiny_run: tuple[Path, dict], tmp_path: Path) -> None:
    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import read_event
    from lhcml.reco.run import reconstruct_events

    work, _ = tiny_run
    res = reconstruct_events(
        work / "events" / "test", tmp_path, method="gnn", model_dir=work / "export", progress=False
    )
    assert len(res) == 1 and res[0].n_tracks > 0
    sub = pd.read_csv(res[0].path)
    # Same tracks as the chain on the event without truth and cells.
    event = read_event(work / "events" / "test", 200, parts=["hits"])
    direct = GNNChain(work / "export").reconstruct(event).tracks
    np.testing.assert_array_equal(direct["track_id"].to_numpy(), sub["track_id"].to_numpy())
    from lhcml.errors import ConfigError

    with pytest.raises(ConfigError, match="method"):
        reconstruct_events(work / "events" / "test", tmp_path, method="magic")
