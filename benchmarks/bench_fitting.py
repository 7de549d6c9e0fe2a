"""Track-fitting benchmark: helix fit, lhcml Kalman filter, ACTS Kalman filter, TrackFormer.

One run, the same truth tracks for every fitter (primaries, 0.5 < pT < 10 GeV,
|eta| < 2.5, >= 7 hits) of simulated ttbar events (default: mu = 200, the issue's
target sample), reference = the ACTS Kalman filter (pyacts, truth tracks, helix-fit
seeds). Prints, per fitter: q/pT relative resolution per pT bin (clipped RMS and
sigma68), pull widths of all five parameters, charge-sign accuracy, CPU tracks per
second (single thread unless --threads), and the ratios to ACTS; then the issue's
targets, met or not. With a CUDA device (``--device cuda``), TrackFormer's GPU throughput.

Make the events with ``experiments/trackformer/make_data.sh`` (ttbar_mu200_bench), then::

    python benchmarks/bench_fitting.py data/fitting/ttbar_mu200_bench --max-events 20

``--extra-model DIR`` (repeatable) fits the same tracks with further TrackFormer models in
the same run, each compared with this run's ACTS KF; ``--fitters acts,trackformer`` skips
the helix fit's and lhcml KF's rows.

Writes ``summary.json`` and plots to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

PARAMS = ("qopt", "theta", "phi", "d0", "z0")


def _w(res: dict, method: str = "clipped_rms") -> list[float]:
    return [np.nan if w is None else w for w in res["qopt"]["vs_pt"][method]["width"]]


def _gpu_throughput(model_dir: Path, events: Path, max_events: int, device: str) -> float | None:
    import torch

    from lhcml.fitting.candidates import Candidates, TruthSelection, truth_candidates
    from lhcml.fitting.checkpoint import load_model
    from lhcml.fitting.dataset import encode, length_buckets
    from lhcml.io import list_events, read_event

    if not torch.cuda.is_available():
        return None
    model, feat, _loss = load_model(model_dir)
    model = model.to(device)
    sel = TruthSelection(pt_min=0.5, pt_max=10.0, eta_max=2.5)
    ids = list_events(events)[:max_events]
    cands = Candidates.concat(truth_candidates(read_event(events, i), sel) for i in ids)
    enc = encode(cands, feat)
    batches = [
        {k: v.to(device) for k, v in b.items() if isinstance(v, torch.Tensor)}
        for b in length_buckets(enc, 16384)
    ]
    with torch.inference_mode():
        for b in batches:
            model(b["hits"], b["detector_id"], None, b["global"], False)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for b in batches:
            model(b["hits"], b["detector_id"], None, b["global"], False)
        torch.cuda.synchronize()
    return len(cands) / (time.perf_counter() - t0)


def _targets(tf: dict, ref: dict, bins: list[float]) -> dict:
    """Issue 6's targets for one TrackFormer against the ACTS KF of the same run."""
    w, r = _w(tf["resolution"]), _w(ref["resolution"])
    pulls = [tf["resolution"][p]["pull"]["clipped_rms"]["width"] for p in PARAMS]
    return {
        "resolution": all(a <= 1.2 * b for a, b, lo in zip(w, r, bins, strict=False) if lo >= 1.0),
        "pulls": all(abs(p - 1) <= 0.1 for p in pulls),
        "pull_widths": pulls,
        "throughput_ratio": tf["tracks_per_second"] / ref["tracks_per_second"],
    }


