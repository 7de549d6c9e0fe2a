"""Polling a process pool's pending results and its workers' progress queue, shared by
the event simulation (:mod:`lhcml.simulation.runner`) and the jet samples
(:mod:`lhcml.jets.writer`)."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any


def drain(progress: Any, notify: Callable[[int], None], timeout: float) -> None:
    """Pass every message waiting in the ``progress`` queue to ``notify`` (waiting up to
    ``timeout`` seconds for the first one)."""
    try:
        notify(progress.get(timeout=timeout) if timeout else progress.get_nowait())
        while True:
            notify(progress.get_nowait())
    except queue.Empty:
        pass


def collect_ready(pending: list[Any], handle: Callable[[Any], None]) -> list[Any]:
    """Hand the value of every finished ``AsyncResult`` to ``handle`` (re-raising a
    worker's exception); return the ones still running."""
    still = []
    for res in pending:
        if res.ready():
            handle(res.get())
        else:
            still.append(res)
    return still
