"""Plotly figure builders for the lab's pages.

Every builder takes plain NumPy arrays (not engine objects), so it can be tested without
training anything. Axis ranges are passed in and fixed, and ``layout.uirevision`` is set,
so that when a page redraws a figure for the next snapshot the motion on screen is the
points' motion (not the axes rescaling) and a user's zoom survives the redraw.
"""
from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "class_colors",
    "toy_figure",
    "figure_json",
    "trails_legend_entry",
    "metric_curves",
    "recall_bars",
    "class_sizes_chart",
    "confusion_figure",
    "generated_indices_from_selection",
]

# class 0 (the majority in the toys) is blue and class 1 red, as in the paper's Figure 1.
_BASE_PALETTE = (
    "#1f77b4",  # blue
    "#d62728",  # red
    "#2ca02c",  # green
    "#ff7f0e",  # orange
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#17becf",  # cyan
    "#bcbd22",  # olive
    "#7f7f7f",  # grey
)

_FONT = dict(family="sans-serif", size=13)
_MARGIN = dict(l=50, r=20, t=50, b=45)


def class_colors(n_classes: int) -> list[str]:
    """A fixed palette, one hex colour per class.

    Parameters
    ----------
    n_classes : int
        Number of classes.

    Returns
    -------
    list of str
        ``"#rrggbb"`` strings; class 0 (the majority) is blue, class 1 red, class 2 green.
        The same class always gets the same colour whatever ``n_classes`` is. Beyond ten
        classes, further colours are spread around the hue circle.
    """
    n = int(n_classes)
    if n < 0:
        raise ValueError("n_classes must be >= 0")
    colors = list(_BASE_PALETTE[:n])
    for i in range(len(colors), n):
        # golden-angle hues: distinct, deterministic
        colors.append(_hsl_to_hex((i * 137.508) % 360.0, 0.55, 0.45))
    return colors


def _hsl_to_hex(h: float, s: float, lightness: float) -> str:
    c = (1 - abs(2 * lightness - 1)) * s
    x = c * (1 - abs((h / 60.0) % 2 - 1))
    m = lightness - c / 2
    sector = int(h // 60) % 6
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][sector]
    return "#{:02x}{:02x}{:02x}".format(*(round((v + m) * 255) for v in (r, g, b)))


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.3f})"


def _layout(layout: dict[str, Any], height: int | None, grid: str = "xy") -> dict[str, Any]:
    """``layout`` with gridlines on the axes named in ``grid`` and the height."""
    layout = dict(layout)
    for ax in grid:
        key = f"{ax}axis"
        layout[key] = {**layout.get(key, {}), "showgrid": True, "gridcolor": "#eeeeee"}
    if height is not None:
        layout["height"] = int(height)
    return layout


def _figure(layout: dict[str, Any], height: int | None, opt: Mapping[str, Any],
            grid: str = "xy", data: Sequence[Any] = ()) -> go.Figure:
    """A new figure with its whole layout given to the constructor, gridlines on the axes named
    in ``grid``. (``update_layout`` on a new figure took about 18 ms here, the constructor with
    ``_validate=False`` about 1 ms: a live page builds several figures a second.)"""
    return go.Figure(data=list(data), layout=_layout(layout, height, grid), **opt)


