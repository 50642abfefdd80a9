"""The Toy Lab's live view: what the page shows of its runs below the run buttons.

* :func:`timeline` -- once the runs are paused or finished, a slider back through their
  snapshots, Replay and Latest (:func:`to_live` leaves the timeline);
* :func:`live_main` -- the fast fragment: per run, the status line, the 2D view (a chart updated
  in place), the collapse warnings under it and the generated-points panel (follow a point, its
  convex parents); several runs in a 2 x 2 grid at most, in lockstep, each with its scores;
* :func:`live_side` -- the slow fragment: the explanation, the "same data, Baseline CN"
  reference, the generator's health table(s) and the curves over steps.

Every function takes the runs and settings it draws and reads the browser session's
``st.session_state`` (the ``tl_*`` keys: the shown step, the replay, the followed points, the
figure cache, the references). The figures and texts are built by :mod:`app.ui.toylab`; the runs
are :class:`app.ui.toylab_runs.LiveRun`.
"""
from __future__ import annotations

import time

import numpy as np
import streamlit as st

from app.ui import toylab as tl
from app.ui.figures import figure_json, generated_indices_from_selection
from app.ui.health_view import show_collapse_warnings, show_health_table
from app.ui.live_plot import live_plot
from app.ui.pacer import pace_label, shown_step
from app.ui.run_controls import status_line
from app.ui.toylab_runs import LiveRun, reference_key, start_reference
from gamo.config import METHOD_LABELS

__all__ = ["error_hint", "to_live", "timeline", "live_main", "live_side", "pending_references",
           "REPLAY_FRAMES", "LEGEND_PX"]

REPLAY_FRAMES = 60          # a replay shows about this many snapshots (12 s at 5 redraws/s)
LEGEND_PX = 96              # compare grid: the legend's strip under every panel's plot


def error_hint(msg: str) -> str:
    """What to change when a setting cannot be trained (``msg``: the engine's error)."""
    low = msg.lower()
    if "at least 2" in low or "only 1" in low or "only 0" in low:
        return ("Every class needs at least 2 training points: G's points are weighted averages "
                "of a class's real points, and a hull of one point has nothing to average. "
                "Raise the smallest count (or lower the imbalance ratio).")
    if "available" in low:
        return "Ask for fewer points, or use the imbalance-ratio form with a smaller majority."
    if "adasyn" in low:
        return "ADASYN needs minority points with majority neighbours; SMOTE works on any data."
    return "Change the setting the message names in the sidebar; the page's defaults always work."


def to_live() -> None:
    """Leave the timeline: show the latest step again."""
    ss = st.session_state
    ss.tl_view_step = None
    ss.tl_replay = False



# --------------------------------------------------------------------------------------
# the timeline (once the runs are paused or finished)
# --------------------------------------------------------------------------------------
def _histories(runs: list[LiveRun]) -> list[list]:
    return [r.handle.history() for r in runs]


def _timeline_steps(runs: list[LiveRun]) -> list[int]:
    """The steps every (working) run has a snapshot of, oldest first."""
    lists = [h for r, h in zip(runs, _histories(runs)) if h and r.handle.status.state != "error"]
    if not lists:
        return []
    common = {s.step for s in lists[0]}
    for h in lists[1:]:
        common &= {s.step for s in h}
    return sorted(common)


def _on_timeline() -> None:
    ss = st.session_state
    ss.tl_view_step = ss.tl_timeline
    ss.tl_replay = False


def _start_replay(steps: list[int]) -> None:
    ss = st.session_state
    cur = ss.get("tl_view_step")
    ss.tl_view_step = cur if cur in steps and cur != steps[-1] else steps[0]
    ss.tl_replay_steps = steps
    ss.tl_replay = True


