"""The life of a page's live runs, shared by the lab's pages (Toy Lab, Image Lab).

A page holds one or two runs per browser session; each is an object with a ``handle`` (an engine
run handle), a ``last_poll`` time (when the page last looked at it) and a list of ``events``
(live changes, for the record). The handle trains in its own process
(:class:`gamo.worker.ProcessRunHandle`; ``GAMO_RUNS_IN=thread``: :class:`gamo.train.RunHandle` in a
thread of the server). This module never calls Streamlit:

* :func:`new_handle`, :func:`stop_runs`;
* :func:`step_runs` and :func:`wait_for_step` (Step and Reset work in a plain rerun);
* :func:`wait_idle` (the worker is paused with no single step left to do);
* :func:`rate` (iterations per second of recent snapshots);
* :func:`start_watchdog`, which pauses runs nobody has looked at for a while (a closed browser
  tab must not keep a CPU busy until the step cap) and ends them after longer;
* the server's limits (DESIGN.md, "The app under many users"): at most :func:`max_live_runs`
  runs hold a worker at once (:func:`new_handle` and :func:`check_room` raise :class:`LabFull`
  beyond it), and a closed tab's runs end :data:`CLOSED_STOP_S` after its session disconnected.

The only Streamlit call is :func:`session_probe`'s, which asks the running server whether a
browser session is still connected (nothing is imported from Streamlit where it is not running).
"""
from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from app.ui import runs_in
from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.errors import GamoError
from gamo.snapshot import Snapshot
from gamo.train import RunHandle
from gamo.worker import ProcessRunHandle

__all__ = ["IDLE_PAUSE_S", "IDLE_STOP_S", "CLOSED_STOP_S", "MAX_LIVE_RUNS", "LIVE_STATES", "LabFull",
           "max_live_runs", "live_run_count", "check_room", "new_handle", "stop_runs", "step_runs",
           "wait_for_step", "wait_idle", "rate", "start_watchdog", "session_probe"]

IDLE_PAUSE_S = 120.0      # a run nobody polled for this long is paused by the watchdog
IDLE_STOP_S = 900.0       # ... and ended (its process gone) after this long (an open, idle tab)
CLOSED_STOP_S = 60.0      # a run whose browser session has been disconnected this long is ended
MAX_LIVE_RUNS = 40        # runs holding a worker at once, per server (GAMO_MAX_LIVE_RUNS)
LIVE_STATES = ("starting", "running", "paused")

_HANDLES: "weakref.WeakSet[Any]" = weakref.WeakSet()   # every handle new_handle made
_HANDLES_LOCK = threading.Lock()


class LabFull(GamoError):
    """The server already has :func:`max_live_runs` runs; the message says what to do."""


def max_live_runs() -> int:
    """The cap on live runs per server: ``GAMO_MAX_LIVE_RUNS`` (a whole number, at least 1), else
    :data:`MAX_LIVE_RUNS`."""
    try:
        return max(1, int(os.environ.get("GAMO_MAX_LIVE_RUNS", "")))
    except ValueError:
        return MAX_LIVE_RUNS


def holds_worker(h: Any) -> bool:
    """True while a handle holds its process (or thread): made but not started yet, training,
    paused, or finished and waiting to be extended or read. A stopped, failed or ended one no."""
    if isinstance(h, ProcessRunHandle):
        proc = h._proc
        return proc is None or proc.is_alive()
    thread = getattr(h, "_thread", None)
    return thread is not None and (thread.ident is None or thread.is_alive())


def live_run_count() -> int:
    """Runs of this server that hold a worker now (see :func:`holds_worker`)."""
    with _HANDLES_LOCK:
        return sum(1 for h in list(_HANDLES) if holds_worker(h))


def _full_message(live: int, cap: int) -> str:
    runs = f"{live} runs are" if live != 1 else "1 run is"
    return (f"The lab is full: {runs} training on this server (its limit is {cap}). "
            "Try again in a minute, or stop a run (yours in another tab, or ask a neighbour to).")


def check_room(n: int = 1) -> None:
    """Raise :class:`LabFull` when ``n`` more runs would pass the server's cap (a page asks
    before starting its one to four runs, so that it never starts only some of them)."""
    cap, live = max_live_runs(), live_run_count()
    if live + n > cap:
        raise LabFull(_full_message(live, cap))


def new_handle(cfg: RunConfig, data: Dataset, *, max_steps: int, paused: bool = True,
               history: int = 1000, extendable: bool = False) -> RunHandle | ProcessRunHandle:
    """A run handle for ``cfg`` on ``data`` (not started): in a process unless
    ``GAMO_RUNS_IN=thread``. ``extendable``: at the step cap the run waits for ``extend(n)``.

    Raises :class:`LabFull` when the server already has :func:`max_live_runs` live runs (it then
    counts as live from here until it is stopped or ends)."""
    kind = ProcessRunHandle if runs_in() == "process" else RunHandle
    with _HANDLES_LOCK:
        cap, live = max_live_runs(), sum(1 for h in list(_HANDLES) if holds_worker(h))
        if live >= cap:
            raise LabFull(_full_message(live, cap))
        h = kind(cfg, data, max_steps=max_steps, history=history, paused=paused, extendable=extendable)
        _HANDLES.add(h)
    return h


