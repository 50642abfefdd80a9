"""RunHandle (a run in a thread), ProcessRunHandle (a run in a child process) and Control: the
app's live runs. Both handles pass the same tests. Every wait has a timeout, so that a bug makes a
test fail instead of hanging the suite."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from gamo.data.types import Dataset
from gamo.train import Control, RunHandle, Trainer
from gamo.worker import ProcessRunHandle
from conftest import wait_until  # noqa: E402  (tests/ is on sys.path under pytest)

TIMEOUT = 20.0




@pytest.fixture(params=["thread", "process"])
def handles(request):
    """Start handles through this (a RunHandle, then a ProcessRunHandle); every one is stopped
    (its thread joined, its process ended) afterwards."""
    kind = RunHandle if request.param == "thread" else ProcessRunHandle
    made: list = []

    def start(*args, **kw):
        h = kind(*args, **kw)
        made.append(h)
        return h.start()

    yield start
    for h in made:
        h.stop(wait=TIMEOUT)
        assert not h.alive, "worker did not end after stop()"
        if isinstance(h, ProcessRunHandle):
            assert not h.process_alive, "run process did not end after stop()"


# read through query(): module-level, so that they reach a child process
def _players(trainer: Trainer) -> dict[str, dict[str, torch.Tensor]]:
    m = trainer.method
    return {name: _params(getattr(m, name)) for name in ("M", "D", "G")}


def _lrs(trainer: Trainer) -> dict[str, dict[str, float]]:
    m = trainer.method
    return {"G": {g["player"]: g["lr"] for g in m.opt_g.param_groups},
            "MD": {g["player"]: g["lr"] for g in m.opt_m.param_groups}}


def _steps_per_epoch(trainer: Trainer) -> int:
    return trainer.method.steps_per_epoch


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def _paused(handles, tiny_cfg, **kw) -> RunHandle:
    h = handles(tiny_cfg("gamo", steps=1000, **kw), paused=True)
    wait_until(lambda: h.status.state == "paused" and len(h.history()) == 1, what="first snapshot")
    return h


def test_starts_paused_and_single_steps(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    assert h.latest.step == 0 and h.status.step == 0 and h.status.total == 1000
    time.sleep(0.3)
    assert h.step_count() == 0 and len(h.history()) == 1            # paused: nothing advances

    for expected in (1, 2):
        h.step()
        wait_until(lambda: len(h.history()) == expected + 1, what=f"snapshot of step {expected}")
        assert h.latest.step == expected and h.status.step == expected
        time.sleep(0.2)
        assert h.step_count() == expected                           # exactly one iteration
        assert h.status.state == "paused"
    assert set(h.latest.losses) == {"M", "D", "G"}

    h.step(3)
    wait_until(lambda: h.latest.step == 5, what="three more steps")
    assert [s.step for s in h.history()] == [0, 1, 2, 3, 4, 5]     # a snapshot per single step


def test_step_only_g_moves_generated_points_not_m(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    h.step()                                                         # one full iteration first
    wait_until(lambda: h.latest.step == 1, what="step 1")
    before = h.latest.generated.x.copy()
    p0 = h.query(_players)

    h.step(players={"G"})
    wait_until(lambda: h.latest.step == 2, what="G-only step")
    p1 = h.query(_players)
    assert _same(p0["M"], p1["M"]), "M changed on a G-only step"
    assert _same(p0["D"], p1["D"]), "D changed on a G-only step"
    assert not _same(p0["G"], p1["G"])
    assert not np.allclose(before, h.latest.generated.x)
    assert set(h.latest.losses) >= {"G"}

    h.step(players={"M"})
    wait_until(lambda: h.latest.step == 3, what="M-only step")
    p2 = h.query(_players)
    assert not _same(p1["M"], p2["M"]) and _same(p1["G"], p2["G"])


def test_set_lr_changes_the_optimizer(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    assert h.query(_lrs) == {"G": {"G": 2e-4}, "MD": {"M": 2e-4, "D": 2e-4}}
    h.set_lr("G", 1e-3)
    h.set_lr("D", 5e-4)
    h.step()
    wait_until(lambda: h.latest.step == 1, what="step 1")
    assert h.query(_lrs) == {"G": {"G": 1e-3}, "MD": {"M": 2e-4, "D": 5e-4}}


def test_resume_pause_stop(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg, snapshot_every=5)
    h.resume()
    assert h.status.state == "running"
    wait_until(lambda: h.latest.step >= 20, what="running steps")
    h.pause()
    assert h.status.state == "paused"
    s = h.step_count()                                               # between iterations
    time.sleep(0.4)
    assert h.step_count() == s, "kept training while paused"
    assert s < 1000
    h.resume()
    wait_until(lambda: h.step_count() > s + 5, what="running again")
    h.stop(wait=TIMEOUT)
    assert not h.alive and h.wait(0)
    st = h.status
    assert st.state == "stopped" and st.error is None
    assert h.latest.step == st.step < 1000                           # a last snapshot at the stop
    if isinstance(h, RunHandle):
        assert h.trainer.step_count == h.latest.step


def test_stop_while_paused_ends_the_thread(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    h.stop(wait=TIMEOUT)
    assert not h.alive and h.status.state == "stopped" and h.latest.step == 0


def test_max_steps_caps_the_run(handles, tiny_cfg):
    h = handles(tiny_cfg("gamo", steps=10_000, snapshot_every=5), max_steps=15)
    assert h.wait(TIMEOUT), "run did not finish"
    st = h.status
    assert st.state == "finished" and st.total == 15 and st.step == 15
    assert h.step_count() == 15 and h.latest.step == 15             # a finished run still answers
    spe = h.query(_steps_per_epoch)                                  # 9 here (132 points, batch 16)
    expected = sorted({0, 5, 10, 15} | {k for k in range(1, 16) if k % spe == 0})
    assert [s.step for s in h.history()] == expected


def test_max_steps_caps_a_run_given_in_epochs(handles, tiny_cfg):
    h = handles(tiny_cfg("gamo", steps=0, epochs=1000), max_steps=15, paused=True)
    wait_until(lambda: h.status.state == "paused", what="start")
    assert h.status.total == 15


def test_history_is_bounded(handles, tiny_cfg):
    h = handles(tiny_cfg("gamo", steps=12, snapshot_every=1), history=5)
    assert h.wait(TIMEOUT)
    assert [s.step for s in h.history()] == [8, 9, 10, 11, 12]


def test_missing_table_ends_in_error_state(handles, tiny_cfg, tmp_path):
    missing = tmp_path / "nope.csv"
    h = handles(tiny_cfg("gamo", data=dict(dataset=f"table:{missing}")))
    assert h.wait(TIMEOUT)
    st = h.status
    assert st.state == "error"
    assert st.error and "nope.csv" in st.error
    assert h.history() == [] and h.latest is None
    h.pause(), h.resume(), h.step()                                  # commands after an error are harmless
    assert h.status.state == "error"


def test_failure_inside_training_ends_in_error_state(handles, tiny_cfg):
    # labels 0..2 but only two class names: the method fails on its first evaluation or step
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [30, 10, 5]).astype(np.int64)
    yt = np.repeat([0, 1], 5).astype(np.int64)
    bad = Dataset(name="bad", kind="table", x_train=rng.normal(size=(45, 2)).astype(np.float32), y_train=y,
                  x_test=rng.normal(size=(10, 2)).astype(np.float32), y_test=yt, class_names=("a", "b"),
                  train_idx=np.arange(45), test_idx=np.arange(10))
    h = handles(tiny_cfg("gamo", steps=20), bad)
    assert h.wait(TIMEOUT)
    st = h.status
    assert st.state == "error" and st.error and st.error.splitlines()[0]
    assert h.traceback and "Traceback" in h.traceback


def test_control_resume_drops_pending_single_steps():
    c = Control(paused=True)
    c.step(3, players={"G"})
    c.resume()
    assert c.next() == (True, None)
    c.stop()


def test_control_pause_after_resume_really_pauses():
    c = Control(paused=True)
    c.step(3, players={"G"})
    c.resume()
    c.next()
    c.pause()
    got = []
    t = threading.Thread(target=lambda: got.append(c.next()), daemon=True)
    t.start()
    t.join(1.2)
    c.stop()
    t.join(TIMEOUT)
    assert got in ([], [(False, None)]), f"paused loop advanced: {got}"


def _modules(trainer: Trainer) -> set[str]:
    import sys

    return {m.split(".")[0] for m in sys.modules}


def test_process_run_is_in_another_process_without_streamlit(tiny_cfg):
    import os

    import streamlit  # noqa: F401 - loaded here, as in the app's server

    h = ProcessRunHandle(tiny_cfg("gamo", steps=1000), paused=True).start()
    try:
        wait_until(lambda: h.latest is not None, what="first snapshot")
        assert h.query(_pid) != os.getpid()
        mods = h.query(_modules)
        assert "torch" in mods and "streamlit" not in mods
    finally:
        h.stop(wait=TIMEOUT)


def _pid(trainer: Trainer) -> int:
    import os

    return os.getpid()


def test_process_run_whose_process_dies_ends_in_error(tiny_cfg):
    h = ProcessRunHandle(tiny_cfg("gamo", steps=100_000, snapshot_every=50)).start()
    try:
        wait_until(lambda: h.latest is not None and h.latest.step > 0, what="training")
        h._proc.kill()
        wait_until(lambda: h.status.state == "error", what="error state")
        assert "ended unexpectedly" in h.status.error and not h.alive
        with pytest.raises(RuntimeError, match="ended"):
            h.query(_steps_per_epoch)
        h.pause(), h.resume(), h.step()                              # harmless once it is gone
        assert h.status.state == "error" and h.latest is not None    # what was shown is kept
    finally:
        h.stop(wait=TIMEOUT)


def test_query_exception_reaches_the_caller(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    with pytest.raises(KeyError):
        h.query(_raises)
    assert h.status.state == "paused" and h.step_count() == 0       # the run goes on


def _raises(trainer: Trainer):
    raise KeyError("nope")


# pacing: where a run stops is what it shows; run_until / pause_at; extending a finished run
def test_pause_shows_the_step_where_the_run_stopped(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg, snapshot_every=50)
    h.resume()
    wait_until(lambda: h.step_count() > 7, what="running")
    h.pause()
    s = h.step_count()
    wait_until(lambda: h.latest.step == s, what="a snapshot where it stopped")
    h.step()
    wait_until(lambda: h.latest.step == s + 1, what="one step")
    time.sleep(0.2)
    assert h.step_count() == s + 1 and h.latest.step == s + 1       # Step is one iteration


def test_run_until_waits_running_and_pause_at_drains(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg, snapshot_every=50)
    h.run_until(7)
    wait_until(lambda: h.latest.step == 7, what="the target")
    time.sleep(0.3)
    assert h.step_count() == 7 and h.status.state == "running"      # waits there, running
    h.run_until(12)
    wait_until(lambda: h.latest.step == 12, what="the next target")
    h.pause_at(15)
    assert h.status.state == "paused"                                # paused at once on screen ...
    wait_until(lambda: h.latest.step == 15, what="drained to 15")   # ... after the last steps
    time.sleep(0.3)
    assert h.step_count() == 15
    h.pause_at(15)                                                   # there already: nothing to do
    h.step(players={"G"})
    wait_until(lambda: h.latest.step == 16, what="a G step after the drain")


def test_extendable_run_finishes_then_takes_more_steps(handles, tiny_cfg):
    h = handles(tiny_cfg("gamo", steps=10_000, snapshot_every=5), max_steps=15, extendable=True)
    assert h.wait(TIMEOUT), "run did not reach its cap"
    st = h.status
    assert st.state == "finished" and st.step == 15 and st.total == 15 and not h.alive
    assert h.step_count() == 15                                      # it still answers
    h.extend(10)
    wait_until(lambda: h.status.state == "paused" and h.status.total == 25, what="extended")
    assert h.alive
    h.resume()
    wait_until(lambda: h.status.state == "finished" and h.status.step == 25, what="the new cap")
    assert h.latest.step == 25
