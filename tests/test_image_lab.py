"""The Image Lab page (AppTest) and its pure helpers (app/ui/imagelab.py, app/ui/imagelab_runs.py)."""
from __future__ import annotations

import dataclasses
import io
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from conftest import live_plot_args, no_exception  # noqa: E402  (tests/ is on sys.path under pytest)
from app.ui import imagelab as il  # noqa: E402
from app.ui.imagelab_runs import MapState, nearest_rows  # noqa: E402
from gamo.errors import DataError  # noqa: E402
from gamo.snapshot import Generated, Metrics, Snapshot  # noqa: E402

PAGE = ROOT / "app" / "pages" / "2_Image_Lab.py"
STATUS = re.compile(r'id="imagelab-status-(\d)" data-step="(\d+)" data-digest="(\w+)" data-state="(\w+)"'
                    r'.*?data-map-step="(-?\d+)" data-keyframe="(-?\d+)" data-map="(\w+)"')


# --------------------------------------------------------------------------------------
# AppTest helpers
# --------------------------------------------------------------------------------------
@pytest.fixture()
def app(monkeypatch, tmp_path, page_app):
    """``app(**query)``: a fresh page session (its runs and background workers are stopped
    afterwards, see ``page_app`` in conftest.py); datasets are looked for in an empty folder,
    uploads are kept in tmp, UMAP is not warmed up."""
    monkeypatch.setenv("GAMO_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("GAMO_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("GAMO_WARM_UP", "0")
    return lambda **query: page_app(PAGE, query, runs_key="il_runs", timeout=90,
                                    executors=("il_exec_proj", "il_exec_audit"))


def status(at: AppTest) -> list[dict]:
    out = []
    for m in at.markdown:
        hit = STATUS.search(m.value)
        if hit:
            out.append(dict(run=int(hit.group(1)), step=int(hit.group(2)), digest=hit.group(3),
                            state=hit.group(4), map_step=int(hit.group(5)), keyframe=int(hit.group(6)),
                            map=hit.group(7)))
    return out


def hovers(at: AppTest) -> list[dict]:
    """The hover images passed with the page's maps (live_plot(hover=...))."""
    return [a["hover"] for a in live_plot_args(at) if "hover" in a]


def maps(at: AppTest) -> list[dict]:
    """The figures of the page's maps (the live charts with real points)."""
    specs = [json.loads(a["spec"]) for a in live_plot_args(at)]
    return [sp for sp in specs if any(tr.get("meta") == "real" for tr in sp["data"])]


def _array(v) -> np.ndarray:
    """A figure's array (plotly.js typed arrays decoded)."""
    import base64

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def _xy(trace: dict) -> np.ndarray:
    return _array(trace["x"])


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------
def test_default_digits_run_renders_and_step_moves_the_map(app) -> None:
    at = app().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Image Lab"]
    assert not at.error
    (s0,) = status(at)
    assert s0["step"] == 0 and s0["state"] == "paused" and s0["map_step"] == 0 and s0["map"] == "pca"
    # the settings are in the URL
    assert at.query_params["data"] == "digits" and at.query_params["method"] == "gamo"
    # the map: real points of the 10 classes and the generated points of the 9 minority classes
    (m0,) = maps(at)
    real = [t for t in m0["data"] if t.get("meta") == "real"]
    gen = [t for t in m0["data"] if t.get("meta") == "generated"]
    assert len(real) == 10 and len(gen) == 9
    assert all(_array(t["customdata"]).max() < 0 for t in real)   # real rows: -(row + 1)
    # the class sizes are drawn before anything trains, the audit panel is there
    assert any("Training points per class" in el.proto.spec for el in at.get("plotly_chart"))
    assert any("Audit of GAMO's" in m.value and "pixels" in m.value for m in at.markdown)

    # hovering: an image for every real point shown and for every generated point
    (h0,) = hovers(at)
    shown_rows = sorted(int(-v - 1) for t in real for v in _array(t["customdata"]))
    assert sorted(h0["real"]["rows"]) == shown_rows
    assert all(u.startswith("data:image/png;base64,") for u in h0["real"]["uris"])
    n_gen = sum(len(_array(t["customdata"])) for t in gen)
    assert len(h0["gen"]) == n_gen and all(g[0].startswith("data:image/png") for g in h0["gen"])
    assert h0["gen"][0][1].startswith("generated #0 (class ")

    at.button(key="il_step").click().run()
    no_exception(at)
    (s1,) = status(at)
    assert s1["step"] == 1 and s1["map_step"] == 1 and s1["digest"] != s0["digest"]
    (m1,) = maps(at)
    g0 = np.concatenate([_xy(t) for t in m0["data"] if t.get("meta") == "generated"])
    g1 = np.concatenate([_xy(t) for t in m1["data"] if t.get("meta") == "generated"])
    assert g0.shape == g1.shape and not np.allclose(g0, g1)            # the generated points moved
    r0 = np.concatenate([_xy(t) for t in m0["data"] if t.get("meta") == "real"])
    r1 = np.concatenate([_xy(t) for t in m1["data"] if t.get("meta") == "real"])
    np.testing.assert_array_equal(r0, r1)                              # ... and the layout did not

    at.button(key="il_reset").click().run()
    no_exception(at)
    (s2,) = status(at)
    assert s2["step"] == 0 and s2["digest"] == s0["digest"]            # same seed, same start


def test_audit_panel_for_a_selected_generated_point(app) -> None:
    at = app().run()
    run_id = at.session_state["il_runs"][0].run_id
    at.session_state["il_sel"] = (0, "gen", 20)       # what a click on generated point #20 stores
    at.run()
    no_exception(at)
    assert at.selectbox(key=f"il_pick_{run_id}").value == 20
    text = " ".join(m.value for m in at.markdown)
    assert "Convex parents" in text and "Nearest real neighbours" in text
    assert "DCR (closest real)" in text and "effective parents" in text and "DCR ratio" in text
    # the sample's 5 nearest real images are measured once, not at every redraw of the panel
    near = at.session_state["il_near5"]
    assert len(near[1]) == 5 and list(near[2]) == sorted(near[2])
    at.run()
    assert at.session_state["il_near5"] is near
    assert "Flags per class" in text
    # the per-class flag counts, one row per minority class, and the exports
    (table,) = at.dataframe
    assert len(table.value) == 9 and "near-duplicate" in table.value.columns
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("NPZ" in x for x in labels) and any("PNG" in x for x in labels)
    # a real point clicked on the map: its image is shown, labelled as a real point
    at.session_state["il_sel"] = (0, "real", 3)
    at.run()
    no_exception(at)
    assert any("Selected on the map: a real point" in m.value for m in at.markdown)


def test_missing_dataset_says_how_to_get_it(app) -> None:
    at = app(data="mnist").run()
    no_exception(at)
    text = " ".join(e.value for e in at.error)
    assert "MNIST is not available" in text and "IDX files" in text and "Traceback" not in text
    assert not status(at) and not maps(at)
    # the sidebar still works: back to digits trains again
    at.selectbox(key="il_dataset").set_value("digits").run()
    no_exception(at)
    assert not at.error and status(at)[0]["step"] == 0


def test_bad_upload_gives_one_message_and_a_good_one_trains(app) -> None:
    at = app(data="upload").run()
    no_exception(at)
    assert any("Upload a table" in e.value for e in at.error)
    at.get("file_uploader")[0].set_value(("broken.csv", b"a,b\n1,2\n3", "text/csv")).run()
    no_exception(at)
    errs = [e.value for e in at.error]
    assert len(errs) == 1 and "cannot be used" in errs[0] and "label" in errs[0], errs
    # a table of 8x8 'images' with a label column: trains, and its rows are drawn as images
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 16, (150, 64)).round()
    y = np.repeat([0, 1, 2], 50)
    buf = io.BytesIO()
    np.savez(buf, x=x, label=y)
    at.get("file_uploader")[0].set_value(("mine.npz", buf.getvalue(), "application/octet-stream")).run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    (s,) = status(at)
    assert s["step"] == 0 and s["map_step"] == 0