def timeline(runs: list[LiveRun], busy: bool) -> None:
    """The timeline row (nothing while ``busy`` training or with fewer than two common
    snapshots): the step slider, Replay, Latest, and which step is shown."""
    ss = st.session_state
    if busy:
        return
    steps = _timeline_steps(runs)
    if len(steps) < 2:
        return
    cur = ss.get("tl_view_step")
    if cur not in steps:
        cur = ss.tl_view_step = None
    ss.tl_timeline = steps[-1] if cur is None else cur
    a, b, c = st.columns([6, 1, 1], vertical_alignment="bottom")
    a.select_slider("Timeline: go back through this run's snapshots (the picture, the curves and "
                    "the explanation at that step)", options=steps, key="tl_timeline",
                    on_change=_on_timeline, format_func=lambda v: f"step {v:,}")
    b.button("Replay", key="tl_replay_btn", on_click=_start_replay, args=(steps,), width="stretch",
             icon=":material/replay:", help="Play the snapshots again, from the one shown.")
    c.button("Latest", key="tl_latest", on_click=to_live, width="stretch",
             disabled=cur is None and not ss.get("tl_replay"), help="Back to the latest step.")
    if cur is not None:
        st.caption(f"Showing step {cur:,} of {steps[-1]:,}"
                   + (" (replaying)" if ss.get("tl_replay") else "")
                   + ". Play goes on from the latest step.")


