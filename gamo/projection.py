"""2D maps of real and generated points that hold still while a generator trains.

A :class:`Projector` is fitted on *real* points only (PCA or UMAP); generated points are placed
with the fitted model's ``transform`` and never refit it, so when a generated point moves on the
map it is the generator that moved it, not the layout. Where the space itself changes (the
convolutional F trains, so the real features change every epoch) the map is refitted at
*keyframes* (:meth:`Projector.refit`, e.g. once an epoch) and kept continuous with the previous
keyframe: UMAP starts from the previous layout of the same real rows and the new layout is
rotated onto the previous one (orthogonal Procrustes; for PCA that is the sign / rotation of the
principal axes). :func:`procrustes_disparity` measures how far two layouts of the same rows are
apart.

UMAP's nearest neighbours are computed exactly here (:func:`exact_knn`, one matrix product per
chunk) instead of with pynndescent's approximate index: for the at most 10,000 real points a
map fits, an exact search is faster than building the index, needs no compilation per fitted
model (pynndescent compiles its query functions for every new index: umap-learn as it comes
took 2-3 s for each new model's first placement of 1,000 points; the first in a process 87 s
before numba had cached pynndescent's functions on disk) and gives the neighbours the approximate search approximates. Everything else is umap-learn's
own fit and ``transform`` (the placement is umap's ``transform``, vectorised where umap loops in
Python; the same numbers). ``pca_dims`` optionally fits UMAP on the real points' first principal
components (``transform`` then applies the same PCA).

umap-learn compiles its numba functions on first use in each process (tens of seconds);
:func:`warm_up` does that on a tiny problem, e.g. in a background thread when a server starts,
and :func:`is_warm` says whether it has. This module never imports Streamlit; umap-learn is
imported on first use, so PCA maps cost nothing extra.

Measured with ``python bench/projection_speed.py`` (``bench/results/projection_speed.md``).
"""
from __future__ import annotations

import threading
import time
import warnings
from typing import Any

import numpy as np

METHODS = ("pca", "umap")
ALIGNS = ("auto", "none", "procrustes", "init", "both")
DEFAULT_MAX_POINTS = 10_000

