"""The Runs page's logic: the stored runs as table rows, their curves, deleting one; never
calls Streamlit.

Runs come from two kinds of roots (:func:`run_roots`): the user's runs folder (``GAMO_RUNS_DIR``,
else ``runs/`` under the repository: where the Toy Lab saves and ``python -m gamo train``
writes by default), whose runs may be deleted, and the committed benchmark runs
(``bench/results/runs*``; ``GAMO_BENCH_RUNS`` in the environment, folders separated by
``os.pathsep``, replaces them, empty for none), which are read-only here. Every folder
:func:`gamo.runs.list_runs` finds is a row, damaged ones too (status ``broken``, the reason in
``note``); reading one never raises.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.ui.figures import class_colors, metric_curves
from gamo.config import METHOD_LABELS
from gamo.errors import GamoError
from gamo.runs import CONFIG, FINAL, METRICS, RunError, RunInfo, list_runs, read_metrics, run_process_state

__all__ = ["ROOT", "RunRow", "Root", "run_roots", "user_runs_dir", "bench_roots", "scan", "filter_rows",
           "table_rows", "options", "load_records", "records_series", "health_records", "overlay_chart",
           "OVERLAY_METRICS", "delete_run", "STATES"]

ROOT = Path(__file__).resolve().parent.parent.parent
STATES = ("finished", "stopped", "running", "dead", "error", "broken", "unknown")
"""The statuses a run can have (see :func:`gamo.runs.run_info`)."""


def user_runs_dir() -> Path:
    """The user's runs folder: ``GAMO_RUNS_DIR``, else ``runs/`` under the repository."""
    return Path(os.environ.get("GAMO_RUNS_DIR") or ROOT / "runs")


def bench_roots() -> list[Path]:
    """The committed benchmark runs' roots (read-only here)."""
    env = os.environ.get("GAMO_BENCH_RUNS")
    if env is not None:
        return [Path(p) for p in env.split(os.pathsep) if p.strip()]
    return sorted(p for p in (ROOT / "bench" / "results").glob("runs*") if p.is_dir())


@dataclass(frozen=True)
class Root:
    path: Path
    label: str          # how the page names it: a path relative to the repository where it can
    read_only: bool