def test_compare_mode_trains_two_methods_on_the_same_data(app) -> None:
    at = app(compare="baseline", profile="step", ir="5", minority="3").run()
    no_exception(at)
    runs = status(at)
    assert [r["run"] for r in runs] == [0, 1]
    at.button(key="il_step").click().run()
    assert [r["step"] for r in status(at)] == [1, 1]
    # Baseline CN generates nothing: its map has real points only; GAMO's has 3 minority classes
    a, b = maps(at)
    assert sum(t.get("meta") == "generated" for t in a["data"]) == 3
    assert not any(t.get("meta") == "generated" for t in b["data"])


def test_profile_editor_and_url(app) -> None:
    at = app(profile="counts", counts="60,50,40,30,20,10,10,10,10,10", map="pca", seed="3").run()
    no_exception(at)
    assert at.radio(key="il_profile").value == "counts"
    assert at.text_input(key="il_counts").value == "60,50,40,30,20,10,10,10,10,10"
    run = at.session_state["il_runs"][0]
    assert list(run.data.class_counts) == [60, 50, 40, 30, 20, 10, 10, 10, 10, 10]
    # too many points for a class: one clear message, nothing trains
    at.text_input(key="il_counts").set_value("600,50,40,30,20,10,10,10,10,10").run()
    no_exception(at)
    assert any("does not fit" in e.value and "available" in e.value for e in at.error)
    assert not status(at)
    # a bad URL value falls back to its default with a warning
    at2 = app(method="nope", data="digits").run()
    assert any("method" in w.value for w in at2.warning)
    assert at2.selectbox(key="il_method").value == "gamo"


