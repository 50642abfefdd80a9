"""Train GAMO (or a baseline) on a 2D toy in seconds and watch it live: M's decision regions, D's score, each minority class's convex hull, and the generated points moving toward the class periphery; click a generated point to see its convex parents, or compare two methods side by side.

The page only wires widgets: settings and figures live in ``app/ui/toylab.py``, the live runs
(engine run handles, each training in its own process) in ``app/ui/toylab_runs.py``; the run
buttons and status line (``app/ui/run_controls.py``), the runs' life (``app/ui/live_runs.py``), the
curves (``app/ui/curves.py``), the live chart (``app/ui/live_plot.py``), the URL state
(``app/ui/url_state.py``) and the health table (``app/ui/health_view.py``) are shared with the
Image Lab. Every setting is mirrored in the URL, so a link reproduces the exact setup.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit import config as _st_config

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import toylab as tl  # noqa: E402
from app.ui.figures import figure_json, generated_indices_from_selection  # noqa: E402
from app.ui.health_view import show_collapse_warnings, show_health_table  # noqa: E402
from app.ui.live_plot import live_plot  # noqa: E402
from app.ui.run_controls import apply_action, run_buttons, status_line  # noqa: E402
from app.ui.toylab_runs import (  # noqa: E402
    LiveRun,
    save_run,
    start_live_run,
    start_watchdog,
    stop_runs,
    wait_for_step,
)
from app.ui.url_state import sync_url, widget_default  # noqa: E402
from gamo.config import METHOD_LABELS, METHODS, DataConfig  # noqa: E402
from gamo.data import load_dataset  # noqa: E402
from gamo.errors import GamoError  # noqa: E402
from gamo.runs import RunError  # noqa: E402

# how often the 2D view is redrawn while a run trains (the issue asks for 4 redraws/s). The
# fragment timer caps the rate at 1/REFRESH_S, and a cycle costs more than the timer: with
# 0.25 s even a one-trace figure gave 3.9 redraws/s (bench/toy_lab_speed.py, 2 cores shared
# with Chromium), the full figure 3.2-3.5. Three repeats each, back to back: 0.2 s gave
# 4.4/3.7/4.0 redraws/s and Pause answered in 0.12/0.40/0.49 s; 0.15 s gave 3.7/3.7/3.8 and
# 1.09/0.75/0.67 s (more fragment runs queue up in front of a click)
REFRESH_S = 0.2
# the curves and the explanation every 3 s while a run trains (at once when it pauses): each
# redraw updates three Plotly charts in the browser, which shares the CPU with training; from
# 1 s to 3 s took the 2D view from 2.3 to 3.2 redraws/s on 2 cores (bench/toy_lab_speed.py,
# when the curves were still new st.plotly_chart charts at every redraw)
SIDE_REFRESH_S = 3.0
RUNS_DIR = Path(os.environ.get("GAMO_RUNS_DIR", _ROOT / "runs"))
LR_OPTIONS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]
SPEED_OPTIONS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500]
LATENT_OPTIONS = [2, 4, 8, 16, 32, 64, 128]
WIDTH_OPTIONS = [8, 16, 32, 64, 128, 256]
BATCH_OPTIONS = [16, 32, 64, 128, 256]
TOY_LABELS = {"moons": "two moons", "circles": "circles (ring around a disc)", "blobs": "blobs",
              "spirals": "spirals", "nonconvex": "non-convex minority (paper's Fig. 1)"}

# Streamlit runs a full gc.collect(2) after every script run, fragment runs included; with
# torch, plotly and pandas loaded that is ~0.1 s holding the GIL, five times a second, which
# starves the training worker. The lab's .streamlit/config.toml should say
# `[runner] postScriptGC = false`; until it does, the page turns it off for its server.
if _st_config.get_option("runner.postScriptGC"):
    _st_config.set_option("runner.postScriptGC", False)

st.set_page_config(page_title="Toy Lab · GAMO Lab", page_icon="⚖️", layout="wide")
ss = st.session_state


# --------------------------------------------------------------------------------------
# settings: URL -> widgets -> ToySettings -> URL
# --------------------------------------------------------------------------------------
def _with(options: list, value) -> list:
    return sorted(set(options) | {value})


_ensure = widget_default


# every widget that holds a setting (cleared to load a preset)
SETTING_KEYS = ("tl_dataset", "tl_classes", "tl_imb", "tl_counts", "tl_nmax", "tl_ir", "tl_noise",
                "tl_seed", "tl_method", "tl_compare_on", "tl_compare", "tl_loss", "tl_latent",
                "tl_width", "tl_batch", "tl_lr_m", "tl_lr_d", "tl_lr_g", "tl_speed", "tl_show_d",
                "tl_d_class", "tl_trails")


def _load_preset(s: tl.ToySettings) -> None:
    """Replace every setting by ``s`` (the runs restart, as after any data or model change)."""
    for k in SETTING_KEYS:
        ss.pop(k, None)
    ss.tl_settings = s


def _on_dataset() -> None:
    if ss.tl_dataset not in tl.MULTICLASS_TOYS:
        ss.tl_classes = 2
        _on_classes()


def _on_classes() -> None:
    try:
        counts = tl.parse_counts(ss.get("tl_counts", ""))
    except ValueError:
        counts = tl.DEFAULTS.counts
    ss.tl_counts = ",".join(str(c) for c in tl._fit_counts(counts, int(ss.tl_classes)))


def sidebar(prev: tl.ToySettings) -> tuple[tl.ToySettings, str | None]:
    """The sidebar's widgets; returns the settings and a counts error (or None)."""
    sb = st.sidebar
    sb.button("Load the paper's Figure 1 setup", key="tl_fig1", on_click=_load_preset, args=(tl.FIGURE1,),
              help="A non-convex minority class (an arc around the majority), GAMO next to GAMO\\D, "
                   "cross-entropy loss. Press Play and watch where each run's generated points go.")
    sb.header("Data")
    _ensure("tl_dataset", prev.dataset)
    sb.selectbox("Toy dataset", tl.TOY_NAMES, key="tl_dataset", format_func=TOY_LABELS.get,
                 on_change=_on_dataset)
    multi = ss.tl_dataset in tl.MULTICLASS_TOYS
    _ensure("tl_classes", prev.n_classes)
    if multi:
        sb.number_input("Classes", 2, 6, key="tl_classes", on_change=_on_classes)
    _ensure("tl_imb", prev.imbalance)
    sb.radio("Imbalance given as", ["counts", "ratio"], key="tl_imb", horizontal=True,
             format_func={"counts": "points per class", "ratio": "imbalance ratio"}.get)
    counts_error = None
    counts = prev.counts
    if ss.tl_imb == "counts":
        _ensure("tl_counts", ",".join(str(c) for c in prev.counts))
        sb.text_input("Training points per class (class 0 first)", key="tl_counts",
                      help="Comma-separated, e.g. 1000,50. Class 0 is the majority.")
        try:
            counts = tl.parse_counts(ss.tl_counts)
            if len(counts) != int(ss.tl_classes if multi else 2):
                raise ValueError(f"give {int(ss.tl_classes if multi else 2)} counts, one per class")
        except ValueError as e:
            counts_error = f"Points per class: {e}."
            counts = prev.counts
    else:
        _ensure("tl_nmax", prev.n_max)
        _ensure("tl_ir", float(prev.ir))
        sb.number_input("Majority class size", 2, 5000, step=100, key="tl_nmax")
        sb.number_input("Imbalance ratio (majority / minority)", 1.0, 1000.0, step=1.0,
                        key="tl_ir", format="%g")
    _ensure("tl_noise", float(prev.noise))
    sb.slider("Noise", 0.0, 1.0, step=0.05, key="tl_noise")
    _ensure("tl_seed", int(prev.seed))
    sb.number_input("Seed", 0, 2**31 - 1, step=1, key="tl_seed")

    sb.header("Model")
    _ensure("tl_method", prev.method)
    sb.selectbox("Method", METHODS, key="tl_method", format_func=METHOD_LABELS.get)
    _ensure("tl_compare_on", bool(prev.compare))
    sb.toggle("Compare with a second method", key="tl_compare_on",
              help="Train the same data and seed with two methods side by side.")
    compare = ""
    if ss.tl_compare_on:
        others = [m for m in METHODS if m != ss.tl_method]
        default = prev.compare if prev.compare in others else (
            "baseline" if "baseline" in others else others[0])
        if ss.get("tl_compare") not in others:
            ss.tl_compare = default
        sb.selectbox("Second method", others, key="tl_compare", format_func=METHOD_LABELS.get)
        compare = ss.tl_compare
    _ensure("tl_loss", prev.loss)
    sb.radio("Loss", ["ls", "ce"], key="tl_loss", horizontal=True,
             format_func={"ls": "least squares (LS)", "ce": "cross-entropy (CE)"}.get)
    _ensure("tl_latent", prev.latent)
    sb.select_slider("Latent size of G", _with(LATENT_OPTIONS, prev.latent), key="tl_latent")
    _ensure("tl_width", prev.width)
    sb.select_slider("Network width", _with(WIDTH_OPTIONS, prev.width), key="tl_width",
                     help="Hidden units of M, D and G's cTMU.")
    _ensure("tl_batch", prev.batch)
    sb.select_slider("Batch size", _with(BATCH_OPTIONS, prev.batch), key="tl_batch")

    sb.header("Live (applies without reset)")
    for key, name, label in (("tl_lr_m", "lr_m", "Learning rate of M"),
                             ("tl_lr_d", "lr_d", "Learning rate of D"),
                             ("tl_lr_g", "lr_g", "Learning rate of G")):
        v = float(getattr(prev, name))
        _ensure(key, v)
        sb.select_slider(label, _with(LR_OPTIONS, v), key=key, format_func=lambda x: f"{x:g}")
    _ensure("tl_speed", prev.speed)
    sb.select_slider("Speed: iterations per refresh", _with(SPEED_OPTIONS, prev.speed),
                     key="tl_speed", help="Iterations between two snapshots of the view.")

    sb.header("View")
    _ensure("tl_show_d", prev.show_d)
    sb.toggle("Show D's real score (contours)", key="tl_show_d")
    n_classes = int(ss.tl_classes) if multi else 2
    _ensure("tl_d_class", min(prev.d_class, n_classes - 1))
    if ss.tl_d_class >= n_classes:
        ss.tl_d_class = n_classes - 1
    sb.selectbox("D's score for class", list(range(n_classes)), key="tl_d_class",
                 disabled=not ss.tl_show_d)
    _ensure("tl_trails", prev.trails)
    sb.toggle("Trails of recent positions", key="tl_trails")

    s = tl.ToySettings(
        dataset=ss.tl_dataset, n_classes=n_classes, imbalance=ss.tl_imb, counts=tuple(counts),
        n_max=int(ss.get("tl_nmax", prev.n_max)), ir=float(ss.get("tl_ir", prev.ir)),
        noise=float(ss.tl_noise), seed=int(ss.tl_seed), method=ss.tl_method, compare=compare,
        loss=ss.tl_loss, lr_m=float(ss.tl_lr_m), lr_d=float(ss.tl_lr_d), lr_g=float(ss.tl_lr_g),
        latent=int(ss.tl_latent), width=int(ss.tl_width), batch=int(ss.tl_batch),
        speed=int(ss.tl_speed), show_d=bool(ss.tl_show_d), d_class=int(ss.tl_d_class),
        trails=bool(ss.tl_trails),
    )
    return s, counts_error


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _dataset(data_json: str):
    return load_dataset(DataConfig(**json.loads(data_json)))


