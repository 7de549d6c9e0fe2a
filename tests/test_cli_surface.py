"""The ``lhcml`` commands and their flags are those of the reference (written before the
issue-14 restructuring by ``tests/cli_surface.py``)."""

from __future__ import annotations

import json

from cli_surface import REFERENCE, cli_surface


def test_cli_commands_and_flags_unchanged() -> None:
    reference = json.loads(REFERENCE.read_text())
    surface = cli_surface()
    assert sorted(surface) == sorted(reference)
    for command, params in reference.items():
        assert surface[command] == params, command


def test_the_surface_lists_known_flags() -> None:
    surface = cli_surface()
    assert len(surface) > 30
    assert any(p.startswith("arg:events:") for p in surface["lhcml reconstruct"])
    assert any(p.startswith("opt:--threads") for p in surface["lhcml gnn chain train"])
