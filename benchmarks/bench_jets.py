"""Jet taggers side by side on the same files: our ParT vs weaver-core's ParticleTransformer.

Both Particle Transformers get the same sizes (the ``model`` section of the config), the
same training (one :class:`lhcml.jets.training.JetTagger`: AdamW, warm-up + cosine, the
same epochs and batches), the same seed and the same train / test jets. weaver-core's
model is ``weaver.nn.model.ParticleTransformer.ParticleTransformer`` (``version=1``, its
own defaults otherwise: input BatchNorm, sequence trimming, MoCo initialisation) behind a
small adapter for the ``(B, C, L)`` layout. The baselines (Particle Flow Network, BDT on
substructure) are trained on the same jets.

Reported per tagger: accuracy, AUC, background rejection 1/eps_B at eps_S = 30% and 50%,
training throughput (jets per second of forward + backward + optimiser step, from the
full training run) and inference throughput (forward passes on the test jets). Since the
machine may be shared, the two ParTs are also timed interleaved (A, B, A, B, ... on the
same batches, median of the rounds), which is what the speed ratios use.

    python benchmarks/bench_jets.py [--config experiments/jets/part_small.yaml]
        [--jets-per-class 8000] [--epochs 2] [--threads 1] [--rounds 5]

Needs the samples of the config (``lhcml jets generate``, see the config's header) and
``pip install weaver-core`` (the ``bench`` extra); without weaver-core the table says why.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from lhcml.jets.dataset import JetData, LengthBucketSampler
from lhcml.jets.evaluation import classification_metrics, predict
from lhcml.jets.models.part import ParticleTransformer
from lhcml.jets.models.pfn import ParticleFlowNetwork
from lhcml.jets.models.substructure import SubstructureBDT
from lhcml.jets.training import JetDataModule, fit, load_config

REPO = Path(__file__).resolve().parents[1]


class WeaverParT(nn.Module):
    """weaver-core's ParticleTransformer with our ``(x, v, mask)`` call signature."""

    def __init__(self, **model_cfg: Any) -> None:
        super().__init__()
        logging.getLogger("weaver").setLevel(logging.WARNING)
        from weaver.nn.model.ParticleTransformer import ParticleTransformer as Weaver

        cfg = dict(model_cfg)
        block = {
            k: cfg.pop(k) for k in ("dropout", "attn_dropout", "activation_dropout") if k in cfg
        }
        ffn = cfg.pop("ffn_ratio", 4)
        fc = cfg.pop("fc_params", [])
        for key in ("pair_input_dim", "input_bn", "trim"):  # weaver: 4 pair features, BN on
            cfg.pop(key, None)
        self.model = Weaver(
            **cfg,
            block_params={**block, "ffn_ratio": ffn},
            cls_block_params={
                "dropout": 0,
                "attn_dropout": 0,
                "activation_dropout": 0,
                "ffn_ratio": ffn,
            },
            fc_params=fc,
            version=1,
        )

    def forward(self, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(
            x.transpose(1, 2).contiguous(),
            v.transpose(1, 2).contiguous(),
            mask.unsqueeze(1).to(x.dtype),
        )


def _train_eval(
    name: str, model: nn.Module, dm: JetDataModule, cfg: dict[str, Any], test: JetData
) -> dict[str, Any]:
    t0 = time.perf_counter()
    tagger = fit(model, dm, cfg, progress=False)
    wall = time.perf_counter() - t0
    probs, infer = predict(model, test, batch_size=cfg["data"].get("eval_batch_size", 1024))
    m = classification_metrics(test.labels, probs, test.classes)
    m.update(
        {
            "name": name,
            "train_jets_per_s": tagger.train_jets / max(tagger.train_seconds, 1e-9),
            "infer_jets_per_s": infer,
            "train_wall_s": wall,
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    )
    return m


def _interleaved(
    models: dict[str, nn.Module], data: JetData, batch_size: int, rounds: int, seed: int
) -> dict[str, dict[str, float]]:
    """Median train-step and inference throughput, models timed alternately."""
    sampler = LengthBucketSampler(data.lengths, batch_size, seed=seed)
    batches = [data.batch(b) for b in sampler.batches(0)[:4]]
    n = sum(len(b["label"]) for b in batches)
    opts = {k: torch.optim.AdamW(m.parameters(), 1e-4) for k, m in models.items()}
    times: dict[str, dict[str, list[float]]] = {k: {"train": [], "infer": []} for k in models}

    def train_pass(key: str) -> float:
        model, opt = models[key], opts[key]
        model.train()
        t0 = time.perf_counter()
        for b in batches:
            loss = nn.functional.cross_entropy(model(b["x"], b["v"], b["mask"]), b["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    def infer_pass(key: str) -> float:
        model = models[key]
        model.eval()
        with torch.inference_mode():
            t0 = time.perf_counter()
            for b in batches:
                model(b["x"], b["v"], b["mask"])
            return time.perf_counter() - t0

    for key in models:  # warm-up
        train_pass(key)
        infer_pass(key)
    for _ in range(rounds):
        for key in models:
            times[key]["train"].append(train_pass(key))
            times[key]["infer"].append(infer_pass(key))
    return {k: {s: n / statistics.median(v) for s, v in t.items()} for k, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "experiments/jets/part_small.yaml"))
    ap.add_argument("--pfn-config", default=str(REPO / "experiments/jets/pfn.yaml"))
    ap.add_argument("--bdt-config", default=str(REPO / "experiments/jets/bdt.yaml"))
    ap.add_argument("--data", nargs="*", help="Samples (default: the config's data.paths).")
    ap.add_argument("--jets-per-class", type=int, default=8000, help="Training jets per class.")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    ap.add_argument("--rounds", type=int, default=5, help="Interleaved timing rounds.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=160)

    cfg = load_config(args.config)
    if args.data:
        cfg["data"]["paths"] = args.data
    cfg["data"]["paths"] = [
        str(REPO / p) if not Path(p).is_absolute() else p for p in cfg["data"]["paths"]
    ]
    cfg["data"]["max_jets_per_class"] = args.jets_per_class
    cfg.setdefault("trainer", {})["max_epochs"] = args.epochs
    seed = int(cfg.get("seed", 42))
    dm = JetDataModule(**{"seed": seed, **cfg["data"]})
    train, test = dm.split("train"), dm.split("test")
    console.print(
        f"train {len(train)} jets, test {len(test)} jets ({', '.join(train.classes)}), "
        f"{args.epochs} epoch(s), batch {dm.batch_size}, {args.threads} thread(s)"
    )

    rows: list[dict[str, Any]] = []
    models: dict[str, nn.Module] = {}
    L.seed_everything(seed, verbose=False)
    ours = ParticleTransformer(**cfg["model"])
    rows.append(_train_eval("lhcml ParT", ours, dm, cfg, test))
    models["lhcml ParT"] = ours
    weaver_error = None
    try:
        L.seed_everything(seed, verbose=False)
        ref = WeaverParT(**cfg["model"])
    except ImportError as e:
        weaver_error = f"weaver-core not importable ({e}); pip install 'lhcml[bench]'"
    else:
        rows.append(_train_eval("weaver-core ParT", ref, dm, cfg, test))
        models["weaver-core ParT"] = ref

    pfn_cfg = copy.deepcopy(load_config(args.pfn_config))
    pfn_cfg["trainer"]["max_epochs"] = args.epochs
    L.seed_everything(seed, verbose=False)
    rows.append(_train_eval("PFN", ParticleFlowNetwork(**pfn_cfg["model"]), dm, pfn_cfg, test))

    bdt = SubstructureBDT(**{"seed": seed, **load_config(args.bdt_config).get("model", {})})
    t0 = time.perf_counter()
    bdt.fit(train.jets, train.labels)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = bdt.predict_proba(test.jets)
    t_inf = time.perf_counter() - t0
    m = classification_metrics(test.labels, probs, test.classes)
    m.update(
        {
            "name": "BDT (substructure)",
            "train_jets_per_s": len(train) / t_fit,
            "infer_jets_per_s": len(test) / t_inf,
            "parameters": 0,
        }
    )
    rows.append(m)

    timing = (
        _interleaved(models, train, dm.batch_size, args.rounds, seed) if len(models) > 1 else {}
    )

    table = Table(
        title=f"Jet tagging, {', '.join(train.classes[1:])} vs {train.classes[0]} "
        f"(test: {len(test)} jets)"
    )
    for col in (
        "tagger",
        "params",
        "accuracy",
        "AUC",
        "1/eps_B @ 30%",
        "1/eps_B @ 50%",
        "train jets/s",
        "infer jets/s",
    ):
        table.add_column(col, justify="right" if col != "tagger" else "left")

    def rej(r: dict[str, Any], wp: int) -> str:
        value, unc = r[f"rejection_{wp}"], r[f"rejection_{wp}_unc"]
        if not np.isfinite(value):  # no background jet passes
            return f"> {r['n_background']}"
        return f"{value:.0f} ± {unc:.0f}" if value >= 100 else f"{value:.1f} ± {unc:.1f}"

    for r in rows:
        table.add_row(
            r["name"],
            f"{r['parameters']:,}",
            f"{r['accuracy']:.4f}",
            f"{r['auc']:.4f}",
            rej(r, 30),
            rej(r, 50),
            f"{r['train_jets_per_s']:.0f}",
            f"{r['infer_jets_per_s']:.0f}",
        )
    if len(rows) >= 2 and rows[1]["name"].startswith("weaver"):
        a, b = rows[0], rows[1]
        table.add_row(
            "ratio ours / weaver",
            "",
            f"{a['accuracy'] / b['accuracy']:.3f}",
            f"{a['auc'] / b['auc']:.4f}",
            f"{a['rejection_30'] / b['rejection_30']:.2f}",
            f"{a['rejection_50'] / b['rejection_50']:.2f}",
            f"{a['train_jets_per_s'] / b['train_jets_per_s']:.2f}",
            f"{a['infer_jets_per_s'] / b['infer_jets_per_s']:.2f}",
        )
    console.print(table)
    if weaver_error:
        console.print(f"[yellow]weaver-core reference not run[/]: {weaver_error}")
    if timing:
        t = Table(
            title=f"ParT throughput, interleaved (median of {args.rounds} rounds, "
            f"jets/s, same 4 batches)"
        )
        for col in ("model", "train", "infer"):
            t.add_column(col, justify="right" if col != "model" else "left")
        for k, v in timing.items():
            t.add_row(k, f"{v['train']:.0f}", f"{v['infer']:.0f}")
        a, b = timing["lhcml ParT"], timing["weaver-core ParT"]
        t.add_row(
            "ratio ours / weaver",
            f"{a['train'] / b['train']:.2f}",
            f"{a['infer'] / b['infer']:.2f}",
        )
        console.print(t)
    console.print(f"torch {torch.__version__}, {args.threads} thread(s), numpy {np.__version__}")


if __name__ == "__main__":
    main()