def _hint(msg: str) -> str:
    low = msg.lower()
    if "at least 2" in low or "only 1" in low or "only 0" in low:
        return ("Every class needs at least 2 training points: G's points are weighted averages "
                "of a class's real points, and a hull of one point has nothing to average. "
                "Raise the smallest count (or lower the imbalance ratio).")
    if "available" in low:
        return "Ask for fewer points, or use the imbalance-ratio form with a smaller majority."
    return "Change the setting the message names in the sidebar; the page's defaults always work."


def _start(s: tl.ToySettings) -> list[LiveRun] | None:
    """Start the session's runs for ``s`` (one, or two in compare mode); None on an error."""
    methods = [s.method] + ([s.compare] if s.compare else [])
    try:
        cfgs = [tl.build_config(s, m) for m in methods]
        data = _dataset(json.dumps(asdict(cfgs[0].data), sort_keys=True))
    except GamoError as e:
        st.error(f"**This setting cannot be trained:** {e}\n\n{_hint(str(e))}", icon="⚠️")
        return None
    size = (760, 420) if len(cfgs) == 1 else (440, 330)   # about the plot area, in pixels
    runs = [start_live_run(cfg, data, s, paused=True, image_size=size) for cfg in cfgs]
    start_watchdog(runs)
    wait_for_step(runs, [0] * len(runs), timeout=10.0)
    return runs


