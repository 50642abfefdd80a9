"""The Image Lab's map block: the map of one run (status line, the figure in a chart updated in
place, its hover images, a click selecting a point for the audit), the images shown for points
and the generated samples grid; and the session's map states and background executors.

The runs, their :class:`app.ui.imagelab_runs.MapState` and the projections are in
``app/ui/imagelab_runs.py`` (no Streamlit there); the figure itself is
:func:`app.ui.imagelab.map_figure`. The page wires :func:`show_map` into its fast fragment.
"""
from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import streamlit as st

from app.ui import imagelab as il
from app.ui.figures import figure_json
from app.ui.health_view import show_collapse_warnings
from app.ui.imagelab_runs import ImageRun, MapState, nearest_rows
from app.ui.live_plot import live_plot
from app.ui.run_controls import status_line
from gamo.config import METHOD_LABELS

__all__ = ["PLOTLY_CONFIG", "executor", "map_state", "map_for", "show_map", "selection", "point_image",
           "hover_real", "hover_gen", "samples_grid"]

PLOTLY_CONFIG = {"displayModeBar": True, "displaylogo": False, "scrollZoom": False,
                 "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "sendChartToCloud"],
                 "toImageButtonOptions": {"format": "png", "filename": "gamo_image_lab", "scale": 2}}
ss = st.session_state     # a proxy: the session of the script run that reads it


def executor(name: str) -> ThreadPoolExecutor:
    """The session's background worker (one thread): projections, or audits."""
    key = f"il_exec_{name}"
    if key not in ss:
        ss[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imagelab-{name}")
    return ss[key]


def map_state(run: ImageRun, kind: str) -> MapState:
    """The session's map of ``run`` in projection ``kind`` (made on first use)."""
    maps = ss.setdefault("il_maps", {})
    key = (run.run_id, kind)
    if key not in maps:
        maps[key] = MapState(kind, run.cfg.train.seed, run.family)
    return maps[key]


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


def map_for(run: ImageRun, snaps, kind: str) -> tuple[MapState, str]:
    """The map state to draw (UMAP falls back to PCA while its first layout is computed)."""
    ms = map_state(run, kind)
    ms.update(run, snaps, executor("proj"))
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
        pca.update(run, snaps, executor("proj"))
        return pca, note
    if kind == "pca" and not ms.ready and ms.fitting:
        note = "Computing the layout…"
    return ms, note


def selection(i: int, run: ImageRun) -> None:
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


def show_map(i: int, run: ImageRun, snaps, s: il.ImageSettings, height: int) -> None:
    """Run ``i``'s status line and map (the figure rebuilt only when what it shows changed), its
    hover images, a click's selection, and the captions under it."""
    selection(i, run)
    snap = snaps[-1] if snaps else None
    ms, note = map_for(run, snaps, s.projection)
    layout = ms.layout()
    shown = ms.shown(snaps) if layout is not None else None
    step, xy, trails = shown if shown is not None else (None, None, None)
    keyframe = layout[2] if layout is not None else -1
    digest = il.map_digest(step if step is not None else -1, xy, keyframe)
    status_line(i, run, snap, snaps, dom_id="imagelab-status", digest=digest,
                redraw=ss.get("il_redraws", 0), busy_ms=ss.get("il_busy_ms", 0.0),
                draw_ms=ss.get("il_draw_ms"),
                attrs={"map-step": step if step is not None else -1, "keyframe": keyframe,
                       "map": ms.kind, "phase": snap.phase if snap is not None else ""})
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
    stamped = gen is not None and getattr(gen, "features_step", None) is not None
    kf = (f" · **keyframe {keyframe}**: F's features at step {kf_step:,} (refitted "
          + ("when G's phase starts on F's new features" if stamped else "at each epoch end")
          + ", aligned to the previous layout)" if run.family == "conv" else "")
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
    if stamped and snap is not None and snap.phase == "fm" and snap.step > 0:
        st.caption("F's phase: F learns its features while G, M and D wait, so the generated points "
                   "hold still (where G's last phase left them, in the features it used); they move "
                   "again in G's phase, on a keyframe of F's new features.")
    show_collapse_warnings(snap.health if snap else None, run.method, max_shown=1, step=snap.step if snap else None)
