"""Functions a page sends to a live run with ``handle.query(fn)``.

They run in the run's own process (:class:`gamo.worker.ProcessRunHandle`), between two
iterations, so they must be picklable (module-level) and this module must stay light: the run's
process never imports Streamlit, and nothing here does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["train_features", "audit_fixed_noise"]


def train_features(trainer: Any) -> tuple[int, np.ndarray]:
    """``(step, F(x_train))``: the real training points in M's input space (F's features for the
    conv family, the flattened inputs for the dense family) as float32 (n, d)."""
    feats = trainer.method.train_features()
    return int(trainer.step_count), feats.reshape(len(feats), -1).float().cpu().numpy()


def audit_fixed_noise(trainer: Any, low_pct: float = 5.0, high_pct: float = 95.0) -> tuple[int, Any]:
    """``(step, audit)``: :func:`gamo.audit.audit_samples` of the run's fixed-noise generated
    points (the ones the map follows) at this step; ``audit`` is None for a method that
    generates nothing."""
    from gamo.audit import audit_samples

    m = trainer.method
    gen = m.generated()
    if gen is None or len(gen.y) == 0:
        return int(trainer.step_count), None
    audit = audit_samples(m, gen.x, gen.y, parent_idx=gen.parent_idx, parent_w=gen.parent_w,
                          eff_parents=gen.eff_parents, low_pct=low_pct, high_pct=high_pct)
    return int(trainer.step_count), audit