def ensure_runs(s: tl.ToySettings) -> list[LiveRun] | None:
    """The session's live runs for these settings (a data/model change stops and restarts)."""
    key = tl.reset_key(s)
    if ss.get("tl_runs_key") != key or "tl_runs" not in ss:
        stop_runs(ss.get("tl_runs"))
        ss.tl_runs = _start(s)
        ss.tl_runs_key = key if ss.tl_runs is not None else None
        ss.tl_action = "start"
    runs = ss.tl_runs
    for r in runs or []:
        r.apply_live(s)
    return runs


def _restart(s: tl.ToySettings) -> list[LiveRun] | None:
    stop_runs(ss.tl_runs)
    for k in [k for k in ss if str(k).startswith(("tl_follow_", "tl_sel_seen_"))]:
        del ss[k]
    return _start(s)


def controls(runs: list[LiveRun], s: tl.ToySettings) -> None:
    players = sorted({p for r in runs for p in r.players}, key="MDG".index)
    action = run_buttons("tl", players=players, per_player_note=(
        "Per-player steps move only that player, in the runs that have it "
        "(D exists only in methods with a discriminator, such as GAMO)."))
    if action is None:
        return
    ss.tl_runs = apply_action(action, runs, lambda: _restart(s), players_of=lambda r: r.players)
    ss.tl_action = action