def _typed_array(v: np.ndarray) -> Any:
    """A NumPy array as plotly.js's typed-array spec (``{"dtype", "bdata", "shape"}``), as
    plotly's own JSON encoder writes it; a list where plotly.js has no such type."""
    if v.size == 0 or v.dtype.kind not in "iuf":
        return v.tolist()
    if v.dtype.kind in "iu" and v.dtype.itemsize == 8:
        lo, hi = int(v.min()), int(v.max())
        for t in ((np.int8, np.int16, np.int32) if v.dtype.kind == "i" or lo < 0 else (np.uint8, np.uint16, np.uint32)):
            info = np.iinfo(t)
            if info.min <= lo and hi <= info.max:
                v = v.astype(t)
                break
        else:
            return v.tolist()
    elif v.dtype == np.float16:
        v = v.astype(np.float32)
    out = {"dtype": f"{v.dtype.kind}{v.dtype.itemsize}",
           "bdata": base64.b64encode(np.ascontiguousarray(v)).decode("ascii")}
    if v.ndim > 1:
        out["shape"] = ", ".join(str(s) for s in v.shape)
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return _typed_array(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def figure_json(spec: Mapping[str, Any]) -> str:
    """JSON for plotly.js of a figure given as plain dicts (``toy_figure(..., as_dict=True)``):
    NumPy arrays become typed arrays, as in ``plotly.io.to_json``, without building Plotly's
    objects first. Non-finite floats outside arrays are written as ``null``."""
    try:
        return json.dumps(spec, default=_json_default, separators=(",", ":"), allow_nan=False)
    except ValueError:          # NaN or inf in a plain list: JSON has no such numbers
        return json.dumps(_nan_to_none(spec), default=_json_default, separators=(",", ":"))


def _nan_to_none(o: Any) -> Any:
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _nan_to_none(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_nan_to_none(v) for v in o]
    return o


def _range(r: Sequence[float], name: str) -> list[float]:
    lo, hi = (float(v) for v in r)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"{name} must be (low, high) with low < high; got {r!r}")
    return [lo, hi]


def _points(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2); got {arr.shape}")
    return arr


def _stack_trails(trails: Any) -> np.ndarray:
    """Accept (T, m, 2), a list of T (m, 2) arrays, or a list of (T, m_i, 2) blocks."""
    if isinstance(trails, np.ndarray):
        arr = trails.astype(np.float64, copy=False)
    else:
        parts = [np.asarray(t, dtype=np.float64) for t in trails]
        if not parts:
            return np.empty((0, 0, 2))
        if parts[0].ndim == 2:
            arr = np.stack(parts, axis=0)
        else:
            arr = np.concatenate(parts, axis=1)  # blocks of points, e.g. one per class
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"trails must have shape (T, m, 2); got {arr.shape}")
    return arr


def _class_label(k: int, majority: int | None) -> str:
    if majority is None:
        return f"class {k}"
    return f"class {k} ({'majority' if k == majority else 'minority'})"


