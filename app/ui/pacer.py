"""Moves a page's live runs at a chosen pace, in lockstep (plain threads; never calls Streamlit).

A page's runs (one to four, the same data and seed) are objects with a ``handle`` (an engine run
handle: :class:`gamo.train.RunHandle` or :class:`gamo.worker.ProcessRunHandle`) and a
``last_poll`` time. A :class:`Pacer` drives them:

* **pace** in iterations per second (``0``: as fast as the runs go). At a pace the pacer lets
  every run go one *chunk* further (:meth:`~gamo.train.Control.run_until`) at that rate, only
  once every run has reached the previous target, so a slow learner's 2 iterations/s are 2
  iterations/s, and the runs never drift apart. Each target is a snapshot (the engine makes one
  wherever a run waits).
* **lockstep** at full pace: with two or more runs each may run at most ``lead`` chunks ahead of
  the slowest, and the chunk is the runs' snapshot interval, so that every run has a snapshot at
  the same steps: a page draws them all at the latest step they share (:func:`shown_step`). One
  run at full pace just runs (no round trips).
* **Pause** stops the runs where they are and brings the ones behind up to the leader's step
  (:meth:`~gamo.train.Control.pause_at`), so all stop at one step; **Step** is then exactly one
  iteration of each.

Nothing here trains: the runs train in their own processes (or threads).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from app.ui.live_runs import IDLE_PAUSE_S, step_runs, wait_for_step

__all__ = ["PACE_OPTIONS", "pace_chunk", "pace_label", "Pacer", "shown_step", "shown_snapshots"]

# iterations per second offered to the user; 0 = as fast as the runs go
PACE_OPTIONS = (1, 2, 5, 10, 20, 50, 100, 200, 0)
LIVE = ("starting", "running", "paused")


def pace_label(pace: float) -> str:
    """``0`` -> ``"full speed"``, ``5`` -> ``"5 it/s"``."""
    return "full speed" if not pace else f"{pace:g} it/s"


def pace_chunk(pace: float, speed: int) -> int:
    """Iterations between two snapshots: ``speed`` at full pace (``pace`` 0); at a pace, about
    ten snapshots a second, i.e. every iteration up to 10 iterations/s (each one visible)."""
    if not pace or pace <= 0:
        return max(1, int(speed))
    return max(1, int(round(float(pace) / 10.0)))


def _step_of(run: Any) -> int:
    return int(run.handle.status.step)


class Pacer:
    """Play / Pause / Step for a group of runs at a pace, in lockstep (see the module docstring).

    Parameters
    ----------
    runs : sequence
        The page's runs (``.handle``, ``.last_poll``).
    pace : float
        Iterations per second; 0 for full speed.
    chunk : int
        Iterations per snapshot (:func:`pace_chunk`); the pacer's targets advance by this much.
    lead : int
        At full speed with several runs: how many chunks a run may be ahead of the slowest.
    """

    def __init__(self, runs: Sequence[Any], *, pace: float = 0.0, chunk: int = 20, lead: int = 2,
                 poll_s: float = 0.005, idle_s: float = IDLE_PAUSE_S) -> None:
        self.runs = list(runs)
        self.pace, self.chunk, self.lead = float(pace), max(1, int(chunk)), max(1, int(lead))
        self.poll_s, self.idle_s = poll_s, idle_s
        self._cv = threading.Condition()
        self.playing = False
        self.closed = False
        self.target = 0
        self.diverged = False        # per-player steps moved some runs only
        self.free = False            # one run at full speed: it just runs
        self._next = 0.0
        self._thread = threading.Thread(target=self._loop, name="lab-pacer", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------------------------
    def _live(self) -> list[Any]:
        return [r for r in self.runs if r.handle.status.state in LIVE]

    def set(self, pace: float, chunk: int) -> bool:
        """A new pace (and chunk); applies at once while playing. True when it changed."""
        pace, chunk = float(pace), max(1, int(chunk))
        with self._cv:
            if (pace, chunk) == (self.pace, self.chunk):
                return False
            self.pace, self.chunk = pace, chunk
            if self.playing:
                self._start_locked()
            return True

    def _start_locked(self) -> None:      # with self._cv held
        live = self._live()
        if not live:
            self.playing = False
            return
        self.free = len(self.runs) == 1 and self.pace <= 0
        if self.free:
            for r in live:
                r.handle.resume()
        else:
            # from the leader's step (a group that diverged by per-player steps re-aligns)
            self.target = max(_step_of(r) for r in live)
            for r in live:
                r.handle.run_until(self.target)
            self._next = time.monotonic()
        self.diverged = False
        self._cv.notify_all()

    def play(self) -> None:
        """Run at the pace (all runs that can still train)."""
        with self._cv:
            self.playing = True
            self._start_locked()

    def pause(self, timeout: float = 3.0) -> int | None:
        """Stop every run, the ones behind at the leader's step; returns that step (None
        without live runs). Waits (``timeout`` at most) until each shows it."""
        with self._cv:
            self.playing = False
        live = self._live()
        if not live:
            return None
        for r in live:
            r.handle.pause()
        counts = []
        for r in live:
            try:
                counts.append(int(r.handle.step_count(timeout=timeout)))
            except (TimeoutError, RuntimeError):
                counts.append(_step_of(r))
        top = max(counts)
        if not self.diverged:
            for r, c in zip(live, counts):
                if c < top:
                    r.handle.pause_at(top)
        with self._cv:
            self.target = top
        wait_for_step(live, [top if not self.diverged else c for c in counts], timeout=timeout)
        return top

    def step(self, players: set[str] | None = None, chosen: Sequence[Any] | None = None,
             timeout: float = 5.0) -> bool:
        """Exactly one iteration of each run (``players``: of those players only, in the
        ``chosen`` runs); pauses first if playing."""
        if self.playing:
            self.pause()
        runs = list(chosen) if chosen is not None else self._live()
        if len(runs) < len(self._live()):
            self.diverged = True
        ok = step_runs(runs, players, timeout=timeout)
        with self._cv:
            self.target = max([self.target] + [_step_of(r) for r in runs])
        return ok

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self.playing = False
            self._cv.notify_all()

    # ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self.playing and not self.closed:
                    self._cv.wait(timeout=0.5)
                if self.closed:
                    return
                self._tick()
            time.sleep(self.poll_s)

    def _tick(self) -> None:              # with self._cv held
        live = self._live()
        now = time.monotonic()
        if not live:
            self.playing = False
            return
        if now - max(r.last_poll for r in self.runs) > self.idle_s:
            self.playing = False          # nobody looks: the watchdog pauses the runs
            return
        if self.free:
            return
        cap = min(int(r.handle.status.total) for r in live)
        low = min(_step_of(r) for r in live)
        if self.target >= cap:
            return                         # the runs finish at their cap (then leave `live`)
        if self.pace <= 0:
            if self.target - low < self.lead * self.chunk:
                self._issue(min(cap, (self.target // self.chunk + 1) * self.chunk), live)
        elif low >= self.target and now >= self._next:
            self._issue(min(cap, self.target + self.chunk), live)
            period = self.chunk / self.pace
            # keep the pace over time, but never burst to make up for a stall
            self._next = max(self._next + period, now - period)

    def _issue(self, target: int, live: Sequence[Any]) -> None:
        self.target = target
        for r in live:
            r.handle.run_until(target)


def shown_step(snap_lists: Sequence[Sequence[Any]], lockstep: bool = True) -> int | None:
    """The step to draw every run at: the latest step all runs have a snapshot of (None when a
    run has none yet, or ``lockstep`` is False)."""
    if not lockstep or not snap_lists or any(not s for s in snap_lists):
        return None
    common = set(s.step for s in snap_lists[0])
    for snaps in snap_lists[1:]:
        common &= {s.step for s in snaps}
    if common:
        return max(common)
    return None


def shown_snapshots(snap_lists: Sequence[Sequence[Any]], step: int | None) -> list[list[Any]]:
    """Each run's snapshots up to ``step`` (all of them when None)."""
    if step is None:
        return [list(s) for s in snap_lists]
    return [[x for x in s if x.step <= step] for s in snap_lists]
