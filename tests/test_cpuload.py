"""Torch threads give way while other work keeps the cores busy (gamo/cpuload.py): a run with
several threads beside a busy competitor must not spin (issue 15, "Under load")."""
from __future__ import annotations

import pytest
import torch

from gamo.config import DataConfig, RunConfig, TrainConfig, cpu_cores
from gamo.cpuload import ThreadGovernor, busy_ticks
from gamo.train import Trainer

STAT = """cpu  100 0 50 1000 10 0 5 0 0 0
cpu0 60 0 30 500 5 0 3 0 0 0
cpu1 40 0 20 500 5 0 2 1 0 0
intr 12345
"""


def test_busy_ticks_reads_the_cpus_asked(tmp_path):
    p = tmp_path / "stat"
    p.write_text(STAT)
    assert busy_ticks([0], str(p)) == 60 + 30 + 3
    assert busy_ticks([0, 1], str(p)) == 93 + 40 + 20 + 2 + 1      # steal counts as busy
    assert busy_ticks([0, 7], str(p)) is None                       # a CPU it cannot see
    assert busy_ticks([0], str(tmp_path / "missing")) is None


class Fake:
    """A clock, this process's CPU seconds and the CPUs' busy seconds, moved by hand."""

    def __init__(self) -> None:
        self.t = self.own = self.busy = 0.0
        self.set_calls: list[int] = []

    def advance(self, dt: float, own_cores: float, other_cores: float) -> None:
        self.t += dt
        self.own += own_cores * dt
        self.busy += (own_cores + other_cores) * dt

    def governor(self, threads: int, cpus: int, **kw) -> ThreadGovernor:
        return ThreadGovernor(threads, cpus=list(range(cpus)), read_busy=lambda: self.busy,
                              own_cpu=lambda: self.own, clock=lambda: self.t,
                              set_threads=self.set_calls.append, **kw)


def test_governor_uses_the_cores_others_leave():
    f = Fake()
    g = f.governor(2, 2)
    assert g.threads == 2 and f.set_calls == []
    f.advance(1.0, own_cores=2.0, other_cores=0.1)   # a browser's worth of other work: keep 2
    assert g.poll() == 2 and f.set_calls == []
    f.advance(1.0, own_cores=1.3, other_cores=0.7)   # a one-thread run beside it: give way
    assert g.poll() == 1 and f.set_calls == [1]
    assert g.others == pytest.approx(0.7)
    f.advance(0.5, own_cores=1.0, other_cores=0.0)   # within the window: no new decision
    assert g.poll() == 1
    f.advance(0.75, own_cores=1.0, other_cores=0.0)  # the other run ended: threads come back
    assert g.poll() == 2 and f.set_calls == [1, 2]
    f.advance(1.0, own_cores=1.0, other_cores=5.0)   # never below one thread
    assert g.poll() == 1


def test_governor_never_exceeds_its_threads_and_keeps_them_without_readings():
    f = Fake()
    g = f.governor(3, 8)
    f.advance(1.0, own_cores=3.0, other_cores=0.0)
    assert g.poll() == 3                                  # 8 free cores, but 3 were asked
    f.advance(1.0, own_cores=3.0, other_cores=6.0)
    assert g.poll() == 2                                  # floor(8 - 6 + 0.3)
    none = ThreadGovernor(2, cpus=[0, 1], read_busy=lambda: None, set_threads=f.set_calls.append)
    none._mark = (none._mark[0] - 5.0, *none._mark[1:])
    assert none.poll() == 2                               # no /proc/stat: nothing changes


@pytest.mark.skipif(cpu_cores() < 2, reason="needs 2 cores")
def test_a_cpu_run_gives_way_while_the_cores_are_busy(monkeypatch):
    before = torch.get_num_threads()
    cfg = RunConfig(data=DataConfig(dataset="toy:moons", n_per_class=200),
                    train=TrainConfig(method="gamo", steps=50, device="cpu", threads=2))
    try:
        tr = Trainer(cfg, with_grid=False)
        g = tr.thread_governor
        assert g is not None and torch.get_num_threads() == 2
        f = Fake()                                        # the others keep both cores busy
        g._read_busy, g._own_cpu, g._clock = (lambda: f.busy), (lambda: f.own), (lambda: f.t)
        g._mark = g._sample()
        f.advance(1.0, own_cores=1.0, other_cores=1.5)
        tr.step()
        assert torch.get_num_threads() == 1
        f.advance(1.0, own_cores=1.0, other_cores=0.0)
        tr.step()
        assert torch.get_num_threads() == 2

        monkeypatch.setenv("GAMO_ADAPT_THREADS", "0")     # the switch to time thread scaling
        assert Trainer(cfg, with_grid=False).thread_governor is None
        one = RunConfig(data=cfg.data, train=TrainConfig(method="gamo", steps=5, device="cpu", threads=1))
        monkeypatch.delenv("GAMO_ADAPT_THREADS")
        assert Trainer(one, with_grid=False).thread_governor is None   # one thread: nothing to lower
    finally:
        torch.set_num_threads(before)
