"""lhcml: deep learning on LHC collision data.

Stages (see ARCHITECTURE.md): simulation -> event data (``lhcml.data``, ``lhcml.io``)
-> reconstruction (``lhcml.reco``) -> metrics (``lhcml.metrics``).
"""

from __future__ import annotations

from lhcml.data.event import Event

__all__ = ["Event", "__version__"]
__version__ = "0.1.0"