def test_umap_map_shows_pca_while_its_layout_is_computed(app, monkeypatch) -> None:
    """UMAP's first layout comes from the background: meanwhile the PCA map is on screen."""
    import gamo.projection as gp

    class SlowMap(gp.Projector):          # stands in for UMAP (no numba compilation in a test)
        def __init__(self, method: str = "pca", **kw) -> None:
            super().__init__("pca", **kw)
            self.method_shown = method

        def fit(self, real_x):
            if self.method_shown == "umap":       # PCA's own fits take milliseconds
                time.sleep(1.0)
            return super().fit(real_x)

    made = []
    monkeypatch.setattr(gp, "Projector", lambda method="pca", **kw: made.append(method) or SlowMap(method, **kw))
    monkeypatch.setattr(gp, "warm_up", lambda seed=0: 0.0)
    monkeypatch.setattr(gp, "is_warm", lambda: True)
    at = app(map="umap").run()
    no_exception(at)
    (s,) = status(at)
    assert s["map"] == "pca" and s["map_step"] == 0                   # the PCA map meanwhile
    assert any("UMAP layout being computed" in c.value for c in at.caption)
    ms = at.session_state["il_maps"][(at.session_state["il_runs"][0].run_id, "umap")]
    assert ms.wait(20.0) and ms.ready
    at.run()                      # the layout is there; the points are placed in the background
    (s,) = status(at)
    assert s["map"] == "umap" and "umap" in made
    assert ms.wait(20.0)
    at.run()
    (s,) = status(at)
    assert s["map"] == "umap" and s["map_step"] == 0


# --------------------------------------------------------------------------------------
# settings, data and figures (no Streamlit)
# --------------------------------------------------------------------------------------
def test_settings_round_trip_through_the_url() -> None:
    s = dataclasses.replace(il.DEFAULTS, dataset="fashion-mnist", profile="step", ir=20.0, minority=4,
                            family="conv", method="gamo_no_d", compare="smote", projection="umap",
                            counts=(5, 4), low_pct=2.0, high_pct=90.0, trails=False, seed=9)
    back, warnings = il.settings_from_query(il.settings_to_query(s))
    assert back == s and warnings == []
    assert il.settings_from_query({}) == (il.DEFAULTS, [])
    bad, warnings = il.settings_from_query({"data": "imagenet", "ir": "0.5", "map": "tsne", "low": "50",
                                            "high": "40", "data_toy": "x"})
    assert bad.dataset == "digits" and bad.ir == il.DEFAULTS.ir and bad.projection == "pca"
    assert bad.low_pct < bad.high_pct and len(warnings) == 4
    # live settings do not restart the runs, the data does
    assert il.reset_key(dataclasses.replace(s, speed=100, projection="pca")) == il.reset_key(s)
    assert il.reset_key(dataclasses.replace(s, ir=5.0)) != il.reset_key(s)