def stop_runs(runs: Sequence[Any] | None, wait: float = 2.0) -> None:
    """Stop every run's worker (waits a little for each to end)."""
    for r in runs or []:
        r.handle.stop(wait=wait)


def wait_for_step(runs: Sequence[Any], targets: list[int], timeout: float = 5.0) -> bool:
    """Wait until each run's latest snapshot reaches its target step (or the run ends)."""
    deadline = time.monotonic() + timeout
    while True:
        done = True
        for r, t in zip(runs, targets):
            st = r.handle.status
            if st.state in ("error", "finished", "stopped"):
                continue
            if st.step < t or r.handle.latest is None:
                done = False
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def wait_idle(run: Any, timeout: float = 3.0) -> bool:
    """True once the run is paused (or ended) with no single step left to do.

    A query runs in the worker between two iterations, after the steps already asked for, so a
    round trip that finds the step counter unchanged means the worker is idle.
    """
    h = run.handle
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if h.status.state not in ("paused", "finished", "stopped", "error"):
            return False
        if h.status.state == "error":
            return True
        try:
            a = h.step_count(timeout=max(0.1, deadline - time.monotonic()))
            time.sleep(0.05)
            b = h.step_count(timeout=max(0.1, deadline - time.monotonic()))
        except (TimeoutError, RuntimeError):
            return not h.alive
        if a == b:
            return True
    return False

def step_runs(runs: Sequence[Any], players: set[str] | None = None, timeout: float = 5.0) -> bool:
    """One iteration of each run (``players``: only runs that have one of them, and only those
    players), then wait until each shows its new step; False when one did not in time."""
    targets = []
    for r in runs:
        try:
            done = r.handle.step_count(timeout=timeout)
        except (TimeoutError, RuntimeError):   # not started yet, or ended: the status says
            done = r.handle.status.step
        targets.append(done + 1)
        r.handle.step(1, None if players is None else set(players))
    return wait_for_step(runs, targets, timeout=timeout)


def rate(snaps: Sequence[Snapshot]) -> float | None:
    """Iterations per second over the last ~2 s of snapshots."""
    if len(snaps) < 2:
        return None
    last = snaps[-1]
    for s in reversed(snaps[:-1]):
        if last.elapsed - s.elapsed >= 2.0 or s is snaps[0]:
            dt = last.elapsed - s.elapsed
            return (last.step - s.step) / dt if dt > 0 else None
    return None


def session_probe() -> Callable[[], bool] | None:
    """Called from a page's script run: a function telling whether that browser session is still
    connected to the server (False once the tab is closed or reloaded: a reload is a new
    session); None outside a running Streamlit server."""
    if "streamlit" not in sys.modules:
        return None
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is None or not Runtime.exists():
            return None
        runtime, sid = Runtime.instance(), ctx.session_id
    except Exception:  # noqa: BLE001 - another Streamlit: the poll-based rules alone
        return None

    def connected() -> bool:
        try:
            return bool(runtime.is_active_session(sid))
        except Exception:  # noqa: BLE001
            return True
    return connected


_AUTO: Any = object()


def start_watchdog(runs: Sequence[Any], idle_s: float = IDLE_PAUSE_S, stop_s: float = IDLE_STOP_S,
                   *, connected: Callable[[], bool] | None = _AUTO,
                   closed_s: float = CLOSED_STOP_S, every: float = 1.0) -> threading.Thread:
    """Watch a page's runs until their workers are gone:

    * pause a running run the page has not polled for ``idle_s`` seconds;
    * end a run (its process) not polled for ``stop_s`` seconds (an open tab left idle), or whose
      browser session has been disconnected for ``closed_s`` seconds (a closed or reloaded tab;
      ``connected`` tells, by default :func:`session_probe` of the calling page).

    Runs that finished at their step cap but wait to be extended still hold their process: they
    are watched (and ended) too.
    """
    if connected is _AUTO:
        connected = session_probe()

    def watch() -> None:
        gone_since: float | None = None
        while any(holds_worker(r.handle) for r in runs):
            now = time.monotonic()
            if connected is not None:
                if connected():
                    gone_since = None
                elif gone_since is None:
                    gone_since = now
            closed = gone_since is not None and now - gone_since >= closed_s
            for r in runs:
                if now - r.last_poll > idle_s and r.handle.status.state == "running":
                    r.handle.pause()
                    r.events.append({"step": r.handle.status.step, "set": "paused by watchdog"})
                if (closed or now - r.last_poll > stop_s) and holds_worker(r.handle):
                    r.events.append({"step": r.handle.status.step,
                                     "set": "ended by watchdog: " + ("tab closed" if closed else "idle")})
                    r.handle.stop(wait=5.0)
            time.sleep(every)

    t = threading.Thread(target=watch, name="lab-watchdog", daemon=True)
    t.start()
    return t
