"""2D maps (gamo/projection.py): fitted on real points only, placing generated points without
moving the real layout, keyframes kept continuous, a bounded and deterministic subsample.

UMAP cases use a few hundred points and few epochs; the module's first UMAP fit compiles
umap-learn's numba functions (``warm_up``), which is most of this file's time."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import procrustes

from gamo.projection import (
    Projector,
    exact_knn,
    is_warm,
    procrustes_disparity,
    subsample_indices,
    warm_up,
)


def blobs(n: int = 300, d: int = 10, centers: int = 4, seed: int = 0) -> np.ndarray:
    """Well-separated Gaussian clusters, float32 (n, d)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 6, (centers, d))
    return (c[rng.integers(0, centers, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


def convex_points(real: np.ndarray, m: int, seed: int = 1) -> np.ndarray:
    """GAMO-like generated points: convex combinations of 3 random real points."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(real), (m, 3))
    w = rng.dirichlet(np.ones(3), m).astype(np.float32)
    return np.einsum("mk,mkd->md", w, real[pick]).astype(np.float32)


def rms_radius(layout: np.ndarray) -> float:
    return float(np.sqrt(((layout - layout.mean(0)) ** 2).sum(1).mean()))


@pytest.fixture(scope="module")
def umap_fitted():
    """A small UMAP map of blobs (compiles umap's functions through warm_up first)."""
    warm_up()
    real = blobs()
    p = Projector("umap", n_neighbors=10, seed=0, n_epochs=50, refit_epochs=30)
    layout = p.fit(real)
    return p, real, layout


# ------------------------------------------------------------------ measures and helpers
def test_procrustes_disparity_shape_and_screen():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 2))
    theta = 0.9
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = 3.0 * a + np.array([5.0, -2.0])           # translated and scaled: same picture
    rotated = a @ rot
    assert procrustes_disparity(a, a) == pytest.approx(0.0, abs=1e-12)
    assert procrustes_disparity(a, moved) == pytest.approx(0.0, abs=1e-12)
    assert procrustes_disparity(a, moved, rotate=False) == pytest.approx(0.0, abs=1e-12)
    # a rotation: the same shape, but every point moves on the screen
    assert procrustes_disparity(a, rotated) == pytest.approx(0.0, abs=1e-12)
    assert procrustes_disparity(a, rotated, rotate=False) > 0.3
    b = a + rng.normal(0, 0.3, a.shape)
    assert procrustes_disparity(a, b) == pytest.approx(procrustes(a, b)[2])
    assert procrustes_disparity(a, b, rotate=False) >= procrustes_disparity(a, b) - 1e-12
    with pytest.raises(ValueError):
        procrustes_disparity(a, a[:10])


def test_exact_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(200, 7)).astype(np.float32)
    query = np.concatenate([data[:20], rng.normal(size=(30, 7)).astype(np.float32)])
    idx, dist = exact_knn(query, data, 6, chunk=16)
    full = np.linalg.norm(query[:, None, :].astype(np.float64) - data[None], axis=2)
    want = np.argsort(full, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(dist, np.take_along_axis(full, want, axis=1), rtol=1e-5, atol=1e-6)
    # a data row finds itself first, at distance 0
    np.testing.assert_array_equal(idx[:20, 0], np.arange(20))
    assert (dist[:20, 0] == 0).all()


def test_subsample_cap_respected_and_deterministic():
    real = blobs(n=60, d=5)
    p = Projector("pca", seed=3, max_points=25)
    layout = p.fit(real)
    assert layout.shape == (25, 2) and len(p.indices) == 25
    assert len(np.unique(p.indices)) == 25 and (np.diff(p.indices) > 0).all()
    np.testing.assert_array_equal(p.fitted_x, real[p.indices])
    q = Projector("pca", seed=3, max_points=25)
    np.testing.assert_array_equal(q.fit(real), layout)
    np.testing.assert_array_equal(q.indices, p.indices)
    assert not np.array_equal(subsample_indices(60, 25, seed=4), p.indices)
    np.testing.assert_array_equal(subsample_indices(20, 25, seed=3), np.arange(20))
    # a keyframe refits the same rows
    p.refit(real + 0.01)
    np.testing.assert_array_equal(p.fitted_x, (real + 0.01)[p.indices])
    with pytest.raises(ValueError, match="same real rows"):
        p.refit(real[:50])


# ------------------------------------------------------------------ PCA
def test_pca_fitted_on_real_points_only_and_transform_exact():
    real = blobs()
    gen = convex_points(real, 40)
    p = Projector("pca", seed=0)
    assert p.keyframe == -1
    layout = p.fit(real)
    assert p.n_fits == 1 and p.keyframe == 0
    np.testing.assert_array_equal(p.fitted_x, real)
    before = layout.copy()
    components = p.model.components_.copy()
    placed = p.transform(gen)
    assert placed.shape == (40, 2)
    assert p.n_fits == 1
    np.testing.assert_array_equal(p.layout, before)
    np.testing.assert_array_equal(p.model.components_, components)
    # a real point lands exactly on its fitted position
    np.testing.assert_allclose(p.transform(real[5:12]), layout[5:12], atol=1e-5)
    with pytest.raises(ValueError, match="dimensions"):
        p.transform(gen[:, :3])
    assert p.transform(gen[:0]).shape == (0, 2)


def test_pca_keyframes_aligned():
    """Two nearly equal top variances: the principal axes turn freely under a small change of the
    data. Without alignment the map turns with them; aligned, it stays put."""
    rng = np.random.default_rng(0)
    base = np.concatenate([rng.normal(0, [3.0, 2.9], (400, 2)), rng.normal(0, 0.3, (400, 6))], axis=1)
    frames = [base + rng.normal(0, 0.15, base.shape) for _ in range(4)]
    screens = {}
    for align in ("none", "procrustes"):
        p = Projector("pca", seed=0, align=align)
        prev = p.fit(frames[0])
        d = []
        for f in frames[1:]:
            new = p.refit(f)
            assert procrustes_disparity(prev, new) < 0.02          # the same shape either way
            d.append(procrustes_disparity(prev, new, rotate=False))
            prev = new
        assert p.keyframe == 3 and p.n_fits == 4
        screens[align] = max(d)
    assert screens["procrustes"] < 0.02
    assert screens["procrustes"] < screens["none"]
    # placing after a refit uses the keyframe's alignment: real rows land on their positions
    np.testing.assert_allclose(p.transform(frames[-1][:10]), p.layout[:10], atol=1e-4)


# ------------------------------------------------------------------ UMAP
def test_warm_up_flag():
    warm_up()
    assert is_warm()
    assert warm_up() == 0.0


def test_umap_fitted_once_on_real_points_and_holds_still(umap_fitted):
    p, real, layout = umap_fitted
    assert p.n_fits == 1 and p.keyframe == 0
    np.testing.assert_array_equal(p.fitted_x, real)
    assert p.model._raw_data.shape == real.shape                 # the fitted rows: the real rows only
    np.testing.assert_array_equal(p.model._raw_data, real)
    before, emb = p.layout.copy(), p.model.embedding_.copy()
    gen = convex_points(real, 50)
    placed = p.transform(gen)
    assert placed.shape == (50, 2) and np.isfinite(placed).all()
    assert p.n_fits == 1
    np.testing.assert_array_equal(p.layout, before)
    np.testing.assert_array_equal(p.model.embedding_, emb)
    np.testing.assert_array_equal(p.model._raw_data, real)
    # deterministic: the same points land on the same positions
    np.testing.assert_array_equal(p.transform(gen), placed)


def test_umap_real_points_land_near_their_fitted_positions(umap_fitted):
    p, real, layout = umap_fitted
    back = p.transform(real[:60])
    err = np.linalg.norm(back - layout[:60], axis=1)
    assert np.median(err) < 0.1 * rms_radius(layout)
    assert err.max() < 0.5 * rms_radius(layout)


def test_umap_placement_is_umaps_transform(umap_fitted):
    """The vectorised placement gives umap-learn's own transform's numbers."""
    import warnings

    p, real, _ = umap_fitted
    gen = convex_points(real, 30, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = p.model.transform(gen)
    np.testing.assert_allclose(p.transform(gen), theirs, atol=1e-5)


def test_umap_keyframes_stay_aligned():
    warm_up()
    real = blobs(n=300, seed=2)
    rng = np.random.default_rng(7)
    frames = [real + rng.normal(0, 0.3, real.shape).astype(np.float32) for _ in range(3)]
    screens = {}
    for align in ("none", "both"):
        p = Projector("umap", n_neighbors=10, seed=0, n_epochs=50, refit_epochs=30, align=align)
        prev = p.fit(real)
        d = []
        for f in frames:
            new = p.refit(f)
            assert procrustes_disparity(prev, new) < 0.15
            d.append(procrustes_disparity(prev, new, rotate=False))
            prev = new
        assert p.keyframe == 3 and p.n_fits == 4
        screens[align] = float(np.mean(d))
        if align == "both":
            # placing after a refit uses the keyframe's alignment
            back = p.transform(frames[-1][:40])
            assert np.median(np.linalg.norm(back - p.layout[:40], axis=1)) < 0.1 * rms_radius(p.layout)
    assert screens["both"] < 0.1                    # measured 0.059 (from scratch: 0.113)
    assert screens["both"] < screens["none"]


def test_refit_before_fit_fits_and_bad_arguments():
    real = blobs(n=40, d=4)
    p = Projector("pca")
    p.refit(real)
    assert p.keyframe == 0 and p.n_fits == 1
    with pytest.raises(RuntimeError):
        Projector("pca").transform(real)
    with pytest.raises(ValueError):
        Projector("tsne")
    with pytest.raises(ValueError):
        Projector("pca", align="init")
    with pytest.raises(ValueError, match="at least"):
        Projector("pca").fit(real[:2])


def test_projection_never_imports_streamlit():
    code = "import gamo.projection, sys; assert 'streamlit' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
