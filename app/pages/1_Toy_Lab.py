"""Train GAMO (or a baseline) on a 2D toy in seconds and watch it live: M's decision regions, D's score, each minority class's convex hull, and the generated points moving toward the class periphery; click a generated point to see its convex parents, compare up to four methods side by side in lockstep, slow it down to a few iterations per second, or go back through a run's snapshots.

The page only wires widgets: settings, figures and texts live in ``app/ui/toylab.py``, the live
runs (engine run handles, each training in its own process) and the Baseline CN reference in
``app/ui/toylab_runs.py``, the pace and lockstep in ``app/ui/pacer.py``; the run buttons and status
line (``app/ui/run_controls.py``), the runs' life (``app/ui/live_runs.py``), the curves
(``app/ui/curves.py``), the live chart (``app/ui/live_plot.py``), the URL state
(``app/ui/url_state.py``), the health table (``app/ui/health_view.py``) and the class-size chart
(``app/ui/figures.py``) are shared with the Image Lab. Every setting is mirrored in the URL, so a
link reproduces the exact setup.
"""
from __future__ import annotations

import streamlit as st
from streamlit import config as _st_config

# Streamlit runs a full gc.collect(2) after every script run, fragment runs included; with
# torch, plotly and pandas loaded that is ~0.1 s holding the GIL, five times a second, which
# starves the training worker. The lab's .streamlit/config.toml should say
# `[runner] postScriptGC = false`; until it does, the page turns it off for its server.
if _st_config.get_option("runner.postScriptGC"):
    _st_config.set_option("runner.postScriptGC", False)

st.set_page_config(page_title="Toy Lab · GAMO Lab", page_icon="⚖️", layout="wide")
ss = st.session_state
# a fresh server imports PyTorch and the engine first (seconds): say so instead of a blank page
_loading = st.empty()
if "tl_settings" not in ss:
    _loading.info("Loading the Toy Lab: PyTorch and the training engine start once per server "
                  "(a few seconds)…", icon="⏳")

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import toylab as tl  # noqa: E402
from app.ui.figures import class_sizes_chart, figure_json, generated_indices_from_selection  # noqa: E402
from app.ui.health_view import show_collapse_warnings, show_health_table  # noqa: E402
from app.ui.live_plot import live_plot  # noqa: E402
from app.ui.live_runs import LabFull, check_room  # noqa: E402
from app.ui.limits_view import lab_full_notice  # noqa: E402
from app.ui.pacer import PACE_OPTIONS, Pacer, pace_chunk, pace_label, shown_step  # noqa: E402
from app.ui.run_controls import run_buttons, status_line  # noqa: E402
from app.ui.toylab_share import keep_and_share  # noqa: E402
from app.ui.toylab_runs import (  # noqa: E402
    EXTEND_STEPS,
    LiveRun,
    reference_key,
    start_live_run,
    start_reference,
    start_watchdog,
    stop_runs,
    wait_for_step,
)
from app.ui.url_state import sync_url, widget_default  # noqa: E402
from gamo.config import METHOD_LABELS, DataConfig  # noqa: E402
from gamo.data import load_dataset  # noqa: E402
from gamo.errors import GamoError  # noqa: E402

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
REPLAY_FRAMES = 60          # a replay shows about this many snapshots (12 s at 5 redraws/s)
RUNS_DIR = Path(os.environ.get("GAMO_RUNS_DIR", _ROOT / "runs"))
LR_OPTIONS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]
SPEED_OPTIONS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500]
LATENT_OPTIONS = [2, 4, 8, 16, 32, 64, 128]
WIDTH_OPTIONS = [8, 16, 32, 64, 128, 256]
BATCH_OPTIONS = [16, 32, 64, 128, 256]
TOY_LABELS = {"moons": "two moons", "circles": "circles (ring around a disc)", "blobs": "blobs",
              "spirals": "spirals", "nonconvex": "non-convex minority (paper's Fig. 1)"}
LEGEND_PX = 96              # compare grid: the legend's strip under every panel's plot


# --------------------------------------------------------------------------------------
# settings: URL -> widgets -> ToySettings -> URL
# --------------------------------------------------------------------------------------
def _with(options: list, value) -> list:
    return sorted(set(options) | {value})