# Compiled numba code is per process, so whether it has been compiled is process state: one flag
# (and one lock, so that two callers do not compile twice at the same time) for the process.
_WARM = threading.Event()
_WARM_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------- measures
def _standardized(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    a = a - a.mean(axis=0)
    norm = np.linalg.norm(a)
    if norm == 0:
        raise ValueError("a layout whose points all coincide has no shape to compare")
    return a / norm


def procrustes_disparity(a: np.ndarray, b: np.ndarray, rotate: bool = True) -> float:
    """How far apart two layouts of the same rows are, between 0 (same) and 1.

    Parameters
    ----------
    a, b : (n, 2) arrays
        Two layouts of the same n points, row i the same point in both.
    rotate : bool
        True: :func:`scipy.spatial.procrustes`'s disparity, after removing translation and
        scale and after the rotation / reflection that best matches ``b`` to ``a`` (the two
        layouts' *shapes* compared). False: the same measure with the rotation held at the
        identity (translation and a non-negative scale still removed, as a plot's auto-ranged
        axes remove them), i.e. how far the points move on the screen from one layout to the
        next. Always at least the rotated value; equal when ``b`` is already aligned to ``a``.

    Returns
    -------
    float
        The sum of squared differences between the standardized ``a`` and the best-fitting
        transform of the standardized ``b``.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"layouts must have the same (n, dims) shape, got {a.shape} and {b.shape}")
    if rotate:
        from scipy.spatial import procrustes

        return float(procrustes(a, b)[2])
    # min over c >= 0 of ||A - c B||^2 with ||A|| = ||B|| = 1: 1 - max(0, <A, B>)^2
    t = float(np.sum(_standardized(a) * _standardized(b)))
    return 1.0 - max(0.0, t) ** 2


def subsample_indices(n: int, cap: int | None, seed: int) -> np.ndarray:
    """The rows a map is fitted on: all ``n`` when ``n <= cap``, else ``cap`` rows drawn without
    replacement with ``seed`` (sorted, so the fitted rows keep the data's order)."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def exact_knn(query: np.ndarray, data: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest neighbours of each query row among ``data``'s rows.

    Candidates come from one matrix product per chunk of queries (``|x|^2 - 2 q.x``); the
    ``k + 8`` best are re-measured as plain differences (no cancellation) and sorted, so the
    distances are exact and a query that is a data row gets itself first at distance 0.

    Returns
    -------
    indices : (m, k) int64
    distances : (m, k) float32
    """
    import torch

    q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32))
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    k = min(int(k), len(x))
    kk = min(len(x), k + 8)
    xx = (x * x).sum(dim=1)                                                   # (n,)
    idx = np.empty((len(q), k), dtype=np.int64)
    dist = np.empty((len(q), k), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(q), chunk):
            qc = q[s:s + chunk]                                               # (c, d)
            d2 = torch.addmm(xx[None, :], qc, x.T, alpha=-2.0)               # (c, n), |q|^2 left out
            cand = torch.topk(d2, kk, dim=1, largest=False).indices           # (c, kk)
            exact = torch.linalg.vector_norm(qc[:, None, :] - x[cand], dim=2)  # (c, kk)
            order = torch.argsort(exact, dim=1, stable=True)[:, :k]
            idx[s:s + chunk] = torch.gather(cand, 1, order).numpy()
            dist[s:s + chunk] = torch.gather(exact, 1, order).numpy()
    return idx, dist


def _one_blas_thread():
    """BLAS (numpy, scipy's eigensolver, sklearn's PCA) on one thread while a map is fitted or
    used: on a 2-core machine shared with training, BLAS's two threads mostly wait on each other
    (UMAP's spectral initialisation of 10,000 points: 0.7 s on one thread, 2.4-8 s on two, with
    training beside it). Process-wide while it lasts, like every BLAS thread setting."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


class _ExactIndex:
    """Stands in for pynndescent's index in a fitted ``umap.UMAP``: umap's ``transform`` calls
    ``query(X, k, epsilon=...)`` and reads ``_angular_trees``; this answers exactly."""

    _angular_trees = False

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def query(self, X: np.ndarray, k: int = 10, epsilon: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        return exact_knn(X, self.data, k)


def _orthogonal_alignment(new: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, mu_new, mu_prev) with ``(new - mu_new) @ R + mu_prev`` closest to ``prev``
    (R orthogonal: rotation or reflection; no scaling, so distances on the map stay as fitted)."""
    from scipy.linalg import orthogonal_procrustes

    mu_new, mu_prev = new.mean(axis=0), prev.mean(axis=0)
    r, _ = orthogonal_procrustes(new - mu_new, prev - mu_prev)
    return r, mu_new, mu_prev


# ---------------------------------------------------------------------------------- projector
class Projector:
    """PCA or UMAP map to 2D, fitted on real points, reused to place generated points.

    Parameters
    ----------
    method : {"pca", "umap"}
    n_neighbors : int
        UMAP's neighbourhood size (clamped to the number of fitted points minus one).
    min_dist : float
        UMAP's minimum distance between embedded points.
    seed : int
        Seeds the subsample, the PCAs and UMAP (fit and transform), so the same inputs give the
        same map.
    max_points : int or None
        At most this many real points are fitted (a seeded subsample, :attr:`indices`), so a fit
        stays bounded; None: all.
    pca_dims : int or None
        UMAP only: fit UMAP on the real points' first ``pca_dims`` principal components (and
        place new points through the same PCA); None, or inputs with no more dimensions than
        this: on the inputs as they are (the default: on 10,000 x 512 features, 50 dims saved
        0.6-1.3 s of a 5.6-9 s fit and 0.1-0.2 s of a 0.37-0.76 s placement of 1,000 points, but
        kept only 74% of the real rows' 15 nearest neighbours and 61% of the generated points',
        ``bench/results/projection_speed.md``).
    align : {"auto", "none", "procrustes", "init", "both"}
        How :meth:`refit` keeps a keyframe continuous with the previous one: ``procrustes``
        rotates (or reflects) the new layout onto the previous one; ``init`` starts UMAP from the
        previous layout; ``both`` does both; ``none`` neither. ``auto``: ``procrustes`` for PCA,
        ``both`` for UMAP (measured to keep consecutive keyframes closest on the screen:
        disparity 0.007 against 0.008 ``init``, 0.015 ``procrustes`` and 0.68 ``none``, whose
        spectral start flips the map; ``bench/results/projection_speed.md``).
    n_epochs : int or None
        UMAP's optimisation epochs for a first fit. 200, umap's own default above 10,000 points,
        for every size: its default of 500 up to 10,000 points made a fit of 10,000 points
        1.9-2.9x longer (``bench/results/projection_speed.md``). None: umap's default.
    refit_epochs : int or None
        UMAP's epochs for a keyframe that starts from the previous layout (``init``, ``both``);
        None: as ``n_epochs``. 100 measured a third faster with keyframes a little further apart
        (disparity 0.008 against 0.007).
    transform_epochs : int or None
        UMAP's optimisation epochs when placing new points; None: umap's rule (100 for up to
        10,000 points at a time, 30 above).

    Attributes
    ----------
    keyframe : int
        Which keyframe the map shows: -1 before :meth:`fit`, 0 after it, +1 per :meth:`refit`.
    n_fits : int
        How many times a model was fitted (:meth:`fit` and :meth:`refit`; never :meth:`transform`).
    indices : (n_fit,) int64
        The rows of the real data the map is fitted on.
    layout : (n_fit, 2) float32
        Their positions on the current keyframe's map.
    fitted_x : (n_fit, d) float32
        Those rows as they were fitted (before any PCA reduction).
    fit_seconds : float
        Duration of the last fit or refit.
    """

    def __init__(self, method: str = "pca", *, n_neighbors: int = 15, min_dist: float = 0.1, seed: int = 0,
                 max_points: int | None = DEFAULT_MAX_POINTS, pca_dims: int | None = None, align: str = "auto",
                 n_epochs: int | None = 200, refit_epochs: int | None = 200,
                 transform_epochs: int | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if align not in ALIGNS:
            raise ValueError(f"align must be one of {ALIGNS}, got {align!r}")
        if method == "pca" and align in ("init", "both"):
            raise ValueError("align='init' starts UMAP from the previous layout; PCA has no start: use 'procrustes'")
        if n_neighbors < 2:
            raise ValueError(f"n_neighbors must be 2 or more, got {n_neighbors}")
        if max_points is not None and max_points < 3:
            raise ValueError(f"max_points must be 3 or more (or None), got {max_points}")
        self.method, self.n_neighbors, self.min_dist, self.seed = method, int(n_neighbors), float(min_dist), int(seed)
        self.max_points, self.pca_dims = max_points, pca_dims
        self.align = ("procrustes" if method == "pca" else "both") if align == "auto" else align
        self.n_epochs, self.refit_epochs, self.transform_epochs = n_epochs, refit_epochs, transform_epochs
        self.keyframe = -1
        self.n_fits = 0
        self.fit_seconds = 0.0
        self.indices: np.ndarray | None = None
        self.layout: np.ndarray | None = None
        self.fitted_x: np.ndarray | None = None
        self.model: Any = None                   # sklearn PCA or umap.UMAP
        self._reducer: Any = None                # UMAP's PCA pre-reduction (None: none)
        self._n_input = 0                        # rows of the real data given to fit
        self._post: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None   # keyframe alignment

    # ------------------------------------------------------------------ fitting
    def fit(self, real_x: np.ndarray) -> np.ndarray:
        """Fit a fresh map on real points (keyframe 0).

        Parameters
        ----------
        real_x : (n, d) array
            Real points; at most ``max_points`` of them (a seeded subsample) are fitted.

        Returns
        -------
        (n_fit, 2) float32
            The fitted rows' positions, rows in the order of :attr:`indices`.
        """
        x = self._check(real_x)
        self.indices = subsample_indices(len(x), self.max_points, self.seed)
        self._n_input = len(x)
        self._post = None
        self.layout = self._fit(x[self.indices], init=None)
        self.keyframe = 0
        return self.layout

    def refit(self, real_x: np.ndarray) -> np.ndarray:
        """Fit the map again on the same real rows whose values changed (the next keyframe),
        continuous with the current one (see ``align``).

        Parameters
        ----------
        real_x : (n, d) array
            The same n real points as at :meth:`fit` (same rows, same order), with new values;
            the same rows are fitted (:attr:`indices`). A projector not fitted yet just fits.

        Returns
        -------
        (n_fit, 2) float32
            The fitted rows' positions on the new keyframe's map.
        """
        if self.layout is None:
            return self.fit(real_x)
        x = self._check(real_x)
        if len(x) != self._n_input:
            raise ValueError(f"refit needs the same real rows as fit: got {len(x)} rows, fitted from {self._n_input}; "
                             "call fit for new data")
        prev = self.layout
        init = prev if self.align in ("init", "both") else None
        new = self._fit(x[self.indices], init=init, post=False)
        if self.align in ("procrustes", "both"):
            self._post = _orthogonal_alignment(new, prev)
            new = self._apply_post(new)
        else:
            self._post = None
        self.layout = new
        self.keyframe += 1
        return self.layout

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place points on the current map without changing it (the model is not refitted).

        Parameters
        ----------
        x : (m, d) array
            Points in the fitted space (generated points, or real ones).

        Returns
        -------
        (m, 2) float32
            Their positions. PCA: exact (a fitted row lands on its fitted position). UMAP:
            umap's ``transform`` (each point starts at the weighted mean of its real neighbours'
            positions and is optimised against the fixed real layout), deterministic for a seed.
        """
        if self.model is None:
            raise RuntimeError("transform needs a fitted map: call fit first")
        x = self._check(x, min_rows=0, dims=self.fitted_x.shape[1])
        if len(x) == 0:
            return np.zeros((0, 2), dtype=np.float32)
        with _one_blas_thread():
            if self.method == "pca":
                y = self.model.transform(x)
            else:
                y = self._place_umap(self._reduce(x))
        return self._apply_post(np.array(y, dtype=np.float32))   # a copy: never the model's own array

    # ------------------------------------------------------------------ internals
    def _check(self, x: np.ndarray, min_rows: int = 3, dims: int | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"points must be a (n, d) array, got shape {x.shape}")
        if dims is not None and x.shape[1] != dims:
            raise ValueError(f"points have {x.shape[1]} dimensions, the map was fitted on {dims}")
        if len(x) < min_rows:
            raise ValueError(f"a map needs at least {min_rows} real points, got {len(x)}")
        if not np.isfinite(x).all():
            raise ValueError("points must be finite (found NaN or inf)")
        return np.ascontiguousarray(x)

    def _apply_post(self, y: np.ndarray) -> np.ndarray:
        if self._post is None:
            return y.astype(np.float32, copy=False)
        r, mu_new, mu_prev = self._post
        return ((y - mu_new) @ r + mu_prev).astype(np.float32)

    def _reduce(self, x: np.ndarray) -> np.ndarray:
        if self._reducer is None:
            return x
        return np.ascontiguousarray(self._reducer.transform(x), dtype=np.float32)

    def _fit(self, x: np.ndarray, init: np.ndarray | None, post: bool = True) -> np.ndarray:
        t0 = time.perf_counter()
        self.fitted_x = x.copy()
        with _one_blas_thread():
            if self.method == "pca":
                from sklearn.decomposition import PCA

                self._reducer = None
                self.model = PCA(n_components=2, random_state=self.seed).fit(x)
                y = self.model.transform(x)
            else:
                y = self._fit_umap(x, init)
        self.n_fits += 1
        self.fit_seconds = time.perf_counter() - t0
        y = np.array(y, dtype=np.float32)                         # a copy: never the model's own array
        return self._apply_post(y) if post else y

    def _place_umap(self, xr: np.ndarray) -> np.ndarray:
        """umap-learn's ``UMAP.transform`` (0.5.x), step by step, with exact neighbours and the
        new points' starting positions computed in one vectorised pass (umap's
        ``init_graph_transform`` walks the sparse rows in Python: 0.23 s of a 0.8 s placement of
        1,000 points); the same numbers as ``model.transform`` (a test compares them)."""
        import scipy.sparse
        from sklearn.utils import check_random_state
        from umap.layouts import optimize_layout_euclidean
        from umap.umap_ import (INT32_MAX, INT32_MIN, compute_membership_strengths, make_epochs_per_sample,
                                smooth_knn_dist)

        model = self.model
        emb = model.embedding_                                                   # (n, 2), never written
        n, m, k = len(emb), len(xr), model._n_neighbors
        indices, dists = exact_knn(xr, model._raw_data, k)                       # (m, k)
        sigmas, rhos = smooth_knn_dist(dists, float(k),
                                       local_connectivity=float(max(0.0, model.local_connectivity - 1.0)))
        rows, cols, vals, _ = compute_membership_strengths(indices, dists, sigmas, rhos, bipartite=True)
        # start: the membership-weighted mean of the real neighbours' positions, accumulated in
        # umap's order (its sparse rows sort the neighbours by index); a point with a membership
        # of 1 (a copy of a real point) starts on that point
        order = np.argsort(indices, axis=1, kind="stable")
        nb = np.take_along_axis(indices, order, axis=1)                          # (m, k)
        w = np.take_along_axis(vals.reshape(m, k), order, axis=1)
        w_norm = w / w.sum(axis=1, keepdims=True)
        start = np.zeros((m, emb.shape[1]), dtype=np.float32)
        for j in range(k):
            start += w_norm[:, j:j + 1] * emb[nb[:, j]]
        ones = w == 1
        hit = ones.any(axis=1)
        start[hit] = emb[nb[hit, ones[hit].argmax(axis=1)]]
        start[w.sum(axis=1) == 0] = np.nan
        graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(m, n))
        epochs = self.transform_epochs or (100 if m <= 10_000 else 30)         # umap's own rule for None
        graph.data[graph.data < graph.data.max() / float(epochs)] = 0.0
        graph.eliminate_zeros()
        rng_state = check_random_state(model.transform_seed).randint(INT32_MIN, INT32_MAX, 3).astype(np.int64)
        return optimize_layout_euclidean(
            start, emb.astype(np.float32, copy=True), graph.row, graph.col, int(epochs), n,
            make_epochs_per_sample(graph.data, epochs), model._a, model._b, rng_state, model.repulsion_strength,
            model._initial_alpha / 4.0, model.negative_sample_rate, model.random_state is None,
        )

    def _fit_umap(self, x: np.ndarray, init: np.ndarray | None) -> np.ndarray:
        import umap
        from sklearn.decomposition import PCA

        n, d = x.shape
        if self.pca_dims is not None and d > self.pca_dims and n > self.pca_dims:
            self._reducer = PCA(n_components=self.pca_dims, random_state=self.seed).fit(x)
            xr = self._reduce(x)
        else:
            self._reducer = None
            xr = x
        k = min(self.n_neighbors, n - 1)
        knn_idx, knn_dist = exact_knn(xr, xr, k)
        epochs = self.n_epochs if init is None else (self.refit_epochs or self.n_epochs)
        model = umap.UMAP(
            n_neighbors=k, min_dist=self.min_dist, n_components=2, random_state=self.seed,
            transform_seed=self.seed, n_jobs=1, n_epochs=None if epochs is None else int(epochs),
            init="spectral" if init is None else np.asarray(init, dtype=np.float32),
            precomputed_knn=(knn_idx, knn_dist, _ExactIndex(xr)),
        )
        with warnings.catch_warnings():
            # umap warns that a search index other than pynndescent's disables transform; ours does not
            warnings.simplefilter("ignore")
            model.fit(xr)
        # model.transform (not used here, but kept working): umap's rule for its epochs
        model.n_epochs = None if self.transform_epochs is None else 3 * int(self.transform_epochs)
        self.model = model
        return model.embedding_


# ---------------------------------------------------------------------------------- warm-up
def is_warm() -> bool:
    """Whether :func:`warm_up` has run in this process (UMAP fits and placements then start
    without compiling)."""
    return _WARM.is_set()


def warm_up(seed: int = 0) -> float:
    """Compile umap-learn's numba functions once per process: fit, place and refit a tiny UMAP
    map through the same code paths (and argument types) as real maps.

    Safe to call from several threads (one compiles, the others wait) and again (then free).
    Meant for a background thread when a server starts, so no user waits for compilation.

    Returns
    -------
    float
        Seconds spent (0.0 when already warm).
    """
    with _WARM_LOCK:
        if _WARM.is_set():
            return 0.0
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        # two far-apart clusters: UMAP's spectral start then takes its disconnected-graph path too
        x = rng.standard_normal((200, 12)).astype(np.float32)
        x[100:] += 20.0
        p = Projector("umap", n_neighbors=10, seed=seed, pca_dims=8, n_epochs=20, refit_epochs=10)
        p.fit(x)
        p.transform(x[:7] + 0.1 * rng.standard_normal((7, 12)).astype(np.float32))
        p.refit(x + 0.01 * rng.standard_normal(x.shape).astype(np.float32))
        p.transform(x[:5])
        _WARM.set()
        return time.perf_counter() - t0
