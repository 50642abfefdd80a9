"""The Image Lab's live runs, their maps and their audits; never calls Streamlit.

* :class:`ImageRun` -- an engine run handle (its own process, see :mod:`app.ui.live_runs`) plus
  the run's data, the space its generated samples live in and its live settings;
* :class:`MapState` -- one run's map in one projection (PCA or UMAP, :mod:`gamo.projection`),
  fitted on real points only and computed in a background executor, so the page never waits on
  it: the page draws the last layout it has while a new one is computed. Generated points are
  placed with the fitted model's ``transform``; for the conv family the real points (F's
  features) change as F trains, so the map is refitted at keyframes, aligned to the previous
  layout: when the generated points are combined in new features (``Generated.features_step``:
  F is frozen for G's phase), else at the snapshots with the training metrics (epoch ends);
* :class:`AuditState` -- :func:`gamo.audit.audit_samples` of the run's fixed-noise points,
  computed in the run's process (:func:`app.ui.queries.audit_fixed_noise`) from a background
  executor.
"""
from __future__ import annotations

import copy
import functools
import threading
import time
import uuid
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.ui.imagelab import STEP_CAP, TRAIL_LENGTH, ImageSettings, as_images, value_range
from app.ui.live_runs import new_handle
from app.ui.queries import audit_fixed_noise, train_features
from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.snapshot import Snapshot

__all__ = ["ImageRun", "start_image_run", "MapState", "AuditState", "space_name",
           "PCA_INLINE_MAX", "nearest_rows"]

# a PCA fit on at most this many numbers (rows x columns) is done inline (milliseconds: digits is
# 588 x 64); bigger fits and every UMAP fit go to the background executor
PCA_INLINE_MAX = 2_000_000


def space_name(family: str, dataset: str) -> str:
    """Where the generated samples (and the audit's distances) live, in words."""
    if family == "conv":
        return "F's features"
    return "input features" if dataset.startswith("table:") else "pixels"


@dataclass
class ImageRun:
    """One training run of the Image Lab and what the page derives from it."""

    handle: Any
    cfg: RunConfig
    method: str
    data: Dataset
    family: str
    images: np.ndarray | None                  # x_train as (n, C, H, W) images, or None (tables)
    vrange: tuple[float, float]                # pixel values drawn black .. white
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    applied: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    last_poll: float = field(default_factory=time.monotonic)

    @property
    def space(self) -> str:
        return space_name(self.family, self.data.name)

    @property
    def players(self) -> tuple[str, ...]:
        from gamo.methods import REGISTRY

        kind = REGISTRY.get(self.method)
        return tuple(kind.players) if kind is not None else ("M",)

    @property
    def minority(self) -> list[int]:
        counts = self.data.class_counts
        return [int(c) for c in range(len(counts)) if 0 < counts[c] < counts.max()]

    def apply_live(self, s: ImageSettings) -> list[str]:
        """Send a changed speed (iterations per snapshot) to the run; returns what changed."""
        if self.applied.get("speed") == s.speed:
            return []
        first = "speed" not in self.applied
        self.applied["speed"] = int(s.speed)
        if first:
            return []
        self.handle.set_snapshot_every(int(s.speed))
        self.events.append({"step": self.handle.status.step, "set": "snapshot_every", "value": int(s.speed)})
        return ["speed"]


def start_image_run(cfg: RunConfig, data: Dataset, s: ImageSettings, *, paused: bool = True) -> ImageRun:
    """Start a run handle on ``data`` (paused: the first snapshot is still made)."""
    from gamo.methods.base import resolve_family

    handle = new_handle(cfg, data, max_steps=STEP_CAP, history=400, paused=paused)
    images = as_images(data.x_train, data.image_shape)
    vr = value_range(data.x_train, data.kind == "image")
    run = ImageRun(handle=handle, cfg=cfg, method=cfg.train.method, data=data,
                   family=resolve_family(cfg.model.family, data), images=images, vrange=vr)
    run.apply_live(s)
    handle.start()
    return run


def _features_step(snap: Snapshot) -> int | None:
    """The step whose F a snapshot's generated points are combined in (None: not stamped)."""
    gen = snap.generated
    return None if gen is None else getattr(gen, "features_step", None)


