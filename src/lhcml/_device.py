"""The ``--device`` option of every train / infer command: checked once, mapped to
torch devices and Lightning ``Trainer`` arguments."""

from __future__ import annotations

from typing import Any

from lhcml.errors import ConfigError


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, with a clear error when CUDA is asked for and absent."""
    import torch

    if not (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        raise ConfigError(f"--device: '{device}' unknown; use cpu or cuda (cuda:N)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device available")
    return device


def trainer_device(device: str) -> dict[str, Any]:
    """Lightning ``Trainer`` arguments running on ``device`` (one device)."""
    device = check_device(device)
    if device == "cpu":
        return {"accelerator": "cpu"}
    index = int(device.split(":")[1]) if ":" in device else 0
    return {"accelerator": "gpu", "devices": [index]}
