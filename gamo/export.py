"""Export a stored run: its balanced oversampled training set, a PNG grid of its generated
samples, its config and its checkpoint. UI-free: the Runs page calls it, and so does
``python -m gamo.export RUN OUT``.

The balanced training set is the run's real training rows followed by the generated rows that
balance it (``n_c - n_i`` per minority class, :meth:`gamo.methods.base.Method.balancing_samples`),
the same set ``python -m gamo sample`` writes. A dense run finished by the engine (or saved by
the Toy Lab) stores both halves (``data.npz`` and ``samples.npz``, made with the run's own seed),
so they are read as they are; otherwise (another seed, a conv run, a run stopped before its
last files) the engine rebuilds the method from the checkpoint and generates them, as ``sample``
does (an image run's dataset is read from ``data_root``, default the usual cache, never
downloaded; a table run's rows come from its own ``data.npz``).

Files written by :func:`export_run`:

* ``balanced.npz``: ``x`` (n, d) float32, ``y`` (n,), ``synthetic`` (n,) bool, ``space``
  (``input`` or ``features``: conv runs generate in F's feature space), and for convex methods
  ``parent_idx`` / ``parent_w`` (n, k): each generated row's heaviest parents, -1 / 0 for real
  rows. The keys of ``gamo sample``'s file.
* ``balanced.csv``: one line per row of the NPZ: ``row``, ``label``, ``synthetic`` (0/1),
  ``parent_1..k`` and ``weight_1..k`` (empty for real rows), then ``x0..x{d-1}``. The real
  rows come first, in the training set's order, so a parent index is the ``row`` of that
  parent in the same file.
* ``samples.png``: image data whose samples are pixels only: one row per minority class, a
  few generated samples each, captioned with their CSV row and heaviest parent.
* ``config.json``: the run's config, as stored.
* ``checkpoint.pt``: the run's checkpoint, copied after it was read back with
  ``torch.load(weights_only=True)`` (:func:`gamo.runs.load_checkpoint`).

Every part is made on its own: one that cannot be made (a method that generates nothing, 2D
data for the PNG, a damaged checkpoint) is listed in :attr:`ExportResult.skipped` with the
reason, and the others are still written.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gamo.errors import GamoError
from gamo.runs import CHECKPOINT, CONFIG, DATA, SAMPLES, RunError, _read_npz, check_indices, \
    load_checkpoint, load_config, savez_atomic

__all__ = ["BalancedSet", "ExportResult", "balanced_set", "export_run", "generates_samples",
           "image_shape", "samples_grid", "write_csv", "write_npz", "EXPORT_FILES"]

NPZ, CSV, PNG = "balanced.npz", "balanced.csv", "samples.png"
EXPORT_FILES = (NPZ, CSV, PNG, CONFIG, CHECKPOINT)
"""The files :func:`export_run` writes (where it can)."""

_IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                 "cifar10": (3, 32, 32), "svhn": (3, 32, 32)}


@dataclass(frozen=True)
class BalancedSet:
    """A run's balanced training set: its real rows, then the generated ones."""

    x: np.ndarray                      # (n, d) float32
    y: np.ndarray                      # (n,) int64
    synthetic: np.ndarray              # (n,) bool
    space: str                         # "input" (dense runs) or "features" (conv: F's features)
    parent_idx: np.ndarray | None      # (n, k) int64, -1 for real rows; None for non-convex methods
    parent_w: np.ndarray | None        # (n, k) float32, 0 for real rows
    source: str                        # where the generated rows came from, in words

    @property
    def n_real(self) -> int:
        return int((~self.synthetic).sum())

    def counts(self, n_classes: int | None = None) -> list[int]:
        """Rows per class."""
        return np.bincount(self.y, minlength=n_classes or 0).tolist()


@dataclass
class ExportResult:
    """What :func:`export_run` wrote (name -> path) and what it skipped (name -> why)."""

    files: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    balanced: BalancedSet | None = None


def generates_samples(method: str) -> bool:
    """Whether ``method`` generates rows that balance the training set (oversamplers do;
    the baseline and the loss-reweighting methods do not)."""
    from gamo.methods import REGISTRY
    from gamo.methods.base import Method

    kind = REGISTRY.get(method)
    return kind is not None and kind.balancing_samples is not Method.balancing_samples


