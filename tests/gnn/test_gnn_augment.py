"""Derived training samples (``lhcml.gnn.augment``): reduced copies of an event sample."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from lhcml.data.subset import BARREL_VOLUMES
from lhcml.errors import ConfigError
from lhcml.gnn.augment import derive_sample, subset_config


@pytest.fixture(scope="module")
def source(trackml_prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lhcml.io import read_event, write_event

    event = read_event(trackml_prefix)
    out = tmp_path_factory.mktemp("source")
    for eid in (1, 2):
        write_event(dataclasses.replace(event, event_id=eid), out)
    return out


def test_ranges_are_drawn_per_event_within_bounds() -> None:
    spec = {"volumes": "barrel", "density": [0.05, 0.5], "noise_fraction": [0.0, 0.2]}
    configs = [subset_config(spec, seed) for seed in range(200)]
    dens = np.array([c.density for c in configs])
    noise = np.array([c.noise_fraction for c in configs])
    assert configs[0].volumes == BARREL_VOLUMES
    assert dens.min() >= 0.05 and dens.max() <= 0.5 and noise.min() >= 0 and noise.max() <= 0.2
    # Log-uniform: the median density is the geometric mean of the bounds (0.158).
    assert abs(np.median(dens) - np.sqrt(0.05 * 0.5)) < 0.03
    assert subset_config(spec, 3) == subset_config(spec, 3)  # seeded
    assert subset_config({"density": 0.2}, 0).density == 0.2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"density": [0.5, 0.1]}, "low <= high"),
        ({"density": [0.0, 0.1]}, "0 < low"),
        ({"noise_fraction": [0.1, 0.2, 0.3]}, "a value or"),
        ({"volume": "barrel"}, "unknown key"),
    ],
)
def test_bad_specs_name_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        subset_config(spec, 0)


def test_derive_sample_writes_reduced_copies_and_resumes(source: Path, tmp_path: Path) -> None:
    from lhcml.io import list_events, read_event

    spec = {"volumes": "barrel", "double_hits": False, "density": [0.2, 0.6]}
    out = tmp_path / "barrel"
    assert derive_sample(source, out, spec, name="barrel", first_event=100, seed=7) == 2
    assert list_events(out) == [100, 101]
    whole = read_event(source, 1)
    copies = [read_event(out, eid) for eid in (100, 101)]
    for i, ev in enumerate(copies):
        assert set(ev.hits["volume_id"]) <= set(BARREL_VOLUMES)
        assert ev.meta["derived_from"]["event_id"] == i + 1
        # At most one hit per particle and layer once double hits are removed.
        truth = ev.truth.merge(ev.hits[["hit_id", "volume_id", "layer_id"]], on="hit_id")
        real = truth[truth["particle_id"] != 0]
        assert not real.duplicated(["particle_id", "volume_id", "layer_id"]).any()
        # The kept share of particles follows the drawn density.
        drawn = subset_config(spec, 7 + i).density
        kept = real["particle_id"].nunique()
        barrel = whole.truth.merge(whole.hits, on="hit_id")
        n_barrel = barrel.loc[
            barrel["volume_id"].isin(BARREL_VOLUMES) & (barrel["particle_id"] != 0), "particle_id"
        ].nunique()
        assert abs(kept / n_barrel - drawn) < 0.1
    assert len(copies[0].hits) != len(copies[1].hits)  # two draws
    # Finished copies are kept (resume); asking for more events than the source has fails.
    assert derive_sample(source, out, spec, name="barrel", first_event=100, seed=7) == 0
    with pytest.raises(ConfigError, match="asks for 5 events"):
        derive_sample(source, tmp_path / "x", spec, name="x", events=5)
    with pytest.raises(ConfigError, match="own source"):
        derive_sample(source, source, spec, name="x")
