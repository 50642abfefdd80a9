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
  tab must not keep a CPU busy until the step cap) and ends them after longer.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from app.ui import runs_in
from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.snapshot import Snapshot
from gamo.train import RunHandle
from gamo.worker import ProcessRunHandle

__all__ = ["IDLE_PAUSE_S", "IDLE_STOP_S", "LIVE_STATES", "new_handle", "stop_runs", "step_runs",
           "wait_for_step", "wait_idle", "rate", "start_watchdog"]

IDLE_PAUSE_S = 120.0      # a run nobody polled for this long is paused by the watchdog
IDLE_STOP_S = 1800.0      # ... and ended (its process gone) after this long
LIVE_STATES = ("starting", "running", "paused")


def new_handle(cfg: RunConfig, data: Dataset, *, max_steps: int, paused: bool = True,
               history: int = 1000) -> RunHandle | ProcessRunHandle:
    """A run handle for ``cfg`` on ``data`` (not started): in a process unless
    ``GAMO_RUNS_IN=thread``."""
    kind = ProcessRunHandle if runs_in() == "process" else RunHandle
    return kind(cfg, data, max_steps=max_steps, history=history, paused=paused)


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


def start_watchdog(runs: Sequence[Any], idle_s: float = IDLE_PAUSE_S,
                   stop_s: float = IDLE_STOP_S) -> threading.Thread:
    """Pause the runs when the page has not polled them for ``idle_s`` seconds; end them (and
    their processes) after ``stop_s``."""

    def watch() -> None:
        while any(r.handle.alive for r in runs):
            now = time.monotonic()
            for r in runs:
                if now - r.last_poll > idle_s and r.handle.status.state == "running":
                    r.handle.pause()
                    r.events.append({"step": r.handle.status.step, "set": "paused by watchdog"})
                if now - r.last_poll > stop_s and r.handle.alive:
                    r.handle.stop(wait=5.0)
            time.sleep(1.0)

    t = threading.Thread(target=watch, name="lab-watchdog", daemon=True)
    t.start()
    return t