_ensure = widget_default


# every widget that holds a setting (cleared to load a preset)
SETTING_KEYS = ("tl_dataset", "tl_classes", "tl_imb", "tl_counts", "tl_nmax", "tl_ir", "tl_noise",
                "tl_seed", "tl_method", "tl_compare", "tl_loss", "tl_latent", "tl_width", "tl_batch",
                "tl_lr_m", "tl_lr_d", "tl_lr_g", "tl_speed", "tl_pace", "tl_show_d", "tl_d_class",
                "tl_trails")


def _load_preset(s: tl.ToySettings) -> None:
    """Replace every setting by ``s`` (the runs restart, as after any data or model change)."""
    for k in SETTING_KEYS:
        ss.pop(k, None)
    ss.tl_settings = s


def _on_dataset() -> None:
    if ss.tl_dataset not in tl.MULTICLASS_TOYS:
        ss.tl_classes = 2
        if ss.get("tl_imb") in tl.MULTICLASS_ONLY_KINDS:
            ss.tl_imb = "ratio"
        _on_classes()


def _on_classes() -> None:
    try:
        counts = tl.parse_counts(ss.get("tl_counts", ""))
    except ValueError:
        counts = tl.DEFAULTS.counts
    ss.tl_counts = ",".join(str(c) for c in tl._fit_counts(counts, int(ss.tl_classes)))


def _on_imbalance() -> None:
    if ss.tl_imb == "paper":               # the paper's profile has 10 classes
        ss.tl_classes = tl.MAX_TOY_CLASSES
        _on_classes()


