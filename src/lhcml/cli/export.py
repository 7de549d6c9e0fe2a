"""``lhcml export onnx``: the GNN chain's networks as ONNX files for ONNX Runtime (C++,
ACTS, Athena) or ``lhcml reconstruct --backend onnx``.

Examples::

    lhcml export onnx edge_classifier --out ec.onnx
    lhcml export onnx src/lhcml/gnn/models/default/metric_learning.pt --out ml.onnx
    lhcml export onnx my_models/edge_classifier.pt      # writes my_models/edge_classifier.onnx

A ``.onnx`` file beside a model set's ``.pt`` (the default ``--out``) is what
``--backend onnx`` then loads instead of exporting in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="export",
    help="Export models to portable formats (ONNX).",
    no_args_is_help=True,
)

#: Shipped GNN-chain networks by name.
SHIPPED: tuple[str, ...] = ("edge_classifier", "edge_filter", "metric_learning")


@app.command("onnx")
def onnx(
    model: Annotated[
        str,
        typer.Argument(
            help="A GNN-chain model file (.pt: edge classifier, edge filter, metric "
            f"learning) or a shipped name ({', '.join(SHIPPED)})."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The .onnx file (default: beside MODEL)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Run the file in ONNX Runtime on two input sizes and compare with torch.",
        ),
    ] = True,
) -> None:
    """Export MODEL to ONNX with dynamic hit / edge axes; prints its inputs and the parity
    with torch."""
    import numpy as np
    import torch
    from rich.console import Console

    from lhcml.errors import InputError
    from lhcml.gnn.files import load_model
    from lhcml.gnn.onnx import SIGNATURES, OnnxEdgeModel, example_inputs, to_onnx
    from lhcml.gnn.pipeline import default_model_dir
    from lhcml.io import write_atomic

    path = default_model_dir() / f"{model}.pt" if model in SHIPPED else Path(model)
    if model in SHIPPED and not path.is_file():
        raise InputError(f"the shipped model set has no {model}", path=path)
    net, _ = load_model(path)
    data = to_onnx(net)
    target = out if out is not None else path.with_suffix(".onnx")
    if target.suffix != ".onnx":
        raise InputError("--out: the file name must end in .onnx", path=target)
    write_atomic(target, lambda p: Path(p).write_bytes(data))
    console = Console()
    inputs, output, dynamic = SIGNATURES[type(net).__name__]
    axes = "; ".join(f"{k}: axis {a} = {v}" for k, d in dynamic.items() for a, v in d.items())
    console.print(
        f"wrote [bold]{target}[/] ({len(data) / 2**20:.1f} MB): {type(net).__name__}, inputs "
        f"{list(inputs)} -> {output}; dynamic axes {axes}",
        highlight=False,
    )
    if not check:
        return
    session = OnnxEdgeModel(target)
    if hasattr(net, "fused"):
        net.fused = False  # compare with the torch path the file was traced from
    for n_hits, n_edges in ((50, 200), (3000, 20000)):
        ex = example_inputs(net, n_hits, n_edges)
        with torch.no_grad():
            ref = net(*ex).numpy()
        diff = float(np.abs(session.run(*ex)[0] - ref).max())
        console.print(
            f"ONNX Runtime vs torch, {n_hits} hits / {n_edges} edges: max |diff| = {diff:.2e}",
            highlight=False,
        )
        if not diff < 1e-4:
            raise InputError(f"ONNX output differs from torch by {diff:.2e}", path=target)