# --------------------------------------------------------------------------------------
# the live view (a fragment that redraws while a run trains)
# --------------------------------------------------------------------------------------
def _status_line(i: int, r: LiveRun, snap, snaps, redraw: int) -> None:
    status_line(i, r, snap, snaps, dom_id="toylab-status",
                digest=tl.points_digest(snap.generated if snap else None), redraw=redraw,
                busy_ms=ss.get("tl_busy_ms", 0.0), draw_ms=ss.get("tl_draw_ms"), hint=_hint)


def _selected(i: int, r: LiveRun, snap) -> int | None:
    """The generated point to highlight: the last one clicked, or the one chosen below."""
    key, seen, follow = f"tl_fig_{i}_{r.run_id}", f"tl_sel_seen_{i}", f"tl_follow_{i}"
    picked = generated_indices_from_selection(ss.get(key))
    if picked and tuple(picked) != ss.get(seen):
        ss[seen] = tuple(picked)
        ss[follow] = picked[-1]
    m = len(snap.generated.x) if snap is not None and snap.generated is not None else 0
    sel = ss.get(follow)
    return sel if isinstance(sel, int) and 0 <= sel < m else None


def _toy(i: int, r: LiveRun, snap, snaps, s: tl.ToySettings, height: int):
    sel = _selected(i, r, snap)
    # building the figure is most of a redraw's cost: rebuild only when something changed
    labels = r.handle.status.state not in ("starting", "running")  # costly in the browser
    fkey = (r.run_id, snap.step if snap else -1, sel, s.show_d, s.d_class, s.trails, height, labels)
    cached = ss.get(f"tl_figcache_{i}")
    if cached is not None and cached[0] == fkey:
        spec = cached[1]
    else:
        trails = tl.trail_positions(snaps) if s.trails else None
        # the step is in the status line above; in the title only once the run stops, so
        # that a redraw while training does not re-lay out the chart's title
        title = METHOD_LABELS[r.method] if not labels else \
            f"{METHOD_LABELS[r.method]} — step {snap.step if snap else 0}"
        fig = tl.toy_view(snap, r.data.x_train, r.data.y_train, hulls=r.hulls,
                          x_range=r.x_range, y_range=r.y_range, trails=trails, selected=sel,
                          show_d=s.show_d, d_class=s.d_class, title=title, height=height,
                          uirevision=f"toy{i}{r.run_id}", real_image=r.real_image,
                          contour_labels=labels, trails_as_image=not labels,
                          image_size=r.image_size, trails_legend=s.trails, as_dict=True)
        if not labels:
            # Plotly redraws its legend at every update: while training the chart shows a
            # static copy of it instead (app.ui.live_plot); the trails are one image then
            # (a few hundred SVG paths and dots were half of a browser redraw)
            fig["layout"]["showlegend"] = False
        # plain dicts to JSON: 6 ms where Plotly objects + to_json took 27 (bench/toy_view_draw.py)
        spec = figure_json(fig)
        ss[f"tl_figcache_{i}"] = (fkey, spec)
    # updated in place (Plotly.react) rather than st.plotly_chart's new chart at every redraw
    live_plot(spec, key=f"tl_fig_{i}_{r.run_id}", config=tl.PLOTLY_CONFIG)
    # under the plot (not above it: the chart must not move when a class collapses or recovers)
    show_collapse_warnings(snap.health if snap else None, r.method)
    gen = snap.generated if snap else None
    if gen is not None:
        m = len(gen.x)
        opts = [None] + list(range(m))
        if ss.get(f"tl_follow_{i}") not in opts:
            ss[f"tl_follow_{i}"] = None
        st.selectbox("Follow a generated point (or click one in the plot)", opts,
                     key=f"tl_follow_{i}",
                     format_func=lambda k: "none" if k is None else f"#{k} (class {int(gen.y[k])})")
        if sel is not None and gen.parent_idx is not None:
            rows = gen.parent_idx[sel]
            lines = ["| parent (training row) | x₁ | x₂ | weight |", "|---:|---:|---:|---:|"]
            for j, w in zip(rows, gen.parent_w[sel]):
                x1, x2 = r.data.x_train[int(j), :2]
                lines.append(f"| {int(j)} | {x1:.2f} | {x2:.2f} | {float(w):.3f} |")
            st.markdown("\n".join(lines))
            st.caption(f"Point #{sel} is Σ wⱼxⱼ over all {int((r.data.y_train == gen.y[sel]).sum())} "
                       f"real points of class {int(gen.y[sel])}; these are its heaviest parents "
                       f"(together {float(gen.parent_w[sel].sum()):.0%} of the weight).")


