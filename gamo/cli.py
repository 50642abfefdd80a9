"""``python -m gamo ...``: headless training, sampling, listing runs.

Every user error ends with one line saying what to fix and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from gamo.config import METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.errors import GamoError
from gamo.health import format_health
from gamo.runs import CONFIG, DATA, INDICES, RunError, RunWriter, list_runs, load_checkpoint, load_config

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gamo", description="GAMO Lab engine: train, sample, list runs.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a method and store the run")
    t.add_argument("--dataset", default=DataConfig.dataset,
                   help="toy:moons|circles|blobs|spirals|nonconvex, digits, mnist, fashion-mnist, cifar10, svhn, table:PATH")
    t.add_argument("--profile", default=DataConfig.profile,
                   help="none, paper[:max=N], exp:ir=R, step:ir=R[,minority=K], counts:n0,n1,...")
    t.add_argument("--method", default=TrainConfig.method, choices=METHODS)
    t.add_argument("--loss", default=TrainConfig.loss, choices=("ls", "ce"))
    t.add_argument("--steps", type=int, default=None, help=f"iterations (default {TrainConfig.steps} unless --epochs)")
    t.add_argument("--epochs", type=int, default=0, help="outer epochs of Algorithm 1 (instead of --steps)")
    t.add_argument("--seed", type=int, default=0, help="seeds the data subsampling and the training")
    t.add_argument("--out", default=None, help="run folder to write (default runs/<dataset>-<method>-seed<seed>)")
    t.add_argument("--resume", default=None, metavar="DIR", help="continue a stopped run (its config is reused)")
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--lr-m", type=float, default=TrainConfig.lr_m)
    t.add_argument("--lr-d", type=float, default=TrainConfig.lr_d)
    t.add_argument("--lr-g", type=float, default=TrainConfig.lr_g)
    t.add_argument("--snapshot-every", type=int, default=TrainConfig.snapshot_every)
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    t.add_argument("--family", default="auto", choices=("auto", "dense", "conv"))
    t.add_argument("--hidden", type=int, default=ModelConfig.hidden)
    t.add_argument("--latent", type=int, default=ModelConfig.latent)
    t.add_argument("--test-per-class", type=int, default=DataConfig.n_test_per_class)
    t.add_argument("--val-per-class", type=int, default=DataConfig.n_val_per_class,
                   help="balanced validation split per class, from training rows the profile left unused "
                        "(fewer when a class has fewer; 0: none); picks the epoch reported as 'best val.'")
    t.add_argument("--n-per-class", type=int, default=DataConfig.n_per_class, help="toy data: points per class")
    t.add_argument("--n-classes", type=int, default=DataConfig.n_classes, help="toy blobs/spirals: classes")
    t.add_argument("--noise", type=float, default=DataConfig.noise, help="toy data: noise")
    t.add_argument("--label-column", default=DataConfig.label_column, help="tables: label column name")
    t.add_argument("--data-root", default=DataConfig.data_root)
    t.add_argument("--download", action="store_true", help="let torchvision download missing data")
    t.add_argument("--quiet", action="store_true", help="no progress lines")

    s = sub.add_parser("sample", help="write a balanced, oversampled training set from a run")
    s.add_argument("--run", required=True, help="a run folder")
    s.add_argument("--out", required=True, help="the .npz file to write")
    s.add_argument("--seed", type=int, default=0, help="noise seed of the generated points")

    b = sub.add_parser("bench", help="reproduce the paper's tables (runs are stored and resumable)")
    b.add_argument("table", choices=("table1", "table2"))
    b.add_argument("--dataset", required=True, help="table1: mnist, fashion-mnist, digits; table2: cifar10, svhn")
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    b.add_argument("--methods", nargs="+", default=None, help="default: every method the engine has")
    b.add_argument("--loss", default="ls", choices=("ls", "ce"))
    b.add_argument("--root", default="bench/results/runs", help="where the runs are stored (config and final metrics are committed; checkpoints are not)")
    b.add_argument("--out", default=None, help="table path without suffix (default bench/results/<table>_<dataset>_<loss>)")
    b.add_argument("--profile", default=None, help="override the paper profile (e.g. a tiny one for a smoke test)")
    b.add_argument("--epochs", type=int, default=None, help="override the official schedule's length")
    b.add_argument("--steps", type=int, default=None, help="iterations instead of epochs")
    b.add_argument("--test-per-class", type=int, default=None)
    b.add_argument("--val-per-class", type=int, default=None,
                   help=f"validation split per class (default {DataConfig.n_val_per_class}, fewer where fewer are left)")
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--device", default="auto")
    b.add_argument("--quiet", action="store_true")

    ls = sub.add_parser("list", help="list stored runs")
    ls.add_argument("--root", default="runs")
    return p


def _config_from_args(a: argparse.Namespace) -> RunConfig:
    data = DataConfig(dataset=a.dataset, profile=a.profile, n_test_per_class=a.test_per_class,
                      n_val_per_class=a.val_per_class, seed=a.seed,
                      n_per_class=a.n_per_class, n_classes=a.n_classes, noise=a.noise,
                      label_column=a.label_column, data_root=a.data_root, download=a.download)
    model = ModelConfig(family=a.family, hidden=a.hidden, latent=a.latent)
    steps = a.steps if a.steps is not None else (0 if a.epochs else TrainConfig.steps)
    train = TrainConfig(method=a.method, loss=a.loss, steps=steps, epochs=a.epochs, batch_size=a.batch_size,
                        lr_m=a.lr_m, lr_d=a.lr_d, lr_g=a.lr_g, seed=a.seed, device=a.device,
                        snapshot_every=a.snapshot_every, threads=a.threads)
    return RunConfig(data=data, model=model, train=train)


def cmd_train(a: argparse.Namespace) -> int:
    state = None
    if a.resume:
        out = Path(a.resume)
        cfg = load_config(out)
        if a.steps is not None:
            cfg = cfg.replace(train={"steps": a.steps})
        state = load_checkpoint(out)
    else:
        cfg = _config_from_args(a)
        out = Path(a.out or f"runs/{cfg.data.dataset.replace(':', '-').replace('/', '_')}-{cfg.train.method}-seed{cfg.train.seed}")
    final = execute_run(cfg, out, state=state, resume=bool(a.resume), log=lambda msg: _info(a, msg))
    if final is None:
        return 130
    print(summary_line(final, out))
    return 0


def execute_run(cfg: RunConfig, out: Path, *, state: dict | None = None, resume: bool = False,
                log=lambda msg: None) -> dict | None:
    """Train ``cfg`` into the run folder ``out`` (or continue it); returns final.json's content,
    or None when interrupted (a checkpoint is saved first so the run can be resumed)."""
    from gamo.train import Trainer, train  # torch-heavy: imported only when training

    if not resume and (Path(out) / CONFIG).exists():
        raise RunError(f"{out} already holds a run: choose another --out, or resume it with --resume {out}")
    # load the data and build the method first: a typo must not leave a half-made run folder
    tr = Trainer(cfg, state=state, with_grid=False)
    if resume:
        _check_indices(out, tr.data)
        if tr.finished:
            raise RunError(f"{out} already ran its {tr.total_steps} steps: pass --steps N (more) to extend it")
    writer = RunWriter(out, cfg, resume=resume, resume_step=tr.step_count if resume else None)
    if not resume:
        writer.write_data(tr.data, dense=tr.method.family == "dense")
    counts = tr.data.class_counts.tolist()
    log(f"{cfg.data.dataset} ({tr.data.kind}, {tr.method.family} family), train counts {counts}, "
        f"{len(tr.data.y_test)} test points, {_val_words(tr.data)}; {cfg.train.method} ({cfg.train.loss}) for {tr.total_steps} steps "
        f"on {tr.device}")
    last_ckpt = time.perf_counter()
    last_print = 0.0
    snap = None
    try:
        for i, snap in enumerate(train(cfg, trainer=tr)):
            if not (resume and i == 0):  # a resumed run's first snapshot is already in metrics.jsonl
                writer.append(snap)
            now = time.perf_counter()
            if now - last_ckpt > 30:
                writer.checkpoint(tr.method.state_dict())
                last_ckpt = now
            if now - last_print > 1.0 or snap.step >= tr.total_steps:
                last_print = now
                losses = " ".join(f"{k}={v:.3f}" for k, v in snap.losses.items())
                health = format_health(snap.health)   # conv data: at epoch ends only
                log(f"step {snap.step}/{tr.total_steps} epoch {snap.epoch:.2f} {losses} "
                    f"test ACSA {snap.test.acsa:.3f} GM {snap.test.gm:.3f}" + (f" | {health}" if health else ""))
    except KeyboardInterrupt:
        writer.checkpoint(tr.method.state_dict())
        writer.set_status("stopped", tr.step_count)
        print(f"stopped at step {tr.step_count}; resume with: python -m gamo train --resume {out}", file=sys.stderr)
        return None
    writer.checkpoint(tr.method.state_dict())
    if snap is not None and snap.step != tr.step_count:
        snap = tr.snapshot(with_train=True)
    final = writer.final(snap, tr.total_steps, tr.method.device)
    if tr.method.family == "dense":
        writer.samples(tr.method.balancing_samples(seed=cfg.train.seed))
    writer.set_status("finished", tr.step_count)
    return final


def summary_line(final: dict, out: Path | str) -> str:
    """The last line of ``train``: the last step's test scores and, where the run has a
    validation split, the test scores at its best validation epoch."""
    line = f"test ACSA {final['acsa']:.4f} GM {final['gm']:.4f} at the last epoch (step {final['step']})"
    b = final.get("best_val")
    if b:
        line += (f"; at the best val. epoch (step {b['step']}, epoch {b['epoch']:.2f}, val GM {b['val']['gm']:.4f}): "
                 f"test ACSA {b['test']['acsa']:.4f} GM {b['test']['gm']:.4f}")
    return f"{line} ({out})"


def _val_words(data) -> str:
    """The validation split in the run's first log line (and why it is small or absent)."""
    n = int(data.meta.get("val_per_class", len(data.y_val) // max(1, data.n_classes)))
    words = f"{len(data.y_val)} validation points ({n} per class)" if len(data.y_val) else "no validation split"
    note = data.meta.get("val_note")
    return f"{words}: {note}" if note else words


def _check_indices(out: Path, data) -> None:
    path = out / INDICES
    if path.exists():
        with np.load(path) as f:
            same = np.array_equal(f["train_idx"], data.train_idx) and np.array_equal(f["test_idx"], data.test_idx)
            if "val_idx" in f.files:   # runs made before the validation split have none to compare
                same = same and np.array_equal(f["val_idx"], data.val_idx)
            if not same:
                raise RunError(f"the data of {out} changed since the run was made (other rows chosen); start a new run")


def cmd_sample(a: argparse.Namespace) -> int:
    from gamo.train import Trainer

    if not a.out.endswith(".npz"):
        raise RunError("--out must name a .npz file")
    cfg = load_config(a.run)
    state = load_checkpoint(a.run)
    tr = Trainer(cfg, state=state, with_grid=False)
    _check_indices(Path(a.run), tr.data)
    m = tr.method
    real = m.train_features().cpu().numpy()
    y_real = tr.data.y_train
    gen = m.balancing_samples(seed=a.seed)
    if gen is None:
        raise RunError(f"{cfg.train.method} generates no samples (or the training set is balanced): "
                       "sample from a run of an oversampling method (gamo, gamo_no_d, cg, cg_d, smote, ...)")
    x = np.concatenate([real, gen["x"]]).astype(np.float32)
    y = np.concatenate([y_real, gen["y"]])
    synthetic = np.concatenate([np.zeros(len(y_real), bool), np.ones(len(gen["y"]), bool)])
    extra = {}
    if "parent_idx" in gen:  # convex methods: each generated row's top parents (-1 for real rows)
        k = gen["parent_idx"].shape[1]
        extra["parent_idx"] = np.concatenate([np.full((len(y_real), k), -1), gen["parent_idx"]])
        extra["parent_w"] = np.concatenate([np.zeros((len(y_real), k), np.float32), gen["parent_w"]])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, x=x, y=y, synthetic=synthetic, space=np.array("input" if m.family == "dense" else "features"),
             **extra)
    counts = np.bincount(y, minlength=tr.data.n_classes).tolist()
    print(f"wrote {len(y)} rows ({int(synthetic.sum())} generated), class counts {counts}, to {out}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from gamo.tables import run_table

    path = run_table(a.table, a.dataset, a.seeds, methods=a.methods, loss=a.loss, root=a.root, out=a.out,
                     log=lambda msg: _info(a, msg), profile=a.profile, epochs=a.epochs, steps=a.steps,
                     test_per_class=a.test_per_class, val_per_class=a.val_per_class, threads=a.threads,
                     device=a.device)
    print(path.read_text())
    print(f"table written to {path} and {path.with_suffix('.csv')}")
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    runs = list_runs(a.root)
    if not runs:
        print(f"no runs under {a.root}")
        return 0
    print(f"{'run':40s} {'method':10s} {'dataset':16s} {'profile':18s} {'state':9s} {'step':>7s} {'ACSA':>6s} {'GM':>6s}")
    for r in runs:
        acsa = f"{r.acsa:.3f}" if r.acsa is not None else "-"
        gm = f"{r.gm:.3f}" if r.gm is not None else "-"
        print(f"{str(r.path):40s} {r.method:10s} {r.dataset:16s} {r.profile:18s} {r.state:9s} "
              f"{r.step if r.step is not None else '-':>7} {acsa:>6s} {gm:>6s}")
    return 0


def _info(a: argparse.Namespace, msg: str) -> None:
    if not getattr(a, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "sample": cmd_sample, "list": cmd_list, "bench": cmd_bench}[args.command](args)
    except GamoError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
