"""The explain steps on a :class:`~lhcml.explain.probes.Probe`, each writing JSON and plots
(``lhcml explain importance|neurons|formulas|mi|report``).

- :func:`input_importance`: permutation importance of the input variables (and of the
  model-internal inputs, e.g. the Interaction Network's edge features).
- :func:`neuron_importance`: every neuron of every layer (or the ``modules`` named),
  ranked; per layer the share of the total drop its top 5 neurons carry, and Linear vs
  normalisation layers apart.
- :func:`neuron_formulas`: the top neurons fitted with symbolic regression against the
  physics variables of their rows; r-z activation maps with the formula's isocurves.
- :func:`latent_information`: per layer and track parameter, the joint mutual information
  of the layer's activations (the whole m-dimensional latent space at once), h(Y|X) and
  proficiency, and the best single neuron's MI beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import InputError
from lhcml.explain.formulas import fit_formula
from lhcml.explain.mi import StatisticConfig, entropy, mutual_information, proficiency
from lhcml.explain.permutation import (
    Importance,
    capture,
    channel_importance,
    neuron_modules,
    permutation_importance,
)
from lhcml.explain.probes import Probe
from lhcml.io.atomic import write_json_atomic


@dataclass(frozen=True)
class Budget:
    """How much work each step may do.

    Args:
        repeats: shuffles per variable / neuron.
        modules: layers to study (None: every neuron layer that fires).
        max_rows: activations rows used by the MI and the formulas.
        top: neurons fitted with formulas.
        generations, population: symbolic regression budget.
        mi_method: ``learned`` or ``ksg``.
        mi_steps: optimiser steps of the MI's regression network.
        seed: every seed.
    """

    repeats: int = 5
    modules: tuple[str, ...] | None = None
    max_rows: int = 20_000
    top: int = 5
    generations: int = 15
    population: int = 1000
    mi_method: str = "learned"
    mi_steps: int = 2000
    seed: int = 0


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _modules(probe: Probe, budget: Budget) -> list[str]:
    fired = neuron_modules(probe.model, probe.run)
    if budget.modules is None:
        return fired
    from lhcml.explain.permutation import resolve

    for m in budget.modules:
        resolve(probe.model, m)
    return list(budget.modules)


def input_importance(probe: Probe, out: Path, budget: Budget, say: Say = _quiet) -> dict:
    """Permutation importance of the inputs; ``importance.json`` + ``importance.png``."""
    results: list[Importance] = []
    if probe.input_names:
        say(f"{probe.name}: input variables")
        results.append(
            permutation_importance(
                probe.score,
                probe.inputs,
                probe.input_names,
                metric=probe.metric,
                repeats=budget.repeats,
                seed=budget.seed,
            )
        )
    for target, names in probe.internal_inputs.items():
        say(f"{probe.name}: {target}")
        results.append(
            channel_importance(
                probe.run,
                probe.model,
                target,
                names=names,
                metric=probe.metric,
                repeats=budget.repeats,
                seed=budget.seed,
                valid_rows=probe.valid_rows,
            )
        )
    groups = [
        "inputs" if probe.input_names and i == 0 else t
        for i, t in enumerate(([None] if probe.input_names else []) + list(probe.internal_inputs))
    ]
    summary = {
        "model": probe.name,
        "groups": {g: r.to_dict() for g, r in zip(groups, results, strict=True)},
    }
    write_json_atomic(out / "importance.json", summary)
    from lhcml.explain.plots import importance_bars

    importance_bars(results, groups, out / "importance.png", probe.name)
    return summary


def _layer_kind(model: Any, target: str) -> str:
    from lhcml.explain.permutation import resolve

    return type(resolve(model, target)).__name__


def neuron_importance(probe: Probe, out: Path, budget: Budget, say: Say = _quiet) -> dict:
    """Every neuron's permutation importance; ``neurons.json`` + ``neurons.png``."""
    base = probe.run()
    layers = {}
    for target in _modules(probe, budget):
        say(f"{probe.name}: neurons of {target}")
        imp = channel_importance(
            probe.run,
            probe.model,
            target,
            metric=probe.metric,
            repeats=budget.repeats,
            seed=budget.seed,
            valid_rows=probe.valid_rows,
            baseline=base,
        )
        drops = np.clip(imp.mean, 0, None)
        top5 = np.sort(drops)[::-1][:5].sum() / drops.sum() if drops.sum() > 0 else float("nan")
        layers[target] = {
            "type": _layer_kind(probe.model, target),
            "top5_share": float(top5),
            "max_drop": float(imp.mean.max()),
            **imp.to_dict(),
        }
    ranked = sorted(
        ((t, it["name"], it["drop"], it["std"]) for t, v in layers.items() for it in v["items"]),
        key=lambda r: -r[2],
    )
    by_type: dict[str, list[float]] = {}
    for v in layers.values():
        by_type.setdefault(v["type"], []).append(v["top5_share"])
    summary = {
        "model": probe.name,
        "metric": probe.metric,
        "baseline": base,
        "repeats": budget.repeats,
        "top": [{"layer": t, "neuron": n, "drop": d, "std": s} for t, n, d, s in ranked[:50]],
        "top5_share_by_layer_type": {k: float(np.nanmean(v)) for k, v in by_type.items()},
        "layers": layers,
    }
    write_json_atomic(out / "neurons.json", summary)
    from lhcml.explain.plots import neuron_ranking

    neuron_ranking(layers, out / "neurons.png", probe.name)
    return summary


def _subsample(n: int, max_rows: int, seed: int) -> np.ndarray:
    idx = np.arange(n)
    if n > max_rows:
        idx = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
    return idx


