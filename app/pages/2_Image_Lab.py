"""Train GAMO (or any of the engine's methods) on real images live: scikit-learn digits in seconds, Fashion-MNIST, MNIST, CIFAR10, SVHN or your own table; watch the generated points migrate in a PCA or UMAP map fitted on the real points only, and audit every generated sample (its convex parents, nearest real images, distance to the closest record, M's verdict) before trusting it.

The page only wires widgets: settings, data, images and the map's figure live in
``app/ui/imagelab.py``; the sidebar in ``app/ui/imagelab_sidebar.py``; the datasets read, the
runs' start, restart and buttons in ``app/ui/imagelab_start.py``; the live fragments (the maps
beside recall, curves, confusion and health; the samples grid) in ``app/ui/imagelab_view.py``; the
map block (status line, map, hover images, clicks, the samples grid) in ``app/ui/imagelab_map.py``;
the audit panel (selection -> audit -> sample) in ``app/ui/imagelab_audit.py``; the runs (each in
its own process), the background projections and the audits in ``app/ui/imagelab_runs.py``; the
audit panel's sample view and exports in ``app/ui/audit_view.py``; the run buttons and the runs'
start within the server's cap, the status line, the curves, the live chart, the URL state and the
health table are the blocks the Toy Lab uses too (``app/ui/run_controls.py``, ``app/ui/curves.py``,
``app/ui/live_plot.py``, ``app/ui/url_state.py``, ``app/ui/health_view.py``).
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import streamlit as st
from streamlit import config as _st_config

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import imagelab as il  # noqa: E402
from app.ui.imagelab_audit import audit_panel  # noqa: E402
from app.ui.imagelab_map import map_for  # noqa: E402
from app.ui.imagelab_sidebar import sidebar_data, sidebar_rest  # noqa: E402
from app.ui.imagelab_start import availability, ensure_runs, run_controls, stop_all  # noqa: E402
from app.ui.imagelab_view import is_busy, is_live, live_grid, live_main, live_side  # noqa: E402
from app.ui.url_state import sync_url  # noqa: E402
from app.ui.warm import warm_projection, warm_run_server  # noqa: E402
from gamo.errors import GamoError  # noqa: E402

# the map while a run trains (the issue asks for at least 2 redraws a second on digits)
REFRESH_S = 0.4
# the charts beside it, the samples grid and the audit
SIDE_REFRESH_S = 2.5

if _st_config.get_option("runner.postScriptGC"):     # see the Toy Lab: a full gc starves the runs
    _st_config.set_option("runner.postScriptGC", False)

st.set_page_config(page_title="Image Lab · GAMO Lab", page_icon="🖼️", layout="wide")
ss = st.session_state
warm_run_server()       # as Home does, for a user who opens this page first
warm_projection()


def _sizes_figure(sizes: list[int], names: tuple[str, ...]):
    from app.ui.figures import class_sizes_chart     # shared with the Toy Lab

    return class_sizes_chart(sizes, names)


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
        avail = availability(spec, root, ss.get("il_label", prev.label), name, download)
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
runs = run_controls(runs, settings, data_cfg)
if not runs:
    st.stop()
# start what the maps need before deciding whether the map's fragment ticks: the newest
# snapshot's points (PCA places them at once), or a layout fitted in the background, which a
# paused run's map then shows as soon as it is there (without Play)
for r in runs:
    map_for(r, r.handle.history(), settings.projection)

ticking = is_live(runs) or is_busy(runs)
fast = st.fragment(live_main, run_every=REFRESH_S if ticking else None)
slow = st.fragment(live_side, run_every=SIDE_REFRESH_S if is_live(runs) else None)
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
st.fragment(live_grid, run_every=SIDE_REFRESH_S if is_live(runs) else None)(runs, settings)

st.subheader("Audit: should I trust this generated sample?")
audit_ticking = is_live(runs) or any(a.pending for a in ss.get("il_audits", {}).values())
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
  features, and so do the map and the audit. An epoch is F's phase (F learns its features
  while G, M and D wait: the crosses hold still) then G's phase (F frozen: the crosses move);
  the map is refitted on F's new features when G's phase starts (a *keyframe*), aligned to the
  previous one so that the paths stay meaningful.
* **Beside the map**: test recall per class (the minority classes are the small ones), ACSA and
  GM over steps, the confusion matrix and the generator's health.
* **The audit** asks of each generated point: is it a near copy of one real image (few effective
  parents, tiny distance to its closest record), is it far from its class or nearer another one
  (out of distribution), and does M disagree with its label? Export the flagged ones to look at
  them, or to leave them out of an oversampled training set.
"""
    )
