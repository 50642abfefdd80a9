"""Live runs of the Toy Lab: one or two engine run handles per browser session.

Each run trains in its own process (:class:`gamo.worker.ProcessRunHandle`), so building the
page's figures never takes time from training; ``GAMO_RUNS_IN=thread`` in the environment runs
them in a thread of the server instead (:class:`gamo.train.RunHandle`, same interface). This
module adds what the page needs around the handle and never calls Streamlit either:

* :class:`LiveRun` -- a handle plus the run's data, hulls, fixed axes, live settings and a
  memo of per-snapshot statistics;
* :func:`start_live_run` (runs are *extendable*: at the step cap they finish and can be given
  more steps);
* :class:`Reference` and :func:`start_reference`: Baseline CN trained on the same data and seed
  for as many iterations as a run has done, the score a run's explanation compares with;
* :func:`save_run`, which writes a paused or finished run to the run store with
  :class:`gamo.runs.RunWriter`.

Stopping, stepping, waiting and the watchdog are the shared :mod:`app.ui.live_runs` (re-exported
here: :func:`stop_runs`, :func:`wait_for_step`, :func:`wait_idle`, :func:`start_watchdog`).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.ui.live_runs import (
    IDLE_PAUSE_S,
    new_handle,
    start_watchdog,
    stop_runs,
    wait_for_step,
    wait_idle,
)
from app.ui.pacer import pace_chunk
from app.ui.toylab import (
    STEP_CAP,
    ToySettings,
    axis_ranges,
    generated_stats,
    generated_table,
    minority_hulls,
    real_hull_distance,
    real_points_image,
    settings_to_query,
)
from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.runs import RunWriter
from gamo.snapshot import Snapshot
from gamo.train import RunHandle, export_state
from gamo.worker import ProcessRunHandle

__all__ = ["LiveRun", "start_live_run", "stop_runs", "wait_for_step", "wait_idle", "save_run",
           "start_watchdog", "RUN_NAME_RE", "IDLE_PAUSE_S", "Reference", "start_reference",
           "reference_key", "EXTEND_STEPS"]

EXTEND_STEPS = STEP_CAP     # "train longer" gives a finished run this many more steps

RUN_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


@dataclass
class LiveRun:
    """One training run of the page and what the page derives from it."""

    handle: RunHandle | ProcessRunHandle
    cfg: RunConfig
    method: str
    data: Dataset
    hulls: dict[int, np.ndarray]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    real_distance: float
    real_image: str | None = None                               # the real points, drawn once
    image_size: tuple[int, int] = (760, 420)                    # its pixels (trails images too)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    applied: dict[str, float] = field(default_factory=dict)     # live settings in force
    events: list[dict[str, Any]] = field(default_factory=list)  # live changes, for the record
    last_poll: float = field(default_factory=time.monotonic)
    _stats: dict[int, dict[str, float]] = field(default_factory=dict)
    _tree: Any = None                                           # the training points' search tree

    @property
    def players(self) -> tuple[str, ...]:
        from app.ui.toylab import method_players

        return method_players(self.method)

    @property
    def minority(self) -> list[int]:
        return sorted(self.hulls)

    def nearest_class(self, pts: np.ndarray) -> np.ndarray:
        """The class of the nearest real training point of each of ``pts`` (m, 2)."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(np.asarray(self.data.x_train, dtype=np.float64)[:, :2])
        _, idx = self._tree.query(np.asarray(pts, dtype=np.float64)[:, :2])
        return np.asarray(self.data.y_train)[idx]

    def stats(self, snap: Snapshot) -> dict[str, float]:
        """generated_stats of a snapshot (with ``bleed``), computed once per step."""
        hit = self._stats.get(snap.step)
        if hit is None:
            hit = generated_stats(snap.generated, self.hulls, self.nearest_class)
            self._stats[snap.step] = hit
            if len(self._stats) > 4000:  # bounded: the history keeps at most 1000 snapshots
                for k in sorted(self._stats)[:1000]:
                    del self._stats[k]
        return hit

    def apply_live(self, s: ToySettings) -> list[str]:
        """Send changed learning rates and speed to the worker; returns what changed."""
        changed = []
        st = self.handle.status
        for player, name in (("M", "lr_m"), ("D", "lr_d"), ("G", "lr_g")):
            v = float(getattr(s, name))
            if self.applied.get(name) != v:
                if name in self.applied and player in self.players:
                    self.handle.set_lr(player, v)
                    self.events.append({"step": st.step, "set": name, "value": v})
                    changed.append(name)
                self.applied[name] = v
        every = pace_chunk(s.pace, s.speed)    # iterations per snapshot at this pace
        if self.applied.get("speed") != every:
            if "speed" in self.applied:
                self.handle.set_snapshot_every(every)
                self.events.append({"step": st.step, "set": "snapshot_every", "value": every})
                changed.append("speed")
            self.applied["speed"] = every
        if self.applied.get("pace") != s.pace:
            if "pace" in self.applied:
                self.events.append({"step": st.step, "set": "pace", "value": int(s.pace)})
                changed.append("pace")
            self.applied["pace"] = int(s.pace)
        return changed


