"""The Dataset record every loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """An imbalanced training split and a balanced test split, ready for the engine.

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

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.y_train, minlength=self.n_classes)

    @property
    def n_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))