def nearest_rows(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Row of ``x`` nearest (Euclidean) to each row of ``q``."""
    q = np.asarray(q, dtype=np.float32).reshape(len(q), -1)
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if len(q) == 0 or len(x) == 0:
        return np.zeros(len(q), dtype=np.int64)
    d2 = (x * x).sum(axis=1)[None, :] - 2.0 * (q @ x.T)
    return np.argmin(d2, axis=1).astype(np.int64)


class MapState:
    """One run's map in one projection, computed in the background.

    Parameters
    ----------
    kind : {"pca", "umap"}
    seed : int
        Seeds the projection.
    family : {"dense", "conv"}
        Dense: the real points are the flattened training rows, fitted once. Conv: F's features
        of the training rows, fetched from the run at keyframes and refitted aligned to the
        previous layout. A keyframe comes when a snapshot's generated points are combined in
        newer features than the map's (``Generated.features_step``: each phase where F is frozen
        and G trains), or, for methods whose points carry no such step, at the snapshots with
        training metrics (epoch ends). Generated points stamped with a features step are placed
        only on the keyframe of those features, so that they and the real points share a space.
    """

    def __init__(self, kind: str, seed: int, family: str) -> None:
        self.kind, self.seed, self.family = kind, int(seed), family
        self.lock = threading.Lock()
        self.projector: Any = None
        self.real: np.ndarray | None = None          # the real points the current keyframe was fitted on
        self.keyframe_step = -1                      # the step whose F those are (conv; 0 dense)
        self._asked = -1                             # the features step the last keyframe asked for
        self.placed: dict[int, np.ndarray] = {}      # snapshot step -> (m, 2) generated positions
        self.placed_keyframe: dict[int, int] = {}    # snapshot step -> keyframe it was placed on
        self.fit_future: Future | None = None
        self.place_future: Future | None = None
        self.error: str | None = None
        self.fit_started = 0.0

    # -------------------------------------------------------------------------------- reading
    @property
    def ready(self) -> bool:
        return self.projector is not None

    @property
    def fitting(self) -> bool:
        return self.fit_future is not None and not self.fit_future.done()

    def layout(self) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        """(real positions (n_fit, 2), their rows of x_train, keyframe, step of the keyframe)."""
        with self.lock:
            p = self.projector
            if p is None:
                return None
            return p.layout, p.indices, int(p.keyframe), int(self.keyframe_step)

    def shown(self, snaps: list[Snapshot]) -> tuple[int, np.ndarray, np.ndarray | None] | None:
        """(step, generated positions (m, 2), trails (T, m, 2) or None) of the newest snapshot
        whose generated points are placed; None when none is."""
        with self.lock:
            placed = dict(self.placed)
        have = [s.step for s in snaps if s.step in placed]
        if not have:
            return None
        step = have[-1]
        xy = placed[step]
        recent = [placed[s] for s in have[-TRAIL_LENGTH:] if placed[s].shape == xy.shape]
        trails = np.stack(recent) if len(recent) >= 2 else None
        return step, xy, trails

    # -------------------------------------------------------------------------------- updating
    def update(self, run: ImageRun, snaps: list[Snapshot], executor: Executor) -> None:
        """Start what the newest snapshot needs (a fit, a keyframe, a placement); never waits."""
        if not snaps or self.error:
            return
        snap = snaps[-1]
        self._forget(snaps)
        if self.family == "dense":
            if self.projector is None and not self.fitting:
                real = run.data.x_train.reshape(len(run.data.x_train), -1)
                if self.kind == "pca" and real.size <= PCA_INLINE_MAX:
                    self._fit_now(real, 0)
                else:
                    self._submit_fit(executor, real=real)
        elif not self.fitting:
            # conv: the first layout at once, then a keyframe where F has changed: F's features
            # of the real points are read from the run
            need = _features_step(snap)
            if self.projector is None and self._asked < 0:
                self._submit_fit(executor, handle=run.handle)
            elif need is not None:
                if need > self.keyframe_step and need > self._asked:
                    self._asked = need
                    self._submit_fit(executor, handle=run.handle)
            elif snap.train is not None and snap.step > max(self.keyframe_step, self._asked):
                self._asked = snap.step
                self._submit_fit(executor, handle=run.handle)
        if self.projector is None:
            return
        todo = [s for s in snaps[-TRAIL_LENGTH:] if s.generated is not None and s.step not in self.placed]
        if not todo:
            return
        if self.kind == "pca":
            for s in todo:
                self._place(s)
        elif self.place_future is None or self.place_future.done():
            self.place_future = executor.submit(self._place_all, todo[-2:])   # newest first on screen

    def _forget(self, snaps: list[Snapshot]) -> None:
        keep = {s.step for s in snaps[-TRAIL_LENGTH - 2:]}
        with self.lock:
            for k in [k for k in self.placed if k not in keep]:
                del self.placed[k]
                self.placed_keyframe.pop(k, None)

    def _fit_now(self, real: np.ndarray, step: int) -> None:
        from gamo.projection import Projector

        p = Projector(self.kind, seed=self.seed)
        p.fit(real)
        with self.lock:
            self.projector, self.real, self.keyframe_step = p, real, step

    def _submit_fit(self, executor: Executor, *, real: np.ndarray | None = None, handle: Any = None) -> None:
        self.fit_started = time.monotonic()
        self.fit_future = executor.submit(self._fit_job, real, handle)

    def _fit_job(self, real: np.ndarray | None, handle: Any) -> None:
        from gamo.projection import Projector

        try:
            step = 0
            if self.kind == "umap":
                from gamo.projection import warm_up

                warm_up()           # compiles once per process (waits if another thread is at it)
            if real is None:
                step, real = handle.query(train_features, timeout=120.0)
            with self.lock:
                prev = self.projector
            if prev is None:
                p = Projector(self.kind, seed=self.seed)
                p.fit(real)
            else:   # the same training rows with new values: the next keyframe, aligned
                p = copy.deepcopy(prev)     # the page keeps placing points on the old one meanwhile
                p.refit(real)
            with self.lock:
                self.projector, self.real, self.keyframe_step = p, real, int(step)
        except (TimeoutError, RuntimeError) as e:   # the run ended or is busy: try at the next keyframe
            if handle is None:
                self.error = f"the map could not be computed: {e}"
        except Exception as e:  # noqa: BLE001 - shown on the page, never a traceback
            self.error = f"the map could not be computed: {type(e).__name__}: {e}"

    def _place(self, s: Snapshot) -> None:
        with self.lock:
            p, kf_step = self.projector, self.keyframe_step
        x = np.asarray(s.generated.x, dtype=np.float32).reshape(len(s.generated.x), -1)
        if p is None or x.shape[1] != p.fitted_x.shape[1]:
            return          # e.g. samples in another space than the map's real points
        need = _features_step(s)
        if need is not None and need != kf_step:
            return          # combined in other features than the map's: placed once that keyframe is in
        xy = p.transform(x)
        with self.lock:
            self.placed[s.step] = xy
            self.placed_keyframe[s.step] = int(p.keyframe)

    def _place_all(self, snaps: list[Snapshot]) -> None:
        try:
            for s in reversed(snaps):
                self._place(s)
        except Exception as e:  # noqa: BLE001 - shown on the page
            self.error = f"generated points could not be placed: {type(e).__name__}: {e}"

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the jobs started so far (tests; Reset)."""
        end = time.monotonic() + timeout
        for f in (self.fit_future, self.place_future):
            if f is not None:
                try:
                    f.result(max(0.0, end - time.monotonic()))
                except Exception:  # noqa: BLE001 - the error is kept in self.error
                    return False
        return True


