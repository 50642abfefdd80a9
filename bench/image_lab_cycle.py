"""The Image Lab's conv run, in the run's own terms: CPU seconds of its loop's work per snapshot.

A live run's loop trains ``speed`` iterations (the page's default: 10), makes a snapshot, and
answers the page's queries between iterations (the audit of the fixed-noise points, about once
per 2.5 s while the page is open). On a shared machine wall-clock rates depend on what else runs;
the CPU time of that work (``time.process_time``, one torch thread as the app's runs use) does
not, and says how many snapshots a second (new map steps) one free core allows; the audit's
time comes on top, in the same thread.

Measured on the Image Lab's Fashion-MNIST default (exponential profile, ratio 10, GAMO, conv
family, seed 0) in F's phase (right after step 0) and in G's phase (the epoch's middle), built by
the engine found under ``--root`` (another checkout, e.g. ``git archive <rev>`` unpacked, to
compare revisions).

Usage::

    python bench/image_lab_cycle.py [--root DIR] [--cycles 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose engine and app are measured")
    ap.add_argument("--cycles", type=int, default=3, help="snapshot cycles averaged per phase")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.root).resolve()))
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from app.ui import imagelab as il
    from app.ui.queries import audit_fixed_noise
    from gamo.config import DataConfig
    from gamo.data import load_dataset, load_source
    from gamo.train import Trainer

    s = il.ImageSettings(dataset="fashion-mnist", family="conv")
    src = load_source(DataConfig(dataset="fashion-mnist", data_root=il.data_root()))
    counts = [int(c) for c in np.bincount(src.y, minlength=len(src.class_names))]
    spec, _ = il.class_sizes(s, counts, tuple(src.class_names), "fashion-mnist")
    dc = il.data_config(s, "fashion-mnist", spec, il.n_test_for("fashion-mnist"))
    tr = Trainer(il.build_config(s, dc), load_dataset(dc))
    m = tr.method
    tr.snapshot(with_train=True)
    audit_fixed_noise(tr)

    def cycle() -> tuple[float, float]:
        steps = snap = 0.0
        for _ in range(args.cycles):
            t0 = time.process_time()
            for _ in range(s.speed):
                tr.step()
            t1 = time.process_time()
            tr.snapshot()
            steps, snap = steps + t1 - t0, snap + time.process_time() - t1
        return steps / args.cycles, snap / args.cycles

    def audit() -> float:
        t0 = time.process_time()
        for _ in range(2):
            audit_fixed_noise(tr)
        return (time.process_time() - t0) / 2

    print(f"engine: {m.__module__} from {Path(sys.modules['gamo'].__file__).parent}; "
          f"{len(m.x_train):,} training images, {m.steps_per_epoch // 2} iterations a phase")
    rows = [("F's phase", *cycle(), audit())]
    m.step_count = m.steps_per_epoch // 2          # G's phase (F is not retrained by the jump)
    tr.step()                                      # its first iteration computes F's features
    audit_fixed_noise(tr)
    rows.append(("G's phase", *cycle(), audit()))
    print(f"| phase | {s.speed} iterations (s CPU) | snapshot (s CPU) | snapshots/s on one free core "
          f"(audits aside) | an audit (s CPU) |")
    print("|---|---:|---:|---:|---:|")
    for name, steps, snap, aud in rows:
        print(f"| {name} | {steps:.3f} | {snap:.3f} | {1.0 / (steps + snap):.2f} | {aud:.3f} |")


if __name__ == "__main__":
    main()
