"""Datasets, imbalance profiles and splits.

``load_dataset(cfg)`` is the one entry point: it loads (or generates) the source, draws a
balanced test split (seeded; from the official test set where there is one), subsamples the
training pool to the profile's per-class counts (seeded, without replacement), then draws a
balanced validation split from the pool's rows the profile did not select (its own seeded
stream, so the training and test rows are the same with or without it; toys: points generated
apart from the pool, since a profile's largest class uses every generated training point).

Dataset names: see :data:`DATASETS`, plus ``table:PATH`` for a CSV or NPZ file.
"""
from __future__ import annotations

import numpy as np

from gamo.config import DataConfig
from gamo.data.images import (
    FASHION_MNIST_ENV,
    FASHION_MNIST_SYSTEM_DIR,
    load_digits_source,
    load_idx_family,
    load_torchvision_rgb,
    read_idx,
)
from gamo.data.profiles import PAPER_COUNTS, PROFILE_FORMS, paper_family, parse_profile
from gamo.data.split import (
    Source,
    available_per_class,
    balanced_test_indices,
    subsample_indices,
    to_float32,
    validation_indices,
)
from gamo.data.tables import MAX_UPLOAD_BYTES, load_table_bytes, load_table_file
from gamo.data.toy import TOYS, make_toy
from gamo.data.types import Dataset
from gamo.errors import DataError

DATASETS: tuple[str, ...] = (
    "toy:moons", "toy:circles", "toy:blobs", "toy:spirals", "toy:nonconvex",
    "digits", "mnist", "fashion-mnist", "cifar10", "svhn",
)
"""Accepted dataset names (besides ``table:PATH``, a CSV or NPZ file)."""

TABLE_PREFIX = "table:"

__all__ = [
    "DATASETS", "Dataset", "FASHION_MNIST_ENV", "FASHION_MNIST_SYSTEM_DIR", "MAX_UPLOAD_BYTES",
    "PAPER_COUNTS", "PROFILE_FORMS", "TABLE_PREFIX", "load_dataset", "load_source",
    "load_table_bytes", "paper_family", "parse_profile", "read_idx",
]


def load_source(cfg: DataConfig) -> Source:
    """Load or generate the whole source of ``cfg.dataset`` (before any split).

    Parameters
    ----------
    cfg : DataConfig
        Which dataset, and the toy / table / torchvision settings.

    Returns
    -------
    Source
        The pool(s), class names, kind and image shape.

    Raises
    ------
    DataError
        For an unknown dataset name (the message lists the valid ones) or whatever the
        loader rejects.
    """
    name = cfg.dataset.strip()
    low = name.lower()
    if low.startswith(TABLE_PREFIX):
        return load_table_file(name[len(TABLE_PREFIX):], cfg.label_column)
    if low.startswith("toy:"):
        toy = low[4:]
        if toy not in TOYS:
            raise DataError(_unknown(name))
        # separate streams for generation and for the split/subsampling
        gen_seed = np.random.SeedSequence([cfg.seed, 1])
        x, y, names = make_toy(toy, cfg.n_per_class + cfg.n_test_per_class, cfg.n_classes,
                               cfg.noise, gen_seed)
        # the validation points: the same distribution, a stream of their own (the pool, and
        # so the training and test rows, do not depend on n_val_per_class)
        xv = yv = None
        if cfg.n_val_per_class:
            xv, yv, _ = make_toy(toy, cfg.n_val_per_class, cfg.n_classes, cfg.noise,
                                 np.random.SeedSequence([cfg.seed, 2]))
        return Source(kind="2d", x=x, y=y, class_names=names, x_val=xv, y_val=yv)
    if low == "digits":
        return load_digits_source()
    if low in ("mnist", "fashion-mnist"):
        return load_idx_family(low, cfg.data_root, cfg.download)
    if low in ("cifar10", "svhn"):
        return load_torchvision_rgb(low, cfg.data_root, cfg.download)
    raise DataError(_unknown(name))


