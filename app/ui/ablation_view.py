"""The Ablation Grid's Streamlit blocks: the settings sidebar, the runs and their background jobs,
the reference classifier, the grid with its enlarged cell, Table 1, recall per class, the
captions. The logic they draw is in :mod:`app.ui.ablation` (no Streamlit there).

The job queue (:class:`gamo.jobs.JobQueue`) is one per server (``st.cache_resource``), like the
run store it writes to: two sessions asking for the same cell share its job, and a job goes on
when the tab that started it closes (it trains one run of a bounded length). It runs at most
:func:`max_jobs` cells at once (``GAMO_ABLATION_JOBS``; default half the cores, 1 to 8), and a
cell starts only while the server's cap on training processes (:mod:`app.ui.live_runs`) leaves
room beside the live runs.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app.ui import ablation as ab
from app.ui import runs_view as rv
from app.ui.url_state import sync_url, widget_default
from gamo import figure4
from gamo.config import METHOD_LABELS, cpu_cores
from gamo.data.profiles import PROFILE_FORMS
from gamo.errors import GamoError
from gamo.jobs import JobQueue, JobStatus

__all__ = ["sidebar_settings", "max_jobs", "job_queue", "store_roots", "load_reference", "find_cells",
           "dataset_problem", "show_runs", "show_reference", "show_grid", "show_table1", "show_recall",
           "show_captions", "show_measures"]

ss = st.session_state
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
JOBS_REFRESH_S = 2.0
REFERENCE_TIME = {"fashion-mnist": "a few minutes", "digits": "a minute or two"}


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------
def sidebar_settings() -> ab.GridSettings:
    """The settings from the sidebar's widgets (first from the URL), written back to the URL."""
    if "ag_init" not in ss:
        first, warnings = ab.settings_from_query(st.query_params)
        ss["ag_init"], ss["ag_url_warnings"] = first, warnings
    first: ab.GridSettings = ss["ag_init"]
    for w in ss.get("ag_url_warnings", []):
        st.warning(w)
    widget_default("ag_data", first.data)
    widget_default("ag_profile", first.profile)
    widget_default("ag_loss", first.loss)
    widget_default("ag_seeds", list(first.seeds))
    widget_default("ag_methods", first.method_list)
    widget_default("ag_length", first.length)
    with st.sidebar:
        st.header("Your Figure 4")
        data = st.selectbox("Dataset", list(ab.DATASETS), key="ag_data",
                            format_func=lambda k: ab.DATASETS[k].label)
        c = ab.DATASETS[data]
        if c.note:
            st.caption(c.note)
        profile = st.text_input("Imbalance profile (empty: the default)", key="ag_profile", placeholder=c.profile,
                                help="One of: " + ", ".join(PROFILE_FORMS) + f". Default here: {c.profile}.")
        loss = st.radio("Loss", ("ls", "ce"), key="ag_loss", horizontal=True,
                        format_func=lambda v: {"ls": "least squares (the paper's)", "ce": "cross-entropy"}[v])
        seeds = st.multiselect("Seeds", sorted(set(range(10)) | set(ss["ag_seeds"])), key="ag_seeds")
        methods = st.multiselect("Methods (rows)", list(ab.ALL_METHODS), key="ag_methods",
                                 format_func=lambda m: METHOD_LABELS.get(m, m),
                                 help="The paper's Figure 4 has SMOTE, cGAN, cG, cG+D, GAMO\\D and GAMO; Baseline "
                                      "CN gives Table 1 its first row. Every method the engine has can be a row.")
        length = st.number_input(f"Training length in {c.unit} (0: {c.length}, the default)", 0, ab.MAX_LENGTH,
                                 key="ag_length", step=1)
    s = ab.GridSettings(data=data, profile=(profile or "").strip().lower(), loss=loss,
                        seeds=tuple(sorted(int(v) for v in seeds)),
                        methods=",".join(methods), length=int(length))
    sync_url(ab.settings_to_query(s) if s.seeds and s.methods else {})
    return s


