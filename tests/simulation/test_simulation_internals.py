"""The shortcuts of the ACTS read-out agree with the slow, general way.

``lhcml.simulation._acts_elements`` avoids per-item Python loops where ACTS' own order
tells the answer (measurement = sim hit without merging, generator barcodes, space
point -> measurement); these tests run both ways on a small pile-up event.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pytest

from lhcml.data.validate import validate_event
from lhcml.simulation import SimulationConfig, Simulator
from lhcml.simulation import _acts_elements as el


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Wrap the shortcuts so each call is compared with the general way."""
    calls = {"measurements": 0, "barcodes": 0, "spacepoints": 0}
    fast_rows, fast_barcodes, fast_sp = (
        el.measurement_rows,
        el.particle_barcodes,
        el.spacepoint_measurements,
    )

    def rows(msh: Any, n_meas: int, n_sim: int) -> np.ndarray:
        got = fast_rows(msh, n_meas, n_sim)
        pairs = np.array(list(itertools.chain.from_iterable(msh))).reshape(-1, 2)
        first = {}
        for m, h in pairs:
            first[m] = min(first.get(m, h), h)
        assert np.array_equal(got, [first[m] for m in range(n_meas)])
        calls["measurements"] += 1
        return got

    def barcodes(particles: Any, pt: Any, gen: Any, rows_: np.ndarray, pmin: float) -> np.ndarray:
        got = fast_barcodes(particles, pt, gen, rows_, pmin)
        assert np.array_equal(got, el._read_barcodes(iter(particles), len(got)))
        calls["barcodes"] += 1
        return got

    def spacepoints(sp: Any, sp_xyz: np.ndarray, meas: np.ndarray, sel: np.ndarray) -> np.ndarray:
        got = fast_sp(sp, sp_xyz, meas, sel)
        slow = [el.ae.IndexSourceLink.fromSourceLink(next(iter(p.sourceLinks))).index() for p in sp]
        assert np.array_equal(got, slow)
        calls["spacepoints"] += 1
        return got

    monkeypatch.setattr(el, "measurement_rows", rows)
    monkeypatch.setattr(el, "particle_barcodes", barcodes)
    monkeypatch.setattr(el, "spacepoint_measurements", spacepoints)
    return calls


@pytest.mark.parametrize("merge", [False, True])
def test_shortcuts_match_the_general_way(checked: dict[str, int], merge: bool) -> None:
    base = SimulationConfig(process="ttbar", mu=3.0, seed=21)
    cfg = dataclasses.replace(base, detector=dataclasses.replace(base.detector, merge_hits=merge))
    (event,) = Simulator(cfg).events([1])
    assert checked == {"measurements": 1, "barcodes": 1, "spacepoints": 1}
    validate_event(event)
    # Non-primary particles (displaced decays, Fatras secondaries) are exercised too.
    assert (~event.particles["primary"]).sum() > 0
    assert event.particles["nhits"].sum() == len(event.hits)
