"""Every ``lhcml`` command with its arguments and options, for the before / after check of
refactors (``tests/test_cli_surface.py``). Regenerate when flags change on purpose::

    python tests/cli_surface.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent / "reference" / "cli_surface.json"


def cli_surface() -> dict[str, list[str]]:
    """``{"lhcml reconstruct": ["arg:events:multiple:default=None", ...], ...}``: each
    parameter's kind, flags, count and default."""
    import typer

    from lhcml.cli.main import app

    surface: dict[str, list[str]] = {}

    def walk(cmd: Any, path: str) -> None:
        params = []
        for p in cmd.params:
            flags = "/".join([*p.opts, *p.secondary_opts]) if p.opts else p.name
            kind = "arg" if p.param_type_name == "argument" else "opt"
            count = "multiple" if p.multiple or p.nargs == -1 else "single"
            params.append(f"{kind}:{flags}:{count}:default={p.default!r}")
        surface[path] = sorted(params)
        # typer vendors its own click: groups are known by their subcommands.
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "lhcml")
    return surface


if __name__ == "__main__":
    tmp = REFERENCE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cli_surface(), indent=1, sort_keys=True) + "\n")
    tmp.replace(REFERENCE)
    print(f"{len(json.loads(REFERENCE.read_text()))} commands -> {REFERENCE}")
