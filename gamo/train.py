"""The training loop, as a generator of Snapshots, and RunHandle, which runs it in a thread.

Everything that trains goes through :func:`train`: the CLI, the app (via :class:`RunHandle`) and
the tests. Between snapshots nothing is copied to the host: losses stay on the device as 0-d
tensors and are read only when a snapshot is made.
"""
from __future__ import annotations

import abc
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch

from gamo.config import RunConfig, cpu_cores
from gamo.cpuload import ThreadGovernor, adapt_enabled
from gamo.history import SnapshotHistory
from gamo.data import load_dataset
from gamo.data.types import Dataset
from gamo.errors import GamoError
from gamo.health import ClassReference, class_reference, generator_health
from gamo.methods import Method, make_method
from gamo.methods.base import resolve_device
from gamo.snapshot import Generated, Grid, Snapshot


def set_threads(n: int) -> int:
    """Use at most ``n`` CPU threads: torch's, and numpy's BLAS and OpenMP pools (0: leave the
    defaults). A count above this process's cores is lowered to them (a config made on a bigger
    machine); returns the count set, or 0."""
    if not n:
        return 0
    n = min(int(n), cpu_cores())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return n
    blas = ThreadpoolController().select(user_api="blas")
    if any(lib.num_threads != n for lib in blas.lib_controllers):   # set only when it changes
        blas.limit(limits=n)
    return n