def start_live_run(cfg: RunConfig, data: Dataset, s: ToySettings, *, paused: bool = True,
                   image_size: tuple[int, int] = (760, 420), history: int = 1000) -> LiveRun:
    """Start a RunHandle on ``data`` (paused: the first snapshot is still made); it keeps the
    last ``history`` snapshots (the timeline).

    ``image_size`` is the pixel size of the real points' image (and of the trails' image while
    the run trains), about the plot area's size (markers keep their size when the image is not
    stretched much).
    """
    handle = new_handle(cfg, data, max_steps=STEP_CAP, history=history, paused=paused,
                        extendable=True)
    hulls = minority_hulls(data.x_train, data.y_train)
    xr, yr = axis_ranges(data.x_train, data.x_test)
    run = LiveRun(handle=handle, cfg=cfg, method=cfg.train.method, data=data, hulls=hulls,
                  x_range=xr, y_range=yr,
                  real_distance=real_hull_distance(data.x_train, data.y_train, hulls),
                  image_size=image_size,
                  real_image=real_points_image(data.x_train, data.y_train, xr, yr,
                                               n_classes=data.n_classes, size=image_size))
    run.apply_live(s)
    handle.start()
    return run


@dataclass
class Reference:
    """Baseline CN on a run's data and seed, trained headless for ``steps`` iterations in its own
    process: the "same data, Baseline CN" score beside a run. The process ends once the score is
    read."""

    handle: Any
    steps: int
    started: float = field(default_factory=time.monotonic)
    _result: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        """``"running"``, ``"done"`` or ``"error"``."""
        if self._result is not None:
            return "done"
        st = self.handle.status
        if st.state == "error":
            return "error"
        latest = self.handle.latest
        if latest is not None and latest.step >= self.steps:
            t = latest.test
            self._result = {"acsa": float(t.acsa), "gm": float(t.gm),
                            "recall": [float(r) for r in t.recall], "steps": int(self.steps)}
            self.handle.stop(wait=None)          # nothing more to ask it: its process ends
            return "done"
        return "running"

    @property
    def error(self) -> str | None:
        return self.handle.status.error

    def result(self) -> dict[str, Any] | None:
        """``{"acsa", "gm", "recall", "steps"}`` on the test split once done, else None."""
        return self._result if self.state == "done" else None

    def stop(self) -> None:
        self.handle.stop(wait=0.5)


def reference_key(cfg: RunConfig) -> str:
    """What a run's Baseline CN reference depends on (beside its number of iterations): the
    data, the network, the loss, the batch, M's learning rate and the seed."""
    tc = cfg.train
    return json.dumps({"data": dataclasses.asdict(cfg.data), "model": dataclasses.asdict(cfg.model),
                       "loss": tc.loss, "batch": tc.batch_size, "lr_m": tc.lr_m, "seed": tc.seed},
                      sort_keys=True, default=str)


def start_reference(cfg: RunConfig, data: Dataset, steps: int) -> Reference:
    """Start Baseline CN on ``data`` with ``cfg``'s data, network, loss, batch, M's learning rate
    and seed, for ``steps`` iterations (at least 1), without the 2D grid's extra snapshots."""
    steps = max(1, int(steps))
    bcfg = cfg.replace(train={"method": "baseline", "steps": steps, "snapshot_every": steps})
    handle = new_handle(bcfg, data, max_steps=steps, history=2, paused=False)
    handle.start()
    return Reference(handle=handle, steps=steps)


def save_run(run: LiveRun, root: str | Path, name: str, s: ToySettings | None = None) -> Path:
    """Write a paused or finished run to ``root/name`` with the engine's RunWriter.

    Writes config.json (with the learning rates in force now), metrics.jsonl (the snapshots the
    page still holds), final.json, checkpoint.pt (``trainer.method.state_dict()``),
    indices.npz and data.npz, samples.npz (points that would balance the training set), plus
    ``toylab.json`` (the page's settings as URL parameters and the live changes) and
    ``generated.csv`` (the fixed generated points with their parents).

    Raises
    ------
    ValueError
        A bad name, a run that is still training, or a run without a trainer.
    gamo.runs.RunError
        The folder already holds a run.
    """
    if not RUN_NAME_RE.fullmatch(name or ""):
        raise ValueError("use letters, digits, '-', '_' or '.', starting with a letter or digit "
                         "(at most 80 characters)")
    h = run.handle
    if h.latest is None:
        raise ValueError("the run has not started yet")
    if h.status.state not in ("paused", "finished", "stopped") or not wait_idle(run):
        raise ValueError("pause the run first: a run is saved while it is paused or finished")
    tc = run.cfg.train
    try:   # checkpoint, step and samples read at one step, between two iterations
        parts = h.query(functools.partial(export_state, seed=tc.seed), timeout=30.0)
    except (TimeoutError, RuntimeError) as e:
        raise ValueError(f"the run could not be read ({e}); start it again") from e
    cfg = run.cfg.replace(train={
        "lr_m": float(run.applied.get("lr_m", tc.lr_m)), "lr_d": float(run.applied.get("lr_d", tc.lr_d)),
        "lr_g": float(run.applied.get("lr_g", tc.lr_g)),
        "snapshot_every": int(run.applied.get("speed", tc.snapshot_every)),
    })
    out = Path(root) / name
    writer = RunWriter(out, cfg)
    writer.write_data(run.data, dense=True)
    snaps = [snap for snap in h.history() if snap.step <= parts["step"]]
    for snap in snaps:
        writer.append(snap)
    writer.checkpoint(parts["state"])
    latest = snaps[-1]
    writer.final(latest, parts["total_steps"])
    writer.samples(parts["samples"])
    extra = {
        "page": "Toy Lab",
        "method": run.method,
        "step": latest.step,
        "settings": settings_to_query(s) if s is not None else None,
        "live_changes": run.events,
        "history_from_step": snaps[0].step,
    }
    (out / "toylab.json").write_text(json.dumps(extra, indent=2))
    generated_table(latest.generated, run.data.x_train, latest.step).to_csv(out / "generated.csv",
                                                                             index=False)
    state = h.status.state
    writer.set_status("finished" if state == "finished" else "stopped", latest.step)
    return out
