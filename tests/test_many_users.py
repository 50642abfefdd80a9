"""The app under many users (issue 15): a cap on live runs per server with a clear message, closed
tabs' runs ended soon, finished runs not left behind, and bounded snapshot memory per run. Each
test fails without the limit it checks. Every wait has a timeout."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app.ui import live_runs as lr
from conftest import wait_until  # noqa: E402  (tests/ is on sys.path under pytest)
from gamo.history import DEFAULT_MAX_BYTES, SnapshotHistory, snapshot_nbytes
from gamo.snapshot import Generated, Metrics, Snapshot
from gamo.train import RunHandle

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 20.0




@pytest.fixture
def lab(monkeypatch, tiny_cfg):
    """Runs in threads (fast to start); a cap of ``cap`` more runs than the server has now.
    ``lab.new()`` makes a handle through the pages' path; all are stopped afterwards."""
    monkeypatch.setenv("GAMO_RUNS_IN", "thread")
    made: list = []

    def new(steps: int = 100_000, **kw):
        from gamo.data import load_dataset

        cfg = tiny_cfg("gamo", steps=steps)
        h = lr.new_handle(cfg, load_dataset(cfg.data), max_steps=kw.pop("max_steps", steps), **kw)
        made.append(h)
        return h

    def cap(extra: int) -> int:
        n = lr.live_run_count() + extra
        monkeypatch.setenv("GAMO_MAX_LIVE_RUNS", str(n))
        return n

    yield SimpleNamespace(new=new, cap=cap)
    for h in made:
        h.stop(wait=TIMEOUT)


def run(h) -> SimpleNamespace:
    """A page's run object around a handle (what the watchdog reads)."""
    return SimpleNamespace(handle=h, last_poll=time.monotonic(), events=[])


# --------------------------------------------------------------------------------------
# the cap on live runs
# --------------------------------------------------------------------------------------
def test_the_server_refuses_runs_beyond_its_cap_with_a_clear_message(lab):
    cap = lab.cap(2)
    a, b = lab.new().start(), lab.new()          # made but not started: its place is taken
    with pytest.raises(lr.LabFull) as e:
        lab.new()
    msg = str(e.value)
    assert msg.startswith(f"The lab is full: {cap} runs are training on this server")
    assert "try again in a minute" in msg.lower() and "stop a run" in msg
    with pytest.raises(lr.LabFull):
        lr.check_room(1)
    a.stop(wait=TIMEOUT)                         # a stopped run frees its place
    assert lr.live_run_count() == cap - 1
    lr.check_room(1)
    with pytest.raises(lr.LabFull):              # a page's two runs: both or none
        lr.check_room(2)
    lab.new().start()
    b.start().stop(wait=TIMEOUT)


def test_the_cap_has_a_classroom_default_and_a_setting(monkeypatch):
    monkeypatch.delenv("GAMO_MAX_LIVE_RUNS", raising=False)
    assert lr.max_live_runs() == lr.MAX_LIVE_RUNS == 40
    monkeypatch.setenv("GAMO_MAX_LIVE_RUNS", "7")
    assert lr.max_live_runs() == 7
    monkeypatch.setenv("GAMO_MAX_LIVE_RUNS", "lots")
    assert lr.max_live_runs() == 40