class Trainer:
    """A method plus the bookkeeping of a run: step budget, snapshots, the 2D grid.

    Parameters
    ----------
    cfg : RunConfig
    data : Dataset, optional
        Loaded from ``cfg.data`` when not given.
    state : dict, optional
        A checkpoint from :meth:`Method.state_dict` to resume from.
    with_grid : bool
        2D data: evaluate M and D on a grid at each snapshot (the app's maps; the CLI skips it).
    """

    def __init__(self, cfg: RunConfig, data: Dataset | None = None, state: dict | None = None,
                 with_grid: bool = True) -> None:
        self.cfg = cfg
        set_threads(cfg.train.threads)
        self.data = data if data is not None else load_dataset(cfg.data)
        self.device = resolve_device(cfg.train.device)
        self.method: Method = make_method(cfg, self.data, self.device)
        # on a CPU with several torch threads, fewer while other work keeps the cores busy
        # (spinning OpenMP threads made a phase 13-65x slower, not 1.5-2.5x: gamo/cpuload.py)
        self.thread_governor: ThreadGovernor | None = None
        if self.device.type == "cpu" and torch.get_num_threads() > 1 and adapt_enabled():
            self.thread_governor = ThreadGovernor(torch.get_num_threads())
        if state is not None:
            self._load_state(state)
        tc = cfg.train
        self.total_steps = tc.steps if tc.steps else tc.epochs * self.method.steps_per_epoch
        self.snapshot_every = tc.snapshot_every
        self._losses: dict[str, torch.Tensor] = {}
        self._t0 = time.perf_counter()
        self._elapsed0 = 0.0
        self._grid_pts: torch.Tensor | None = None
        self._health_ref: dict[int, ClassReference] | None = None   # dense data: made once
        self.grid_axes: tuple[np.ndarray, np.ndarray] | None = None
        if self.data.kind == "2d" and with_grid:
            self._make_grid(tc.grid)

    def _load_state(self, state: dict) -> None:
        """Load a checkpoint; one that does not fit this config (another method, other network
        sizes: a config.json edited after the run was made) or is not a checkpoint at all raises
        :class:`GamoError`, never a torch error."""
        from gamo.runs import RunError

        cfg, m = self.cfg, self.method
        fix = ("config.json was edited after the run was made, or the checkpoint is another run's: "
               "restore config.json, or start a new run")
        saved = state.get("method") if isinstance(state, dict) else None
        if isinstance(saved, str) and saved != cfg.train.method:
            raise RunError(f"the checkpoint is of method {saved}, the config says {cfg.train.method}: {fix}")
        modules = state.get("modules") if isinstance(state, dict) else None
        if not isinstance(modules, dict) or set(modules) != set(m.modules()):
            have = ", ".join(sorted(map(str, modules))) if isinstance(modules, dict) else "none"
            raise RunError(f"the checkpoint's networks ({have}) are not those of {cfg.train.method} "
                           f"({', '.join(sorted(m.modules()))}): {fix}")
        try:
            m.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "state_dict" in str(e) or "size mismatch" in str(e):
                mc = cfg.model
                detail = (f"its networks are not those of {cfg.train.method} with family={m.family}, "
                          f"hidden={mc.hidden}, latent={mc.latent}")
            raise RunError(f"the checkpoint does not fit the run's config ({detail[:160]}): {fix}") from None

    @property
    def step_count(self) -> int:
        return self.method.step_count

    @property
    def finished(self) -> bool:
        return self.method.step_count >= self.total_steps

    def _make_grid(self, n: int) -> None:
        pts = np.concatenate([self.data.x_train, self.data.x_test])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.1 * (hi - lo) + 1e-6
        xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n, dtype=np.float32)
        ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n, dtype=np.float32)
        gx, gy = np.meshgrid(xs, ys)                                   # (n, n) each, row = y
        self.grid_axes = (xs, ys)
        self._grid_pts = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), device=self.device)

    def step(self, players: set[str] | None = None) -> None:
        """One iteration of the method (``players`` limits a GAMO iteration to some players)."""
        if self.thread_governor is not None:
            self.thread_governor.poll()
        self._losses.update(self.method.step(players))

    def snapshot_due(self) -> bool:
        """Snapshots come every ``snapshot_every`` steps, at epoch ends when epochs are longer
        than that (or ``snapshot_every`` is 0), and at the end."""
        s, every, spe = self.method.step_count, self.snapshot_every, self.method.steps_per_epoch
        return bool(
            (every and s % every == 0)
            or ((not every or spe >= every) and s % spe == 0)
            or s >= self.total_steps
        )

    def snapshot(self, with_train: bool | None = None) -> Snapshot:
        """Read the current state (this is where device values are copied to the host)."""
        m = self.method
        if with_train is None:
            # conv data: F(x_train) costs a forward pass over the training set; do it at epoch ends
            with_train = m.family == "dense" or m.step_count % m.steps_per_epoch == 0
        grid = None
        if self._grid_pts is not None:
            xs, ys = self.grid_axes
            g = len(xs)
            proba = m.m_proba(self._grid_pts).reshape(len(ys), g, -1).cpu().numpy()
            d = m.d_real(self._grid_pts)
            grid = Grid(xs=xs, ys=ys, m_proba=proba,
                        d_real=None if d is None else d.reshape(len(ys), g, -1).cpu().numpy())
        # the training metrics first: they refresh F's features, which the generated points and
        # the health then use too (between them, a conv run's generated points are combined in the
        # features of the last F-frozen phase: no pass over the training set at every snapshot)
        train = m.evaluate("train") if with_train else None
        gen = m.generated()
        return Snapshot(
            step=m.step_count,
            epoch=m.epoch,
            losses={k: float(v) for k, v in self._losses.items()},
            test=m.evaluate("test"),
            train=train,
            generated=gen,
            grid=grid,
            elapsed=self.elapsed,
            phase=m.phase,
            health=self._health(gen, with_train),
            # the validation split where the training metrics are (step 0 is no candidate epoch)
            val=m.evaluate("val") if with_train and m.has_val and m.step_count > 0 else None,
        )

    def _health(self, gen: Generated | None, with_train: bool) -> dict | None:
        """:func:`gamo.health.generator_health` of the fixed-noise batch, where the real members
        are cheap: dense data at every snapshot (the rows never change: their reference is made
        once), conv data only with the training metrics (F's features of the training set are
        computed for those anyway); None otherwise and for methods that generate nothing."""
        if gen is None or len(gen.y) == 0:
            return None
        m = self.method
        classes = sorted(set(m.minority) | {int(c) for c in np.unique(gen.y)})
        if m.family == "dense":
            ref = self._health_ref
            if ref is None or not set(classes) <= set(ref):
                ref = self._health_ref = self._class_reference(m.x_train, classes)
        elif with_train:
            ref = self._class_reference(m.train_features(), classes)
        else:
            return None
        return generator_health(gen, reference=ref)

    def _class_reference(self, feats: torch.Tensor, classes: list[int]) -> dict[int, ClassReference]:
        """class_reference of these classes' rows of ``feats`` (only they are copied to the host)."""
        y = self.method.y_train
        rows = torch.isin(y, torch.as_tensor(classes, dtype=y.dtype, device=y.device))
        return class_reference(feats[rows].reshape(int(rows.sum()), -1).cpu().numpy(),
                               y[rows].cpu().numpy(), classes)

    @property
    def elapsed(self) -> float:
        return self._elapsed0 + time.perf_counter() - self._t0