def toy_figure(
    x_real: np.ndarray,
    y_real: np.ndarray,
    *,
    xs: np.ndarray | None = None,
    ys: np.ndarray | None = None,
    m_proba: np.ndarray | None = None,
    d_real: np.ndarray | None = None,
    d_class: int | None = None,
    hulls: Mapping[int, np.ndarray] | None = None,
    gen_x: np.ndarray | None = None,
    gen_y: np.ndarray | None = None,
    trails: np.ndarray | Sequence[np.ndarray] | None = None,
    selected: int | None = None,
    parents_x: np.ndarray | None = None,
    parents_w: np.ndarray | None = None,
    x_range: Sequence[float],
    y_range: Sequence[float],
    title: str = "",
    n_classes: int | None = None,
    height: int | None = 560,
    uirevision: str = "toy",
    validate: bool = True,
    real_gl: bool = False,
    as_dict: bool = False,
) -> go.Figure | dict[str, Any]:
    """The 2D toy view: real points, M's regions, D's score, hulls and generated points.

    Traces are drawn bottom to top in this order (each only when its data is given):
    M's decision regions (heatmap) and boundary (contour); D's real-score contours; the
    convex hull outline of each minority class; the real points; trails of generated points;
    the generated points; and, for the ``selected`` generated point, lines to its convex
    parents and highlighted markers.

    Parameters
    ----------
    x_real : (n, 2) array
        Real training points.
    y_real : (n,) int array
        Their classes. The most frequent class is labelled "majority" in the legend.
    xs, ys : (gx,), (gy,) arrays, optional
        Grid coordinates for ``m_proba`` and ``d_real``.
    m_proba : (gy, gx, K) array, optional
        M's class probabilities on the grid, ``m_proba[iy, ix, k]`` at ``(xs[ix], ys[iy])``.
        Drawn as the argmax class (heatmap in class colours at low opacity) plus the decision
        boundary (for K = 2 the P(class 1) = 0.5 contour, else the boundary of each region).
    d_real : (gy, gx, K) array, optional
        D(x | k) on the grid; contour lines of ``d_real[..., d_class]`` are drawn when
        ``d_class`` is given too.
    d_class : int, optional
        Which class's D score to draw.
    hulls : dict int -> (h, 2) array, optional
        Convex hull vertices per class (e.g. from ``gamo.geometry.convex_hull``); drawn as
        closed dashed outlines (the first vertex need not be repeated).
    gen_x : (m, 2) array, optional
        Generated points; ``gen_y`` (m,) gives their classes. Each class is one trace whose
        ``customdata`` is the point's row index in ``gen_x`` (see
        :func:`generated_indices_from_selection`).
    trails : (T, m, 2) array or list, optional
        Recent positions of the generated points, oldest first (a list of T (m, 2) arrays, or
        a list of (T, m_i, 2) blocks concatenated along the point axis, is also accepted).
        Drawn as faded segments and dots, older = more transparent; coloured by ``gen_y`` when
        m matches ``len(gen_y)``.
    selected : int, optional
        Row of ``gen_x`` to highlight.
    parents_x : (k, 2) array, optional
        The selected point's convex parents (real points), with ``parents_w`` (k,) their
        weights. One line per parent joins it to the selected point; line width is
        proportional to the weight (the heaviest parent gets 10 px, floor 0.5 px).
    x_range, y_range : (low, high)
        Fixed axis ranges.
    title : str
        Figure title.
    n_classes : int, optional
        Number of classes for colours; default inferred from the labels and ``m_proba``.
    height : int, optional
        Figure height in pixels (None = Plotly's default).
    uirevision : str
        Kept constant across redraws so zoom and legend toggles survive.
    validate : bool
        False skips Plotly's per-property validation (about 2x faster to build; for pages
        that redraw several times a second with inputs already checked here).
    real_gl : bool
        Draw the real points with WebGL (``Scattergl``): about 2x faster browser redraws with
        thousands of points; the other layers stay SVG.
    as_dict : bool
        Return the figure as a plain ``{"data": [...], "layout": {...}}`` dict (NumPy arrays
        inside; :func:`figure_json` encodes it) instead of a ``go.Figure``: building Plotly's
        objects and ``to_json`` were most of a live redraw's server time.

    Returns
    -------
    plotly.graph_objects.Figure, or dict with ``as_dict``
    """
    x_real = _points(x_real, "x_real")
    y_real = np.asarray(y_real).astype(np.int64).reshape(-1)
    if len(y_real) != len(x_real):
        raise ValueError(f"y_real has {len(y_real)} labels for {len(x_real)} points")
    xr, yr = _range(x_range, "x_range"), _range(y_range, "y_range")

    # number of classes and the majority, for colours and legend names
    k_seen = [int(y_real.max()) + 1 if len(y_real) else 0]
    if m_proba is not None:
        k_seen.append(np.asarray(m_proba).shape[-1])
    if gen_y is not None and len(np.asarray(gen_y)):
        k_seen.append(int(np.asarray(gen_y).max()) + 1)
    if hulls:
        k_seen.append(max(int(c) for c in hulls) + 1)
    K = int(n_classes) if n_classes is not None else max(k_seen)
    colors = class_colors(max(K, 1))
    majority = int(np.argmax(np.bincount(y_real, minlength=K))) if len(y_real) else None

    layout: dict[str, Any] = dict(
        # no axis titles: the two features need none, and under a horizontal legend placed at a
        # fraction of the plot's height the x title collided with it in the smaller views
        xaxis=dict(range=xr, autorange=False, zeroline=False),
        yaxis=dict(range=yr, autorange=False, zeroline=False),
        uirevision=uirevision,
        legend=dict(itemsizing="constant", font=dict(size=11)),
        font=_FONT,
        margin=_MARGIN,
        plot_bgcolor="white",
        clickmode="event+select",
        dragmode="pan",
    )
    if title:
        layout["title"] = dict(text=title, x=0.0, xanchor="left")
    layout = _layout(layout, height)
    traces: list[dict[str, Any]] = []

    # M's decision regions and boundary
    if m_proba is not None:
        if xs is None or ys is None:
            raise ValueError("m_proba needs the grid coordinates xs and ys")
        mp = np.asarray(m_proba, dtype=np.float64)
        gxs, gys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        if mp.ndim != 3 or mp.shape[:2] != (len(gys), len(gxs)):
            raise ValueError(
                f"m_proba must have shape (len(ys), len(xs), K) = ({len(gys)}, {len(gxs)}, K);"
                f" got {mp.shape}"
            )
        kk = mp.shape[2]
        # small dtypes keep the JSON sent on every redraw small
        pred = np.argmax(mp, axis=2).astype(np.int8)
        conf = np.max(mp, axis=2).astype(np.float32)
        # discrete colour scale: class k owns the band [k/kk, (k+1)/kk]
        scale = []
        for k in range(kk):
            scale += [[k / kk, colors[k]], [(k + 1) / kk, colors[k]]]
        traces.append(
            dict(type="heatmap",
                x=gxs,
                y=gys,
                z=pred,
                customdata=conf,
                zmin=-0.5,
                zmax=kk - 0.5,
                colorscale=scale,
                opacity=0.18,
                showscale=False,
                name="M's predicted class",
                hovertemplate="M predicts class %{z} (p = %{customdata:.2f})"
                "<br>x = %{x:.2f}, y = %{y:.2f}<extra></extra>",
            )
        )
        if kk == 2:
            margins = [mp[..., 1] - 0.5]
        else:
            margins = []
            for k in range(kk):
                others = np.delete(mp, k, axis=2).max(axis=2)
                margins.append(mp[..., k] - others)
        legend_done = False
        for marg in margins:
            if not (np.nanmin(marg) < 0 < np.nanmax(marg)):
                continue  # no boundary crosses the grid for this region
            traces.append(
                dict(type="contour",
                    x=gxs,
                    y=gys,
                    z=marg.astype(np.float32),
                    contours=dict(coloring="lines", start=0.0, end=0.0, size=1.0),
                    # with coloring="lines" the colorscale, not line.color, sets the colour
                    colorscale=[[0.0, "#333333"], [1.0, "#333333"]],
                    line=dict(color="#333333", width=2),
                    showscale=False,
                    name="M's decision boundary",
                    legendgroup="m_boundary",
                    showlegend=not legend_done,
                    hoverinfo="skip",
                )
            )
            legend_done = True

    # D's real score for one class
    if d_real is not None and d_class is not None:
        if xs is None or ys is None:
            raise ValueError("d_real needs the grid coordinates xs and ys")
        dr = np.asarray(d_real, dtype=np.float64)
        gxs, gys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        if dr.ndim != 3 or dr.shape[:2] != (len(gys), len(gxs)):
            raise ValueError(
                f"d_real must have shape (len(ys), len(xs), K) = ({len(gys)}, {len(gxs)}, K);"
                f" got {dr.shape}"
            )
        dc = int(d_class)
        traces.append(
            dict(type="contour",
                x=gxs,
                y=gys,
                z=dr[..., dc].astype(np.float32),
                contours=dict(
                    coloring="lines",
                    start=0.1,
                    end=0.9,
                    size=0.2,
                    showlabels=True,
                    labelfont=dict(size=10, color=colors[dc]),
                ),
                colorscale=[[0.0, colors[dc]], [1.0, colors[dc]]],
                line=dict(color=colors[dc], width=1.2, dash="dot"),
                showscale=False,
                name=f"D(x | class {dc}): real score",
                showlegend=True,
                hovertemplate=f"D(x | class {dc}) = %{{z:.2f}}<extra></extra>",
            )
        )

    # convex hull outline per class
    for cls, poly in sorted((hulls or {}).items()):
        poly = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(poly) == 0:
            continue
        if len(poly) > 2 and not np.array_equal(poly[0], poly[-1]):
            poly = np.vstack([poly, poly[:1]])
        c = int(cls)
        traces.append(
            dict(type="scatter",
                x=poly[:, 0],
                y=poly[:, 1],
                mode="lines" if len(poly) > 1 else "markers",
                line=dict(color=colors[c], width=1.5, dash="dash"),
                name=f"class {c} convex hull",
                legendgroup=f"hull{c}",
                hoverinfo="skip",
            )
        )

    # real points (WebGL when asked: thousands of SVG markers dominate a browser redraw); the
    # largest class first, the minorities on top, larger and outlined, so that a class of a few
    # points stays visible on its shaded region at any imbalance
    real_type = "scattergl" if real_gl else "scatter"
    sizes = np.bincount(y_real, minlength=K) if len(y_real) else np.zeros(K, int)
    for c in sorted((int(c) for c in np.unique(y_real)), key=lambda c: (-sizes[c], c)):
        pts = x_real[y_real == c]
        small = sizes[c] < sizes.max()
        traces.append(
            dict(type=real_type,
                x=pts[:, 0],
                y=pts[:, 1],
                mode="markers",
                marker=(dict(size=8, color=colors[c], opacity=1.0, line=dict(color="#282828", width=1))
                        if small else dict(size=5, color=colors[c], opacity=0.75)),
                name=f"{_class_label(c, majority)} real",
                legendgroup=f"real{c}",
                hovertemplate=f"class {c} real<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
            )
        )

    g_x = g_y = None
    if gen_x is not None:
        g_x = _points(gen_x, "gen_x")
        g_y = (
            np.zeros(len(g_x), dtype=np.int64)
            if gen_y is None
            else np.asarray(gen_y).astype(np.int64).reshape(-1)
        )
        if len(g_y) != len(g_x):
            raise ValueError(f"gen_y has {len(g_y)} labels for {len(g_x)} points")

    # trails: a line has one colour, so segments are grouped into up to three age bands per
    # class (older band = more transparent); dots carry a per-point opacity
    if trails is not None:
        tr = _stack_trails(trails)
        T, m = tr.shape[0], tr.shape[1]
        if T >= 2 and m > 0:
            t_cls = g_y if (g_y is not None and len(g_y) == m) else None
            groups = (
                [(int(c), np.flatnonzero(t_cls == c)) for c in np.unique(t_cls)]
                if t_cls is not None
                else [(None, np.arange(m))]
            )
            legend_color = colors[groups[0][0]] if groups[0][0] is not None else "#555555"
            for c, idx in groups:
                col = colors[c] if c is not None else "#555555"
                # segment a joins tr[a] to tr[a + 1], a = 0 (oldest) .. T - 2
                for band in np.array_split(np.arange(T - 1), min(3, T - 1)):
                    alpha = 0.15 + 0.6 * (band[-1] + 1) / (T - 1)
                    seg = np.full((len(band), len(idx), 3, 2), np.nan)
                    seg[:, :, 0] = tr[band][:, idx]
                    seg[:, :, 1] = tr[band + 1][:, idx]
                    seg = seg.reshape(-1, 2)
                    traces.append(
                        dict(type="scatter",
                            x=seg[:, 0],
                            y=seg[:, 1],
                            mode="lines",
                            line=dict(color=_rgba(col, alpha), width=1.5),
                            name="recent path (older = fainter)",
                            legendgroup="trails",
                            showlegend=False,
                            hoverinfo="skip",
                            connectgaps=False,
                        )
                    )
                # dots at past positions (the newest one is the generated point itself)
                pos = tr[: T - 1][:, idx].reshape(-1, 2)
                opac = np.repeat(0.15 + 0.6 * np.arange(1, T) / (T - 1), len(idx))
                traces.append(
                    dict(type="scatter",
                        x=pos[:, 0],
                        y=pos[:, 1],
                        mode="markers",
                        marker=dict(size=3, color=col, opacity=opac),
                        name="recent path (older = fainter)",
                        legendgroup="trails",
                        showlegend=False,
                        hoverinfo="skip",
                    )
                )
            traces.append(trails_legend_entry(legend_color))

    # generated points; customdata = row in gen_x so a page can tell which was picked
    if g_x is not None:
        for c in np.unique(g_y):
            c = int(c)
            rows = np.flatnonzero(g_y == c)
            traces.append(
                dict(type="scatter",
                    x=g_x[rows, 0],
                    y=g_x[rows, 1],
                    mode="markers",
                    marker=dict(
                        symbol="x",
                        size=9,
                        color=colors[c],
                        line=dict(color="#222222", width=0.6),
                    ),
                    customdata=rows,
                    name=f"class {c} generated",
                    legendgroup=f"gen{c}",
                    meta="generated",
                    hovertemplate=f"generated point #%{{customdata}} (class {c})"
                    "<br>(%{x:.2f}, %{y:.2f})<extra></extra>",
                )
            )

    # the selected point and its convex parents
    if selected is not None and g_x is not None and 0 <= int(selected) < len(g_x):
        s = int(selected)
        sx, sy = g_x[s]
        s_col = colors[int(g_y[s])]
        if parents_x is not None:
            px = _points(parents_x, "parents_x")
            pw = (
                np.ones(len(px)) / max(len(px), 1)
                if parents_w is None
                else np.asarray(parents_w, dtype=np.float64).reshape(-1)
            )
            if len(pw) != len(px):
                raise ValueError(f"parents_w has {len(pw)} weights for {len(px)} parents")
            wmax = float(np.max(pw)) if len(pw) and np.max(pw) > 0 else 1.0
            for j in range(len(px)):
                traces.append(
                    dict(type="scatter",
                        x=[px[j, 0], sx],
                        y=[px[j, 1], sy],
                        mode="lines",
                        line=dict(color=_rgba(s_col, 0.7), width=max(0.5, 10.0 * pw[j] / wmax)),
                        name="convex parents (width ∝ weight)",
                        legendgroup="parents",
                        showlegend=j == 0,
                        meta="parent-line",
                        hovertemplate=f"weight {pw[j]:.3f}<extra></extra>",
                    )
                )
            traces.append(
                dict(type="scatter",
                    x=px[:, 0],
                    y=px[:, 1],
                    mode="markers+text",
                    marker=dict(
                        size=12,
                        color="rgba(0,0,0,0)",
                        line=dict(color=s_col, width=2),
                        symbol="circle",
                    ),
                    text=[f"{w:.2f}" for w in pw],
                    textposition="top center",
                    textfont=dict(size=10, color="#222222"),
                    name="parent (real point)",
                    legendgroup="parents",
                    showlegend=False,
                    meta="parent-markers",
                    hovertemplate="parent, weight %{text}<extra></extra>",
                )
            )
        traces.append(
            dict(type="scatter",
                x=[sx],
                y=[sy],
                mode="markers",
                marker=dict(
                    symbol="star",
                    size=17,
                    color=s_col,
                    line=dict(color="#000000", width=1.5),
                ),
                customdata=[s],
                name=f"selected point #{s}",
                meta="selected",
                hovertemplate="selected point #%{customdata}<extra></extra>",
            )
        )

    if as_dict:
        return {"data": traces, "layout": layout}
    return go.Figure(data=traces, layout=layout, **({} if validate else {"_validate": False}))