def test_a_full_lab_is_said_on_the_page_and_nothing_is_started(lab, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("GAMO_RUNS_DIR", str(tmp_path / "runs"))
    lab.cap(1)
    lab.new()                                    # the one place left is taken
    before = lr.live_run_count()
    at = AppTest.from_file(str(ROOT / "app" / "pages" / "1_Toy_Lab.py"), default_timeout=60)
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "The lab is full" in warnings and "Try again in a minute" in warnings
    assert any(b.label == "Try again" for b in at.button)
    assert not at.session_state["tl_runs"]
    assert lr.live_run_count() == before


# --------------------------------------------------------------------------------------
# abandoned runs
# --------------------------------------------------------------------------------------
def test_abandoned_runs_end_sooner_than_before():
    assert lr.CLOSED_STOP_S <= 60.0          # a closed tab's runs (were: paused after 2 min,
    assert lr.IDLE_STOP_S <= 900.0           # ended after 30); an open tab left idle: 15 min


def test_a_closed_tab_runs_end_once_the_session_is_gone(lab):
    r = run(lab.new().start())
    wait_until(lambda: r.handle.status.state == "paused", what="start")
    connected = [True]
    lr.start_watchdog([r], connected=lambda: connected[0], closed_s=0.3, every=0.05)
    time.sleep(0.5)
    assert lr.holds_worker(r.handle)           # connected, polled: kept
    connected[0] = False                       # the tab is closed
    wait_until(lambda: not lr.holds_worker(r.handle), timeout=5.0, what="the run to end")
    assert any("tab closed" in str(e.get("set")) for e in r.events)


def test_an_idle_open_tab_runs_end_after_stop_s(lab):
    r = run(lab.new().start())
    wait_until(lambda: r.handle.status.state == "paused", what="start")
    r.last_poll -= 10.0
    lr.start_watchdog([r], idle_s=1.0, stop_s=5.0, connected=None, every=0.05)
    wait_until(lambda: not lr.holds_worker(r.handle), timeout=5.0, what="the run to end")


def test_a_finished_run_waiting_at_its_cap_is_ended_too(lab):
    # an extendable run at its step cap is "finished" (not alive) but its worker waits to be
    # given more steps: the watchdog used to stop watching and leave it for good
    r = run(lab.new(steps=3, extendable=True, paused=False).start())
    wait_until(lambda: r.handle.status.state == "finished", what="the cap")
    assert not r.handle.alive and lr.holds_worker(r.handle)
    r.last_poll -= 10.0
    lr.start_watchdog([r], idle_s=1.0, stop_s=2.0, connected=None, every=0.05)
    wait_until(lambda: not lr.holds_worker(r.handle), timeout=5.0, what="the run to end")


def test_no_session_probe_outside_a_streamlit_server():
    assert lr.session_probe() is None


# --------------------------------------------------------------------------------------
# snapshot memory per run
# --------------------------------------------------------------------------------------
def _snap(step: int, kib: int = 300) -> Snapshot:
    k = kib * 1024 // 4
    m = Metrics(acsa=0.5, gm=0.5, accuracy=0.5, recall=(0.5, 0.5), confusion=np.zeros((2, 2), np.int64))
    gen = Generated(x=np.zeros((k,), np.float32), y=np.zeros(1, np.int64), parent_idx=None, parent_w=None,
                    m_pred=np.zeros(1, np.int64))
    return Snapshot(step=step, epoch=0.0, losses={"M": 0.1}, test=m, train=None, generated=gen, grid=None,
                    elapsed=0.0)


def test_a_handle_keeps_bounded_snapshot_memory(tiny_cfg):
    # a Fashion-MNIST conv snapshot is ~300 KiB: 1,000 of them were ~300 MiB in the server
    h = RunHandle(tiny_cfg("gamo", steps=10), history=1000)
    for step in range(0, 10_000, 10):
        h._snaps.append(_snap(step))
    snaps = h.history()
    held = sum(snapshot_nbytes(s) for s in snaps)
    assert held <= DEFAULT_MAX_BYTES == 16 * 2**20
    steps = [s.step for s in snaps]
    assert steps[0] == 0 and steps[-1] == 9990 and steps == sorted(steps)   # still the whole run
    dense = len(snaps) - next(i for i in range(len(steps) - 1, 0, -1) if steps[i] - steps[i - 1] != 10)
    assert dense >= 20                                                       # the newest dense


def test_history_count_thinning_keeps_the_whole_run_and_common_steps():
    a = SnapshotHistory(200, max_bytes=10**12, recent=50)
    b = SnapshotHistory(200, max_bytes=60 * 3 * 1024, recent=50)           # bytes bind first
    for step in range(0, 20_000, 5):
        a.append(_snap(step, kib=1))
        b.append(_snap(step, kib=1))
    sa, sb = [s.step for s in a], [s.step for s in b]
    assert len(sa) <= 200 and b.nbytes <= 60 * 3 * 1024
    assert sa[0] == sb[0] == 0 and sa[-1] == sb[-1] == 19_995
    assert sa[-50:] == list(range(19_995 - 49 * 5, 20_000, 5))             # the newest dense
    assert set(sb) <= set(sa) or set(sa) <= set(sb)                         # lockstep runs share steps
    # as many as were asked: a few snapshots are kept as they come (the deque's behaviour)
    c = SnapshotHistory(5)
    for step in range(13):
        c.append(_snap(step, kib=1))
    assert [s.step for s in c] == [8, 9, 10, 11, 12]


# --------------------------------------------------------------------------------------
# the closed-tab probe against a real server and browser
# --------------------------------------------------------------------------------------
PROBE_PAGE = '''
import sys, threading, time
sys.path.insert(0, {root!r})
import streamlit as st
from app.ui.live_runs import session_probe

if "probe" not in st.session_state:
    probe = st.session_state.probe = session_probe()

    def record():
        while True:
            with open({out!r}, "a") as f:
                f.write(("none" if probe is None else str(probe())) + "\\n")
            time.sleep(0.1)
    threading.Thread(target=record, daemon=True).start()
st.write("probe ready")
'''


@pytest.mark.browser
def test_the_session_probe_sees_a_tab_close_on_a_real_server(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip(f"{chromium} is missing")
    out = tmp_path / "probe.txt"
    page_file = tmp_path / "probe_page.py"
    page_file.write_text(PROBE_PAGE.format(root=str(ROOT), out=str(out)))
    from bench.serve import serve

    def lines() -> list[str]:
        return out.read_text().split() if out.exists() else []
    with serve(open(tmp_path / "streamlit.log", "w"), script=page_file, timeout=30) as (_, port):
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.goto(f"http://localhost:{port}/", wait_until="domcontentloaded")
                page.get_by_text("probe ready").wait_for(timeout=30_000)
                wait_until(lambda: len(lines()) >= 5, timeout=10, what="probe readings")
                assert lines()[-1] == "True", lines()[-5:]       # an open tab is connected
                page.close()                                      # the student closes the tab
                wait_until(lambda: lines()[-1] == "False", timeout=15, what="the probe to see the close")
            finally:
                browser.close()
