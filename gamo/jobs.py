"""Background jobs: train a table cell, make a run's figure files or train a dataset's reference
classifier, each in its own process, a few at a time. UI-free (the Ablation Grid page keeps one
:class:`JobQueue` for the server; scripts and tests can use it alone).

* A job is a :class:`JobSpec` written to a JSON file and run as ``python -m gamo.jobs SPEC.json``
  with its output in a log file beside it. ``train`` trains the run folder ``run_dir`` from
  ``config`` (a new run, or the stopped one there resumed, to the length the config asks for:
  :func:`gamo.cli.execute_run`, so the folder is the run store's usual one) and then makes its
  figure files (:func:`gamo.figure4.write_run_files`, with the dataset's reference classifier
  when it is stored; a 2D toy's is trained on the spot, in seconds); ``figure`` only makes the
  figure files; ``reference`` trains the dataset's reference classifier
  (:func:`gamo.reference.train_reference`).
* :class:`JobQueue` runs at most ``max_parallel`` jobs at once (and only while its ``room``
  callback agrees: the app's cap on training processes), in the order they were submitted; a
  daemon thread starts queued jobs and reaps finished ones, and stops when nothing is left.
  A key (the run folder) has one active job: submitting it again while it is queued or running
  changes nothing, so two sessions asking for the same cell share one job.
* Progress (:class:`JobStatus`) comes from the job's log (the engine's own progress lines:
  ``step N/T`` of a run, ``epoch N/T`` of a reference classifier, ``PHASE ...`` lines of this
  module), else from the run folder (:func:`run_progress`: ``metrics.jsonl``'s last record
  against the config's length).
* :meth:`JobQueue.cancel` drops a queued job, or sends SIGINT to a running one: a training run
  saves a checkpoint and stops (``status.json`` says ``stopped``; submitting it again resumes
  it). A job that has not ended 60 s later is terminated.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["KINDS", "JobSpec", "JobStatus", "JobQueue", "Progress", "read_progress", "run_progress", "main"]

KINDS = ("train", "figure", "reference")
ACTIVE = ("queued", "running", "cancelling")
ENDED = ("done", "failed", "cancelled")
PHASE = "PHASE "             # a line the child prints when it moves on: "PHASE figure files"
TAIL_BYTES = 16_384          # read from the end of a log or metrics.jsonl for the progress
RESEND_S, KILL_S = 5.0, 60.0  # cancelling: SIGINT again every RESEND_S, SIGTERM after KILL_S


@dataclass(frozen=True)
class JobSpec:
    """What a job does.

    Parameters
    ----------
    key : str
        Identifies the job in its queue (one active job per key): the run folder's real path for
        ``train`` and ``figure``, ``reference:<key>`` for a reference classifier.
    kind : str
        ``train``, ``figure`` or ``reference``.
    label : str
        How a page names it ("GAMO, seed 0").
    run_dir : str
        ``train`` / ``figure``: the run folder.
    config : dict, optional
        ``train``: the run's :meth:`gamo.config.RunConfig.to_dict`.
    data : dict, optional
        ``reference``: the dataset's :class:`gamo.config.DataConfig` as a dict.
    n_claims : int
        Fresh samples per minority class behind the claim measures of the figure files.
    """

    key: str
    kind: str
    label: str = ""
    run_dir: str = ""
    config: dict | None = None
    data: dict | None = None
    n_claims: int = 500

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: choose one of {', '.join(KINDS)} (got {self.kind!r})")
        if self.kind in ("train", "figure") and not self.run_dir:
            raise ValueError(f"a {self.kind} job needs run_dir")
        if self.kind == "train" and not isinstance(self.config, dict):
            raise ValueError("a train job needs config (RunConfig.to_dict())")
        if self.kind == "reference" and not isinstance(self.data, dict):
            raise ValueError("a reference job needs data (DataConfig as a dict)")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "JobSpec":
        d = json.loads(text)
        return cls(**{k: d[k] for k in ("key", "kind", "label", "run_dir", "config", "data", "n_claims") if k in d})


@dataclass(frozen=True)
class Progress:
    """Where a job is: ``phase`` (``starting``, ``training``, ``figure files``, ``reference``,
    ...), ``done`` of ``total`` units (steps or epochs; None where not known) and the last
    line of its log."""

    phase: str
    done: int | None = None
    total: int | None = None
    line: str = ""

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


@dataclass(frozen=True)
class JobStatus:
    """A job as a page shows it (a copy: it does not change)."""

    key: str
    kind: str
    label: str
    state: str                   # queued, running, cancelling, done, failed, cancelled
    progress: Progress
    message: str = ""            # why it failed, or how it ended
    elapsed: float = 0.0         # seconds since it started (0 while queued)
    run_dir: str = ""
    log: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


_STEP = re.compile(r"^step (\d+)/(\d+)")
_EPOCH = re.compile(r"epoch (\d+)/(\d+)")


def _tail(path: Path, n: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def read_progress(log: str | os.PathLike) -> Progress | None:
    """The progress a job's log shows: its last ``step N/T`` line (training), ``epoch N/T``
    (a reference classifier) or ``PHASE`` line, whichever came last; None for an empty log."""
    lines = [ln.strip() for ln in _tail(Path(log)).splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1][:300]
    for ln in reversed(lines):
        if ln.startswith(PHASE):
            return Progress(ln[len(PHASE):].strip(), None, None, last)
        m = _STEP.match(ln)
        if m:
            return Progress("training", int(m.group(1)), int(m.group(2)), last)
        m = _EPOCH.search(ln)
        if m and ln.startswith("reference classifier"):
            return Progress("reference", int(m.group(1)), int(m.group(2)), last)
    return Progress("starting", None, None, last)


def run_progress(run_dir: str | os.PathLike) -> Progress | None:
    """A run folder's progress from its files: the last record of ``metrics.jsonl`` against the
    config's length (steps, or epochs where the run counts epochs; ``line`` names the unit);
    None without a record."""
    run = Path(run_dir)
    try:
        cfg = json.loads((run / "config.json").read_text())
        train = cfg["train"]
        steps, epochs = int(train.get("steps") or 0), int(train.get("epochs") or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    rec = None
    for ln in reversed(_tail(run / "metrics.jsonl").splitlines()):
        try:
            rec = json.loads(ln)
            if isinstance(rec, dict) and isinstance(rec.get("step"), int):
                break
        except ValueError:
            pass
        rec = None
    if rec is None:
        return None
    if steps:
        return Progress("training", int(rec["step"]), steps, "steps")
    ep = rec.get("epoch")
    if epochs and isinstance(ep, (int, float)):
        return Progress("training", int(ep), epochs, "epochs")
    return Progress("training", int(rec["step"]), None, "steps")


@dataclass
class _Job:
    spec: JobSpec
    spec_path: Path
    log: Path
    state: str = "queued"
    proc: subprocess.Popen | None = None
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    cancel_sent: float | None = None
    last_sigint: float | None = None
    terminated: bool = False
    message: str = ""


def _file_name(key: str, label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")[:40] or "job"
    return f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


class JobQueue:
    """At most ``max_parallel`` jobs at once, each a ``python -m gamo.jobs`` process.

    Parameters
    ----------
    log_dir : path
        Where each job's spec (JSON) and log are written.
    max_parallel : int
        Jobs running at once.
    room : callable, optional
        ``room(running)`` -> whether one more job may start now that ``running`` of this queue
        run (the app's cap on training processes); default: always.
    python : str
        The interpreter the jobs run with.
    env : dict, optional
        Environment variables added to the jobs' (e.g. ``OMP_NUM_THREADS``).
    poll_s : float
        Seconds between two looks of the scheduler thread.
    """

    def __init__(self, log_dir: str | os.PathLike, *, max_parallel: int = 2,
                 room: Callable[[int], bool] | None = None, python: str = sys.executable,
                 env: dict[str, str] | None = None, poll_s: float = 0.5, max_jobs: int = 500) -> None:
        self.log_dir = Path(log_dir)
        self.max_parallel = max(1, int(max_parallel))
        self.room = room
        self.python = python
        self.env = dict(env or {})
        self.poll_s = poll_s
        self.max_jobs = max_jobs
        self._jobs: dict[str, _Job] = {}        # insertion order = submission order
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None

    # -- submitting and cancelling ------------------------------------------------------------
    def submit(self, spec: JobSpec) -> bool:
        """Queue ``spec``; False (nothing changes) when its key already has a queued or running
        job. An ended job of the same key is replaced."""
        with self._lock:
            old = self._jobs.get(spec.key)
            if old is not None and old.state in ACTIVE:
                return False
            if old is None and sum(j.state in ACTIVE for j in self._jobs.values()) >= self.max_jobs:
                raise RuntimeError(f"the queue holds {self.max_jobs} jobs already: wait for some to end")
            self.log_dir.mkdir(parents=True, exist_ok=True)
            name = _file_name(spec.key, spec.label or spec.kind)
            job = _Job(spec, self.log_dir / f"{name}.json", self.log_dir / f"{name}.log")
            job.spec_path.write_text(spec.to_json())
            self._jobs.pop(spec.key, None)
            self._jobs[spec.key] = job
            self._forget_old()
        self._ensure_thread()
        return True

    def cancel(self, key: str) -> bool:
        """Drop a queued job, or interrupt a running one (it saves a checkpoint and stops).
        False when the key has no active job."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.state not in ACTIVE:
                return False
            if job.state == "queued":
                job.state, job.message, job.ended = "cancelled", "cancelled before it started", time.monotonic()
                return True
            if job.state == "running":
                job.state = "cancelling"
                self._interrupt(job)
            return True

    def cancel_all(self, keys: Iterable[str] | None = None) -> int:
        """Cancel every active job (or those of ``keys``); how many were."""
        with self._lock:
            todo = list(self._jobs) if keys is None else [k for k in keys if k in self._jobs]
        return sum(self.cancel(k) for k in todo)

    def shutdown(self, wait: float = 30.0) -> None:
        """Cancel everything and wait up to ``wait`` seconds for the processes to end."""
        self.cancel_all()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self.poll()
            if not self.running():
                return
            time.sleep(0.1)

    # -- reading ------------------------------------------------------------------------------
    def status(self, keys: Iterable[str] | None = None) -> list[JobStatus]:
        """Every job (or those of ``keys``), in submission order."""
        with self._lock:
            jobs = list(self._jobs.values()) if keys is None else [self._jobs[k] for k in keys if k in self._jobs]
            return [self._status(j) for j in jobs]

    def get(self, key: str) -> JobStatus | None:
        with self._lock:
            j = self._jobs.get(key)
            return None if j is None else self._status(j)

    def running(self) -> int:
        with self._lock:
            return sum(j.state in ("running", "cancelling") for j in self._jobs.values())

    def queued(self) -> int:
        with self._lock:
            return sum(j.state == "queued" for j in self._jobs.values())

    def _status(self, j: _Job) -> JobStatus:
        now = time.monotonic()
        if j.state == "queued":
            prog = Progress("queued")
        else:
            prog = read_progress(j.log) or Progress("starting")
            if j.spec.kind == "train" and prog.phase == "starting" and j.spec.run_dir:
                prog = run_progress(j.spec.run_dir) or prog
        elapsed = 0.0 if j.started is None else (j.ended or now) - j.started
        return JobStatus(j.spec.key, j.spec.kind, j.spec.label, j.state, prog, j.message, elapsed,
                         j.spec.run_dir, str(j.log))

    # -- the scheduler --------------------------------------------------------------------------
    def poll(self) -> None:
        """Reap ended processes, nudge cancelling ones, start queued jobs while there is room."""
        with self._lock:
            now = time.monotonic()
            for j in self._jobs.values():
                if j.proc is None or j.state not in ("running", "cancelling"):
                    continue
                rc = j.proc.poll()
                if rc is None:
                    if j.state == "cancelling":
                        if now - (j.cancel_sent or now) > KILL_S and not j.terminated:
                            j.proc.terminate()
                            j.terminated = True
                        elif now - (j.last_sigint or now) > RESEND_S:
                            self._interrupt(j, again=True)
                    continue
                j.ended = now
                if j.state == "cancelling" or rc in (130, -signal.SIGINT):
                    j.state, j.message = "cancelled", ("stopped: a checkpoint was saved, train it again to resume"
                                                       if j.spec.kind == "train" else "stopped")
                elif rc == 0:
                    j.state, j.message = "done", ""
                else:
                    j.state, j.message = "failed", self._why(j, rc)
            running = sum(j.state in ("running", "cancelling") for j in self._jobs.values())
            for j in self._jobs.values():
                if running >= self.max_parallel:
                    break
                if j.state != "queued":
                    continue
                if self.room is not None and not self.room(running):
                    break
                try:
                    self._start(j)
                except OSError as e:
                    j.state, j.message, j.ended = "failed", f"could not start: {e.strerror or e}", now
                    continue
                running += 1

    def _interrupt(self, j: _Job, again: bool = False) -> None:
        if j.proc is None:
            return
        try:
            j.proc.send_signal(signal.SIGINT)
        except (ProcessLookupError, OSError):
            pass
        if not again:
            j.cancel_sent = time.monotonic()
        j.last_sigint = time.monotonic()

    def _start(self, j: _Job) -> None:
        env = {**os.environ, **self.env}
        with open(j.log, "w") as log:
            j.proc = subprocess.Popen([self.python, "-m", "gamo.jobs", str(j.spec_path)], stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        j.state, j.started = "running", time.monotonic()

    @staticmethod
    def _why(j: _Job, rc: int) -> str:
        lines = [ln.strip() for ln in _tail(j.log).splitlines() if ln.strip()]
        errs = [ln for ln in lines if ln.startswith("error: ")]
        if errs:
            return errs[-1][len("error: "):]
        if lines:
            return f"exit code {rc}: {lines[-1][:300]}"
        return f"exit code {rc} (no output)"

    def _forget_old(self) -> None:
        ended = [k for k, j in self._jobs.items() if j.state in ENDED]
        for k in ended[: max(0, len(ended) - self.max_jobs)]:
            del self._jobs[k]

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="gamo-jobs", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self.poll()
            with self._lock:
                if not any(j.state in ACTIVE for j in self._jobs.values()):
                    self._thread = None
                    return
            time.sleep(self.poll_s)


# --------------------------------------------------------------------------------------------
# the job's process
# --------------------------------------------------------------------------------------------
def _say(msg: str) -> None:
    print(msg, flush=True)


def _train(spec: JobSpec) -> bool:
    """Train (or resume) the cell; False when it was interrupted (a checkpoint was saved)."""
    from gamo.cli import execute_run
    from gamo.config import RunConfig
    from gamo.runs import CONFIG, load_checkpoint, load_config, run_info

    cfg = RunConfig.from_dict(spec.config)
    out = Path(spec.run_dir)
    _say(f"{PHASE}starting")
    if (out / CONFIG).is_file():
        info = run_info(out)
        if info.state == "finished":
            _say(f"{out} is finished already")
            return True
        stored = load_config(out)
        t = cfg.train
        cfg = stored.replace(train={"steps": t.steps, "epochs": t.epochs, "threads": t.threads, "device": t.device})
        state = load_checkpoint(out, missing_ok=True)
        _say(f"resume {out} from {'its checkpoint' if state is not None else 'step 0 (no checkpoint yet)'}")
        final = execute_run(cfg, out, state=state, resume=True, log=_say)
    else:
        _say(f"run {out}")
        final = execute_run(cfg, out, log=_say)
    return final is not None


def _figure(spec: JobSpec) -> None:
    from gamo.errors import DataError
    from gamo.figure4 import write_run_files
    from gamo.reference import get_reference
    from gamo.runs import load_config

    cfg = load_config(spec.run_dir)
    toy = cfg.data.dataset.strip().lower().startswith("toy:")
    _say(f"{PHASE}figure files")
    try:   # a toy's reference classifier takes seconds: train it; an image set's is a job of its own
        ref = get_reference(cfg.data, train=toy, progress=lambda msg, _f: _say(msg))
    except DataError as e:
        ref = None
        _say(f"no reference classifier ({e}): fidelity and Fréchet distance are left out")
    if ref is None:
        _say("no reference classifier stored for this dataset: fidelity and Fréchet distance are left out")
    write_run_files(spec.run_dir, reference=ref, n_claims=spec.n_claims)
    _say(f"figure files written to {spec.run_dir}")


def _reference(spec: JobSpec) -> None:
    from gamo.config import DataConfig
    from gamo.reference import train_reference

    data = DataConfig(**spec.data)
    _say(f"{PHASE}reference")
    ref = train_reference(data, progress=lambda msg, _f: _say(msg))
    _say(f"reference classifier {ref.key}: test accuracy {ref.info.get('test_accuracy', float('nan')):.3f}")


def main(argv: list[str] | None = None) -> int:
    """``python -m gamo.jobs SPEC.json``: run one job; exit 0 when done, 130 when interrupted,
    2 with an ``error: ...`` line for what the user can fix."""
    from gamo.errors import GamoError

    # a process started from a shell's background job inherits SIGINT ignored: cancel must work
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gamo.jobs SPEC.json", file=sys.stderr)
        return 2
    try:
        spec = JobSpec.from_json(Path(args[0]).read_text())
    except (OSError, ValueError, TypeError) as e:
        print(f"error: the job file {args[0]} cannot be read ({e})", flush=True)
        return 2
    try:
        if spec.kind == "reference":
            _reference(spec)
        else:
            if spec.kind == "train" and not _train(spec):
                _say("cancelled: a checkpoint was saved")
                return 130
            _figure(spec)
    except KeyboardInterrupt:
        _say("cancelled")
        return 130
    except GamoError as e:
        _say(f"error: {e}")
        return 2
    _say(f"{PHASE}done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
