"""The ``lhcml`` command line (typer + rich). Commands live one per module."""