def _advance_replay() -> None:
    """One frame of a replay: the next snapshot step (at the end, back to a normal page)."""
    ss = st.session_state
    steps = ss.get("tl_replay_steps") or []
    cur = ss.get("tl_view_step")
    if not steps or cur not in steps:
        ss.tl_replay = False
        return
    i = steps.index(cur) + max(1, len(steps) // REPLAY_FRAMES)
    if i >= len(steps) - 1:
        ss.tl_view_step = steps[-1]
        ss.tl_replay = False
        st.rerun(scope="app")
    ss.tl_view_step = steps[i]


# --------------------------------------------------------------------------------------
# the live view (a fragment that redraws while a run trains)
# --------------------------------------------------------------------------------------
def _status_line(i: int, r: LiveRun, snap, snaps, redraw: int) -> None:
    """Run ``i``'s status line (the shared one, plus the timeline and pace notes)."""
    ss = st.session_state
    extra = " · timeline" if ss.get("tl_view_step") is not None else ""
    pace = ss.tl_settings.pace
    if pace and r.handle.status.state == "running":
        extra += f" · pace {pace_label(pace)}"
    status_line(i, r, snap, snaps, dom_id="toylab-status",
                digest=tl.points_digest(snap.generated if snap else None), redraw=redraw,
                busy_ms=ss.get("tl_busy_ms", 0.0), draw_ms=ss.get("tl_draw_ms"), hint=error_hint,
                extra=extra)


def _selected(i: int, r: LiveRun, snap) -> int | None:
    """The generated point to highlight: the last one clicked, or the one chosen below."""
    ss = st.session_state
    key, seen, follow = f"tl_fig_{i}_{r.run_id}", f"tl_sel_seen_{i}", f"tl_follow_{i}"
    picked = generated_indices_from_selection(ss.get(key))
    if picked and tuple(picked) != ss.get(seen):
        ss[seen] = tuple(picked)
        ss[follow] = picked[-1]
    m = len(snap.generated.x) if snap is not None and snap.generated is not None else 0
    sel = ss.get(follow)
    return sel if isinstance(sel, int) and 0 <= sel < m else None


def _toy(i: int, r: LiveRun, snap, snaps, s: tl.ToySettings, height: int, compare: bool = False):
    """Run ``i``'s panel: the 2D view at ``snap``, the collapse warnings under it and the
    generated-points panel (follow a point; its heaviest convex parents)."""
    ss = st.session_state
    sel = _selected(i, r, snap)
    # building the figure is most of a redraw's cost: rebuild only when something changed
    labels = r.handle.status.state not in ("starting", "running") and not ss.get("tl_replay")
    fkey = (r.run_id, snap.step if snap else -1, sel, s.show_d, s.d_class, s.trails, height, labels)
    cached = ss.get(f"tl_figcache_{i}")
    if cached is not None and cached[0] == fkey:
        spec = cached[1]
    else:
        trails = tl.trail_positions(snaps) if s.trails else None
        # the step is in the status line above; in the title only once the run stops, so
        # that a redraw while training does not re-lay out the chart's title
        title = METHOD_LABELS[r.method] if not labels else \
            f"{METHOD_LABELS[r.method]} — step {snap.step if snap else 0:,}"
        fig = tl.toy_view(snap, r.data.x_train, r.data.y_train, hulls=r.hulls,
                          x_range=r.x_range, y_range=r.y_range, trails=trails, selected=sel,
                          show_d=s.show_d, d_class=s.d_class, title=title, height=height,
                          uirevision=f"toy{i}{r.run_id}", real_image=r.real_image,
                          contour_labels=labels, trails_as_image=not labels,
                          image_size=r.image_size, trails_legend=s.trails, as_dict=True,
                          legend_px=LEGEND_PX if compare else None,
                          title_color=tl.method_color(r.method, i) if compare else None)
        if not labels:
            # Plotly redraws its legend at every update: while training the chart shows a
            # static copy of it instead (app.ui.live_plot); the trails are one image then
            # (a few hundred SVG paths and dots were half of a browser redraw)
            fig["layout"]["showlegend"] = False
        # plain dicts to JSON: 6 ms where Plotly objects + to_json took 27 (bench/toy_view_draw.py)
        spec = figure_json(fig)
        ss[f"tl_figcache_{i}"] = (fkey, spec)
    # updated in place (Plotly.react) rather than st.plotly_chart's new chart at every redraw
    live_plot(spec, key=f"tl_fig_{i}_{r.run_id}", config=tl.PLOTLY_CONFIG)
    # under the plot (not above it: the chart must not move when a class collapses or recovers)
    show_collapse_warnings(snap.health if snap else None, r.method, max_shown=2 if compare else None,
                           step=snap.step if snap else None)
    gen = snap.generated if snap else None
    if gen is not None:
        m = len(gen.x)
        opts = [None] + list(range(m))
        if ss.get(f"tl_follow_{i}") not in opts:
            ss[f"tl_follow_{i}"] = None
        st.selectbox("Follow a generated point (or click one in the plot)", opts,
                     key=f"tl_follow_{i}",
                     format_func=lambda k: "none" if k is None else f"#{k} (class {int(gen.y[k])})")
        if sel is not None and gen.parent_idx is not None:
            rows = gen.parent_idx[sel]
            lines = ["| parent (training row) | x₁ | x₂ | weight |", "|---:|---:|---:|---:|"]
            for j, w in zip(rows, gen.parent_w[sel]):
                x1, x2 = r.data.x_train[int(j), :2]
                lines.append(f"| {int(j)} | {x1:.2f} | {x2:.2f} | {float(w):.3f} |")
            st.markdown("\n".join(lines))
            n_cls = int((r.data.y_train == gen.y[sel]).sum())
            st.caption(f"Point #{sel} is Σ wⱼxⱼ over all {tl.plural(n_cls, 'real point')} of class "
                       f"{int(gen.y[sel])}; these are its heaviest parents "
                       f"(together {float(gen.parent_w[sel].sum()):.0%} of the weight).")


def _views(runs: list[LiveRun]) -> list[tuple[LiveRun, object, list]]:
    """Each run with the snapshot to draw and its snapshots up to it: the timeline's step, or,
    with several runs, the latest step they all have (lockstep), or each run's latest."""
    ss = st.session_state
    now = time.monotonic()
    lists = []
    for r in runs:
        r.last_poll = now          # the watchdog pauses runs nobody looks at
        lists.append(r.handle.history())
    step = ss.get("tl_view_step")
    pacer = ss.get("tl_pacer")
    if step is None and len(runs) > 1:
        ok = [h for r, h in zip(runs, lists) if r.handle.status.state != "error" and h]
        if len(ok) > 1:
            step = shown_step(ok, lockstep=pacer is None or not pacer.diverged)
    out = []
    for r, snaps in zip(runs, lists):
        sub = snaps if step is None else [x for x in snaps if x.step <= step] or snaps[:1]
        out.append((r, sub[-1] if sub else None, sub))
    return out


def _score_caption(r: LiveRun, snap) -> str:
    """A compared run's scores at ``snap`` (under its panel)."""
    stats = r.stats(snap)
    rec = ", ".join(f"class {c} {v:.2f}" for c, v in enumerate(snap.test.recall))
    extra = ""
    if snap.generated is not None and stats["misclassified"] == stats["misclassified"]:
        extra = (f" · M misclassifies {stats['misclassified']:.0%} of G's points,"
                 f" mean distance to hull edge {stats['hull_distance']:.2f}")
    return f"Test recall {rec} · ACSA {snap.test.acsa:.2f} · GM {snap.test.gm:.2f}{extra}"


def live_main(runs: list[LiveRun], s: tl.ToySettings, ticking: bool) -> None:
    """Fast fragment: status line(s) and the 2D view(s), redrawn every REFRESH_S."""
    ss = st.session_state
    t0 = time.perf_counter()
    ss.tl_redraws = ss.get("tl_redraws", 0) + 1
    if ss.get("tl_replay"):
        _advance_replay()
    views = _views(runs)
    if len(runs) == 1:
        r, snap, snaps = views[0]
        _status_line(0, r, snap, snaps, ss.tl_redraws)
        _toy(0, r, snap, snaps, s, height=600)
    else:
        # a 2 x 2 grid at most: every panel the same size, the same step, the same axes
        height = 540 if len(runs) == 2 else 500
        for row in range(0, len(views), 2):
            cols = st.columns(2, gap="medium")
            for j, (r, snap, snaps) in enumerate(views[row:row + 2]):
                i = row + j
                with cols[j]:
                    _status_line(i, r, snap, snaps, ss.tl_redraws)
                    _toy(i, r, snap, snaps, s, height=height, compare=True)
                    if snap is not None:
                        st.caption(_score_caption(r, snap))
    ss.tl_draw_ms = 1000.0 * (time.perf_counter() - t0)
    ss.tl_busy_ms = ss.get("tl_busy_ms", 0.0) + ss.tl_draw_ms
    if ticking and not ss.get("tl_replay") and \
            not any(r.handle.status.state in ("starting", "running") for r in runs):
        st.rerun(scope="app")  # the run ended or was paused elsewhere: stop ticking


# --------------------------------------------------------------------------------------
# the side: explanation, "same data, Baseline CN", curves
# --------------------------------------------------------------------------------------
def _reference(r: LiveRun, snap):
    """The Baseline CN reference of this run's data at the shown step (or the nearest one
    scored), or None."""
    ss = st.session_state
    if snap is None:
        return None
    mine = ss.setdefault("tl_refs", {}).get(reference_key(r.cfg), {})
    exact = mine.get(max(1, snap.step))
    if exact is not None:
        return exact
    done = [ref for ref in mine.values() if ref.state == "done"]
    return min(done, key=lambda ref: abs(ref.steps - snap.step), default=None)


def _reference_row(i: int, r: LiveRun, snap) -> dict | None:
    """One click: Baseline CN on the same data for as many iterations; its score once done."""
    ss = st.session_state
    if r.method == "baseline" or snap is None:
        return None
    ref = _reference(r, snap)
    steps = max(1, snap.step)
    label = METHOD_LABELS[r.method]
    a = b = st.container()
    text = "Same data, Baseline CN" if len(ss.tl_runs) == 1 else f"{label} vs Baseline CN, same data"
    if a.button(text, key=f"tl_ref_{i}", width="content", icon=":material/balance:",
                help=f"Train Baseline CN (M alone, no oversampling) on this data and seed for "
                     f"{tl.plural(steps, 'iteration')} and compare with {label}."):
        mine = ss.setdefault("tl_refs", {}).setdefault(reference_key(r.cfg), {})
        if steps not in mine or mine[steps].state == "error":
            try:
                mine[steps] = start_reference(r.cfg, r.data, steps)
            except Exception as e:  # noqa: BLE001 - e.g. the server's limit on live runs
                b.error(f"Baseline CN could not start: {e}")
                return None
        st.rerun(scope="app")      # the side ticks until the score is in
    if ref is None:
        b.caption(f"Is {label} better than doing nothing about the imbalance? Score Baseline CN "
                  "on the same data.")
        return None
    if ref.state == "running":
        b.caption(f"Training Baseline CN on the same data for {tl.plural(ref.steps, 'iteration')}…")
        return None
    if ref.state == "error":
        b.caption(f"Baseline CN failed: {ref.error}")
        return None
    res = ref.result()
    diff = snap.test.acsa - res["acsa"]
    word = "better than" if diff > 0.02 else "worse than" if diff < -0.02 else "about as good as"
    b.markdown(f"<span id='toylab-ref-{i}' data-acsa='{res['acsa']:.4f}'>Baseline CN, same data, "
               f"{tl.plural(res['steps'], 'iteration')}: ACSA **{res['acsa']:.2f}**, GM "
               f"{res['gm']:.2f}. {label} is **{word}** it (ACSA {snap.test.acsa:.2f}).</span>",
               unsafe_allow_html=True)
    return res


def pending_references() -> bool:
    """Whether a Baseline CN reference of this session is still training."""
    ss = st.session_state
    return any(ref.state == "running" for mine in ss.get("tl_refs", {}).values() for ref in mine.values())


def live_side(runs: list[LiveRun], s: tl.ToySettings) -> None:
    """Slow fragment: explanation and the curves over steps (redrawn every SIDE_REFRESH_S)."""
    ss = st.session_state
    t0 = time.perf_counter()
    pending = pending_references()
    try:
        _live_side(runs, s)
    finally:
        ss.tl_busy_ms = ss.get("tl_busy_ms", 0.0) + 1000.0 * (time.perf_counter() - t0)
    if pending and not pending_references() and not ss.get("tl_ticking"):
        st.rerun(scope="app")      # the score is in: stop ticking


def _explain(r: LiveRun, snap, s: tl.ToySettings, reference) -> str:
    ss = st.session_state
    mover = tl.last_mover(ss.get("tl_action"), r.method)
    return tl.explain(r.method, mover, snap, r.stats(snap) if snap is not None else None,
                      minority=r.minority, real_distance=r.real_distance,
                      state=r.handle.status.state, health=snap.health if snap else None,
                      reference=reference, loss=s.loss)


def _live_side(runs: list[LiveRun], s: tl.ToySettings) -> None:
    """One run: reference, explanation, health table, curves; several: the compare chart and
    the references beside the explanation and the health tables."""
    ss = st.session_state
    views = _views(runs)
    shown = ss.get("tl_view_step")
    if len(runs) == 1:
        r, snap, snaps = views[0]
        ref = _reference_row(0, r, snap)
        st.info(_explain(r, snap, s, ref))
        show_health_table(snap.health if snap else None)
        if snaps:
            series = tl.history_series(r.handle.history() if shown is not None else snaps, r.stats)
            # updated in place, like the 2D view (st.plotly_chart would mount new charts)
            live_plot(tl.mark_step(tl.loss_chart(series), shown), key="tl_losses", config=tl.PLOTLY_CONFIG)
            live_plot(tl.mark_step(tl.score_chart(series), shown), key="tl_scores", config=tl.PLOTLY_CONFIG)
            if np.isfinite(series["misclassified"]).any():
                live_plot(tl.mark_step(tl.generated_chart(series, r.real_distance), shown), key="tl_gen",
                          config=tl.PLOTLY_CONFIG)
        return
    a, b = st.columns([1.2, 1.0], gap="medium")
    with a:
        named, colors = {}, {}
        for i, (rr, _, sn) in enumerate(views):
            if sn:
                label = METHOD_LABELS[rr.method]
                named[label] = tl.history_series(rr.handle.history() if shown is not None else sn, rr.stats)
                colors[label] = tl.method_color(rr.method, i)
        if named:
            live_plot(tl.mark_step(tl.compare_chart(named, views[0][0].minority, colors=colors), shown),
                      key="tl_compare_chart", config=tl.PLOTLY_CONFIG)
        st.markdown("**Same data, Baseline CN** (one click per run: the score to beat)")
        refs = [_reference_row(i, rr, sn) for i, (rr, sn, _) in enumerate(views)]
    with b:
        names = ", ".join(METHOD_LABELS[rr.method] for rr, _, _ in views)
        intro = (f"**Same data, same seed, {len(views)} methods ({names}), in lockstep:** every "
                 "panel shows the same step. Baseline CN trains M on the imbalanced points only, "
                 "so its boundary creeps into the minority class. GAMO\\D adds G's convex points, "
                 "which M must classify correctly: the boundary is pushed back, but without D the "
                 "points may fill the empty parts of a non-convex class's hull. GAMO adds D, "
                 "which keeps them on the class's real shape (the paper's Figure 1). Compare the "
                 "minority recall (dashed) of the runs. (With the LS loss D's push fades once D is "
                 "sure of itself, and GAMO's points can bleed like GAMO\\D's; the Figure 1 setup "
                 "in the sidebar uses cross-entropy.)")
        r, snap, _ = views[0]
        text = _explain(r, snap, s, refs[0])
        others = [tl.verdict(rr.method, sn, minority=rr.minority, stats=rr.stats(sn) if sn else None,
                             reference=ref, loss=s.loss, health=sn.health if sn else None)
                  for (rr, sn, _), ref in list(zip(views, refs))[1:]]
        st.info(intro + "\n\n" + text + "".join(f"\n\n{o}" for o in others if o))
        legend = True   # the legend under the first table only
        for rr, sn, _ in views:
            if show_health_table(sn.health if sn else None, caption=legend,
                                 title=f"Generator health: {METHOD_LABELS[rr.method]}"):
                legend = False