def sidebar(prev: tl.ToySettings) -> tuple[tl.ToySettings, str | None, object]:
    """The sidebar's widgets; returns the settings, a counts error (or None) and the slot of the
    class-size chart."""
    sb = st.sidebar
    sb.button("Load the paper's Figure 1 setup", key="tl_fig1", on_click=_load_preset, args=(tl.FIGURE1,),
              help="A non-convex minority class (an arc around the majority), GAMO next to GAMO\\D, "
                   "cross-entropy loss, D's contours on. Press Play and watch where each run's "
                   "generated points go.")
    sb.header("Data")
    _ensure("tl_dataset", prev.dataset)
    sb.selectbox("Toy dataset", tl.TOY_NAMES, key="tl_dataset", format_func=TOY_LABELS.get,
                 on_change=_on_dataset)
    multi = ss.tl_dataset in tl.MULTICLASS_TOYS
    _ensure("tl_imb", prev.imbalance)
    kinds = tl.IMBALANCE_KINDS if multi else tuple(k for k in tl.IMBALANCE_KINDS
                                                   if k not in tl.MULTICLASS_ONLY_KINDS)
    if ss.tl_imb not in kinds:
        ss.tl_imb = "ratio"
    _ensure("tl_classes", prev.n_classes)
    if multi:
        if ss.tl_imb == "paper":
            ss.tl_classes = tl.MAX_TOY_CLASSES
        sb.number_input("Classes", 2, tl.MAX_TOY_CLASSES, key="tl_classes", on_change=_on_classes,
                        disabled=ss.tl_imb == "paper",
                        help="The paper's profile has 10 classes." if ss.tl_imb == "paper" else None)
    sb.radio("Imbalance given as", kinds, key="tl_imb", format_func=tl.IMBALANCE_LABELS.get,
             on_change=_on_imbalance,
             help="Long tail and the paper's profile are for the multi-class toys (blobs, spirals)."
             if multi else "Blobs and spirals also offer a long tail and the paper's profile.")
    n_classes = int(ss.tl_classes) if multi else 2
    counts_error = None
    counts = prev.counts
    if ss.tl_imb == "counts":
        _ensure("tl_counts", ",".join(str(c) for c in prev.counts))
        sb.text_input("Training points per class (class 0 first)", key="tl_counts",
                      help="Comma-separated, e.g. 1000,50. Class 0 is the majority.")
        try:
            counts = tl.parse_counts(ss.tl_counts)
            if len(counts) != n_classes:
                raise ValueError(f"give {n_classes} counts, one per class")
        except ValueError as e:
            counts_error = f"Points per class: {e}."
            counts = prev.counts if len(prev.counts) == n_classes else tl._fit_counts(prev.counts, n_classes)
    else:
        _ensure("tl_nmax", prev.n_max)
        _ensure("tl_ir", float(prev.ir))
        sb.number_input("Largest class size", 2, 5000, step=100, key="tl_nmax")
        if ss.tl_imb != "paper":
            sb.number_input("Imbalance ratio (largest / smallest class)", 1.0, 1000.0, step=1.0,
                            key="tl_ir", format="%g",
                            help="Long tail: the classes shrink geometrically from the largest to "
                                 "the largest / ratio." if ss.tl_imb == "exp" else None)
        else:
            sb.caption("The paper's MNIST profile (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, "
                       "40: ratio 100), scaled to this largest class.")
    sizes_slot = sb.empty()
    _ensure("tl_noise", float(prev.noise))
    sb.slider("Noise", 0.0, 1.0, step=0.05, key="tl_noise")
    _ensure("tl_seed", int(prev.seed))
    sb.number_input("Seed", 0, 2**31 - 1, step=1, key="tl_seed")

    sb.header("Model")
    _ensure("tl_method", prev.method)
    if ss.tl_method not in tl.TOY_METHODS:
        ss.tl_method = tl.DEFAULTS.method
    sb.selectbox("Method", tl.TOY_METHODS, key="tl_method", format_func=METHOD_LABELS.get,
                 help="Every method that can train on 2D points (Augment+CN transforms images: "
                      "it is in the Image Lab).")
    others = [m for m in tl.TOY_METHODS if m != ss.tl_method]
    _ensure("tl_compare", [m for m in tl.compare_methods(prev) if m in others])
    chosen = [m for m in ss.tl_compare if m in others][: tl.MAX_COMPARED - 1]
    if chosen != list(ss.tl_compare):
        ss.tl_compare = chosen
    sb.multiselect("Compare with (same data and seed, side by side)", others, key="tl_compare",
                   max_selections=tl.MAX_COMPARED - 1, format_func=METHOD_LABELS.get,
                   help="Up to three more methods, trained in lockstep next to the first: every "
                        "panel shows the same step.")
    compare = ",".join(ss.tl_compare)
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
    _ensure("tl_pace", int(prev.pace))
    pace_opts = sorted({p for p in PACE_OPTIONS if p} | ({int(prev.pace)} - {0})) + [0]   # full speed last
    sb.select_slider("Pace: iterations per second", pace_opts, key="tl_pace", format_func=pace_label,
                     help="Slow it down to follow one generated point step by step (1-5 it/s), "
                          "or let it run at full speed.")
    _ensure("tl_speed", prev.speed)
    if not ss.tl_pace:
        sb.select_slider("Snapshot every (iterations, at full speed)", _with(SPEED_OPTIONS, prev.speed),
                         key="tl_speed", help="Iterations between two pictures of the view.")

    sb.header("View")
    _ensure("tl_show_d", prev.show_d)
    sb.toggle("Show D's real score (contours)", key="tl_show_d")
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
        speed=int(ss.tl_speed), pace=int(ss.tl_pace), show_d=bool(ss.tl_show_d),
        d_class=int(ss.tl_d_class), trails=bool(ss.tl_trails),
    )
    return s, counts_error, sizes_slot


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
    if "adasyn" in low:
        return "ADASYN needs minority points with majority neighbours; SMOTE works on any data."
    return "Change the setting the message names in the sidebar; the page's defaults always work."


