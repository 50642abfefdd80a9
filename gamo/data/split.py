"""Seeded balanced test split, per-class subsampling of the training pool, and the balanced
validation split from the pool's rows the profile left unused."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gamo.errors import DataError


@dataclass(frozen=True)
class Source:
    """A loaded dataset before splitting and subsampling.

    ``x``/``y`` is the training pool (or the only pool, when ``x_test`` is None, in which case
    the test split is drawn from it first). ``x`` may be uint8 images (converted to [-1, 1]
    only for the chosen rows) or float features. ``x_val``/``y_val``, when given (toys), are
    points generated for the validation split alone; otherwise it comes from the pool's rows
    the profile leaves unused.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None
    meta: dict = field(default_factory=dict)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def single_pool(self) -> bool:
        return self.x_test is None


def to_float32(x: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [-1, 1]; anything else -> float32 unchanged.

    Parameters
    ----------
    x : np.ndarray
        Rows to convert.

    Returns
    -------
    np.ndarray
        float32 array of the same shape.
    """
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / np.float32(127.5)) - np.float32(1.0)
    return np.ascontiguousarray(x, dtype=np.float32)


def balanced_test_indices(
    y: np.ndarray,
    n_per_class: int,
    rng: np.random.Generator,
    class_names: Sequence[str],
    single_pool: bool,
) -> np.ndarray:
    """Draw ``n_per_class`` indices of every class without replacement.

    Parameters
    ----------
    y : np.ndarray
        int64 labels of the pool the test split is drawn from.
    n_per_class : int
        Test points per class.
    rng : np.random.Generator
        Source of randomness (seeded by the caller).
    class_names : sequence of str
        One name per class, for messages; its length is the number of classes.
    single_pool : bool
        True when training points come from the same pool, so each class must keep some.

    Returns
    -------
    np.ndarray
        int64 indices into ``y``, ordered by class, then by index.

    Raises
    ------
    DataError
        When a class has too few members.
    """
    out = []
    for c, name in enumerate(class_names):
        members = np.flatnonzero(y == c)
        if single_pool and members.size <= n_per_class:
            raise DataError(
                f"class {c} ({name!r}) has {members.size} points, not more than the "
                f"{n_per_class}-per-class test split: lower n_test_per_class (--test-per-class) "
                f"below {members.size}"
            )
        if not single_pool and members.size < n_per_class:
            raise DataError(
                f"the test set has only {members.size} points of class {c} ({name!r}): "
                f"lower n_test_per_class (--test-per-class) to at most {members.size}"
            )
        out.append(np.sort(rng.choice(members, size=n_per_class, replace=False)))
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def available_per_class(y: np.ndarray, pool: np.ndarray, n_classes: int) -> list[int]:
    """Number of pool members of each class.

    Parameters
    ----------
    y : np.ndarray
        Labels of the whole source.
    pool : np.ndarray
        Indices into ``y`` that may be used for training.
    n_classes : int
        Number of classes.

    Returns
    -------
    list of int
        Counts in label order.
    """
    return np.bincount(y[pool], minlength=n_classes)[:n_classes].astype(int).tolist()


def subsample_indices(
    y: np.ndarray,
    pool: np.ndarray,
    counts: Sequence[int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Pick ``counts[c]`` pool members of every class ``c`` without replacement.

    Parameters
    ----------
    y : np.ndarray
        Labels of the whole source.
    pool : np.ndarray
        Indices into ``y`` available for training.
    counts : sequence of int
        Points to keep per class (each <= what the pool has; checked by the profile).
    rng : np.random.Generator
        Source of randomness.

    Returns
    -------
    np.ndarray
        int64 indices into ``y``, ordered by class, then by index.
    """
    pool = np.sort(np.asarray(pool, dtype=np.int64))
    yp = y[pool]
    out = []
    for c, k in enumerate(counts):
        members = pool[yp == c]
        if k > members.size:  # the profile check should have caught it
            raise DataError(f"class {c}: asked {k} points, only {members.size} available")
        chosen = members if k == members.size else rng.choice(members, size=k, replace=False)
        out.append(np.sort(chosen))
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def validation_indices(
    y: np.ndarray,
    unused: np.ndarray,
    n_per_class: int,
    rng: np.random.Generator,
    class_names: Sequence[str],
) -> tuple[np.ndarray, int, str | None]:
    """Draw a balanced validation split from the training rows the profile left unused.

    Every class gets the same number of rows: ``n_per_class``, or fewer when the class with the
    fewest unused rows has fewer (small pools: scikit-learn digits, users' tables); none at all
    when a class has no unused row (e.g. profile ``none`` keeps every row).

    Parameters
    ----------
    y : np.ndarray
        Labels of the whole pool.
    unused : np.ndarray
        Indices into ``y`` of the pool rows that are neither training nor test rows.
    n_per_class : int
        Validation rows asked per class (0: none).
    rng : np.random.Generator
        Source of randomness (its own stream, so that the training and test rows do not
        depend on the validation split).
    class_names : sequence of str
        One name per class; its length is the number of classes.

    Returns
    -------
    idx : np.ndarray
        int64 indices into ``y``, ordered by class, then by index.
    n : int
        Rows per class actually drawn (``<= n_per_class``).
    note : str or None
        Why ``n`` is below ``n_per_class`` (and what to change), else None.
    """
    unused = np.sort(np.asarray(unused, dtype=np.int64))
    yu = y[unused]
    K = len(class_names)
    have = np.bincount(yu, minlength=K)[:K] if K else np.zeros(0, np.int64)
    n = int(min(n_per_class, int(have.min()) if K else 0))
    note = None
    if n < n_per_class:
        c = int(np.argmin(have))
        if n == 0:
            note = (f"no validation split: class {c} ({class_names[c]!r}) has no training row the profile "
                    f"left unused; choose a profile that keeps fewer of its rows to get one, or set "
                    f"n_val_per_class (--val-per-class) to 0")
        else:
            note = (f"{n} validation rows per class instead of {n_per_class}: class {c} "
                    f"({class_names[c]!r}) has only {n} training rows the profile left unused")
    if n == 0:
        return np.zeros(0, np.int64), 0, note
    out = [np.sort(rng.choice(unused[yu == c], size=n, replace=False)) for c in range(K)]
    return np.concatenate(out).astype(np.int64), n, note