def _unknown(name: str) -> str:
    return (f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, "
            f"or table:PATH for a CSV/NPZ file")


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load a dataset, split off a balanced test set, unbalance the training set and draw a
    balanced validation set from the training rows the profile left unused.

    Parameters
    ----------
    cfg : DataConfig
        Dataset name, profile, test and validation sizes per class, seed and loader settings.

    Returns
    -------
    Dataset
        float32 features (images in [-1, 1]), int64 labels; train rows ordered by class, then
        by source index; ``train_idx`` / ``test_idx`` index the source pools (for datasets with
        an official test set, ``test_idx`` indexes that test set). ``x_val`` / ``y_val`` /
        ``val_idx``: the validation split, ``cfg.n_val_per_class`` rows of every class, or as
        many as the class with the fewest unused training rows has (none when a class has
        none; toys always have the full count, generated apart). ``meta`` records the profile,
        the per-class counts, what was available, and ``val_from`` / ``val_per_class`` /
        ``val_note`` (why the validation split is smaller than asked, when it is).

    Raises
    ------
    DataError
        For anything the user can fix: unknown dataset, missing/invalid files, a profile that
        asks for more points than a class has, a test split too large for a class, ...
    """
    if cfg.seed < 0:
        raise DataError(f"seed must be 0 or more (got {cfg.seed}): numpy seeds are non-negative")
    src = load_source(cfg)
    K = len(src.class_names)
    rng = np.random.default_rng(cfg.seed)

    # balanced test split first, so it does not depend on the profile
    if src.single_pool:
        test_idx = balanced_test_indices(src.y, cfg.n_test_per_class, rng, src.class_names, True)
        mask = np.ones(src.y.shape[0], dtype=bool)
        mask[test_idx] = False
        pool = np.flatnonzero(mask)
        x_test_src, y_test_src = src.x, src.y
    else:
        assert src.x_test is not None and src.y_test is not None
        test_idx = balanced_test_indices(src.y_test, cfg.n_test_per_class, rng, src.class_names, False)
        pool = np.arange(src.y.shape[0])
        x_test_src, y_test_src = src.x_test, src.y_test

    n_avail = available_per_class(src.y, pool, K)
    counts = parse_profile(
        cfg.profile, K, n_avail, cfg.dataset,
        class_names=src.class_names,
        n_test_per_class=cfg.n_test_per_class if src.single_pool else None,
    )
    if counts is None:
        for c, a in enumerate(n_avail):
            if a < 2:
                where = (f"after the {cfg.n_test_per_class}-per-class test split: reduce "
                         f"--test-per-class" if src.single_pool else "in the training set")
                raise DataError(f"class {c} ({src.class_names[c]!r}) has only {a} training point{'' if a == 1 else 's'} {where}")
        counts = list(n_avail)

    train_idx = subsample_indices(src.y, pool, counts, rng)

    # balanced validation split last, from its own stream: train and test rows do not depend on it
    val_note = None
    if src.x_val is not None and src.y_val is not None:      # toys: generated apart
        val_idx = np.arange(len(src.y_val), dtype=np.int64)
        x_val_src, y_val_src = src.x_val, src.y_val
        n_val, val_from = cfg.n_val_per_class, "generated"
    elif cfg.n_val_per_class:
        unused = np.setdiff1d(pool, train_idx)
        val_idx, n_val, val_note = validation_indices(
            src.y, unused, cfg.n_val_per_class, np.random.default_rng([cfg.seed, 3]), src.class_names)
        x_val_src, y_val_src = src.x, src.y
        val_from = "unused training rows" if n_val else "none"
    else:
        val_idx, n_val, val_from = np.zeros(0, np.int64), 0, "none"
        x_val_src, y_val_src = src.x, src.y

    meta = dict(src.meta)
    meta.update(profile=cfg.profile, counts=[int(c) for c in counts], n_available=n_avail,
                test_from="pool" if src.single_pool else "official test set",
                paper_family=paper_family(cfg.dataset),
                val_from=val_from, val_per_class=int(n_val))
    if val_note:
        meta["val_note"] = val_note
    return Dataset(
        name=cfg.dataset,
        kind=src.kind,
        x_train=to_float32(src.x[train_idx]),
        y_train=src.y[train_idx].astype(np.int64),
        x_test=to_float32(x_test_src[test_idx]),
        y_test=y_test_src[test_idx].astype(np.int64),
        class_names=tuple(src.class_names),
        train_idx=train_idx,
        test_idx=test_idx,
        image_shape=src.image_shape,
        meta=meta,
        x_val=to_float32(x_val_src[val_idx]).reshape(len(val_idx), *np.shape(src.x)[1:]),
        y_val=np.asarray(y_val_src[val_idx], dtype=np.int64),
        val_idx=val_idx,
    )
