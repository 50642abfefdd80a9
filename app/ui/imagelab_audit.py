"""The Image Lab's audit panel: the selection (a point clicked on the map, or the pick list) ->
the audit of a run's fixed-noise generated points at its newest step (computed in the background)
-> one sample's view and the flags with their exports.

The audit itself is :class:`app.ui.imagelab_runs.AuditState` (no Streamlit there); the sample view
and the exports are :func:`app.ui.audit_view.show_sample` and
:func:`app.ui.audit_view.show_flags_and_exports` (GAMO2pix shows samples with them too). The page
wires :func:`audit_panel` into a fragment.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from app.ui import imagelab as il
from app.ui.audit_view import run_image, show_flags_and_exports, show_sample
from app.ui.imagelab_map import executor, point_image
from app.ui.imagelab_runs import AuditState, ImageRun
from gamo.config import METHOD_LABELS

__all__ = ["audit_state", "audit_panel"]

ss = st.session_state     # a proxy: the session of the script run that reads it


def audit_state(run: ImageRun) -> AuditState:
    """The session's audit of ``run`` (made on first use)."""
    audits = ss.setdefault("il_audits", {})
    if run.run_id not in audits:
        audits[run.run_id] = AuditState()
    return audits[run.run_id]


def audit_panel(runs: list[ImageRun], s: il.ImageSettings) -> None:
    """The audit panel: which run (two runs: a radio), what the audit measures, the generated
    point to audit (the one clicked on the map, else the first flagged), a real point clicked on
    the map, the sample's view; beside them the flags and exports. A full rerun once the run
    stopped and its audit is done."""
    sel = ss.get("il_sel")
    ri = sel[0] if sel is not None and sel[0] < len(runs) else 0
    if len(runs) > 1:
        if ss.get("il_audit_run") not in range(len(runs)):
            ss.il_audit_run = ri
        ri = st.radio("Audit the run of", list(range(len(runs))), horizontal=True,
                      format_func=lambda k: METHOD_LABELS[runs[k].method], key="il_audit_run")
    run = runs[ri]
    snaps = run.handle.history()
    snap = snaps[-1] if snaps else None
    if snap is None:
        st.info("Starting the run…")
        return
    state = audit_state(run)
    state.request(run, snap.step, s.low_pct, s.high_pct, executor("audit"))
    running = run.handle.status.state in ("starting", "running")
    res = state.current(wait=0.0 if running else 8.0)
    if state.error and res is None:
        st.error(f"The audit could not be computed: {state.error}")
        return
    if res is None:
        st.info("Auditing the generated points…")
        return
    step, audit = res
    if audit is None:
        st.info(f"{METHOD_LABELS[run.method]} generates no samples of its own (it reweights or "
                "changes the loss, or makes its samples another way): there is nothing to audit.")
        return
    st.markdown(
        f"Audit of {METHOD_LABELS[run.method]}'s {audit.n} fixed-noise generated points at **step "
        f"{step:,}**{' (updates while it trains)' if running else ''}. Distances are taken in "
        f"**{audit.space}** (the space the samples live in: "
        + ("the flattened pixels" if audit.space == "pixels" else
           "the convolutional F's features that the generated points are combined in: F as G's "
           "last phase used it" if audit.space == "F's features"
           else "the table's columns") + "). "
        f"*DCR*: distance to the closest real training point; its *percentile* is among the class's "
        f"own real nearest-neighbour distances. Flags: near-duplicate below the {audit.low_pct:g}th "
        f"percentile, out-of-distribution above the {audit.high_pct:g}th or nearer another class "
        f"than its own, label disputed when M assigns another class.")
    left, right = st.columns([1.1, 1.0], gap="large")
    with left:
        opts = list(range(audit.n))
        pick_key = f"il_pick_{run.run_id}"
        if sel is not None and sel[0] == ri and sel[1] == "gen" and 0 <= sel[2] < audit.n:
            if ss.get(f"il_pick_from_{run.run_id}") != sel:
                ss[pick_key] = sel[2]
                ss[f"il_pick_from_{run.run_id}"] = sel
        if ss.get(pick_key) not in opts:
            ss[pick_key] = int(np.flatnonzero(audit.flagged)[0]) if audit.flagged.any() else 0
        flags_of = lambda k: ", ".join(  # noqa: E731
            n.replace("_", " ") for n in ("near_duplicate", "out_of_distribution", "label_disputed")
            if getattr(audit, n)[k]) or "no flag"
        i = st.selectbox("Generated point to audit (or click one on the map)", opts, key=pick_key,
                         format_func=lambda k: f"#{k} · class {int(audit.y[k])} · {flags_of(k)}")
        if sel is not None and sel[0] == ri and sel[1] == "real":
            img, cap = point_image(run, "real", sel[2], snap, None)
            st.markdown("**Selected on the map: a real point**")
            if img is not None:
                st.image(run_image(run, img), caption=cap)
            else:
                st.caption(cap)
        show_sample(run, audit, i, flags_of(i))
    with right:
        show_flags_and_exports(run, step, audit, ri, ss)
    if not running and not state.pending and ss.get("il_audit_ticking"):
        ss.il_audit_ticking = False
        st.rerun(scope="app")