class AuditState:
    """The audit of one run's fixed-noise points, computed in the run's process."""

    def __init__(self) -> None:
        self.result: tuple[int, Any] | None = None    # (step, Audit or None)
        self.key: tuple[float, float] | None = None   # the percentiles of ``result``
        self.future: Future | None = None
        self.asked: tuple[int, float, float] | None = None
        self.error: str | None = None

    @property
    def pending(self) -> bool:
        return self.future is not None and not self.future.done()

    def request(self, run: ImageRun, step: int, low: float, high: float, executor: Executor) -> None:
        """Audit the run at (about) ``step`` with these percentiles, unless that is done or under
        way; never waits."""
        if self.pending:
            return
        self._collect()
        if self.result is not None and self.key == (low, high) and self.result[0] >= step:
            return
        if self.asked == (step, low, high) and self.error:
            return
        self.asked = (step, low, high)
        self.future = executor.submit(self._job, run.handle, low, high)

    def _job(self, handle: Any, low: float, high: float) -> tuple[tuple[int, Any], tuple[float, float]]:
        return handle.query(functools.partial(audit_fixed_noise, low_pct=low, high_pct=high), timeout=60.0), (low, high)

    def _collect(self) -> None:
        f = self.future
        if f is None or not f.done():
            return
        self.future = None
        try:
            self.result, self.key = f.result()
            self.error = None
        except Exception as e:  # noqa: BLE001 - shown on the page
            self.error = f"{type(e).__name__}: {e}"

    def current(self, wait: float = 0.0) -> tuple[int, Any] | None:
        """The newest finished audit (waiting up to ``wait`` seconds for one under way)."""
        if self.future is not None and wait > 0:
            try:
                self.future.result(wait)
            except Exception:  # noqa: BLE001 - collected below
                pass
        self._collect()
        return self.result
