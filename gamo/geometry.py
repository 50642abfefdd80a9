"""Planar geometry for the 2D toys: convex hulls and where generated points sit in them.

GAMO's convex generator (eq. 1) can only produce points inside the convex hull of the real
members of a class; the adversarial game with M pushes them toward the hull's boundary (the
class periphery). These helpers measure that. NumPy + SciPy only.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError

__all__ = ["convex_hull", "hull_distance", "periphery_stats"]


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2); got {arr.shape}")
    return arr


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of 2D points, in counter-clockwise order.

    Parameters
    ----------
    points : (n, 2) array
        The points. Duplicates are allowed.

    Returns
    -------
    (h, 2) float64 array
        The hull's corners in counter-clockwise order. The polygon is closed implicitly
        (the last vertex joins the first; the first vertex is *not* repeated). Points lying
        on an edge between two corners are not returned. Degenerate inputs are handled
        without error: no points gives shape (0, 2); one distinct point gives (1, 2); points
        that are all collinear give the two ends of their segment, (2, 2).
    """
    pts = _as_points(points, "points")
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return np.empty((0, 2))
    uniq = np.unique(pts, axis=0)
    if len(uniq) <= 2:
        return uniq
    # collinear (or numerically so): return the two extremes along the main direction
    centred = uniq - uniq.mean(axis=0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    if sv[1] <= 1e-12 * max(sv[0], 1e-300):
        proj = centred @ vt[0]
        return uniq[[int(np.argmin(proj)), int(np.argmax(proj))]]
    try:
        hull = ConvexHull(uniq)
    except QhullError:  # pragma: no cover - near-degenerate input qhull refuses
        proj = centred @ vt[0]
        return uniq[[int(np.argmin(proj)), int(np.argmax(proj))]]
    # for 2D input scipy lists hull.vertices counter-clockwise
    return uniq[hull.vertices]


def _segment_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each of pts (m, 2) to the nearest of the segments a[j]-b[j] (e, 2)."""
    d = b - a  # (e, 2)
    dd = np.einsum("ij,ij->i", d, d)  # (e,)
    dd = np.where(dd > 0, dd, 1.0)
    rel = pts[:, None, :] - a[None, :, :]  # (m, e, 2)
    t = np.clip(np.einsum("mej,ej->me", rel, d) / dd, 0.0, 1.0)  # (m, e)
    diff = rel - t[..., None] * d[None, :, :]
    return np.sqrt(np.min(np.einsum("mej,mej->me", diff, diff), axis=1))


def _inside_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd ray-casting test; works for any simple polygon (m,) bool."""
    x, y = pts[:, 0:1], pts[:, 1:2]  # (m, 1)
    x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]  # (1, h)
    x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    hits = crosses & (x < x_at)
    return (np.count_nonzero(hits, axis=1) % 2) == 1


