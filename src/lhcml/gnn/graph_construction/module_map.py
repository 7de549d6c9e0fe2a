"""Module map graph construction (the GNN4ITk default graph builder).

**Building** (:meth:`ModuleMap.fit`): from training events, every truth edge of a
selected particle (consecutive hits, see :func:`lhcml.gnn.features.truth_edges`) connects
a module ``m1`` (inner hit) to a module ``m2`` (outer hit). The map keeps every such
module pair with, for four doublet variables, the smallest and largest value seen:

- ``z0``: the doublet's line in (r, z) extrapolated to r = 0 [mm],
- ``dphi``: azimuth difference [rad],
- ``phi_slope``: ``dphi / dr`` [rad/mm],
- ``deta``: pseudorapidity difference.

Each window is widened by ``margin`` times its width plus a fixed pad per variable, since a
few training events see only a part of each pair's range.

**Applying** (:meth:`ModuleMap.build_edges`): every hit pair (h1 in m1, h2 in m2) of every
module pair of the map whose variables fall in the pair's windows becomes an edge
``h1 -> h2``. Vectorised with numpy: the candidate pairs of a block of module pairs are
enumerated at once (``n1 * n2`` per pair, blocks of at most ``chunk`` candidates, so memory
stays bounded) and cut together.

Module ids: the map is keyed on the ACTS Generic detector's (volume, layer, module)
numbering, which the simulation writes. The TrackML detector has the same modules with the
endcap modules numbered differently; :func:`translate_modules` maps an event's ids to the
map's through the module centres of a ``detectors.csv`` (exact to 0.01 mm: same geometry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pandas as pd

from lhcml.errors import ConfigError, InputError
from lhcml.gnn.features import truth_edges
from lhcml.metrics.tracking import FiducialSelection

if TYPE_CHECKING:
    from lhcml.data.event import Event

#: Doublet variables with a window per module pair.
VARIABLES: tuple[str, ...] = ("z0", "dphi", "phi_slope", "deta")
#: The map's settings that choose the particles it learns (FiducialSelection's names).
PARTICLE_SETTINGS: tuple[str, ...] = (
    "pt_min",
    "abs_eta_max",
    "primary_only",
    "max_prod_r",
    "exclude_electrons",
)
_CLAMP = 1.0e4  # z0 of doublets with dr ~ 0 (endcap to endcap) is clamped, not infinite


def module_keys(hits: pd.DataFrame) -> np.ndarray:
    """One int64 key per hit: ``volume << 32 | layer << 16 | module``."""
    return (
        (hits["volume_id"].to_numpy(np.int64) << 32)
        | (hits["layer_id"].to_numpy(np.int64) << 16)
        | hits["module_id"].to_numpy(np.int64)
    )


def doublet_variables(
    r1: np.ndarray,
    phi1: np.ndarray,
    z1: np.ndarray,
    r2: np.ndarray,
    phi2: np.ndarray,
    z2: np.ndarray,
) -> dict[str, np.ndarray]:
    """The four doublet variables of hit pairs (float64 in, float64 out)."""
    dr = r2 - r1
    dz = z2 - z1
    dphi = np.remainder(phi2 - phi1 + np.pi, 2 * np.pi) - np.pi
    safe = np.where(np.abs(dr) < 1e-6, 1e-6, dr)
    eta1 = np.arcsinh(z1 / np.maximum(r1, 1e-3))
    eta2 = np.arcsinh(z2 / np.maximum(r2, 1e-3))
    return {
        "z0": np.clip(z1 - r1 * dz / safe, -_CLAMP, _CLAMP),
        "dphi": dphi,
        "phi_slope": np.clip(dphi / safe, -_CLAMP, _CLAMP),
        "deta": eta2 - eta1,
    }


def _cylindrical(hits: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = hits["x"].to_numpy(np.float64)
    y = hits["y"].to_numpy(np.float64)
    return np.hypot(x, y), np.arctan2(y, x), hits["z"].to_numpy(np.float64)


@numba.njit(cache=True)
def _keep(
    a: int,
    b: int,
    p: int,
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    eta: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> bool:  # pragma: no cover - compiled
    # doublet_variables of hits a -> b against pair p's windows (rows: VARIABLES order),
    # with the same float64 operations in the same order (no fastmath): same edges.
    dr = r[b] - r[a]
    dz = z[b] - z[a]
    safe = 1e-6 if abs(dr) < 1e-6 else dr
    z0 = min(max(z[a] - r[a] * dz / safe, -_CLAMP), _CLAMP)
    if z0 < lo[0, p] or z0 > hi[0, p]:
        return False
    dphi = np.remainder(phi[b] - phi[a] + np.pi, 2 * np.pi) - np.pi
    if dphi < lo[1, p] or dphi > hi[1, p]:
        return False
    slope = min(max(dphi / safe, -_CLAMP), _CLAMP)
    if slope < lo[2, p] or slope > hi[2, p]:
        return False
    deta = eta[b] - eta[a]
    return not (deta < lo[3, p] or deta > hi[3, p])


@numba.njit(cache=True, nogil=True)
def _map_edges(
    skey: np.ndarray,
    r: np.ndarray,
    phi: np.ndarray,
    z: np.ndarray,
    eta: np.ndarray,
    start: np.ndarray,
    count: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    # Every (pair, hit of m1): the hits of m2 in its dphi window (one run of the
    # phi-sorted module, two where the window wraps), cut on all four variables. Edges of
    # the first runs come first, then those of the second runs, each in (pair, hit)
    # order: the numpy path's order.
    two_pi = 2 * np.pi
    out = [np.empty((2, 1 << 16), np.int64), np.empty((2, 1 << 14), np.int64)]
    n_out = [0, 0]
    for p in range(u1.shape[0]):
        s1 = start[u1[p]]
        seg_lo = start[u2[p]]
        seg_hi = seg_lo + count[u2[p]]
        seg = skey[seg_lo:seg_hi]
        dlo = lo[1, p]
        dhi = hi[1, p]
        full = (dhi - dlo) >= two_pi
        base = u2[p] * 8.0
        for a in range(s1, s1 + count[u1[p]]):
            lo_w = np.remainder(phi[a] + dlo + np.pi, two_pi)
            hi_w = np.remainder(phi[a] + dhi + np.pi, two_pi)
            pos_lo = seg_lo + np.searchsorted(seg, base + lo_w, side="left")
            pos_hi = seg_lo + np.searchsorted(seg, base + hi_w, side="right")
            wraps = lo_w > hi_w or full
            runs = (
                (seg_lo if wraps else pos_lo, seg_hi if full else pos_hi),
                (pos_lo if wraps and not full else 0, seg_hi if wraps and not full else 0),
            )
            for k in range(2):
                for b in range(runs[k][0], runs[k][1]):
                    if _keep(a, b, p, r, phi, z, eta, lo, hi):
                        if n_out[k] == out[k].shape[1]:
                            grown = np.empty((2, 2 * n_out[k]), np.int64)
                            grown[:, : n_out[k]] = out[k]
                            out[k] = grown
                        out[k][0, n_out[k]] = a
                        out[k][1, n_out[k]] = b
                        n_out[k] += 1
    return (
        np.concatenate((out[0][0, : n_out[0]], out[1][0, : n_out[1]])),
        np.concatenate((out[0][1, : n_out[0]], out[1][1, : n_out[1]])),
    )


class ModuleMap:
    """Module pairs crossed consecutively by true particles, with cut windows.

    Args:
        pt_min: particles below this pT [GeV] do not enter the map.
        abs_eta_max: nor those beyond this |eta|.
        primary_only: learn from primary particles only (secondaries widen the z0 windows).
        max_prod_r: nor particles made beyond this radius [mm] (``None``: no cut).
        exclude_electrons: nor electrons (bremsstrahlung bends them off the windows).
        min_count: module pairs seen fewer times are dropped.
        margin: each window is widened on both sides by ``margin`` times its width ...
        margin_count: ... or, if set, by ``min(margin, margin_count / sqrt(count))`` times
            its width, ``count`` the pair's training doublets: the extremes of a pair seen
            often are known well, those of a rare pair poorly ...
        pad_z0: ... plus this [mm] ...
        pad_dphi: ... [rad] ...
        pad_phi_slope: ... [rad / mm] ...
        pad_deta: ... for the four variables.
        chunk: candidate hit pairs cut at once when applying (bounds the memory).
    """

    def __init__(
        self,
        pt_min: float = 0.9,
        abs_eta_max: float = 4.0,
        primary_only: bool = True,
        max_prod_r: float | None = None,
        exclude_electrons: bool = False,
        min_count: int = 1,
        margin: float = 0.2,
        margin_count: float | None = None,
        pad_z0: float = 10.0,
        pad_dphi: float = 0.002,
        pad_phi_slope: float = 2.0e-5,
        pad_deta: float = 0.01,
        chunk: int = 4_000_000,
    ) -> None:
        if pt_min < 0 or margin < 0 or min_count < 1 or chunk < 1:
            raise ConfigError("module map: pt_min, margin >= 0, min_count, chunk >= 1 needed")
        if margin_count is not None and margin_count <= 0:
            raise ConfigError(f"module map: margin_count must be > 0, not {margin_count}")
        self.config: dict[str, Any] = {
            "pt_min": pt_min,
            "abs_eta_max": abs_eta_max,
            "primary_only": primary_only,
            "max_prod_r": max_prod_r,
            "exclude_electrons": exclude_electrons,
            "min_count": min_count,
            "margin": margin,
            "margin_count": margin_count,
            "pad_z0": pad_z0,
            "pad_dphi": pad_dphi,
            "pad_phi_slope": pad_phi_slope,
            "pad_deta": pad_deta,
            "chunk": chunk,
        }
        self.chunk = chunk
        #: One row per module pair: ``m1, m2, count`` and ``<var>_min, <var>_max``.
        self.table: pd.DataFrame | None = None
        self.n_events = 0
        #: What is derived from the table and config (windows, ...): see :meth:`_derived`.
        self._cache: dict[str, tuple[Any, tuple, Any]] = {}

    # -- building -------------------------------------------------------------------

    def selection(self) -> FiducialSelection:
        """The particles whose doublets the map learns."""
        return FiducialSelection(min_hits=2, **{k: self.config[k] for k in PARTICLE_SETTINGS})

    def doublets(self, event: Event, *, beyond: FiducialSelection | None = None) -> pd.DataFrame:
        """Truth doublets of the selected particles of one event: modules and variables
        (only of those ``beyond`` does not select, if given)."""
        edges, pid = truth_edges(event)
        assert event.truth is not None and event.particles is not None
        from lhcml.gnn.features import target_particles

        keep = np.isin(pid, target_particles(event, self.selection()))
        if beyond is not None:
            keep &= ~np.isin(pid, target_particles(event, beyond))
        edges = edges[:, keep]
        keys = module_keys(event.hits)
        r, phi, z = _cylindrical(event.hits)
        a, b = edges
        var = doublet_variables(r[a], phi[a], z[a], r[b], phi[b], z[b])
        return pd.DataFrame({"m1": keys[a], "m2": keys[b], **var})

    def fit(self, events: Iterable[Event], *, batch: int = 50) -> ModuleMap:
        """Learn the module pairs and their windows from events with truth.

        Doublets are reduced to per-pair counts and extremes every ``batch`` events, so
        memory stays bounded however many events are used.

        Raises:
            InputError: no event, or no truth doublet in them.
        """
        table = self._accumulate(events, batch=batch, beyond=None)
        if len(table) == 0:
            raise InputError("module map: no truth doublets in the training events")
        self.table = table[table["count"] >= self.config["min_count"]].reset_index(drop=True)
        return self

    def extend(self, events: Iterable[Event], *, batch: int = 50, **selection: Any) -> ModuleMap:
        """Widen a fitted map to more particles without refitting it.

        ``selection`` changes the map's particle settings (``primary_only``,
        ``max_prod_r``, ``exclude_electrons``, ``pt_min``, ``abs_eta_max``); the doublets
        of the particles the new settings select and the old ones did not are added to
        the counts and extremes, so that ``events`` may overlap the fit events. E.g.
        displaced decays (K0s, Lambda, b hadrons), which TrackML counts as primaries and
        our simulation does not (docs/real-data.md).

        Raises:
            ConfigError: a setting that is not a particle setting, or no map yet.
            InputError: no event.
        """
        bad = sorted(set(selection) - set(PARTICLE_SETTINGS))
        if bad:
            raise ConfigError(f"module map extend: {bad} not particle settings {PARTICLE_SETTINGS}")
        old_table, before = self._table(), self.selection()
        self.config.update(selection)
        n_before = self.n_events
        added = self._accumulate(events, batch=batch, beyond=before)
        if self.n_events == n_before:
            raise InputError("module map extend: no events")
        merged = _reduce(pd.concat([old_table, added], ignore_index=True), raw=False)
        self.table = merged[merged["count"] >= self.config["min_count"]].reset_index(drop=True)
        return self

    def _accumulate(
        self, events: Iterable[Event], *, batch: int, beyond: FiducialSelection | None
    ) -> pd.DataFrame:
        """Per-pair counts and extremes of the events' doublets; reduced every ``batch``
        events, so memory stays bounded however many events are used."""
        partial: list[pd.DataFrame] = []
        pending: list[pd.DataFrame] = []
        for event in events:
            pending.append(self.doublets(event, beyond=beyond))
            self.n_events += 1
            if len(pending) >= batch:
                partial.append(_reduce(pd.concat(pending, ignore_index=True), raw=True))
                pending = []
        if pending:
            partial.append(_reduce(pd.concat(pending, ignore_index=True), raw=True))
        if not partial:  # no events: an empty table of the same columns
            cols = {c: pd.Series(dtype=np.int64) for c in ("m1", "m2")}
            empty = pd.DataFrame({**cols, **{v: pd.Series(dtype=np.float64) for v in VARIABLES}})
            return _reduce(empty, raw=True)
        return _reduce(pd.concat(partial, ignore_index=True), raw=False)

    def windows(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Widened ``(low, high)`` window of each variable for each module pair (computed
        once per table and settings: 9 ms of every mu = 200 event otherwise; read-only)."""
        return self._derived("windows", self._windows)

    def _windows(self, t: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        margin = np.float64(self.config["margin"])
        if self.config.get("margin_count") is not None:
            # The gap between the largest of n samples and the distribution's edge shrinks
            # with n: on the val events 1.25 / sqrt(n) (at most 0.4) kept the true edges of
            # margin 0.2 with 20 % fewer edges (gnn/models/default/README.md).
            count = t["count"].to_numpy(np.float64)
            margin = np.minimum(margin, self.config["margin_count"] / np.sqrt(count))
        out = {}
        for v in VARIABLES:
            lo = t[f"{v}_min"].to_numpy(np.float64)
            hi = t[f"{v}_max"].to_numpy(np.float64)
            pad = margin * (hi - lo) + self.config[f"pad_{v}"]
            out[v] = (lo - pad, hi + pad)
        return out

    def _derived(self, name: str, compute: Callable[[pd.DataFrame], Any]) -> Any:
        """``compute(table)``, kept until the table or the settings change."""
        table = self._table()
        settings = tuple(self.config.items())
        hit = self._cache.get(name)
        if hit is not None and hit[0] is table and hit[1] == settings:
            return hit[2]
        value = compute(table)
        self._cache[name] = (table, settings, value)
        return value

    def _table(self) -> pd.DataFrame:
        if self.table is None:
            raise ConfigError("module map: not built yet (fit it or load one)")
        return self.table

    # -- applying -------------------------------------------------------------------

    def known_hits(self, hits: pd.DataFrame) -> np.ndarray:
        """Whether each hit's module is in the map (``(N,)`` bool): a hit of a module the
        map never saw gets no edge, so it is on no track."""
        table = self._table()
        mods = np.union1d(table["m1"].to_numpy(np.int64), table["m2"].to_numpy(np.int64))
        return np.isin(module_keys(hits), mods)

    def known_pairs(self, hits: pd.DataFrame, edge_index: np.ndarray) -> np.ndarray:
        """Whether each edge's module pair is in the map, in either order (``(E,)`` bool).

        Args:
            hits: the event's hits (module ids in the map's numbering).
            edge_index: ``(2, E)`` rows into ``hits``, e.g. its truth edges.
        """
        table = self._table()
        pairs = pd.MultiIndex.from_arrays([table["m1"].to_numpy(), table["m2"].to_numpy()])
        keys = module_keys(hits)
        a, b = keys[edge_index[0]], keys[edge_index[1]]
        return pd.MultiIndex.from_arrays([a, b]).isin(pairs) | pd.MultiIndex.from_arrays(
            [b, a]
        ).isin(pairs)

    def build_edges(self, hits: pd.DataFrame, *, engine: str = "numba") -> np.ndarray:
        """Edges of the event's hits allowed by the map.

        Hits are sorted by module, then azimuth, so for a hit of ``m1`` the hits of ``m2``
        inside the pair's ``dphi`` window form one contiguous run (two when the window
        wraps around +-pi), found by binary search; only those candidates are cut on the
        other variables.

        Args:
            hits: ``x, y, z, volume_id, layer_id, module_id`` (rows = graph nodes).
            engine: ``numba`` (one compiled loop over the candidates, no temporaries) or
                ``numpy`` (the candidates of blocks of module pairs enumerated and cut as
                arrays; the reference of ``benchmarks/bench_gnn.py``). Same edges, same
                order.

        Returns:
            ``(2, E)`` int64 rows into ``hits``, inner hit first.
        """
        table = self._table()
        if len(hits) == 0:
            return np.zeros((2, 0), np.int64)
        keys = module_keys(hits)
        r, phi, z = _cylindrical(hits)
        uniq, mod = np.unique(keys, return_inverse=True)
        # Composite sort key: module index, then phi + pi in [0, 2 pi] (< 8).
        phi_pos = np.clip(phi + np.pi, 0.0, 2 * np.pi)
        skey = mod * 8.0 + phi_pos
        order = np.argsort(skey, kind="stable")
        skey, r, phi, z = skey[order], r[order], phi[order], z[order]
        start = np.searchsorted(skey, np.arange(len(uniq)) * 8.0)
        count = np.diff(np.append(start, len(skey)))
        # Module pairs whose two modules both have hits in this event.
        m1 = table["m1"].to_numpy()
        m2 = table["m2"].to_numpy()
        i1 = np.minimum(np.searchsorted(uniq, m1), len(uniq) - 1)
        i2 = np.minimum(np.searchsorted(uniq, m2), len(uniq) - 1)
        pairs = np.flatnonzero((uniq[i1] == m1) & (uniq[i2] == m2))
        if len(pairs) == 0:
            return np.zeros((2, 0), np.int64)
        win = {v: (lo[pairs], hi[pairs]) for v, (lo, hi) in self.windows().items()}
        u1, u2 = i1[pairs], i2[pairs]
        if engine == "numba":
            eta = np.arcsinh(z / np.maximum(r, 1e-3))
            lo = np.ascontiguousarray(np.stack([win[v][0] for v in VARIABLES]))
            hi = np.ascontiguousarray(np.stack([win[v][1] for v in VARIABLES]))
            a_s, b_s = _map_edges(skey, r, phi, z, eta, start, count, u1, u2, lo, hi)
            if not self._pairs_can_repeat():
                # Each hit pair then comes from one module pair, once: no dedup sort
                # (20-40 ms of a mu = 200 event).
                return np.vstack([order[a_s], order[b_s]]).astype(np.int64)
            return _unique_edges(order[a_s], order[b_s], len(hits))
        if engine != "numpy":
            raise ConfigError(f"module map: engine '{engine}' unknown; use numba or numpy")
        n1 = count[u1]
        # One entry per (module pair, hit of m1).
        p = np.repeat(np.arange(len(pairs)), n1)
        a = start[u1][p] + (np.arange(len(p)) - np.repeat(np.cumsum(n1) - n1, n1))
        seg_lo = start[u2][p]
        seg_hi = seg_lo + count[u2][p]
        dlo, dhi = win["dphi"]
        full = (dhi - dlo)[p] >= 2 * np.pi
        lo_w = np.remainder(phi[a] + dlo[p] + np.pi, 2 * np.pi)
        hi_w = np.remainder(phi[a] + dhi[p] + np.pi, 2 * np.pi)
        base = u2[p] * 8.0
        pos_lo = np.searchsorted(skey, base + lo_w, side="left")
        pos_hi = np.searchsorted(skey, base + hi_w, side="right")
        wraps = (lo_w > hi_w) | full
        # Run 1: [pos_lo, pos_hi) without wrap; [seg_lo, pos_hi) with wrap.
        # Run 2 (wrap only): [pos_lo, seg_hi).
        r1_lo = np.where(wraps, seg_lo, pos_lo)
        r1_hi = np.where(full, seg_hi, pos_hi)
        r2_lo = np.where(wraps & ~full, pos_lo, 0)
        r2_hi = np.where(wraps & ~full, seg_hi, 0)
        out_a, out_b = [], []
        for lo_run, hi_run in ((r1_lo, r1_hi), (r2_lo, r2_hi)):
            n = np.maximum(hi_run - lo_run, 0)
            ends = np.cumsum(n)
            first = 0
            while first < len(n):
                # Blocks of at most `chunk` candidates bound the memory.
                base_n = ends[first - 1] if first else 0
                last = max(int(np.searchsorted(ends, base_n + self.chunk, side="right")), first + 1)
                sl = slice(first, last)
                nn = n[sl]
                e = np.repeat(np.arange(first, last), nn)
                b = lo_run[e] + (np.arange(len(e)) - np.repeat(np.cumsum(nn) - nn, nn))
                aa = a[e]
                var = doublet_variables(r[aa], phi[aa], z[aa], r[b], phi[b], z[b])
                keep = np.ones(len(e), bool)
                pe = p[e]
                for v in VARIABLES:
                    lo, hi = win[v]
                    keep &= (var[v] >= lo[pe]) & (var[v] <= hi[pe])
                out_a.append(aa[keep])
                out_b.append(b[keep])
                first = last
        return _unique_edges(order[np.concatenate(out_a)], order[np.concatenate(out_b)], len(hits))

    def _pairs_can_repeat(self) -> bool:
        """Whether a hit pair can come out twice: the map holds some module pair in both
        orders, or a module paired with itself."""
        return self._derived("repeat", _pairs_can_repeat)

    # -- files ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the map (Parquet table + settings in its metadata) atomically."""
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        from lhcml.io.atomic import write_atomic

        # float32 windows and int32 counts halve the file; the widened windows do not
        # need more digits.
        t = self._table().astype({"count": np.int32})
        t = t.astype({c: np.float32 for c in t.columns if c.endswith(("_min", "_max"))})
        table = pa.Table.from_pandas(t, preserve_index=False)
        meta = {"config": self.config, "n_events": self.n_events}
        table = table.replace_schema_metadata({b"lhcml_module_map": json.dumps(meta).encode()})
        return write_atomic(path, lambda p: pq.write_table(table, p, compression="zstd"))

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> ModuleMap:
        """Read a map written by :meth:`save` (settings may be overridden, e.g. pads).

        Raises:
            InputError: missing or unreadable file.
        """
        import json

        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise InputError("module map file not found", path=path)
        try:
            table = pq.read_table(path)
            meta = json.loads(table.schema.metadata[b"lhcml_module_map"])
        except Exception as e:
            raise InputError(f"not a module map file: {e}", path=path) from e
        config = {**meta["config"], **overrides}
        mm = cls(**config)
        t = table.to_pandas()
        mm.table = t.astype({c: np.float64 for c in t.columns if c.endswith(("_min", "_max"))})
        mm.n_events = int(meta.get("n_events", 0))
        return mm

    def __repr__(self) -> str:
        n = 0 if self.table is None else len(self.table)
        return f"ModuleMap({n} module pairs from {self.n_events} events)"


def _pairs_can_repeat(table: pd.DataFrame) -> bool:
    m1, m2 = table["m1"].to_numpy(np.int64), table["m2"].to_numpy(np.int64)
    mods = np.unique(np.concatenate((m1, m2)))
    i1, i2 = np.searchsorted(mods, m1), np.searchsorted(mods, m2)
    n = len(mods)
    return bool((m1 == m2).any()) or bool(np.isin(i2 * n + i1, i1 * n + i2).any())


def _unique_edges(a_all: np.ndarray, b_all: np.ndarray, n_hits: int) -> np.ndarray:
    """``(2, E)`` edges, each hit pair once in the order first found: pairs (m1, m2) and
    (m2, m1) of the map can both yield it."""
    lo_h, hi_h = np.minimum(a_all, b_all), np.maximum(a_all, b_all)
    _, first_idx = np.unique(lo_h * n_hits + hi_h, return_index=True)
    first_idx = np.sort(first_idx)
    return np.vstack([a_all[first_idx], b_all[first_idx]]).astype(np.int64)


def _reduce(d: pd.DataFrame, *, raw: bool) -> pd.DataFrame:
    """Per module pair: count and extremes, from raw doublets or from partial tables."""
    agg: dict[str, tuple[str, str]] = {"count": ("z0", "size") if raw else ("count", "sum")}
    for v in VARIABLES:
        agg[f"{v}_min"] = (v if raw else f"{v}_min", "min")
        agg[f"{v}_max"] = (v if raw else f"{v}_max", "max")
    return d.groupby(["m1", "m2"], sort=True).agg(**agg).reset_index()


# -- module numbering ---------------------------------------------------------------


def generic_module_centres() -> pd.DataFrame:
    """Centres of the ACTS Generic detector's sensitive modules (builds the detector, ~1 s).

    Returns:
        ``volume_id, layer_id, module_id, cx, cy, cz``.
    """
    from lhcml.simulation import SimulationConfig
    from lhcml.simulation.detector import DetectorSimulation

    m = DetectorSimulation(SimulationConfig()).modules
    return pd.DataFrame(
        {
            "volume_id": m.volume.astype(np.int32),
            "layer_id": m.layer.astype(np.int32),
            "module_id": m.module.astype(np.int32),
            "cx": m.center[:, 0].astype(np.float32),
            "cy": m.center[:, 1].astype(np.float32),
            "cz": m.center[:, 2].astype(np.float32),
        }
    )


def translate_modules(
    hits: pd.DataFrame, detectors: pd.DataFrame, reference: pd.DataFrame, tol: float = 1.0
) -> pd.DataFrame:
    """Renumber the hits' modules into the reference numbering through module centres.

    Args:
        hits: hits with ``volume_id, layer_id, module_id`` in the numbering of ``detectors``.
        detectors: the event's detector table (``cx, cy, cz`` per module).
        reference: the map's module centres (:func:`generic_module_centres`).
        tol: largest centre distance [mm] accepted as the same module.

    Returns:
        A copy of ``hits`` with ``module_id`` in the reference numbering.

    Raises:
        InputError: a module has no reference module within ``tol`` in its layer (not the
            same detector).
    """
    from scipy.spatial import cKDTree

    keys = ["volume_id", "layer_id", "module_id"]
    new = np.full(len(detectors), -1, np.int64)
    for (vol, lay), ref in reference.groupby(["volume_id", "layer_id"]):
        rows = np.flatnonzero(
            (detectors["volume_id"].to_numpy() == vol) & (detectors["layer_id"].to_numpy() == lay)
        )
        if len(rows) == 0:
            continue
        tree = cKDTree(ref[["cx", "cy", "cz"]].to_numpy(np.float64))
        dist, idx = tree.query(detectors.iloc[rows][["cx", "cy", "cz"]].to_numpy(np.float64))
        new[rows] = np.where(dist <= tol, ref["module_id"].to_numpy()[idx], -1)
    det = detectors[keys].assign(new_module=new)
    merged = hits[keys].merge(det, on=keys, how="left")
    mod = merged["new_module"].to_numpy(np.float64)
    unlisted = np.isnan(mod)
    if unlisted.any():
        first = merged.loc[unlisted, keys].iloc[0].astype(int).tolist()
        raise InputError(
            f"{int(unlisted.sum())} of {len(hits)} hits ({unlisted.mean():.1%}) are in modules "
            f"the detectors file does not list (e.g. volume, layer, module {first}): "
            "the detectors file does not match the hits",
            column="module_id",
        )
    if (mod < 0).any():
        bad = mod < 0
        raise InputError(
            f"{int(bad.sum())} of {len(hits)} hits ({bad.mean():.1%}) are in modules with no "
            f"counterpart within {tol} mm in the module map's detector: not the same "
            "detector geometry",
            column="module_id",
        )
    return hits.assign(module_id=mod.astype(np.int32))