def test_profiles_and_class_sizes() -> None:
    avail = [130] * 10
    names = tuple(str(i) for i in range(10))
    s = il.DEFAULTS
    spec, sizes = il.class_sizes(s, avail, names, "digits")
    assert spec == "exp:ir=10" and sizes[0] == 130 and sizes[-1] == 13
    # the paper's counts do not fit digits: scaled down to what the data has
    spec, sizes = il.class_sizes(dataclasses.replace(s, profile="paper"), avail, names, "digits")
    assert spec == "paper:max=130" and sizes[0] == 130 and sizes[1] == 65
    # ... and fit Fashion-MNIST as they are
    spec, sizes = il.class_sizes(dataclasses.replace(s, profile="paper"), [6000] * 10, names, "fashion-mnist")
    assert spec == "paper" and sizes == [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]
    spec, sizes = il.class_sizes(dataclasses.replace(s, profile="step", ir=4.0, minority=3, n_max=100),
                                 avail, names, "digits")
    assert sizes == [100] * 7 + [25] * 3
    with pytest.raises(DataError, match="give 10 counts"):
        il.class_sizes(dataclasses.replace(s, profile="counts", counts=(5, 4)), avail, names, "digits")
    with pytest.raises(DataError, match="available"):
        il.class_sizes(dataclasses.replace(s, profile="counts", counts=(500,) + (5,) * 9), avail, names, "digits")
    with pytest.raises(ValueError):
        il.parse_counts("10,x")


def test_dataset_status_and_uploads(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GAMO_FASHION_MNIST_DIR", str(tmp_path / "nope"))
    assert il.dataset_status("digits", str(tmp_path)) == (True, "")
    for name in ("mnist", "cifar10", "svhn", "fashion-mnist"):
        ok, how = il.dataset_status(name, str(tmp_path))
        assert not ok and str(tmp_path) in how and "download" in how
    (tmp_path / "MNIST").mkdir()
    assert il.dataset_status("mnist", str(tmp_path))[0]
    with pytest.raises(DataError, match="not a CSV or NPZ"):
        il.save_upload("x.txt", b"1,2", "label", str(tmp_path))
    with pytest.raises(DataError, match="no label column"):
        il.save_upload("x.csv", b"a,b\n1,2\n3,4\n", "label", str(tmp_path))
    raw = b"f1,f2,label\n" + b"".join(f"{i},{i % 3},{i % 2}\n".encode() for i in range(20))
    path, uid = il.save_upload("ok.csv", raw, "label", str(tmp_path))
    assert Path(path).read_bytes() == raw and il.save_upload("ok.csv", raw, "label", str(tmp_path)) == (path, uid)


def test_images_and_grid() -> None:
    x = np.linspace(-1, 1, 3 * 64, dtype=np.float32).reshape(3, 64)
    imgs = il.as_images(x, (1, 8, 8))
    assert imgs.shape == (3, 1, 8, 8)
    assert il.as_images(x, None).shape == (3, 1, 8, 8)          # a square table row is an image
    assert il.as_images(np.zeros((2, 5)), None) is None
    grid = il.tile_grid(imgs, 2, scale=2, gap=1)
    assert grid.size == (2 * 17 + 1, 2 * 17 + 1)
    px = np.asarray(il.to_pil(imgs[0], (-1, 1)))
    assert px[0, 0] == 0 and px[-1, -1] == round((x[0, 63] + 1) / 2 * 255)   # -1 is black
    rgb = il.to_pil(np.ones((3, 4, 4), np.float32), (-1, 1), scale=3)
    assert rgb.size == (12, 12) and rgb.mode == "RGB"


def test_map_figure_and_clicks() -> None:
    real = np.arange(20, dtype=np.float32).reshape(10, 2)
    ry = np.array([0] * 6 + [1] * 4)
    rows = np.arange(10) + 100
    gen = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], np.float32)
    gy = np.array([1, 1, 1])
    trails = np.stack([gen - 1, gen - 0.5, gen])
    fig = il.map_figure(real, ry, rows, ("a", "b"), gen_xy=gen, gen_y=gy, gen_text=["g0", "g1", "g2"],
                        trails=trails, selected=("gen", 1))
    metas = [t.get("meta") for t in fig["data"]]
    assert metas == ["real", "real", "trail", "generated", "selected"]
    assert list(fig["data"][0]["customdata"]) == [-101, -102, -103, -104, -105, -106]
    assert list(fig["data"][3]["customdata"]) == [0, 1, 2] and fig["data"][3]["text"][1] == "g1"
    assert fig["data"][4]["x"] == [2.0]
    # the trail: each point's T positions then a gap
    assert len(fig["data"][2]["x"]) == 3 * (3 + 1) and np.isnan(fig["data"][2]["x"][3])
    assert il.picked({"selection": {"points": [{"customdata": -104}]}}) == ("real", 103)
    assert il.picked({"selection": {"points": [{"customdata": -104}, {"customdata": 2}]}}) == ("gen", 2)
    assert il.picked({"selection": {"points": [{"customdata": None}]}}) is None
    assert il.picked(None) is None
    assert il.map_digest(1, gen, 0) != il.map_digest(1, gen + 0.01, 0) != il.map_digest(2, gen + 0.01, 0)
    # compiled to JSON by the same encoder as the Toy Lab's view
    from app.ui.figures import figure_json

    assert json.loads(figure_json(fig))["data"][3]["name"] == "generated for 1"