def _channel(name: str) -> tuple[str, int]:
    layer, _, rest = name.rpartition("[")
    return layer, int(rest.rstrip("]"))


def neuron_formulas(
    probe: Probe,
    out: Path,
    budget: Budget,
    neurons: Sequence[str] | None = None,
    say: Say = _quiet,
) -> dict:
    """Formulas of the top neurons (``neurons``, default: ranked by permutation importance
    with one repeat); ``formulas.json`` + one r-z map per neuron with a position."""
    if neurons is None:
        quick = neuron_importance(
            probe, out / "ranking", Budget(**{**budget.__dict__, "repeats": 1})
        )
        neurons = [f"{t['neuron']}" for t in quick["top"]]
    targets = sorted({_channel(n)[0] for n in neurons})
    acts = capture(probe.run, probe.model, targets, probe.valid_rows)
    results, skipped = [], []
    from lhcml.explain.plots import rz_map

    for name in neurons:
        if len(results) >= budget.top:
            break
        layer, c = _channel(name)
        table = probe.rows_for(len(acts[layer]))
        if table is None:
            skipped.append({"neuron": name, "why": f"no physics table for {len(acts[layer])} rows"})
            continue
        a = acts[layer][:, c]
        if np.ptp(a) == 0:
            skipped.append({"neuron": name, "why": "constant activation (dead neuron)"})
            continue
        say(f"{probe.name}: formula of {name}")
        f = fit_formula(
            a,
            table.physics,
            neuron=name,
            generations=budget.generations,
            population=budget.population,
            max_samples=min(budget.max_rows, 4000),
            seed=budget.seed,
        )
        entry = {**f.to_dict(), "rows": table.kind, "baseline_r2": f.best_variable[1] ** 2}
        if table.r is not None and table.z is not None:
            png = out / f"rz_{name.replace('[', '_').replace(']', '')}.png"
            rz_map(a, table, f, png)
            entry["plot"] = png.name
        results.append(entry)
    summary = {"model": probe.name, "formulas": results, "skipped": skipped}
    write_json_atomic(out / "formulas.json", summary)
    return summary


def latent_information(
    probe: Probe,
    out: Path,
    budget: Budget,
    params: Sequence[str] | None = None,
    say: Say = _quiet,
) -> dict:
    """MI of each layer (jointly) and of its best neuron with each true parameter;
    ``mi.json`` + ``mi.png`` (layer x parameter proficiency)."""
    targets = [t for t in _modules(probe, budget) if not t.endswith(":in")]
    if probe.name == "trackformer":
        targets = ["param_head:in", *targets]  # the candidate's latent vector
    acts = capture(probe.run, probe.model, targets, probe.valid_rows)
    stat = StatisticConfig(steps=budget.mi_steps, seed=budget.seed)
    layers = {}
    for target, a in acts.items():
        table = probe.rows_for(len(a))
        if table is None:
            continue
        cols = [p for p in (params or table.targets.columns) if p in table.targets.columns]
        live = np.ptp(a, axis=0) > 0
        if not live.any():
            continue
        per = {}
        for p in cols:
            y = table.targets[p].to_numpy(np.float64)
            ok = np.flatnonzero(np.isfinite(y))
            # One row per distinct value: the hits of one particle share its parameters,
            # and exact ties would bias the kNN counts.
            ok = np.random.default_rng(budget.seed).permutation(ok)
            ok = np.sort(ok[np.unique(y[ok], return_index=True)[1]])
            ok = ok[_subsample(len(ok), budget.max_rows, budget.seed)]
            if len(ok) < 50:
                continue
            x = a[ok][:, live]
            say(f"{probe.name}: MI of {target} ({x.shape[1]} neurons) with {p}")
            info = mutual_information(x, y[ok], method=budget.mi_method, statistic=stat)
            single = [
                mutual_information(x[:, [j]], y[ok], method="ksg")
                for j in range(x.shape[1])
                if np.ptp(x[:, j]) > 0
            ]
            per[p] = {
                "mi": info,
                "conditional_entropy": entropy(y[ok]) - info,
                "proficiency": proficiency(x, y[ok], method=budget.mi_method, statistic=stat),
                "best_neuron_mi": float(max(single)) if single else 0.0,
                "rows": len(ok),
            }
        if per:
            layers[target] = {"rows": table.kind, "neurons": int(live.sum()), "params": per}
    summary = {
        "model": probe.name,
        "method": budget.mi_method,
        "note": "mi in nats; 'learned' is a lower bound (KSG on a learned statistic); "
        "proficiency = I(X; Y in 16 equal-population bins) / ln 16",
        "layers": layers,
    }
    if not layers:
        raise InputError(f"{probe.name}: no layer with rows that carry true parameters")
    write_json_atomic(out / "mi.json", summary)
    from lhcml.explain.plots import mi_heatmap

    mi_heatmap(layers, out / "mi.png", probe.name)
    return summary


def full_report(probe: Probe, out: Path, budget: Budget, say: Say = _quiet) -> dict:
    """All four steps; ``report.json`` gathers them."""
    imp = input_importance(probe, out, budget, say)
    neurons = neuron_importance(probe, out, budget, say)
    formulas = neuron_formulas(probe, out, budget, [t["neuron"] for t in neurons["top"]], say)
    info = latent_information(probe, out, budget, say=say)
    report = {
        "model": probe.name,
        "metric": probe.metric,
        "importance": imp,
        "neurons": {k: v for k, v in neurons.items() if k != "layers"},
        "formulas": formulas,
        "mi": info,
    }
    write_json_atomic(out / "report.json", report)
    return report
