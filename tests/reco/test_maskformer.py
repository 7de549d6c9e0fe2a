"""The MaskFormer finder: attention, matching, wedges, assignment, config, end to end."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from lhcml.data.event import Event
from lhcml.errors import ConfigError, InputError
from lhcml.reco.maskformer.config import InferenceConfig, config_from_dict, load_config
from lhcml.reco.maskformer.data import TARGET, prepare_event, track_targets, wedges, wrap
from lhcml.reco.maskformer.infer import MaskFormerFinder, assign_wedge
from lhcml.reco.maskformer.matching import LossWeights, cost_matrix, maskformer_loss, match
from lhcml.reco.maskformer.model import HitFilter, MaskFormer, window_attention

TINY = Path(__file__).resolve().parents[2] / "experiments" / "maskformer" / "tiny.yaml"
RADII = np.array([40.0, 80.0, 120.0, 170.0, 230.0, 300.0])


def helix_event(event_id: int, n: int = 40, seed: int = 0) -> Event:
    """Helices from the beam line, half of them below the 1 GeV target threshold."""
    rng = np.random.default_rng(seed)
    pt = np.where(np.arange(n) % 2 == 0, rng.uniform(1.5, 8, n), rng.uniform(0.3, 0.8, n))
    q = rng.choice([-1, 1], n)
    phi0 = rng.uniform(-np.pi, np.pi, n)
    eta = rng.uniform(-1, 1, n)
    radius = pt / (0.299792458e-3 * 2.0)
    turn = np.arcsin(np.minimum(RADII[None] / (2 * radius[:, None]), 1.0))
    phi = wrap(phi0[:, None] - q[:, None] * turn)
    z = 2 * radius[:, None] * turn * np.sinh(eta)[:, None]
    x, y = (RADII * np.cos(phi)).ravel(), (RADII * np.sin(phi)).ravel()
    m = x.size
    hits = pd.DataFrame(
        {
            "hit_id": np.arange(1, m + 1),
            "x": x,
            "y": y,
            "z": z.ravel(),
            "volume_id": 8,
            "layer_id": np.tile(2 * np.arange(1, 7), n),
            "module_id": 1,
        }
    )
    truth = pd.DataFrame(
        {"hit_id": hits["hit_id"], "particle_id": np.repeat(np.arange(1, n + 1), 6)}
    )
    truth["weight"] = 1.0 / m
    for c, s in (("tx", "x"), ("ty", "y"), ("tz", "z")):
        truth[c] = hits[s]
    truth[["tpx", "tpy", "tpz"]] = 0.0
    particles = pd.DataFrame(
        {
            "particle_id": np.arange(1, n + 1),
            "vx": 0.0,
            "vy": 0.0,
            "vz": 0.0,
            "px": pt * np.cos(phi0),
            "py": pt * np.sin(phi0),
            "pz": pt * np.sinh(eta),
            "q": q,
            "nhits": 6,
            "particle_type": 211,
            "primary": True,
            "prod_r": 0.0,
        }
    )
    return Event(event_id, hits, particles=particles, truth=truth)


def test_window_attention_is_full_attention_over_three_blocks() -> None:
    torch.manual_seed(0)
    h, n, d, w = 2, 40, 4, 8
    q, k, v = (torch.randn(h, n, d) for _ in range(3))
    out = window_attention(q, k, v, w)
    # Hit 20 sits in block 2 (hits 16-23): it sees blocks 1-3, hits 8-31.
    ref = F.scaled_dot_product_attention(q[:, 20:21], k[:, 8:32], v[:, 8:32])
    assert torch.allclose(out[:, 20:21], ref, atol=1e-6)
    # Circular: hit 0 sees the last block (32-39) and blocks 0-1 (0-15).
    ctx = torch.cat([torch.arange(32, 40), torch.arange(0, 16)])
    ref0 = F.scaled_dot_product_attention(q[:, :1], k[:, ctx], v[:, ctx])
    assert torch.allclose(out[:, :1], ref0, atol=1e-6)
    # Short sequences: plain full attention.
    full = F.scaled_dot_product_attention(q[:, :20], k[:, :20], v[:, :20])
    assert torch.allclose(window_attention(q[:, :20], k[:, :20], v[:, :20], w), full)


def test_window_attention_pads_a_partial_last_block_with_real_hits() -> None:
    torch.manual_seed(1)
    q, k, v = (torch.randn(1, 30, 4) for _ in range(3))
    out = window_attention(q, k, v, 8)  # blocks 0-7, ..., 24-29 + hits 0, 1 again
    assert out.shape == (1, 30, 4) and torch.isfinite(out).all()
    ctx = torch.arange(8, 30)  # hit 20 (block 2): blocks 1-3 = 8..29 and padded 0, 1
    ctx = torch.cat([ctx, torch.tensor([0, 1])])
    ref = F.scaled_dot_product_attention(q[:, 20:21], k[:, ctx], v[:, ctx])
    assert torch.allclose(out[:, 20:21], ref, atol=1e-6)


def test_matching_pairs_each_track_with_its_query() -> None:
    # Query 2 predicts track 0's hits, query 0 track 1's; query 1 is empty.
    targets = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.float32)
    masks = torch.full((3, 5), -8.0)
    masks[2, :2] = 8.0
    masks[0, 2:] = 8.0
    cls = torch.tensor([3.0, -3.0, 3.0])
    rows, cols = match(cls, masks, targets, LossWeights())
    assert dict(zip(rows.tolist(), cols.tolist(), strict=True)) == {0: 1, 2: 0}
    # The cost by hand: BCE = mean softplus(l) - y l over hits, dice with +1 smoothing.
    c = cost_matrix(cls, masks, targets, LossWeights(cls=1, bce=1, dice=1))
    p = masks[2].sigmoid()
    bce = F.binary_cross_entropy_with_logits(masks[2], targets[0])
    dice = 1 - (2 * (p * targets[0]).sum() + 1) / (p.sum() + 2 + 1)
    assert c[2, 0].item() == pytest.approx((F.softplus(-cls[2]) + bce + dice).item(), rel=1e-5)
    # A perfect prediction costs less, and learns less, than a shuffled one.
    good = maskformer_loss([(cls, masks)], targets, LossWeights())["loss"]
    bad = maskformer_loss([(cls, masks.roll(1, dims=1))], targets, LossWeights())["loss"]
    assert good < bad


def test_maskformer_learns_to_separate_two_tracks() -> None:
    torch.manual_seed(0)
    net = MaskFormer(5, dim=16, encoder_layers=1, decoder_layers=2, heads=2, queries=4)
    x = torch.randn(12, 5)
    targets = torch.zeros(2, 12)
    targets[0, :6] = 1
    targets[1, 6:10] = 1
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    w = LossWeights()
    first = maskformer_loss(net(x), targets, w)["loss"].item()
    for _ in range(150):
        opt.zero_grad()
        loss = maskformer_loss(net(x), targets, w)["loss"]
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    cls, masks = net(x)[-1]
    rows, cols = match(cls, masks, targets, w)
    for r, c in zip(rows, cols, strict=True):
        assert torch.equal(masks[r] > 0, targets[c] > 0)
        assert cls[r] > 0
    others = sorted(set(range(4)) - set(rows.tolist()))
    assert (cls[others] < 0).all()


def test_wedge_cores_tile_the_circle_once() -> None:
    phi = np.random.default_rng(0).uniform(-np.pi, np.pi, 5000)
    ws = wedges(phi, 8, 0.35)
    cores = np.zeros(len(phi), int)
    for w in ws:
        cores[w.index[w.core]] += 1
        assert np.all(np.diff(w.rel_phi) >= 0)
        assert np.abs(w.rel_phi).max() <= np.pi / 8 + 0.35
    assert np.all(cores == 1)


def test_prepare_event_labels_target_hits() -> None:
    event = helix_event(3)
    ev = prepare_event(event)
    assert np.all(np.diff(ev.phi) >= 0)
    assert ev.target is not None and ev.particle_id is not None
    # Even particles are 1.5-8 GeV (targets), odd ones 0.3-0.8 GeV: 20 x 6 target hits.
    assert ev.target.sum() == 120
    assert set(np.unique(ev.particle_id[ev.target]) % 2) == {1}  # ids 1, 3, ... = even rows
    masks, _ = track_targets(ev.particle_id, ev.target, TARGET.min_hits)
    assert masks.shape == (20, len(ev)) and np.all(masks.sum(1) == 6)


def test_assign_wedge_keeps_tracks_whose_innermost_hit_is_in_the_core() -> None:
    r = np.array([30.0, 60, 90, 120, 35, 70, 105, 140])
    core = np.array([True, True, True, True, False, True, True, True])
    cls = np.array([4.0, 4.0, -4.0])  # query 2 is no track
    masks = np.full((3, 8), -5.0)
    masks[0, :4] = 5.0
    masks[1, 4:] = 5.0  # innermost hit (r = 35) outside the core: another wedge's track
    masks[2, :] = 9.0
    owner, prob = assign_wedge(cls, masks, r, core, InferenceConfig(min_hits=3))
    assert owner.tolist() == [0, 0, 0, 0, -1, -1, -1, -1]
    assert np.all(prob[:4] > 0.99)
    owner, _ = assign_wedge(cls, masks, r, core, InferenceConfig(min_hits=5))
    assert np.all(owner == -1)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section"):
        config_from_dict({"trainer": {}})
    with pytest.raises(ConfigError, match=r"tracker: unknown key.*'depth'"):
        config_from_dict({"tracker": {"depth": 3}})
    with pytest.raises(ConfigError, match="wedges: unknown key"):
        config_from_dict({"wedges": {"n": 3}})
    with pytest.raises(ConfigError, match="tracker_hits"):
        config_from_dict({"data": {"tracker_hits": "oracle"}})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    cfg = load_config(TINY)
    assert HitFilter(23, **cfg.filter) is not None and cfg.wedges.n_wedges == 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny config trained end to end through the CLI on helix events."""
    from lhcml.cli.main import app
    from lhcml.io import write_event

    base = tmp_path_factory.mktemp("maskformer")
    for i in range(3):
        write_event(helix_event(i, seed=i), base / "train")
    write_event(helix_event(10, seed=10), base / "val")
    torch.set_num_threads(1)
    result = CliRunner().invoke(
        app,
        [
            "maskformer", "train", str(TINY), "--out", str(base / "model"),
            "--train", str(base / "train"), "--val", str(base / "val"), "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return base


def test_train_writes_the_model_folder(trained: Path) -> None:
    import json

    model = trained / "model"
    assert {"config.yaml", "filter.pt", "tracker.pt", "metrics.json"} <= {
        p.name for p in model.iterdir()
    }
    metrics = json.loads((model / "metrics.json").read_text())
    val = metrics["filter"]["val"]
    # The cut is chosen to keep 98 % of the target hits of the validation event.
    assert val["efficiency"] == pytest.approx(0.98, abs=0.02)
    assert metrics["val_tracking"]["events"][0]["double_majority"]["efficiency"]["n"] == 20
    cfg = load_config(model / "config.yaml")
    assert cfg.inference.filter_cut == pytest.approx(val["cut"])


def test_reconstruct_with_the_maskformer_finder(trained: Path) -> None:
    from lhcml.cli.main import app
    from lhcml.metrics.evaluate import read_submission

    out = trained / "subs"
    result = CliRunner().invoke(
        app,
        ["reconstruct", str(trained / "val"), "--finder", "maskformer",
         "--model", str(trained / "model"), "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sub = read_submission(next(out.glob("*submission.csv")))
    assert len(sub) == 240 and set(sub.columns) >= {"hit_id", "track_id"}


def test_too_many_hits_in_a_wedge_is_refused(trained: Path) -> None:
    finder = MaskFormerFinder(
        trained / "model", inference=InferenceConfig(filter_cut=1e-6, max_hits=10)
    )
    with pytest.raises(InputError, match=r"inference\.max_hits = 10"):
        finder.reconstruct(helix_event(11, seed=11))


def test_no_hit_after_the_filter_gives_an_empty_submission(
    trained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    finder = MaskFormerFinder(trained / "model", inference=InferenceConfig(filter_cut=1 - 1e-6))
    with caplog.at_level(logging.WARNING):
        result = finder.reconstruct(helix_event(12, seed=12))
    assert result.n_kept == 0 and (result.tracks["track_id"] == -1).all()
    assert len(result.tracks) == 240
    assert "kept no hit" in caplog.text


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no config\.yaml"):
        MaskFormerFinder(tmp_path)
    with pytest.raises(ConfigError, match="no MaskFormer model is shipped"):
        MaskFormerFinder()
