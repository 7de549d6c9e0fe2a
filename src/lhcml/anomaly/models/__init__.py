"""Shipped anomaly detectors (trained by committed commands; lineage in each README)."""

from __future__ import annotations

from pathlib import Path

#: The shipped DarkCLR detector (``lhcml anomaly evaluate shipped``).
SHIPPED_MODEL_DIR = Path(__file__).parent / "darkclr"
