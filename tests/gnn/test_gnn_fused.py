"""Fused CPU inference of the Interaction Network equals the torch (training) path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gnn_toys import random_graph

from lhcml.errors import ConfigError
from lhcml.gnn.edge_classification import fused
from lhcml.gnn.edge_classification.interaction_network import InteractionNetwork
from lhcml.gnn.edge_classification.train import init_weights
from lhcml.gnn.features import compact
from lhcml.gnn.files import save_model
from lhcml.gnn.lightning import EdgeClassifierModule, edge_weights


@pytest.mark.parametrize(
    ("layer_norm", "shared", "n_layers"), [(True, False, 2), (False, True, 3), (True, False, 1)]
)
@pytest.mark.parametrize("chunk", [7, 16384])
def test_fused_inference_equals_the_torch_path(
    layer_norm: bool, shared: bool, n_layers: int, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fused, "CHUNK", chunk)  # 7: many blocks, a short last one
    torch.manual_seed(0)
    net = InteractionNetwork(
        hidden=16, n_iterations=3, n_layers=n_layers, layer_norm=layer_norm, shared_weights=shared
    ).eval()
    # Non-trivial LayerNorm affine parameters, so a wrong gamma / beta shows.
    for p in net.parameters():
        p.data += 0.3 * torch.randn_like(p)
    x, ei = random_graph()
    with torch.no_grad():
        out = net(x, ei)
        net.fused = False
        ref = net(x, ei)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert ref.std() > 0.005  # not a degenerate comparison


@pytest.mark.parametrize("n_layers", [1, 2, 3])
@pytest.mark.parametrize("layer_norm", [True, False])
def test_fused_node_encoder_equals_its_mlp(
    n_layers: int, layer_norm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of 7 rows computed in place in the output; with an even number of hidden
    # layers the float32 result ends in the spare block and is copied back.
    from lhcml.gnn.mlp import make_mlp

    monkeypatch.setattr(fused, "CHUNK", 7)
    torch.manual_seed(1)
    mlp = make_mlp(4, 16, 16, n_layers, layer_norm=layer_norm, output_activation=True)
    for p in mlp.parameters():
        p.data += 0.3 * torch.randn_like(p)
    x = torch.randn(45, 4)
    with torch.no_grad():
        ref = mlp(x)
        out = fused.node_mlp(mlp, x)
        low = fused.node_mlp(mlp, x, precision="bfloat16")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert ref.std() > 0.1
    assert 0 < (low - ref).abs().max() < 0.1 if n_layers > 1 else (low - ref).abs().max() < 1e-5


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_bfloat16_products_stay_close_to_the_torch_path(n_layers: int) -> None:
    # Products of bfloat16 inputs (8-bit mantissa) with float32 sums: logits move by a
    # few 1e-2 at most (float32: 1e-5).
    torch.manual_seed(0)
    net = InteractionNetwork(hidden=32, n_iterations=4, n_layers=n_layers).eval()
    for p in net.parameters():
        p.data += 0.3 * torch.randn_like(p)
    x, ei = random_graph()
    with torch.no_grad():
        net.precision = "bfloat16"
        low = net(x, ei)
        again = net(x, ei)  # the reused workspace gives the same numbers
        net.fused = False
        ref = net(x, ei)
    torch.testing.assert_close(again, low, rtol=0, atol=0)
    diff = (low - ref).abs()
    assert ref.std() > 0.05  # not a degenerate comparison
    assert 0 < diff.max() < 0.05 and diff.mean() < 0.01  # logits


def test_bfloat16_bits_round_to_nearest_even_as_torch() -> None:
    v = torch.cat([torch.randn(10_000) * 100, torch.tensor([1.0 + 2**-8, 1.0 + 3 * 2**-8, -0.0])])
    bits = np.empty((1, v.numel()), np.uint16)
    empty = np.zeros((0, 0), np.uint16)
    row = v.reshape(1, -1).clone().abs()  # through _norm_relu: ReLU of |v| is |v|
    fused._norm_relu(
        row.numpy(),
        empty,
        np.zeros(v.numel(), np.float32),
        0,
        row.numpy()[0],
        row.numpy()[0],
        False,
        0.0,
        bits,
        True,
    )
    expected = v.abs().to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bits[0], expected)  # ties: 1 + 2^-8 -> 1, 1 + 3 2^-8 up


def test_precision_choice() -> None:
    assert fused.check_precision("auto") in fused.PRECISIONS
    assert fused.check_precision("float32") == "float32"
    with pytest.raises(ValueError, match="precision 'fp8' unknown"):
        fused.check_precision("fp8")
    from lhcml.gnn.pipeline import GNNChain

    with pytest.raises(ConfigError, match="--precision"):
        GNNChain(precision="half")


def test_fused_path_only_without_gradient() -> None:
    x = torch.zeros(3, 4)
    assert not fused.supported(x)  # grad enabled
    with torch.no_grad():
        assert fused.supported(x)
        assert not fused.supported(x.double())


def test_fused_mlp_refuses_other_layouts() -> None:
    from lhcml.gnn.mlp import make_mlp

    with pytest.raises(ValueError, match="activation after every layer"):
        fused.mlp_parts(make_mlp(8, 4, 1, 2))  # output layer not activated


def test_compact_drops_isolated_nodes_by_hand() -> None:
    x = torch.arange(6.0).reshape(6, 1)
    ei = torch.tensor([[4, 1, 4], [1, 5, 5]])
    xc, eic = compact(x, ei)
    assert xc.squeeze(1).tolist() == [1.0, 4.0, 5.0]
    assert eic.tolist() == [[1, 0, 1], [0, 2, 2]]


def test_cosine_schedule_and_bad_schedule() -> None:
    net = InteractionNetwork(hidden=8, n_iterations=1)
    with pytest.raises(ConfigError, match="lr_schedule"):
        EdgeClassifierModule(net, lr_schedule="linear")
    module = EdgeClassifierModule(net, lr=1.0, lr_schedule="cosine", lr_min=0.1)

    class _Trainer:
        estimated_stepping_batches = 4

    module._trainer = _Trainer()  # type: ignore[assignment]
    cfg = module.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    assert cfg["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1.0) and lrs[2] == pytest.approx(0.55)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_init_from_copies_weights_and_checks_the_config(tmp_path: Path) -> None:
    cfg = {"n_node_features": 4, "hidden": 8, "n_iterations": 2}
    torch.manual_seed(0)
    source = InteractionNetwork(**cfg)
    save_model(tmp_path / "ec.pt", source, cfg)
    torch.manual_seed(1)
    target = InteractionNetwork(**cfg)
    init_weights(target, cfg, tmp_path / "ec.pt", "edge_classifier.init_from")
    for a, b in zip(source.state_dict().values(), target.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError, match=r"edge_classifier\.init_from.*hidden"):
        init_weights(
            InteractionNetwork(4, hidden=16, n_iterations=2),
            {**cfg, "hidden": 16},
            tmp_path / "ec.pt",
            "edge_classifier.init_from",
        )
    with pytest.raises(ConfigError, match=r"edge_classifier\.init_from: model file not found"):
        init_weights(target, cfg, tmp_path / "missing.pt", "edge_classifier.init_from")


def test_pt_weighted_loss_by_hand() -> None:
    # Edges: target of pT 1 GeV, target of e^2 GeV, target below 1 GeV (floored), fake,
    # true non-target.
    graph = {
        "y": torch.tensor([1, 1, 1, 0, 1]),
        "target": torch.tensor([1, 1, 1, 0, 0]),
        "edge_pt": torch.tensor([1.0, float(torch.e**2), 0.5, 20.0, 30.0]),
    }
    y, w = edge_weights(graph, pos_weight=3.0, nontarget_weight=0.0, pt_weight=0.5)
    assert y.tolist() == [1, 1, 1, 0, 1]
    torch.testing.assert_close(w, torch.tensor([3.0, 6.0, 3.0, 1.0, 0.0]))
    _, w0 = edge_weights(graph, pos_weight=3.0)
    assert w0.tolist() == [3.0, 3.0, 3.0, 1.0, 0.0]
    # Vertex z: (vz / 100 mm)^2 capped at 4, on target edges only.
    graph["edge_vz"] = torch.tensor([0.0, -100.0, 500.0, 100.0, 100.0])
    _, wz = edge_weights(graph, pos_weight=3.0, vz_weight=0.5)
    torch.testing.assert_close(wz, torch.tensor([3.0, 4.5, 9.0, 1.0, 0.0]))
    with pytest.raises(ConfigError, match="pt_weight"):
        EdgeClassifierModule(InteractionNetwork(hidden=4, n_iterations=1), pt_weight=-1.0)
    with pytest.raises(ConfigError, match="vz_weight"):
        EdgeClassifierModule(InteractionNetwork(hidden=4, n_iterations=1), vz_weight=-1.0)


def test_wedge_steps_keep_the_edge_pt_with_its_edge() -> None:
    torch.manual_seed(0)
    n, e = 200, 3000
    x = torch.rand(n, 4) * 2 - 1
    ei = torch.randint(0, n, (2, e))
    pt = torch.rand(n) * 10
    graph = {
        "x": x,
        "edge_index": ei,
        "y": torch.ones(e, dtype=torch.bool),
        "target": torch.ones(e, dtype=torch.bool),
        "particle_pt": pt,
        "particle_vz": pt * 10,
    }
    module = EdgeClassifierModule(InteractionNetwork(hidden=4, n_iterations=1), max_edges=500)
    sub = module._maybe_subsample({**graph, "edge_pt": pt[ei[0]], "edge_vz": 10 * pt[ei[0]]})
    assert 0 < sub["edge_index"].shape[1] < e and "particle_pt" not in sub
    torch.testing.assert_close(sub["edge_vz"], 10 * sub["edge_pt"])
    # The wedge is in azimuth: each kept edge's pT is its (compacted) source's pT.
    kept_src_x = sub["x"][sub["edge_index"][0]]
    match = (x[ei[0]][None, :, :] == kept_src_x[:, None, :]).all(-1)
    src = match.float().argmax(1)
    torch.testing.assert_close(sub["edge_pt"], pt[ei[0][src]])
    # Without particle_pt in the graphs the weighted loss says what to do.
    weighted = EdgeClassifierModule(InteractionNetwork(hidden=4, n_iterations=1), pt_weight=1.0)
    weighted.log = lambda *a, **k: None  # type: ignore[method-assign]  # no Trainer here
    no_pt = {k: v for k, v in graph.items() if k != "particle_pt"}
    with pytest.raises(ConfigError, match="particle_pt"):
        weighted.training_step(no_pt, 0)
    loss = weighted.training_step(graph, 0)
    assert torch.isfinite(loss)
    by_vz = EdgeClassifierModule(InteractionNetwork(hidden=4, n_iterations=1), vz_weight=1.0)
    with pytest.raises(ConfigError, match="particle_vz"):
        by_vz.training_step({k: v for k, v in graph.items() if k != "particle_vz"}, 0)
