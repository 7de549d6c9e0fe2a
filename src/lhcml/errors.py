"""Exceptions for user errors.

Anything a user can cause (a missing file, a bad column, a wrong option) raises a
:class:`LhcmlError`; the CLI prints its message on one line and exits with status 2
instead of dumping a traceback.
"""

from __future__ import annotations

from pathlib import Path


class LhcmlError(Exception):
    """Base class of errors caused by user input or configuration."""


class InputError(LhcmlError):
    """Bad input data: the message names the file and, where known, the column.

    Args:
        message: what is wrong, in words a user can act on.
        path: the file (or file prefix) the problem was found in.
        column: the offending column, if any.
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, column: str | None = None
    ) -> None:
        self.message = message
        self.path = None if path is None else Path(path)
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{': '.join(where)}: {self.message}" if where else self.message


class ConfigError(LhcmlError):
    """A bad option or configuration value; the message names the option."""
