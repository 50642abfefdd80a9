"""Figure builders (app/ui/figures.py) and planar geometry (gamo/geometry.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui.figures import (  # noqa: E402
    class_colors,
    confusion_figure,
    figure_json,
    generated_indices_from_selection,
    metric_curves,
    recall_bars,
    toy_figure,
)
from gamo.geometry import convex_hull, hull_distance, periphery_stats  # noqa: E402

X_RANGE = (-3.0, 5.0)
Y_RANGE = (-2.5, 4.0)


@pytest.fixture()
def toy() -> dict:
    rng = np.random.default_rng(0)
    maj = rng.normal(0.0, 1.0, size=(60, 2))
    minr = rng.normal(2.5, 0.4, size=(12, 2))
    x = np.vstack([maj, minr])
    y = np.r_[np.zeros(60, int), np.ones(12, int)]
    xs = np.linspace(*X_RANGE, 17)
    ys = np.linspace(*Y_RANGE, 11)
    gx, gy = np.meshgrid(xs, ys)  # (11, 17)
    p1 = 1.0 / (1.0 + np.exp(-2.0 * (gx + gy - 3.0)))
    m_proba = np.stack([1.0 - p1, p1], axis=-1)  # (gy, gx, 2)
    w = rng.dirichlet(np.ones(12), size=5)
    gen = w @ minr  # (5, 2) convex combinations
    return dict(x=x, y=y, xs=xs, ys=ys, m_proba=m_proba, minr=minr, gen=gen)


def _decoded(o):
    """A figure's JSON with plotly.js typed arrays ({dtype, bdata, shape}) read back as lists."""
    import base64

    if isinstance(o, dict):
        if set(o) >= {"dtype", "bdata"}:
            a = np.frombuffer(base64.b64decode(o["bdata"]), dtype=np.dtype(o["dtype"]))
            if "shape" in o:
                a = a.reshape([int(s) for s in o["shape"].split(",")])
            return a.tolist()
        return {k: _decoded(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_decoded(v) for v in o]
    return o


def _same(a, b, path: str) -> None:
    """Equal JSON values, numbers to float32 precision (NaN equals NaN and null)."""
    num = (int, float)
    if (a is None or isinstance(a, num)) and (b is None or isinstance(b, num)) and not \
            isinstance(a, bool) and not isinstance(b, bool):
        fa, fb = (float("nan") if v is None else float(v) for v in (a, b))
        assert (np.isnan(fa) and np.isnan(fb)) or np.isclose(fa, fb, rtol=1e-6, atol=1e-7), path
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: {sorted(set(a) ^ set(b))}"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _same(u, v, f"{path}[{i}]")
    else:
        assert a == b, path


def _by_meta(fig: go.Figure, meta: str) -> list:
    return [t for t in fig.data if t.meta == meta]


# --- palette -------------------------------------------------------------------------


def test_class_colors_consistent_and_distinct() -> None:
    c3, c12 = class_colors(3), class_colors(12)
    assert len(c3) == 3 and len(c12) == 12
    assert c12[:3] == c3  # a class keeps its colour whatever the number of classes
    assert len(set(c12)) == 12
    assert all(c.startswith("#") and len(c) == 7 for c in c12)
    assert class_colors(0) == []


# --- toy figure ----------------------------------------------------------------------


def test_toy_figure_minimal_has_fixed_ranges_and_uirevision(toy: dict) -> None:
    fig = toy_figure(toy["x"], toy["y"], x_range=X_RANGE, y_range=Y_RANGE, title="t")
    assert tuple(fig.layout.xaxis.range) == X_RANGE
    assert tuple(fig.layout.yaxis.range) == Y_RANGE
    assert fig.layout.xaxis.autorange is False and fig.layout.yaxis.autorange is False
    assert fig.layout.uirevision is not None
    names = [t.name for t in fig.data]
    assert names == ["class 0 (majority) real", "class 1 (minority) real"]
    assert len(fig.data[0].x) == 60 and len(fig.data[1].x) == 12
    fig.to_json()  # serialisable


def test_toy_figure_regions_boundary_and_d_contours(toy: dict) -> None:
    d_real = np.random.default_rng(1).uniform(size=toy["m_proba"].shape)
    fig = toy_figure(
        toy["x"],
        toy["y"],
        xs=toy["xs"],
        ys=toy["ys"],
        m_proba=toy["m_proba"],
        d_real=d_real,
        d_class=1,
        x_range=X_RANGE,
        y_range=Y_RANGE,
    )
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 1
    z = np.asarray(heat[0].z)
    assert z.shape == (len(toy["ys"]), len(toy["xs"]))  # (gy, gx)
    np.testing.assert_array_equal(z, np.argmax(toy["m_proba"], axis=2))
    assert heat[0].opacity < 0.5
    contours = [t for t in fig.data if t.type == "contour"]
    names = [t.name for t in contours]
    assert "M's decision boundary" in names
    assert any("D(x | class 1)" in n for n in names)
    d_trace = next(t for t in contours if "D(x | class 1)" in t.name)
    np.testing.assert_allclose(np.asarray(d_trace.z), d_real[..., 1], rtol=1e-6)
    # the K = 2 boundary is the P(class 1) = 0.5 level: margin z crosses 0 there
    b = next(t for t in contours if t.name == "M's decision boundary")
    np.testing.assert_allclose(np.asarray(b.z), toy["m_proba"][..., 1] - 0.5, atol=1e-6)
    assert b.contours.start == 0 and b.contours.end == 0


def test_toy_figure_multiclass_boundary(toy: dict) -> None:
    gx, gy = np.meshgrid(toy["xs"], toy["ys"])
    logits = np.stack([-gx, gx - 1.0, gy - 1.0], axis=-1)
    proba = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    fig = toy_figure(
        toy["x"], toy["y"], xs=toy["xs"], ys=toy["ys"], m_proba=proba,
        x_range=X_RANGE, y_range=Y_RANGE,
    )
    bounds = [t for t in fig.data if t.name == "M's decision boundary"]
    assert 2 <= len(bounds) <= 3
    assert sum(bool(t.showlegend) for t in bounds) == 1  # one legend entry


def test_toy_figure_mismatched_grid_raises(toy: dict) -> None:
    with pytest.raises(ValueError, match="m_proba"):
        toy_figure(
            toy["x"], toy["y"], xs=toy["xs"], ys=toy["ys"], m_proba=toy["m_proba"][:, :-1],
            x_range=X_RANGE, y_range=Y_RANGE,
        )
    with pytest.raises(ValueError, match="x_range"):
        toy_figure(toy["x"], toy["y"], x_range=(1.0, 1.0), y_range=Y_RANGE)


def test_toy_figure_generated_points_carry_row_index(toy: dict) -> None:
    gen = np.vstack([toy["gen"], toy["gen"][:2] + 0.1])
    gen_y = np.r_[np.ones(5, int), np.full(2, 2)]
    fig = toy_figure(
        toy["x"], toy["y"], gen_x=gen, gen_y=gen_y, hulls={1: convex_hull(toy["minr"])},
        x_range=X_RANGE, y_range=Y_RANGE,
    )
    gens = _by_meta(fig, "generated")
    assert [t.name for t in gens] == ["class 1 generated", "class 2 generated"]
    assert gens[0].marker.symbol in ("x", "cross")
    assert list(gens[0].customdata) == [0, 1, 2, 3, 4]
    assert list(gens[1].customdata) == [5, 6]
    np.testing.assert_allclose(gens[1].x, gen[5:, 0])
    assert gens[0].marker.color == class_colors(3)[1]
    hull = next(t for t in fig.data if t.name == "class 1 convex hull")
    assert hull.x[0] == hull.x[-1] and hull.y[0] == hull.y[-1]  # outline is closed


def test_toy_figure_parent_lines_width_follows_weight(toy: dict) -> None:
    k = 4
    parents = toy["minr"][:k]
    w = np.array([0.1, 0.4, 0.2, 0.3])
    fig = toy_figure(
        toy["x"], toy["y"], gen_x=toy["gen"], gen_y=np.ones(5, int),
        selected=3, parents_x=parents, parents_w=w, x_range=X_RANGE, y_range=Y_RANGE,
    )
    lines = _by_meta(fig, "parent-line")
    assert len(lines) == k
    widths = np.array([t.line.width for t in lines])
    order = np.argsort(w)
    assert np.all(np.diff(widths[order]) > 0)  # heavier parent, thicker line
    np.testing.assert_allclose(widths / widths.max(), w / w.max())  # proportional
    for t, p in zip(lines, parents):
        # each line joins a parent to the selected point
        np.testing.assert_allclose([t.x[0], t.y[0]], p)
        np.testing.assert_allclose([t.x[1], t.y[1]], toy["gen"][3])
    sel = _by_meta(fig, "selected")
    assert len(sel) == 1 and list(sel[0].customdata) == [3]
    assert len(_by_meta(fig, "parent-markers")[0].x) == k


def test_toy_figure_trails_fade_with_age(toy: dict) -> None:
    rng = np.random.default_rng(2)
    T, m = 7, 5
    trails = toy["gen"][None] + rng.normal(0, 0.1, size=(T, m, 2))
    fig = toy_figure(
        toy["x"], toy["y"], gen_x=toy["gen"], gen_y=np.ones(m, int), trails=trails,
        x_range=X_RANGE, y_range=Y_RANGE,
    )
    trail_traces = [t for t in fig.data if t.legendgroup == "trails"]
    assert trail_traces
    assert sum(bool(t.showlegend) for t in trail_traces) == 1
    entry = fig.data[-2]                  # an entry just before the generated points
    assert entry.showlegend and list(entry.x) == [None] and fig.data[-1].meta == "generated"
    dots = next(t for t in trail_traces if t.mode == "markers")
    opac = np.asarray(dots.marker.opacity)
    assert len(opac) == (T - 1) * m
    assert opac[0] < opac[-1]  # oldest most transparent
    line_alphas = [float(t.line.color.rsplit(",", 1)[1].rstrip(")")) for t in trail_traces
                   if t.mode == "lines" and not t.showlegend]
    assert line_alphas == sorted(line_alphas) and line_alphas[0] < line_alphas[-1]
    # a list of T (m, 2) arrays is accepted too
    fig2 = toy_figure(
        toy["x"], toy["y"], gen_x=toy["gen"], gen_y=np.ones(m, int), trails=list(trails),
        x_range=X_RANGE, y_range=Y_RANGE,
    )
    assert len(fig2.data) == len(fig.data)


def test_generated_indices_from_selection() -> None:
    event = {
        "selection": {
            "points": [
                {"curve_number": 0, "point_index": 3},  # a real point: no customdata
                {"curve_number": 4, "customdata": 7},
                {"curve_number": 4, "customdata": [2]},
                {"curve_number": 4, "customdata": 7},
            ]
        }
    }
    assert generated_indices_from_selection(event) == [7, 2]
    assert generated_indices_from_selection(None) == []
    assert generated_indices_from_selection({"selection": {"points": []}}) == []


# --- metric figures ------------------------------------------------------------------


def test_metric_curves() -> None:
    steps = np.arange(0, 50, 10)
    series = {"ACSA": np.linspace(0.5, 0.9, 5), "class 1": np.r_[np.nan, 0.1, 0.2, 0.3, 0.4]}
    fig = metric_curves(steps, series, "Test scores", y_range=(0.0, 1.0))
    assert [t.name for t in fig.data] == ["ACSA", "class 1"]
    assert tuple(fig.layout.yaxis.range) == (0.0, 1.0)
    assert fig.data[1].line.color == class_colors(2)[1]
    assert fig.layout.uirevision
    np.testing.assert_array_equal(fig.data[0].x, steps)
    with pytest.raises(ValueError):
        metric_curves(steps, {"bad": np.ones(3)}, "x")


def test_recall_bars_show_counts() -> None:
    fig = recall_bars(np.array([0.98, 0.4, np.nan]), ["c0", "c1", "c2"], counts=[4000, 60, 40])
    bar = fig.data[0]
    assert list(bar.y) == [0.98, 0.4, 0.0]
    assert list(bar.text) == ["0.98", "0.40", "n/a"]
    assert "n = 4000" in bar.x[0] and "n = 40" in bar.x[2]
    assert tuple(fig.layout.yaxis.range) == (0.0, 1.1)


def test_confusion_figure_row_normalised() -> None:
    cm = np.array([[8, 2, 0], [5, 5, 0], [0, 0, 0]])
    fig = confusion_figure(cm, ["a", "b", "c"])
    z = np.asarray(fig.data[0].z)
    np.testing.assert_allclose(z, [[0.8, 0.2, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    assert list(fig.data[0].text[0]) == ["8", "2", "0"]
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1
    with pytest.raises(ValueError):
        confusion_figure(cm, ["a", "b"])


# --- geometry ------------------------------------------------------------------------


def test_convex_hull_of_square_points_is_its_corners() -> None:
    g = np.linspace(0.0, 1.0, 5)
    pts = np.array([(a, b) for a in g for b in g])  # grid incl. edge midpoints
    hull = convex_hull(pts)
    assert hull.shape == (4, 2)
    assert {tuple(p) for p in hull} == {(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)}
    # counter-clockwise: positive signed area
    x, y = hull[:, 0], hull[:, 1]
    assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) == pytest.approx(1.0)


def test_convex_hull_degenerate_inputs() -> None:
    assert convex_hull(np.empty((0, 2))).shape == (0, 2)
    assert convex_hull(np.array([[1.0, 2.0], [1.0, 2.0]])).shape == (1, 2)
    two = convex_hull(np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert two.shape == (2, 2)
    line = convex_hull(np.array([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0], [3.0, 3.0]]))
    assert {tuple(p) for p in line} == {(0.0, 0.0), (3.0, 3.0)}


def test_hull_distance_signs_and_values() -> None:
    square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    pts = np.array(
        [
            [1.0, 1.0],  # centre: 1 from every edge
            [2.0, 1.0],  # on the right edge
            [0.5, 1.0],  # inside, 0.5 from the left edge
            [3.0, 1.0],  # outside, 1 right of the right edge
            [3.0, 3.0],  # outside, sqrt(2) from the corner
        ]
    )
    d = hull_distance(pts, square)
    np.testing.assert_allclose(d, [1.0, 0.0, 0.5, -1.0, -np.sqrt(2.0)], atol=1e-12)
    # a closed polygon (first vertex repeated) and clockwise order give the same answer
    np.testing.assert_allclose(hull_distance(pts, np.vstack([square, square[:1]])), d)
    np.testing.assert_allclose(hull_distance(pts, square[::-1]), d)
    # a segment has no inside
    seg = hull_distance(np.array([[1.0, 1.0], [1.0, 0.0]]), np.array([[0.0, 0.0], [2.0, 0.0]]))
    np.testing.assert_allclose(seg, [-1.0, 0.0])


def test_periphery_stats_hand_made() -> None:
    square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    x_real = np.vstack([square, [[1.0, 1.0]], [[10.0, 10.0], [11.0, 10.0], [10.0, 11.0]]])
    y_real = np.r_[np.ones(5, int), np.zeros(3, int)]
    gen_x = np.array([[1.0, 1.0], [1.0, 0.5], [2.0, 1.0], [3.0, 1.0]])
    gen_y = np.ones(4, int)
    s = periphery_stats(gen_x, gen_y, x_real, y_real)
    assert set(s) == {1}
    st = s[1]
    assert st["n"] == 4
    # signed distances: 1, 0.5, 0 (on the edge counts as inside), -1
    assert st["fraction_inside"] == pytest.approx(0.75)
    assert st["mean_distance"] == pytest.approx((1.0 + 0.5 + 0.0 + 1.0) / 4)
    assert st["mean_signed_distance"] == pytest.approx((1.0 + 0.5 + 0.0 - 1.0) / 4)
    # real class-1 points: 4 corners at 0, centre at 1
    assert st["real_mean_distance"] == pytest.approx(0.2)


def test_periphery_stats_convex_combinations_are_inside() -> None:
    rng = np.random.default_rng(3)
    real = rng.normal(size=(30, 2)).astype(np.float32)
    w = rng.dirichlet(np.full(30, 0.05), size=200).astype(np.float32)  # sparse: near vertices
    gen = w @ real
    s = periphery_stats(gen, np.ones(200, int), real, np.ones(30, int))
    assert s[1]["fraction_inside"] == 1.0
    assert s[1]["mean_distance"] >= 0.0


def test_live_plot_serves_its_page_with_plotly_js(tmp_path, monkeypatch):
    """The live chart component's folder: index.html beside the plotly package's plotly.js."""
    import plotly

    from app.ui import live_plot

    monkeypatch.setenv("GAMO_CACHE_DIR", str(tmp_path))
    d = live_plot.served_dir()
    assert d.parent == tmp_path
    assert (d / "index.html").read_bytes() == (live_plot.FRONTEND / "index.html").read_bytes()
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert (d / "plotly.min.js").stat().st_size == js.stat().st_size
    html = (d / "index.html").read_text()
    assert '<script src="plotly.min.js">' in html and "Plotly.react" in html
    assert live_plot.served_dir() == d                       # made once, then reused
    assert len(list(tmp_path.iterdir())) == 1


def _planted(tmp_path: Path, monkeypatch, uid: int):
    """A shared temporary folder where ``gamo-lab-<uid>/live-plot-<hash>/index.html`` was made
    before the app (by someone else), holding a planted page; returns (live_plot, its folder)."""
    import os
    import tempfile

    from app.ui import live_plot

    monkeypatch.setenv("GAMO_CACHE_DIR", str(tmp_path / "probe"))
    name = live_plot.served_dir().name                       # the hashed folder name
    monkeypatch.delenv("GAMO_CACHE_DIR")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "shared"))
    monkeypatch.setattr(live_plot, "_fallback", None)
    planted = tmp_path / "shared" / f"gamo-lab-{uid}" / name
    planted.mkdir(parents=True)
    (planted / "index.html").write_text("<script>steal()</script>")
    (planted / "plotly.min.js").write_text("steal()")
    os.chmod(planted.parent, 0o700)
    return live_plot, planted


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX owners and modes")
@pytest.mark.parametrize("how", ["foreign owner", "writable by others", "symlink"])
def test_live_plot_refuses_a_folder_it_does_not_own(tmp_path, monkeypatch, how):
    """On a shared host another user may make the predictable gamo-lab-<uid> folder first and plant
    the JavaScript the app serves: such a folder is never used, a fresh private one is."""
    import os
    import stat

    uid = plays = os.getuid()
    if how == "foreign owner":        # the folder is ours, so this process plays another user
        live_plot, planted = _planted(tmp_path, monkeypatch, uid + 1)
        plays = uid + 1
        monkeypatch.setattr(os, "getuid", lambda: plays)
    else:
        live_plot, planted = _planted(tmp_path, monkeypatch, uid)
        if how == "writable by others":
            os.chmod(planted.parent, 0o777)
        else:                           # gamo-lab-<uid> is a link to the planted folder elsewhere
            moved = tmp_path / "elsewhere"
            planted.parent.rename(moved)
            planted.parent.symlink_to(moved, target_is_directory=True)
    with pytest.warns(RuntimeWarning, match="not safe to serve"):
        d = live_plot.served_dir()
    assert planted.parent.resolve() not in d.resolve().parents
    assert (d / "index.html").read_bytes() == (live_plot.FRONTEND / "index.html").read_bytes()
    assert stat.S_IMODE(os.stat(d.parent).st_mode) == 0o700
    plays = uid                         # the fresh folder is this process's own
    assert live_plot.served_dir() == d                       # the private folder is reused


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX owners and modes")
def test_live_plot_cache_dir_is_made_private_and_a_shared_one_is_an_error(tmp_path, monkeypatch):
    import os
    import stat

    from app.ui import live_plot

    monkeypatch.setenv("GAMO_CACHE_DIR", str(tmp_path / "cache"))
    d = live_plot.served_dir()
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    os.chmod(tmp_path / "cache", 0o777)
    with pytest.raises(RuntimeError, match=r"GAMO_CACHE_DIR=.*writable by other users.*only you can write"):
        live_plot.served_dir()
    os.chmod(tmp_path / "cache", 0o700)
    os.chmod(d, 0o777)                                        # the served folder itself
    with pytest.raises(RuntimeError, match="not safe to serve"):
        live_plot.served_dir()


def test_figure_json_matches_plotly_encoding(toy: dict) -> None:
    """The live page encodes the toy figure's plain dicts itself; plotly.js must read the same
    figure as from Plotly's own go.Figure -> to_json."""
    import json

    import plotly.io as pio

    rng = np.random.default_rng(1)
    trails = rng.normal(2.5, 0.3, size=(4, 5, 2))
    kw = dict(xs=toy["xs"], ys=toy["ys"], m_proba=toy["m_proba"], d_real=toy["m_proba"], d_class=1,
              hulls={1: convex_hull(toy["minr"])}, gen_x=toy["gen"], gen_y=np.ones(5, np.int64),
              trails=trails, selected=2, parents_x=toy["minr"][:3], parents_w=np.array([0.5, 0.3, 0.2]),
              x_range=X_RANGE, y_range=Y_RANGE, title="t")
    spec = toy_figure(toy["x"], toy["y"], as_dict=True, **kw)
    assert isinstance(spec, dict) and {t["type"] for t in spec["data"]} == {"heatmap", "contour", "scatter"}
    ours = _decoded(json.loads(figure_json(spec)))
    theirs = _decoded(json.loads(pio.to_json(toy_figure(toy["x"], toy["y"], **kw))))
    _same(ours["data"], theirs["data"], "data")
    for key in ("xaxis", "yaxis", "uirevision", "height", "title", "legend"):
        _same(ours["layout"][key], theirs["layout"][key], key)
    # int64 arrays get plotly.js's smaller integer types; NaN outside arrays becomes null
    out = json.loads(figure_json({"data": [{"type": "scatter", "customdata": np.arange(3, dtype=np.int64),
                                            "x": [1.0, float("nan")], "y": np.array([1.0, np.nan])}]}))
    tr = out["data"][0]
    assert tr["customdata"]["dtype"] == "i1" and _decoded(tr["customdata"]) == [0, 1, 2]
    assert tr["x"] == [1.0, None] and np.isnan(_decoded(tr["y"])[1])
    with pytest.raises(TypeError, match="not JSON serializable"):
        figure_json({"data": [object()]})


def test_unvalidated_figures_give_axis_titles_as_objects(toy: dict) -> None:
    """plotly.js 3 draws no axis title given as a bare string, and figures built with
    validate=False (the live pages) reach it as written."""
    import json

    import plotly.io as pio

    curves = json.loads(pio.to_json(metric_curves(np.arange(3), {"a": [0.1, 0.2, 0.3]}, "t",
                                                  x_title="step", validate=False), validate=False))
    layout = curves["layout"]
    assert isinstance(layout["xaxis"]["title"], dict) and layout["xaxis"]["title"]["text"] == "step"
    assert isinstance(layout["yaxis"]["title"], dict)
    spec = json.loads(figure_json(toy_figure(toy["x"], toy["y"], x_range=X_RANGE, y_range=Y_RANGE,
                                             title="t", as_dict=True)))
    assert isinstance(spec["layout"]["title"], dict) and spec["layout"]["title"]["text"] == "t"
