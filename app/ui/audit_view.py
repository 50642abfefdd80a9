"""The Image Lab's audit panel pieces: one generated sample's image, measures, parents and
neighbours, and the per-class flags with their exports (Streamlit calls, data from
:mod:`gamo.audit`). The page wires them to its run and selection."""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from app.ui import imagelab as il
from app.ui.imagelab_runs import ImageRun
from gamo.config import METHOD_LABELS


def run_image(run: ImageRun, img, scale: int | None = None):
    """A PIL image of one of the run's images, scaled up to about 96 pixels."""
    h = img.shape[-1]
    return il.to_pil(img, run.vrange, scale or max(1, 96 // max(h, 1)))


def images_row(run: ImageRun, rows, captions) -> None:
    if run.images is None or not len(rows):
        return
    cols = st.columns(max(len(rows), 1))
    for col, j, cap in zip(cols, rows, captions):
        col.image(run_image(run, run.images[int(j)], scale=max(1, 64 // run.images.shape[-1])), caption=cap)


def audit_exports(run: ImageRun, step: int, audit, ss) -> tuple[bytes, bytes | None, bytes]:
    """(NPZ of the flagged samples, PNG contact sheet of them or None, CSV of every sample),
    made once per audit (the panel redraws while a run trains)."""
    from gamo.audit import contact_sheet, flagged_tiles, to_csv

    key = (run.run_id, step, audit.low_pct, audit.high_pct)
    hit = ss.get("il_exports")
    if hit is not None and hit[0] == key:
        return hit[1]
    n_flag = int(audit.flagged.sum())
    npz = il.flagged_npz(audit, step, run.images)
    with tempfile.TemporaryDirectory() as tmp:
        csv_bytes = to_csv(audit, Path(tmp) / "audit.csv").read_bytes()
        png = None
        if run.images is not None:
            tiles, caps = flagged_tiles(audit, run.images, run.data.image_shape)
            png = contact_sheet(tiles, caps, Path(tmp) / "flagged.png", value_range=run.vrange,
                                title=f"{METHOD_LABELS[run.method]} step {step}: {n_flag} of "
                                      f"{audit.n} flagged ({audit.space})").read_bytes()
    ss.il_exports = (key, (npz, png, csv_bytes))
    return npz, png, csv_bytes


def nearest_five(run: ImageRun, x) -> tuple[np.ndarray, np.ndarray]:
    """(rows, distances) of the 5 real training points nearest to the point ``x`` (pixels),
    nearest first; kept for the point last asked about, so that the panel's redraws while the
    same sample is selected (every refresh while a run trains or an audit is under way) do not
    measure the whole training set again."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    key = (run.run_id, hashlib.sha1(x.tobytes()).hexdigest())
    hit = st.session_state.get("il_near5")
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    real = run.data.x_train.reshape(len(run.data.x_train), -1)
    d = np.linalg.norm(real - x[None, :], axis=1)
    near = np.argsort(d)[:5]
    st.session_state.il_near5 = (key, near, d[near])
    return near, d[near]


def show_sample(run: ImageRun, audit, i: int, flags: str, picture: bool = True) -> None:
    """Generated sample ``i``: its image (or the real image shown for it), its measures, its
    convex parents and its nearest real neighbours. ``picture`` False: no image of the sample
    (a page that already shows one, e.g. GAMO2pix's decoding of a feature vector)."""
    names = run.data.class_names
    c = int(audit.y[i])
    a, b = st.columns([0.8, 1.2]) if picture else (None, st.container())
    if a is not None:
        if audit.space == "pixels" and run.images is not None:
            img = il.as_images(audit.x[i:i + 1], run.data.image_shape)
            if img is not None:
                a.image(run_image(run, img[0]), caption=f"generated #{i} (the sample itself)")
        elif run.images is not None:
            j = int(audit.parent_idx[i, 0]) if audit.parent_idx is not None else int(audit.nearest_idx[i])
            what = "its strongest convex parent" if audit.parent_idx is not None else "its nearest real image"
            a.image(run_image(run, run.images[j]), caption=f"#{i} lives in F's features; shown: {what} (real #{j})")
    with b:
        rows = [("class (generated for)", f"{c} ({names[c]})"),
                ("M predicts", f"{int(audit.m_pred[i])} (confidence {audit.m_conf[i]:.2f})"),
                ("D's real score", "–" if audit.d_score is None else f"{audit.d_score[i]:.2f}"),
                ("DCR (closest real)", f"{audit.dcr[i]:.3f} · percentile {audit.dcr_pct[i]:.0f}"),
                ("DCR ratio (0: a copy; to the nearest member's own gap)", f"{audit.dcr_ratio[i]:.2f}"),
                ("closest of another class", f"{audit.dcr_other[i]:.3f} · percentile {audit.dcr_other_pct[i]:.0f}"),
                ("effective parents", "–" if audit.eff_parents is None else f"{audit.eff_parents[i]:.1f}"),
                ("flags", flags)]
        st.markdown("| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))
    if audit.parent_idx is not None:
        st.markdown("**Convex parents** (real training images, heaviest first, with their weights)")
        images_row(run, audit.parent_idx[i], [f"#{int(j)} · w {float(w):.2f}"
                                               for j, w in zip(audit.parent_idx[i], audit.parent_w[i])])
    st.markdown(f"**Nearest real neighbours** (in {audit.space})")
    if audit.space == "pixels":
        near, d = nearest_five(run, audit.x[i])
        images_row(run, near, [f"#{int(j)} · class {int(run.data.y_train[j])} · d {dj:.2f}"
                               for j, dj in zip(near, d)])
    else:
        near = [int(audit.nearest_idx[i])] + ([int(audit.nearest_other_idx[i])]
                                              if audit.nearest_other_idx[i] >= 0 else [])
        caps = [f"closest: #{near[0]} · class {int(run.data.y_train[near[0]])} · d {audit.dcr[i]:.2f}"]
        if len(near) > 1:
            caps.append(f"closest of another class: #{near[1]} · class {int(run.data.y_train[near[1]])}")
        if run.images is not None:
            images_row(run, near, caps)
        else:
            st.caption(" · ".join(caps))


def show_flags_and_exports(run: ImageRun, step: int, audit, ri: int, ss) -> None:
    """Flags per class, and the downloads of the flagged samples and of every measure."""
    from gamo.audit import per_class_summary

    names = run.data.class_names
    st.markdown("**Flags per class**")
    table = il.flag_table(per_class_summary(audit), names)
    st.dataframe(table, hide_index=True, width="stretch")
    n_flag = int(audit.flagged.sum())
    st.caption(f"{n_flag} of {audit.n} generated points flagged.")
    npz, png, csv_bytes = audit_exports(run, step, audit, ss)
    st.download_button(f"Flagged samples (NPZ, {n_flag})", data=npz,
                       file_name=f"imagelab_{run.method}_step{step}_flagged.npz",
                       mime="application/octet-stream", key=f"il_npz_{ri}", on_click="ignore")
    if png is not None:
        st.download_button("Contact sheet of the flagged samples (PNG)", data=png,
                           file_name=f"imagelab_{run.method}_step{step}_flagged.png", mime="image/png",
                           key=f"il_png_{ri}", on_click="ignore")
    st.download_button("Every sample's measures (CSV)", data=csv_bytes,
                       file_name=f"imagelab_{run.method}_step{step}_audit.csv", mime="text/csv",
                       key=f"il_csv_{ri}", on_click="ignore")