def _assemble(real: np.ndarray, y_real: np.ndarray, gen: dict[str, np.ndarray], space: str,
              source: str) -> BalancedSet:
    """The real rows, then the generated ones (``gamo sample``'s layout)."""
    gx = np.asarray(gen["x"], dtype=np.float32).reshape(len(gen["y"]), -1)
    real = np.asarray(real, dtype=np.float32).reshape(len(y_real), -1)
    x = np.concatenate([real, gx]).astype(np.float32)
    y = np.concatenate([np.asarray(y_real, np.int64), np.asarray(gen["y"], np.int64)])
    synthetic = np.concatenate([np.zeros(len(y_real), bool), np.ones(len(gen["y"]), bool)])
    pi = pw = None
    if gen.get("parent_idx") is not None and gen.get("parent_w") is not None:
        k = gen["parent_idx"].shape[1]
        pi = np.concatenate([np.full((len(y_real), k), -1, np.int64), np.asarray(gen["parent_idx"], np.int64)])
        pw = np.concatenate([np.zeros((len(y_real), k), np.float32), np.asarray(gen["parent_w"], np.float32)])
    return BalancedSet(x=x, y=y, synthetic=synthetic, space=space, parent_idx=pi, parent_w=pw, source=source)


def _from_files(run: Path) -> BalancedSet:
    """The balanced set from a dense run's ``data.npz`` and ``samples.npz`` (no torch)."""
    what = "it holds the rows the run was trained on"
    d = _read_npz(run / DATA, ("x_train", "y_train"), what)
    s = _read_npz(run / SAMPLES, ("x", "y"), "it holds the run's generated rows")
    real, y_real = d["x_train"], d["y_train"]
    ok = real.ndim >= 2 and y_real.ndim == 1 and len(real) == len(y_real) and s["y"].ndim == 1 \
        and len(s["x"]) == len(s["y"]) and np.issubdtype(y_real.dtype, np.integer) \
        and np.issubdtype(s["y"].dtype, np.integer)
    width = int(np.prod(real.shape[1:])) if real.ndim >= 2 else -1
    if ok and len(s["x"]):
        ok = int(np.prod(s["x"].shape[1:])) == width
    pi = s.get("parent_idx")
    if ok and pi is not None:
        ok = pi.shape[0] == len(s["y"]) and "parent_w" in s and s["parent_w"].shape == pi.shape \
            and (pi.size == 0 or (pi.min() >= 0 and pi.max() < len(y_real)))
    if not ok:
        raise RunError(f"{run / SAMPLES} does not fit the run's {DATA}: restore them, or rebuild the set "
                       f"from the checkpoint (choose a seed)")
    return _assemble(real, y_real, s, "input", f"{SAMPLES} (the run's own seed)")


def balanced_set(run: str | os.PathLike, *, seed: int | None = None, data_root: str | None = None) -> BalancedSet:
    """The run's balanced training set (see the module's docstring).

    Parameters
    ----------
    run : path
        A run folder.
    seed : int, optional
        The noise seed of the generated rows. None: the run's own (its ``samples.npz`` when
        it has one, else generated with ``config.train.seed``).
    data_root : str, optional
        Image datasets: where to read them (default: the usual cache; never downloaded).

    Raises
    ------
    gamo.errors.GamoError
        One line: a damaged run, a method that generates nothing, data that cannot be read.
    """
    run = Path(run)
    cfg = load_config(run)
    method = cfg.train.method
    if not generates_samples(method):
        raise RunError(f"{method} generates no samples: its training set is the real rows as they are "
                       f"(export the balanced set of an oversampling run: gamo, gamo_no_d, cg, smote, ...)")
    if (seed is None or seed == cfg.train.seed) and (run / SAMPLES).is_file() and (run / DATA).is_file():
        return _from_files(run)
    from gamo.cli import _sample_data      # what `sample` reads, without following config.json out of the run
    from gamo.train import Trainer

    seed = cfg.train.seed if seed is None else int(seed)
    cfg2, data = _sample_data(run, cfg, data_root)
    tr = Trainer(cfg2, data=data, state=load_checkpoint(run), with_grid=False)
    check_indices(run, tr.data)
    m = tr.method
    gen = m.balancing_samples(seed=seed)
    if gen is None:
        raise RunError(f"{method} generated nothing here: the training set is already balanced")
    return _assemble(m.train_features().cpu().numpy(), tr.data.y_train, gen,
                     "input" if m.family == "dense" else "features", f"the checkpoint at step {tr.step_count}, "
                     f"seed {seed}")