def trails_legend_entry(color: str) -> dict[str, Any]:
    """The trails' legend entry: an empty trace just before the generated points, so that the
    legend looks the same whether the trails are traces, an image, or not drawn yet."""
    return dict(type="scatter", x=[None], y=[None], mode="lines", line=dict(color=_rgba(color, 0.45), width=1.5),
                name="recent path (older = fainter)", legendgroup="trails", showlegend=True, hoverinfo="skip")


def generated_indices_from_selection(selection: Any) -> list[int]:
    """Rows of ``gen_x`` picked in a :func:`toy_figure` shown with ``on_select="rerun"``.

    Parameters
    ----------
    selection : mapping or object
        The value ``st.plotly_chart(..., on_select="rerun")`` returns (or its ``selection``
        part, or the raw list of points). Only points of the generated-point traces carry
        an integer ``customdata``; clicks on real points or the background are ignored.

    Returns
    -------
    list of int
        Distinct row indices in the order selected (empty when nothing generated is picked).
    """
    if selection is None:
        return []
    sel = selection
    if isinstance(sel, Mapping) and "selection" in sel:
        sel = sel["selection"]
    if isinstance(sel, Mapping):
        points = sel.get("points", [])
    elif isinstance(sel, (list, tuple)):
        points = sel
    else:
        return []
    out: list[int] = []
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if len(cd) else None
        if cd is None or isinstance(cd, bool):
            continue
        try:
            idx = int(cd)
        except (TypeError, ValueError):
            continue
        if idx not in out:
            out.append(idx)
    return out


