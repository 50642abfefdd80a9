"""Class-balanced metrics (Section 4) and sample-quality measures."""
from __future__ import annotations

import numpy as np
import torch

from gamo.snapshot import Metrics


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(K, K) counts, rows true class, columns predicted; computed where the tensors live."""
    return torch.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def metrics_from_confusion(confusion: np.ndarray) -> Metrics:
    """ACSA = mean per-class recall; GM = their geometric mean (0 if any class has recall 0)."""
    confusion = np.asarray(confusion, dtype=np.int64)
    support = confusion.sum(axis=1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(len(support)), where=support > 0)
    present = support > 0
    r = recall[present]
    gm = float(np.exp(np.log(r).mean())) if np.all(r > 0) else 0.0
    total = confusion.sum()
    return Metrics(
        acsa=float(r.mean()) if r.size else 0.0,
        gm=gm,
        accuracy=float(np.trace(confusion) / total) if total else 0.0,
        recall=tuple(float(v) for v in recall),
        confusion=confusion,
    )


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> Metrics:
    """Metrics from label arrays (NumPy)."""
    cm = np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred), minlength=n_classes * n_classes)
    return metrics_from_confusion(cm.reshape(n_classes, n_classes))


def imbalance_ratio(counts: np.ndarray) -> float:
    """IR: size of the largest class over that of the smallest."""
    counts = np.asarray(counts)
    return float(counts.max() / max(counts.min(), 1))
