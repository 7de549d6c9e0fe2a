"""``lhcml export onnx``: lhcml's networks as ONNX files for ONNX Runtime (C++, ACTS,
Athena) or ``--backend onnx``.

Examples::

    lhcml export onnx edge_classifier --out ec.onnx
    lhcml export onnx metric_learning --out ml.onnx
    lhcml export onnx trackformer --out trackformer.onnx
    lhcml export onnx part --out part.onnx
    lhcml export onnx my_models/edge_classifier.pt      # writes my_models/edge_classifier.onnx

MODEL is a shipped name or a path: a GNN-chain ``.pt`` file, a TrackFormer run folder
(``model.pt`` + ``config.yaml``) or a ParT model folder (``weights.pt`` + ``config.yaml``).
A ``.onnx`` file beside a model set's ``.pt`` (the default ``--out``) is what
``lhcml reconstruct --backend onnx`` then loads instead of exporting in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="export",
    help="Export models to portable formats (ONNX).",
    no_args_is_help=True,
)

#: Shipped GNN-chain networks by name.
SHIPPED: tuple[str, ...] = ("edge_classifier", "edge_filter", "metric_learning")
#: Every shipped name MODEL may be.
NAMES: tuple[str, ...] = (*SHIPPED, "trackformer", "part")


def _signature(model: str) -> tuple[Any, Path, Path]:
    """``(OnnxSignature, model path, default .onnx path)`` of a shipped name or a path."""
    from lhcml.errors import InputError

    if model in SHIPPED:
        from lhcml.gnn.pipeline import default_model_dir

        path = default_model_dir() / f"{model}.pt"
        if not path.is_file():
            raise InputError(f"the shipped model set has no {model}", path=path)
    elif model == "trackformer":
        import lhcml.fitting

        path = Path(lhcml.fitting.__file__).parent / "models" / "default"
    elif model == "part":
        from lhcml.jets.models import SHIPPED_MODEL_DIR

        path = SHIPPED_MODEL_DIR
    else:
        path = Path(model)
    if path.is_file() and path.suffix == ".pt":
        from lhcml.gnn.files import load_model
        from lhcml.gnn.onnx import onnx_signature

        return onnx_signature(load_model(path)[0]), path, path.with_suffix(".onnx")
    if path.is_dir() and (path / "config.yaml").is_file():
        if (path / "model.pt").is_file():
            from lhcml.fitting.checkpoint import load_model as load_trackformer
            from lhcml.fitting.onnx import onnx_signature as trackformer_signature

            sig = trackformer_signature(load_trackformer(path)[0])
            return sig, path, path / "model.onnx"
        if (path / "weights.pt").is_file():
            from lhcml.jets.models.part import ParticleTransformer
            from lhcml.jets.onnx import onnx_signature as part_signature
            from lhcml.jets.training import load_model as load_tagger

            tagger = load_tagger(path)[0]
            if not isinstance(tagger, ParticleTransformer):
                raise InputError(
                    f"ONNX export covers the Particle Transformer, not {type(tagger).__name__}",
                    path=path,
                )
            return part_signature(tagger), path, path / "model.onnx"
    if not path.exists():
        raise InputError("model file or folder not found", path=path)
    raise InputError(
        f"not an lhcml model: use one of {list(NAMES)}, a GNN .pt file, a TrackFormer run "
        "folder or a ParT model folder",
        path=path,
    )


@app.command("onnx")
def onnx(
    model: Annotated[
        str,
        typer.Argument(help=f"A shipped model ({', '.join(NAMES)}) or a model file / folder."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The .onnx file (default: beside / in MODEL)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Run the file in ONNX Runtime on two input sizes and compare with torch.",
        ),
    ] = True,
) -> None:
    """Export MODEL to ONNX with dynamic axes (hits / edges, candidates / hits, jets /
    particles); prints its inputs and the parity with torch."""
    from rich.console import Console

    from lhcml.errors import InputError
    from lhcml.io import write_atomic
    from lhcml.portable.onnx import OnnxModule

    sig, _, default_out = _signature(model)
    target = out if out is not None else default_out
    if target.suffix != ".onnx":
        raise InputError("--out: the file name must end in .onnx", path=target)
    data = sig.export()
    write_atomic(target, lambda p: Path(p).write_bytes(data))
    console = Console()
    axes = "; ".join(f"{k}: axis {a} = {v}" for k, d in sig.dynamic.items() for a, v in d.items())
    console.print(
        f"wrote [bold]{target}[/] ({len(data) / 2**20:.1f} MB): inputs {list(sig.input_names)}"
        f" -> {list(sig.output_names)}; dynamic axes {axes}",
        highlight=False,
    )
    if not check:
        return
    session = OnnxModule(target)
    for size in (0, 1):
        shapes = ", ".join("x".join(map(str, t.shape)) for t in sig.example(size))
        diff = sig.max_diff(session, size)
        console.print(
            f"ONNX Runtime vs torch, inputs {shapes}: max |diff| = {diff:.2e}", highlight=False
        )
        if not diff < 1e-4:
            raise InputError(f"ONNX output differs from torch by {diff:.2e}", path=target)
