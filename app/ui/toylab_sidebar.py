"""The Toy Lab's sidebar: URL -> widgets -> :class:`app.ui.toylab.ToySettings`.

:func:`sidebar` draws, top to bottom: the paper's Figure 1 preset button, the data (toy dataset,
classes, imbalance profile and its sizes, the class-size chart's slot, noise, seed), the model
(method, the methods compared with it, loss, latent size, width, batch), the live settings (the
three learning rates, the pace, the snapshot interval) and the view (D's contours, trails). Each
widget starts from the previous settings (the URL's on a first visit,
:func:`app.ui.url_state.widget_default`); the callbacks keep classes, profile and counts
consistent, and :func:`load_preset` replaces every setting at once. The Image Lab's sidebar is
its own (``app/ui/imagelab_sidebar.py``).
"""
from __future__ import annotations

import streamlit as st

from app.ui import toylab as tl
from app.ui.pacer import PACE_OPTIONS, pace_label
from app.ui.url_state import widget_default
from gamo.config import METHOD_LABELS

__all__ = ["sidebar", "load_preset", "SETTING_KEYS", "TOY_LABELS", "LR_OPTIONS", "SPEED_OPTIONS",
           "LATENT_OPTIONS", "WIDTH_OPTIONS", "BATCH_OPTIONS"]

LR_OPTIONS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]
SPEED_OPTIONS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500]
LATENT_OPTIONS = [2, 4, 8, 16, 32, 64, 128]
WIDTH_OPTIONS = [8, 16, 32, 64, 128, 256]
BATCH_OPTIONS = [16, 32, 64, 128, 256]
TOY_LABELS = {"moons": "two moons", "circles": "circles (ring around a disc)", "blobs": "blobs",
              "spirals": "spirals", "nonconvex": "non-convex minority (paper's Fig. 1)"}


def _with(options: list, value) -> list:
    """``options`` with ``value`` in it (a value from the URL may be off the list)."""
    return sorted(set(options) | {value})


_ensure = widget_default


# every widget that holds a setting (cleared to load a preset)
SETTING_KEYS = ("tl_dataset", "tl_classes", "tl_imb", "tl_counts", "tl_nmax", "tl_ir", "tl_noise",
                "tl_seed", "tl_method", "tl_compare", "tl_loss", "tl_latent", "tl_width", "tl_batch",
                "tl_lr_m", "tl_lr_d", "tl_lr_g", "tl_speed", "tl_pace", "tl_show_d", "tl_d_class",
                "tl_trails")


def load_preset(s: tl.ToySettings) -> None:
    """Replace every setting by ``s`` (the runs restart, as after any data or model change)."""
    ss = st.session_state
    for k in SETTING_KEYS:
        ss.pop(k, None)
    ss.tl_settings = s


def _on_dataset() -> None:
    ss = st.session_state
    if ss.tl_dataset not in tl.MULTICLASS_TOYS:
        ss.tl_classes = 2
        if ss.get("tl_imb") in tl.MULTICLASS_ONLY_KINDS:
            ss.tl_imb = "ratio"
        _on_classes()


def _on_classes() -> None:
    ss = st.session_state
    try:
        counts = tl.parse_counts(ss.get("tl_counts", ""))
    except ValueError:
        counts = tl.DEFAULTS.counts
    ss.tl_counts = ",".join(str(c) for c in tl._fit_counts(counts, int(ss.tl_classes)))


def _on_imbalance() -> None:
    ss = st.session_state
    if ss.tl_imb == "paper":               # the paper's profile has 10 classes
        ss.tl_classes = tl.MAX_TOY_CLASSES
        _on_classes()


def sidebar(prev: tl.ToySettings) -> tuple[tl.ToySettings, str | None, object]:
    """The sidebar's widgets, starting from ``prev``; returns the settings, a counts error (or
    None) and the slot of the class-size chart (the page fills it once it knows the sizes)."""
    ss = st.session_state
    sb = st.sidebar
    sb.button("Load the paper's Figure 1 setup", key="tl_fig1", on_click=load_preset, args=(tl.FIGURE1,),
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
