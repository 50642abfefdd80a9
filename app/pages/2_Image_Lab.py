"""Train GAMO (or any of the engine's methods) on real images live: scikit-learn digits in seconds, Fashion-MNIST, MNIST, CIFAR10, SVHN or your own table; watch the generated points migrate in a PCA or UMAP map fitted on the real points only, and audit every generated sample (its convex parents, nearest real images, distance to the closest record, M's verdict) before trusting it.

The page only wires widgets: settings, data, images and the map's figure live in
``app/ui/imagelab.py``; the runs (each in its own process), the background projections and the
audits in ``app/ui/imagelab_runs.py``; the run buttons, the status line, the curves, the live
chart, the URL state and the health table are the blocks the Toy Lab uses too
(``app/ui/run_controls.py``, ``app/ui/curves.py``, ``app/ui/live_plot.py``,
``app/ui/url_state.py``, ``app/ui/health_view.py``).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit import config as _st_config

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import imagelab as il  # noqa: E402
from app.ui.audit_view import run_image, show_flags_and_exports, show_sample  # noqa: E402
from app.ui.curves import compare_chart, history_series, score_chart  # noqa: E402
from app.ui.figures import confusion_figure, figure_json, recall_bars  # noqa: E402
from app.ui.health_view import show_collapse_warnings, show_health_table  # noqa: E402
from app.ui.imagelab_runs import (  # noqa: E402
    AuditState,
    ImageRun,
    MapState,
    nearest_rows,
    start_image_run,
)
from app.ui.live_plot import live_plot  # noqa: E402
from app.ui.limits_view import lab_full_notice  # noqa: E402
from app.ui.live_runs import LabFull, check_room, start_watchdog, stop_runs, wait_for_step  # noqa: E402
from app.ui.run_controls import apply_action, run_buttons, status_line  # noqa: E402
from app.ui.url_state import sync_url, widget_default  # noqa: E402
from app.ui.warm import warm_projection, warm_run_server  # noqa: E402
from gamo.config import METHOD_LABELS, METHODS, DataConfig  # noqa: E402
from gamo.data import load_dataset, load_source  # noqa: E402
from gamo.errors import GamoError  # noqa: E402

# the map while a run trains (the issue asks for at least 2 redraws a second on digits)
REFRESH_S = 0.4
# the charts beside it, the samples grid and the audit
SIDE_REFRESH_S = 2.5
PLOTLY_CONFIG = {"displayModeBar": True, "displaylogo": False, "scrollZoom": False,
                 "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "sendChartToCloud"],
                 "toImageButtonOptions": {"format": "png", "filename": "gamo_image_lab", "scale": 2}}
SPEED_OPTIONS = [1, 2, 5, 10, 20, 50, 100, 200, 500]

if _st_config.get_option("runner.postScriptGC"):     # see the Toy Lab: a full gc starves the runs
    _st_config.set_option("runner.postScriptGC", False)

st.set_page_config(page_title="Image Lab · GAMO Lab", page_icon="🖼️", layout="wide")
ss = st.session_state
warm_run_server()       # as Home does, for a user who opens this page first
warm_projection()


def _executor(name: str) -> ThreadPoolExecutor:
    """The session's background worker (one thread): projections, or audits."""
    key = f"il_exec_{name}"
    if key not in ss:
        ss[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imagelab-{name}")
    return ss[key]


# --------------------------------------------------------------------------------------
# data (cached: loading Fashion-MNIST takes seconds)
# --------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Reading the dataset…")
def _availability(spec: str, root: str, label: str, name: str, download: bool):
    """(points available per class for training, class names, image shape, test points per
    class) of a dataset."""
    src = load_source(DataConfig(dataset=spec, data_root=root, label_column=label, download=download))
    k = len(src.class_names)
    counts = np.bincount(src.y, minlength=k)
    n_test = il.n_test_for(name, int(counts.min()))
    if src.single_pool:
        counts = np.maximum(counts - n_test, 0)
    return [int(c) for c in counts], tuple(src.class_names), src.image_shape, n_test


@st.cache_data(max_entries=8, show_spinner="Preparing the training set…")
def _dataset(data_json: str):
    return load_dataset(DataConfig(**json.loads(data_json)))


def _sizes_figure(sizes: list[int], names: tuple[str, ...]):
    from app.ui.figures import class_sizes_chart     # shared with the Toy Lab

    return class_sizes_chart(sizes, names)


# --------------------------------------------------------------------------------------
# sidebar: URL -> widgets -> ImageSettings -> URL
# --------------------------------------------------------------------------------------
def _dataset_label(name: str) -> str:
    ok, _ = il.dataset_status(name)
    return il.DATASET_LABELS[name] + ("" if ok else " · not installed")


def sidebar_data(prev: il.ImageSettings) -> dict:
    sb = st.sidebar
    sb.header("Data")
    widget_default("il_dataset", prev.dataset)
    sb.selectbox("Dataset", il.DATASETS, key="il_dataset", format_func=_dataset_label)
    out: dict = {"dataset": ss.il_dataset, "upload": None, "upload_error": None}
    widget_default("il_label", prev.label)
    widget_default("il_download", prev.download)
    if ss.il_dataset == "upload":
        up = sb.file_uploader("CSV (header row) or NPZ (arrays x and label), up to 200 MB",
                              type=["csv", "npz"], key="il_upload")
        sb.text_input("Label column (CSV header / NPZ array)", key="il_label")
        if up is not None:
            try:
                out["upload"] = il.save_upload(up.name, up.getvalue(), ss.il_label)
            except GamoError as e:
                out["upload_error"] = str(e)
    else:
        ok, _ = il.dataset_status(ss.il_dataset)
        if not ok or ss.il_download:
            sb.toggle("Download it (needs internet)", key="il_download",
                      help=f"torchvision downloads the files into {il.data_root()}.")
    return out


def sidebar_rest(prev: il.ImageSettings, n_classes: int, image_shape) -> tuple[il.ImageSettings, str | None]:
    sb = st.sidebar
    sb.header("Imbalance")
    widget_default("il_profile", prev.profile)
    sb.radio("Profile", il.PROFILE_KINDS, key="il_profile", format_func=il.PROFILE_LABELS.get,
             horizontal=True)
    counts_error = None
    counts = prev.counts
    widget_default("il_ir", float(prev.ir))
    widget_default("il_minority", int(min(prev.minority, max(1, n_classes - 1))))
    widget_default("il_nmax", int(prev.n_max))
    if ss.il_profile in ("exp", "step"):
        sb.number_input("Imbalance ratio (largest / smallest class)", 1.0, 1000.0, step=1.0, key="il_ir",
                        format="%g")
    if ss.il_profile == "step":
        if ss.il_minority > max(1, n_classes - 1):
            ss.il_minority = max(1, n_classes - 1)
        sb.number_input("Minority classes (the last ones)", 1, max(1, n_classes - 1), key="il_minority")
    if ss.il_profile != "counts":
        sb.number_input("Largest class size (0: as large as the data allows)", 0, 100_000, step=100,
                        key="il_nmax")
    else:
        widget_default("il_counts", ",".join(str(c) for c in prev.counts))
        sb.text_input(f"Training points per class ({n_classes} numbers, label order)", key="il_counts",
                      placeholder="e.g. " + ",".join(["100"] + ["20"] * max(1, n_classes - 1)))
        try:
            counts = il.parse_counts(ss.il_counts)
        except ValueError as e:
            counts_error = f"Points per class: {e}."
            counts = prev.counts
    sizes_slot = sb.empty()

    sb.header("Model")
    conv = il.conv_ok(image_shape)
    widget_default("il_family", prev.family)
    if not conv and ss.il_family == "conv":
        ss.il_family = "dense"
    sb.radio("Family", ["dense", "conv"], key="il_family", horizontal=True,
             format_func={"dense": "flattened", "conv": "convolutional"}.get,
             disabled=not conv,
             help="Flattened: images as vectors, generated samples are images (the paper's "
                  "MNIST-style ablation). Convolutional: a CNN F learns features and generated "
                  "samples live in F's feature space (28x28x1 and 32x32x3 images only).")
    if not conv:
        sb.caption("Convolutional needs 28x28 grey or 32x32 colour images.")
    widget_default("il_method", prev.method)
    sb.selectbox("Method", METHODS, key="il_method", format_func=METHOD_LABELS.get)
    widget_default("il_compare_on", bool(prev.compare))
    sb.toggle("Compare with a second method", key="il_compare_on",
              help="Train a second method on the same data and seed, side by side.")
    compare = ""
    if ss.il_compare_on:
        others = [m for m in METHODS if m != ss.il_method]
        if ss.get("il_compare") not in others:
            ss.il_compare = prev.compare if prev.compare in others else "baseline" if "baseline" in others else others[0]
        sb.selectbox("Second method", others, key="il_compare", format_func=METHOD_LABELS.get)
        compare = ss.il_compare
    widget_default("il_loss", prev.loss)
    sb.radio("Loss", ["ls", "ce"], key="il_loss", horizontal=True,
             format_func={"ls": "least squares", "ce": "cross-entropy"}.get)
    widget_default("il_seed", int(prev.seed))
    sb.number_input("Seed", 0, 2**31 - 1, step=1, key="il_seed")

    sb.header("Live (applies without reset)")
    widget_default("il_speed", prev.speed)
    sb.select_slider("Iterations per refresh", sorted(set(SPEED_OPTIONS) | {prev.speed}), key="il_speed")
    widget_default("il_projection", prev.projection)
    sb.radio("Map", ["pca", "umap"], key="il_projection", horizontal=True,
             format_func={"pca": "PCA (instant)", "umap": "UMAP"}.get,
             help="Both are fitted on the real points only; generated points are placed with the "
                  "fitted map's transform, so what moves is the generator, not the layout.")
    widget_default("il_trails", prev.trails)
    sb.toggle("Trails of recent positions", key="il_trails")
    widget_default("il_pcts", (float(prev.low_pct), float(prev.high_pct)))
    sb.slider("Audit: near-duplicate below / out-of-distribution above (percentile of the class's "
              "own nearest-neighbour distances)", 0.0, 100.0, step=1.0, key="il_pcts")
    low, high = ss.il_pcts
    if low >= high:
        low, high = prev.low_pct, prev.high_pct

    s = il.ImageSettings(
        dataset=ss.il_dataset, label=ss.il_label, download=bool(ss.il_download), profile=ss.il_profile,
        ir=float(ss.il_ir), minority=int(ss.il_minority), n_max=int(ss.il_nmax), counts=tuple(counts),
        family=ss.il_family, method=ss.il_method, compare=compare, loss=ss.il_loss, seed=int(ss.il_seed),
        speed=int(ss.il_speed), projection=ss.il_projection, trails=bool(ss.il_trails),
        low_pct=float(low), high_pct=float(high))
    ss.il_sizes_slot = sizes_slot
    return s, counts_error


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------
def _start(s: il.ImageSettings, data_cfg: DataConfig) -> list[ImageRun] | None:
    methods = [s.method] + ([s.compare] if s.compare else [])
    try:
        cfgs = [il.build_config(s, data_cfg, m) for m in methods]
        data = _dataset(json.dumps(asdict(data_cfg), sort_keys=True))
    except GamoError as e:
        st.error(f"**This setting cannot be trained:** {e}", icon="⚠️")
        return None
    runs: list[ImageRun] = []
    try:
        check_room(len(cfgs))                          # the server's cap on live runs
        for cfg in cfgs:
            runs.append(start_image_run(cfg, data, s, paused=True))
    except LabFull as e:
        stop_runs(runs, wait=0.5)
        ss.il_runs_key = None                          # the next rerun tries again
        lab_full_notice(e, "il")
        return None
    start_watchdog(runs)
    wait_for_step(runs, [0] * len(runs), timeout=30.0)
    return runs


def _clear_views() -> None:
    ss.il_maps, ss.il_audits, ss.il_sel = {}, {}, None
    for k in [k for k in ss if str(k).startswith(("il_seen_", "il_pick_", "il_png_", "il_hover_"))]:
        del ss[k]


def ensure_runs(s: il.ImageSettings, data_cfg: DataConfig, key: tuple) -> list[ImageRun] | None:
    if ss.get("il_runs_key") != key or "il_runs" not in ss:
        stop_runs(ss.get("il_runs"))
        _clear_views()
        ss.il_runs = _start(s, data_cfg)
        ss.il_runs_key = key if ss.il_runs is not None else None
    for r in ss.il_runs or []:
        r.apply_live(s)
    return ss.il_runs


def _restart(s: il.ImageSettings, data_cfg: DataConfig):
    stop_runs(ss.il_runs)
    _clear_views()
    return _start(s, data_cfg)


def stop_all(reason: str | None = None) -> None:
    stop_runs(ss.get("il_runs"))
    ss.il_runs, ss.il_runs_key = None, None


def map_state(run: ImageRun, kind: str) -> MapState:
    maps = ss.setdefault("il_maps", {})
    key = (run.run_id, kind)
    if key not in maps:
        maps[key] = MapState(kind, run.cfg.train.seed, run.family)
    return maps[key]


def audit_state(run: ImageRun) -> AuditState:
    audits = ss.setdefault("il_audits", {})
    if run.run_id not in audits:
        audits[run.run_id] = AuditState()
    return audits[run.run_id]


def _live(runs: list[ImageRun]) -> bool:
    return any(r.handle.status.state in ("starting", "running") for r in runs)


def _busy(runs: list[ImageRun]) -> bool:
    """Background work still under way for what is on screen (a map fit, a placement, an audit)."""
    maps = ss.get("il_maps", {}).values()
    audits = ss.get("il_audits", {}).values()
    return any(m.fitting or (m.place_future is not None and not m.place_future.done()) for m in maps) or \
        any(a.pending for a in audits)


# --------------------------------------------------------------------------------------
# images of points
# --------------------------------------------------------------------------------------
def point_image(run: ImageRun, kind: str, idx: int, snap, ms: MapState | None):
    """(image (C, H, W) or None, caption) of a point of the map."""
    names = run.data.class_names
    if kind == "real":
        if run.images is None or not 0 <= idx < len(run.images):
            return None, f"real training row #{idx}"
        c = int(run.data.y_train[idx])
        return run.images[idx], f"real training image #{idx} · class {c} ({names[c]})"
    gen = snap.generated if snap is not None else None
    if gen is None or not 0 <= idx < len(gen.y):
        return None, f"generated point #{idx}"
    c = int(gen.y[idx])
    head = f"generated #{idx} for class {c} ({names[c]}) · M says {int(gen.m_pred[idx])}"
    if run.family == "dense":
        img = il.as_images(gen.x[idx:idx + 1], run.data.image_shape)
        return (None if img is None else img[0]), head
    if run.images is None:
        return None, head
    if gen.parent_idx is not None:
        j = int(gen.parent_idx[idx, 0])
        return run.images[j], head + f" · shown: its strongest convex parent, real image #{j} (weight {float(gen.parent_w[idx, 0]):.2f})"
    if ms is not None and ms.real is not None and ms.real.shape[1] == gen.x.shape[1]:
        j = int(nearest_rows(gen.x[idx:idx + 1], ms.real)[0])
        return run.images[j], head + f" · shown: its nearest real image #{j} (in F's features)"
    return None, head


def _uri(run: ImageRun, row: int) -> str:
    """The PNG data URI of real image ``row`` (encoded once per run)."""
    cache = ss.setdefault(f"il_png_{run.run_id}", {})
    uri = cache.get(row)
    if uri is None:
        uri = cache[row] = il.png_uri(run.images[row], run.vrange)
    return uri


def hover_real(i: int, run: ImageRun, rows) -> tuple[str, dict | None]:
    """(version, {"rows", "uris"} or None) of the real points' hover images: the shown rows (a
    seeded subset of a large set), encoded once per run and point set."""
    if run.images is None:
        return f"{run.run_id}:none", None
    hrows = il.hover_rows(rows, seed=run.cfg.train.seed)
    version = f"{run.run_id}:{hashlib.sha1(np.ascontiguousarray(hrows).tobytes()).hexdigest()[:12]}"
    cached = ss.get(f"il_hover_real_{i}")
    if cached is not None and cached[0] == version:
        return cached
    payload = {"rows": [int(r) for r in hrows], "uris": [_uri(run, int(r)) for r in hrows]}
    ss[f"il_hover_real_{i}"] = (version, payload)
    return version, payload


def hover_gen(run: ImageRun, gen, ms: MapState | None) -> list:
    """[uri, label] (or None) per generated point, for the map's hover tooltip."""
    real = ms.real if ms is not None else None
    return il.hover_gen(run.family, gen, run.data.image_shape, run.images, run.vrange, real_feats=real,
                        uri=lambda j: _uri(run, j), nearest=nearest_rows)


def samples_grid(run: ImageRun, snap, ms: MapState | None) -> None:
    """Generated samples per minority class: images (flattened family) or their strongest
    parents / nearest real images (conv family, labelled as neighbours)."""
    gen = snap.generated if snap is not None else None
    if gen is None or len(gen.y) == 0:
        st.caption(f"{METHOD_LABELS[run.method]} generates no samples of its own: nothing to show here.")
        return
    names = run.data.class_names
    shape = run.data.image_shape
    if run.family == "dense":
        imgs = il.as_images(gen.x, shape)
        what = "Generated samples (each row: one minority class, the fixed noise vectors in order)"
    elif run.images is not None and gen.parent_idx is not None:
        imgs = run.images[gen.parent_idx[:, 0]]
        what = ("Conv family: the samples are F's features, not images. Shown instead: each "
                "sample's **strongest convex parent** (a real image), labelled as neighbours")
    elif run.images is not None and ms is not None and ms.real is not None and ms.real.shape[1] == gen.x.shape[1]:
        imgs = run.images[nearest_rows(gen.x, ms.real)]
        what = ("Conv family: the samples are F's features, not images. Shown instead: each "
                "sample's **nearest real image** in F's features (neighbours, not the samples)")
    else:
        imgs = None
        what = ""
    if imgs is None:
        st.caption("These samples are not images (a table's rows or features): see the map and the audit.")
        return
    st.markdown(f"**{what}**")
    classes = [int(c) for c in np.unique(gen.y)]
    per = max(int((gen.y == c).sum()) for c in classes)
    ncols = min(per, 16)
    h = imgs.shape[-1]
    scale = max(1, 40 // max(h, 1))
    for c in classes:
        rows = np.flatnonzero(gen.y == c)[:ncols]
        label, grid = st.columns([0.16, 1.0], vertical_alignment="center")
        label.markdown(f"class {c}" + (f" ({names[c]})" if str(names[c]) != str(c) else ""))
        grid.image(il.tile_grid(imgs[rows], ncols, value_range=run.vrange, scale=scale), output_format="PNG")


# --------------------------------------------------------------------------------------
# the live part: the map (fast fragment), the charts beside it (slow fragment)
# --------------------------------------------------------------------------------------
def _map_for(run: ImageRun, snaps, kind: str) -> tuple[MapState, str]:
    """The map state to draw (UMAP falls back to PCA while its first layout is computed)."""
    ms = map_state(run, kind)
    ms.update(run, snaps, _executor("proj"))
    note = ""
    if kind == "umap" and not ms.ready:
        from gamo.projection import is_warm

        waited = time.monotonic() - ms.fit_started if ms.fit_started else 0.0
        if ms.error:
            note = f"UMAP failed ({ms.error}); showing PCA."
        elif not is_warm():
            note = (f"UMAP is compiling its code the first time in this server (about 30 s; "
                    f"{waited:.0f} s so far). The PCA map is shown meanwhile.")
        else:
            note = f"UMAP layout being computed ({waited:.0f} s so far); the PCA map is shown meanwhile."
        pca = map_state(run, "pca")
        pca.update(run, snaps, _executor("proj"))
        return pca, note
    if kind == "pca" and not ms.ready and ms.fitting:
        note = "Computing the layout…"
    return ms, note


def _selection(i: int, run: ImageRun) -> None:
    """A click on the map selects a point for the audit panel (and reruns the whole page)."""
    key = f"il_map_{i}_{run.run_id}"
    value = ss.get(key)
    clicks = value.get("click") if isinstance(value, dict) else None
    if clicks is None or ss.get(f"il_seen_{i}") == clicks:
        return
    ss[f"il_seen_{i}"] = clicks
    hit = il.picked(value)
    if hit is not None and ss.get("il_sel") != (i, *hit):
        ss.il_sel = (i, *hit)
        ss.il_audit_run = i          # compare mode: audit the run whose map was clicked
        st.rerun(scope="app")


def _map(i: int, run: ImageRun, snaps, s: il.ImageSettings, height: int) -> None:
    _selection(i, run)
    snap = snaps[-1] if snaps else None
    ms, note = _map_for(run, snaps, s.projection)
    layout = ms.layout()
    shown = ms.shown(snaps) if layout is not None else None
    step, xy, trails = shown if shown is not None else (None, None, None)
    keyframe = layout[2] if layout is not None else -1
    digest = il.map_digest(step if step is not None else -1, xy, keyframe)
    status_line(i, run, snap, snaps, dom_id="imagelab-status", digest=digest,
                redraw=ss.get("il_redraws", 0), busy_ms=ss.get("il_busy_ms", 0.0),
                draw_ms=ss.get("il_draw_ms"),
                attrs={"map-step": step if step is not None else -1, "keyframe": keyframe,
                       "map": ms.kind})
    if ms.error and not note:
        st.error(ms.error)
    if layout is None:
        st.info(note or "Computing the layout…")
        return
    real_xy, rows, keyframe, kf_step = layout
    sel = ss.get("il_sel")
    selected = (sel[1], sel[2]) if sel is not None and sel[0] == i else None
    gen = None
    for sn in reversed(snaps):
        if sn.step == step:
            gen = sn.generated
            break
    texts = None
    if gen is not None and xy is not None:
        names = run.data.class_names
        texts = []
        for k in range(len(gen.y)):
            t = f"generated #{k} for class {int(gen.y[k])} ({names[int(gen.y[k])]})<br>M says {int(gen.m_pred[k])}"
            if gen.d_real is not None:
                t += f", D(real) {float(gen.d_real[k]):.2f}"
            if gen.parent_idx is not None:
                t += f"<br>strongest parent: real #{int(gen.parent_idx[k, 0])} (w {float(gen.parent_w[k, 0]):.2f})"
            texts.append(t)
    running = run.handle.status.state in ("starting", "running")
    fkey = (run.run_id, ms.kind, step, keyframe, selected, s.trails, height, running)
    cached = ss.get(f"il_figcache_{i}")
    if cached is not None and cached[0] == fkey:
        spec, gen_hover = cached[1], cached[2]
    else:
        gen_hover = hover_gen(run, gen if xy is not None else None, ms)
        fig = il.map_figure(real_xy, run.data.y_train[rows], rows, run.data.class_names,
                            gen_xy=xy if gen is not None else None, gen_y=gen.y if gen is not None else None,
                            gen_text=texts, trails=trails if s.trails else None, selected=selected,
                            height=height, uirevision=f"map{i}{run.run_id}{ms.kind}", legend=not running)
        spec = figure_json(fig)
        ss[f"il_figcache_{i}"] = (fkey, spec, gen_hover)
    # the real points' images: sent again only when they change (or while paused, so a chart
    # mounted afresh gets them too); the frontend keeps them per version
    version, real_hover = hover_real(i, run, rows)
    if running and ss.get(f"il_hover_sent_{i}") == version:
        real_hover = None
    ss[f"il_hover_sent_{i}"] = version
    live_plot(spec, key=f"il_map_{i}_{run.run_id}", config=PLOTLY_CONFIG,
              hover={"version": version, "real": real_hover, "gen": gen_hover})
    what = "F's features of the real training images" if run.family == "conv" else (
        "the real training points" + (" (pixels)" if run.space == "pixels" else ""))
    kf = (f" · **keyframe {keyframe}**: F's features at step {kf_step:,} (refitted at each epoch end, "
          "aligned to the previous layout)" if run.family == "conv" else "")
    lag = ""
    if snap is not None and step is not None and step != snap.step:
        lag = f" · map shows step {step:,} (placing step {snap.step:,}…)"
    elif step is not None:
        lag = f" · map shows step {step:,}"
    st.caption(f"{ms.kind.upper()} fitted on {what} only; the crosses are the generated points, "
               f"placed with the fitted map's transform (never refitted on them){kf}{lag}. "
               "Hover a point to see what it is and its image; click it to audit it below.")
    if note:
        st.caption(f"⏳ {note}")
    show_collapse_warnings(snap.health if snap else None, run.method, max_shown=1)


def live_main(runs: list[ImageRun], s: il.ImageSettings, ticking: bool) -> None:
    """Fast fragment: status line(s) and the map(s)."""
    t0 = time.perf_counter()
    ss.il_redraws = ss.get("il_redraws", 0) + 1
    now = time.monotonic()
    views = []
    for r in runs:
        r.last_poll = now
        views.append(r.handle.history())
    if len(runs) == 1:
        _map(0, runs[0], views[0], s, height=600)
    else:
        for i, (col, r, snaps) in enumerate(zip(st.columns(len(runs), gap="medium"), runs, views)):
            with col:
                _map(i, r, snaps, s, height=520)
    ss.il_draw_ms = 1000.0 * (time.perf_counter() - t0)
    ss.il_busy_ms = ss.get("il_busy_ms", 0.0) + ss.il_draw_ms
    if ticking and not _live(runs) and not _busy(runs):
        st.rerun(scope="app")     # the run paused or ended and the maps are done: stop ticking


def _side_one(r: ImageRun, snaps, key: str) -> None:
    snap = snaps[-1] if snaps else None
    if snap is None:
        st.info("Starting the run…")
        return
    names = [f"{i}" for i in range(r.data.n_classes)]
    bars = recall_bars(np.asarray(snap.test.recall), names, r.data.class_counts,
                       title=f"Test recall per class · step {snap.step:,}", height=280,
                       uirevision=f"recall{key}")
    # no axis title under the "class / n = count" labels; the legend is hidden on the trace, not
    # with showlegend=False (live_plot shows a static legend copy for such figures)
    bars.update_layout(showlegend=None, xaxis_title=None, margin=dict(l=45, r=10, t=40, b=10))
    bars.update_traces(showlegend=False)
    live_plot(bars, key=f"il_recall_{key}", config=PLOTLY_CONFIG)
    series = history_series(snaps)
    live_plot(score_chart(series, per_class=False, minority=r.minority, height=250),
              key=f"il_scores_{key}", config=PLOTLY_CONFIG)
    live_plot(confusion_figure(snap.test.confusion, names, height=330, uirevision=f"cm{key}",
                               title="Confusion on the test set (rows sum to 1)"),
              key=f"il_cm_{key}", config=PLOTLY_CONFIG)
    show_health_table(snap.health, title="Generator health")


def live_side(runs: list[ImageRun], s: il.ImageSettings) -> None:
    """Slow fragment: recall, ACSA / GM, confusion, health; then the samples grid."""
    t0 = time.perf_counter()
    views = [r.handle.history() for r in runs]
    if len(runs) == 1:
        _side_one(runs[0], views[0], "0")
    else:
        named = {METHOD_LABELS[r.method]: history_series(sn) for r, sn in zip(runs, views) if sn}
        if named:
            live_plot(compare_chart(named, runs[0].minority), key="il_compare_chart", config=PLOTLY_CONFIG)
        for i, (col, r, sn) in enumerate(zip(st.columns(len(runs)), runs, views)):
            with col:
                st.markdown(f"**{METHOD_LABELS[r.method]}**")
                _side_one(r, sn, str(i))
    ss.il_busy_ms = ss.get("il_busy_ms", 0.0) + 1000.0 * (time.perf_counter() - t0)


def live_grid(runs: list[ImageRun], s: il.ImageSettings) -> None:
    for i, r in enumerate(runs):
        snaps = r.handle.history()
        snap = snaps[-1] if snaps else None
        if len(runs) > 1:
            st.markdown(f"#### {METHOD_LABELS[r.method]}")
        samples_grid(r, snap, ss.get("il_maps", {}).get((r.run_id, "pca")) or
                     ss.get("il_maps", {}).get((r.run_id, s.projection)))


# --------------------------------------------------------------------------------------
# the audit panel
# --------------------------------------------------------------------------------------
def audit_panel(runs: list[ImageRun], s: il.ImageSettings) -> None:
    sel = ss.get("il_sel")
    ri = sel[0] if sel is not None and sel[0] < len(runs) else 0
    if len(runs) > 1:
        if ss.get("il_audit_run") not in range(len(runs)):
            ss.il_audit_run = ri
        ri = st.radio("Audit the run of", list(range(len(runs))), horizontal=True,
                      format_func=lambda k: METHOD_LABELS[runs[k].method], key="il_audit_run")
    run = runs[ri]
    snaps = run.handle.history()
    snap = snaps[-1] if snaps else None
    if snap is None:
        st.info("Starting the run…")
        return
    state = audit_state(run)
    state.request(run, snap.step, s.low_pct, s.high_pct, _executor("audit"))
    running = run.handle.status.state in ("starting", "running")
    res = state.current(wait=0.0 if running else 8.0)
    if state.error and res is None:
        st.error(f"The audit could not be computed: {state.error}")
        return
    if res is None:
        st.info("Auditing the generated points…")
        return
    step, audit = res
    if audit is None:
        st.info(f"{METHOD_LABELS[run.method]} generates no samples of its own (it reweights or "
                "changes the loss, or makes its samples another way): there is nothing to audit.")
        return
    st.markdown(
        f"Audit of {METHOD_LABELS[run.method]}'s {audit.n} fixed-noise generated points at **step "
        f"{step:,}**{' (updates while it trains)' if running else ''}. Distances are taken in "
        f"**{audit.space}** (the space the samples live in: "
        + ("the flattened pixels" if audit.space == "pixels" else
           "the features of the convolutional F at this step" if audit.space == "F's features"
           else "the table's columns") + "). "
        f"*DCR*: distance to the closest real training point; its *percentile* is among the class's "
        f"own real nearest-neighbour distances. Flags: near-duplicate below the {audit.low_pct:g}th "
        f"percentile, out-of-distribution above the {audit.high_pct:g}th or nearer another class "
        f"than its own, label disputed when M assigns another class.")
    left, right = st.columns([1.1, 1.0], gap="large")
    with left:
        opts = list(range(audit.n))
        pick_key = f"il_pick_{run.run_id}"
        if sel is not None and sel[0] == ri and sel[1] == "gen" and 0 <= sel[2] < audit.n:
            if ss.get(f"il_pick_from_{run.run_id}") != sel:
                ss[pick_key] = sel[2]
                ss[f"il_pick_from_{run.run_id}"] = sel
        if ss.get(pick_key) not in opts:
            ss[pick_key] = int(np.flatnonzero(audit.flagged)[0]) if audit.flagged.any() else 0
        flags_of = lambda k: ", ".join(  # noqa: E731
            n.replace("_", " ") for n in ("near_duplicate", "out_of_distribution", "label_disputed")
            if getattr(audit, n)[k]) or "no flag"
        i = st.selectbox("Generated point to audit (or click one on the map)", opts, key=pick_key,
                         format_func=lambda k: f"#{k} · class {int(audit.y[k])} · {flags_of(k)}")
        if sel is not None and sel[0] == ri and sel[1] == "real":
            img, cap = point_image(run, "real", sel[2], snap, None)
            st.markdown("**Selected on the map: a real point**")
            if img is not None:
                st.image(run_image(run, img), caption=cap)
            else:
                st.caption(cap)
        show_sample(run, audit, i, flags_of(i))
    with right:
        show_flags_and_exports(run, step, audit, ri, ss)
    if not running and not state.pending and ss.get("il_audit_ticking"):
        ss.il_audit_ticking = False
        st.rerun(scope="app")


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------
st.title("Image Lab")
st.caption("GAMO on real images: train live, watch the generated points move in a map of the real "
           "ones, and audit each generated sample before trusting it.")

if "il_settings" not in ss:
    prev, url_warnings = il.settings_from_query(st.query_params)
else:
    prev, url_warnings = ss.il_settings, []
for w in url_warnings:
    st.warning(w)

data_part = sidebar_data(prev)
name = data_part["dataset"]
root = il.data_root()
ok, how = il.dataset_status(name, root)
download = bool(ss.get("il_download")) and name != "upload"
problem = None
if not ok and not download:
    problem = f"**{il.DATASET_LABELS[name].split(' (')[0]} is not available.** {how}"
elif name == "upload" and data_part["upload_error"]:
    problem = f"**The uploaded file cannot be used:** {data_part['upload_error']}"
elif name == "upload" and data_part["upload"] is None:
    problem = ("**Upload a table** in the sidebar: a CSV with a header row, or an NPZ with arrays "
               "`x` (features; images may be flattened) and `label`, at most 200 MB. Every other "
               "column is a numeric feature.")
upload_path, upload_id = data_part["upload"] or (None, "")

avail = None
if problem is None:
    spec = il.dataset_spec(il.ImageSettings(dataset=name), upload_path)
    try:
        avail = _availability(spec, root, ss.get("il_label", prev.label), name, download)
    except GamoError as e:
        problem = f"**This dataset cannot be loaded:** {e}"
if problem is not None:
    # the rest of the sidebar stays usable, and the URL says what was chosen
    shown, _ = sidebar_rest(prev, 10, None)
    ss.il_settings = shown
    sync_url(il.settings_to_query(shown))
    st.error(problem, icon="⚠️")
    stop_all()
    st.stop()

n_avail, class_names, image_shape, n_test = avail
settings, counts_error = sidebar_rest(prev, len(class_names), image_shape)
settings = il.ImageSettings(**{**asdict(settings), "download": download})
ss.il_settings = settings
sync_url(il.settings_to_query(settings))
if counts_error:
    st.sidebar.error(counts_error)
spec = il.dataset_spec(settings, upload_path)
try:
    profile, sizes = il.class_sizes(settings, n_avail, class_names, spec)
except GamoError as e:
    ss.il_sizes_slot.error(str(e))
    st.error(f"**This imbalance profile does not fit the data:** {e}", icon="⚠️")
    stop_all()
    st.stop()
ss.il_sizes_slot.plotly_chart(_sizes_figure(sizes, class_names), width="stretch", key="il_sizes",
                              config={"displayModeBar": False})
data_cfg = il.data_config(settings, spec, profile, n_test)

runs = ensure_runs(settings, data_cfg, il.reset_key(settings, upload_id))
if not runs:
    st.stop()
action = run_buttons("il")
if action is not None:
    ss.il_runs = apply_action(action, runs, lambda: _restart(settings, data_cfg))
    runs = ss.il_runs
    if not runs:
        st.stop()
    if action in ("step", "reset"):
        # give the map the new snapshot's points before it is drawn (PCA places them at once)
        for r in runs:
            map_state(r, settings.projection).update(r, r.handle.history(), _executor("proj"))

ticking = _live(runs) or _busy(runs)
fast = st.fragment(live_main, run_every=REFRESH_S if ticking else None)
slow = st.fragment(live_side, run_every=SIDE_REFRESH_S if _live(runs) else None)
if len(runs) == 1:
    left, right = st.columns([1.5, 1.0], gap="medium")
    with left:
        fast(runs, settings, ticking)
    with right:
        slow(runs, settings)
else:
    fast(runs, settings, ticking)
    slow(runs, settings)

st.subheader("Generated samples per minority class")
st.fragment(live_grid, run_every=SIDE_REFRESH_S if _live(runs) else None)(runs, settings)

st.subheader("Audit: should I trust this generated sample?")
audit_ticking = _live(runs) or any(a.pending for a in ss.get("il_audits", {}).values())
ss.il_audit_ticking = audit_ticking
st.fragment(audit_panel, run_every=SIDE_REFRESH_S if audit_ticking else None)(runs, settings)

with st.expander("How to read this page"):
    st.markdown(
        """
* **The map** places every real training image (dots, coloured by class) in 2D with PCA or UMAP,
  fitted on the real points **only**. The generated points (crosses, coloured by the minority
  class they were made for) are placed with the fitted map's `transform`: the layout never
  moves because of them, so when a cross moves, it is the generator that moved it. Each cross
  is the same noise vector at every step; its faint line is its recent path.
* **Flattened family**: the real points are the images' pixels, and a generated point *is* an
  image (a convex combination of real images for GAMO). **Convolutional family**: M sees F's
  features, and so do the map and the audit; F trains, so the map is refitted once an epoch
  (a *keyframe*), aligned to the previous one so that the paths stay meaningful.
* **Beside the map**: test recall per class (the minority classes are the small ones), ACSA and
  GM over steps, the confusion matrix and the generator's health.
* **The audit** asks of each generated point: is it a near copy of one real image (few effective
  parents, tiny distance to its closest record), is it far from its class or nearer another one
  (out of distribution), and does M disagree with its label? Export the flagged ones to look at
  them, or to leave them out of an oversampled training set.
"""
    )
