"""Parquet -> padded tensors: features by hand, padding, splits, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lhcml.errors import ConfigError, InputError
from lhcml.jets.dataset import PARTICLE_FEATURES, make_loader, read_jets, split_of


def test_batch_tensors_by_hand(samples: dict[str, Path]) -> None:
    data = read_jets([samples["qcd"], samples["top"]], ("qcd", "top"))
    t = pq.read_table(min(samples["top"].glob("*.parquet")))
    n_qcd = int((data.labels == 0).sum())
    assert len(data) == n_qcd + t.num_rows
    k = n_qcd + 1  # second top jet
    batch = data.batch([0, k])
    n = len(t.column("part_px")[1])
    assert batch["mask"][1].sum().item() == n
    assert batch["x"].shape == (2, batch["mask"].shape[1], len(PARTICLE_FEATURES))
    assert batch["label"].tolist() == [0, 1]
    px = np.asarray(t.column("part_px")[1].as_py())
    py = np.asarray(t.column("part_py")[1].as_py())
    e = np.asarray(t.column("part_energy")[1].as_py())
    np.testing.assert_allclose(batch["v"][1, :n, 0].numpy(), px, rtol=1e-6)
    np.testing.assert_allclose(batch["v"][1, :n, 3].numpy(), e, rtol=1e-6)
    # log pT, standardised as weaver's JetClass config: (log pT - 1.7) * 0.7.
    i = PARTICLE_FEATURES.index("part_pt_log")
    want = np.clip((np.log(np.hypot(px, py)) - 1.7) * 0.7, -5, 5)
    np.testing.assert_allclose(batch["x"][1, :n, i].numpy(), want, rtol=1e-5, atol=1e-5)
    i = PARTICLE_FEATURES.index("part_logerel")
    want = np.clip((np.log(e / t.column("jet_energy")[1].as_py()) + 4.7) * 0.7, -5, 5)
    np.testing.assert_allclose(batch["x"][1, :n, i].numpy(), want, rtol=1e-5, atol=1e-5)
    # Padding is zero.
    assert (batch["x"][~batch["mask"]] == 0).all() and (batch["v"][~batch["mask"]] == 0).all()


def test_truncation_and_cap(samples: dict[str, Path]) -> None:
    data = read_jets([samples["qcd"], samples["top"]], ("qcd", "top"), max_particles=10)
    assert data.lengths.max() == 10
    capped = read_jets([samples["qcd"], samples["top"]], ("qcd", "top"), max_jets_per_class=5)
    assert np.bincount(capped.labels).tolist() == [5, 5]
    only_top = read_jets([samples["qcd"], samples["top"], samples["w"]], ("qcd", "w"))
    assert set(only_top.labels.tolist()) == {0, 1}


def test_splits_disjoint_and_by_event(samples: dict[str, Path]) -> None:
    paths = [samples["qcd"], samples["top"]]
    parts = {s: read_jets(paths, ("qcd", "top"), split=s) for s in ("train", "val", "test")}
    total = read_jets(paths, ("qcd", "top"))
    assert sum(len(p) for p in parts.values()) == len(total)
    keys = {
        s: set(zip(p.labels.tolist(), p.event_id.tolist(), strict=True)) for s, p in parts.items()
    }
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"]
    # Fractions: a uniform hash.
    u = split_of(np.zeros(100000, np.int64), np.arange(100000), (0.8, 0.1, 0.1))
    assert np.bincount(u).tolist() == pytest.approx([80000, 10000, 10000], rel=0.02)


def test_loader_and_bad_input(samples: dict[str, Path], tmp_path: Path) -> None:
    data = read_jets([samples["qcd"], samples["top"]], ("qcd", "top"))
    batches = list(make_loader(data, 16, shuffle=True, seed=1))
    assert sum(len(b["label"]) for b in batches) == len(data)
    again = list(make_loader(data, 16, shuffle=True, seed=1))
    assert batches[0]["label"].tolist() == again[0]["label"].tolist()
    with pytest.raises(ConfigError, match="classes"):
        read_jets(samples["qcd"], ("qcd", "higgs"))
    with pytest.raises(InputError, match="no Parquet"):
        read_jets(tmp_path / "missing", ("qcd", "top"))
    bad = tmp_path / "bad.parquet"
    pq.write_table(pq.read_table(min(samples["qcd"].glob("*.parquet"))).drop(["part_px"]), bad)
    with pytest.raises(InputError, match=r"bad\.parquet"):
        read_jets(bad, ("qcd", "top"))
