"""The Image Lab's live view: the two fragments beside each other (the map(s) with their status
lines, fast; test recall, ACSA / GM, confusion and health, slow) and the generated samples grid.

Each function takes the session's runs and settings; the map block itself is
:func:`app.ui.imagelab_map.show_map`. :func:`is_live` and :func:`is_busy` tell the page whether
its fragments should keep ticking.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from app.ui import imagelab as il
from app.ui.curves import compare_chart, history_series, score_chart
from app.ui.figures import confusion_figure, recall_bars
from app.ui.health_view import show_health_table
from app.ui.imagelab_map import PLOTLY_CONFIG, samples_grid, show_map
from app.ui.imagelab_runs import ImageRun
from app.ui.live_plot import live_plot
from gamo.config import METHOD_LABELS

__all__ = ["is_live", "is_busy", "live_main", "live_side", "live_grid"]

ss = st.session_state     # a proxy: the session of the script run that reads it


def is_live(runs: list[ImageRun]) -> bool:
    """A run is starting or training."""
    return any(r.handle.status.state in ("starting", "running") for r in runs)


def is_busy(runs: list[ImageRun]) -> bool:
    """Background work still under way for what is on screen (a map fit, a placement, an audit)."""
    maps = ss.get("il_maps", {}).values()
    audits = ss.get("il_audits", {}).values()
    return any(m.fitting or (m.place_future is not None and not m.place_future.done()) for m in maps) or \
        any(a.pending for a in audits)


def live_main(runs: list[ImageRun], s: il.ImageSettings, ticking: bool) -> None:
    """Fast fragment: status line(s) and the map(s); a full rerun once nothing is left to tick."""
    t0 = time.perf_counter()
    ss.il_redraws = ss.get("il_redraws", 0) + 1
    now = time.monotonic()
    views = []
    for r in runs:
        r.last_poll = now
        views.append(r.handle.history())
    if len(runs) == 1:
        show_map(0, runs[0], views[0], s, height=600)
    else:
        for i, (col, r, snaps) in enumerate(zip(st.columns(len(runs), gap="medium"), runs, views)):
            with col:
                show_map(i, r, snaps, s, height=520)
    ss.il_draw_ms = 1000.0 * (time.perf_counter() - t0)
    ss.il_busy_ms = ss.get("il_busy_ms", 0.0) + ss.il_draw_ms
    if ticking and not is_live(runs) and not is_busy(runs):
        st.rerun(scope="app")     # the run paused or ended and the maps are done: stop ticking


def _side_one(r: ImageRun, snaps, key: str) -> None:
    """One run's recall bars, ACSA / GM curves, confusion matrix and health table."""
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
    """Slow fragment: recall, ACSA / GM, confusion, health (two runs: a comparison chart, then
    each run's charts in its own column)."""
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
    """The generated samples grid of each run (under the method's name when there are two)."""
    for i, r in enumerate(runs):
        snaps = r.handle.history()
        snap = snaps[-1] if snaps else None
        if len(runs) > 1:
            st.markdown(f"#### {METHOD_LABELS[r.method]}")
        samples_grid(r, snap, ss.get("il_maps", {}).get((r.run_id, "pca")) or
                     ss.get("il_maps", {}).get((r.run_id, s.projection)))