def test_hover_images_of_points() -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(50, 1, 28, 28)).astype(np.float32)
    uri = il.png_uri(images[0])
    import base64

    raw = base64.b64decode(uri.split(",", 1)[1])
    assert uri.startswith("data:image/png;base64,") and len(raw) < 1500
    assert Image.open(io.BytesIO(raw)).size == (28, 28)
    # a large real set: a seeded subset of the cap, the same at every call
    rows = np.arange(5000) * 2
    sub = il.hover_rows(rows, seed=3, cap=3000)
    assert len(sub) == 3000 and np.isin(sub, rows).all() and (np.diff(sub) > 0).all()
    np.testing.assert_array_equal(sub, il.hover_rows(rows, seed=3, cap=3000))
    np.testing.assert_array_equal(il.hover_rows(rows[:10], seed=3, cap=3000), rows[:10])
    # conv: the samples are features; each shows its strongest convex parent, labelled as such
    g = Generated(x=rng.normal(size=(3, 6)).astype(np.float32), y=np.array([1, 1, 2]),
                  parent_idx=np.array([[40, 2], [7, 1], [12, 3]]), parent_w=np.full((3, 2), 0.5),
                  m_pred=np.ones(3, np.int64))
    out = il.hover_gen("conv", g, (1, 28, 28), images, (-1.0, 1.0))
    assert [lab for _, lab in out] == ["strongest parent of generated #0 (class 1): real #40",
                                       "strongest parent of generated #1 (class 1): real #7",
                                       "strongest parent of generated #2 (class 2): real #12"]
    assert out[0][0] == il.png_uri(images[40])
    # conv without parents: the nearest real image in F's features, labelled as such
    g2 = dataclasses.replace(g, parent_idx=None, parent_w=None)
    feats = rng.normal(size=(50, 6)).astype(np.float32)
    out = il.hover_gen("conv", g2, (1, 28, 28), images, (-1.0, 1.0), real_feats=feats, nearest=nearest_rows)
    assert all(lab.startswith("nearest real image of generated #") for _, lab in out)
    # dense: the sample itself
    g3 = dataclasses.replace(g, x=images[:3].reshape(3, -1), parent_idx=None, parent_w=None)
    out = il.hover_gen("dense", g3, (1, 28, 28), images, (-1.0, 1.0))
    assert out[2] == [il.png_uri(images[2]), "generated #2 (class 2)"]


