"""The ``lhcml`` commands and their flags are those of the reference (written before the
issue-14 restructuring by ``tests/cli_surface.py``)."""

from __future__ import annotations

import json

from cli_surface import REFERENCE, cli_surface


def test_cli_commands_and_flags_unchanged() -> None:
    # Every command of the reference is still there with the same flags and defaults; new
    # commands (e.g. ``lhcml explain``) and new flags (``lhcml evaluate --coverage``) may join.
    reference = json.loads(REFERENCE.read_text())
    surface = cli_surface()
    assert set(reference) <= set(surface), sorted(set(reference) - set(surface))
    for command, params in reference.items():
        missing = sorted(set(params) - set(surface[command]))
        assert not missing, (command, missing)


def test_the_surface_lists_known_flags() -> None:
    surface = cli_surface()
    assert len(surface) > 30
    assert any(p.startswith("arg:events:") for p in surface["lhcml reconstruct"])
    assert any(p.startswith("opt:--threads") for p in surface["lhcml gnn chain train"])
