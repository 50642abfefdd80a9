"""RunHandle and Control: the app's threaded runs. Every wait has a timeout, so that a bug makes a
test fail instead of hanging the suite."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from gamo.data.types import Dataset
from gamo.train import Control, RunHandle

TIMEOUT = 20.0


def wait_until(pred, timeout: float = TIMEOUT, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def handles():
    """Start handles through this; every one is stopped (and its thread joined) afterwards."""
    made: list[RunHandle] = []

    def start(*args, **kw) -> RunHandle:
        h = RunHandle(*args, **kw)
        made.append(h)
        return h.start()

    yield start
    for h in made:
        h.stop(wait=TIMEOUT)
        assert not h.alive, "worker thread did not end after stop()"


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
    assert h.trainer.step_count == 0 and len(h.history()) == 1      # paused: nothing advances

    for expected in (1, 2):
        h.step()
        wait_until(lambda: len(h.history()) == expected + 1, what=f"snapshot of step {expected}")
        assert h.latest.step == expected and h.status.step == expected
        time.sleep(0.2)
        assert h.trainer.step_count == expected                     # exactly one iteration
        assert h.status.state == "paused"
    assert set(h.latest.losses) == {"M", "D", "G"}

    h.step(3)
    wait_until(lambda: h.latest.step == 5, what="three more steps")
    assert [s.step for s in h.history()] == [0, 1, 2, 3, 4, 5]     # a snapshot per single step


def test_step_only_g_moves_generated_points_not_m(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    m = h.trainer.method
    h.step()                                                         # one full iteration first
    wait_until(lambda: h.latest.step == 1, what="step 1")
    before = h.latest.generated.x.copy()
    M0, D0, G0 = _params(m.M), _params(m.D), _params(m.G)

    h.step(players={"G"})
    wait_until(lambda: h.latest.step == 2, what="G-only step")
    assert _same(M0, _params(m.M)), "M changed on a G-only step"
    assert _same(D0, _params(m.D)), "D changed on a G-only step"
    assert not _same(G0, _params(m.G))
    assert not np.allclose(before, h.latest.generated.x)
    assert set(h.latest.losses) >= {"G"}

    M1, G1 = _params(m.M), _params(m.G)
    h.step(players={"M"})
    wait_until(lambda: h.latest.step == 3, what="M-only step")
    assert not _same(M1, _params(m.M)) and _same(G1, _params(m.G))


def test_set_lr_changes_the_optimizer(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    m = h.trainer.method

    def lrs(opt):
        return {g["player"]: g["lr"] for g in opt.param_groups}

    assert lrs(m.opt_g) == {"G": 2e-4} and lrs(m.opt_m) == {"M": 2e-4, "D": 2e-4}
    h.set_lr("G", 1e-3)
    h.set_lr("D", 5e-4)
    h.step()
    wait_until(lambda: h.latest.step == 1, what="step 1")
    assert lrs(m.opt_g) == {"G": 1e-3}
    assert lrs(m.opt_m) == {"M": 2e-4, "D": 5e-4}


def test_resume_pause_stop(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg, snapshot_every=5)
    h.resume()
    assert h.status.state == "running"
    wait_until(lambda: h.latest.step >= 20, what="running steps")
    h.pause()
    assert h.status.state == "paused"
    time.sleep(0.2)                                                  # let the iteration in flight end
    s = h.trainer.step_count
    time.sleep(0.4)
    assert h.trainer.step_count == s, "kept training while paused"
    assert s < 1000
    h.resume()
    wait_until(lambda: h.trainer.step_count > s + 5, what="running again")
    h.stop(wait=TIMEOUT)
    assert not h.alive and h.wait(0)
    st = h.status
    assert st.state == "stopped" and st.error is None
    assert h.latest.step == h.trainer.step_count < 1000              # a last snapshot at the stop


def test_stop_while_paused_ends_the_thread(handles, tiny_cfg):
    h = _paused(handles, tiny_cfg)
    h.stop(wait=TIMEOUT)
    assert not h.alive and h.status.state == "stopped" and h.latest.step == 0


def test_max_steps_caps_the_run(handles, tiny_cfg):
    h = handles(tiny_cfg("gamo", steps=10_000, snapshot_every=5), max_steps=15)
    assert h.wait(TIMEOUT), "run did not finish"
    st = h.status
    assert st.state == "finished" and st.total == 15 and st.step == 15
    assert h.trainer.step_count == 15 and h.latest.step == 15
    spe = h.trainer.method.steps_per_epoch                           # 9 here (132 points, batch 16)
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
    assert st.state == "error" and st.error
    assert h.error_exc is not None and st.error.splitlines()[0]


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
