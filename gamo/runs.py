"""The run store: one folder per run.

A run folder holds ``config.json``, ``metrics.jsonl`` (one line per snapshot), ``final.json``
(the last step's test ``acsa``, ``gm``, ``accuracy``, ``recall``, also as ``test``; ``val``, the
last validation scores; ``best_val``, the test scores at the evaluated step with the best
validation GM, see :class:`gamo.selection.BestVal`; null without a validation split),
``checkpoint.pt`` (state dicts, read back with ``weights_only=True``), ``indices.npz`` (the
chosen train/test/validation rows; runs made before the validation split have no ``val_idx``),
and for dense data ``data.npz`` and ``samples.npz`` (the generated points that would balance
the training set).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamo.config import RunConfig
from gamo.errors import ConfigError, GamoError
from gamo.selection import BestVal, read_records
from gamo.snapshot import Snapshot

CONFIG, METRICS, FINAL, CHECKPOINT = "config.json", "metrics.jsonl", "final.json", "checkpoint.pt"
INDICES, DATA, SAMPLES, STATUS = "indices.npz", "data.npz", "samples.npz", "status.json"


class RunError(GamoError):
    """A run folder that is missing, incomplete or would be overwritten."""


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file so that a crash never leaves a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda p: p.write_text(text))


class RunWriter:
    """Writes one run's folder as it trains.

    Parameters
    ----------
    out : path
        The run folder. It must not hold another run unless ``resume`` (never overwritten).
    cfg : RunConfig
    resume : bool
        Append to an existing run of the same config.
    resume_step : int, optional
        With ``resume``: the step the run continues from. The best validation step is
        tracked over the records already in ``metrics.jsonl`` up to this step (all of them
        when not given) and over every record appended.
    """

    def __init__(self, out: str | os.PathLike, cfg: RunConfig, resume: bool = False,
                 resume_step: int | None = None) -> None:
        self.dir = Path(out)
        if self.dir.exists() and not self.dir.is_dir():
            raise RunError(f"--out {self.dir} is a file: choose a folder name")
        if (self.dir / CONFIG).exists() and not resume:
            raise RunError(f"{self.dir} already holds a run: choose another --out, or resume it with --resume {self.dir}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        if not resume:
            _write_text(self.dir / CONFIG, cfg.to_json())
            (self.dir / METRICS).write_text("")
        self.best_val = BestVal.from_records(read_records(self.dir / METRICS), resume_step) if resume else BestVal()
        self.set_status("running")

    def set_status(self, state: str, step: int | None = None) -> None:
        _write_text(self.dir / STATUS, json.dumps({"state": state, "step": step}))

    def write_data(self, data, dense: bool) -> None:
        np.savez(self.dir / INDICES, train_idx=data.train_idx, test_idx=data.test_idx,
                 y_train=data.y_train, y_test=data.y_test, val_idx=data.val_idx, y_val=data.y_val)
        if dense:
            n, m, v = len(data.x_train), len(data.x_test), len(data.x_val)
            np.savez(self.dir / DATA, x_train=data.x_train.reshape(n, -1), y_train=data.y_train,
                     x_test=data.x_test.reshape(m, -1), y_test=data.y_test,
                     x_val=data.x_val.reshape(v, int(np.prod(data.x_val.shape[1:]))), y_val=data.y_val)

    def append(self, snap: Snapshot) -> None:
        rec = snap.to_record()
        with open(self.dir / METRICS, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.best_val.update(rec)

    def checkpoint(self, state: dict[str, Any]) -> None:
        _atomic_write(self.dir / CHECKPOINT, lambda p: torch.save(state, p))

    def final(self, snap: Snapshot, total_steps: int, device: torch.device | None = None) -> dict[str, Any]:
        """Write ``final.json``: the last step's test scores (top-level, as before, and as
        ``test``), its validation scores (``val``, or null) and ``best_val``, the test scores
        at the appended step with the best validation GM (null without a validation split)."""
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
        return final

    def samples(self, samples: dict[str, np.ndarray] | None) -> None:
        if samples is not None:
            np.savez(self.dir / SAMPLES, **samples)


def load_config(run: str | os.PathLike) -> RunConfig:
    path = Path(run) / CONFIG
    if not path.exists():
        raise RunError(f"{run} is not a run folder (no {CONFIG}): pass the --out folder of a training run")
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e.msg}); it was edited or damaged") from None
    except ConfigError as e:
        raise RunError(f"{path}: {e}") from None


def load_checkpoint(run: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a run's checkpoint safely (``weights_only=True``: no arbitrary pickles)."""
    path = Path(run) / CHECKPOINT
    if not path.exists():
        raise RunError(f"{run} has no {CHECKPOINT}: the run did not reach its first checkpoint; train it again")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a damaged or foreign file
        raise RunError(f"{path} cannot be read as a GAMO checkpoint ({type(e).__name__}); train the run again") from None


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


def list_runs(root: str | os.PathLike = "runs") -> list[RunInfo]:
    """Every run folder under ``root`` (searched recursively), sorted by path."""
    root = Path(root)
    out = []
    if not root.exists():
        return out
    for cfg_path in sorted(root.rglob(CONFIG)):
        d = cfg_path.parent
        try:
            cfg = load_config(d)
        except RunError:
            continue
        final = json.loads((d / FINAL).read_text()) if (d / FINAL).exists() else {}
        status = json.loads((d / STATUS).read_text()) if (d / STATUS).exists() else {}
        state = status.get("state", "unknown")
        if final and state != "running":
            state = "finished" if final.get("complete") else "stopped"
        out.append(RunInfo(d, cfg.train.method, cfg.data.dataset, cfg.data.profile, state,
                           final.get("step", status.get("step")), final.get("acsa"), final.get("gm")))
    return out
