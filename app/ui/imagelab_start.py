"""The Image Lab's runs in the session: the datasets read for them (cached), their start (one run,
or two to compare, each in its own process), restart when the settings that shape them change,
the run buttons' effect and their stop.

The runs themselves (:class:`app.ui.imagelab_runs.ImageRun`) are in ``app/ui/imagelab_runs.py``
(no Streamlit there); the start within the server's cap on live runs is
:func:`app.ui.run_controls.start_runs`, shared with the Toy Lab. The session holds the runs in
``il_runs`` and what they were started for in ``il_runs_key``.
"""
from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import streamlit as st

from app.ui import imagelab as il
from app.ui.imagelab_runs import ImageRun, start_image_run
from app.ui.live_runs import stop_runs
from app.ui.run_controls import apply_action, run_buttons, start_runs
from gamo.config import DataConfig
from gamo.data import load_dataset, load_source
from gamo.errors import GamoError

__all__ = ["availability", "ensure_runs", "run_controls", "stop_all"]

ss = st.session_state     # a proxy: the session of the script run that reads it


@st.cache_data(max_entries=16, show_spinner="Reading the dataset…")
def availability(spec: str, root: str, label: str, name: str, download: bool):
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


def _start(s: il.ImageSettings, data_cfg: DataConfig) -> list[ImageRun] | None:
    """Start the runs for ``s`` (paused); None, with an error or the lab-full notice drawn, if not."""
    methods = [s.method] + ([s.compare] if s.compare else [])
    try:
        cfgs = [il.build_config(s, data_cfg, m) for m in methods]
        data = _dataset(json.dumps(asdict(data_cfg), sort_keys=True))
    except GamoError as e:
        st.error(f"**This setting cannot be trained:** {e}", icon="⚠️")
        return None
    return start_runs("il", cfgs, lambda cfg: start_image_run(cfg, data, s, paused=True))


def _clear_views() -> None:
    ss.il_maps, ss.il_audits, ss.il_sel = {}, {}, None
    for k in [k for k in ss if str(k).startswith(("il_seen_", "il_pick_", "il_png_", "il_hover_"))]:
        del ss[k]


def ensure_runs(s: il.ImageSettings, data_cfg: DataConfig, key: tuple) -> list[ImageRun] | None:
    """The session's runs for these settings: started anew (maps and audits cleared) when ``key``
    changed, else the same runs with the live settings applied."""
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


def run_controls(runs: list[ImageRun], s: il.ImageSettings, data_cfg: DataConfig) -> list[ImageRun] | None:
    """Draw the run buttons (Play, Pause, Step, Reset; keys ``il_*``) and carry out the one
    pressed; returns the session's runs after it (None if a restart could not start them)."""
    action = run_buttons("il")
    if action is not None:
        ss.il_runs = apply_action(action, runs, lambda: _restart(s, data_cfg))
        return ss.il_runs
    return runs


def stop_all(reason: str | None = None) -> None:
    """Stop the session's runs (the page shows a problem instead of them)."""
    stop_runs(ss.get("il_runs"))
    ss.il_runs, ss.il_runs_key = None, None