def _views(runs: list[LiveRun]) -> list[tuple[LiveRun, object, list]]:
    now = time.monotonic()
    out = []
    for r in runs:
        r.last_poll = now          # the watchdog pauses runs nobody looks at
        snaps = r.handle.history()
        out.append((r, snaps[-1] if snaps else None, snaps))
    return out


def live_main(runs: list[LiveRun], s: tl.ToySettings, ticking: bool) -> None:
    """Fast fragment: status line(s) and the 2D view(s), redrawn every REFRESH_S."""
    t0 = time.perf_counter()
    ss.tl_redraws = ss.get("tl_redraws", 0) + 1
    views = _views(runs)
    if len(runs) == 1:
        r, snap, snaps = views[0]
        _status_line(0, r, snap, snaps, ss.tl_redraws)
        _toy(0, r, snap, snaps, s, height=600)
    else:
        for i, (col, (r, snap, snaps)) in enumerate(zip(st.columns(len(runs), gap="medium"), views)):
            with col:
                _status_line(i, r, snap, snaps, ss.tl_redraws)
                _toy(i, r, snap, snaps, s, height=520)
                if snap is not None:
                    stats = r.stats(snap)
                    rec = ", ".join(f"class {c} {v:.2f}" for c, v in enumerate(snap.test.recall))
                    extra = ""
                    if snap.generated is not None and stats["misclassified"] == stats["misclassified"]:
                        extra = (f" · M misclassifies {stats['misclassified']:.0%} of G's points,"
                                 f" mean distance to hull edge {stats['hull_distance']:.2f}")
                    st.caption(f"Test recall {rec} · ACSA {snap.test.acsa:.2f} · "
                               f"GM {snap.test.gm:.2f}{extra}")
    ss.tl_draw_ms = 1000.0 * (time.perf_counter() - t0)
    ss.tl_busy_ms = ss.get("tl_busy_ms", 0.0) + ss.tl_draw_ms
    if ticking and not any(r.handle.status.state in ("starting", "running") for r in runs):
        st.rerun(scope="app")  # the run ended or was paused elsewhere: stop ticking