def _label(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def run_roots() -> list[Root]:
    """The user's runs folder first, then the benchmark roots."""
    user = user_runs_dir()
    return [Root(user, _label(user), False), *(Root(p, _label(p), True) for p in bench_roots())]


@dataclass(frozen=True)
class RunRow:
    """One stored run (or damaged folder) as the page shows it."""

    label: str                     # unique: root label / path in the root
    info: RunInfo                  # gamo.runs.run_info: method, dataset, profile, state, step, acsa, gm, note
    root: Root
    loss: str
    epoch: float | None            # of the last step (final.json)
    best: dict | None              # final.json's best_val (test scores at the best validation epoch)
    recall: tuple[float, ...]      # the last step's test recall

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def read_only(self) -> bool:
        return self.root.read_only

    @property
    def state(self) -> str:
        return self.info.state


def _read_dict(path: Path) -> dict:
    try:
        v = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return v if isinstance(v, dict) else {}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _best(final: dict) -> dict | None:
    b = final.get("best_val")
    if not isinstance(b, dict) or not isinstance(b.get("test"), dict):
        return None
    t, v = b["test"], b.get("val") if isinstance(b.get("val"), dict) else {}
    out = {"step": _num(b.get("step")), "epoch": _num(b.get("epoch")), "acsa": _num(t.get("acsa")),
           "gm": _num(t.get("gm")), "val_gm": _num(v.get("gm"))}
    return out if out["acsa"] is not None or out["gm"] is not None else None


def _row(info: RunInfo, root: Root) -> RunRow:
    rel = os.path.relpath(info.path, root.path)
    label = root.label if rel == "." else f"{root.label}/{rel}"
    cfg = _read_dict(info.path / CONFIG)
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    loss = train.get("loss") if isinstance(train.get("loss"), str) else "?"
    final = _read_dict(info.path / FINAL)
    rec = final.get("recall")
    recall = tuple(float(r) for r in rec if _num(r) is not None) if isinstance(rec, list) else ()
    return RunRow(label=label, info=info, root=root, loss=loss, epoch=_num(final.get("epoch")),
                  best=_best(final), recall=recall)


def scan(roots: Sequence[Root] | None = None) -> list[RunRow]:
    """Every run folder under the roots (damaged ones too), each once: a folder under a
    read-only root is read-only even when the user's folder holds it too."""
    roots = list(run_roots() if roots is None else roots)
    seen: dict[str, RunRow] = {}
    for root in sorted(roots, key=lambda r: not r.read_only):       # read-only roots claim first
        for info in list_runs(root.path):
            key = os.path.realpath(info.path)
            if key not in seen:
                seen[key] = _row(info, root)
    order = {id(r): i for i, r in enumerate(roots)}
    return sorted(seen.values(), key=lambda r: (order.get(id(r.root), 0), r.label))


def options(rows: Iterable[RunRow]) -> dict[str, list[str]]:
    """The values each filter can take: ``dataset``, ``method``, ``loss``, ``status``."""
    rows = list(rows)
    return {"dataset": sorted({r.info.dataset for r in rows}), "method": sorted({r.info.method for r in rows}),
            "loss": sorted({r.loss for r in rows}),
            "status": [s for s in STATES if any(r.state == s for r in rows)]
            + sorted({r.state for r in rows} - set(STATES))}


def filter_rows(rows: Iterable[RunRow], *, dataset: Sequence[str] = (), method: Sequence[str] = (),
                loss: Sequence[str] = (), status: Sequence[str] = ()) -> list[RunRow]:
    """The rows that match every non-empty filter (an empty one keeps all)."""
    def ok(value: str, chosen: Sequence[str]) -> bool:
        return not chosen or value in chosen

    return [r for r in rows if ok(r.info.dataset, dataset) and ok(r.info.method, method)
            and ok(r.loss, loss) and ok(r.state, status)]


def table_rows(rows: Iterable[RunRow]) -> list[dict[str, Any]]:
    """The table of runs: one dict per row (None where there is nothing)."""
    out = []
    for r in rows:
        i, b = r.info, r.best or {}
        out.append({
            "run": r.label, "dataset": i.dataset, "profile": i.profile,
            "method": METHOD_LABELS.get(i.method, i.method), "loss": r.loss, "status": i.state,
            "step": i.step, "epoch": r.epoch,
            "ACSA (last)": i.acsa, "GM (last)": i.gm,
            "best-val epoch": b.get("epoch"), "ACSA (best val)": b.get("acsa"), "GM (best val)": b.get("gm"),
            "read-only": r.read_only, "note": i.note,
        })
    return out


# curves -------------------------------------------------------------------------------------
def load_records(path: str | os.PathLike) -> tuple[list[dict], int, str | None]:
    """(the whole records of a run's ``metrics.jsonl``, lines left out, why it cannot be read
    or None): never raises."""
    try:
        recs, dropped = read_metrics(Path(path) / METRICS)
    except GamoError as e:
        return [], 0, str(e)
    except OSError as e:                      # a metrics.jsonl that became a folder, ...
        return [], 0, f"{METRICS} cannot be read ({e.strerror or type(e).__name__})"
    return recs, dropped, None


def _split(rec: Mapping[str, Any], split: str) -> Mapping[str, Any]:
    v = rec.get(split)
    return v if isinstance(v, Mapping) else {}


def records_series(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Curves from ``metrics.jsonl`` records, in :func:`app.ui.curves.history_series`'s layout
    (``steps``, ``losses`` {M, D, G}, ``acsa``, ``gm``, ``recall`` (T, K) on the test split)
    plus ``epochs``, ``val_acsa``, ``val_gm`` and ``all_losses`` (every loss a record names).
    NaN where a record lacks a value."""
    def num(v: Any) -> float:
        x = _num(v)
        return np.nan if x is None else x

    t = len(records)
    steps = np.array([int(r["step"]) for r in records], dtype=np.int64)
    losses: dict[str, np.ndarray] = {}
    for i, r in enumerate(records):
        ls = r.get("losses")
        if isinstance(ls, Mapping):
            for k, v in ls.items():
                losses.setdefault(str(k), np.full(t, np.nan))[i] = num(v)
    tests = [_split(r, "test") for r in records]
    recs = [tt.get("recall") if isinstance(tt.get("recall"), list) else [] for tt in tests]
    k = max((len(x) for x in recs), default=0)
    recall = np.full((t, k), np.nan)
    for i, x in enumerate(recs):
        recall[i, :len(x)] = [num(v) for v in x]
    return {
        "steps": steps,
        "epochs": np.array([num(r.get("epoch")) for r in records], dtype=np.float64),
        "losses": {p: losses[p] for p in ("M", "D", "G") if p in losses},
        "all_losses": losses,
        "acsa": np.array([num(tt.get("acsa")) for tt in tests], dtype=np.float64),
        "gm": np.array([num(tt.get("gm")) for tt in tests], dtype=np.float64),
        "val_acsa": np.array([num(_split(r, "val").get("acsa")) for r in records], dtype=np.float64),
        "val_gm": np.array([num(_split(r, "val").get("gm")) for r in records], dtype=np.float64),
        "recall": recall,
    }


def _valid_health(h: Any) -> bool:
    if not isinstance(h, Mapping) or not h:
        return False
    try:
        return all(isinstance(v, Mapping) for v in h.values()) and all(int(c) >= 0 for c in h)
    except (TypeError, ValueError):
        return False


def health_records(records: Sequence[Mapping[str, Any]]) -> dict[int, dict]:
    """step -> the generator's health at that step (``metrics.jsonl``'s ``health`` records;
    malformed ones left out)."""
    return {int(r["step"]): r["health"] for r in records if _valid_health(r.get("health"))}


OVERLAY_METRICS = ("ACSA (test)", "GM (test)", "ACSA (validation)", "GM (validation)",
                   "recall of one class (test)", "loss of one player")


def overlay_chart(named: Mapping[str, Mapping[str, Any]], metric: str, *, x: str = "epoch",
                  cls: int = 0, player: str = "M", height: int = 380) -> go.Figure:
    """One line per run for ``metric`` (one of :data:`OVERLAY_METRICS`) over epochs or steps.

    Parameters
    ----------
    named : mapping
        Run label -> :func:`records_series`.
    metric : str
    x : ``"epoch"`` or ``"step"``
        Epochs compare runs whose batches per epoch differ (another profile, another dataset).
    cls, player
        The class of ``recall of one class``, the player of ``loss of one player``.
    """
    def values(s: Mapping[str, Any]) -> np.ndarray:
        n = len(s["steps"])
        if metric == "ACSA (test)":
            return s["acsa"]
        if metric == "GM (test)":
            return s["gm"]
        if metric == "ACSA (validation)":
            return s["val_acsa"]
        if metric == "GM (validation)":
            return s["val_gm"]
        if metric == "recall of one class (test)":
            r = s["recall"]
            return r[:, cls] if cls < r.shape[1] else np.full(n, np.nan)
        if metric == "loss of one player":
            return s["all_losses"].get(player, np.full(n, np.nan))
        raise ValueError(f"metric: choose one of {', '.join(OVERLAY_METRICS)}")

    xs_key = "epochs" if x == "epoch" else "steps"
    grid = np.unique(np.concatenate([np.asarray(s[xs_key], dtype=np.float64) for s in named.values()]
                                    or [np.zeros(0)]))
    grid = grid[np.isfinite(grid)]
    lines: dict[str, np.ndarray] = {}
    for label, s in named.items():
        xv = np.asarray(s[xs_key], dtype=np.float64)
        pos = {float(v): i for i, v in enumerate(xv)}
        vals = np.asarray(values(s), dtype=np.float64)
        idx = np.array([pos.get(float(v), -1) for v in grid], dtype=np.int64)
        line = np.full(len(grid), np.nan)
        line[idx >= 0] = vals[idx[idx >= 0]]
        lines[label] = line
    what = {"recall of one class (test)": f"recall of class {cls} (test)",
            "loss of one player": f"loss of {player}"}.get(metric, metric)
    y_range = None if metric == "loss of one player" else (0.0, 1.05)
    colors = dict(zip(lines, class_colors(max(1, len(lines)))))
    fig = metric_curves(grid, lines, f"{what}, per run", y_range, x_title=x, colors=colors, height=height,
                        uirevision=f"runs-overlay-{metric}", validate=False)
    for tr in fig.data:        # the runs' curves may miss points where another run has one
        tr.connectgaps = True
    return fig


# deleting -----------------------------------------------------------------------------------
def _inside(p: str, root: str) -> bool:
    return p != root and os.path.commonpath([p, root]) == root


def delete_run(path: str | os.PathLike, user_root: str | os.PathLike,
               read_only_roots: Sequence[str | os.PathLike] = ()) -> None:
    """Delete the run folder ``path`` with all its files.

    Only a run folder inside ``user_root`` (not the root itself), never one inside a read-only
    root (the committed benchmark runs), never a folder that holds other runs, and never a run
    whose process is training it right now. Raises :class:`gamo.runs.RunError` (one line)
    otherwise.
    """
    p = Path(path)
    if p.is_symlink():
        raise RunError(f"{p} is a link: delete it by hand")
    real, user = os.path.realpath(p), os.path.realpath(user_root)
    for ro in read_only_roots:
        r = os.path.realpath(ro)
        if real == r or _inside(real, r):
            raise RunError(f"{p} is a committed benchmark run: it is read-only here")
    if not _inside(real, user):
        raise RunError(f"{p} is not in your runs folder ({user_root}): only your own runs can be deleted here")
    if not p.is_dir():
        raise RunError(f"{p} is gone already")
    inner = [r for r in list_runs(p) if os.path.realpath(r.path) != real]
    if inner:
        raise RunError(f"{p} holds other runs ({len(inner)}, e.g. {inner[0].path.name}): delete them first")
    if not list_runs(p):
        raise RunError(f"{p} is not a run folder")
    state, alive = run_process_state(p)
    if state == "running" and alive:
        raise RunError(f"{p} is being trained right now: stop it first")
    try:
        shutil.rmtree(p)
    except OSError as e:
        raise RunError(f"cannot delete {p} ({e.strerror or type(e).__name__})") from None
