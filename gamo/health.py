"""Generator health: is a method's generator making new points, or copies of one?

For the fixed-noise batch of a snapshot (:class:`gamo.snapshot.Generated`) and the real members
of each class in the same space, :func:`generator_health` measures per minority class:

* ``n`` -- generated points of the class;
* ``eff_parents`` -- convex generators: the mean over the class's points of exp(entropy) of each
  point's full convex weights (1: all weight on one real member; n_i: spread evenly over the
  class's n_i members); None for other methods;
* ``distinct_top`` -- convex generators: how many different real members are the heaviest parent
  of the class's points (1 of n: every point leans on the same member); None otherwise;
* ``spread`` -- the points' mean Euclidean distance to the *real* class centroid over the real
  members' mean distance to it: about 1 for points spread like the class, 0 for every point on
  the centroid. A collapse onto one outlying member keeps this large, hence also
* ``spread_self`` -- the points' mean distance to *their own* centroid over the real members' mean
  distance to the real centroid: 0 when all points coincide, wherever they are;
* ``m_share`` -- the share of the points M predicts as their class;
* ``collapsed`` -- True when (convex) ``distinct_top <= 1`` with ``n > 1``, or ``spread_self <
  1/3`` with ``n > 1``: the generator adds (near-)duplicates rather than new points.

The spreads need the generated points and the real members in the same space (M's input space:
the 2D plane, flattened inputs, or F's features for conv data). Where they are not (a different
number of columns, e.g. generated images against member features) the spreads are None and only
what does not need them is measured. A class with no real members, or whose members all coincide
(a single member), has no scale: its spreads are None.

Everything returned is JSON-able (plain floats, ints, bools, None; class keys are strings), so a
snapshot's health goes into ``metrics.jsonl`` as it is. This module does not import torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from gamo.snapshot import Generated

#: ``spread_self`` below this marks a class as collapsed (its points cover under a third of the
#: spread of the real class).
COLLAPSE_SPREAD = 1.0 / 3.0
KEYS = ("n", "eff_parents", "distinct_top", "spread", "spread_self", "m_share", "collapsed")

__all__ = ["COLLAPSE_SPREAD", "KEYS", "ClassReference", "class_reference", "generator_health",
           "health_summary", "format_health"]


@dataclass(frozen=True)
class ClassReference:
    """The real members of one class, as the spreads need them.

    Attributes
    ----------
    n_members : int
        Real members of the class.
    centroid : (d,) float64 or None
        Their mean (None without members).
    radius : float or None
        Their mean Euclidean distance to ``centroid``; None when it is 0 or there are no
        members (no scale to compare with).
    """

    n_members: int
    centroid: np.ndarray | None
    radius: float | None


def class_reference(x: np.ndarray, y: np.ndarray, classes: Iterable[int]) -> dict[int, ClassReference]:
    """Centroid and mean distance to it of the real members of each class.

    Parameters
    ----------
    x : (n, ...) array
        Real points in M's input space (rows are flattened).
    y : (n,) int array
        Their classes.
    classes : iterable of int
        The classes to describe.

    Returns
    -------
    dict
        class -> :class:`ClassReference`.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    y = np.asarray(y).reshape(-1)
    out: dict[int, ClassReference] = {}
    for c in classes:
        xc = x[y == c]
        if len(xc) == 0:
            out[int(c)] = ClassReference(0, None, None)
            continue
        mu = xc.mean(axis=0)
        r = float(np.linalg.norm(xc - mu, axis=1).mean())
        ok = np.isfinite(r) and r > 1e-12 * max(1.0, float(np.abs(mu).max()))
        out[int(c)] = ClassReference(len(xc), mu, r if ok else None)
    return out