def hull_distance(points: np.ndarray, hull: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Signed distance from each point to the boundary of a polygon.

    Parameters
    ----------
    points : (m, 2) array
        Query points.
    hull : (h, 2) array
        Polygon vertices in order (as returned by :func:`convex_hull`); a repeated closing
        vertex is allowed. A 2-vertex hull is a segment and a 1-vertex hull a point: they
        have no inside, so every distance is <= 0.
    chunk : int
        Points processed per batch (bounds memory at ``chunk * h``).

    Returns
    -------
    (m,) float64 array
        Positive inside the polygon, 0 on its boundary, negative outside; the magnitude is
        the Euclidean distance to the nearest boundary point. An empty hull gives NaN.
    """
    pts = _as_points(points, "points")
    poly = _as_points(hull, "hull")
    if len(poly) > 1 and np.array_equal(poly[0], poly[-1]):
        poly = poly[:-1]
    out = np.full(len(pts), np.nan)
    if len(poly) == 0 or len(pts) == 0:
        return out
    if len(poly) == 1:
        return -np.linalg.norm(pts - poly[0], axis=1)
    a = poly if len(poly) > 2 else poly[:1]
    b = np.roll(poly, -1, axis=0) if len(poly) > 2 else poly[1:2]
    for start in range(0, len(pts), chunk):
        block = pts[start : start + chunk]
        dist = _segment_distance(block, a, b)
        if len(poly) > 2:
            sign = np.where(_inside_polygon(block, poly), 1.0, -1.0)
        else:
            sign = -1.0
        out[start : start + chunk] = sign * dist
    return out


def periphery_stats(
    gen_x: np.ndarray,
    gen_y: np.ndarray,
    x_real: np.ndarray,
    y_real: np.ndarray,
    *,
    tol: float | None = None,
) -> dict[int, dict[str, float]]:
    """How close generated points sit to the boundary of their class's convex hull.

    For every class that has generated points, the hull of that class's *real* points is
    computed and each generated point's signed distance to its boundary is measured
    (:func:`hull_distance`). A convex generator keeps points inside (``fraction_inside`` = 1);
    a small ``mean_distance`` means they sit near the periphery of the class. Compare it with
    ``real_mean_distance`` (the same measure for the real points of the class) to judge
    whether generated points are closer to the boundary than typical class members.

    Parameters
    ----------
    gen_x : (m, 2) array
        Generated points.
    gen_y : (m,) int array
        The class each point was generated for.
    x_real : (n, 2) array
        Real (training) points.
    y_real : (n,) int array
        Their labels.
    tol : float, optional
        A point counts as inside when its signed distance is >= ``-tol``. Default: 1e-5 times
        the class's coordinate scale, which absorbs float32 rounding of convex combinations
        that lie on the boundary.

    Returns
    -------
    dict
        ``{class: {"n", "mean_distance", "median_distance", "mean_signed_distance",
        "fraction_inside", "real_mean_distance"}}`` with plain Python numbers.
        ``mean_distance`` is the mean *unsigned* distance to the hull boundary. Everything is
        NaN for a class without real points; ``real_mean_distance`` is NaN when the real
        points do not span an area (the hull is a point or a segment, and generated points
        then count as inside only when they lie on it).
    """
    gx = _as_points(gen_x, "gen_x")
    xr = _as_points(x_real, "x_real")
    gy = np.asarray(gen_y).reshape(-1)
    yr = np.asarray(y_real).reshape(-1)
    if len(gy) != len(gx):
        raise ValueError(f"gen_y has {len(gy)} labels for {len(gx)} generated points")
    if len(yr) != len(xr):
        raise ValueError(f"y_real has {len(yr)} labels for {len(xr)} real points")

    stats: dict[int, dict[str, float]] = {}
    for cls in np.unique(gy):
        pts = gx[gy == cls]
        real = xr[yr == cls]
        hull = convex_hull(real)
        row: dict[str, float] = {"n": int(len(pts))}
        if len(hull) == 0:
            row.update(
                mean_distance=float("nan"),
                median_distance=float("nan"),
                mean_signed_distance=float("nan"),
                fraction_inside=float("nan"),
                real_mean_distance=float("nan"),
            )
            stats[int(cls)] = row
            continue
        scale = float(np.max(np.abs(real))) + float(np.ptp(real, axis=0).max())
        t = tol if tol is not None else 1e-5 * max(scale, 1e-12)
        d = hull_distance(pts, hull)
        d_real = hull_distance(real, hull) if len(hull) > 2 else np.full(len(real), np.nan)
        row.update(
            mean_distance=float(np.mean(np.abs(d))),
            median_distance=float(np.median(np.abs(d))),
            mean_signed_distance=float(np.mean(d)),
            fraction_inside=float(np.mean(d >= -t)),
            real_mean_distance=float(np.mean(np.abs(d_real))) if len(hull) > 2 else float("nan"),
        )
        stats[int(cls)] = row
    return stats
