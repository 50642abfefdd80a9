"""The Runs page's Streamlit blocks: the filters and table of runs, one run (its scores, curves,
config, generator health, exports and deleting it) and the overlay of several runs' curves.

* :func:`show_table` -- the four filters (dataset, method, loss, status) and the table of the runs
  that match them;
* :func:`show_run` -- one run: its status line and scores, then tabs for its curves
  (:func:`show_curves`), config (:func:`show_config`), generator health (:func:`show_health`),
  its exports (:func:`show_export`) and deleting it after a confirmation (:func:`show_delete`);
* :func:`show_compare` -- the chosen runs' curves overlaid, and their rows of the table.

Every function takes the runs and roots it draws and reads the browser session's
``st.session_state`` (the ``rp_*`` keys: the filters, the open run, the prepared export, the
pending deletion, the message shown after one). The rows, curves and deleting are
:mod:`app.ui.runs_view`'s (no Streamlit), the exports :mod:`gamo.export`'s, the run's own curves
:mod:`app.ui.curves`'s and its health :mod:`app.ui.health_view`'s.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import streamlit as st

from app.ui import runs_view as rv
from app.ui.curves import loss_chart, score_chart
from app.ui.health_view import show_collapse_warnings, show_health_table
from gamo.config import METHOD_LABELS
from gamo.errors import GamoError
from gamo.runs import CONFIG, FINAL, METRICS

__all__ = ["show_table", "show_run", "show_curves", "show_config", "show_health", "show_export",
           "show_delete", "show_compare", "records_of", "CSV_MAX_VALUES", "EXPORT_PREFIX"]

# the CSV is skipped above this many values (rows x columns): the NPZ holds them all
CSV_MAX_VALUES = 20_000_000
EXPORT_PREFIX = "gamo-export-"      # prepared exports: temporary folders, one per session
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
MIME = {".npz": "application/octet-stream", ".csv": "text/csv", ".png": "image/png",
        ".json": "application/json", ".pt": "application/octet-stream"}
EXPORT_WORDS = {                     # the caption under each download button
    "balanced.npz": "the balanced training set (x, y, synthetic, parents)",
    "balanced.csv": "the same rows with each generated row's parents",
    "samples.png": "a grid of generated samples",
    "config.json": "the run's config",
    "checkpoint.pt": "the networks' weights (torch state dicts)",
}


@st.cache_resource(max_entries=48, show_spinner=False)
def _records(path: str, mtime_ns: int, size: int) -> tuple[list[dict], int, str | None]:
    """A run's metrics.jsonl records (read again when the file changes). Read-only."""
    return rv.load_records(path)


def records_of(row: rv.RunRow) -> tuple[list[dict], int, str | None]:
    """The run's records, lines left out, why they cannot be read (cached while the file is unchanged)."""
    try:
        s = os.stat(row.path / METRICS)
    except OSError:
        return [], 0, None
    return _records(str(row.path), s.st_mtime_ns, s.st_size)


def _key(label: str) -> str:
    """A short widget-key suffix for a run."""
    return hashlib.sha1(label.encode()).hexdigest()[:10]


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)

# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def show_table(all_rows: list[rv.RunRow]) -> list[rv.RunRow]:
    """The filters (dataset, method, loss, status: ``rp_f_*``) and the table of the runs that match
    them, with a caption; returns those runs."""
    opts = rv.options(all_rows)
    fc = st.columns(4)
    chosen = {name: fc[j].multiselect(name.capitalize(), opts[name], key=f"rp_f_{name}", placeholder="all")
              for j, name in enumerate(("dataset", "method", "loss", "status"))}
    rows = rv.filter_rows(all_rows, **chosen)
    st.dataframe(
        rv.table_rows(rows), hide_index=True, key="rp_table",
        column_config={**{k: st.column_config.NumberColumn(k, format="%.3f") for k in
                          ("ACSA (last)", "GM (last)", "ACSA (best val)", "GM (best val)")},
                       **{k: st.column_config.NumberColumn(k, format="%.4g") for k in ("epoch", "best-val epoch")}},
    )
    st.caption(f"{len(rows)} of {len(all_rows)} runs. *last*: test scores at the run's last step; *best val*: "
               "test scores at the epoch with the best validation GM (final.json's best_val; empty for runs "
               "without a validation split).")
    return rows


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------
def show_curves(row: rv.RunRow) -> None:
    """The run's curves from its metrics.jsonl: recall per class, ACSA and GM, then the players'
    losses (or why there are none)."""
    recs, dropped, why = records_of(row)
    if why:
        st.error(f"The curves cannot be drawn: {why}")
        return
    if not recs:
        words = ("The committed benchmark runs keep only config.json, final.json and status.json in git; "
                 "rerun the benchmark to get the curves." if row.read_only else
                 "The run stopped before its first record.")
        st.info(f"This run has no records in {METRICS}. {words}")
        return
    if dropped:
        st.caption(f"{dropped} line{'s' * (dropped > 1)} of {METRICS} left out (cut off or superseded by a resume).")
    series = rv.records_series(recs)
    minority = sorted({int(c) for h in rv.health_records(recs).values() for c in h})
    st.plotly_chart(score_chart(series, minority=minority, height=330), key=f"rp_scores_{_key(row.label)}",
                    config=PLOTLY_CONFIG)
    if series["losses"]:
        st.plotly_chart(loss_chart(series, height=260), key=f"rp_losses_{_key(row.label)}", config=PLOTLY_CONFIG)
    st.caption(f"{len(recs)} records of {METRICS}, steps {int(series['steps'][0])} to {int(series['steps'][-1])}: "
               "recall of each class, ACSA and GM on the balanced test split; each player's loss.")


def show_config(row: rv.RunRow) -> None:
    """The run's config.json and final.json (or a line saying each is missing or unreadable)."""
    for name in (CONFIG, FINAL):
        path = row.path / name
        if not os.path.lexists(path):
            st.caption(f"No {name}.")
            continue
        try:
            st.markdown(f"**{name}**")
            st.json(json.loads(path.read_text()), expanded=name == CONFIG)
        except (OSError, ValueError, RecursionError) as e:
            st.error(f"{name} cannot be read: {type(e).__name__}: {str(e)[:200]}")


def show_health(row: rv.RunRow) -> None:
    """The generator's health at one snapshot step (a slider when there are several): the
    collapse warnings and the health table, or why the run has none."""
    recs, _, why = records_of(row)
    health = rv.health_records(recs)
    if not health:
        st.info(f"No generator health in this run's {METRICS}{' (' + why + ')' if why else ''}: it is "
                "recorded at the snapshots of methods that generate a fixed batch of points (GAMO and its "
                "variants, cG, cGAN, the SMOTE family), not for the baseline or the reweighting methods.")
        return
    steps = sorted(health)
    k = f"rp_health_{_key(row.label)}"
    step = steps[-1] if len(steps) == 1 else st.select_slider("Step", options=steps, value=steps[-1], key=k)
    try:
        show_collapse_warnings(health[step], row.info.method, max_shown=3, step=step)
        show_health_table(health[step], title=f"Generator health at step {step}")
    except Exception as e:  # noqa: BLE001 - a foreign record must not break the page
        st.error(f"The health record of step {step} cannot be shown ({type(e).__name__}).")


def _forget_old_exports(max_age_s: float = 86_400.0) -> None:
    """Remove this user's prepared exports older than a day (sessions that ended)."""
    now = time.time()
    for p in Path(tempfile.gettempdir()).glob(EXPORT_PREFIX + "*"):
        try:
            st_ = p.lstat()
            if p.is_dir() and not p.is_symlink() and st_.st_uid == os.getuid() and now - st_.st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except (OSError, AttributeError):
            continue


