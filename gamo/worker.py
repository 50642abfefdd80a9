"""ProcessRunHandle: a :class:`gamo.train.RunHandle` that trains in its own process.

The app's pages build Plotly figures in Python while a run trains. With the thread-based
RunHandle both share one interpreter lock, so every redraw takes time from training (on a 2-core
machine the Toy Lab trained at about 100 iterations/s of a possible 250). A ProcessRunHandle has
the same commands and readings as RunHandle, but the run lives in a child process: the child
holds an ordinary RunHandle and relays between it and the parent over a pipe.

* parent -> child: pause, resume, step, run_until, pause_at, extend, set_lr,
  set_snapshot_every, query, stop;
* child -> parent: every new snapshot with the run's status, state changes (started, ended,
  error, with its traceback), and query results.

``query(fn)`` runs ``fn(trainer)`` in the child between two iterations (``fn`` must be picklable:
a module-level function) and returns its result; it is how a caller reads a checkpoint or samples.
The child outlives the end of training, so a finished or stopped-by-cap run can still be queried
(saved); :meth:`stop` ends it.

Children are forked from a server process that has imported torch and the engine once
(``forkserver``), so a new run starts in about a tenth of a second rather than the seconds of a
fresh interpreter; where there is no ``forkserver`` (Windows) they are spawned. The child never
imports Streamlit. If the child dies, the run ends in the ``error`` state with the exit code.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import sys
import threading
import types
from concurrent.futures import Future
from typing import Any, Callable

from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.snapshot import Snapshot
from gamo.train import HandleBase, RunHandle, RunStatus, Trainer

__all__ = ["ProcessRunHandle", "process_context", "warm_up"]

LIVE = ("starting", "running", "paused")
# imported once by the fork server, so that a run's child starts in milliseconds: torch._dynamo
# is what torch's optimizers import on first use (2.7 s here otherwise); imblearn serves the
# SMOTE family. A missing one is skipped.
PRELOAD = ["gamo.worker", "torch._dynamo", "imblearn.over_sampling"]
_CTX: Any = None
_CTX_LOCK = threading.Lock()


def process_context():
    """The multiprocessing context runs start in: ``forkserver`` (engine preloaded) or ``spawn``."""
    global _CTX
    with _CTX_LOCK:
        if _CTX is None:
            if "forkserver" in mp.get_all_start_methods():
                ctx = mp.get_context("forkserver")
                ctx.set_forkserver_preload(PRELOAD)
            else:  # pragma: no cover - Windows
                ctx = mp.get_context("spawn")
            _CTX = ctx
        return _CTX


def warm_up() -> None:
    """Start the fork server now (it imports torch and the engine: seconds), so that the first
    run starts at once; idempotent. Blocks: call it from a background thread."""
    ctx = process_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


# ---------------------------------------------------------------------------------------------
# the child
# ---------------------------------------------------------------------------------------------
def _child(conn, cfg: RunConfig, data: Dataset | None, max_steps: int | None, paused: bool,
           extendable: bool = False) -> None:
    send_lock = threading.Lock()

    def send(msg: tuple) -> None:
        with send_lock:
            try:
                conn.send(msg)
            except (OSError, ValueError):   # the parent is gone
                pass

    def on_change(h: RunHandle, snap: Snapshot | None) -> None:
        send(("change", snap, h.status, h.traceback))

    def answer(qid: int, fn: Callable[[Trainer], Any], timeout: float | None) -> None:
        try:
            value = h.query(fn, timeout)
            msg = ("result", qid, True, value)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            msg = ("result", qid, False, e)
        try:
            send(msg)
        except Exception as e:  # an unpicklable result or exception
            send(("result", qid, False, RuntimeError(f"query result could not be sent: {e}")))

    h = RunHandle(cfg, data, max_steps=max_steps, history=1, paused=paused, on_change=on_change,
                  extendable=extendable)
    h.start()
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break                                # the parent is gone: end the run
            op = msg[0]
            if op == "pause":
                h.pause()
            elif op == "resume":
                h.resume()
            elif op == "step":
                h.step(msg[1], msg[2])
            elif op == "until":
                h.run_until(msg[1])
            elif op == "pause_at":
                h.pause_at(msg[1])
            elif op == "extend":
                h.extend(msg[1])
            elif op == "lr":
                h.set_lr(msg[1], msg[2])
            elif op == "every":
                h.set_snapshot_every(msg[1])
            elif op == "query":
                threading.Thread(target=answer, args=msg[1:], daemon=True).start()
            elif op == "stop":
                break
    finally:
        h.stop(wait=30.0)
        h.wait(30.0)
        conn.close()


# ---------------------------------------------------------------------------------------------
# the parent
# ---------------------------------------------------------------------------------------------
class ProcessRunHandle(HandleBase):
    """RunHandle's interface, with the run in a child process (see the module docstring).

    Parameters are those of :class:`gamo.train.RunHandle`.
    """

    def __init__(self, cfg: RunConfig, data: Dataset | None = None, *, max_steps: int | None = None,
                 history: int = 1000, paused: bool = False, extendable: bool = False) -> None:
        super().__init__(cfg, max_steps, history)
        self._data, self._paused0, self._extendable = data, paused, extendable
        self._child_status = RunStatus("starting", 0, self.cfg.train.steps, None)
        self._live = "paused" if paused else "running"   # what the last command asked
        self._futures: dict[int, Future] = {}
        self._ids = itertools.count()
        self._proc = None
        self._conn = None
        self._reader: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------
    def start(self) -> "ProcessRunHandle":
        ctx = process_context()
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, name="gamo-run", daemon=True,
                                 args=(child, self.cfg, self._data, self.max_steps, self._paused0,
                                       self._extendable))
        # A spawned or forkserver child re-imports the parent's __main__ module unless told
        # otherwise; under `streamlit run` that is Streamlit's CLI (a second or more, and the child
        # must not import Streamlit). The child needs nothing from __main__: hide it while the
        # child's preparation data is gathered (synchronously, inside start()).
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self._proc.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        child.close()
        self._conn = parent
        self._data = None                   # the child has it
        self._reader = threading.Thread(target=self._read, name="gamo-run-reader", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        while True:
            try:
                msg = self._conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "change":
                _, snap, st, tb = msg
                with self._lock:
                    if snap is not None:
                        self._snaps.append(snap)
                    self._child_status = st
                    if tb:
                        self.traceback = tb
            elif msg[0] == "result":
                _, qid, ok, value = msg
                fut = self._futures.pop(qid, None)
                if fut is not None:
                    fut.set_result(value) if ok else fut.set_exception(value)
        self._proc.join(5.0)
        with self._lock:
            st = self._child_status
            if st.state in LIVE:   # the child died without saying why
                code = self._proc.exitcode
                self._child_status = RunStatus(
                    "error", st.step, st.total,
                    f"the training process ended unexpectedly (exit code {code}); start the run again")
            for fut in self._futures.values():
                fut.set_exception(RuntimeError("the run's process has ended"))
            self._futures.clear()

    def _send(self, *msg: Any) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.send(msg)
            return True
        except (OSError, ValueError):
            return False

    # commands -----------------------------------------------------------------------------
    def pause(self) -> None:
        self._live = "paused"
        self._send("pause")

    def resume(self) -> None:
        self._live = "running"
        self._send("resume")

    def step(self, n: int = 1, players: set[str] | None = None) -> None:
        self._live = "paused"
        self._send("step", int(n), None if players is None else set(players))

    def run_until(self, step: int) -> None:
        self._live = "running"
        self._send("until", int(step))

    def pause_at(self, step: int) -> None:
        self._live = "paused"
        self._send("pause_at", int(step))

    def extend(self, n: int) -> None:
        """More steps for a run waiting at its step cap (``extendable`` runs); it is paused then."""
        self._live = "paused"
        self._send("extend", int(n))

    def set_lr(self, player: str, lr: float) -> None:
        self._send("lr", player, float(lr))

    def set_snapshot_every(self, n: int) -> None:
        self._send("every", max(1, int(n)))

    def stop(self, wait: float | None = 5.0) -> None:
        """End the run and its process (waits up to ``wait`` seconds, then kills the process)."""
        self._send("stop")
        if self._proc is None:
            return
        if wait:
            self._proc.join(wait)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(2.0)
            if self._reader is not None:
                self._reader.join(wait)

    def query(self, fn: Callable[[Trainer], Any], timeout: float | None = 10.0) -> Any:
        """``fn(trainer)`` run in the child between two iterations; ``fn`` must be picklable."""
        fut: Future = Future()
        qid = next(self._ids)
        with self._lock:
            ended = self._reader is None or not self._reader.is_alive()
            if not ended:
                self._futures[qid] = fut
        if ended or not self._send("query", qid, fn, timeout):
            self._futures.pop(qid, None)
            raise RuntimeError("the run's process has ended: start the run again")
        return fut.result(None if timeout is None else timeout + 5.0)

    # reading ------------------------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        with self._lock:
            st = self._child_status
            if st.state in ("running", "paused"):
                st = RunStatus(self._live, st.step, st.total, st.error)
            return st

    @property
    def alive(self) -> bool:
        """True while the run can still train (not finished, stopped or failed)."""
        return self._reader is not None and self._reader.is_alive() and self.status.state in LIVE

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run has ended (finished, stopped or failed); True when it has."""
        return self._wait_while_alive(timeout)

    @property
    def process_alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()
