"""The Dataset record every loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """An imbalanced training split, a balanced test split and a balanced validation split,
    ready for the engine.

    Attributes
    ----------
    name : str
        The dataset spec it came from, e.g. ``"toy:moons"`` or ``"fashion-mnist"``.
    kind : str
        ``"2d"`` (toy data), ``"table"`` (a user's CSV/NPZ) or ``"image"``.
    x_train, x_test : np.ndarray
        float32. Shape ``(n, d)`` for 2D/tables, ``(n, C, H, W)`` in [-1, 1] for images.
    y_train, y_test : np.ndarray
        int64 labels in ``0..n_classes-1``.
    class_names : tuple of str
        One name per class, in label order.
    train_idx, test_idx : np.ndarray
        int64 indices of the chosen rows in the source pools (recorded with each run).
    image_shape : tuple or None
        ``(C, H, W)`` for images, else None.
    meta : dict
        What the loader recorded: profile, per-class counts, availability, where the test and
        validation splits come from (``val_from``, ``val_per_class``, ``val_note``).
    x_val, y_val : np.ndarray
        The balanced validation split (float32 / int64, like the test split), drawn from the
        training pool's rows the profile did not select (toys: generated apart), so it shares
        no row with train or test. Empty (0 rows) when disabled or when nothing was left over.
    val_idx : np.ndarray
        int64 indices of the validation rows in the training pool (toys: in the generated
        validation points).
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    train_idx: np.ndarray
    test_idx: np.ndarray
    image_shape: tuple[int, int, int] | None = None
    meta: dict = field(default_factory=dict)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    val_idx: np.ndarray | None = None

    def __post_init__(self) -> None:
        # no validation split given: an empty one of the right shape and dtypes
        if self.x_val is None:
            object.__setattr__(self, "x_val", np.zeros((0, *np.shape(self.x_train)[1:]), np.float32))
        if self.y_val is None:
            object.__setattr__(self, "y_val", np.zeros(0, np.int64))
        if self.val_idx is None:
            object.__setattr__(self, "val_idx", np.zeros(0, np.int64))

    @property
    def has_val(self) -> bool:
        """Whether there is a validation split (at least one row)."""
        return len(self.y_val) > 0

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y_train, minlength=self.n_classes)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))