def metric_curves(
    steps: np.ndarray,
    series: Mapping[str, np.ndarray],
    title: str,
    y_range: Sequence[float] | None = None,
    *,
    x_title: str = "step",
    y_title: str = "",
    colors: Mapping[str, str] | None = None,
    height: int | None = 320,
    uirevision: str | None = None,
    validate: bool = True,
) -> go.Figure:
    """Line chart of several series over training steps (losses, ACSA/GM, recalls).

    Parameters
    ----------
    steps : (T,) array
        The x values.
    series : dict str -> (T,) array
        One line per entry, in dict order. NaN values leave gaps (e.g. steps where a split
        was not evaluated).
    title : str
        Figure title.
    y_range : (low, high), optional
        Fixed y range (e.g. (0, 1) for metrics); autoscaled when None.
    x_title, y_title : str
        Axis titles.
    colors : dict str -> colour, optional
        Colour per series name. Names of the form ``"class k"`` default to
        :func:`class_colors`, so per-class curves match the toy view.
    height : int, optional
        Figure height in pixels.
    uirevision : str, optional
        Defaults to the title, so each chart keeps its own zoom across redraws.
    validate : bool
        False skips Plotly's per-property validation (faster, for live redraws).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    _opt: dict[str, Any] = {} if validate else {"_validate": False}
    x = np.asarray(steps).reshape(-1)
    # titles as {"text": ...}: plotly.js 3 ignores a bare string, and unvalidated figures
    # (validate=False) go to it as written
    yaxis: dict[str, Any] = dict(title=dict(text=y_title), zeroline=False)
    if y_range is not None:
        yaxis.update(range=_range(y_range, "y_range"), autorange=False)
    fig = _figure(dict(
        title=dict(text=title, x=0.0, xanchor="left"),
        xaxis=dict(title=dict(text=x_title), zeroline=False),
        yaxis=yaxis,
        uirevision=uirevision if uirevision is not None else title,
        font=_FONT,
        margin=_MARGIN,
        hovermode="x unified",
        legend=dict(font=dict(size=11)),
        plot_bgcolor="white",
    ), height, _opt)
    colors = dict(colors or {})
    for name, vals in series.items():
        v = np.asarray(vals, dtype=np.float64).reshape(-1)
        if len(v) != len(x):
            raise ValueError(f"series {name!r} has {len(v)} values for {len(x)} steps")
        col = colors.get(name)
        parts = str(name).split()
        if col is None and len(parts) >= 2 and parts[0] == "class" and parts[1].isdigit():
            col = class_colors(int(parts[1]) + 1)[int(parts[1])]
        fig.add_trace(
            go.Scatter(**_opt,
                x=x,
                y=v,
                mode="lines+markers" if len(x) <= 1 else "lines",
                name=str(name),
                line=dict(width=2, color=col) if col else dict(width=2),
                connectgaps=False,
                hovertemplate=f"{name}: %{{y:.4f}}<br>{x_title} %{{x}}<extra></extra>",
            )
        )
    return fig


def class_sizes_chart(sizes: Sequence[int], names: Sequence[str] | None = None, *,
                      height: int = 190, title: str = "Training points per class") -> go.Figure:
    """The imbalance profile as bars: training points per class, in the classes' colours, each
    count printed on its bar (both labs' sidebars draw it under their profile editor)."""
    sizes = [int(v) for v in sizes]
    names = list(names) if names is not None else [f"class {i}" for i in range(len(sizes))]
    bar = go.Bar(x=[f"{i}" for i in range(len(sizes))], y=sizes,
                 marker_color=class_colors(len(sizes)), text=[f"{v:,}" for v in sizes],
                 textposition="outside", customdata=names, cliponaxis=False,
                 hovertemplate="class %{x} (%{customdata}): %{y} training points<extra></extra>")
    return go.Figure(bar, layout=dict(
        height=height, margin=dict(l=5, r=5, t=28, b=5), showlegend=False,
        title=dict(text=title, font=dict(size=12), x=0),
        yaxis=dict(showgrid=True, gridcolor="#eeeeee", range=[0, 1.18 * max(sizes + [1])]),
        plot_bgcolor="white", xaxis=dict(type="category")))


def recall_bars(
    recall: np.ndarray,
    class_names: Sequence[str],
    counts: np.ndarray | None = None,
    *,
    title: str = "Recall per class",
    height: int | None = 320,
    uirevision: str = "recall",
) -> go.Figure:
    """Per-class recall as bars, with each class's training count under its name.

    Parameters
    ----------
    recall : (C,) array
        Recall of each class in [0, 1] (NaN where a class has no test points).
    class_names : sequence of str
        C names for the x axis.
    counts : (C,) int array, optional
        Training points per class, shown as ``n = ...`` below the name: it makes visible that
        recall falls with the class's size.
    title : str
        Figure title.
    height : int, optional
        Figure height in pixels.
    uirevision : str
        Kept constant across redraws.

    Returns
    -------
    plotly.graph_objects.Figure
        y axis fixed to [0, 1.1]; the value is printed on each bar.
    """
    r = np.asarray(recall, dtype=np.float64).reshape(-1)
    names = [str(n) for n in class_names]
    if len(names) != len(r):
        raise ValueError(f"{len(names)} class names for {len(r)} recall values")
    if counts is not None:
        cnt = np.asarray(counts).reshape(-1)
        if len(cnt) != len(r):
            raise ValueError(f"{len(cnt)} counts for {len(r)} recall values")
        labels = [f"{n}<br>n = {int(c)}" for n, c in zip(names, cnt)]
        hover_n = [f"<br>{int(c)} training points" for c in cnt]
    else:
        labels = names
        hover_n = [""] * len(r)
    finite = np.isfinite(r)
    bar = go.Bar(
        x=labels,
        y=np.where(finite, r, 0.0),
        marker=dict(color=class_colors(len(r)), line=dict(color="#333333", width=0.5)),
        text=[f"{v:.2f}" if ok else "n/a" for v, ok in zip(r, finite)],
        textposition="outside",
        cliponaxis=False,
        customdata=hover_n,
        hovertemplate="%{x}: recall %{text}%{customdata}<extra></extra>",
        name="recall",
    )
    return _figure(dict(
        title=dict(text=title, x=0.0, xanchor="left"),
        yaxis=dict(range=[0.0, 1.1], autorange=False, title="recall", tickformat=".1f"),
        xaxis=dict(title="class (training count)" if counts is not None else "class"),
        uirevision=uirevision,
        font=_FONT,
        margin=_MARGIN,
        showlegend=False,
        plot_bgcolor="white",
    ), height, {}, grid="y", data=[bar])


def confusion_figure(
    confusion: np.ndarray,
    class_names: Sequence[str],
    *,
    title: str = "Confusion matrix (rows sum to 1)",
    height: int | None = 420,
    uirevision: str = "confusion",
) -> go.Figure:
    """Row-normalised confusion matrix as a heatmap, with the raw counts written in cells.

    Parameters
    ----------
    confusion : (C, C) array
        ``confusion[i, j]`` counts true class i predicted as j.
    class_names : sequence of str
        C names.
    title : str
        Figure title.
    height : int, optional
        Figure height in pixels.
    uirevision : str
        Kept constant across redraws.

    Returns
    -------
    plotly.graph_objects.Figure
        Colour = fraction of the true class's test points (0..1, fixed), so the diagonal is
        each class's recall; rows with no points are all 0. True classes run top to bottom.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    names = [str(n) for n in class_names]
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(names):
        raise ValueError(f"confusion must be (C, C) with C = {len(names)}; got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    counts = [[f"{int(round(v))}" for v in row] for row in cm]
    heat = go.Heatmap(
        z=norm,
        x=names,
        y=names,
        zmin=0.0,
        zmax=1.0,
        colorscale="Blues",
        text=counts,
        texttemplate="%{text}",
        textfont=dict(size=11),
        colorbar=dict(title=dict(text="fraction"), thickness=12),
        hovertemplate="true %{y}, predicted %{x}<br>%{text} points (%{z:.0%} of the row)"
        "<extra></extra>",
    )
    return _figure(dict(
        title=dict(text=title, x=0.0, xanchor="left"),
        xaxis=dict(title="predicted class", side="bottom", type="category"),
        yaxis=dict(title="true class", autorange="reversed", type="category"),
        uirevision=uirevision,
        font=_FONT,
        margin=_MARGIN,
    ), height, {}, grid="", data=[heat])
