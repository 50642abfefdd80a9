"""Train GAMO (or a baseline) on a 2D toy in seconds and watch it live: M's decision regions, D's score, each minority class's convex hull, and the generated points moving toward the class periphery; click a generated point to see its convex parents, compare up to four methods side by side in lockstep, slow it down to a few iterations per second, or go back through a run's snapshots.

The page only wires widgets: settings, figures and texts live in ``app/ui/toylab.py``; the sidebar
(dataset, imbalance profile, methods, the Figure 1 preset, pace) in ``app/ui/toylab_sidebar.py``;
the timeline and the two live fragments (status lines, the 2D views with their collapse warnings
and generated-points panels, the explanation, the Baseline CN reference, the curves) in
``app/ui/toylab_view.py``; the live runs (engine run handles, each training in its own process)
and the Baseline CN reference runs in ``app/ui/toylab_runs.py``; "Keep and share" in
``app/ui/toylab_share.py``; the pace and lockstep in ``app/ui/pacer.py``. The run buttons, the
runs' start within the server's cap and the status line (``app/ui/run_controls.py``), the runs'
life (``app/ui/live_runs.py``), the curves (``app/ui/curves.py``), the live chart
(``app/ui/live_plot.py``), the URL state (``app/ui/url_state.py``), the health table
(``app/ui/health_view.py``) and the class-size chart (``app/ui/figures.py``) are shared with the Image Lab. Every setting is mirrored in the URL, so a
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
from app.ui.figures import class_sizes_chart  # noqa: E402
from app.ui.pacer import Pacer, pace_chunk  # noqa: E402
from app.ui.run_controls import run_buttons, start_runs  # noqa: E402
from app.ui.toylab_share import keep_and_share  # noqa: E402
from app.ui.toylab_runs import (  # noqa: E402
    EXTEND_STEPS,
    LiveRun,
    start_live_run,
    start_watchdog,
    stop_runs,
)
from app.ui.toylab_sidebar import sidebar  # noqa: E402
from app.ui.toylab_view import (  # noqa: E402
    error_hint,
    live_main,
    live_side,
    pending_references,
    timeline,
    to_live,
)
from app.ui.url_state import sync_url  # noqa: E402
from gamo.config import DataConfig  # noqa: E402
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
RUNS_DIR = Path(os.environ.get("GAMO_RUNS_DIR", _ROOT / "runs"))


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _dataset(data_json: str):
    return load_dataset(DataConfig(**json.loads(data_json)))



def _start(s: tl.ToySettings) -> list[LiveRun] | None:
    """Start the session's runs for ``s`` (one to four, in lockstep); None on an error."""
    methods = tl.methods_of(s)
    try:
        cfgs = [tl.build_config(s, m) for m in methods]
        data = _dataset(json.dumps(asdict(cfgs[0].data), sort_keys=True))
    except GamoError as e:
        st.error(f"**This setting cannot be trained:** {e}\n\n{error_hint(str(e))}", icon="⚠️")
        return None
    n = len(cfgs)
    size = (760, 420) if n == 1 else (600, 330)       # about the plot area, in pixels
    history = 1000 if n <= 2 else 500                  # the timeline's snapshots, per run
    what = "the training process" if n == 1 else f"{n} training processes"
    with st.spinner(f"Starting {what} (the first run on a fresh server waits a few seconds for "
                    "PyTorch)…"):
        runs = start_runs("tl", cfgs, lambda cfg: start_live_run(cfg, data, s, paused=True,
                                                                 image_size=size, history=history))
    if runs is None:
        return None
    old = ss.get("tl_pacer")
    if old is not None:
        old.close()
    ss.tl_pacer = Pacer(runs, pace=s.pace, chunk=pace_chunk(s.pace, s.speed))
    to_live()
    return runs


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
    to_live()
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
        to_live()
        ss.tl_pacer.play()
        ss.tl_action = "play"
        st.rerun()

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
    side_every = SIDE_REFRESH_S if running else 1.0 if (ticking or pending_references()) else None
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