class Control:
    """Commands from another thread to a running :func:`train` loop (used by RunHandle).

    The loop calls :meth:`next` before each iteration; it blocks while paused. Beyond pause,
    resume and single steps, a pacer (the app's lockstep and slow modes) can let a run go up
    to a step and no further (:meth:`run_until`), or pause it once it has reached a step
    (:meth:`pause_at`); the loop makes a snapshot wherever it stops, so what is shown is where
    the run is. An ``extendable`` run that reaches its step cap waits for :meth:`extend`
    instead of ending.
    """

    def __init__(self, paused: bool = False, extendable: bool = False) -> None:
        self._cv = threading.Condition()
        self.paused = paused
        self.stopped = False
        self._pending: deque[set[str] | None] = deque()  # single steps asked while paused
        self._lr: dict[str, float] = {}
        self.snapshot_every: int | None = None
        self.force_snapshot = False
        self._calls: deque[tuple[Callable[[], Any], Future]] = deque()
        self._closed = False   # the loop ended: nobody will run queued calls any more
        self.until: int | None = None      # running: do not pass this step (a pacer's target)
        self._drain_to: int | None = None  # paused, but first run on up to this step
        self.extendable = extendable
        self.at_cap = False                # an extendable run waits at its step cap
        self._extend = 0
        self.on_cap: Callable[[], None] | None = None     # called when the run waits at its cap
        self.on_extend: Callable[[], None] | None = None  # ... and when it was extended

    def _may_go(self, step: int | None) -> bool:   # with self._cv held
        if self.paused:
            draining = self._drain_to is not None and step is not None and step < self._drain_to
            return draining or bool(self._pending)
        return self.until is None or step is None or step < self.until

    def will_wait(self, step: int) -> bool:
        """True when the loop, at ``step``, would block in :meth:`next` (the loop makes a
        snapshot first, so that the last one shown is where the run stops)."""
        with self._cv:
            return not self.stopped and not self._may_go(step)

    def next(self, step: int | None = None) -> tuple[bool, set[str] | None]:
        """Block until the loop may advance; returns (go on?, players for this iteration).

        ``step`` is the loop's step count (needed for :meth:`run_until` and :meth:`pause_at`).
        Calls queued with :meth:`call` run here, in the loop's thread, between iterations.
        """
        with self._cv:
            while True:
                self._run_calls()
                if self.stopped or self._may_go(step):
                    break
                self._cv.wait(timeout=0.5)
            if self.stopped:
                return False, None
            if self.paused:
                if self._drain_to is not None and step is not None and step < self._drain_to:
                    return True, None
                self._drain_to = None
                if self._pending:
                    self.force_snapshot = True
                    return True, self._pending.popleft()
            return True, None

    def take_lr(self) -> dict[str, float]:
        with self._cv:
            lr, self._lr = self._lr, {}
            return lr

    def set_lr(self, player: str, lr: float) -> None:
        with self._cv:
            self._lr[player] = lr

    def pause(self) -> None:
        with self._cv:
            self.paused = True
            self._drain_to = None

    def pause_at(self, step: int) -> None:
        """Pause once the loop has reached ``step`` (at once if it is there or beyond)."""
        with self._cv:
            self.paused = True
            self._drain_to = int(step)
            self._cv.notify_all()

    def resume(self) -> None:
        with self._cv:
            self.paused = False
            self.until = None
            self._drain_to = None
            self._pending.clear()   # single steps asked earlier are superseded by running freely
            self._cv.notify_all()

    def run_until(self, step: int) -> None:
        """Run (not paused), but do not pass ``step``: the loop waits there, still "running",
        until a later target comes (a pacer moves several runs in lockstep this way)."""
        with self._cv:
            self.paused = False
            self.until = int(step)
            self._drain_to = None
            self._pending.clear()
            self._cv.notify_all()

    def step(self, n: int = 1, players: set[str] | None = None) -> None:
        with self._cv:
            self.paused = True
            self._pending.extend([players] * n)
            self._cv.notify_all()

    def stop(self) -> None:
        with self._cv:
            self.stopped = True
            self._cv.notify_all()

    def extend(self, n: int) -> None:
        """Give a run waiting at its step cap ``n`` more steps (it stays paused)."""
        with self._cv:
            self._extend += max(0, int(n))
            self._cv.notify_all()

    def wait_more(self) -> int:
        """At the step cap: 0 for a run that is not ``extendable`` (it ends); else wait for
        :meth:`extend` (the extra steps; the run is paused then) or :meth:`stop` (0), running
        queued calls meanwhile."""
        with self._cv:
            if not self.extendable or self.stopped:
                return 0
            self.at_cap = True
        if self.on_cap is not None:
            self.on_cap()
        with self._cv:
            while not self.stopped and not self._extend:
                self._run_calls()
                self._cv.wait(timeout=0.5)
            self._run_calls()
            n, self._extend = (0 if self.stopped else self._extend), 0
            self.at_cap = False
            if n:
                self.paused, self.until, self._drain_to = True, None, None
                self._pending.clear()
            return n

    def call(self, fn: Callable[[], Any]) -> Future | None:
        """Queue ``fn`` to run in the loop's thread between two iterations; returns its Future,
        or None when the loop has ended (then nothing is training and the caller may run it)."""
        with self._cv:
            if self._closed:
                return None
            fut: Future = Future()
            self._calls.append((fn, fut))
            self._cv.notify_all()
            return fut

    def close(self) -> None:
        """The loop has ended: run what is still queued, refuse further calls."""
        with self._cv:
            self._run_calls()
            self._closed = True

    def _run_calls(self) -> None:   # with self._cv held
        while self._calls:
            fn, fut = self._calls.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as e:  # handed to the caller
                fut.set_exception(e)


