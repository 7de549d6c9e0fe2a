"""The chain config (``experiments/gnn/*.yaml``): reading it, its sections, the target
selection, and building a class from a section whose keys are its ``__init__`` arguments
(unknown keys are a :class:`~lhcml.errors.ConfigError` naming the section).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lhcml.errors import ConfigError
from lhcml.gnn.features import (
    DEFAULT_TARGET,
)
from lhcml.metrics.tracking import FiducialSelection


def load_config(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML config (``yaml.safe_load``); ``{}`` for ``None``.

    Raises:
        ConfigError: missing file or not a mapping.
    """
    import yaml

    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of sections")
    return data


def section(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A config section (``{}`` if absent).

    Raises:
        ConfigError: the section is not a mapping.
    """
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"config section '{name}' must be a mapping")
    return value


def target_selection(config: dict[str, Any]) -> FiducialSelection:
    """The target particles (config section ``target``: FiducialSelection arguments)."""
    t = section(config, "target")
    try:
        return FiducialSelection(**t) if t else DEFAULT_TARGET
    except TypeError as e:
        raise ConfigError(f"target: {e}") from e


def build(cls: type, kwargs: dict[str, Any], where: str, **fixed: Any) -> Any:
    try:
        return cls(**fixed, **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e