def live_side(runs: list[LiveRun], s: tl.ToySettings) -> None:
    """Slow fragment: explanation and the curves over steps (redrawn every SIDE_REFRESH_S)."""
    t0 = time.perf_counter()
    try:
        _live_side(runs, s)
    finally:
        ss.tl_busy_ms = ss.get("tl_busy_ms", 0.0) + 1000.0 * (time.perf_counter() - t0)


def _live_side(runs: list[LiveRun], s: tl.ToySettings) -> None:
    views = _views(runs)
    r, snap, snaps = views[0]
    mover = tl.last_mover(ss.get("tl_action"), r.method)
    text = tl.explain(r.method, mover, snap, r.stats(snap) if snap is not None else None,
                      minority=r.minority, real_distance=r.real_distance,
                      state=r.handle.status.state, health=snap.health if snap else None)
    if len(runs) == 1:
        st.info(text)
        show_health_table(snap.health if snap else None)
        if snaps:
            series = tl.history_series(snaps, r.stats)
            # updated in place, like the 2D view (st.plotly_chart would mount new charts)
            live_plot(tl.loss_chart(series), key="tl_losses", config=tl.PLOTLY_CONFIG)
            live_plot(tl.score_chart(series), key="tl_scores", config=tl.PLOTLY_CONFIG)
            if np.isfinite(series["misclassified"]).any():
                live_plot(tl.generated_chart(series, r.real_distance), key="tl_gen",
                          config=tl.PLOTLY_CONFIG)
        return
    a, b = st.columns([1.2, 1.0], gap="medium")
    with a:
        named = {METHOD_LABELS[rr.method]: tl.history_series(sn, rr.stats)
                 for rr, _, sn in views if sn}
        if named:
            live_plot(tl.compare_chart(named, r.minority), key="tl_compare_chart",
                      config=tl.PLOTLY_CONFIG)
    with b:
        st.info(
            "**Same data, same seed, two methods.** This is the paper's Figure 1 on screen. "
            "Baseline CN trains M on the imbalanced points only, so its boundary creeps into "
            "the minority class. GAMO\\D adds G's convex points, which M must classify "
            "correctly: the boundary is pushed back, but without D the points may fill the "
            "empty parts of a non-convex class's hull. GAMO adds D, which keeps them on the "
            "class's real shape. Compare the minority recall (dashed) of both runs. (With the "
            "LS loss D's push fades once D is sure of itself, and GAMO's points can bleed like "
            "GAMO\\D's; the Figure 1 setup in the sidebar uses cross-entropy.)\n\n" + text
        )
        legend = True   # the legend under the first table only
        for rr, sn, _ in views:
            if show_health_table(sn.health if sn else None, caption=legend,
                                 title=f"Generator health: {METHOD_LABELS[rr.method]}"):
                legend = False


