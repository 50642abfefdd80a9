"""Streamlit blocks for a page's live runs, shared by the lab's pages (Toy Lab, Image Lab).

* :func:`run_buttons` -- Play / Pause / Step / Reset (and, where a page wants them, one Step
  button per player), with explicit widget keys under the page's prefix;
* :func:`apply_action` -- what a button does to the runs (resume, pause, one step and wait for
  it, restart);
* :func:`start_runs` -- start a page's runs within the server's cap on live runs (or say the lab
  is full), then start their watchdog and wait for their first snapshot;
* :func:`status_line` -- the method, the step out of the step cap, the state and the speed, as a
  line carrying the step, a digest and the state as ``data-`` attributes (tests and a headless
  browser read them), with a progress bar toward the step cap under it.

The runs are objects with a ``handle`` (see :mod:`app.ui.live_runs`) and a ``method``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from app.ui.limits_view import lab_full_notice
from app.ui.live_runs import LabFull, check_room, rate, start_watchdog, step_runs, stop_runs, wait_for_step
from gamo.config import METHOD_LABELS

__all__ = ["run_buttons", "apply_action", "start_runs", "status_line", "PLAYER_HELP"]

PLAYER_HELP = {"M": "Advance only M (the classifier) by one update.",
               "D": "Advance only D (the discriminator) by one update.",
               "G": "Advance only G (the generator) by one update."}


def run_buttons(prefix: str, *, players: Sequence[str] | None = None,
                per_player_note: str = "") -> str | None:
    """The run's buttons in one row; returns what was pressed.

    Parameters
    ----------
    prefix : str
        Widget keys are ``{prefix}_play``, ``{prefix}_pause``, ``{prefix}_step``,
        ``{prefix}_reset`` and, with ``players``, ``{prefix}_step_M`` / ``_D`` / ``_G``.
    players : sequence of str, optional
        Show "Step M", "Step D", "Step G" buttons, enabled for the players given.
    per_player_note : str
        A caption beside the per-player buttons.

    Returns
    -------
    str or None
        ``"play"``, ``"pause"``, ``"step"``, ``"reset"``, a player (``"M"``, ``"D"``, ``"G"``),
        or None.
    """
    if players is not None:
        # wide enough for "Pause" beside its icon on a 1400-pixel window
        cols = st.columns([1, 1.2, 1, 1.1, 0.25, 1, 1, 1, 1.9])
    else:
        cols = st.columns([1, 1.2, 1, 1.1, 3.5])
    pressed = None
    if cols[0].button("Play", key=f"{prefix}_play", type="primary", width="stretch",
                      icon=":material/play_arrow:"):
        pressed = "play"
    if cols[1].button("Pause", key=f"{prefix}_pause", width="stretch", icon=":material/pause:"):
        pressed = "pause"
    if cols[2].button("Step", key=f"{prefix}_step", width="stretch", icon=":material/skip_next:",
                      help="One full iteration (every player updates once), then pause."):
        pressed = "step"
    if cols[3].button("Reset", key=f"{prefix}_reset", width="stretch", icon=":material/restart_alt:",
                      help="Start again from step 0 with the same settings."):
        pressed = "reset"
    if players is not None:
        for i, p in enumerate("MDG"):
            if cols[5 + i].button(f"Step {p}", key=f"{prefix}_step_{p}", width="stretch",
                                  disabled=p not in players, help=PLAYER_HELP[p]):
                pressed = p
        if per_player_note:
            cols[8].caption(per_player_note)
    return pressed


def apply_action(action: str | None, runs: Sequence[Any], restart: Callable[[], Any],
                 players_of: Callable[[Any], Sequence[str]] | None = None) -> Any:
    """Carry out a button of :func:`run_buttons` on ``runs``.

    Play resumes every run that can still train; Pause pauses them; Step advances each run one
    iteration and waits (a few seconds at most) until its snapshot shows it; a player's step
    advances only the runs that have that player (``players_of(run)``), only that player;
    Reset calls ``restart()`` and returns what it returns. Returns ``runs`` otherwise.
    """
    if action == "play":
        for r in runs:
            if r.handle.status.state in ("paused", "starting", "running"):
                r.handle.resume()
    elif action == "pause":
        for r in runs:
            r.handle.pause()
    elif action == "reset":
        return restart()
    elif action == "step":
        step_runs(runs)
    elif action in ("M", "D", "G"):
        chosen = [r for r in runs if players_of is None or action in players_of(r)]
        step_runs(chosen, {action})
    return runs


def start_runs(prefix: str, cfgs: Sequence[Any], start_one: Callable[[Any], Any]) -> list[Any] | None:
    """Start one run per config with ``start_one(cfg)`` (paused), or None when the lab is full.

    Checks the server's cap on live runs first (:func:`app.ui.live_runs.check_room`); when it is
    reached (there, or while starting), stops what was started, clears ``{prefix}_runs_key`` (the
    next rerun tries again) and draws :func:`app.ui.limits_view.lab_full_notice`. Otherwise
    starts the runs' watchdog and waits (30 s at most) for their step-0 snapshots.
    """
    runs: list[Any] = []
    try:
        check_room(len(cfgs))                          # the server's cap on live runs
        for cfg in cfgs:
            runs.append(start_one(cfg))
    except LabFull as e:
        stop_runs(runs, wait=0.5)
        st.session_state[f"{prefix}_runs_key"] = None  # the next rerun tries again
        lab_full_notice(e, prefix)
        return None
    start_watchdog(runs)
    wait_for_step(runs, [0] * len(runs), timeout=30.0)
    return runs


def status_line(i: int, run: Any, snap: Any, snaps: Sequence[Any], *, dom_id: str,
                digest: str, redraw: int = 0, busy_ms: float = 0.0, draw_ms: float | None = None,
                extra: str = "", attrs: dict[str, Any] | None = None, progress: bool = True,
                hint: Callable[[str], str] | None = None) -> None:
    """The run's status line (one line of HTML) and a progress bar toward its step cap.

    The line's element has ``id="{dom_id}-{i}"`` and the attributes ``data-step``,
    ``data-digest`` (``digest``: a fingerprint of what the page draws, so that a test can tell
    that it changed), ``data-state``, ``data-redraw``, ``data-busy-ms`` and ``attrs``. An error
    of the run is shown under it with ``st.error``, followed by ``hint(error)`` when given.
    """
    status = run.handle.status
    speed = rate(snaps) if status.state == "running" else None
    step = snap.step if snap else 0
    rate_txt = f" · {speed:,.0f} it/s" if speed else ""
    draw_txt = f" · last redraw {draw_ms:.0f} ms" if draw_ms is not None else ""
    more = "".join(f' data-{k}="{v}"' for k, v in (attrs or {}).items())
    st.markdown(
        f'<span id="{dom_id}-{i}" data-step="{step}" data-digest="{digest}" '
        f'data-state="{status.state}" data-redraw="{redraw}" '
        f'data-busy-ms="{busy_ms:.0f}"{more} '
        # the page's own counters on hover, so the line fits on one line and does not move the
        # chart when a run starts
        f'title="redraw {redraw}{draw_txt} · {digest}">'
        f"<b>{METHOD_LABELS.get(run.method, run.method)}</b> · <b>step {step:,}</b> of "
        f"{status.total:,} · {status.state}{rate_txt}{extra}</span>",
        unsafe_allow_html=True,
    )
    if progress:
        total = max(1, int(status.total))
        st.progress(min(1.0, step / total), text=None)
    if status.state == "error":
        tip = hint(status.error or "") if hint is not None else ""
        st.error(f"**The run stopped with an error:** {status.error}" + (f"\n\n{tip}" if tip else ""),
                 icon="⚠️")
