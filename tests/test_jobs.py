"""Background jobs (gamo/jobs.py): a training cell in its own process with its figure files,
the cap on jobs at once, cancelling (the run saves a checkpoint), failures as one line, and the
progress read from a job's log and from a run folder."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gamo.jobs import JobQueue, JobSpec, read_progress, run_progress
from conftest import _tiny_cfg  # noqa: E402  (tests/ is on sys.path under pytest)


def _wait(q: JobQueue, key: str, states: tuple[str, ...], timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q.poll()
        s = q.get(key)
        if s is not None and s.state in states:
            return s
        time.sleep(0.2)
    raise AssertionError(f"{key}: still {q.get(key)} after {timeout} s")


def _train_spec(run: Path, steps: int, label: str = "moons", **data) -> JobSpec:
    cfg = _tiny_cfg("gamo", steps=steps, data=data or None, snapshot_every=10, threads=1)
    return JobSpec(key=str(run), kind="train", label=label, run_dir=str(run), config=cfg.to_dict(), n_claims=6)


@pytest.fixture()
def queue(tmp_path):
    q = JobQueue(tmp_path / "jobs", max_parallel=1, env={"GAMO_CACHE": str(tmp_path / "cache"),
                                                          "OMP_NUM_THREADS": "1"}, poll_s=0.1)
    yield q
    q.shutdown(wait=30)


def test_progress_is_read_from_the_log_and_from_the_run_folder(tmp_path):
    log = tmp_path / "a.log"
    assert read_progress(log) is None
    log.write_text("PHASE starting\nrun x\nstep 40/200 epoch 1.00 M=0.1 test ACSA 0.5 GM 0.4\n")
    p = read_progress(log)
    assert (p.phase, p.done, p.total, p.fraction) == ("training", 40, 200, 0.2)
    log.write_text(log.read_text() + "PHASE figure files\nreference classifier of toy: epoch 3/10, loss 0.2\n")
    assert read_progress(log).phase == "reference" and read_progress(log).fraction == 0.3
    log.write_text(log.read_text() + "PHASE done\n")
    assert read_progress(log).phase == "done"

    run = tmp_path / "run"
    run.mkdir()
    assert run_progress(run) is None
    (run / "config.json").write_text(json.dumps({"train": {"steps": 0, "epochs": 20}}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 10, "epoch": 4.0}) + "\n" + '{"step": 12, "ep')
    p = run_progress(run)
    assert (p.done, p.total) == (4, 20)        # the cut-off last line is skipped


def test_a_spec_says_what_it_lacks():
    with pytest.raises(ValueError, match="run_dir"):
        JobSpec(key="k", kind="train", config={})
    with pytest.raises(ValueError, match="kind"):
        JobSpec(key="k", kind="nope")
    s = JobSpec(key="r", kind="reference", data={"dataset": "toy:moons"})
    assert JobSpec.from_json(s.to_json()) == s


def test_a_cell_trains_in_its_process_and_leaves_its_figure_files(queue, tmp_path):
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    assert queue.submit(_train_spec(a, 30, "first"))
    assert not queue.submit(_train_spec(a, 30, "first"))          # one active job per key
    assert queue.submit(_train_spec(b, 20, "second"))
    queue.poll()
    states = {s.label: s.state for s in queue.status()}
    assert states == {"first": "running", "second": "queued"}      # max_parallel = 1
    s = _wait(queue, str(a), ("done", "failed"))
    assert s.state == "done", (s.message, Path(s.log).read_text()[-2000:])
    assert json.loads((a / "status.json").read_text())["state"] == "finished"
    assert (a / "figure4.npz").is_file() and (a / "claims.json").is_file()
    claims = json.loads((a / "claims.json").read_text())
    assert claims["n_claims"] == 6 and claims["reference"]["key"].startswith("toy-moons")   # a toy's: trained
    assert s.progress.phase == "done"
    assert _wait(queue, str(b), ("done", "failed")).state == "done"


def test_cancel_saves_a_checkpoint_and_a_failure_is_one_line(queue, tmp_path):
    run = tmp_path / "runs" / "long"
    queue.submit(_train_spec(run, 200_000, "long"))
    bad = JobSpec(key="bad", kind="train", label="bad", run_dir=str(tmp_path / "runs" / "bad"),
                  config=_tiny_cfg("gamo", steps=5, data={"dataset": "toy:nope"}).to_dict())
    queue.submit(bad)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        queue.poll()
        s = queue.get(str(run))
        if s.progress.phase == "training" and (s.progress.done or 0) > 0:
            break
        time.sleep(0.2)
    assert s.progress.total == 200_000 and 0 < s.progress.fraction < 1
    assert queue.cancel(str(run))
    s = _wait(queue, str(run), ("cancelled", "failed", "done"), timeout=90)
    assert s.state == "cancelled" and "checkpoint" in s.message
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert (run / "checkpoint.pt").is_file()
    b = _wait(queue, "bad", ("failed", "done"))
    assert b.state == "failed" and "toy:nope" in b.message and "\n" not in b.message


def test_no_room_keeps_jobs_queued_and_a_queued_job_cancels_at_once(tmp_path):
    q = JobQueue(tmp_path / "jobs", max_parallel=4, room=lambda running: False)
    q.submit(_train_spec(tmp_path / "r", 10))
    q.poll()
    assert q.get(str(tmp_path / "r")).state == "queued"
    assert q.cancel(str(tmp_path / "r")) and q.get(str(tmp_path / "r")).state == "cancelled"
    assert not q.cancel(str(tmp_path / "r"))
    assert q.running() == 0 and q.queued() == 0