def _prepare_export(row: rv.RunRow, seed: int | None) -> None:
    """Build the run's exports into a fresh temporary folder, kept in ``rp_export`` (the previous
    one removed); an error message where nothing can be exported."""
    from gamo.export import export_run

    ss = st.session_state
    old = ss.pop("rp_export", None)
    if old:
        shutil.rmtree(old["dir"], ignore_errors=True)
    _forget_old_exports()
    out = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
    try:
        with st.spinner("Building the exports…"):
            res = export_run(row.path, out, seed=seed, csv_max_values=CSV_MAX_VALUES)
    except GamoError as e:
        shutil.rmtree(out, ignore_errors=True)
        st.error(str(e))
        return
    except Exception as e:  # noqa: BLE001 - whatever a foreign folder does, the page stays up
        shutil.rmtree(out, ignore_errors=True)
        st.error(f"The export failed: {type(e).__name__}: {str(e)[:300]}")
        return
    if not res.files:
        shutil.rmtree(out, ignore_errors=True)
        reasons = sorted(set(res.skipped.values()))
        st.error("Nothing could be exported from this folder: " + "; ".join(reasons[:3]))
        return
    bs = res.balanced
    ss["rp_export"] = {
        "label": row.label, "seed": seed, "dir": str(out),
        "files": {n: str(p) for n, p in res.files.items()}, "skipped": dict(res.skipped),
        "summary": None if bs is None else
        f"Balanced training set: {len(bs.y)} rows ({int(bs.synthetic.sum())} generated, in "
        f"{'pixels' if bs.space == 'input' else 'F’s feature space'}), class counts {bs.counts()}; "
        f"generated rows from {bs.source}.",
    }


def show_export(row: rv.RunRow) -> None:
    """The export block: the noise seed, *Prepare the exports*, then a download button per file
    prepared for this run and seed (``rp_export``), the files left out and the samples' grid."""
    ss = st.session_state
    st.markdown("**Export**")
    seed = st.number_input("Noise seed of the generated rows (empty: the run's own)", min_value=0,
                           max_value=2**31 - 1, value=None, step=1, key="rp_seed")
    if st.button("Prepare the exports", key="rp_prepare", disabled=row.state == "running"):
        _prepare_export(row, None if seed is None else int(seed))
    if row.state == "running":
        st.caption("The run is training: export it once it has stopped or finished.")
    ex = ss.get("rp_export")
    if ex and ex["label"] == row.label and ex["seed"] == (None if seed is None else int(seed)):
        if ex["summary"]:
            st.success(ex["summary"])
        cols = st.columns(max(1, len(ex["files"])))
        for col, (name, path) in zip(cols, ex["files"].items()):
            p = Path(path)
            with col:
                if p.is_file():
                    st.download_button(name, data=p.read_bytes, icon=":material/download:",
                                       file_name=f"{Path(row.label).name}-{name}",
                                       mime=MIME.get(p.suffix, "application/octet-stream"),
                                       key=f"rp_dl_{name}", on_click="ignore")
                    st.caption(f"{EXPORT_WORDS.get(name, name)}; {_size(p.stat().st_size)}")
        for name, why in ex["skipped"].items():
            st.caption(f"No {name}: {why}")
        png = ex["files"].get("samples.png")
        if png and Path(png).is_file():
            st.image(png, caption="Generated samples, one row per class "
                                  "(captions: the CSV row and the heaviest parent).")
        st.caption("In the CSV the real rows come first, in the training set's order: a generated row's "
                   "parent_j is the `row` of that real parent in the same file, weight_j its convex weight.")


def show_delete(row: rv.RunRow, user: rv.Root, roots: list[rv.Root]) -> None:
    """The delete block: *Delete this run…*, then a confirmation (``rp_confirm``); deleting
    leaves a message in ``rp_flash`` and reruns. Only runs under ``user``, the user's root, never
    those under the read-only ``roots``."""
    ss = st.session_state
    st.markdown("**Delete**")
    if row.read_only:
        st.caption("Committed benchmark runs are read-only here: they are the lab's published results.")
        return
    if st.button("Delete this run…", key="rp_delete"):
        ss["rp_confirm"] = row.label
    if ss.get("rp_confirm") != row.label:
        return
    st.warning(f"Delete `{row.path}` and every file in it? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", key="rp_delete_yes", type="primary"):
        try:
            rv.delete_run(row.path, user.path, [r.path for r in roots if r.read_only])
        except GamoError as e:
            st.error(str(e))
            return
        ss.pop("rp_confirm", None)
        ex = ss.get("rp_export")
        if ex and ex["label"] == row.label:
            shutil.rmtree(ss.pop("rp_export")["dir"], ignore_errors=True)
        ss["rp_flash"] = f"Deleted {row.label}."
        st.rerun()
    if no.button("Cancel", key="rp_delete_no"):
        ss.pop("rp_confirm", None)
        st.rerun()


