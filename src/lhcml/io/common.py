"""Rules shared by the event readers (lhcml / TrackML layout in ``events.py``, ACTS layout
in ``acts.py``): which event a directory means, and how a read failure is told. Both
readers import this module; it imports neither."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

from lhcml.errors import InputError


def only_event(directory: Path, ids: Sequence[int], kind: str = "") -> int:
    """The one event id of ``directory`` (``ids``: its events) when none was given.

    Raises:
        InputError: it holds no event or several.
    """
    if len(ids) != 1:
        raise InputError(
            f"holds {len(ids)} {kind + ' ' if kind else ''}events "
            f"({list(ids[:5])}{'...' if len(ids) > 5 else ''}); "
            "pass an event id or a file prefix such as DIR/event000000001",
            path=directory,
        )
    return ids[0]


def read_failure(e: BaseException) -> str:
    """One-line description of why a file could not be read."""
    kind = "zlib.error" if isinstance(e, zlib.error) else type(e).__name__
    first = str(e).splitlines()[0] if str(e) else kind
    if isinstance(e, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"corrupt or truncated gzip file ({kind}): {first}"
    return f"cannot read ({kind}): {first}"
