"""Immutable records the training loop yields."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Class-balanced scores of M on one split.

    ``acsa`` is the mean of per-class recall, ``gm`` their geometric mean (Section 4).
    ``confusion[i, j]`` counts true class i predicted as j.
    """

    acsa: float
    gm: float
    accuracy: float
    recall: tuple[float, ...]
    confusion: np.ndarray

    def to_dict(self) -> dict:
        return {
            "acsa": self.acsa,
            "gm": self.gm,
            "accuracy": self.accuracy,
            "recall": list(self.recall),
            "confusion": self.confusion.tolist(),
        }


@dataclass(frozen=True)
class Generated:
    """Positions of the fixed-noise generated points, one block per minority class.

    Attributes
    ----------
    x : (m, d) float32
        Points in M's input space (2D for toys, flattened inputs for dense data, F's
        features for conv data). The same row is the same noise vector in every snapshot.
    y : (m,) int64
        Class each point was generated for.
    parent_idx : (m, k) int64 or None
        For convex generators: row indices into ``Dataset.x_train`` of each point's
        top-k convex parents, heaviest first.
    parent_w : (m, k) float32 or None
        Their weights (the full weight vector sums to 1; these are its largest k entries).
    m_pred : (m,) int64
        M's predicted class for each point at this step.
    d_real : (m,) float32 or None
        D's "real" score of each point for its own class (methods with a D).
    eff_parents : (m,) float32 or None
        For convex generators: the effective number of parents of each point, exp of the
        entropy of its full convex weight vector (1 when all weight is on one member, n_i when
        it is spread evenly over the class's n_i members).
    features_step : int or None
        Conv family, convex generators: the step whose F the points are combined in (the
        members' features of the last F-frozen phase, ``Method.last_features``); None elsewhere.
    """

    x: np.ndarray
    y: np.ndarray
    parent_idx: np.ndarray | None
    parent_w: np.ndarray | None
    m_pred: np.ndarray
    d_real: np.ndarray | None = None
    eff_parents: np.ndarray | None = None
    features_step: int | None = None


@dataclass(frozen=True)
class Grid:
    """2D data only: M's class probabilities and D's real score on a regular grid.

    ``m_proba[iy, ix, k]`` is P(class k) at ``(xs[ix], ys[iy])``; ``d_real[iy, ix, k]`` is
    D(x | k) there (None for methods without D).
    """

    xs: np.ndarray
    ys: np.ndarray
    m_proba: np.ndarray
    d_real: np.ndarray | None


@dataclass(frozen=True)
class Snapshot:
    """The state of a run after ``step`` iterations.

    ``losses`` maps each player the method trains ("M", "D", "G") to its latest loss.
    ``train`` is None where it was not evaluated at this step (conv data: between epochs).
    ``val`` (the balanced validation split, :attr:`gamo.data.types.Dataset.x_val`) is evaluated
    where ``train`` is, from step 1 on; None elsewhere and for data without a validation split.
    ``health`` is :func:`gamo.health.generator_health` of ``generated`` (per minority class:
    effective and distinct top parents, spreads, M's share, collapsed), or None where it was not
    computed (methods that generate nothing; conv data between epochs).
    """

    step: int
    epoch: float
    losses: dict[str, float]
    test: Metrics
    train: Metrics | None
    generated: Generated | None
    grid: Grid | None
    elapsed: float
    phase: str = "gamo"
    extra: dict = field(default_factory=dict)
    health: dict | None = None
    val: Metrics | None = None

    def to_record(self) -> dict:
        """A JSON-able line for ``metrics.jsonl`` (no arrays of generated points)."""
        rec = {
            "step": self.step,
            "epoch": round(self.epoch, 4),
            "elapsed": round(self.elapsed, 3),
            "losses": {k: float(v) for k, v in self.losses.items()},
            "test": self.test.to_dict(),
        }
        if self.train is not None:
            rec["train"] = self.train.to_dict()
        if self.val is not None:
            rec["val"] = self.val.to_dict()
        if self.health is not None:
            rec["health"] = self.health
        return rec