def _start(s: tl.ToySettings) -> list[LiveRun] | None:
    """Start the session's runs for ``s`` (one to four, in lockstep); None on an error."""
    methods = tl.methods_of(s)
    try:
        cfgs = [tl.build_config(s, m) for m in methods]
        data = _dataset(json.dumps(asdict(cfgs[0].data), sort_keys=True))
    except GamoError as e:
        st.error(f"**This setting cannot be trained:** {e}\n\n{_hint(str(e))}", icon="⚠️")
        return None
    n = len(cfgs)
    size = (760, 420) if n == 1 else (600, 330)       # about the plot area, in pixels
    history = 1000 if n <= 2 else 500                  # the timeline's snapshots, per run
    what = "the training process" if n == 1 else f"{n} training processes"
    runs: list[LiveRun] = []
    with st.spinner(f"Starting {what} (the first run on a fresh server waits a few seconds for "
                    "PyTorch)…"):
        try:
            check_room(n)                              # the server's cap on live runs
            for cfg in cfgs:
                runs.append(start_live_run(cfg, data, s, paused=True, image_size=size, history=history))
        except LabFull as e:
            stop_runs(runs, wait=0.5)
            ss.tl_runs_key = None                      # the next rerun tries again
            lab_full_notice(e, "tl")
            return None
        start_watchdog(runs)
        wait_for_step(runs, [0] * len(runs), timeout=30.0)
    old = ss.get("tl_pacer")
    if old is not None:
        old.close()
    ss.tl_pacer = Pacer(runs, pace=s.pace, chunk=pace_chunk(s.pace, s.speed))
    _to_live()
    return runs


def _to_live() -> None:
    """Leave the timeline: show the latest step again."""
    ss.tl_view_step = None
    ss.tl_replay = False


def ensure_runs(s: tl.ToySettings) -> list[LiveRun] | None:
    """The session's live runs for these settings (a data/model change stops and restarts)."""
    key = tl.reset_key(s)
    if ss.get("tl_runs_key") != key or "tl_runs" not in ss:
        if ss.get("tl_pacer") is not None:
            ss.tl_pacer.close()
            ss.tl_pacer = None
        stop_runs(ss.get("tl_runs"))
        ss.tl_runs = _start(s)
        ss.tl_runs_key = key if ss.tl_runs is not None else None
        ss.tl_action = "start"
    runs = ss.tl_runs
    for r in runs or []:
        r.apply_live(s)
    if runs and ss.get("tl_pacer") is not None:
        ss.tl_pacer.set(s.pace, pace_chunk(s.pace, s.speed))
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
    pacer: Pacer = ss.tl_pacer
    _to_live()
    if action == "play":
        pacer.play()
    elif action == "pause":
        pacer.pause()
    elif action == "step":
        pacer.step()
    elif action in ("M", "D", "G"):
        pacer.step({action}, [r for r in runs if action in r.players])
    elif action == "reset":
        ss.tl_runs = _restart(s)
    ss.tl_action = action


def finished_banner(runs: list[LiveRun]) -> None:
    """Say that the runs reached their step cap, and offer to train longer."""
    states = [r.handle.status for r in runs]
    done = [r for r, st_ in zip(runs, states) if st_.state == "finished"]
    if not done or any(st_.state in ("starting", "running") for st_ in states):
        return
    total = max(st_.total for st_ in states)
    left, right = st.columns([4, 1.3], vertical_alignment="center")
    who = "the run has reached its" if len(runs) == 1 else "the runs have reached their"
    left.success(f"**Finished:** {who} step cap, {tl.plural(total, 'iteration')}. Train longer to go on from here; "
                 "the timeline below goes back through what it did.", icon="🏁")
    if right.button(f"Train {EXTEND_STEPS:,} more", key="tl_extend", width="stretch",
                    icon=":material/fast_forward:"):
        for r in done:
            r.handle.extend(EXTEND_STEPS)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(r.handle.status.state == "finished" for r in done):
            time.sleep(0.02)
        start_watchdog(runs)
        _to_live()
        ss.tl_pacer.play()
        ss.tl_action = "play"
        st.rerun()


# --------------------------------------------------------------------------------------
# the timeline (once the runs are paused or finished)
# --------------------------------------------------------------------------------------
def _histories(runs: list[LiveRun]) -> list[list]:
    return [r.handle.history() for r in runs]


def _timeline_steps(runs: list[LiveRun]) -> list[int]:
    """The steps every (working) run has a snapshot of, oldest first."""
    lists = [h for r, h in zip(runs, _histories(runs)) if h and r.handle.status.state != "error"]
    if not lists:
        return []
    common = {s.step for s in lists[0]}
    for h in lists[1:]:
        common &= {s.step for s in h}
    return sorted(common)


def _on_timeline() -> None:
    ss.tl_view_step = ss.tl_timeline
    ss.tl_replay = False


