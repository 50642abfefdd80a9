"""The run store: one folder per run.

A run folder holds ``config.json``, ``metrics.jsonl`` (one line per snapshot), ``final.json``
(the last step's test ``acsa``, ``gm``, ``accuracy``, ``recall``, also as ``test``; ``val``, the
last validation scores; ``best_val``, the test scores at the evaluated step with the best
validation GM, see :class:`gamo.selection.BestVal`; null without a validation split),
``checkpoint.pt`` (state dicts, read back with ``weights_only=True``), ``indices.npz`` (the
chosen train/test/validation rows; runs made before the validation split have no ``val_idx``),
and for dense data ``data.npz`` and ``samples.npz`` (the generated points that would balance
the training set), and ``status.json`` (``running`` / ``stopped`` / ``finished`` / ``error``,
with the process id, its start time and the host of the process that wrote it, so that a run
whose process was killed is not shown as running).

Under faults: every file but ``metrics.jsonl`` is written through a temporary file and a
rename, so a killed process leaves either the old or the new file. ``metrics.jsonl`` is
appended to; a resume keeps only its whole lines up to the checkpoint's step and rewrites it
(atomically) before appending, so it stays valid and strictly increasing in step. A run killed
before its first checkpoint is continued from step 0. Nothing in a damaged folder raises
anything but :class:`RunError` (one line saying what to do), and :func:`list_runs` lists every
folder, damaged ones with the reason.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamo.config import RunConfig
from gamo.errors import ConfigError, GamoError
from gamo.selection import BestVal
from gamo.snapshot import Snapshot

CONFIG, METRICS, FINAL, CHECKPOINT = "config.json", "metrics.jsonl", "final.json", "checkpoint.pt"
INDICES, DATA, SAMPLES, STATUS = "indices.npz", "data.npz", "samples.npz", "status.json"
RUN_FILES = (CONFIG, METRICS, FINAL, CHECKPOINT, INDICES, DATA, SAMPLES, STATUS)
"""The files a run folder is made of (``sample --out`` never writes over one)."""
_MARKERS = (CONFIG, STATUS, FINAL, CHECKPOINT, METRICS)   # any of these makes a folder a (maybe broken) run
_TMP = ".tmp"


class RunError(GamoError):
    """A run folder that is missing, incomplete, damaged or would be overwritten."""


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file so that a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + _TMP)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda p: p.write_text(text))


def savez_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez`` through a temporary file (never a half-written ``.npz``)."""
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **arrays)
    _atomic_write(Path(path), write)


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


# the process that writes a run ------------------------------------------------------------
def _proc_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc; None where unknown),
    so that a recycled pid is not taken for the run's process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _process_record() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "pid_start": _proc_start(pid), "time": time.time()}


def process_alive(status: dict) -> bool | None:
    """Whether the process recorded in a run's ``status.json`` still runs: True, False, or
    None when it cannot be told (another host, or a status without a pid)."""
    pid, host = status.get("pid"), status.get("host")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or not isinstance(host, str):
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:    # another user's process with that pid
        pass
    except OSError:
        return None
    start = status.get("pid_start")
    if isinstance(start, str):
        now = _proc_start(pid)
        if now is not None and now != start:
            return False        # the pid was given to another process since
    return True


# reading a run's files -------------------------------------------------------------------
def _read_json(path: Path) -> tuple[Any, str | None]:
    """(the parsed JSON, None), or (None, why it cannot be read)."""
    try:
        text = path.read_text()
    except IsADirectoryError:
        return None, f"{path.name} is a folder"
    except UnicodeDecodeError:
        return None, f"{path.name} is not text"
    except OSError as e:
        return None, f"{path.name} cannot be read ({_why(e)})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"{path.name} is not valid JSON (truncated or edited: {e.msg.lower()})"
    except RecursionError:
        return None, f"{path.name} is nested too deeply"


def _json_dict(path: Path) -> tuple[dict, str | None]:
    """A JSON object file: ({}, None) when missing, ({}, why) when damaged."""
    if not os.path.lexists(path):
        return {}, None
    v, why = _read_json(path)
    if why is None and not isinstance(v, dict):
        why = f"{path.name} holds {'null' if v is None else type(v).__name__}, not an object"
    return (v, None) if why is None else ({}, why)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:     # an integer too large for a float
        return None


