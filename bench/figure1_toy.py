"""The paper's Figure 1 as numbers: Baseline CN, cGAN+CN, GAMO\\D and GAMO on toy:nonconvex.

The data is the Toy Lab's "Figure 1 setup" (``app.ui.toylab.FIGURE1``): a majority blob and a
minority arc around it (1,000 and 50 training points), the page's networks and learning rates.
Each method trains for ``--steps`` iterations per seed; reported per method, mean over seeds:

* test recall of the majority (class 0) and of the minority (class 1);
* *bleed*: the share of the fixed batch of generated minority points whose nearest real training
  point is a majority point (generated points in majority territory; Figure 1(b)-(c)).

Figure 1's story: (a) Baseline CN misses minority points; (b) cGAN's points bleed into the
majority; (c) GAMO\\D's convex points fill the arc's hull, i.e. the majority blob, and M gives the
blob to the minority; (d) GAMO's D keeps the points on the arc.

Usage::

    python bench/figure1_toy.py --loss ce --loss ls      # writes bench/results/figure1_toy.md
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.ui import toylab as tl  # noqa: E402
from gamo.config import METHOD_LABELS  # noqa: E402
from gamo.train import Trainer  # noqa: E402

METHODS = ("baseline", "cgan", "gamo_no_d", "gamo")


def one_run(method: str, seed: int, loss: str, steps: int) -> tuple[float, float, float]:
    s = dataclasses.replace(tl.FIGURE1, method=method, compare="", seed=seed, loss=loss)
    cfg = tl.build_config(s).replace(train={"threads": 1, "steps": steps})
    tr = Trainer(cfg, with_grid=False)
    while not tr.finished:
        tr.step()
    rec = tr.snapshot().test.recall
    gen = tr.method.generated()
    bleed = float("nan")
    if gen is not None:
        xt, yt = tr.data.x_train, tr.data.y_train
        d = ((gen.x[:, None, :] - xt[None]) ** 2).sum(-1)
        bleed = float((yt[d.argmin(1)] == 0).mean())
    return float(rec[0]), float(rec[1]), bleed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss", action="append", choices=("ls", "ce"), help="repeatable (default: ce)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "figure1_toy.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    losses = args.loss or ["ce"]
    cmd = "python bench/figure1_toy.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    lines = [
        "# Figure 1 on toy:nonconvex: Baseline CN, cGAN+CN, GAMO\\D, GAMO",
        "",
        f"- command: `{cmd.strip()}`",
        f"- machine: {platform.machine()}, {torch.get_num_threads()} torch thread; Python "
        f"{platform.python_version()}, torch {torch.__version__}; "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- data and model: the Toy Lab's Figure 1 setup (counts {tl.FIGURE1.counts}, noise "
        f"{tl.FIGURE1.noise}, width {tl.FIGURE1.width}, latent {tl.FIGURE1.latent}, batch "
        f"{tl.FIGURE1.batch}, learning rates {tl.FIGURE1.lr_m:g}/{tl.FIGURE1.lr_d:g}/"
        f"{tl.FIGURE1.lr_g:g}); {args.steps} iterations; seeds {' '.join(map(str, args.seeds))}; "
        "mean over seeds",
        "- bleed: share of the fixed generated minority points whose nearest real training point "
        "is a majority point",
        "",
    ]
    for loss in losses:
        lines += [f"## {loss.upper()} loss", "",
                  "| method | majority recall | minority recall | bleed |", "|---|---|---|---|"]
        for method in METHODS:
            r = np.array([one_run(method, seed, loss, args.steps) for seed in args.seeds])
            bleed = "-" if np.isnan(r[:, 2]).all() else f"{np.nanmean(r[:, 2]):.2f}"
            row = (f"| {METHOD_LABELS[method]} | {r[:, 0].mean():.3f} | {r[:, 1].mean():.3f} | "
                   f"{bleed} |")
            print(loss, row, flush=True)
            lines.append(row)
        lines.append("")
    text = "\n".join(lines)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
