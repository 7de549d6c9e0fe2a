"""Fixtures of the seeding tests (helpers in ``seeding_helpers``)."""

from __future__ import annotations

import pytest
from seeding_helpers import synthetic_event

from lhcml.data.event import Event


@pytest.fixture(scope="session")
def small_event() -> Event:
    """60 helices and 100 noise points on the pixel barrel."""
    return synthetic_event()