def read_metrics(path: str | os.PathLike) -> tuple[list[dict], int]:
    """The whole, valid records of a ``metrics.jsonl`` file, and how many lines were left out:
    a last line without its newline (a process killed while writing it), lines that are not
    a JSON object with a whole-number ``step``, and records that a later record's step does not
    come after (duplicates, or a stretch that a resume made before this version ran again: the
    later records are the trajectory the run continues). Nothing when the file is missing."""
    p = Path(path)
    if not os.path.lexists(p):
        return [], 0
    try:
        text = p.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise RunError(f"{p} cannot be read ({_why(e)}): restore it, or remove it to continue without the "
                       f"records so far") from None
    lines = text.split("\n")
    partial = lines.pop()          # "" after a final newline; else a line cut off mid-write
    out, dropped = [], int(bool(partial))
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            dropped += 1
            continue
        step = rec.get("step") if isinstance(rec, dict) else None
        if isinstance(step, bool) or not isinstance(step, int):
            dropped += 1
            continue
        while out and out[-1]["step"] >= step:   # a resume by an older version went back: it continues
            out.pop()                              # from there, so the later records supersede these
            dropped += 1
        out.append(rec)
    return out, dropped


# writing a run --------------------------------------------------------------------------
def check_new_out(out: str | os.PathLike) -> None:
    """Raise :class:`RunError` unless a new run may be written to ``out``: a folder that does
    not exist yet (in a place where folders can be made) or is empty. A folder with a run
    (resume it instead) or with any other file (never written into) is refused."""
    d = Path(out)
    if d.exists() or d.is_symlink():
        if not d.is_dir():
            raise RunError(f"--out {d} is a file: choose a folder name")
        if os.path.lexists(d / CONFIG):
            raise RunError(f"{d} already holds a run: choose another --out, or continue it with --resume {d}")
        try:
            names = sorted(e.name for e in os.scandir(d))
        except OSError as e:
            raise RunError(f"--out {d} cannot be read ({_why(e)}): choose another folder") from None
        foreign = [n for n in names if n not in {f + _TMP for f in RUN_FILES}]   # leftovers of a killed start
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RunError(f"--out {d} already holds files that are not a GAMO run ({shown}): "
                           f"choose a new or empty folder")
        return
    parent = Path(os.path.abspath(d)).parent
    while not (parent.exists() or parent.is_symlink()) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise RunError(f"--out {d} is inside {parent}, which is a file: choose a folder path")


