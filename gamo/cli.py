"""``python -m gamo ...``: headless training, sampling, listing runs.

Every user error ends with one line saying what to fix and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from gamo.config import MAX_SEED, METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig, cpu_cores
from gamo.errors import DataError, GamoError
from gamo.health import format_health
from gamo.runs import (
    CHECKPOINT,
    DATA,
    FINAL,
    INDICES,
    RUN_FILES,
    RunError,
    RunWriter,
    check_indices,
    check_new_out,
    list_runs,
    load_checkpoint,
    load_config,
    load_run_table,
    run_process_state,
    savez_atomic,
)

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number (got {text!r})") from None


def _seed_arg(text: str) -> int:
    """``--seed``: what numpy's and torch's generators accept."""
    v = _whole(text)
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"choose a seed between 0 and {MAX_SEED} (got {text})")
    return v


def _threads_arg(text: str) -> int:
    """``--threads``: 0 (torch's default) up to the cores this process may use."""
    v, cores = _whole(text), cpu_cores()
    if not 0 <= v <= cores:
        raise argparse.ArgumentTypeError(f"this machine has {cores} CPU core{'s' * (cores > 1)}: "
                                         f"choose 0 (torch's default) to {cores} (got {text})")
    return v


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
    t.add_argument("--seed", type=_seed_arg, default=0, help="seeds the data subsampling and the training")
    t.add_argument("--out", default=None, help="run folder to write (default runs/<dataset>-<method>-seed<seed>)")
    t.add_argument("--resume", default=None, metavar="DIR",
                   help="continue a stopped or killed run from its checkpoint (from step 0 when it had none); "
                        "its config is reused: only --steps/--epochs (to extend it), --device, --threads, "
                        "--snapshot-every, --data-root, --download may be given, and are recorded in it")
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--lr-m", type=float, default=TrainConfig.lr_m)
    t.add_argument("--lr-d", type=float, default=TrainConfig.lr_d)
    t.add_argument("--lr-g", type=float, default=TrainConfig.lr_g)
    t.add_argument("--snapshot-every", type=int, default=TrainConfig.snapshot_every)
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--threads", type=_threads_arg, default=0, help="CPU threads (0: torch's default; at most the cores)")
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
    s.add_argument("--seed", type=_seed_arg, default=0, help="noise seed of the generated points")
    s.add_argument("--data-root", default=None, metavar="DIR",
                   help=f"image datasets: where to read them (default {DataConfig.data_root}; the run's "
                        f"config.json is not followed outside the run, and nothing is downloaded)")

    b = sub.add_parser("bench", help="reproduce the paper's tables and Figure 4 (runs are stored and resumable)")
    b.add_argument("table", choices=("table1", "table2", "figure4"),
                   help="figure4: table1's runs of the Figure-4 methods (flattened images by default), then the "
                        "grid PNG and the caption's claims measured, as Markdown")
    b.add_argument("--dataset", required=True, help="table1: mnist, fashion-mnist, digits; table2: cifar10, svhn")
    b.add_argument("--seeds", type=_seed_arg, nargs="+", default=[0, 1, 2])
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
    b.add_argument("--threads", type=_threads_arg, default=0, help="CPU threads (0: torch's default; at most the cores)")
    b.add_argument("--device", default="auto")
    b.add_argument("--family", default=None, choices=("auto", "dense", "conv"),
                   help="dense: flatten 28x28 images (the paper's MNIST-style ablation; figure4's default); "
                        "auto (the tables' default): conv for 28x28 and 32x32 images")
    b.add_argument("--n-claims", type=int, default=None,
                   help="figure4: fresh samples per minority class behind the claim measures (default 500)")
    b.add_argument("--quiet", action="store_true")

    au = sub.add_parser("audit", help="audit a run's generated samples: near-duplicates, out-of-distribution, disputed labels")
    au.add_argument("--run", required=True, help="a run folder (finished or stopped)")
    au.add_argument("--per-class", type=int, default=None, metavar="N",
                    help="samples per minority class (default: the set that balances the training set)")
    au.add_argument("--low-pct", type=float, default=5.0, help="near-duplicate: DCR below this percentile of the class's own nearest-neighbour distances")
    au.add_argument("--high-pct", type=float, default=95.0, help="out-of-distribution: DCR above this percentile (or nearer another class)")
    au.add_argument("--seed", type=_seed_arg, default=0, help="noise seed of the generated points")
    au.add_argument("--data-root", default=None, metavar="DIR",
                    help="where an image run's dataset is read (default: the usual cache; never the run's config.json)")
    au.add_argument("--out", default=None, metavar="DIR", help="folder for audit.csv, audit_summary.json, audit_flagged.png (default RUN/audit)")

    # --- gamo2pix (gamo/gamo2pix.py) ---------------------------------------------------------
    gp = sub.add_parser("gamo2pix", help="GAMO2pix: per-class decoders of a conv run's F features; image grids and "
                                         "Table 5's Fréchet distances")
    gp.add_argument("--run", required=True, help="a conv run folder (finished or stopped) of GAMO or GAMO\\D")
    gp.add_argument("--epochs", type=int, default=None, metavar="N",
                    help="passes over each class's members (default 30; at least --min-steps minibatches a class); "
                         "stored decoders are continued, a larger N extends them")
    gp.add_argument("--min-steps", type=int, default=None, metavar="N", help="minibatches per class at least (default 300)")
    gp.add_argument("--n", type=int, default=1000, metavar="N",
                    help="decoded samples per class behind the Fréchet distances (0: skip them)")
    gp.add_argument("--grid", type=int, default=16, metavar="N", help="decoded samples per class in the PNG grids")
    gp.add_argument("--seed", type=_seed_arg, default=0, help="noise seed of the decoded samples and the training")
    gp.add_argument("--restart", action="store_true", help="train the decoders again from scratch")
    gp.add_argument("--data-root", default=None, metavar="DIR",
                    help="where the run's image dataset is read (default: the usual cache; never downloaded)")
    gp.add_argument("--out", default=None, metavar="DIR", help="folder for the PNGs and gamo2pix.json (default RUN/gamo2pix)")
    gp.add_argument("--quiet", action="store_true", help="no progress lines")
    # --- end gamo2pix -------------------------------------------------------------------------

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


# train flags a resumed run can take (recorded in its config.json); every other one is refused
_RESUME_TRAIN = ("steps", "epochs", "device", "threads", "snapshot_every")
_RESUME_DATA = ("data_root", "download")
_RESUME_OK = {"resume", "quiet", *_RESUME_TRAIN, *_RESUME_DATA}


def _resume_config(a: argparse.Namespace, cfg: RunConfig, out: Path) -> RunConfig:
    """The run's config with the flags given beside ``--resume`` applied; a flag that would
    change what the run is (method, data, networks, learning rates, ``--out``) is refused."""
    given = getattr(a, "given", None)
    if given is None:   # a namespace not made by main(): only what differs from the defaults
        given = {k for k in ("steps",) if a.steps is not None} | {k for k in ("epochs",) if a.epochs}
    fixed = sorted(given - _RESUME_OK)
    if fixed:
        flags = ", ".join("--" + k.replace("_", "-") for k in fixed)
        raise RunError(f"--resume continues {out} as it was configured: {flags} cannot change there; "
                       f"drop {'it' if len(fixed) == 1 else 'them'}, or start a new run with --out")
    train = {k: getattr(a, k) for k in _RESUME_TRAIN if k in given}
    if "epochs" in train and "steps" not in train:
        train["steps"] = 0          # --epochs alone: the run is counted in epochs from now on
    data = {k: getattr(a, k) for k in _RESUME_DATA if k in given}
    return cfg.replace(train=train, data=data) if train or data else cfg


def cmd_train(a: argparse.Namespace) -> int:
    state = None
    if a.resume:
        out = Path(a.resume)
        cfg = _resume_config(a, load_config(out), out)
        state = load_checkpoint(out, missing_ok=True)
        if state is None:
            if os.path.lexists(out / FINAL):
                raise RunError(f"{out} has results ({FINAL}) but no {CHECKPOINT} to continue from: "
                               f"start a new run with another --out")
            _info(a, f"{out} has no {CHECKPOINT} (it stopped before its first one): starting it again from step 0")
    else:
        cfg = _config_from_args(a)
        out = Path(a.out or f"runs/{cfg.data.dataset.replace(':', '-').replace('/', '_')}-{cfg.train.method}-seed{cfg.train.seed}")
    final = execute_run(cfg, out, state=state, resume=bool(a.resume), log=lambda msg: _info(a, msg))
    if final is None:
        return 130
    print(summary_line(final, out))
    return 0


class _SigintHeld:
    """Ctrl-C waits while the run's last files are written (main thread only; elsewhere a no-op)."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        return False


def execute_run(cfg: RunConfig, out: Path, *, state: dict | None = None, resume: bool = False,
                log=lambda msg: None) -> dict | None:
    """Train ``cfg`` into the run folder ``out`` (or continue it); returns final.json's content,
    or None when interrupted (a checkpoint is saved first so the run can be resumed).

    A new run needs a new or empty folder (never anyone else's files). A resume continues from
    ``state`` (the checkpoint; None: from step 0, for a run killed before its first one): the
    records of ``metrics.jsonl`` past its step are dropped, the data files rewritten where
    missing. A checkpoint is written at the start, every 30 s and at the end, and on Ctrl-C
    (at any point after the folder is made: the run is left "stopped", never "running")."""
    from gamo.train import Trainer, train  # torch-heavy: imported only when training

    out = Path(out)
    st, alive = run_process_state(out)
    if resume:
        if st == "running" and alive:
            raise RunError(f"{out} is being trained by another process right now: wait for it to end, "
                           f"or stop it (Ctrl-C) before resuming")
    else:
        check_new_out(out)
    # load the data and build the method first: a typo must not leave a half-made run folder
    tr = Trainer(cfg, state=state, with_grid=False)
    dense = tr.method.family == "dense"
    if resume and state is not None:
        check_indices(out, tr.data)
        # a run killed while it wrote its last files is finished now; a finished one is left as it is
        if tr.finished and st == "finished":
            raise RunError(f"{out} already ran its {tr.total_steps} steps: pass --steps N (more) to extend it")
    writer = RunWriter(out, cfg, resume=resume, resume_step=tr.step_count if resume else None)
    last_print = 0.0
    snap = None
    try:
        if not resume or state is None or not (out / INDICES).is_file() or (dense and not (out / DATA).is_file()):
            writer.write_data(tr.data, dense=dense)
        if state is None:        # a checkpoint at step 0: from now on a killed run can be resumed
            writer.checkpoint(tr.method.state_dict())
        counts = tr.data.class_counts.tolist()
        log(f"{cfg.data.dataset} ({tr.data.kind}, {tr.method.family} family), train counts {counts}, "
            f"{len(tr.data.y_test)} test points, {_val_words(tr.data)}; {cfg.train.method} ({cfg.train.loss}) for {tr.total_steps} steps "
            f"on {tr.device}")
        last_ckpt = time.perf_counter()
        for snap in train(cfg, trainer=tr):
            if writer.last_step is None or snap.step > writer.last_step:   # a resumed run's first may be there
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
        writer.checkpoint(tr.method.state_dict())
        if snap is not None and snap.step != tr.step_count:
            snap = tr.snapshot(with_train=True)
        if dense:
            writer.samples(tr.method.balancing_samples(seed=cfg.train.seed))
        final = writer.final(snap, tr.total_steps, tr.method.device)   # last: it marks the run finished
    except KeyboardInterrupt:
        with _SigintHeld():
            writer.checkpoint(tr.method.state_dict())
            writer.set_status("stopped", tr.step_count)
        print(f"stopped at step {tr.step_count}; resume with: python -m gamo train --resume {out}", file=sys.stderr)
        return None
    except BaseException:
        try:
            writer.set_status("error", tr.step_count)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
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
    check_indices(out, data)   # gamo.runs: a damaged indices.npz is one line, never a traceback


_IMAGE_SETS = ("mnist", "fashion-mnist", "cifar10", "svhn")


def _sample_data(run: Path, cfg: RunConfig, data_root: str | None):
    """(config, Dataset or None) for sampling from ``run`` without following its config.json
    outside the run: a table run's rows come from its own data.npz (the table path in the
    config is not read); image datasets are read from ``--data-root`` (default: the usual
    cache), never from the config's data_root, and never downloaded; toys are generated and
    digits ship with scikit-learn."""
    low = cfg.data.dataset.strip().lower()
    if low.startswith("table:"):
        return cfg, load_run_table(run, cfg)
    if low in _IMAGE_SETS:
        return cfg.replace(data={"data_root": data_root or DataConfig.data_root, "download": False}), None
    return cfg, None


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.expanduser(str(path)))


def _check_sample_out(out: Path, run: Path, cfg: RunConfig) -> None:
    """``sample --out`` names a new or replaceable .npz file: never one of the run's files or
    the table the run was made from, never a folder or a path under a file."""
    if not str(out).endswith(".npz"):
        raise RunError("--out must name a .npz file")
    if out.is_dir():
        raise RunError(f"--out {out} is a folder: name a .npz file in it (e.g. {out / 'balanced.npz'})")
    target = _real(out)
    if target in {_real(run / name) for name in RUN_FILES}:
        raise RunError(f"--out {out} is the run's own {os.path.basename(target)}: write the samples to another file")
    name = cfg.data.dataset.strip()
    if name.lower().startswith("table:") and target == _real(name[len("table:"):]):
        raise RunError(f"--out {out} is the table the run was made from: write the samples to another file")
    parent = Path(os.path.abspath(out)).parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise RunError(f"--out {out} is inside {parent}, which is a file: choose a path in a folder")


def cmd_sample(a: argparse.Namespace) -> int:
    from gamo.train import Trainer

    run, out = Path(a.run), Path(a.out)
    if not a.out.endswith(".npz"):
        raise RunError("--out must name a .npz file")
    cfg = load_config(run)
    _check_sample_out(out, run, cfg)
    state = load_checkpoint(run)
    cfg, data = _sample_data(run, cfg, getattr(a, "data_root", None))
    try:
        tr = Trainer(cfg, data=data, state=state, with_grid=False)
    except DataError as e:
        if cfg.data.dataset.strip().lower() not in _IMAGE_SETS:
            raise
        raise DataError(str(e).replace(", or pass --download (needs internet)", "") +
                        "; or pass --data-root DIR (sample reads the images nowhere else and never downloads)") from None
    _check_indices(run, tr.data)
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
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        savez_atomic(out, x=x, y=y, synthetic=synthetic,
                     space=np.array("input" if m.family == "dense" else "features"), **extra)
    except OSError as e:
        raise RunError(f"cannot write --out {out} ({e.strerror or type(e).__name__}): choose a path you can write") from None
    counts = np.bincount(y, minlength=tr.data.n_classes).tolist()
    print(f"wrote {len(y)} rows ({int(synthetic.sum())} generated), class counts {counts}, to {out}")
    return 0


def cmd_audit(a: argparse.Namespace) -> int:
    from gamo.audit import audit_run, check_percentiles, format_summary, per_class_summary, write_audit
    from gamo.errors import ConfigError
    from gamo.train import Trainer

    check_percentiles(a.low_pct, a.high_pct)
    if a.per_class is not None and a.per_class < 1:
        raise ConfigError(f"--per-class: give at least 1 sample per class, got {a.per_class}")
    # the run's data as `sample` reads it: never outside the run unless --data-root says so
    cfg, data = _sample_data(Path(a.run), load_config(a.run), getattr(a, "data_root", None))
    tr = Trainer(cfg, data=data, state=load_checkpoint(a.run), with_grid=False)
    _check_indices(Path(a.run), tr.data)
    audit = audit_run(tr.method, n_per_class=a.per_class, seed=a.seed, low_pct=a.low_pct, high_pct=a.high_pct)
    image = tr.data.kind == "image"
    paths = write_audit(audit, Path(a.out) if a.out else Path(a.run) / "audit",
                        real_images=tr.data.x_train if image else None, image_shape=tr.data.image_shape,
                        real_x=None if image else tr.method.train_features().cpu().numpy(), real_y=tr.data.y_train,
                        meta={"run": str(a.run), "step": tr.step_count, "seed": a.seed})
    print(f"audit of {audit.n} {cfg.train.method} samples in {audit.space} (near-duplicate < p{a.low_pct:g}, "
          f"out-of-distribution > p{a.high_pct:g} or nearer another class):")
    for line in format_summary(per_class_summary(audit)):
        print(line)
    print(f"wrote {paths['csv']}, {paths['summary'].name} and {paths['png'].name}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from gamo.tables import run_table

    if a.table == "figure4":
        return cmd_figure4(a)
    path = run_table(a.table, a.dataset, a.seeds, methods=a.methods, loss=a.loss, root=a.root, out=a.out,
                     log=lambda msg: _info(a, msg), profile=a.profile, epochs=a.epochs, steps=a.steps,
                     test_per_class=a.test_per_class, val_per_class=a.val_per_class, threads=a.threads,
                     device=a.device, family=a.family or "auto")
    print(path.read_text())
    print(f"table written to {path} and {path.with_suffix('.csv')}")
    return 0


def cmd_figure4(a: argparse.Namespace) -> int:
    from gamo import figure4
    from gamo.reference import get_reference
    from gamo.tables import PAPER, run_table, store_name

    family = a.family or "dense"
    if family == "dense" and a.dataset not in _IMAGE_SETS:
        family = "auto"      # digits are flattened anyway: share the table's runs
    methods = a.methods or list(figure4.FIGURE4_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DataError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    n_claims = figure4.N_CLAIMS if a.n_claims is None else a.n_claims
    if n_claims < 2:
        raise DataError(f"--n-claims: give at least 2 samples per class (a Fréchet distance needs two), got {n_claims}")
    tag = a.dataset if family == "auto" else f"{a.dataset}-{family}"
    prefix = Path(a.out or f"bench/results/figure4_{tag}_{a.loss}")
    log = lambda msg: _info(a, msg)   # noqa: E731
    run_table("table1", a.dataset, a.seeds, methods=methods, loss=a.loss, root=a.root,
              out=str(prefix.with_name(prefix.name + "_table1")), log=log, profile=a.profile, epochs=a.epochs,
              steps=a.steps, test_per_class=a.test_per_class, val_per_class=a.val_per_class, threads=a.threads,
              device=a.device, family=family)
    ref = get_reference(DataConfig(dataset=a.dataset), progress=lambda msg, _f: log(msg))
    log(f"reference classifier {ref.key}: test accuracy {ref.info.get('test_accuracy', float('nan')):.3f}")
    base = Path(a.root) / store_name(a.dataset, a.loss, family)
    runs = figure4.collect(base, methods, a.seeds)
    for m, rs in runs.items():
        for r in rs:
            if figure4.stale(r, ref, n_claims):
                log(f"figure files for {r.path}")
                figure4.write_run_files(r.path, reference=ref, n_claims=n_claims)
    runs = figure4.collect(base, methods, a.seeds)
    cmd = (f"python -m gamo bench figure4 --dataset {a.dataset} --family {family} --loss {a.loss} "
           f"--seeds {' '.join(map(str, a.seeds))}" + (f" --epochs {a.epochs}" if a.epochs else ""))
    paper = PAPER.get((a.dataset, a.loss))
    note = (f"the paper's {a.dataset} column, whose networks are convolutional (its flattened ablation is on "
            "MNIST): a loose comparison" if paper and family == "dense" and a.dataset in _IMAGE_SETS else "")
    md = figure4.write_markdown(runs, prefix.with_suffix(".md"), command=cmd, paper=paper,
                                title=f"Figure 4 on {tag}", paper_note=note)
    png = figure4.grid_png(runs, prefix.with_suffix(".png"), seed=min(a.seeds), title=f"Figure 4 on {tag}, "
                           f"seed {min(a.seeds)}")
    print(md.read_text())
    print(f"written: {md}, {png}")
    return 0


# --- gamo2pix (gamo/gamo2pix.py) -------------------------------------------------------------
def cmd_gamo2pix(a: argparse.Namespace) -> int:
    """Train (or continue) a conv run's GAMO2pix decoders, then write the PNG grids and
    gamo2pix.json (with Table 5's per-class Fréchet distances unless ``--n 0``)."""
    from gamo import gamo2pix as g2p

    for name in ("epochs", "min_steps", "n", "grid"):
        v = getattr(a, name)
        if v is not None and v < 0:
            raise RunError(f"--{name.replace('_', '-')}: give 0 or more, got {v}")
    g = g2p.open_run(a.run, data_root=a.data_root)
    epochs = g2p.EPOCHS if a.epochs is None else a.epochs
    min_steps = g2p.MIN_STEPS if a.min_steps is None else a.min_steps
    last = [0.0]

    def progress(p) -> None:
        now = time.perf_counter()
        if now - last[0] > 1.0 or p.step >= p.steps:
            last[0] = now
            _info(a, f"class {p.cls} ({p.index + 1}/{p.n_classes}): step {p.step}/{p.steps}, epoch {p.epoch}, "
                     f"recon {p.recon:.1f} kl {p.kl:.1f}; all classes {100 * p.fraction:.0f}% in {p.elapsed:.0f} s")

    try:
        rep = g2p.train_decoders(g, epochs=epochs, min_steps=min_steps, seed=a.seed, progress=progress,
                                 restart=a.restart)
    except KeyboardInterrupt:
        print("stopped; the decoders trained so far are saved: run the same command again to continue", file=sys.stderr)
        return 130
    _info(a, f"decoders of classes {rep.finished} ready in {rep.elapsed:.1f} s ({g.folder})")
    table = None
    if a.n:
        if a.n < 2:
            raise RunError("--n: a Fréchet distance needs at least 2 samples per class (0: skip them)")
        ref = g2p.reference_for(g, progress=lambda msg, _f: _info(a, msg))
        table = g2p.frechet_table(g, n=a.n, seed=a.seed, reference=ref)
    paths = g2p.write_report(g, a.out, n=a.grid, seed=a.seed, table=table,
                             extra={"epochs": epochs, "min_steps": min_steps, "seed": a.seed,
                                    "train_seconds": round(rep.elapsed, 2)})
    if table is not None:
        print(f"Fréchet distance to the class's held-out real images ({table['space']}), {a.n} decoded samples a class:")
        print(f"{'class':>5s} {'GAMO2pix':>9s} {'(mean z)':>9s} {'floor':>7s} {'recon.':>7s} {'members':>8s}")
        f = lambda v: "-" if v is None else f"{v:.3f}"   # noqa: E731
        for r in [*table["classes"], {"cls": "mean", **table["mean"]}]:
            print(f"{r['cls']:>5} {f(r['frechet']):>9s} {f(r['frechet_mean']):>9s} {f(r['floor']):>7s} "
                  f"{f(r['frechet_recon']):>7s} {f(r['frechet_members']):>8s}")
    print(f"wrote {len(paths['pngs'])} grids and {paths['json']}")
    return 0
# --- end gamo2pix ---------------------------------------------------------------------------


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
              f"{r.step if r.step is not None else '-':>7} {acsa:>6s} {gm:>6s}  {r.note}".rstrip())
    return 0


def _info(a: argparse.Namespace, msg: str) -> None:
    if not getattr(a, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def _given_options(argv: list[str] | None, command: str) -> set[str]:
    """The dests of the options of ``command`` given on the command line (not defaulted)."""
    p = build_parser()
    sub = next(x for x in p._actions if isinstance(x, argparse._SubParsersAction)).choices[command]
    for act in sub._actions:
        act.default = argparse.SUPPRESS
    return set(vars(p.parse_args(argv))) - {"command"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        args.given = _given_options(argv, "train")
    try:
        return {"train": cmd_train, "sample": cmd_sample, "list": cmd_list, "bench": cmd_bench,
                "audit": cmd_audit, "gamo2pix": cmd_gamo2pix}[args.command](args)
    except GamoError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:   # before a run folder was made, or while sampling (written atomically)
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