def train(cfg: RunConfig, data: Dataset | None = None, *, state: dict | None = None,
          control: Control | None = None, trainer: Trainer | None = None) -> Iterator[Snapshot]:
    """Train ``cfg`` and yield :class:`Snapshot` s: one at the start, then as ``snapshot_every``
    and epoch ends say, wherever ``control`` makes the run wait (a pause, a pacer's target),
    and one at the end.

    Parameters
    ----------
    cfg : RunConfig
    data : Dataset, optional
        Loaded from ``cfg.data`` when not given.
    state : dict, optional
        A checkpoint to resume from.
    control : Control, optional
        Pause / single step / stop / live learning rates from another thread; with
        ``control.extendable`` the loop waits at the step cap for more steps.
    trainer : Trainer, optional
        An already built trainer (the caller keeps it to save checkpoints).
    """
    tr = trainer if trainer is not None else Trainer(cfg, data, state)
    yield tr.snapshot(with_train=True)
    last = tr.step_count
    while True:
        while not tr.finished:
            players = None
            if control is not None:
                if tr.step_count != last and control.will_wait(tr.step_count):
                    # the run stops here (Pause, a pacer's target): show this very step
                    last = tr.step_count
                    yield tr.snapshot()
                go, players = control.next(tr.step_count)
                if not go:
                    break
                for player, lr in control.take_lr().items():
                    tr.method.set_lr(player, lr)
                if control.snapshot_every is not None:
                    tr.snapshot_every = control.snapshot_every
            tr.step(players)
            forced = control is not None and control.force_snapshot
            if forced or tr.snapshot_due():
                if forced:
                    control.force_snapshot = False
                last = tr.step_count
                yield tr.snapshot()
        if tr.step_count != last:
            last = tr.step_count
            yield tr.snapshot(with_train=True)
        if control is None or not tr.finished:
            break
        more = control.wait_more()
        if not more:
            break
        tr.total_steps += more
        if control.on_extend is not None:
            control.on_extend()


def _step_count(trainer: Trainer) -> int:
    return trainer.step_count


