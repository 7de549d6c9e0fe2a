"""Derived training samples: reduced copies of simulated events (issue 15's augmentation).

A model trained only on whole simulated events learns their context (a hit on every layer,
overlap doublets, the endcap continuation of a barrel track, no noise) and loses edges on
events that lack it: barrel-only, particle-sampled and double-hit-free TrackML subsets
(``docs/real-data.md``). A chain config's sample may therefore be *derived* from another
sample instead of simulated::

    samples:
      train_barrel:
        from: train                   # a simulated (or earlier derived) sample
        subset: {volumes: barrel, double_hits: false, density: [0.05, 1.0]}
        events: 60                    # the first 60 events of ``train`` (default: all)
        first_event: 10000            # event ids of the copies (must not clash)
        seed: 7

``subset`` holds :class:`lhcml.data.subset.SubsetConfig` fields; ``density`` and
``noise_fraction`` may be ``[low, high]``, drawn uniformly per event (``density``
log-uniformly, as the share of hits spans decades), so one sample covers a range of
reductions. Event ``i`` of the copy uses seed ``seed + i``; a copy whose meta file exists
is kept (resume).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.data.subset import SubsetConfig, make_subset, parse_volumes
from lhcml.errors import ConfigError

_FIELDS = {f.name for f in dataclasses.fields(SubsetConfig)} - {"seed"}


def _draw(value: Any, name: str, rng: np.random.Generator, log: bool) -> Any:
    """A fixed value, or a draw from ``[low, high]``."""
    if not isinstance(value, list | tuple):
        return value
    if len(value) != 2:
        raise ConfigError(f"subset.{name}: a value or [low, high], got {value}")
    lo, hi = (float(v) for v in value)
    ok = (0 < lo <= hi) if log else (0 <= lo <= hi)
    if not ok:
        raise ConfigError(
            f"subset.{name}: need {'0 < ' if log else '0 <= '}low <= high, got {value}"
        )
    if log:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(lo, hi))


def subset_config(spec: dict[str, Any], seed: int, where: str = "subset") -> SubsetConfig:
    """The :class:`SubsetConfig` of one derived event (ranges drawn with ``seed``)."""
    unknown = set(spec) - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
    rng = np.random.default_rng(seed)
    kw = dict(spec)
    vol = kw.get("volumes")
    if isinstance(vol, str):
        kw["volumes"] = parse_volumes(vol)
    elif vol is not None:
        kw["volumes"] = tuple(int(v) for v in vol)
    if "density" in kw:
        kw["density"] = _draw(kw["density"], "density", rng, log=True)
    if kw.get("noise_fraction") is not None:
        kw["noise_fraction"] = _draw(kw["noise_fraction"], "noise_fraction", rng, log=False)
    return SubsetConfig(**kw, seed=seed)


def derive_sample(
    source: Path,
    out: Path,
    spec: dict[str, Any],
    *,
    name: str,
    events: int | None = None,
    first_event: int = 0,
    seed: int = 0,
) -> int:
    """Write reduced copies of ``source``'s events to ``out``; the number written now.

    Raises:
        ConfigError: a bad ``subset`` spec or an id clash with the source sample.
    """
    from lhcml.io import list_events, read_event, write_event
    from lhcml.io.events import event_prefix

    ids = list_events(source)
    if events is not None:
        if events > len(ids):
            raise ConfigError(
                f"samples.{name}: asks for {events} events, its source {source} has {len(ids)}"
            )
        ids = ids[:events]
    if out.resolve() == source.resolve():
        raise ConfigError(f"samples.{name}: writes into its own source {source}")
    written = 0
    for i, eid in enumerate(ids):
        new_id = first_event + i
        if Path(f"{event_prefix(out, new_id)}-meta.json").is_file():
            continue
        config = subset_config(spec, seed + i, where=f"samples.{name}.subset")
        reduced = make_subset(read_event(source, eid), config)
        reduced = dataclasses.replace(reduced, event_id=new_id)
        reduced.meta["derived_from"] = {"sample": str(source), "event_id": int(eid)}
        write_event(reduced, out)
        written += 1
    return written
