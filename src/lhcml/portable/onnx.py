"""ONNX export of torch modules and ONNX Runtime inference behind a torch-like call.

Export uses the ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``)
with named dynamic axes, so one file serves any number of hits, edges or constituents.
The optional dependencies (``onnx``, ``onnxscript``, ``onnxruntime``) come with
``pip install "lhcml[onnx]"``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import ConfigError, InputError

#: The ONNX opset the exports target (onnxruntime >= 1.20 runs it).
OPSET = 18


def require_onnx() -> None:
    """Raise a clear error when the ONNX packages are not installed."""
    missing = []
    for name in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f'the ONNX backend needs {", ".join(missing)}: pip install "lhcml[onnx]"')


def export_module(
    module: Any,
    example: Sequence[Any],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic: Mapping[str, Mapping[int, str]],
) -> bytes:
    """The ONNX model (serialised) of ``module`` called on ``example``.

    Args:
        module: a torch ``nn.Module`` in eval mode.
        example: example inputs, one per name in ``input_names``.
        input_names: the ONNX graph's input names (the module's ``forward`` arguments).
        output_names: names of its outputs.
        dynamic: per input, the axes that vary and their names (``{"x": {0: "hits"}}``);
            axes of one name are the same size.
    """
    import torch

    require_onnx()
    dims: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    for name in input_names:
        axes = dynamic.get(name, {})
        shapes[name] = {
            axis: dims.setdefault(label, torch.export.Dim(label)) for axis, label in axes.items()
        }
    # The exporter reports its steps on stdout, logs missing torchvision ops and warns
    # about its own internals (FutureWarning): a library call stays quiet.
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            torch.no_grad(),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            program = torch.onnx.export(
                module,
                tuple(example),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=shapes,
                opset_version=OPSET,
                dynamo=True,
                verbose=False,
            )
    finally:
        log.setLevel(level)
    return program.model_proto.SerializeToString()


@dataclass
class OnnxSignature:
    """What to trace and how: a module whose ``forward`` takes tensors and returns a
    tensor or a tuple of tensors, its input / output names, dynamic axes, and example
    inputs (``example(0)`` small, for tracing; ``example(1)`` larger, for parity checks).
    """

    module: Any
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]
    example: Callable[[int], tuple[Any, ...]]

    def export(self) -> bytes:
        """The serialised ONNX model (:func:`export_module`)."""
        return export_module(
            self.module,
            self.example(0),
            input_names=self.input_names,
            output_names=self.output_names,
            dynamic=self.dynamic,
        )

    def max_diff(self, session: OnnxModule, size: int) -> float:
        """Largest |ONNX Runtime - torch| over all outputs on ``example(size)``."""
        import torch

        inputs = self.example(size)
        with torch.no_grad():
            ref = self.module(*inputs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        out = session.run(*inputs)
        return max(
            float(np.abs(o - r.numpy()).max()) if o.size else 0.0
            for o, r in zip(out, ref, strict=True)
        )


#: Ops whose ONNX Runtime CPU kernels race when several threads add into one row:
#: ``ScatterND(reduction="add")`` with repeated indices (every node of in-degree > 1 in
#: a message-passing sum) gave errors up to 3.6 in the logits with 2 threads, none with 1
#: (onnxruntime 1.32). Models holding them run on one intra-op thread.
SERIAL_OPS: frozenset[str] = frozenset({"ScatterND", "ScatterElements"})


def _needs_serial(model: bytes | str | Path) -> bool:
    import onnx

    proto = onnx.load(str(model)) if isinstance(model, str | Path) else onnx.load_from_string(model)
    return any(
        node.op_type in SERIAL_OPS
        and any(a.name == "reduction" and a.s not in (b"", b"none") for a in node.attribute)
        for node in proto.graph.node
    )


class OnnxModule:
    """An ONNX model run by ONNX Runtime, called like the torch module it came from.

    Args:
        model: a ``.onnx`` file or the serialised model.
        threads: ONNX Runtime intra-op threads (``None``: torch's thread count); one for
            models with a reducing scatter (:data:`SERIAL_OPS`), whose kernels race.

    Calling it with torch tensors (or numpy arrays) in the order of the graph's inputs
    returns a torch tensor (or a tuple, for several outputs), on the CPU.
    """

    def __init__(self, model: bytes | str | Path, *, threads: int | None = None) -> None:
        require_onnx()
        import onnxruntime as ort
        import torch

        source = str(model) if isinstance(model, str | Path) else model
        if isinstance(model, str | Path) and not Path(model).is_file():
            raise InputError("ONNX model file not found", path=model)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        try:
            if _needs_serial(model):
                opts.intra_op_num_threads = 1
            self.session = ort.InferenceSession(
                source, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types
            where = model if isinstance(model, str | Path) else None
            raise InputError(f"cannot load ONNX model: {str(e).splitlines()[0]}", path=where) from e
        #: The file it was loaded from (``None``: serialised bytes, e.g. an in-memory export).
        self.source = Path(model) if isinstance(model, str | Path) else None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def eval(self) -> OnnxModule:
        """No-op, for code written for torch modules."""
        return self

    def run(self, *inputs: Any) -> list[np.ndarray]:
        """The outputs as numpy arrays."""
        if len(inputs) != len(self.input_names):
            raise ConfigError(
                f"ONNX model takes {len(self.input_names)} inputs {self.input_names}, "
                f"got {len(inputs)}"
            )
        feed = {
            name: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
            for name, v in zip(self.input_names, inputs, strict=True)
        }
        return self.session.run(None, feed)

    def __call__(self, *inputs: Any) -> Any:
        import torch

        out = [torch.from_numpy(o) for o in self.run(*inputs)]
        return out[0] if len(out) == 1 else tuple(out)