def export_state(trainer: Trainer, seed: int) -> dict[str, Any]:
    """What a run store needs from a live trainer, read at one step (use through
    ``handle.query(functools.partial(export_state, seed=...))``): the method's ``state`` dict,
    ``step``, ``total_steps``, and ``samples`` that would balance the training set."""
    return {"state": trainer.method.state_dict(), "step": trainer.step_count,
            "total_steps": trainer.total_steps, "samples": trainer.method.balancing_samples(seed)}


@dataclass(frozen=True)
class RunStatus:
    state: str          # "starting", "running", "paused", "finished", "stopped", "error"
    step: int
    total: int
    error: str | None


class HandleBase(abc.ABC):
    """What every run handle shares (:class:`RunHandle`, :class:`gamo.worker.ProcessRunHandle`):
    the config with the step cap applied, the snapshot history under a lock, and the readings
    built on it. A subclass provides ``query``."""

    def __init__(self, cfg: RunConfig, max_steps: int | None, history: int) -> None:
        if max_steps is not None and cfg.train.steps > max_steps:
            cfg = cfg.replace(train={"steps": max_steps})
        self.cfg, self.max_steps = cfg, max_steps
        self._lock = threading.Lock()
        # at most ``history`` snapshots and DEFAULT_MAX_BYTES, the older ones thinned by step
        self._snaps = SnapshotHistory(history)
        self.traceback: str | None = None

    @abc.abstractmethod
    def query(self, fn: Callable[[Trainer], Any], timeout: float | None = 10.0) -> Any:
        """``fn(trainer)`` run where the run trains, between two iterations; its result."""

    def step_count(self, timeout: float | None = 10.0) -> int:
        """Iterations done so far (may be ahead of ``latest.step`` between snapshots)."""
        return int(self.query(_step_count, timeout))

    def _wait_while_alive(self, timeout: float | None) -> bool:
        """Poll ``alive`` until it is False (True) or ``timeout`` s pass (False)."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.alive:
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    @property
    def latest(self) -> Snapshot | None:
        with self._lock:
            return self._snaps[-1] if self._snaps else None

    def history(self) -> list[Snapshot]:
        with self._lock:
            return list(self._snaps)


class RunHandle(HandleBase):
    """Runs :func:`train` in a worker thread for the app; never calls Streamlit.

    Parameters
    ----------
    cfg : RunConfig
    data : Dataset, optional
    max_steps : int, optional
        A cap on the run's steps (the app's safety limit).
    history : int
        How many snapshots to keep at most (:class:`gamo.history.SnapshotHistory`: the newest
        dense, older ones thinned by step; also bounded in bytes).
    paused : bool
        Start paused (the first snapshot is still made).
    on_change : callable, optional
        Called from the worker thread as ``on_change(handle, snapshot)`` after each new snapshot,
        and as ``on_change(handle, None)`` when the state changes without one (started, ended,
        error); :class:`gamo.worker.ProcessRunHandle` relays these to another process.
    extendable : bool
        At its step cap the run is ``finished`` but its worker waits: :meth:`extend` gives it
        more steps (it is then paused). Otherwise the worker ends there.
    """

    def __init__(self, cfg: RunConfig, data: Dataset | None = None, *, max_steps: int | None = None,
                 history: int = 1000, paused: bool = False,
                 on_change: Callable[["RunHandle", Snapshot | None], None] | None = None,
                 extendable: bool = False) -> None:
        super().__init__(cfg, max_steps, history)
        self._data = data
        self.control = Control(paused=paused, extendable=extendable)
        self.control.on_cap = self._at_cap
        self.control.on_extend = self._extended
        self._state = "starting"
        self._error: str | None = None
        self.error_exc: BaseException | None = None
        self.trainer: Trainer | None = None
        self._on_change = on_change
        self._thread = threading.Thread(target=self._work, name="gamo-run", daemon=True)

    # the worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            torch.set_num_threads(max(1, self.cfg.train.threads or 1))
            trainer = Trainer(self.cfg, self._data)
            if self.max_steps is not None:  # also caps runs given in epochs
                trainer.total_steps = min(trainer.total_steps, self.max_steps)
            self.trainer = trainer
            with self._lock:
                self._state = "paused" if self.control.paused else "running"
            self._changed(None)
            for snap in train(self.cfg, control=self.control, trainer=self.trainer):
                with self._lock:
                    self._snaps.append(snap)
                    if self._state in ("running", "paused"):
                        self._state = "paused" if self.control.paused else "running"
                self._changed(snap)
            with self._lock:
                if self._state != "finished":    # an extendable run stopped at its cap stays so
                    self._state = "stopped" if self.control.stopped else "finished"
        except Exception as e:  # surfaced as data, never lost
            with self._lock:
                self._state = "error"
                self.error_exc = e
                self._error = str(e) if isinstance(e, GamoError) else "".join(
                    traceback.format_exception_only(type(e), e)).strip()
                self.traceback = traceback.format_exc()
        finally:
            self.control.close()
        self._changed(None)

    def _at_cap(self) -> None:        # the loop's thread: an extendable run waits at its cap
        with self._lock:
            if self._state in ("running", "paused"):
                self._state = "finished"
        self._changed(None)

    def _extended(self) -> None:      # the loop's thread: it has more steps now, paused
        with self._lock:
            if self._state == "finished":
                self._state = "paused"
        self._changed(None)

    def _changed(self, snap: Snapshot | None) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self, snap)
            except Exception:  # a listener's failure must not end the run
                pass

    # commands ---------------------------------------------------------------------------
    def start(self) -> "RunHandle":
        self._thread.start()
        return self

    def pause(self) -> None:
        self.control.pause()
        self._set_live_state("paused")

    def resume(self) -> None:
        self.control.resume()
        self._set_live_state("running")

    def step(self, n: int = 1, players: set[str] | None = None) -> None:
        """Advance ``n`` iterations then stay paused; ``players`` limits them to some players."""
        self.control.step(n, players)
        self._set_live_state("paused")

    def run_until(self, step: int) -> None:
        """Run, but wait at ``step`` (still "running") until told more (see Control)."""
        self.control.run_until(step)
        self._set_live_state("running")

    def pause_at(self, step: int) -> None:
        """Pause once the run has reached ``step`` (it shows "paused" at once)."""
        self.control.pause_at(step)
        self._set_live_state("paused")

    def extend(self, n: int) -> None:
        """Give a run waiting at its step cap ``n`` more steps (``extendable`` runs only); it
        is paused then, and ``status.total`` grows by ``n``."""
        self.control.extend(n)

    def stop(self, wait: float | None = 5.0) -> None:
        self.control.stop()
        if wait and self._thread.is_alive():
            self._thread.join(wait)

    def set_lr(self, player: str, lr: float) -> None:
        self.control.set_lr(player, lr)

    def set_snapshot_every(self, n: int) -> None:
        self.control.snapshot_every = max(1, int(n))

    def query(self, fn: Callable[[Trainer], Any], timeout: float | None = 10.0) -> Any:
        """``fn(trainer)`` run between two iterations (so it sees a consistent trainer: e.g. a
        checkpoint and samples of the same step); its result, or its exception re-raised.

        Raises
        ------
        TimeoutError
            The worker did not reach the end of its iteration in ``timeout`` seconds.
        RuntimeError
            The run ended before its trainer was built (see ``status.error``).
        """
        def bound() -> Any:
            if self.trainer is None:
                raise RuntimeError(f"the run has no trainer: {self._error or 'it has not started'}")
            return fn(self.trainer)

        fut = self.control.call(bound)
        if fut is None:              # the loop has ended: nothing trains any more
            return bound()
        return fut.result(timeout)

    def _set_live_state(self, s: str) -> None:
        with self._lock:
            if self._state in ("running", "paused"):
                self._state = s

    # reading ---------------------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        with self._lock:
            step = self._snaps[-1].step if self._snaps else 0
            total = self.trainer.total_steps if self.trainer else self.cfg.train.steps
            return RunStatus(self._state, step, total, self._error)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end (an extendable run: to reach its cap); True when it has."""
        if not self.control.extendable:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return self._wait_while_alive(timeout)

    @property
    def alive(self) -> bool:
        """True while the run can still train (an extendable run at its cap cannot, until
        extended)."""
        if not self._thread.is_alive():
            return False
        with self._lock:
            return self._state != "finished" or not self.control.extendable