def _num(v: float | None, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def generator_health(gen: Generated | None, real_x: np.ndarray | None = None,
                     real_y: np.ndarray | None = None, *,
                     reference: Mapping[int, ClassReference] | None = None) -> dict[str, dict[str, Any]]:
    """Per-class health of a snapshot's fixed-noise generated points.

    Parameters
    ----------
    gen : Generated or None
        The snapshot's generated points (``x`` in M's input space, ``y``, ``m_pred``, and for
        convex generators ``parent_idx`` and ``eff_parents``).
    real_x, real_y : arrays, optional
        The real training points (or only the generated classes' members) in the same space as
        ``gen.x``: the training rows for dense data, F's features for conv data.
    reference : mapping, optional
        :func:`class_reference` of the real points, instead of ``real_x`` and ``real_y`` (a
        caller whose real points do not change computes it once).

    Returns
    -------
    dict
        ``str(class)`` -> {``n``, ``eff_parents``, ``distinct_top``, ``spread``, ``spread_self``,
        ``m_share``, ``collapsed``} for each class in ``gen.y`` (see the module's docstring);
        values that do not apply are None. Empty when ``gen`` is None or has no points.
    """
    if gen is None or len(gen.y) == 0:
        return {}
    y = np.asarray(gen.y).reshape(-1)
    x = np.asarray(gen.x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    classes = [int(c) for c in np.unique(y)]
    if reference is None and real_x is not None and real_y is not None:
        reference = class_reference(real_x, real_y, classes)
    m_pred = np.asarray(gen.m_pred).reshape(-1)
    out: dict[str, dict[str, Any]] = {}
    for c in classes:
        sel = y == c
        n = int(sel.sum())
        eff = distinct = spread = spread_self = None
        if gen.eff_parents is not None:
            eff = _num(np.asarray(gen.eff_parents, dtype=np.float64)[sel].mean(), 3)
        if gen.parent_idx is not None and np.asarray(gen.parent_idx).ndim == 2 and gen.parent_idx.shape[1]:
            distinct = int(len(np.unique(np.asarray(gen.parent_idx)[sel, 0])))
        ref = reference.get(c) if reference is not None else None
        if ref is not None and ref.radius is not None and ref.centroid.shape[0] == x.shape[1]:
            xc = x[sel]
            spread = _num(np.linalg.norm(xc - ref.centroid, axis=1).mean() / ref.radius)
            spread_self = _num(np.linalg.norm(xc - xc.mean(axis=0), axis=1).mean() / ref.radius)
        m_share = _num(float(np.mean(m_pred[sel] == c)))
        collapsed = n > 1 and ((distinct is not None and distinct <= 1)
                               or (spread_self is not None and spread_self < COLLAPSE_SPREAD))
        out[str(c)] = {"n": n, "eff_parents": eff, "distinct_top": distinct, "spread": spread,
                       "spread_self": spread_self, "m_share": m_share, "collapsed": bool(collapsed)}
    return out


def health_summary(health: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """The worst value of each measure over the classes, and the collapsed classes.

    Parameters
    ----------
    health : mapping or None
        :func:`generator_health`'s result.

    Returns
    -------
    dict
        ``eff_parents``, ``spread``, ``spread_self``, ``m_share``: the smallest over the classes
        where it applies (None where it applies to none); ``distinct_top`` and ``n``: the
        smallest number of distinct top parents and the point count of that class;
        ``collapsed``: the collapsed classes (ints, ascending); ``classes``: how many classes.
    """
    health = health or {}

    def worst(key: str) -> float | None:
        vals = [h[key] for h in health.values() if h.get(key) is not None]
        return min(vals) if vals else None

    with_top = [h for h in health.values() if h.get("distinct_top") is not None]
    low = min(with_top, key=lambda h: (h["distinct_top"] / max(h["n"], 1), h["distinct_top"])) \
        if with_top else None
    return {
        "classes": len(health),
        "eff_parents": worst("eff_parents"),
        "distinct_top": low["distinct_top"] if low else None,
        "n": low["n"] if low else None,
        "spread": worst("spread"),
        "spread_self": worst("spread_self"),
        "m_share": worst("m_share"),
        "collapsed": sorted(int(c) for c, h in health.items() if h.get("collapsed")),
    }


def format_health(health: Mapping[str, Mapping[str, Any]] | None) -> str:
    """One line for the CLI, e.g. ``health: parents>=1.0 distinct>=1/16 spread>=0.41
    self>=0.00 M-share>=0.00 COLLAPSED: 3,5`` (worst values over the minority classes; parts that
    do not apply are left out). Empty for no health."""
    if not health:
        return ""
    s = health_summary(health)
    parts = ["health:"]
    if s["eff_parents"] is not None:
        parts.append(f"parents>={s['eff_parents']:.1f}")
    if s["distinct_top"] is not None:
        parts.append(f"distinct>={s['distinct_top']}/{s['n']}")
    if s["spread"] is not None:
        parts.append(f"spread>={s['spread']:.2f}")
    if s["spread_self"] is not None:
        parts.append(f"self>={s['spread_self']:.2f}")
    if s["m_share"] is not None:
        parts.append(f"M-share>={s['m_share']:.2f}")
    if s["collapsed"]:
        parts.append("COLLAPSED: " + ",".join(str(c) for c in s["collapsed"]))
    return " ".join(parts)