class RunWriter:
    """Writes one run's folder as it trains.

    Parameters
    ----------
    out : path
        The run folder. A new run needs a folder that does not exist or is empty
        (:func:`check_new_out`): another run, or anyone's other files, are never written into.
    cfg : RunConfig
        Written to ``config.json`` (on resume too: flags that changed it, such as more steps,
        are recorded).
    resume : bool
        Append to the existing run in ``out``.
    resume_step : int, optional
        With ``resume``: the step the run continues from (its checkpoint's; 0 without one).
        Records of ``metrics.jsonl`` past it, of a trajectory the resume does not continue, are
        dropped (the file is rewritten atomically), with any partial last line; the best
        validation step is tracked over the records kept and every record appended.
    """

    def __init__(self, out: str | os.PathLike, cfg: RunConfig, resume: bool = False,
                 resume_step: int | None = None) -> None:
        self.dir = Path(out)
        self.cfg = cfg
        self.last_step: int | None = None   # the step of the last record in metrics.jsonl
        try:
            if resume:
                if not (self.dir / CONFIG).is_file():
                    raise RunError(f"{self.dir} is not a run folder (no {CONFIG}): pass the --out folder of a training run")
                records, _ = read_metrics(self.dir / METRICS)
                if resume_step is not None:
                    records = [r for r in records if r["step"] <= resume_step]
                _write_text(self.dir / METRICS, "".join(json.dumps(r) + "\n" for r in records))
                _write_text(self.dir / CONFIG, cfg.to_json())
                self.last_step = records[-1]["step"] if records else None
                self.best_val = BestVal.from_records(records, resume_step)
            else:
                check_new_out(self.dir)
                self.dir.mkdir(parents=True, exist_ok=True)
                _write_text(self.dir / CONFIG, cfg.to_json())
                _write_text(self.dir / METRICS, "")
                self.best_val = BestVal()
            self.set_status("running")
        except OSError as e:
            raise RunError(f"cannot write the run folder {self.dir} ({_why(e)}): choose a folder you can write") from None

    def set_status(self, state: str, step: int | None = None) -> None:
        _write_text(self.dir / STATUS, json.dumps({"state": state, "step": step, **_process_record()}))

    def write_data(self, data, dense: bool) -> None:
        savez_atomic(self.dir / INDICES, train_idx=data.train_idx, test_idx=data.test_idx,
                     y_train=data.y_train, y_test=data.y_test, val_idx=data.val_idx, y_val=data.y_val)
        if dense:
            n, m, v = len(data.x_train), len(data.x_test), len(data.x_val)
            savez_atomic(self.dir / DATA, x_train=data.x_train.reshape(n, -1), y_train=data.y_train,
                         x_test=data.x_test.reshape(m, -1), y_test=data.y_test,
                         x_val=data.x_val.reshape(v, int(np.prod(data.x_val.shape[1:]))), y_val=data.y_val)

    def append(self, snap: Snapshot) -> None:
        rec = snap.to_record()
        with open(self.dir / METRICS, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.last_step = rec["step"]
        self.best_val.update(rec)

    def checkpoint(self, state: dict[str, Any]) -> None:
        """Save ``state`` (a method's ``state_dict``) with the method's name, which a resume
        checks against the config."""
        state = {**state, "method": self.cfg.train.method}
        _atomic_write(self.dir / CHECKPOINT, lambda p: torch.save(state, p))

    def final(self, snap: Snapshot, total_steps: int, device: torch.device | None = None) -> dict[str, Any]:
        """Write ``final.json``: the last step's test scores (top-level, as before, and as
        ``test``), its validation scores (``val``, or null) and ``best_val``, the test scores
        at the appended step with the best validation GM (null without a validation split).
        ``status.json`` then says ``finished`` (or ``stopped`` when steps are left)."""
        t = snap.test
        final = {"acsa": t.acsa, "gm": t.gm, "accuracy": t.accuracy, "recall": list(t.recall),
                 "step": snap.step, "epoch": snap.epoch, "elapsed": snap.elapsed,
                 "complete": snap.step >= total_steps, "torch": torch.__version__,
                 "test": {"acsa": t.acsa, "gm": t.gm, "accuracy": t.accuracy, "recall": list(t.recall)},
                 "val": None if snap.val is None else {"acsa": snap.val.acsa, "gm": snap.val.gm},
                 "best_val": self.best_val.to_dict()}
        if device is not None:  # where it ran: tables mix machines across sessions
            final["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        _write_text(self.dir / FINAL, json.dumps(final, indent=2))
        # whoever writes final.json is done with the run (the app saves runs it keeps training)
        self.set_status("finished" if final["complete"] else "stopped", snap.step)
        return final

    def samples(self, samples: dict[str, np.ndarray] | None) -> None:
        if samples is not None:
            savez_atomic(self.dir / SAMPLES, **samples)


# reading a run ------------------------------------------------------------------------------
def _config_problem(run: Path) -> tuple[RunConfig | None, str | None]:
    """(the run's config, None) or (None, what is wrong with ``config.json``)."""
    path = run / CONFIG
    if not os.path.lexists(path):
        return None, f"no {CONFIG}"
    v, why = _read_json(path)
    if why is not None:
        return None, why
    try:
        return RunConfig.from_dict(v), None
    except ConfigError as e:
        return None, f"{CONFIG}: {e}"


def load_config(run: str | os.PathLike) -> RunConfig:
    run = Path(run)
    if not os.path.lexists(run / CONFIG):
        raise RunError(f"{run} is not a run folder (no {CONFIG}): pass the --out folder of a training run")
    cfg, why = _config_problem(run)
    if why is not None:
        raise RunError(f"{run}/{why}; restore it from a copy, or start a new run")
    return cfg


def load_checkpoint(run: str | os.PathLike, device: str | torch.device = "cpu",
                    missing_ok: bool = False) -> dict[str, Any] | None:
    """Read a run's checkpoint safely (``weights_only=True``: no arbitrary pickles); None when
    there is none and ``missing_ok``."""
    path = Path(run) / CHECKPOINT
    if not os.path.lexists(path):
        if missing_ok:
            return None
        raise RunError(f"{run} has no {CHECKPOINT}: the run stopped before its first checkpoint; "
                       f"continue it first with: python -m gamo train --resume {run}")
    try:
        with warnings.catch_warnings():   # torch warns about the "pickle protocol" of random bytes
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a damaged or foreign file
        raise RunError(f"{path} cannot be read as a GAMO checkpoint ({type(e).__name__}): restore it, or "
                       f"start a new run") from None
    if not isinstance(state, dict) or not isinstance(state.get("modules"), dict) or \
            isinstance(state.get("step"), bool) or not isinstance(state.get("step"), int):
        raise RunError(f"{path} is not a GAMO checkpoint (no step and modules): restore it, or start a new run")
    return state


def _read_npz(path: Path, need: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (no pickles), or :class:`RunError` when it is damaged
    or lacks one of ``need``."""
    fix = f"restore it, or start a new run ({what})"
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise RunError(f"{path} is not an .npz archive: {fix}")
            missing = [k for k in need if k not in f.files]
            if missing:
                raise RunError(f"{path} lacks {', '.join(missing)}: {fix}")
            return {k: np.asarray(f[k]) for k in f.files}
    except RunError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file, whatever numpy says
        raise RunError(f"{path} cannot be read ({type(e).__name__}): {fix}") from None


def check_indices(run: str | os.PathLike, data) -> None:
    """Raise :class:`RunError` unless ``data`` has the rows recorded in the run's
    ``indices.npz`` (nothing to compare when it is missing)."""
    path = Path(run) / INDICES
    if not os.path.lexists(path):
        return
    f = _read_npz(path, ("train_idx", "test_idx"), "it records the rows the run was trained on")
    same = all(np.array_equal(f[k], getattr(data, k)) for k in ("train_idx", "test_idx"))
    if "val_idx" in f:   # runs made before the validation split have none to compare
        same = same and np.array_equal(f["val_idx"], data.val_idx)
    if not same:
        raise RunError(f"the data of {run} changed since the run was made (other rows chosen); start a new run")


def load_run_table(run: str | os.PathLike, cfg: RunConfig):
    """The Dataset of a run on a table, from the run's own ``data.npz`` and ``indices.npz``
    (the table file it was made from is not read: it may be gone, changed, or anywhere)."""
    from gamo.data.types import Dataset

    run = Path(run)
    if not os.path.lexists(run / DATA):
        raise RunError(f"{run} has no {DATA} (the rows it was trained on): continue the run with "
                       f"python -m gamo train --resume {run} to write it")
    d = _read_npz(run / DATA, ("x_train", "y_train", "x_test", "y_test"), "it holds the rows the run was trained on")
    idx = _read_npz(run / INDICES, ("train_idx", "test_idx"), "it records the rows the run was trained on") \
        if os.path.lexists(run / INDICES) else {}
    try:
        xs = {k: np.asarray(d[k], dtype=np.float32) for k in ("x_train", "x_test", "x_val") if k in d}
        ys = {k: np.asarray(d[k]) for k in ("y_train", "y_test", "y_val") if k in d}
        for split in ("train", "test", "val"):
            x, y = xs.get(f"x_{split}"), ys.get(f"y_{split}")
            if x is None or y is None:
                continue
            if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or not np.isfinite(x).all() or \
                    not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
                raise ValueError(split)
        y_all = np.concatenate([ys[k].astype(np.int64) for k in ys])
        k = int(y_all.max()) + 1 if len(y_all) else 0
        if k < 2 or k > 100_000:
            raise ValueError("classes")
    except (ValueError, TypeError) as e:
        raise RunError(f"{run / DATA} does not hold a run's rows ({e}): restore it, or start a new run") from None
    n = len(ys["y_train"])
    return Dataset(
        name=cfg.data.dataset, kind="table",
        x_train=xs["x_train"], y_train=ys["y_train"].astype(np.int64),
        x_test=xs["x_test"], y_test=ys["y_test"].astype(np.int64),
        class_names=tuple(str(c) for c in range(k)),
        train_idx=np.asarray(idx.get("train_idx", np.arange(n))),
        test_idx=np.asarray(idx.get("test_idx", np.arange(len(ys["y_test"])))),
        meta={"from": str(run / DATA)},
        x_val=xs.get("x_val"), y_val=ys["y_val"].astype(np.int64) if "y_val" in ys else None,
        val_idx=np.asarray(idx["val_idx"]) if "val_idx" in idx else None,
    )


def run_process_state(run: str | os.PathLike) -> tuple[str | None, bool | None]:
    """(the state in ``status.json`` or None, whether its process runs: see :func:`process_alive`)."""
    status, _ = _json_dict(Path(run) / STATUS)
    state = status.get("state") if isinstance(status.get("state"), str) else None
    return state, process_alive(status) if state == "running" else None


# listing runs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    path: Path
    method: str
    dataset: str
    profile: str
    state: str
    step: int | None
    acsa: float | None
    gm: float | None
    note: str = ""      # why the folder is broken, or what to do with a stopped one


def _run_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) with one of a run's files, without
    following links to folders and skipping what cannot be read."""
    def is_run(d: str, dirs: list[str], files: list[str]) -> bool:
        if any(n in _MARKERS for n in files):
            return True
        # a run's file that became a folder (not a run folder that happens to have that name)
        return any(n in _MARKERS and not _has_marker_file(os.path.join(d, n)) for n in dirs)

    out = []
    for d, dirs, files in os.walk(root, onerror=lambda e: None, followlinks=False):
        dirs.sort()
        if is_run(d, dirs, files):
            out.append(Path(d))
    return sorted(out)


def _has_marker_file(d: str) -> bool:
    try:
        return any(e.name in _MARKERS and not e.is_dir(follow_symlinks=False) for e in os.scandir(d))
    except OSError:
        return False


def _str(v: Any) -> str:
    return v if isinstance(v, str) and v else "?"


def run_info(d: str | os.PathLike) -> RunInfo:
    """One run folder's row in ``gamo list``: never raises; what is damaged is the note."""
    d = Path(d)
    problems: list[str] = []
    cfg, why = _config_problem(d)
    if cfg is not None:
        method, dataset, profile = cfg.train.method, cfg.data.dataset, cfg.data.profile
    else:
        problems.append(why)
        raw, _ = _json_dict(d / CONFIG)                  # what can still be read of it
        train, data = (raw.get(k) if isinstance(raw.get(k), dict) else {} for k in ("train", "data"))
        method, dataset, profile = _str(train.get("method")), _str(data.get("dataset")), _str(data.get("profile"))

    final, why = _json_dict(d / FINAL)
    if why:
        problems.append(why)
    status, why = _json_dict(d / STATUS)
    if why:
        problems.append(why)
    nums: dict[str, float | None] = {}
    for name, src, key in (("step", final, "step"), ("acsa", final, "acsa"), ("gm", final, "gm"),
                           ("status step", status, "step")):
        v = src.get(key)
        nums[name] = _number(v)
        if v is not None and (nums[name] is None or not math.isfinite(nums[name])):
            problems.append(f"{FINAL if src is final else STATUS}: {key} is not a number ({v!r:.20})")
            nums[name] = None
    state = status.get("state") if isinstance(status.get("state"), str) else None
    if status and state is None:
        problems.append(f"{STATUS}: no state")
    note = ""
    if state == "running":
        alive = process_alive(status)
        if alive is False:
            state = "dead"
            note = (f"its process is gone (killed?): continue it with python -m gamo train --resume {d}"
                    + ("" if os.path.lexists(d / CHECKPOINT) else " (from step 0: it had no checkpoint yet)"))
        elif alive is None and isinstance(status.get("host"), str) and status["host"] != socket.gethostname():
            note = f"on host {status['host']}"
    if final and state != "running":
        total = cfg.train.steps if cfg is not None and cfg.train.steps else None
        done = final.get("complete") is True and (total is None or (nums["step"] or 0) >= total)
        state = "finished" if done else "stopped"
        note = "" if done else note
    if state is None and cfg is not None and not final:
        # config.json is written first, status.json next: a run killed in between
        state, note = "dead", f"it was killed as it started: continue it with python -m gamo train --resume {d}"
    if state is None:
        state = "unknown"
    if problems:
        state, note = "broken", "; ".join(problems)
    step = nums["step"] if nums["step"] is not None else nums["status step"]
    return RunInfo(d, method, dataset, profile, state, None if step is None else int(step),
                   nums["acsa"], nums["gm"], note)


def list_runs(root: str | os.PathLike = "runs") -> list[RunInfo]:
    """Every run folder under ``root`` (searched recursively), sorted by path, damaged ones
    too (state ``broken``, the reason in ``note``); a killed run's state is ``dead`` (no
    results yet) or ``stopped``."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [run_info(d) for d in _run_folders(root)]