def _snap(step: int, gen_x: np.ndarray, train: bool) -> Snapshot:
    m = Metrics(acsa=0.5, gm=0.5, accuracy=0.5, recall=(0.5, 0.5), confusion=np.eye(2))
    g = Generated(x=gen_x.astype(np.float32), y=np.ones(len(gen_x), np.int64), parent_idx=None,
                  parent_w=None, m_pred=np.ones(len(gen_x), np.int64))
    return Snapshot(step=step, epoch=0.0, losses={}, test=m, train=m if train else None, generated=g,
                    grid=None, elapsed=0.0)


class _FakeHandle:
    """Answers the map's feature query with features that drift from keyframe to keyframe."""

    def __init__(self, feats: np.ndarray) -> None:
        self.feats, self.calls = feats, 0

    def query(self, fn, timeout=None):
        self.calls += 1
        return 10 * self.calls, self.feats + 0.05 * self.calls * np.sin(self.feats)


class _FakeRun:
    def __init__(self, handle) -> None:
        self.handle = handle


def test_conv_map_refits_at_keyframes_aligned_and_places_without_refitting() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from gamo.projection import procrustes_disparity

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(200, 6)).astype(np.float32) * np.array([5, 3, 1, 1, 1, 1], np.float32)
    handle = _FakeHandle(feats)
    ms = MapState("pca", seed=0, family="conv")
    ex = ThreadPoolExecutor(max_workers=1)
    try:
        snaps = [_snap(0, feats[:4] * 0.5, train=True)]
        ms.update(_FakeRun(handle), snaps, ex)
        assert ms.wait(10) and ms.ready and handle.calls == 1
        first = ms.layout()
        assert first[2] == 0 and first[3] == 10                      # keyframe 0, read at "step 10"
        # between keyframes: generated points placed on the same map, no new fit
        snaps.append(_snap(5, feats[:4] * 0.6, train=False))
        ms.update(_FakeRun(handle), snaps, ex)
        ms.update(_FakeRun(handle), snaps, ex)
        assert handle.calls == 1 and ms.projector.n_fits == 1
        step, xy, trails = ms.shown(snaps)
        assert step == 5 and xy.shape == (4, 2) and trails.shape == (2, 4, 2)
        # an epoch end: the features are read again and the map refitted, aligned to the last one
        snaps.append(_snap(12, feats[:4] * 0.7, train=True))
        ms.update(_FakeRun(handle), snaps, ex)
        assert ms.wait(10)
        second = ms.layout()
        assert handle.calls == 2 and second[2] == 1 and second[3] == 20
        assert procrustes_disparity(first[0], second[0], rotate=False) < 0.05
    finally:
        ex.shutdown(wait=True)


class _StampedHandle:
    """Answers the map's feature query with (the step of F, F's features), slowly."""

    def __init__(self, feats: np.ndarray) -> None:
        self.feats, self.step, self.calls = feats, 0, 0

    def query(self, fn, timeout=None):
        self.calls += 1
        time.sleep(0.3)
        return self.step, self.feats + 0.05 * self.step * np.sin(self.feats)