# --------------------------------------------------------------------------------------------
# the store, the jobs, the reference classifier
# --------------------------------------------------------------------------------------------
def max_jobs() -> int:
    """Cells trained at once: ``GAMO_ABLATION_JOBS``, else half the cores (1 to 8)."""
    try:
        return max(1, int(os.environ.get("GAMO_ABLATION_JOBS", "")))
    except ValueError:
        return max(1, min(8, cpu_cores() // 2))


def _room(running: int) -> bool:
    from app.ui.live_runs import live_run_count, max_live_runs

    return live_run_count() + running < max_live_runs()


@st.cache_resource(show_spinner=False)
def _queue(log_dir: str, parallel: int) -> JobQueue:
    return JobQueue(log_dir, max_parallel=parallel, room=_room, env={"OMP_NUM_THREADS": "1"})


def job_queue(user_root: Path) -> JobQueue:
    """The server's job queue for runs under ``user_root`` (its logs in ``ablation/.jobs``)."""
    return _queue(str(Path(user_root) / "ablation" / ".jobs"), max_jobs())


def store_roots() -> tuple[list[ab.Root], Path]:
    """(the roots to look for runs in, the user's runs folder): the Runs page's roots."""
    roots = rv.run_roots()
    return [ab.Root(r.path, r.read_only) for r in roots], roots[0].path


def _mtime(p: Path) -> int:
    try:
        return os.stat(p).st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(max_entries=8, show_spinner=False)
def _reference(key: str, fields: tuple, stamp: tuple) -> tuple[Any, str | None]:
    from gamo.config import DataConfig
    from gamo.reference import get_reference

    try:
        return get_reference(DataConfig(**dict(fields)), train=False), None
    except GamoError as e:
        return None, str(e)


def load_reference(s: ab.GridSettings) -> tuple[Any, str | None]:
    """(the dataset's stored reference classifier or None, what is wrong with a damaged one)."""
    from gamo.reference import INFO, cache_dir, committed_dir, reference_key

    d = ab.reference_data(s)
    key = reference_key(d)
    stamp = tuple(_mtime(root / key / INFO) for root in (cache_dir(), committed_dir()))
    fields = tuple((k, getattr(d, k)) for k in ("dataset", "n_classes", "noise"))
    return _reference(key, fields, stamp)


@st.cache_data(max_entries=512, show_spinner=False)
def _load_run(path: str, stamp: tuple) -> figure4.RunFigure:
    return figure4.load_run(path)


def _cached_load(path) -> figure4.RunFigure:
    p = Path(path)
    return _load_run(str(p), tuple(_mtime(p / n) for n in ("config.json", "final.json", figure4.CLAIMS_FILE,
                                                          figure4.GRID_FILE)))


def find_cells(s: ab.GridSettings, roots: Sequence[ab.Root], user: Path, reference: Any) -> list[ab.Cell]:
    return ab.find_cells(s, roots, user, reference=reference, load=_cached_load)


def dataset_problem(s: ab.GridSettings) -> str | None:
    """Why the settings' runs cannot be trained on this machine (the dataset is missing), or None."""
    c = ab.choice(s)
    if c.dataset != "fashion-mnist":
        return None
    from app.ui.imagelab import dataset_status

    ok, how = dataset_status("fashion-mnist")
    return None if ok else how.replace(", or allow the download below (needs internet)", "")


# --------------------------------------------------------------------------------------------
# the runs and their jobs
# --------------------------------------------------------------------------------------------
STATE_WORDS = {"ready": "ready", "stale": "figure files out of date", "no figures": "no figure files yet",
               "running elsewhere": "training elsewhere", "stopped": "stopped (resumable)", "missing": "to train",
               "broken": "cannot be read"}


def _job_words(j: JobStatus) -> str:
    p = j.progress
    if j.state == "queued":
        return "queued"
    if j.state == "cancelling":
        return "stopping…"
    if j.state in ("failed", "cancelled"):
        return f"{j.state}: {j.message}"
    if j.state == "done":
        return "done"
    if p.fraction is not None:
        unit = "epoch" if p.phase == "reference" else "step"
        return f"{p.phase} ({unit} {p.done:,} of {p.total:,})"
    return p.phase


def _rel(p: Path) -> str:
    """A path relative to the repository where it can be (as the Runs page names runs)."""
    try:
        return str(Path(p).resolve().relative_to(rv.ROOT))
    except ValueError:
        return str(p)


def _where(c: ab.Cell) -> str:
    return ("committed" if c.read_only else "yours") + f": {_rel(c.path)}"


def show_runs(s: ab.GridSettings, cells: Sequence[ab.Cell], queue: JobQueue, no_train: str | None) -> None:
    """The cells' states, the buttons that train the missing ones and make figure files, and the
    progress of every job of these cells (a fragment that refreshes while they run)."""
    jobs = {j.key: j for j in queue.status([c.key for c in cells])}
    active = {k for k, j in jobs.items() if j.active}
    trainable = [c for c in cells if c.state in ("missing", "stopped") and c.key not in active]
    makeable = [c for c in cells if c.state in ("no figures", "stale") and c.can_make and c.key not in active]
    n = {k: sum(c.state == k for c in cells) for k in STATE_WORDS}
    nm, ns = len(s.method_list), len(s.seeds)
    st.markdown(f"**{len(cells)} runs** ({nm} method{'s' * (nm != 1)} × {ns} seed{'s' * (ns != 1)}): "
                + ", ".join(f"{v} {STATE_WORDS[k]}" for k, v in n.items() if v)
                + (f"; {len(active)} in the queue" if active else "") + ".")
    b = st.columns(3)
    if b[0].button(f"Train the {len(trainable)} missing run{'s' * (len(trainable) != 1)}", key="ag_train",
                   type="primary", disabled=not trainable or no_train is not None, icon=":material/play_arrow:",
                   help="Each run trains in its own process (then its figure files are made); the page stays "
                        f"usable. {max_jobs()} at a time on this server."):
        for c in trainable:
            queue.submit(ab.train_spec(s, c))
        st.rerun()
    if b[1].button(f"Make figure files for {len(makeable)} run{'s' * (len(makeable) != 1)}", key="ag_make",
                   disabled=not makeable, icon=":material/grid_view:",
                   help="Samples for the grid and the claim measures, from each finished run's checkpoint "
                        "(what `python -m gamo bench figure4` writes into the run folders)."):
        for c in makeable:
            queue.submit(ab.figure_spec(c))
        st.rerun()
    if b[2].button(f"Cancel {len(active)} job{'s' * (len(active) != 1)}", key="ag_cancel_all", disabled=not active,
                   icon=":material/stop:", help="Each training run saves a checkpoint and stops: train it again "
                                                "to resume."):
        queue.cancel_all(active)
        st.rerun()
    others = queue.running() + queue.queued() - len(active)
    if others > 0:
        st.caption(f"{others} more job{'s' * (others != 1)} of other settings (or other users) in this server's "
                   f"queue, {max_jobs()} at a time.")
    if no_train:
        st.warning(f"Nothing can be trained here: {no_train}", icon="📦")
    rows = []
    for c in cells:
        j = jobs.get(c.key)
        rows.append({"method": METHOD_LABELS.get(c.method, c.method), "seed": c.seed,
                     "state": _job_words(j) if j is not None and (j.active or j.state == "failed")
                     else STATE_WORDS.get(c.state, c.state),
                     "run": _where(c), "note": c.note})
    with st.expander("Runs of these settings", expanded=bool(active) or n["broken"] > 0):
        st.dataframe(rows, hide_index=True, key="ag_cells")
    broken = [c for c in cells if c.state == "broken"]
    for c in broken[:5]:
        st.error(f"**{c.label}**: `{_rel(c.path)}` cannot be used: {c.note}.", icon="🧱")
    ref_key = ab.reference_spec(s).key
    every = JOBS_REFRESH_S if active or any(j.active for j in queue.status([ref_key])) else None
    st.fragment(_progress, run_every=every)(queue, [c.key for c in cells] + [ref_key])


def _progress(queue: JobQueue, keys: list[str]) -> None:
    jobs = [j for j in queue.status(keys) if j.active]
    for j in jobs:
        cols = st.columns([6, 1])
        frac = j.progress.fraction
        cols[0].progress(0.0 if frac is None else frac, text=f"{j.label}: {_job_words(j)}")
        if cols[1].button("Cancel", key=f"ag_cancel_{hashlib.sha1(j.key.encode()).hexdigest()[:10]}",
                          disabled=j.state == "cancelling"):
            queue.cancel(j.key)
            st.rerun(scope="fragment")
    before = ss.get("ag_watch", set())
    now = {j.key for j in jobs}
    ss["ag_watch"] = now
    if before - now:            # a job ended: the whole page reads its run again
        st.rerun(scope="app")


# --------------------------------------------------------------------------------------------
# the reference classifier
# --------------------------------------------------------------------------------------------
def show_reference(s: ab.GridSettings, ref: Any, problem: str | None, queue: JobQueue,
                   no_train: str | None) -> None:
    """The reference classifier's architecture, training and test accuracy, or a button that
    trains it in the background."""
    spec = ab.reference_spec(s)
    job = queue.get(spec.key)
    with st.expander("The reference classifier: what measures class fidelity and realism",
                     expanded=ref is None or (job is not None and job.active)):
        if problem:
            st.error(problem)
        if ref is not None:
            i = ref.info
            acc = i.get("test_accuracy")
            per = [v for v in i.get("test_per_class_accuracy") or [] if isinstance(v, (int, float))]
            lines = [f"- **architecture**: {i.get('architecture', '?')} ({i.get('parameters', '?')} parameters; "
                     f"its {i.get('feature_dim', 128)}-d layer is the feature space of the Fréchet distances)",
                     f"- **training**: {i.get('training', '?')}, on the **balanced** full training set "
                     f"({i.get('train_rows', '?')} images, {i.get('train_per_class', '?')} a class), never on a "
                     "run's imbalanced subset, so it judges every method alike",
                     f"- **test accuracy**: {acc:.3f} on {i.get('test_rows', '?')} test images"
                     + (f" (per class {min(per):.2f} to {max(per):.2f})" if per else "")
                     if isinstance(acc, (int, float)) else "- **test accuracy**: not recorded",
                     f"- stored in `{ref.path}`"]
            st.markdown("\n".join(lines))
            return
        d = ab.choice(s).dataset
        st.info(f"No reference classifier is stored for **{d}** yet. Without it, class fidelity, the majority "
                "share and the Fréchet distances cannot be measured (the out-of-distribution and near-duplicate "
                "shares can). Training it takes "
                f"{REFERENCE_TIME.get(d, 'seconds')} in the background; the page stays usable.")
        if job is not None and job.state == "failed":
            st.error(f"Training it failed: {job.message}")
        if st.button("Train the reference classifier", key="ag_ref_train", icon=":material/school:",
                     disabled=(job is not None and job.active) or no_train is not None):
            queue.submit(spec)
            st.rerun()


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------
KIND_WORDS = {
    "generated": "generated samples (images: the dense family's samples are pixels)",
    "nearest real": "the **nearest real image** of each generated sample: conv runs generate F's features, "
                    "not images (GAMO2pix decodes them)",
    "decoded": "GAMO2pix's decodings of the generated features",
    "points": "2D thumbnails: grey the other classes, blue the class's real points, red crosses its generated "
              "points",
}


def show_grid(s: ab.GridSettings, cells: Sequence[ab.Cell]) -> ab.GridLayout | None:
    """The figure for one seed (clickable cells) and its PNG; the layout for :func:`show_enlarged`."""
    seeds = sorted({c.seed for c in cells if c.figure is not None and c.figure.grid is not None})
    if not seeds:
        st.info("No run of these settings has figure files yet: train the missing runs, or make the figure "
                "files of the finished ones (the buttons above), and the grid appears here.")
        return None
    c = st.columns([1, 1, 1])
    if ss.get("ag_seed") not in seeds:
        ss["ag_seed"] = seeds[0]
    seed = c[0].selectbox("Seed shown", seeds, key="ag_seed")
    per_cell = c[1].slider("Samples per cell", 1, figure4.N_GRID, 4, key="ag_per_cell")
    runs = {m: next((x.figure for x in cells if x.method == m and x.seed == seed and x.figure is not None
                     and x.figure.grid is not None), None) for m in s.method_list}
    built = ab.grid_figure(runs, per_cell=per_cell)
    if built is None:
        st.info(f"No run of seed {seed} has figure files.")
        return None
    fig, lay = built
    event = st.plotly_chart(fig, key=f"ag_grid_{seed}_{per_cell}", on_select="rerun", selection_mode="points",
                            config={"displayModeBar": False}, width="stretch")
    _apply_click(event, lay)
    kinds = {str((r.grid or {}).get("gen_kind", "")) for r in runs.values() if r is not None}
    words = "; ".join(KIND_WORDS.get(k, k) for k in sorted(kinds) if k)
    st.caption(f"Seed {seed}. Rows: real samples of each class, then one per method; columns: the minority "
               f"classes, largest first (n: training images). Cells show {words or 'samples'}. Click a cell to "
               "enlarge it below.")
    title = f"Figure 4 on {ab.choice(s).label}, profile {ab.profile_of(s)}, seed {seed}"
    all_runs = ab.runs_by_method(cells, seed=seed)
    c[2].download_button("Download the grid (PNG)", icon=":material/download:", key="ag_png", on_click="ignore",
                         data=lambda: ab.grid_png_bytes(all_runs, seed, title, per_cell=per_cell),
                         file_name=f"figure4-{s.data}-seed{seed}.png", mime="image/png")
    return lay


def _apply_click(event: Any, lay: ab.GridLayout) -> None:
    try:
        pts = event.selection.points if event is not None else []
    except AttributeError:
        pts = []
    if not pts:
        return
    k = pts[0].get("point_index", pts[0].get("point_number"))
    if k is None or not lay.classes:
        return
    row, cls = lay.rows[int(k) // len(lay.classes)], lay.classes[int(k) % len(lay.classes)]
    if ss.get("ag_last_click") != (row, cls):
        ss["ag_last_click"] = (row, cls)
        ss["ag_cell_row"], ss["ag_cell_cls"] = row, cls


def show_enlarged(lay: ab.GridLayout) -> None:
    """The selected cell (a click on the grid, or the two boxes), big."""
    if ss.get("ag_cell_row") not in lay.rows:
        ss["ag_cell_row"] = lay.rows[-1]
    if ss.get("ag_cell_cls") not in lay.classes:
        ss["ag_cell_cls"] = lay.classes[-1]
    info = next(iter(lay.sources.values())).claims or {}
    names = info.get("class_names") or []
    with st.expander("Enlarged cell", expanded=True):
        c = st.columns(2)
        row = c[0].selectbox("Row", lay.rows, key="ag_cell_row",
                             format_func=lambda r: "real samples" if r == "real" else METHOD_LABELS.get(r, r))
        cls = c[1].selectbox("Class", lay.classes, key="ag_cell_cls",
                             format_func=lambda k: names[k] if k < len(names) else str(k))
        fig = lay.sources.get(row)
        if fig is None:
            st.info("This method's run of this seed has no figure files.")
            return
        show_cell(fig, row, cls, info)


def show_cell(fig: figure4.RunFigure, row: str, cls: int, info: dict) -> None:
    """One cell, big: each sample with its flags and its heaviest convex parent."""
    d = ab.cell_samples(fig, row, cls)
    label = "real samples" if row == "real" else METHOD_LABELS.get(row, row)
    names = info.get("class_names") or []
    cname = names[cls] if cls < len(names) else str(cls)
    if d["images"] is None and d["points"] is None:
        st.info(f"{label} has no samples of class {cname} (a classifier-only method generates none).")
        return
    if d["points"] is not None:
        _show_points(fig, row, cls, d, cname)
        return
    imgs = d["images"]
    st.markdown(f"**{label}, class {cname}**: {len(imgs)} "
                + ("real training images" if row == "real" else KIND_WORDS.get(d["kind"], d["kind"])))
    parents = None
    if d["parent"] is not None and d["kind"] == "generated":
        parents = ab.parent_images(fig.path, d["parent"], info.get("image_shape") or imgs.shape[1:])
    per_row = min(8, len(imgs))
    for start in range(0, len(imgs), per_row):
        cols = st.columns(per_row)
        for k in range(start, min(start + per_row, len(imgs))):
            with cols[k - start]:
                st.image(_big(imgs[k]), width="stretch")
                words = []
                if d["flags"]:
                    words.append(", ".join(d["flags"][k]) or "no flag")
                if d["parent"] is not None:
                    words.append(f"parent: row {d['parent'][k]}, w {d['parent_w'][k]:.2f}")
                if words:
                    st.caption("; ".join(words))
                if parents is not None:
                    st.image(_big(parents[k], signed=True), width="stretch", caption="its heaviest parent")
    if row != "real":
        st.caption("Flags (the audit's, in the samples' space): *near-duplicate* (closer to a real image than "
                   "95% of the class's own neighbours are), *out-of-distribution* (farther than 95% of them, or "
                   "nearer another class), *label disputed* (the classifier M says another class). The parent is "
                   "the real training image with the largest convex weight (GAMO, GAMO\\D) or the nearest one "
                   "SMOTE interpolated from.")


def _big(img: np.ndarray, signed: bool = False, px: int = 112):
    from PIL import Image

    a = np.asarray(img, np.float32)
    if signed:
        a = (a + 1.0) * 127.5
    a = np.clip(a, 0, 255).astype(np.uint8)
    im = Image.fromarray(a[0], "L") if a.shape[0] == 1 else Image.fromarray(np.moveaxis(a[:3], 0, -1), "RGB")
    return im.resize((px, px * im.height // im.width), Image.NEAREST)


def _show_points(fig: figure4.RunFigure, row: str, cls: int, d: dict, cname: str) -> None:
    g = fig.grid or {}
    real, ry = g["real"].astype(np.float32), g["real_y"]
    out = go.Figure()
    out.add_trace(go.Scatter(x=real[ry != cls, 0], y=real[ry != cls, 1], mode="markers", name="other classes",
                             marker=dict(color="#bbbbbb", size=5)))
    out.add_trace(go.Scatter(x=real[ry == cls, 0], y=real[ry == cls, 1], mode="markers", name=f"class {cname}, real",
                             marker=dict(color="#1f77b4", size=6)))
    if row != "real":
        p = d["points"]
        text = [", ".join(f) or "no flag" for f in d["flags"]] if d["flags"] else None
        out.add_trace(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", name=f"class {cname}, generated",
                                 marker=dict(color="#d62728", size=9, symbol="x"), hovertext=text))
    out.update_layout(height=420, margin=dict(l=40, r=10, t=30, b=40), plot_bgcolor="white",
                      legend=dict(orientation="h", y=-0.15), yaxis=dict(scaleanchor="x"))
    st.plotly_chart(out, key=f"ag_cell_points_{row}_{cls}", config=PLOTLY_CONFIG, width="stretch")


# --------------------------------------------------------------------------------------------
# beside the grid
# --------------------------------------------------------------------------------------------
def show_table1(s: ab.GridSettings, sums: dict) -> None:
    paper, words = ab.paper_column(s)
    st.markdown("**Table 1 for these runs** (test scores, mean ± std over seeds)")
    st.dataframe(ab.table1_rows(sums, paper, s.method_list), hide_index=True, key="ag_table1")
    st.caption(f"Finished {ab.seeds_note(sums, s.method_list)}. *ACSA*, *GM*: at the last epoch; *(bv)*: at the "
               f"epoch with the best validation GM (the paper's protocol). {words}")


def show_recall(s: ab.GridSettings, sums: dict, info: dict, k: int) -> None:
    names = info.get("class_names") or [str(i) for i in range(k)]
    fig = ab.recall_figure(sums, s.method_list, names, info.get("counts"))
    st.plotly_chart(fig, key="ag_recall", config=PLOTLY_CONFIG, width="stretch")


def show_captions(caps: Sequence[ab.Caption]) -> None:
    """A caption per row: the paper's claim, the test, what was measured, the verdict."""
    st.subheader("The caption, claim by claim")
    for c in caps:
        name = METHOD_LABELS.get(c.method, c.method)
        if c.verdict == "no claim":
            st.markdown(f"**{name}**: {c.claim}")
            continue
        st.markdown(f"{ab.VERDICT_ICON.get(c.verdict, '')} **{name}**: *“{c.claim}”* "
                    f"— test: {c.test}. Measured: {c.evidence}. **{c.verdict.capitalize()}** on these runs.")


def show_measures(sums: dict, methods: Sequence[str], ref: Any) -> None:
    rows = ab.measure_rows(sums, methods)
    if not rows:
        return
    st.dataframe(rows, hide_index=True, key="ag_measures")
    where = "the reference classifier's 128-d feature space" if ref is not None else \
        "the reference classifier's feature space (not measured: it is not trained yet)"
    st.caption("Means over seeds and minority classes of fresh samples (figure files' claims). *Class fidelity*: "
               "share the reference classifier assigns to the class the sample was made for; *majority share*: to "
               f"the majority class; *Fréchet distance*: to the class's held-out real images, in {where} (*real "
               "floor*: what as many real images get); *OOD* / *near-duplicate share*: the audit's flags.")
