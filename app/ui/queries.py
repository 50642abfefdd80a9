"""Functions a page sends to a live run with ``handle.query(fn)``.

They run in the run's own process (:class:`gamo.worker.ProcessRunHandle`), between two
iterations, so they must be picklable (module-level) and this module must stay light: the run's
process never imports Streamlit, and nothing here does.

Both read the real points in the features of the last F-frozen phase
(``Method.last_features``: GAMO's conv generated points are combined in those, and stamped with
``features_step``), so that a query while F trains makes no pass over the training set (2.3 s on
Fashion-MNIST) and the map, the generated points and the audit share one space.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

__all__ = ["train_features", "audit_fixed_noise"]

# per trainer: (the real points' tensor, gamo.audit.RealReference of it) of the last audit, reused
# while the real points are the same tensor (the class gaps are most of an audit's cost)
_REFERENCES: "weakref.WeakKeyDictionary[Any, tuple[Any, Any]]" = weakref.WeakKeyDictionary()


def train_features(trainer: Any) -> tuple[int, np.ndarray]:
    """``(step, F(x_train))``: the real training points in M's input space (F's features of the
    last F-frozen phase for the conv family, ``step`` the step whose F they are of; the flattened
    inputs for the dense family, step 0) as float32 (n, d)."""
    m = trainer.method
    feats = m.last_features()
    return int(m.features_step), feats.reshape(len(feats), -1).float().cpu().numpy()


def _reference(trainer: Any, gen: Any) -> Any:
    """The run's real points prepared for audits (:func:`gamo.audit.real_reference`), made again
    only when the features change: those the generated points ``gen`` are combined in (stamped
    with ``features_step``: the last F-frozen phase's), else F's current ones."""
    from gamo.audit import real_reference

    m = trainer.method
    stamped = getattr(gen, "features_step", None) is not None
    feats = m.last_features() if stamped else m.train_features()
    hit = _REFERENCES.get(trainer)
    if hit is not None and hit[0] is feats:
        return hit[1]
    ref = real_reference(feats.reshape(len(feats), -1), m.y_train.cpu().numpy())
    _REFERENCES[trainer] = (feats, ref)
    return ref


def audit_fixed_noise(trainer: Any, low_pct: float = 5.0, high_pct: float = 95.0) -> tuple[int, Any]:
    """``(step, audit)``: :func:`gamo.audit.audit_samples` of the run's fixed-noise generated
    points (the ones the map follows) at this step, against the real points in the same space;
    ``audit`` is None for a method that generates nothing."""
    from gamo.audit import audit_samples

    m = trainer.method
    gen = m.generated()
    if gen is None or len(gen.y) == 0:
        return int(trainer.step_count), None
    audit = audit_samples(m, gen.x, gen.y, parent_idx=gen.parent_idx, parent_w=gen.parent_w,
                          eff_parents=gen.eff_parents, low_pct=low_pct, high_pct=high_pct,
                          reference=_reference(trainer, gen))
    return int(trainer.step_count), audit