def test_conv_map_keyframes_follow_the_features_the_generated_points_are_in() -> None:
    """GAMO conv: a keyframe when the generated points are combined in new features (G's phase
    starts on F's new features), none at the epoch end that follows; a snapshot of new features
    is placed only once their keyframe is in (meanwhile the map shows the last placed one)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    feats = rng.normal(size=(200, 6)).astype(np.float32) * np.array([5, 3, 1, 1, 1, 1], np.float32)
    handle = _StampedHandle(feats)
    ms = MapState("pca", seed=0, family="conv")
    run = _FakeRun(handle)
    ex = ThreadPoolExecutor(max_workers=1)

    def snap(step, fs, train=False):
        sn = _snap(step, feats[:4] * 0.5 + 0.01 * step, train=train)
        return dataclasses.replace(sn, generated=dataclasses.replace(sn.generated, features_step=fs))
    try:
        snaps = [snap(0, 0, train=True)]
        ms.update(run, snaps, ex)
        assert ms.wait(10) and ms.layout()[2:] == (0, 0)
        snaps.append(snap(10, 0))
        ms.update(run, snaps, ex)
        assert handle.calls == 1 and ms.shown(snaps)[0] == 10        # F's phase: same keyframe
        handle.step = 17                                              # G's phase on F's new features
        snaps.append(snap(20, 17))
        ms.update(run, snaps, ex)
        assert ms.fitting and ms.shown(snaps)[0] == 10                # not placed on the old layout
        assert ms.wait(10) and ms.layout()[2:] == (1, 17) and handle.calls == 2
        ms.update(run, snaps, ex)
        assert ms.shown(snaps)[0] == 20
        snaps.append(snap(30, 17, train=True))                        # the epoch end: F unchanged
        ms.update(run, snaps, ex)
        assert not ms.fitting and handle.calls == 2 and ms.shown(snaps)[0] == 30
    finally:
        ex.shutdown(wait=True)


def test_run_queries_read_the_features_of_the_last_frozen_phase(tiny_cfg, fake_images) -> None:
    """The map's and the audit's queries to a conv GAMO run in F's phase: the real points in the
    features the generated points are combined in (no pass of F over the training set), the
    audit's prepared real points reused while those stay the same."""
    from app.ui import queries
    from gamo.train import Trainer

    data = fake_images((1, 28, 28), [24, 12, 6])
    tr = Trainer(tiny_cfg("gamo", steps=12), data)
    m = tr.method
    for _ in range(4):
        tr.step()                                      # F's phase (3 iterations), then G's
    tr.step()
    for _ in range(2):
        tr.step()                                      # F's phase of the next epoch (steps 6, 7)
    assert m.phase == "fm" and m.features_step == 3
    passes = []
    full = m.features
    m.features = lambda x, *a, **k: passes.append(len(x)) or full(x, *a, **k)
    step, feats = queries.train_features(tr)
    assert step == 3 and np.array_equal(feats, m.last_features().numpy())
    _, a1 = queries.audit_fixed_noise(tr)
    _, a2 = queries.audit_fixed_noise(tr, low_pct=10.0)
    assert len(m.x_train) not in passes
    assert a1.space == "F's features" and np.array_equal(a1.x, m.generated().x)
    assert np.array_equal(a1.dcr, a2.dcr) and a2.low_pct == 10.0
    assert queries._REFERENCES[tr][0] is m.last_features()


def test_nearest_rows() -> None:
    x = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    assert list(nearest_rows(np.array([[9, 1], [1, 8], [0, 0]]), x)) == [1, 2, 0]


def test_flagged_npz_export() -> None:
    from gamo.audit import audit_points

    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 4)).astype(np.float32)
    ry = np.repeat([0, 1], 20)
    x = np.vstack([real[25], real[30] + 50.0, real[22] + 0.3])        # a copy, a far point, a fair one
    a = audit_points(x, [1, 1, 1], real, ry, proba=np.array([[0, 1], [0, 1], [1, 0]]))
    raw = il.flagged_npz(a, 7, real_images=real.reshape(40, 1, 2, 2))
    z = np.load(io.BytesIO(raw))
    assert int(z["step"]) == 7 and str(z["space"]) == a.space
    assert list(z["index"]) == list(np.flatnonzero(a.flagged))
    assert bool(z["near_duplicate"][0]) and 1 in list(z["index"])
    assert z["nearest_image"].shape == (len(z["index"]), 1, 2, 2)
    table = il.flag_table([{"class": 1, "n": 3, "near_duplicate": 1, "out_of_distribution": 1,
                            "closer_to_other": 0, "label_disputed": 1, "flagged": 3, "median_dcr_pct": 5.0,
                            "mean_eff_parents": None}], ("a", "b"))
    assert table.loc[0, "class"] == "1: b" and table.loc[0, "any flag"] == 3