def show_run(row: rv.RunRow, user: rv.Root, roots: list[rv.Root]) -> None:
    """One run: its title, status line, note and four scores, then the tabs Curves, Config, Health
    and Export and delete (a part that fails shows its error, never breaks the page)."""
    i = row.info
    st.subheader(row.label)
    st.caption(f"{METHOD_LABELS.get(i.method, i.method)} · {i.dataset} · profile {i.profile} · loss {row.loss} · "
               f"status **{i.state}** · step {i.step if i.step is not None else '–'}"
               f"{'' if row.epoch is None else f' (epoch {row.epoch:g})'} · `{row.path}`"
               + (" · read-only" if row.read_only else ""))
    if i.state == "broken":
        st.error(f"This folder cannot be read as a run: {i.note}.")
    elif i.note:
        st.info(i.note)
    b = row.best or {}
    c = st.columns(4)
    c[0].metric("ACSA, last epoch", _fmt(i.acsa))
    c[1].metric("GM, last epoch", _fmt(i.gm))
    c[2].metric("ACSA, best val. epoch", _fmt(b.get("acsa")),
                help="final.json's best_val: the test scores at the epoch with the best validation GM")
    c[3].metric("GM, best val. epoch", _fmt(b.get("gm")),
                help=None if b.get("epoch") is None else
                f"epoch {_fmt(b['epoch'], 'g')}, step {_fmt(b.get('step'), 'g')}")
    tabs = st.tabs(["Curves", "Config", "Health", "Export and delete"])
    sections = ([lambda: show_curves(row)], [lambda: show_config(row)], [lambda: show_health(row)],
                [lambda: show_export(row), st.divider, lambda: show_delete(row, user, roots)])
    for tab, parts in zip(tabs, sections):
        with tab:
            for draw in parts:
                try:
                    draw()
                except Exception as e:  # noqa: BLE001 - one damaged run never breaks the page
                    st.error(f"This part cannot be shown: {type(e).__name__}: {str(e)[:300]}")


# --------------------------------------------------------------------------------------------
# comparing runs
# --------------------------------------------------------------------------------------------
def show_compare(rows: list[rv.RunRow]) -> None:
    """*Compare runs*: the runs chosen among ``rows`` (``rp_compare``), one curve overlaid per run
    (the curve, class or player, epochs or steps) and their rows of the table."""
    st.header("Compare runs")
    labels = [r.label for r in rows if r.state != "broken"]
    by_label = {r.label: r for r in rows}
    chosen = st.multiselect("Runs to overlay", labels, key="rp_compare", placeholder="choose two or more runs")
    if not chosen:
        st.caption("Choose runs to overlay their curves: ACSA and GM (test or validation), the recall of "
                   "one class, or one player's loss, over epochs or steps.")
        return
    c = st.columns([2, 1, 1])
    metric = c[0].selectbox("Curve", rv.OVERLAY_METRICS, key="rp_metric")
    x = c[2].radio("Over", ("epoch", "step"), horizontal=True, key="rp_x")
    cls, player = 0, "M"
    named, missing = {}, []
    for label in chosen:
        recs, _, why = records_of(by_label[label])
        if recs:
            named[label] = rv.records_series(recs)
        else:
            missing.append(label)
    if metric == "recall of one class (test)":
        k = max((s["recall"].shape[1] for s in named.values()), default=1)
        cls = int(c[1].number_input("Class", 0, max(0, k - 1), 0, key="rp_class"))
    elif metric == "loss of one player":
        players = sorted({p for s in named.values() for p in s["all_losses"]}) or ["M"]
        player = c[1].selectbox("Player", players, key="rp_player")
    if named:
        st.plotly_chart(rv.overlay_chart(named, metric, x=x, cls=cls, player=player), key="rp_overlay",
                        config=PLOTLY_CONFIG)
    if missing:
        st.caption("No curves (no records in metrics.jsonl) for: " + ", ".join(missing))
    st.dataframe(rv.table_rows([by_label[label] for label in chosen]), hide_index=True, key="rp_compare_table")