# writing ------------------------------------------------------------------------------------
def write_npz(bs: BalancedSet, path: str | os.PathLike) -> Path:
    """``balanced.npz`` (the keys of ``gamo sample``'s file), written atomically."""
    extra = {} if bs.parent_idx is None else {"parent_idx": bs.parent_idx, "parent_w": bs.parent_w}
    path = Path(path)
    savez_atomic(path, x=bs.x, y=bs.y, synthetic=bs.synthetic, space=np.array(bs.space), **extra)
    return path


def write_csv(bs: BalancedSet, path: str | os.PathLike) -> Path:
    """``balanced.csv``: ``row, label, synthetic, parent_1.., weight_1.., x0..`` (see the module)."""
    path = Path(path)
    n, d = bs.x.shape
    k = 0 if bs.parent_idx is None else bs.parent_idx.shape[1]
    head = ["row", "label", "synthetic", *(f"parent_{j + 1}" for j in range(k)),
            *(f"weight_{j + 1}" for j in range(k)), *(f"x{j}" for j in range(d))]
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", newline="") as f:
            f.write(",".join(head) + "\n")
            for a in range(0, n, 2048):        # in chunks: a few MB of text at a time
                b = min(n, a + 2048)
                cols = [np.arange(a, b).astype(str), bs.y[a:b].astype(str), bs.synthetic[a:b].astype(int).astype(str)]
                for j in range(k):
                    p = bs.parent_idx[a:b, j]
                    cols.append(np.where(p >= 0, p.astype(str), ""))
                for j in range(k):
                    w = np.char.mod("%.6g", bs.parent_w[a:b, j].astype(np.float64))
                    cols.append(np.where(bs.synthetic[a:b], w, ""))
                x = np.char.mod("%.6g", bs.x[a:b].astype(np.float64))
                lines = [",".join(r) for r in zip(*cols, *x.T)] if d else [",".join(r) for r in zip(*cols)]
                f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def image_shape(dataset: str, width: int) -> tuple[int, int, int] | None:
    """The (C, H, W) of a run's rows of ``width`` values when they are images, else None
    (2D toys; tables whose width is not a square of at least 4 x 4)."""
    name = dataset.strip().lower()
    shape = _IMAGE_SHAPES.get(name)
    if shape is not None:
        return shape if int(np.prod(shape)) == width else None
    if name.startswith("table:"):
        side = int(round(width ** 0.5))
        return (1, side, side) if side >= 4 and side * side == width else None
    return None


def samples_grid(bs: BalancedSet, dataset: str, path: str | os.PathLike, *, per_class: int = 8,
                 title: str = "") -> Path:
    """A PNG grid of generated samples: one row per class with generated rows, up to
    ``per_class`` of them (spread over the class's generated rows), captioned with their CSV
    row and, for convex methods, their heaviest parent. Raises :class:`RunError` where the
    samples are not images (2D toys, tables that are not pictures, F's features of conv runs)."""
    from gamo.audit import contact_sheet

    if bs.space != "input":
        raise RunError("the generated samples are F's features (a conv run), not images: no picture to draw")
    shape = image_shape(dataset, bs.x.shape[1])
    if shape is None:
        raise RunError(f"{dataset} rows are not images: no picture to draw (the CSV has every generated row)")
    if dataset.strip().lower().startswith("table:"):
        lo, hi = float(bs.x.min()), float(bs.x.max())
        vr = (lo, hi if hi > lo else lo + 1.0)
    else:
        vr = (-1.0, 1.0)              # the engine's images
    rows = np.flatnonzero(bs.synthetic)
    classes = sorted(set(bs.y[rows].tolist()))
    if not classes:
        raise RunError("the set has no generated rows to draw")
    per_class = max(1, int(per_class))
    tiles, labels = [], []
    blank = np.full(shape, vr[1], np.float32)          # white
    for c in classes:
        own = rows[bs.y[rows] == c]
        pick = own[np.unique(np.linspace(0, len(own) - 1, min(per_class, len(own))).round().astype(int))]
        for r in pick:
            tiles.append(bs.x[r].reshape(shape))
            parent = ""
            if bs.parent_idx is not None:
                parent = f"\nparent {bs.parent_idx[r, 0]} ({bs.parent_w[r, 0]:.2f})"
            labels.append(f"class {c} · row {r}{parent}")
        for _ in range(per_class - len(pick)):
            tiles.append(blank)
            labels.append("")
    return contact_sheet(np.stack(tiles), labels, path, ncols=per_class, title=title)


