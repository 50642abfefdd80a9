"""Seconds per epoch of Baseline CN and of GAMO (conv family, LS) on Fashion-MNIST, paper profile.

Epochs of the two methods are timed alternately in one process (so both see the same machine
state), after one warm-up epoch each. A GAMO epoch is Algorithm 1's outer loop: one epoch of F+M
on real images, the recomputation of F's features, and ceil(n/b) GAMO iterations.

    python bench/epoch_time.py --threads 2 --epochs 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import command, git_rev, machine, md_table  # noqa: E402
from gamo.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from gamo.data import load_dataset  # noqa: E402
from gamo.train import Trainer  # noqa: E402


def time_epoch(tr: Trainer) -> dict[str, float]:
    """Run one outer epoch; seconds spent in each phase (the feature pass counted apart)."""
    m = tr.method
    out: dict[str, float] = {}
    for phase, length in m.schedule():
        t0 = time.perf_counter()
        if phase == "gamo":
            m.train_features()      # Alg. 1: features recomputed after F's phase
            t1 = time.perf_counter()
            out["features"] = t1 - t0
            t0 = t1
        for _ in range(length):
            tr.step()
        if m.device.type == "cuda":
            torch.cuda.synchronize()
        out[phase] = time.perf_counter() - t0
    out["epoch"] = sum(out.values())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per method (after one warm-up)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="bench/results/epoch_time")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    data_cfg = DataConfig(dataset=a.dataset, profile=a.profile)
    data = load_dataset(data_cfg)
    trainers = {}
    for method in ("baseline", "gamo"):
        cfg = RunConfig(data=data_cfg, train=TrainConfig(method=method, loss="ls", steps=0, epochs=a.epochs + 1,
                                                         device=a.device, threads=a.threads))
        trainers[method] = Trainer(cfg, data, with_grid=False)
    times: dict[str, list[dict[str, float]]] = {m: [] for m in trainers}
    for epoch in range(a.epochs + 1):
        for method, tr in trainers.items():
            t = time_epoch(tr)
            print(f"epoch {epoch} {method}: " + " ".join(f"{k} {v:.2f}s" for k, v in t.items()), flush=True)
            if epoch > 0:
                times[method].append(t)

    dev = str(trainers["gamo"].device)
    med = {m: {k: statistics.median(t[k] for t in ts) for k in ts[0]} for m, ts in times.items()}
    ratio = med["gamo"]["epoch"] / med["baseline"]["epoch"]
    rows = []
    for method, ts in times.items():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in med[method].items() if k != "epoch")
        rows.append([method, f"{med[method]['epoch']:.2f}", " / ".join(f"{t['epoch']:.2f}" for t in ts), parts])
    counts = data.class_counts.tolist()
    md = "\n".join([
        f"# Seconds per epoch: Baseline CN vs GAMO ({a.dataset}, profile {a.profile}, conv family, LS)",
        "",
        f"- command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        f"- device: {dev}, torch threads: {a.threads}",
        f"- training counts: {counts} (n = {sum(counts)}, batch 32, {trainers['gamo'].method.iters_per_phase} iterations per phase)",
        f"- {a.epochs} timed epochs per method after one warm-up, alternating methods; medians",
        "",
        md_table(["method", "median s/epoch", "each epoch (s)", "median s per phase"], rows),
        "",
        f"**GAMO / Baseline CN epoch time: {ratio:.2f}x** (target: at most 2x).",
        "",
    ])
    Path(a.out + ".md").parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".md").write_text(md)
    Path(a.out + ".json").write_text(json.dumps({"command": command(), "machine": machine(), "device": dev,
                                                 "threads": a.threads, "times": times, "ratio": ratio}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
