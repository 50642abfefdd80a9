"""The Image Lab's sidebar: URL -> widgets -> :class:`app.ui.imagelab.ImageSettings`.

Two parts, because what the rest offers depends on the data: :func:`sidebar_data` (the dataset,
an upload, the download switch) and, once the page knows the dataset's classes and image shape,
:func:`sidebar_rest` (imbalance profile, model family, method and compare, loss, seed, the live
settings and the audit's percentiles). Each widget starts from the previous settings (the URL's
on a first visit, :func:`app.ui.url_state.widget_default`); the Toy Lab's sidebar is its own
(toy datasets, presets, pace), nothing here is shared but those helpers.
"""
from __future__ import annotations

import streamlit as st

from app.ui import imagelab as il
from app.ui.url_state import widget_default
from gamo.config import METHOD_LABELS, METHODS
from gamo.errors import GamoError

__all__ = ["sidebar_data", "sidebar_rest", "SPEED_OPTIONS"]

SPEED_OPTIONS = [1, 2, 5, 10, 20, 50, 100, 200, 500]


def _dataset_label(name: str) -> str:
    ok, _ = il.dataset_status(name)
    return il.DATASET_LABELS[name] + ("" if ok else " · not installed")


def sidebar_data(prev: il.ImageSettings) -> dict:
    """The data part: ``{"dataset", "upload": (path, id) or None, "upload_error": str or None}``."""
    ss = st.session_state
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
    """The rest, for data of ``n_classes`` classes of ``image_shape`` (None: not images): (the
    settings, a message for bad custom counts or None). The class-size chart's slot under the
    profile is left in ``st.session_state.il_sizes_slot``."""
    ss = st.session_state
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
