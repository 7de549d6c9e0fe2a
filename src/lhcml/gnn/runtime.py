"""How the stages run: progress bars, torch threads, and a quiet Lightning trainer."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lhcml.gnn.config import build


def track_progress(items: Sequence[Any], label: str, progress: bool) -> Iterable[Any]:
    from rich.progress import track

    return track(items, description=label, transient=True) if progress else items


def set_threads(threads: int | None) -> None:
    """Limit torch's CPU threads (shared machines)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def lightning_quiet(progress: bool) -> Iterator[None]:
    """Silence Lightning's advice (tips, worker counts) and its own deprecation warnings
    (``LeafSpec`` in lightning 2.6 with torch 2.13), which are not ours to fix."""
    import logging

    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    if not progress:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*number of training batches.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            yield
    finally:
        logger.setLevel(level)


def make_trainer(trainer: dict[str, Any], work_dir: Path, *, progress: bool) -> Any:
    """A Lightning ``Trainer`` from the config's ``trainer`` section (its arguments).

    Defaults: CPU, one device, no checkpoints (the stage saves its model file), a CSV
    logger in ``work_dir``.
    """
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    opts: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 10,
        "enable_progress_bar": progress,
        "logger": CSVLogger(str(work_dir), name="logs"),
    }
    opts.update(trainer)
    return build(L.Trainer, opts, "trainer")