def keep_and_share(runs: list[LiveRun], s: tl.ToySettings) -> None:
    with st.expander("Keep and share", expanded=False):
        st.markdown(
            "**Share this setup:** every setting is in the page's address (URL); copy it from "
            "the browser's address bar.  \n**Figure as PNG:** hover the plot and click the camera "
            "icon (“Download plot as png”) in its toolbar.  \n**Generated points as CSV:** their "
            "positions, M's verdict, and each point's heaviest convex parents with weights."
        )
        c1, c2 = st.columns(2)
        for i, r in enumerate(runs):
            def csv(r=r) -> str:
                snap = r.handle.latest
                return tl.generated_table(snap.generated if snap else None, r.data.x_train,
                                          snap.step if snap else None).to_csv(index=False)

            c1.download_button(f"Generated points of {METHOD_LABELS[r.method]} (CSV)", data=csv,
                               file_name=f"toylab_{r.method}_{s.dataset}_generated.csv",
                               mime="text/csv", key=f"tl_csv_{i}", on_click="ignore",
                               disabled=r.handle.latest is None or r.handle.latest.generated is None)
        default = f"toylab-{s.dataset}-{s.method}{'-vs-' + s.compare if s.compare else ''}-seed{s.seed}"
        name = c2.text_input("Run name (saved under runs/)", value=default, key="tl_run_name")
        busy = any(r.handle.status.state in ("starting", "running") for r in runs)
        if c2.button("Save run", key="tl_save", disabled=busy,
                     help="Pause first: a run is saved while it is paused or finished."):
            for r in runs:
                folder = name if len(runs) == 1 else f"{name}-{r.method}"
                try:
                    out = save_run(r, RUNS_DIR, folder, s)
                except (ValueError, RunError) as e:
                    c2.error(f"Not saved: {e}")
                else:
                    c2.success(f"Saved {METHOD_LABELS[r.method]} at step {r.handle.latest.step} "
                               f"to `{out}`")


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------
st.title("Toy Lab")
st.caption("Class imbalance and GAMO in 2D: press Play and watch the three players. "
           "Blue is the majority class, red the minority; crosses are G's generated points.")

first = "tl_settings" not in ss
if first:
    prev, warnings = tl.settings_from_query(st.query_params)
else:
    prev, warnings = ss.tl_settings, []
settings, counts_error = sidebar(prev)
for w in warnings:
    st.warning(w)
if counts_error:
    st.sidebar.error(counts_error)
    st.error(f"{counts_error} The run keeps the last valid counts.")
ss.tl_settings = settings
sync_url(tl.settings_to_query(settings))

runs = ensure_runs(settings)
if runs:
    controls(runs, settings)
    runs = ss.tl_runs
if runs:
    ticking = any(r.handle.status.state in ("starting", "running") for r in runs)
    fast = st.fragment(live_main, run_every=REFRESH_S if ticking else None)
    slow = st.fragment(live_side, run_every=SIDE_REFRESH_S if ticking else None)
    if len(runs) == 1:
        left, right = st.columns([1.45, 1.0], gap="medium")
        with left:
            fast(runs, settings, ticking)
        with right:
            slow(runs, settings)
    else:
        fast(runs, settings, ticking)
        slow(runs, settings)
    keep_and_share(runs, settings)
    with st.expander("How to read the picture"):
        st.markdown(
            """
* **Dots** are the real training points (blue: majority, red: minority). The **shaded
  background** is the class M predicts there; the dark line is M's decision boundary.
* The **dashed red polygon** is the minority class's convex hull. G's points are weighted
  averages of real minority points, so they can never leave it.
* **Crosses** are G's points for a fixed set of noise vectors (the same cross is the same point
  at every step); the faint lines behind them are their recent paths. A cross M misclassifies
  sits on the wrong side of the boundary.
* **Dotted contours** (methods with a discriminator D, such as GAMO) are D's "real" score
  for the chosen class: high where the real points of that class are.
* **Click a cross** to draw lines to its heaviest convex parents (thicker = more weight).
* **Generator health** (the table beside the plot) says whether G makes new points or copies:
  when every generated point of a class is (nearly) one real point, the page warns that the
  generator has *collapsed* for that class; its points then add duplicates, not information.
"""
        )