def export_run(run: str | os.PathLike, out: str | os.PathLike, *, seed: int | None = None,
               data_root: str | None = None, per_class: int = 8,
               csv_max_values: int | None = None) -> ExportResult:
    """Write a run's exports (see the module's docstring) to the folder ``out``.

    Parameters
    ----------
    run : path
        A run folder (any, the committed benchmark runs too: nothing in it is changed).
    out : path
        The folder to write to (made when missing); never a run folder.
    seed, data_root
        See :func:`balanced_set`.
    per_class : int
        Samples per class in the PNG grid.
    csv_max_values : int, optional
        Skip the CSV when the set has more values than this (rows x columns); the NPZ has them.

    Returns
    -------
    ExportResult
    """
    run, out = Path(run), Path(out)
    if not run.is_dir():
        raise RunError(f"{run} is not a run folder")
    if os.path.lexists(out / CONFIG) and os.path.lexists(out / "metrics.jsonl"):
        raise RunError(f"{out} holds a run: export to another folder")
    if os.path.realpath(out) == os.path.realpath(run):
        raise RunError("export to a folder other than the run's own")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot make {out} ({e.strerror or type(e).__name__}): choose a folder you can write") from None
    res = ExportResult()

    def part(names: tuple[str, ...], make) -> None:
        try:
            make()
        except GamoError as e:
            for n in names:
                res.skipped.setdefault(n, str(e))
        except OSError as e:
            for n in names:
                res.skipped.setdefault(n, f"cannot write it ({e.strerror or type(e).__name__})")

    def config() -> None:
        load_config(run)                                  # a damaged config is not exported as if fine
        res.files[CONFIG] = Path(shutil.copyfile(run / CONFIG, out / CONFIG))

    def checkpoint() -> None:
        load_checkpoint(run)                              # weights_only=True: a GAMO checkpoint, no pickles
        res.files[CHECKPOINT] = Path(shutil.copyfile(run / CHECKPOINT, out / CHECKPOINT))

    def balanced() -> None:
        bs = balanced_set(run, seed=seed, data_root=data_root)
        res.balanced = bs
        res.files[NPZ] = write_npz(bs, out / NPZ)
        if csv_max_values is not None and bs.x.size > csv_max_values:
            res.skipped[CSV] = (f"{len(bs.y)} rows x {bs.x.shape[1]} columns is too large for a CSV here: "
                                f"use the NPZ, or python -m gamo.export")
        else:
            res.files[CSV] = write_csv(bs, out / CSV)
        cfg = load_config(run)
        try:
            res.files[PNG] = samples_grid(bs, cfg.data.dataset, out / PNG, per_class=per_class,
                                          title=f"{cfg.train.method} on {cfg.data.dataset}: generated samples, "
                                                f"one row per class ({bs.source})")
        except GamoError as e:
            res.skipped[PNG] = str(e)

    part((CONFIG,), config)
    part((NPZ, CSV, PNG), balanced)
    part((CHECKPOINT,), checkpoint)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gamo.export",
                                description="Export a run: balanced.npz/.csv, samples.png, config.json, checkpoint.pt.")
    p.add_argument("run", help="a run folder")
    p.add_argument("out", help="the folder to write to")
    p.add_argument("--seed", type=int, default=None, help="noise seed of the generated rows (default: the run's)")
    p.add_argument("--data-root", default=None, help="image datasets: where to read them (never downloaded)")
    p.add_argument("--per-class", type=int, default=8, help="samples per class in samples.png")
    a = p.parse_args(argv)
    try:
        res = export_run(a.run, a.out, seed=a.seed, data_root=a.data_root, per_class=a.per_class)
    except GamoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, path in res.files.items():
        print(f"wrote {path}")
    for name, why in res.skipped.items():
        print(f"skipped {name}: {why}")
    if res.balanced is not None:
        print(f"balanced set: {len(res.balanced.y)} rows ({int(res.balanced.synthetic.sum())} generated), "
              f"class counts {res.balanced.counts()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
