"""Shared fixtures: paths to the real TrackML event beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TRACKML_DIR = SHARED / "data" / "trackml"


@pytest.fixture(scope="session")
def trackml_prefix() -> Path:
    """Prefix of the real TrackML event (``../shared/data/trackml/event000000001``)."""
    prefix = TRACKML_DIR / "event000000001"
    if not Path(f"{prefix}-hits.csv.gz").is_file():
        pytest.skip(f"real TrackML event not found under {TRACKML_DIR}")
    return prefix


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``gpu`` tests (``pytest -m gpu``) are skipped, not failed, without a CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