def _start_replay(steps: list[int]) -> None:
    cur = ss.get("tl_view_step")
    ss.tl_view_step = cur if cur in steps and cur != steps[-1] else steps[0]
    ss.tl_replay_steps = steps
    ss.tl_replay = True


def timeline(runs: list[LiveRun], busy: bool) -> None:
    if busy:
        return
    steps = _timeline_steps(runs)
    if len(steps) < 2:
        return
    cur = ss.get("tl_view_step")
    if cur not in steps:
        cur = ss.tl_view_step = None
    ss.tl_timeline = steps[-1] if cur is None else cur
    a, b, c = st.columns([6, 1, 1], vertical_alignment="bottom")
    a.select_slider("Timeline: go back through this run's snapshots (the picture, the curves and "
                    "the explanation at that step)", options=steps, key="tl_timeline",
                    on_change=_on_timeline, format_func=lambda v: f"step {v:,}")
    b.button("Replay", key="tl_replay_btn", on_click=_start_replay, args=(steps,), width="stretch",
             icon=":material/replay:", help="Play the snapshots again, from the one shown.")
    c.button("Latest", key="tl_latest", on_click=_to_live, width="stretch",
             disabled=cur is None and not ss.get("tl_replay"), help="Back to the latest step.")
    if cur is not None:
        st.caption(f"Showing step {cur:,} of {steps[-1]:,}"
                   + (" (replaying)" if ss.get("tl_replay") else "")
                   + ". Play goes on from the latest step.")