def main() -> None:
    from lhcml.cli.fit import default_model_dir
    from lhcml.fitting.candidates import TruthSelection
    from lhcml.fitting.evaluate import run_comparison

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("events", type=Path, help="simulated event directory")
    ap.add_argument("--max-events", type=int, default=20)
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--out", type=Path, default=Path("runs/bench_fitting"))
    ap.add_argument("--threads", type=int, default=1, help="TrackFormer CPU threads")
    ap.add_argument("--particle", default="pion", help="ACTS particle hypothesis")
    ap.add_argument("--device", default="cpu", help="also time TrackFormer on this device")
    ap.add_argument(
        "--fitters",
        default="helix,kalman,acts,trackformer",
        help="comma-separated fitters (acts and trackformer are always run)",
    )
    ap.add_argument(
        "--extra-model",
        type=Path,
        action="append",
        default=[],
        help="another TrackFormer run directory, fitted on the same tracks in this run and "
        "compared with this run's ACTS KF (repeatable; shown as trackformer:<dir name>)",
    )
    args = ap.parse_args()
    fitters = list(dict.fromkeys([*args.fitters.split(","), "acts", "trackformer"]))

    t0 = time.perf_counter()
    s = run_comparison(
        args.events,
        args.out,
        model_dir=args.model,
        selection=TruthSelection(pt_min=0.5, pt_max=10.0, eta_max=2.5, min_hits=7),
        fitters=fitters,
        max_events=args.max_events,
        particle=args.particle,
        threads=args.threads,
        progress=lambda m: print(f"  {m}", flush=True),
    )
    for extra in args.extra_model:
        # Same selection and events: the same tracks; only TrackFormer is run again.
        e = run_comparison(
            args.events,
            args.out / f"extra_{extra.name}",
            fitters=("trackformer",),
            model_dir=extra,
            selection=TruthSelection(pt_min=0.5, pt_max=10.0, eta_max=2.5, min_hits=7),
            max_events=args.max_events,
            threads=args.threads,
            quality=False,
            plots=False,
        )
        if e["tracks"] != s["tracks"]:
            raise RuntimeError(f"{extra}: {e['tracks']} tracks, not {s['tracks']}")
        s["fitters"][f"trackformer:{extra.name}"] = e["fitters"]["trackformer"]
    bins = s["pt_bins"]
    fits = s["fitters"]
    ref = fits["acts"]
    print(
        f"\n{s['tracks']} tracks, {s['n_events']} events of {s['events']} ({time.perf_counter() - t0:.0f} s)"
    )
    head = " ".join(f"{lo:g}-{hi:g}".rjust(9) for lo, hi in itertools.pairwise(bins))
    print("\nq/pT relative resolution [%] per pT bin [GeV], clipped RMS (Gaussian-core fit below)")
    print(f"{'fitter':12s} {head}   ratio to ACTS per bin")
    for name, f in fits.items():
        w, r = _w(f["resolution"]), _w(ref["resolution"])
        w68, r68 = _w(f["resolution"], "gauss"), _w(ref["resolution"], "gauss")
        cells = " ".join(f"{100 * x:9.2f}" for x in w)
        ratios = " ".join(f"{a / b:5.2f}" for a, b in zip(w, r, strict=True))
        print(f"{name:12s} {cells}   {ratios}")
        ov = f["resolution"]["qopt"]["overall"]["sigma68"]["width"]
        print(
            f"{'':12s} (Gaussian core: {' '.join(f'{100 * x:.2f}' for x in w68)};"
            f" ratio {' '.join(f'{a / b:.2f}' for a, b in zip(w68, r68, strict=True))};"
            f" overall sigma68 {100 * ov:.2f} %)"
        )
    print("\npull widths (clipped RMS) and charge-sign accuracy")
    print(f"{'fitter':12s} " + " ".join(p.rjust(7) for p in PARAMS) + "   charge")
    for name, f in fits.items():
        res = f["resolution"]
        pulls = [res[p].get("pull", {}).get("clipped_rms", {}).get("width") for p in PARAMS]
        cells = " ".join(f"{x:7.3f}" if x is not None else "      -" for x in pulls)
        print(f"{name:12s} {cells}   {res['charge_accuracy']:.4f}")
    print("\nresolution of the other parameters (clipped RMS, all tracks)")
    print(f"{'fitter':12s} " + " ".join(p.rjust(10) for p in PARAMS[1:]))
    for name, f in fits.items():
        res = f["resolution"]
        print(
            f"{name:12s} "
            + " ".join(f"{res[p]['overall']['clipped_rms']['width']:10.5f}" for p in PARAMS[1:])
        )
    print("\nthroughput (CPU, tracks/s; Kalman filters single-threaded)")
    for name, f in fits.items():
        extra = f.get("model_only_tracks_per_second")
        more = f" (network alone {extra:.0f})" if extra else ""
        print(
            f"{name:12s} {f['tracks_per_second']:10.0f}  x{f['tracks_per_second'] / ref['tracks_per_second']:.1f} ACTS{more}"
        )
    gpu = None
    if args.device != "cpu":
        gpu = _gpu_throughput(args.model, args.events, args.max_events, args.device)
        print(
            f"TrackFormer on {args.device}: " + (f"{gpu:.0f} tracks/s" if gpu else "no CUDA device")
        )
    for name in [n for n in fits if n.startswith("trackformer")]:
        met = _targets(fits[name], ref, bins)
        print(f"\ntargets ({name} vs ACTS KF):")
        print(
            f"  q/pT resolution within 1.2x at 1-10 GeV: {'MET' if met['resolution'] else 'NOT MET'}"
        )
        print(
            f"  pull widths within 10 % of 1 ({', '.join(f'{p:.2f}' for p in met['pull_widths'])}): "
            f"{'MET' if met['pulls'] else 'NOT MET'}"
        )
        speed = met["throughput_ratio"]
        print(
            f"  CPU throughput >= 10x ACTS KF: {'MET' if speed >= 10 else 'NOT MET'} (x{speed:.1f})"
        )
        if name == "trackformer":
            s["targets"] = {**met, "gpu_tracks_per_second": gpu}
        else:
            fits[name]["targets"] = met
    (args.out / "summary.json").write_text(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
