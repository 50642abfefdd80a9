"""Sample audit: is each generated point new, plausible and of its class?

For every generated sample of a method (GAMO's convex points, and the points of generators
without parents: SMOTE, cGAN, cG, ...), measured in the space the samples live in (M's input
space: ``"pixels"`` for the flattened image family, ``"F's features"`` for the conv family,
``"input features"`` for 2D toys and tables):

* **parents** (convex generators): the top-k convex parents (rows of ``x_train``) and their
  weights, and the effective number of parents, exp(entropy) of the full weight vector
  (:func:`gamo.methods.gamo.effective_parents`; 1: all weight on one member, i.e. a near copy of
  it; n: spread evenly over n members);
* **DCR** (distance to closest record): ``dcr``, the Euclidean distance to the closest real
  training point of any class, ``dcr_own`` to the closest of its own class and ``dcr_other`` to
  the closest of another class. ``dcr`` and ``dcr_other`` are also given as percentiles of the
  class's own nearest-neighbour distances: for class c, each real member's distance to its
  nearest other member of c; a sample's percentile is the share (in %) of those distances
  strictly below its distance (0 for an exact copy, 100 beyond every member's gap);
* **M and D**: M's predicted class and confidence (the softmax maximum), and D's "real" score
  for the sample's class where the method has a D that judges points in that space;
* **flags**: ``near_duplicate`` (``dcr_pct < low_pct``), ``out_of_distribution``
  (``dcr_pct > high_pct``, or ``closer_to_other``: ``dcr_other < dcr_own``) and
  ``label_disputed`` (M predicts another class).

A class with fewer than two real members has no nearest-neighbour distances: its percentiles
are NaN and only ``closer_to_other`` and ``label_disputed`` can flag its samples.

:func:`audit_points` does the arithmetic on plain arrays, :func:`audit_samples` takes the
measures M and D need from a method, :func:`audit_run` generates fresh samples first.
:func:`per_class_summary`, :func:`to_csv`, :func:`contact_sheet`, :func:`flagged_tiles`,
:func:`flag_scatter` and :func:`write_audit` report an :class:`Audit`. Distances are computed
with chunked matrix products (about 5 s for 10,000 samples against 10,000 real rows of 784
pixels on one busy CPU core), the nearest row's distance then recomputed exactly (an exact copy
has a DCR of exactly 0). This module never imports Streamlit.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gamo.errors import ConfigError, DataError
from gamo.methods.gamo import TOP_PARENTS, effective_parents

SPACE_PIXELS, SPACE_FEATURES, SPACE_INPUT = "pixels", "F's features", "input features"
#: the files :func:`write_audit` writes
CSV_NAME, SUMMARY_NAME, PNG_NAME = "audit.csv", "audit_summary.json", "audit_flagged.png"
FLAGS = ("near_duplicate", "out_of_distribution", "label_disputed")
_CHUNK_ELEMENTS = 1 << 24     # one chunk of the (queries, real rows) distance matrix: 64 MB in float32

__all__ = ["Audit", "RealReference", "real_reference", "check_percentiles", "audit_points", "audit_samples",
           "audit_run", "convex_samples",
           "per_class_summary", "format_summary", "to_csv", "contact_sheet", "flagged_tiles", "flag_scatter",
           "write_audit", "FLAGS", "CSV_NAME", "SUMMARY_NAME", "PNG_NAME"]


@dataclass(frozen=True)
class Audit:
    """Per-sample audit measures (row i of every array is generated sample i).

    Attributes
    ----------
    space : str
        Where the distances were taken: ``"pixels"``, ``"F's features"`` or ``"input features"``.
    x : (n, d) float32
        The samples in that space.
    y : (n,) int64
        The class each sample was generated for.
    m_pred : (n,) int64
        M's predicted class (-1 where M was not asked).
    m_conf : (n,) float64
        M's softmax maximum (NaN where M was not asked).
    d_score : (n,) float64 or None
        D's "real" score for the sample's own class; None for methods without a D on this space.
    dcr, dcr_own, dcr_other : (n,) float64
        Distance to the closest real training point of any class, of the sample's class, of
        another class (inf where there is none).
    dcr_pct, dcr_other_pct : (n,) float64
        ``dcr`` and ``dcr_other`` as percentiles (0-100) of the sample class's real
        nearest-neighbour distances (NaN for a class with fewer than two real members).
    dcr_ratio : (n,) float64
        ``dcr_own`` over the nearest own-class member's distance to *its* nearest other member:
        0 for a copy, at most 0.5 for a point between a member and its nearest neighbour, about 1
        and more beyond the member's usual gap (NaN where that gap is 0 or missing). Unlike
        ``dcr_pct`` it is local: an interior mixture of several members is closer to its nearest
        member than members are to each other (low ``dcr_pct``) without being a copy of it.
    nearest_idx, nearest_other_idx : (n,) int64
        Rows of ``x_train`` of the closest real point (any class) and of another class (-1: none).
    parent_idx : (n, k) int64 or None
        Convex generators: rows of ``x_train`` of the top-k parents, heaviest first.
    parent_w : (n, k) float32 or None
        Their weights.
    eff_parents : (n,) float64 or None
        exp(entropy) of each sample's full convex weights (None where they are not known).
    closer_to_other : (n,) bool
        ``dcr_other < dcr_own``.
    near_duplicate, out_of_distribution, label_disputed : (n,) bool
        The flags (see the module's docstring).
    low_pct, high_pct : float
        The percentiles the flags used.
    method : str
        The method's name ("" when not known).
    """

    space: str
    x: np.ndarray
    y: np.ndarray
    m_pred: np.ndarray
    m_conf: np.ndarray
    d_score: np.ndarray | None
    dcr: np.ndarray
    dcr_pct: np.ndarray
    dcr_ratio: np.ndarray
    dcr_own: np.ndarray
    dcr_other: np.ndarray
    dcr_other_pct: np.ndarray
    nearest_idx: np.ndarray
    nearest_other_idx: np.ndarray
    parent_idx: np.ndarray | None
    parent_w: np.ndarray | None
    eff_parents: np.ndarray | None
    closer_to_other: np.ndarray
    near_duplicate: np.ndarray
    out_of_distribution: np.ndarray
    label_disputed: np.ndarray
    low_pct: float
    high_pct: float
    method: str = ""

    @property
    def n(self) -> int:
        """Number of audited samples."""
        return len(self.y)

    @property
    def flagged(self) -> np.ndarray:
        """(n,) bool: any of the three flags."""
        return self.near_duplicate | self.out_of_distribution | self.label_disputed

    @property
    def classes(self) -> list[int]:
        """The generated classes, ascending."""
        return [int(c) for c in np.unique(self.y)]


# ---------------------------------------------------------------------------------------------- checks
def check_percentiles(low_pct: float, high_pct: float) -> None:
    """Raise :class:`ConfigError` unless ``0 <= low_pct < high_pct <= 100``.

    Parameters
    ----------
    low_pct, high_pct : float
        The near-duplicate and out-of-distribution percentiles.
    """
    try:
        lo, hi = float(low_pct), float(high_pct)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi <= 100):
        raise ConfigError(f"--low-pct and --high-pct (low_pct, high_pct): need 0 <= low < high <= 100, "
                          f"got low {low_pct} and high {high_pct}; e.g. --low-pct 5 --high-pct 95")


# ---------------------------------------------------------------------------------------------- distances
def _tensor(a: Any, device: torch.device | None = None) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    t = t.detach()
    if device is not None:
        t = t.to(device)
    return t.reshape(len(t), -1).float()


@torch.no_grad()
def _nearest(q: torch.Tensor, r: torch.Tensor, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distance (float64) and row of each query row's nearest row of ``r`` (inf, -1 when ``r`` is
    empty). ``exclude_self``: ``q`` is ``r``, and a row is not its own neighbour.

    The nearest row is found with chunked products (squared distances up to the query's own norm,
    on data centred on ``r``'s mean to limit cancellation), then its distance is recomputed
    exactly, so an exact copy has distance 0.
    """
    n, m = len(q), len(r)
    if n == 0 or m == 0 or (exclude_self and m < 2):
        return np.full(n, np.inf), np.full(n, -1, np.int64)
    mu = r.double().mean(dim=0).float()
    qc, rc = q - mu, r - mu
    r2 = (rc * rc).sum(dim=1)                                         # (m,)
    rows = max(1, min(n, _CHUNK_ELEMENTS // m))
    idx = torch.empty(n, dtype=torch.long, device=q.device)
    for i in range(0, n, rows):
        d2 = torch.addmm(r2, qc[i:i + rows], rc.T, alpha=-2)          # (b, m): |r|^2 - 2 q.r
        if exclude_self:
            j = torch.arange(i, min(n, i + rows), device=q.device)
            d2[j - i, j] = float("inf")
        idx[i:i + rows] = d2.argmin(dim=1)
    dist = torch.linalg.vector_norm(q.double() - r[idx].double(), dim=1)
    return dist.cpu().numpy(), idx.cpu().numpy()


def _percentile(ref_sorted: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Share (in %) of ``ref_sorted`` strictly below each value; NaN without references."""
    if len(ref_sorted) == 0:
        return np.full(len(v), np.nan)
    return 100.0 * np.searchsorted(ref_sorted, v, side="left") / len(ref_sorted)


class RealReference:
    """The real points of audits, prepared once: rows centred on their mean with their squared
    norms, and each class's nearest-neighbour gaps (computed the first time a class is audited).

    An audit against the same real points reuses it (``audit_points(..., reference=...)``): the
    Image Lab audits a run's fixed-noise batch again at every refresh, and the gaps are most of
    an audit's cost (0.7 of 1.8 s on 24,523 Fashion-MNIST rows of 512 features); the rows of
    other classes are masked rather than copied per class.

    Parameters
    ----------
    real_x : (N, d) array or tensor
        The real training points (a tensor keeps the work on its device).
    real_y : (N,) int
        Their classes.
    """

    def __init__(self, real_x: Any, real_y: Any) -> None:
        self.x = _tensor(real_x)
        self.y = np.asarray(real_y, dtype=np.int64).reshape(-1)
        if len(self.x) != len(self.y):
            raise DataError(f"{len(self.x)} real points with {len(self.y)} labels: give one label per row")
        self.mu = self.x.double().mean(dim=0).float() if len(self.x) else torch.zeros(self.x.shape[1])
        self.xc = self.x - self.mu.to(self.x.device)
        self.x2 = (self.xc * self.xc).sum(dim=1)
        self._gaps: dict[int, np.ndarray] = {}

    def rows(self, c: int) -> np.ndarray:
        """Rows of class ``c``."""
        return np.flatnonzero(self.y == c)

    def gaps(self, c: int) -> np.ndarray:
        """(N,) float64: each member of class ``c``'s distance to its nearest other member (inf
        for a class of one), at its row; NaN at the other classes' rows."""
        g = self._gaps.get(int(c))
        if g is None:
            rows = self.rows(c)
            g = np.full(len(self.y), np.nan)
            members = self.x[torch.as_tensor(rows, device=self.x.device)]
            g[rows] = _nearest(members, members, exclude_self=True)[0]
            self._gaps[int(c)] = g
        return g

    @torch.no_grad()
    def nearest_own_other(self, q: torch.Tensor, qy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(distance, row) of each query's nearest real point of its class ``qy`` and of another
        class (inf, -1 where there is none): as :func:`_nearest` against each part, in one pass
        over the real rows for every query."""
        n, m = len(q), len(self.x)
        qy = np.asarray(qy, dtype=np.int64).reshape(-1)
        classes, n_c = np.unique(self.y, return_counts=True)
        have = dict(zip(classes.tolist(), n_c.tolist()))
        has_own = np.array([have.get(int(c), 0) > 0 for c in qy], dtype=bool)
        has_other = np.array([have.get(int(c), 0) < m for c in qy], dtype=bool)
        idx_own = torch.zeros(n, dtype=torch.long, device=q.device)
        idx_other = torch.zeros(n, dtype=torch.long, device=q.device)
        if n and m:
            ry = torch.as_tensor(self.y, device=self.x.device)
            qyt = torch.as_tensor(qy, device=self.x.device)
            qc = q - self.mu.to(q.device)
            rows = max(1, min(n, _CHUNK_ELEMENTS // m))
            for i in range(0, n, rows):
                d2 = torch.addmm(self.x2, qc[i:i + rows], self.xc.T, alpha=-2)   # (b, m): |r|^2 - 2 q.r
                own = ry[None, :] == qyt[i:i + rows, None]
                idx_own[i:i + rows] = d2.masked_fill(~own, float("inf")).argmin(dim=1)
                idx_other[i:i + rows] = d2.masked_fill_(own, float("inf")).argmin(dim=1)

        def exact(idx: torch.Tensor, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            dist, out = np.full(n, np.inf), np.full(n, -1, np.int64)
            if n and m and ok.any():
                d = torch.linalg.vector_norm(q.double() - self.x[idx].double(), dim=1).cpu().numpy()
                dist[ok], out[ok] = d[ok], idx.cpu().numpy()[ok]
            return dist, out

        return (*exact(idx_own, has_own), *exact(idx_other, has_other))


def real_reference(real_x: Any, real_y: Any) -> RealReference:
    """A :class:`RealReference` of these real points, to audit against them repeatedly."""
    return RealReference(real_x, real_y)


# ---------------------------------------------------------------------------------------------- audit
def audit_points(x: Any, y: Any, real_x: Any, real_y: Any, *, proba: Any = None, d_score: Any = None,
                 parent_idx: Any = None, parent_w: Any = None, eff_parents: Any = None, weights: Any = None,
                 low_pct: float = 5.0, high_pct: float = 95.0, space: str = SPACE_INPUT,
                 method: str = "", reference: RealReference | None = None) -> Audit:
    """Audit generated points against real points in the same space.

    Parameters
    ----------
    x : (n, d) array or tensor
        Generated samples (rows are flattened).
    y : (n,) int
        The class each was generated for.
    real_x : (N, d) array or tensor
        The real training points in the same space (row i is ``x_train`` row i); a tensor
        keeps the work on its device.
    real_y : (N,) int
        Their classes.
    proba : (n, K) array, optional
        M's class probabilities for each sample; without them ``m_pred`` is -1, ``m_conf`` NaN
        and nothing is ``label_disputed``.
    d_score : (n,) array, optional
        D's "real" score of each sample for its class.
    parent_idx, parent_w : (n, k) arrays, optional
        Top convex parents (rows of ``real_x``) and their weights.
    eff_parents : (n,) array, optional
        Effective number of parents of each sample.
    weights : (n, N) array, optional
        Full convex weights over the rows of ``real_x``: gives ``eff_parents`` (exp of the
        entropy) and, when ``parent_idx`` is not given, the top parents.
    low_pct, high_pct : float
        ``near_duplicate``: ``dcr_pct < low_pct``; ``out_of_distribution``: ``dcr_pct > high_pct``
        or closer to another class than to its own.
    space : str
        Name of the space (kept in the result).
    method : str
        The method's name (kept in the result).
    reference : RealReference, optional
        :func:`real_reference` of ``(real_x, real_y)``, reused across audits of the same real
        points (``real_x`` and ``real_y`` are then not read again).

    Returns
    -------
    Audit
    """
    check_percentiles(low_pct, high_pct)
    ref_pts = reference if reference is not None else RealReference(real_x, real_y)
    rx = ref_pts.x
    q = _tensor(x, rx.device)
    if q.shape[1] != rx.shape[1]:
        raise DataError(f"the samples have {q.shape[1]} columns and the real points {rx.shape[1]}: "
                        "audit them in the same space")
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    n = len(y)
    if len(q) != n:
        raise DataError(f"{len(q)} samples with {n} labels: give one label per row")
    dcr_pct, dcr_other_pct, dcr_ratio = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    dcr_own, own_idx, dcr_other, other_idx = ref_pts.nearest_own_other(q, y)
    for c in np.unique(y):
        sel = np.flatnonzero(y == c)
        # the class's own spacing: each real member's distance to its nearest other member
        gap_at = ref_pts.gaps(int(c))                                            # (N,), NaN off the class
        gap = gap_at[ref_pts.rows(int(c))]                                       # (n_c,)
        if len(gap) >= 2:
            g = gap_at[own_idx[sel]]
            dcr_ratio[sel] = np.where(g > 0, dcr_own[sel] / np.where(g > 0, g, 1.0), np.nan)
        ref = np.sort(gap[np.isfinite(gap)])
        dcr_pct[sel] = _percentile(ref, np.minimum(dcr_own[sel], dcr_other[sel]))
        dcr_other_pct[sel] = _percentile(ref, dcr_other[sel])
    closer_other = dcr_other < dcr_own
    dcr = np.where(closer_other, dcr_other, dcr_own)
    nearest = np.where(closer_other, other_idx, own_idx)

    if proba is not None:
        p = np.asarray(proba.detach().cpu() if isinstance(proba, torch.Tensor) else proba, dtype=np.float64)
        m_pred, m_conf = p.argmax(axis=1).astype(np.int64), p.max(axis=1)
    else:
        m_pred, m_conf = np.full(n, -1, np.int64), np.full(n, np.nan)
    if weights is not None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        eff_parents = effective_parents(w).numpy()
        if parent_idx is None:
            pw, pi = torch.topk(w, min(TOP_PARENTS, w.shape[1]), dim=1)
            parent_idx, parent_w = pi.numpy(), pw.numpy().astype(np.float32)

    def opt(a: Any, dtype: Any) -> np.ndarray | None:
        if a is None:
            return None
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
        return np.asarray(a, dtype=dtype)

    return Audit(
        space=space, x=q.cpu().numpy(), y=y, m_pred=m_pred, m_conf=m_conf, d_score=opt(d_score, np.float64),
        dcr=dcr, dcr_pct=dcr_pct, dcr_ratio=dcr_ratio, dcr_own=dcr_own, dcr_other=dcr_other, dcr_other_pct=dcr_other_pct,
        nearest_idx=nearest, nearest_other_idx=other_idx, parent_idx=opt(parent_idx, np.int64),
        parent_w=opt(parent_w, np.float32), eff_parents=opt(eff_parents, np.float64),
        closer_to_other=closer_other,
        near_duplicate=dcr_pct < low_pct,                                  # NaN compares False
        out_of_distribution=(dcr_pct > high_pct) | closer_other,
        label_disputed=(m_pred >= 0) & (m_pred != y),
        low_pct=float(low_pct), high_pct=float(high_pct), method=method)


def _space_of(method: Any, width: int, features: torch.Tensor | None = None) -> tuple[str, torch.Tensor, bool]:
    """(space name, real rows in it, whether samples of this width must go through F for M);
    ``features``: the real rows in M's input space (default ``method.train_features()``)."""
    feats = method.train_features() if features is None else features
    n = len(method.x_train)
    if method.family == "conv":
        if width == feats.shape[1]:
            return SPACE_FEATURES, feats, False
        pixels = method.x_train.reshape(n, -1)
        if width == pixels.shape[1]:          # e.g. Augment+CN's conv samples are images
            return SPACE_PIXELS, pixels, True
        raise DataError(f"samples of width {width} match neither F's features ({feats.shape[1]}) "
                        f"nor the images ({pixels.shape[1]} pixels)")
    if width != feats.shape[1]:
        raise DataError(f"samples of width {width} do not match the training rows ({feats.shape[1]} columns)")
    ds = str(method.cfg.data.dataset)
    return (SPACE_INPUT if ds.startswith(("toy:", "table:")) else SPACE_PIXELS), feats, False


@torch.no_grad()
def audit_samples(method: Any, x: Any, y: Any, parent_idx: Any = None, parent_w: Any = None,
                  eff_parents: Any = None, low_pct: float = 5.0, high_pct: float = 95.0,
                  chunk: int = 1024, reference: RealReference | None = None) -> Audit:
    """Audit given samples of a method against its training set.

    Parameters
    ----------
    method : gamo.methods.base.Method
        A built (trained or loaded) method: its real rows (``train_features()``), M and D.
    x : (n, d) array or tensor
        Samples in M's input space (F's features for the conv family, flattened inputs for the
        dense family), as ``balancing_samples`` and ``sample`` return them; conv samples as wide
        as the flattened images are audited in pixel space (M sees them through F).
    y : (n,) int
        Their classes.
    parent_idx, parent_w, eff_parents : arrays, optional
        Convex parents (rows of ``x_train``), their weights, effective parents.
    low_pct, high_pct : float
        Flag percentiles (see :func:`audit_points`).
    chunk : int
        Rows per pass of M and D.
    reference : RealReference, optional
        :func:`real_reference` of the training rows in M's input space and ``y_train``, reused
        across audits (the Image Lab's: F's features of the last F-frozen phase,
        ``method.last_features()``); by default ``method.train_features()``, prepared anew.

    Returns
    -------
    Audit
    """
    check_percentiles(low_pct, high_pct)
    xt = _tensor(x, method.device)
    space, real, through_f = _space_of(method, xt.shape[1], None if reference is None else reference.x)
    if reference is not None and real is not reference.x:
        reference = None              # samples audited in another space (pixels, through F)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64).reshape(-1), device=method.device)
    probas, scores = [], []
    for i in range(0, len(xt), chunk):
        part = xt[i:i + chunk]
        if through_f:
            part = method.features(part.reshape(len(part), *method.x_train.shape[1:]))
        probas.append(method.m_proba(part).cpu())
        d = method.d_real(part)
        scores.append(None if d is None else d.gather(1, yt[i:i + chunk, None])[:, 0].cpu())
    proba = torch.cat(probas).numpy() if probas else np.zeros((0, method.n_classes))
    d_score = None if (not scores or scores[0] is None) else torch.cat(scores).numpy()
    return audit_points(xt, yt.cpu().numpy(), real, method.y_train.cpu().numpy(), proba=proba, d_score=d_score,
                        parent_idx=parent_idx, parent_w=parent_w, eff_parents=eff_parents,
                        low_pct=low_pct, high_pct=high_pct, space=space, method=getattr(method, "name", ""),
                        reference=reference)


@torch.no_grad()
def convex_samples(method: Any, counts: dict[int, int], seed: int, chunk: int = 1024) -> dict[str, np.ndarray]:
    """A convex generator's samples with their full-weight effective parents.

    The same noise and points as ``method.sample(counts, seed)``
    (:meth:`gamo.methods.gamo.Gamo.sample`), plus ``eff_parents`` from each point's full weight
    vector (``sample`` keeps only the top parents).

    Parameters
    ----------
    method : gamo.methods.gamo.Gamo
        A convex method (GAMO, GAMO\\D).
    counts : dict
        Minority class -> number of samples.
    seed : int
        Noise seed.
    chunk : int
        Rows generated at a time.

    Returns
    -------
    dict
        ``x`` (n, d), ``y``, ``parent_idx`` and ``parent_w`` (n, k), ``eff_parents`` (n,).
    """
    bad = [c for c, k in counts.items() if k > 0 and c not in method.minority]
    if bad:
        raise DataError(f"classes {bad} are not minority classes of this run (those are {method.minority})")
    y = torch.cat([torch.full((k,), c, dtype=torch.long) for c, k in counts.items()] or
                  [torch.zeros(0, dtype=torch.long)]).to(method.device)
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(len(y), method.latent, generator=g).to(method.device)   # as Gamo.sample draws it
    xs, pis, pws, effs = [], [], [], []
    for i in range(0, len(y), chunk):
        x, w, pi, pw = method.generate(z[i:i + chunk], y[i:i + chunk])
        xs.append(x.cpu()), pis.append(pi.cpu()), pws.append(pw.cpu()), effs.append(effective_parents(w).cpu())
    if not xs:
        k = min(TOP_PARENTS, min(method.G.block_sizes))
        return {"x": np.zeros((0, method.feat_dim), np.float32), "y": np.zeros(0, np.int64),
                "parent_idx": np.zeros((0, k), np.int64), "parent_w": np.zeros((0, k), np.float32),
                "eff_parents": np.zeros(0)}
    return {"x": torch.cat(xs).numpy(), "y": y.cpu().numpy(), "parent_idx": torch.cat(pis).numpy(),
            "parent_w": torch.cat(pws).numpy(), "eff_parents": torch.cat(effs).double().numpy()}


def audit_run(method: Any, n_per_class: int | None = None, seed: int = 0, low_pct: float = 5.0,
              high_pct: float = 95.0) -> Audit:
    """Generate fresh samples with a method and audit them.

    Parameters
    ----------
    method : gamo.methods.base.Method
        A trained or loaded method that generates (GAMO, GAMO\\D, cG, cG+D, cGAN, SMOTE, ...).
    n_per_class : int, optional
        Samples per minority class. None: the set that balances the training set
        (``n_max - n_i`` per minority class, as ``balancing_samples``). Methods without
        ``sample`` (SMOTE, cGAN, Augment) give at most their balancing set's count per class
        (a seeded subset of it).
    seed : int
        Noise seed (SMOTE's points come from its own resampling).
    low_pct, high_pct : float
        Flag percentiles (see :func:`audit_points`).

    Returns
    -------
    Audit

    Raises
    ------
    DataError
        The method generates nothing (a classifier-only method, or balanced data).
    ConfigError
        Bad percentiles or ``n_per_class < 1``.
    """
    check_percentiles(low_pct, high_pct)
    if n_per_class is not None and n_per_class < 1:
        raise ConfigError(f"--per-class (n_per_class): give at least 1 sample per class, got {n_per_class}")
    minority = list(getattr(method, "minority", []))
    counts = {c: (n_per_class if n_per_class is not None else int(method.counts.max() - method.counts[c]))
              for c in minority}
    is_convex = bool(getattr(method, "convex", False)) and hasattr(method, "generate")
    if is_convex and sum(counts.values()) > 0:
        s = convex_samples(method, counts, seed)
    elif n_per_class is not None and hasattr(method, "sample") and sum(counts.values()) > 0:
        s = method.sample(counts, seed)
    else:
        s = method.balancing_samples(seed)
        if s is not None and n_per_class is not None:
            rng = np.random.default_rng(seed)
            keep = [np.sort(rng.permutation(np.flatnonzero(s["y"] == c))[:n_per_class]) for c in np.unique(s["y"])]
            keep = np.concatenate(keep) if keep else np.zeros(0, np.int64)
            s = {k: v[keep] for k, v in s.items()}
    if s is None or len(s["y"]) == 0:
        raise DataError(f"{getattr(method, 'name', 'this method')} generates no samples (or the training set is "
                        "balanced): audit a run of an oversampling method (gamo, gamo_no_d, cg, cg_d, cgan, smote, ...)")
    return audit_samples(method, s["x"], s["y"], s.get("parent_idx"), s.get("parent_w"), s.get("eff_parents"),
                         low_pct=low_pct, high_pct=high_pct)


# ---------------------------------------------------------------------------------------------- reports
def _num(v: float, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def per_class_summary(audit: Audit) -> list[dict[str, Any]]:
    """Per generated class: counts and shares of each flag and the typical measures.

    Parameters
    ----------
    audit : Audit

    Returns
    -------
    list of dict
        One JSON-able dict per class, ascending: ``class``, ``n``; for each flag in
        :data:`FLAGS`, ``closer_to_other`` and ``flagged`` (any flag) the count and
        ``<name>_share``; ``median_dcr_pct``, ``median_dcr``, ``median_dcr_ratio``, ``mean_eff_parents`` (None for
        samples without parents), ``mean_m_conf``, ``mean_d_score`` (None without a D).
    """
    rows = []
    for c in audit.classes:
        sel = audit.y == c
        n = int(sel.sum())
        row: dict[str, Any] = {"class": c, "n": n}
        for name in (*FLAGS, "closer_to_other", "flagged"):
            k = int(getattr(audit, name)[sel].sum())
            row[name], row[f"{name}_share"] = k, round(k / n, 4) if n else None
        pct = audit.dcr_pct[sel]
        row["median_dcr_pct"] = _num(np.median(pct[np.isfinite(pct)])) if np.isfinite(pct).any() else None
        row["median_dcr"] = _num(np.median(audit.dcr[sel]), 6)
        ratio = audit.dcr_ratio[sel]
        row["median_dcr_ratio"] = _num(np.median(ratio[np.isfinite(ratio)])) if np.isfinite(ratio).any() else None
        row["mean_eff_parents"] = None if audit.eff_parents is None else _num(audit.eff_parents[sel].mean(), 3)
        conf = audit.m_conf[sel]
        row["mean_m_conf"] = _num(conf.mean()) if np.isfinite(conf).all() else None
        row["mean_d_score"] = None if audit.d_score is None else _num(audit.d_score[sel].mean())
        rows.append(row)
    return rows


def format_summary(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per class of :func:`per_class_summary`, e.g. ``class 3 (n=120): near-duplicate 2
    (1.7%), out-of-distribution 9 (7.5%; 4 nearer another class), label-disputed 14 (11.7%);
    median DCR pct 38.0, DCR ratio 0.61, eff. parents 11.2``."""
    lines = []
    for r in rows:
        s = (f"class {r['class']} (n={r['n']}): near-duplicate {r['near_duplicate']} "
             f"({100 * r['near_duplicate_share']:.1f}%), out-of-distribution {r['out_of_distribution']} "
             f"({100 * r['out_of_distribution_share']:.1f}%; {r['closer_to_other']} nearer another class), "
             f"label-disputed {r['label_disputed']} ({100 * r['label_disputed_share']:.1f}%)")
        extra = []
        if r["median_dcr_pct"] is not None:
            extra.append(f"median DCR pct {r['median_dcr_pct']:.1f}")
        if r.get("median_dcr_ratio") is not None:
            extra.append(f"DCR ratio {r['median_dcr_ratio']:.2f}")
        if r["mean_eff_parents"] is not None:
            extra.append(f"eff. parents {r['mean_eff_parents']:.1f}")
        lines.append(s + ("; " + ", ".join(extra) if extra else ""))
    return lines


def _cell(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    return str(v)


def to_csv(audit: Audit, path: str | Path) -> Path:
    """Write one row per sample with every measure.

    Columns: ``sample`` (row number), ``class``, ``m_pred``, ``m_conf``, ``d_score``, ``dcr``,
    ``dcr_pct``, ``dcr_ratio``, ``dcr_own``, ``dcr_other``, ``dcr_other_pct``, ``nearest_idx``,
    ``nearest_other_idx``, ``eff_parents``, ``closer_to_other``, the three flags (0/1),
    ``space``, then ``parent_1..k`` and ``weight_1..k`` for convex generators. Values that do
    not apply (no M, no D, no parents, no class spacing, no such neighbour) are empty.

    Parameters
    ----------
    audit : Audit
    path : path
        The ``.csv`` file (its folder is made).

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, nan = audit.n, np.full(audit.n, np.nan)

    def idx(a: np.ndarray) -> list:
        return [int(v) if v >= 0 else "" for v in a]

    cols: dict[str, Sequence[Any]] = {
        "sample": range(n), "class": audit.y, "m_pred": idx(audit.m_pred), "m_conf": audit.m_conf,
        "d_score": nan if audit.d_score is None else audit.d_score,
        "dcr": audit.dcr, "dcr_pct": audit.dcr_pct, "dcr_ratio": audit.dcr_ratio, "dcr_own": audit.dcr_own,
        "dcr_other": audit.dcr_other, "dcr_other_pct": audit.dcr_other_pct,
        "nearest_idx": idx(audit.nearest_idx), "nearest_other_idx": idx(audit.nearest_other_idx),
        "eff_parents": nan if audit.eff_parents is None else audit.eff_parents,
        "closer_to_other": audit.closer_to_other, **{f: getattr(audit, f) for f in FLAGS},
        "space": [audit.space] * n}
    if audit.parent_idx is not None:
        k = audit.parent_idx.shape[1]
        cols.update({f"parent_{j + 1}": audit.parent_idx[:, j] for j in range(k)})
        cols.update({f"weight_{j + 1}": audit.parent_w[:, j] for j in range(k)})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(cols))
        for row in zip(*cols.values()):
            w.writerow([_cell(v) for v in row])
    return path


def _font(size: int = 10):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:   # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw, text: str, font, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    return text


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """Words of ``text`` in lines no wider than ``width`` pixels."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(lines[-1] + " " + word, font=font) <= width:
            lines[-1] += " " + word
        else:
            lines.append(_fit(draw, word, font, width))
    return lines


def contact_sheet(images: Any, labels: Sequence[str], path: str | Path, *, ncols: int | None = None,
                  tile: int = 72, value_range: tuple[float, float] = (-1.0, 1.0), title: str = "") -> Path:
    """Write a PNG grid of images, each with up to two caption lines under it.

    Parameters
    ----------
    images : (n, C, H, W) or (n, H, W) array
        C is 1 (grey) or 3 (RGB); values in ``value_range`` (clipped).
    labels : sequence of str
        One caption per image; a ``"\\n"`` splits it into two lines.
    path : path
        The ``.png`` file (its folder is made).
    ncols : int, optional
        Images per row (default: about a square grid, at most 10).
    tile : int
        Pixels of each image's longer side (nearest-neighbour scaling keeps pixels visible).
    value_range : (float, float)
        Pixel values mapped to black and white.
    title : str
        A line above the grid.

    Returns
    -------
    Path
    """
    from PIL import Image, ImageDraw

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = np.asarray(images, dtype=np.float32)
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    n = len(imgs)
    if len(labels) != n:
        raise ValueError(f"contact_sheet: {n} images but {len(labels)} labels")
    font = _font(10)
    line_h, pad = 12, 4
    ncols = ncols or max(1, min(10, math.ceil(math.sqrt(n)) if n else 1))
    nrows = math.ceil(n / ncols) if n else 0
    if n:
        c, h, w = imgs.shape[1:]
        s = max(1, tile // max(h, w))
        tw, th = w * s, h * s
    else:
        tw = th = 0
    cell_w, cell_h = max(tw, 96) + 2 * pad, th + 2 * line_h + 2 * pad    # 96 px: a caption line
    width = max(ncols * cell_w, 320)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    head_lines = _wrap(measure, title, font, width - 2 * pad) if title else []
    if n == 0:
        head_lines.append("no flagged samples")
    head = len(head_lines) * line_h + 2 * pad if head_lines else 0
    sheet = Image.new("RGB", (width, head + nrows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for j, line in enumerate(head_lines):
        draw.text((pad, pad + j * line_h), line, fill="black", font=font)
    lo, hi = value_range
    for i in range(n):
        a = np.clip((imgs[i] - lo) / (hi - lo), 0, 1)
        a = (a * 255).round().astype(np.uint8)
        im = Image.fromarray(a[0], "L") if a.shape[0] == 1 else Image.fromarray(np.moveaxis(a[:3], 0, -1), "RGB")
        im = im.resize((tw, th), Image.NEAREST)
        x0, y0 = (i % ncols) * cell_w + pad, head + (i // ncols) * cell_h + pad
        sheet.paste(im, (x0 + (cell_w - 2 * pad - tw) // 2, y0))
        for j, line in enumerate(str(labels[i]).split("\n")[:2]):
            draw.text((x0, y0 + th + 1 + j * line_h), _fit(draw, line, font, cell_w - pad), fill="black", font=font)
    sheet.save(path)
    return path


def _flag_words(audit: Audit, i: int) -> str:
    words = []
    if audit.near_duplicate[i]:
        words.append("dup")
    if audit.out_of_distribution[i]:
        words.append("ood" + ("*" if audit.closer_to_other[i] else ""))
    if audit.label_disputed[i]:
        words.append(f"M:{audit.m_pred[i]}")
    return " ".join(words)


def _pick_flagged(audit: Audit, max_tiles: int) -> np.ndarray:
    """Flagged samples, taken in turn from each class (sample order within a class)."""
    per = [list(np.flatnonzero(audit.flagged & (audit.y == c))) for c in audit.classes]
    out: list[int] = []
    while len(out) < max_tiles and any(per):
        for p in per:
            if p and len(out) < max_tiles:
                out.append(int(p.pop(0)))
    return np.array(sorted(out, key=lambda i: (audit.y[i], i)), dtype=np.int64)


def flagged_tiles(audit: Audit, real_images: Any = None, image_shape: Sequence[int] | None = None,
                  max_tiles: int = 60) -> tuple[np.ndarray, list[str]]:
    """Images and captions of flagged samples for :func:`contact_sheet`.

    In pixel space a tile is the sample itself. In F's feature space it is a real image: the
    sample's strongest convex parent (caption ``parent <its weight>``), or for samples without
    parents the nearest real training image (caption ``nearest``). Captions: ``#row c<class>`` and
    the flags (``dup``, ``ood``, ``ood*`` when nearer another class, ``M:<class>`` when
    disputed).

    Parameters
    ----------
    audit : Audit
    real_images : (N, C, H, W) or (N, d) array, optional
        The training images (rows of ``x_train``); needed outside pixel space.
    image_shape : (C, H, W), optional
        Shape of one image (default: ``real_images.shape[1:]``).
    max_tiles : int
        At most this many, taken in turn from each class.

    Returns
    -------
    (images (m, C, H, W), captions)
    """
    if image_shape is None:
        if real_images is None:
            raise ValueError("flagged_tiles: give image_shape or real_images")
        image_shape = np.shape(real_images)[1:]
    shape = tuple(int(v) for v in image_shape)
    sel = _pick_flagged(audit, max_tiles)
    tiles, caps = [], []
    for i in sel:
        head = f"#{i} c{audit.y[i]}"   # 96 px hold about 17 characters
        if audit.space == SPACE_PIXELS:
            tiles.append(audit.x[i].reshape(shape))
        elif audit.parent_idx is not None:
            tiles.append(np.asarray(real_images[audit.parent_idx[i, 0]]).reshape(shape))
            head += f" parent {audit.parent_w[i, 0]:.2f}"
        else:
            tiles.append(np.asarray(real_images[audit.nearest_idx[i]]).reshape(shape))
            head += " nearest"
        caps.append(head + "\n" + _flag_words(audit, i))
    images = np.stack(tiles) if tiles else np.zeros((0, *shape), np.float32)
    return images, caps


_PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def flag_scatter(audit: Audit, real_x: Any, real_y: Any, path: str | Path, size: int = 520,
                 title: str = "") -> Path:
    """A PNG map of real points and the flagged samples, for data that are not images.

    2D data are drawn as they are; wider rows on the first two principal components of the real
    points. Real points are small pale dots in their class's colour, unflagged samples grey
    dots, flagged samples rings: black for near-duplicates, red for out-of-distribution, in the
    class M predicts for disputed labels.

    Parameters
    ----------
    audit : Audit
    real_x : (N, d) array
        The real points in the audit's space.
    real_y : (N,) int array
    path : path
        The ``.png`` file (its folder is made).
    size : int
        Width and height of the plot area in pixels.
    title : str
        A line above the plot.

    Returns
    -------
    Path
    """
    from PIL import Image, ImageDraw

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rx = np.asarray(real_x, dtype=np.float64).reshape(len(real_x), -1)
    ry = np.asarray(real_y).reshape(-1)
    gx = audit.x.astype(np.float64)
    if rx.shape[1] > 2:
        mu = rx.mean(axis=0)
        _, _, vt = np.linalg.svd(rx - mu, full_matrices=False)
        rx, gx = (rx - mu) @ vt[:2].T, (gx - mu) @ vt[:2].T
    elif rx.shape[1] == 1:
        rx, gx = np.c_[rx, np.zeros(len(rx))], np.c_[gx, np.zeros(len(gx))]
    pts = np.concatenate([rx, gx]) if len(gx) else rx
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    pad, head, legend = 12, 20, 16
    img = Image.new("RGB", (size + 2 * pad, size + 2 * pad + head + legend), "white")
    draw = ImageDraw.Draw(img)
    font = _font(11)

    def xy(p: np.ndarray) -> tuple[float, float]:
        u = (p - lo) / span
        return pad + u[0] * size, head + pad + (1 - u[1]) * size

    def pale(c: int) -> tuple[int, int, int]:
        r, g, b = _PALETTE[c % len(_PALETTE)]
        return (r + 255) // 2, (g + 255) // 2, (b + 255) // 2

    draw.text((pad, 4), _fit(draw, title, font, img.width - 2 * pad), fill="black", font=font)
    for p, c in zip(rx, ry):
        u, v = xy(p)
        draw.ellipse((u - 1.5, v - 1.5, u + 1.5, v + 1.5), fill=pale(int(c)))
    flagged = audit.flagged
    for i in np.flatnonzero(~flagged):
        u, v = xy(gx[i])
        draw.ellipse((u - 1.5, v - 1.5, u + 1.5, v + 1.5), fill=(90, 90, 90))
    for i in np.flatnonzero(flagged):
        u, v = xy(gx[i])
        if audit.label_disputed[i]:
            draw.ellipse((u - 6, v - 6, u + 6, v + 6), outline=_PALETTE[int(audit.m_pred[i]) % len(_PALETTE)], width=2)
        if audit.out_of_distribution[i]:
            draw.ellipse((u - 4, v - 4, u + 4, v + 4), outline=(220, 0, 0), width=2)
        if audit.near_duplicate[i]:
            draw.ellipse((u - 3, v - 3, u + 3, v + 3), outline=(0, 0, 0), width=1)
    draw.text((pad, img.height - legend), "rings: black near-duplicate, red out-of-distribution, "
              "colour of M's class: label disputed", fill="black", font=font)
    img.save(path)
    return path


def write_audit(audit: Audit, out: str | Path, *, real_images: Any = None, image_shape: Sequence[int] | None = None,
                real_x: Any = None, real_y: Any = None, meta: dict[str, Any] | None = None,
                max_tiles: int = 60) -> dict[str, Path]:
    """Write ``audit.csv``, ``audit_summary.json`` and ``audit_flagged.png`` into a folder.

    Parameters
    ----------
    audit : Audit
    out : path
        The folder (made when missing; files there of the same names are replaced).
    real_images : array, optional
        The training images (rows of ``x_train``): the PNG is a :func:`contact_sheet` of the
        flagged samples (:func:`flagged_tiles`). Without them the PNG is a :func:`flag_scatter`
        of ``real_x`` / ``real_y``.
    image_shape : (C, H, W), optional
        Shape of one image (default: ``real_images.shape[1:]``).
    real_x, real_y : arrays, optional
        The real points in the audit's space, for the scatter.
    meta : dict, optional
        JSON-able fields added to the summary (the run folder, the seed, ...).
    max_tiles : int
        At most this many images in the contact sheet.

    Returns
    -------
    dict
        ``"csv"``, ``"summary"``, ``"png"`` -> the paths written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder for the audit's files")
    out.mkdir(parents=True, exist_ok=True)
    rows = per_class_summary(audit)
    flagged = int(audit.flagged.sum())
    summary = {**(meta or {}), "method": audit.method, "space": audit.space, "low_pct": audit.low_pct,
               "high_pct": audit.high_pct, "n": audit.n, "flagged": flagged, "classes": rows}
    paths = {"csv": to_csv(audit, out / CSV_NAME), "summary": out / SUMMARY_NAME, "png": out / PNG_NAME}
    paths["summary"].write_text(json.dumps(summary, indent=2))
    title = (f"{audit.method or 'samples'}: {flagged} of {audit.n} flagged ({audit.space}; "
             f"dup < p{audit.low_pct:g}, ood > p{audit.high_pct:g} or nearer another class)")
    if real_images is not None or (image_shape is not None and audit.space == SPACE_PIXELS):
        images, caps = flagged_tiles(audit, real_images, image_shape, max_tiles=max_tiles)
        shown = f"; {len(caps)} shown" if len(caps) < flagged else ""
        contact_sheet(images, caps, paths["png"], title=title + shown)
    elif real_x is not None and real_y is not None:
        flag_scatter(audit, real_x, real_y, paths["png"], title=title)
    else:
        raise ValueError("write_audit: give real_images (image data) or real_x and real_y (other data)")
    return paths