def _advance_replay() -> None:
    """One frame of a replay: the next snapshot step (at the end, back to a normal page)."""
    steps = ss.get("tl_replay_steps") or []
    cur = ss.get("tl_view_step")
    if not steps or cur not in steps:
        ss.tl_replay = False
        return
    i = steps.index(cur) + max(1, len(steps) // REPLAY_FRAMES)
    if i >= len(steps) - 1:
        ss.tl_view_step = steps[-1]
        ss.tl_replay = False
        st.rerun(scope="app")
    ss.tl_view_step = steps[i]


# --------------------------------------------------------------------------------------
# the live view (a fragment that redraws while a run trains)
# --------------------------------------------------------------------------------------
def _status_line(i: int, r: LiveRun, snap, snaps, redraw: int) -> None:
    extra = " · timeline" if ss.get("tl_view_step") is not None else ""
    pace = ss.tl_settings.pace
    if pace and r.handle.status.state == "running":
        extra += f" · pace {pace_label(pace)}"
    status_line(i, r, snap, snaps, dom_id="toylab-status",
                digest=tl.points_digest(snap.generated if snap else None), redraw=redraw,
                busy_ms=ss.get("tl_busy_ms", 0.0), draw_ms=ss.get("tl_draw_ms"), hint=_hint,
                extra=extra)


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


def _toy(i: int, r: LiveRun, snap, snaps, s: tl.ToySettings, height: int, compare: bool = False):
    sel = _selected(i, r, snap)
    # building the figure is most of a redraw's cost: rebuild only when something changed
    labels = r.handle.status.state not in ("starting", "running") and not ss.get("tl_replay")
    fkey = (r.run_id, snap.step if snap else -1, sel, s.show_d, s.d_class, s.trails, height, labels)
    cached = ss.get(f"tl_figcache_{i}")
    if cached is not None and cached[0] == fkey:
        spec = cached[1]
    else:
        trails = tl.trail_positions(snaps) if s.trails else None
        # the step is in the status line above; in the title only once the run stops, so
        # that a redraw while training does not re-lay out the chart's title
        title = METHOD_LABELS[r.method] if not labels else \
            f"{METHOD_LABELS[r.method]} — step {snap.step if snap else 0:,}"
        fig = tl.toy_view(snap, r.data.x_train, r.data.y_train, hulls=r.hulls,
                          x_range=r.x_range, y_range=r.y_range, trails=trails, selected=sel,
                          show_d=s.show_d, d_class=s.d_class, title=title, height=height,
                          uirevision=f"toy{i}{r.run_id}", real_image=r.real_image,
                          contour_labels=labels, trails_as_image=not labels,
                          image_size=r.image_size, trails_legend=s.trails, as_dict=True,
                          legend_px=LEGEND_PX if compare else None,
                          title_color=tl.method_color(r.method, i) if compare else None)
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
    show_collapse_warnings(snap.health if snap else None, r.method, max_shown=2 if compare else None,
                           step=snap.step if snap else None)
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
            n_cls = int((r.data.y_train == gen.y[sel]).sum())
            st.caption(f"Point #{sel} is Σ wⱼxⱼ over all {tl.plural(n_cls, 'real point')} of class "
                       f"{int(gen.y[sel])}; these are its heaviest parents "
                       f"(together {float(gen.parent_w[sel].sum()):.0%} of the weight).")


def _views(runs: list[LiveRun]) -> list[tuple[LiveRun, object, list]]:
    """Each run with the snapshot to draw and its snapshots up to it: the timeline's step, or,
    with several runs, the latest step they all have (lockstep), or each run's latest."""
    now = time.monotonic()
    lists = []
    for r in runs:
        r.last_poll = now          # the watchdog pauses runs nobody looks at
        lists.append(r.handle.history())
    step = ss.get("tl_view_step")
    pacer = ss.get("tl_pacer")
    if step is None and len(runs) > 1:
        ok = [h for r, h in zip(runs, lists) if r.handle.status.state != "error" and h]
        if len(ok) > 1:
            step = shown_step(ok, lockstep=pacer is None or not pacer.diverged)
    out = []
    for r, snaps in zip(runs, lists):
        sub = snaps if step is None else [x for x in snaps if x.step <= step] or snaps[:1]
        out.append((r, sub[-1] if sub else None, sub))
    return out


def _score_caption(r: LiveRun, snap) -> str:
    stats = r.stats(snap)
    rec = ", ".join(f"class {c} {v:.2f}" for c, v in enumerate(snap.test.recall))
    extra = ""
    if snap.generated is not None and stats["misclassified"] == stats["misclassified"]:
        extra = (f" · M misclassifies {stats['misclassified']:.0%} of G's points,"
                 f" mean distance to hull edge {stats['hull_distance']:.2f}")
    return f"Test recall {rec} · ACSA {snap.test.acsa:.2f} · GM {snap.test.gm:.2f}{extra}"


def live_main(runs: list[LiveRun], s: tl.ToySettings, ticking: bool) -> None:
    """Fast fragment: status line(s) and the 2D view(s), redrawn every REFRESH_S."""
    t0 = time.perf_counter()
    ss.tl_redraws = ss.get("tl_redraws", 0) + 1
    if ss.get("tl_replay"):
        _advance_replay()
    views = _views(runs)
    if len(runs) == 1:
        r, snap, snaps = views[0]
        _status_line(0, r, snap, snaps, ss.tl_redraws)
        _toy(0, r, snap, snaps, s, height=600)
    else:
        # a 2 x 2 grid at most: every panel the same size, the same step, the same axes
        height = 540 if len(runs) == 2 else 500
        for row in range(0, len(views), 2):
            cols = st.columns(2, gap="medium")
            for j, (r, snap, snaps) in enumerate(views[row:row + 2]):
                i = row + j
                with cols[j]:
                    _status_line(i, r, snap, snaps, ss.tl_redraws)
                    _toy(i, r, snap, snaps, s, height=height, compare=True)
                    if snap is not None:
                        st.caption(_score_caption(r, snap))
    ss.tl_draw_ms = 1000.0 * (time.perf_counter() - t0)
    ss.tl_busy_ms = ss.get("tl_busy_ms", 0.0) + ss.tl_draw_ms
    if ticking and not ss.get("tl_replay") and \
            not any(r.handle.status.state in ("starting", "running") for r in runs):
        st.rerun(scope="app")  # the run ended or was paused elsewhere: stop ticking


# --------------------------------------------------------------------------------------
# the side: explanation, "same data, Baseline CN", curves
# --------------------------------------------------------------------------------------
def _reference(r: LiveRun, snap):
    """The Baseline CN reference of this run's data at the shown step (or the nearest one
    scored), or None."""
    if snap is None:
        return None
    mine = ss.setdefault("tl_refs", {}).get(reference_key(r.cfg), {})
    exact = mine.get(max(1, snap.step))
    if exact is not None:
        return exact
    done = [ref for ref in mine.values() if ref.state == "done"]
    return min(done, key=lambda ref: abs(ref.steps - snap.step), default=None)


def _reference_row(i: int, r: LiveRun, snap) -> dict | None:
    """One click: Baseline CN on the same data for as many iterations; its score once done."""
    if r.method == "baseline" or snap is None:
        return None
    ref = _reference(r, snap)
    steps = max(1, snap.step)
    label = METHOD_LABELS[r.method]
    a = b = st.container()
    text = "Same data, Baseline CN" if len(ss.tl_runs) == 1 else f"{label} vs Baseline CN, same data"
    if a.button(text, key=f"tl_ref_{i}", width="content", icon=":material/balance:",
                help=f"Train Baseline CN (M alone, no oversampling) on this data and seed for "
                     f"{tl.plural(steps, 'iteration')} and compare with {label}."):
        mine = ss.setdefault("tl_refs", {}).setdefault(reference_key(r.cfg), {})
        if steps not in mine or mine[steps].state == "error":
            try:
                mine[steps] = start_reference(r.cfg, r.data, steps)
            except Exception as e:  # noqa: BLE001 - e.g. the server's limit on live runs
                b.error(f"Baseline CN could not start: {e}")
                return None
        st.rerun(scope="app")      # the side ticks until the score is in
    if ref is None:
        b.caption(f"Is {label} better than doing nothing about the imbalance? Score Baseline CN "
                  "on the same data.")
        return None
    if ref.state == "running":
        b.caption(f"Training Baseline CN on the same data for {tl.plural(ref.steps, 'iteration')}…")
        return None
    if ref.state == "error":
        b.caption(f"Baseline CN failed: {ref.error}")
        return None
    res = ref.result()
    diff = snap.test.acsa - res["acsa"]
    word = "better than" if diff > 0.02 else "worse than" if diff < -0.02 else "about as good as"
    b.markdown(f"<span id='toylab-ref-{i}' data-acsa='{res['acsa']:.4f}'>Baseline CN, same data, "
               f"{tl.plural(res['steps'], 'iteration')}: ACSA **{res['acsa']:.2f}**, GM "
               f"{res['gm']:.2f}. {label} is **{word}** it (ACSA {snap.test.acsa:.2f}).</span>",
               unsafe_allow_html=True)
    return res


def _pending_references() -> bool:
    return any(ref.state == "running" for mine in ss.get("tl_refs", {}).values() for ref in mine.values())


def live_side(runs: list[LiveRun], s: tl.ToySettings) -> None:
    """Slow fragment: explanation and the curves over steps (redrawn every SIDE_REFRESH_S)."""
    t0 = time.perf_counter()
    pending = _pending_references()
    try:
        _live_side(runs, s)
    finally:
        ss.tl_busy_ms = ss.get("tl_busy_ms", 0.0) + 1000.0 * (time.perf_counter() - t0)
    if pending and not _pending_references() and not ss.get("tl_ticking"):
        st.rerun(scope="app")      # the score is in: stop ticking


def _explain(r: LiveRun, snap, s: tl.ToySettings, reference) -> str:
    mover = tl.last_mover(ss.get("tl_action"), r.method)
    return tl.explain(r.method, mover, snap, r.stats(snap) if snap is not None else None,
                      minority=r.minority, real_distance=r.real_distance,
                      state=r.handle.status.state, health=snap.health if snap else None,
                      reference=reference, loss=s.loss)


def _live_side(runs: list[LiveRun], s: tl.ToySettings) -> None:
    views = _views(runs)
    shown = ss.get("tl_view_step")
    if len(runs) == 1:
        r, snap, snaps = views[0]
        ref = _reference_row(0, r, snap)
        st.info(_explain(r, snap, s, ref))
        show_health_table(snap.health if snap else None)
        if snaps:
            series = tl.history_series(r.handle.history() if shown is not None else snaps, r.stats)
            # updated in place, like the 2D view (st.plotly_chart would mount new charts)
            live_plot(tl.mark_step(tl.loss_chart(series), shown), key="tl_losses", config=tl.PLOTLY_CONFIG)
            live_plot(tl.mark_step(tl.score_chart(series), shown), key="tl_scores", config=tl.PLOTLY_CONFIG)
            if np.isfinite(series["misclassified"]).any():
                live_plot(tl.mark_step(tl.generated_chart(series, r.real_distance), shown), key="tl_gen",
                          config=tl.PLOTLY_CONFIG)
        return
    a, b = st.columns([1.2, 1.0], gap="medium")
    with a:
        named, colors = {}, {}
        for i, (rr, _, sn) in enumerate(views):
            if sn:
                label = METHOD_LABELS[rr.method]
                named[label] = tl.history_series(rr.handle.history() if shown is not None else sn, rr.stats)
                colors[label] = tl.method_color(rr.method, i)
        if named:
            live_plot(tl.mark_step(tl.compare_chart(named, views[0][0].minority, colors=colors), shown),
                      key="tl_compare_chart", config=tl.PLOTLY_CONFIG)
        st.markdown("**Same data, Baseline CN** (one click per run: the score to beat)")
        refs = [_reference_row(i, rr, sn) for i, (rr, sn, _) in enumerate(views)]
    with b:
        names = ", ".join(METHOD_LABELS[rr.method] for rr, _, _ in views)
        intro = (f"**Same data, same seed, {len(views)} methods ({names}), in lockstep:** every "
                 "panel shows the same step. Baseline CN trains M on the imbalanced points only, "
                 "so its boundary creeps into the minority class. GAMO\\D adds G's convex points, "
                 "which M must classify correctly: the boundary is pushed back, but without D the "
                 "points may fill the empty parts of a non-convex class's hull. GAMO adds D, "
                 "which keeps them on the class's real shape (the paper's Figure 1). Compare the "
                 "minority recall (dashed) of the runs. (With the LS loss D's push fades once D is "
                 "sure of itself, and GAMO's points can bleed like GAMO\\D's; the Figure 1 setup "
                 "in the sidebar uses cross-entropy.)")
        r, snap, _ = views[0]
        text = _explain(r, snap, s, refs[0])
        others = [tl.verdict(rr.method, sn, minority=rr.minority, stats=rr.stats(sn) if sn else None,
                             reference=ref, loss=s.loss, health=sn.health if sn else None)
                  for (rr, sn, _), ref in list(zip(views, refs))[1:]]
        st.info(intro + "\n\n" + text + "".join(f"\n\n{o}" for o in others if o))
        legend = True   # the legend under the first table only
        for rr, sn, _ in views:
            if show_health_table(sn.health if sn else None, caption=legend,
                                 title=f"Generator health: {METHOD_LABELS[rr.method]}"):
                legend = False


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------
st.title("Toy Lab")
caption_slot = st.empty()

first = "tl_settings" not in ss
if first:
    prev, warnings = tl.settings_from_query(st.query_params)
else:
    prev, warnings = ss.tl_settings, []
settings, counts_error, sizes_slot = sidebar(prev)
_loading.empty()
try:
    sizes = tl.class_counts(settings)
except GamoError as e:
    sizes = None
    sizes_slot.error(str(e))
if sizes is not None:
    sizes_slot.plotly_chart(class_sizes_chart(sizes, height=170), width="stretch", key="tl_sizes",
                            config={"displayModeBar": False})
    caption_slot.caption("Class imbalance and GAMO in 2D: press Play and watch the three players. "
                         + tl.classes_caption(sizes))
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
    running = any(r.handle.status.state in ("starting", "running") for r in runs)
    ticking = running or bool(ss.get("tl_replay"))
    ss.tl_ticking = ticking
    finished_banner(runs)
    timeline(runs, busy=running)
    fast = st.fragment(live_main, run_every=REFRESH_S if ticking else None)
    side_every = SIDE_REFRESH_S if running else 1.0 if (ticking or _pending_references()) else None
    slow = st.fragment(live_side, run_every=side_every)
    if len(runs) == 1:
        left, right = st.columns([1.45, 1.0], gap="medium")
        with left:
            fast(runs, settings, ticking)
        with right:
            slow(runs, settings)
    else:
        fast(runs, settings, ticking)
        slow(runs, settings)
    keep_and_share(runs, settings, RUNS_DIR)
    with st.expander("How to read the picture"):
        st.markdown(tl.reading_guide(sizes if sizes is not None else
                                     [int(c) for c in np.bincount(runs[0].data.y_train)]))
