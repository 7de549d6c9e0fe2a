"""What every shipped model computes on fixed inputs, for the before / after check of
refactors (``tests/test_shipped_outputs.py``).

The tracking models (module map, metric learning, Interaction Network, track building,
TrackFormer) run on the real TrackML event in ``../shared/data/trackml``; the jet ParT
runs on seeded constituents. Everything runs on one torch thread so that the bits do not
depend on how many cores the machine has.

Regenerate the reference only when a change is *meant* to alter outputs (new weights)::

    python tests/shipped_outputs.py ../shared/data/trackml/event000000001
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).resolve().parent / "reference" / "shipped_outputs.npz"


def tracking_outputs(prefix: Path) -> dict[str, np.ndarray]:
    """GNN chain (both graph builders) and TrackFormer outputs on one real event."""
    import torch

    from lhcml.fitting.candidates import truth_candidates
    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.evaluate import predict
    from lhcml.gnn.features import compact, event_nodes
    from lhcml.gnn.graph_construction.metric_learning import embed
    from lhcml.gnn.graph_construction.module_map import translate_modules
    from lhcml.gnn.pipeline import GNNChain
    from lhcml.io import read_detectors, read_event

    event = read_event(prefix)
    det = read_detectors(prefix.parent / "detectors.csv.gz")
    out: dict[str, np.ndarray] = {}

    # float32 products: the reference's arithmetic (--precision auto picks bfloat16 on AMX
    # CPUs, tested against float32 in tests/gnn/test_gnn_fused.py and the efficiency).
    chain = GNNChain(threads=1, precision="float32")
    nodes = event_nodes(
        dataclasses.replace(event, truth=None, particles=None),
        use_cells=chain.use_cells,
        detectors=det,
    )
    out["nodes_x"] = nodes.x
    edges = chain.module_map.build_edges(translate_modules(event.hits, det, chain.centres))
    out["module_map_edges"] = edges
    with torch.no_grad():
        x, ei = torch.from_numpy(nodes.x), torch.from_numpy(edges)
        out["edge_scores"] = torch.sigmoid(chain.gnn(*compact(x, ei))).numpy()
    out["tracks_module_map"] = chain.reconstruct(event, detectors=det).tracks.to_numpy()

    ml = GNNChain(graph_construction="metric_learning", threads=1, precision="float32")
    assert ml.embedding is not None
    out["embedding"] = embed(ml.embedding, nodes.x)
    out["tracks_metric_learning"] = ml.reconstruct(event, detectors=det).tracks.to_numpy()

    import lhcml.fitting

    model, features, loss = load_model(Path(lhcml.fitting.__file__).parent / "models" / "default")
    pred = predict(model, features, loss, truth_candidates(event), threads=1)
    out["trackformer_params"] = np.asarray(pred.params)
    out["trackformer_sigma"] = np.asarray(pred.sigma)
    out["trackformer_cand_score"] = np.asarray(pred.cand_score)
    out["trackformer_hit_score"] = np.asarray(pred.hit_score)
    return out


def jet_outputs() -> dict[str, np.ndarray]:
    """The shipped ParT's class probabilities for 64 seeded jets of 5-40 constituents."""
    import torch

    from lhcml.jets.models import SHIPPED_MODEL_DIR
    from lhcml.jets.training import load_model

    model, cfg = load_model(SHIPPED_MODEL_DIR)
    with torch.inference_mode():
        logits = model(*seeded_jets(cfg))
    return {"part_probs": torch.softmax(logits, 1).numpy()}


def seeded_jets(cfg: dict) -> tuple:
    """64 seeded jets of 5-40 constituents of falling pT: ``(x, v, mask)`` tensors in the
    layout of the tagger ``cfg`` (its ``model.input_dim``, ``data.max_particles``)."""
    import torch

    rng = np.random.default_rng(7)
    n_jets, n_max = 64, int(cfg["data"]["max_particles"])
    mask = np.arange(n_max)[None, :] < rng.integers(5, 41, n_jets)[:, None]
    x = rng.normal(size=(n_jets, n_max, int(cfg["model"]["input_dim"]))) * mask[..., None]
    pt = rng.exponential(20.0, (n_jets, n_max))
    eta, phi = rng.normal(0, 0.3, (2, n_jets, n_max))
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], -1)
    return (
        torch.from_numpy(x.astype(np.float32)),
        torch.from_numpy((p4 * mask[..., None]).astype(np.float32)),
        torch.from_numpy(mask),
    )


def shipped_outputs(prefix: Path) -> dict[str, np.ndarray]:
    """All of them, on one torch thread (restored afterwards)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {**tracking_outputs(prefix), **jet_outputs()}
    finally:
        torch.set_num_threads(threads)


def digest(a: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def cpu_capability() -> str:
    """torch's CPU capability plus the ISA extensions oneDNN / MKL dispatch on (AMX, AVX-512
    sub-sets, VNNI): two "AVX512" machines with and without AMX differ in the last bits."""
    import re

    import torch

    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(re.findall(r"\b(amx_\w+|avx512_?\w*|avx_vnni\w*)\b", line))
            break
    return " ".join([str(torch.backends.cpu.get_cpu_capability()), *sorted(flags)])


if __name__ == "__main__":
    outputs = shipped_outputs(Path(sys.argv[1]))
    REFERENCE.parent.mkdir(exist_ok=True)
    meta = {
        "cpu_capability": cpu_capability(),
        "sha256": {k: digest(v) for k, v in outputs.items()},
    }
    tmp = REFERENCE.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, __meta__=np.array(json.dumps(meta)), **outputs)
    tmp.replace(REFERENCE)
    for k, v in outputs.items():
        print(f"{k:24s} {v.dtype} {v.shape} {meta['sha256'][k][:16]}")
