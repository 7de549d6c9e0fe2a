"""Fixtures of the GNN tests (toy events from :mod:`gnn_toys`, one torch thread)."""

from __future__ import annotations

import pytest
from gnn_toys import toy_event

from lhcml.data.event import Event


@pytest.fixture(scope="session")
def toy_events() -> list[Event]:
    return [toy_event(i, 60) for i in range(30)]


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """Small tensors on a shared machine: one torch / faiss thread is fastest."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
