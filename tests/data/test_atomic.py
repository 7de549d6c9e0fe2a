from __future__ import annotations

import json
from pathlib import Path

import pytest

from lhcml.io import write_atomic, write_json_atomic


def test_interrupted_write_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"
    target.write_text("finished")

    def fail_halfway(p: Path) -> None:
        p.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, fail_halfway)
    assert target.read_text() == "finished"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]  # no temp file left


def test_json_atomic_roundtrip_numpy(tmp_path: Path) -> None:
    import numpy as np

    out = write_json_atomic(tmp_path / "sub" / "a.json", {"x": np.float32(0.5), "n": np.int64(3)})
    assert json.loads(out.read_text()) == {"x": 0.5, "n": 3}


def test_atomic_files_get_umask_permissions(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        out = write_atomic(tmp_path / "f.txt", lambda p: p.write_text("x"))
    finally:
        os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o644
