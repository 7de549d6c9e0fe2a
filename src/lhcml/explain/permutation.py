"""Permutation importance of input variables and of single neurons, model-agnostic.

**Inputs** (:func:`permutation_importance`): evaluate a metric on a data set, shuffle one
input column across the samples (only that one), evaluate again; the drop of the metric
(baseline - permuted, so a bigger drop means a more important variable) is averaged over
``repeats`` shuffles with their standard deviation.

**Neurons** (:func:`channel_importance`): the same for one channel of a module's output
(or, with the name suffix ``:in``, of its first input) at a time, by a forward hook that
permutes that channel across the rows of the batch (rows: every leading dimension
flattened; only the rows ``valid_rows`` marks, e.g. not padding). Permuting channel ``c``
of a Linear layer's output is permuting neuron ``c`` of that layer (its activation is
element-wise); after a LayerNorm it is the normalised neuron, and before one the
permutation spreads over all channels of the layer, which is why the report shows
normalisation layers apart.

Seeds are fixed per (variable or module, channel, repeat), so results repeat exactly.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from lhcml.errors import InputError

#: Layer types whose output channels are neurons.
NEURON_TYPES: tuple[str, ...] = (
    "Linear",
    "LayerNorm",
    "BatchNorm1d",
    "NonDynamicallyQuantizableLinear",
)


@dataclass
class Importance:
    """Metric drops when each item (variable or neuron) is permuted.

    Attributes:
        names: the items.
        mean, std: drop of the metric (baseline - permuted) over the repeats.
        baseline: the metric with nothing permuted.
        metric: its name (higher is better).
        repeats: shuffles per item.
    """

    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    baseline: float
    metric: str
    repeats: int

    def ranking(self) -> np.ndarray:
        """Item indices, most important first."""
        return np.argsort(-self.mean, kind="stable")

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "repeats": self.repeats,
            "items": [
                {"name": n, "drop": float(m), "std": float(s)}
                for n, m, s in zip(self.names, self.mean, self.std, strict=True)
            ],
        }


def _seed(seed: int, *parts: object) -> np.random.Generator:
    key = zlib.crc32(":".join(map(str, parts)).encode())
    return np.random.default_rng([seed, key])


def _check_repeats(repeats: int) -> None:
    if repeats < 1:
        raise InputError(f"repeats = {repeats}: need at least one shuffle")


def permutation_importance(
    score: Callable[[np.ndarray], float],
    table: np.ndarray,
    names: Sequence[str],
    *,
    metric: str = "score",
    repeats: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Importance:
    """Importance of each column of ``table`` for ``score(table)`` (higher is better).

    Args:
        score: the metric of the model run on a (possibly permuted) copy of the table.
        table: ``(n_samples, n_variables)`` inputs.
        names: one per column.
        metric: the metric's name, for the report.
        repeats: shuffles per variable (mean and standard deviation).
        seed: base seed.
        progress: called with each variable's name before it is shuffled.

    Raises:
        InputError: names and columns differ in number, repeats < 1.
    """
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[1] != len(names):
        raise InputError(
            f"{len(names)} variable names for a table of shape {table.shape}: one name per column"
        )
    _check_repeats(repeats)
    baseline = float(score(table))
    drops = np.zeros((len(names), repeats))
    for j, name in enumerate(names):
        if progress is not None:
            progress(name)
        for r in range(repeats):
            perm = _seed(seed, "input", name, r).permutation(len(table))
            shuffled = table.copy()
            shuffled[:, j] = table[perm, j]
            drops[j, r] = baseline - float(score(shuffled))
    return Importance(list(names), drops.mean(1), drops.std(1), baseline, metric, repeats)


# ---------------------------------------------------------------- hooks on modules


def split_target(target: str) -> tuple[str, bool]:
    """``"head.0:in"`` -> ``("head.0", True)`` (the module's input), else its output."""
    if target.endswith(":in"):
        return target[:-3], True
    return target, False


def resolve(model: Any, target: str) -> Any:
    """The module a target names.

    Raises:
        InputError: no such module (the message lists some that exist).
    """
    name, _ = split_target(target)
    modules = dict(model.named_modules())
    if name not in modules:
        some = [n for n in modules if n][:12]
        raise InputError(f"module '{name}' not in {type(model).__name__}; modules include {some}")
    return modules[name]


def _permute_rows(t: Any, channel: int, rng: np.random.Generator, valid: Any) -> Any:
    import torch

    flat = t.reshape(-1, t.shape[-1])
    rows = (
        torch.arange(len(flat), device=t.device)
        if valid is None or len(valid) != len(flat)
        else torch.nonzero(valid.reshape(-1), as_tuple=True)[0]
    )
    perm = torch.as_tensor(rng.permutation(len(rows)), device=t.device)
    out = flat.clone()
    out[rows, channel] = flat[rows[perm], channel]
    return out.reshape(t.shape)


@contextmanager
def permuted_channel(
    model: Any,
    target: str,
    channel: int,
    rng: np.random.Generator,
    valid_rows: Callable[[], Any] | None = None,
) -> Iterator[None]:
    """While active, channel ``channel`` of ``target`` is permuted across rows on every call."""
    module = resolve(model, target)
    _, on_input = split_target(target)

    def valid() -> Any:
        return valid_rows() if valid_rows is not None else None

    if on_input:

        def pre(_m: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
            return (_permute_rows(args[0], channel, rng, valid()), *args[1:])

        handle = module.register_forward_pre_hook(pre)
    else:

        def post(_m: Any, _args: Any, out: Any) -> Any:
            return _permute_rows(out, channel, rng, valid())

        handle = module.register_forward_hook(post)
    try:
        yield
    finally:
        handle.remove()


def capture(
    run: Callable[[], Any],
    model: Any,
    targets: Sequence[str],
    valid_rows: Callable[[], Any] | None = None,
) -> dict[str, np.ndarray]:
    """Activations ``(rows, channels)`` of each target during ``run()`` (calls concatenated,
    only the valid rows)."""
    store: dict[str, list[np.ndarray]] = {t: [] for t in targets}
    handles = []

    def keep(target: str) -> Callable[..., None]:
        def hook(t: Any) -> None:
            flat = t.detach().reshape(-1, t.shape[-1])
            v = valid_rows() if valid_rows is not None else None
            if v is not None and len(v.reshape(-1)) == len(flat):
                flat = flat[v.reshape(-1)]
            store[target].append(flat.float().cpu().numpy())

        return hook

    for target in targets:
        module = resolve(model, target)
        _, on_input = split_target(target)
        f = keep(target)
        if on_input:
            handles.append(module.register_forward_pre_hook(lambda _m, a, f=f: f(a[0])))
        else:
            handles.append(module.register_forward_hook(lambda _m, _a, o, f=f: f(o)))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return {t: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for t, v in store.items()}


def neuron_modules(model: Any, run: Callable[[], Any]) -> list[str]:
    """Modules of :data:`NEURON_TYPES` that produce an output during ``run()`` (fused or
    functional code paths skip some), in call order."""
    fired: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if type(module).__name__ in NEURON_TYPES:

            def hook(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
                if name not in fired:
                    fired.append(name)

            handles.append(module.register_forward_hook(hook))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return fired


def channel_importance(
    score: Callable[[], float],
    model: Any,
    target: str,
    *,
    names: Sequence[str] | None = None,
    n_channels: int | None = None,
    metric: str = "score",
    repeats: int = 5,
    seed: int = 0,
    valid_rows: Callable[[], Any] | None = None,
    baseline: float | None = None,
) -> Importance:
    """Importance of every channel of one module's output (or ``":in"`` input).

    Args:
        score: runs the model on the data set and returns the metric.
        model: the torch module holding ``target``.
        target: a module name of ``model.named_modules()``, optionally with ``:in``.
        names: channel names (default ``target[c]``).
        n_channels: channels (default: read from a captured call).
        metric, repeats, seed: as :func:`permutation_importance`.
        valid_rows: returns the bool row mask of the current call (padding excluded).
        baseline: the unpermuted metric, if already known.

    Raises:
        InputError: unknown module, repeats < 1.
    """
    _check_repeats(repeats)
    resolve(model, target)
    if n_channels is None:
        n_channels = capture(score, model, [target], valid_rows)[target].shape[1]
    names = list(names) if names is not None else [f"{target}[{c}]" for c in range(n_channels)]
    if len(names) != n_channels:
        raise InputError(f"{len(names)} names for {n_channels} channels of {target}")
    base = float(score()) if baseline is None else baseline
    drops = np.zeros((n_channels, repeats))
    for c in range(n_channels):
        for r in range(repeats):
            rng = _seed(seed, "neuron", target, c, r)
            with permuted_channel(model, target, c, rng, valid_rows):
                drops[c, r] = base - float(score())
    return Importance(names, drops.mean(1), drops.std(1), base, metric, repeats)
