"""Small jet samples generated once per test session (Pythia 8 + FastJet, seconds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from lhcml.cli import main
from lhcml.cli.jets import app as jets_app
from lhcml.jets.config import GenerationConfig
from lhcml.jets.writer import generate_jets

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments" / "jets"


def make_sample(out: Path, process: str, events: int, **kwargs: object) -> Path:
    cfg = GenerationConfig(process=process, events_per_chunk=events, seed=11, **kwargs)
    generate_jets(cfg, out, events=events)
    return out


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Top, W and QCD jets with pT 500-600 GeV (about 40 top, 30 W, 75 QCD jets)."""
    base = tmp_path_factory.mktemp("jets")
    return {
        "top": make_sample(base / "top", "top", 200),
        "w": make_sample(base / "w", "w", 160),
        "qcd": make_sample(base / "qcd", "qcd", 150),
    }


def cli() -> typer.Typer:
    """The lhcml app with the jets commands, registered as main.py does."""
    app = typer.Typer(cls=main._Group)
    app.add_typer(jets_app, name="jets")
    return app


def run(*args: str) -> object:
    """Invoke ``lhcml ARGS`` in-process; returns click's Result."""
    return CliRunner().invoke(cli(), list(args))


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread for these tests: the models are tiny, and on a shared machine two
    OpenMP threads competing with other processes run several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
