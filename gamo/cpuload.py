"""Torch threads that give way when the cores are busy: :class:`ThreadGovernor`.

torch's CPU kernels run in an OpenMP pool whose threads spin while they wait for the next
parallel region. On a machine whose cores are all taken (another run, the browser, a lab
server's other users) a spinning thread holds a core the thread it waits for needs, and every
parallel region then waits for the scheduler: a Fashion-MNIST GAMO phase with 2 threads on 2
cores went from 2.35 s to 44 s per 100 iterations beside a one-thread toy run, and to 32 s beside
a toy and a second Fashion run (``bench/results/phase_under_load_fixed.md``; 7 s to 160 s and 460 s
while a table benchmark also ran), not to the 1.5-2.5x the load explains. Passive waiting
(``OMP_WAIT_POLICY=PASSIVE``) cured the collapse but made the phase slower when the cores were
free (a futex wake-up in every parallel region), so instead a run watches how busy its cores
are and uses only the cores the others leave:

* every ``every`` seconds (1 s), between two iterations, it reads the busy time of the CPUs this
  process may run on (``/proc/stat``) and subtracts its own CPU time; what is left is the others'
  load, in cores;
* it then uses ``t = floor(cores - others + 0.3)`` torch threads, at least 1 and at most the count
  it was given: a core counts as free while others use less than 0.3 of it.

With one thread nothing spins, so the run slows in proportion to the load; when the others end,
the threads come back within a second. Results do not depend on it beyond float rounding of
reductions that torch splits between threads. Where ``/proc/stat`` cannot be read (not Linux)
nothing changes. ``GAMO_ADAPT_THREADS=0`` turns it off (to time thread scaling itself).
"""
from __future__ import annotations

import os
import time
from typing import Callable

__all__ = ["ThreadGovernor", "busy_ticks", "adapt_enabled", "FREE_MARGIN"]

FREE_MARGIN = 0.3
"""Threads used: ``floor(cores - others + FREE_MARGIN)`` (a core is free while the others use
less than 0.3 of it)."""


def adapt_enabled() -> bool:
    """False when ``GAMO_ADAPT_THREADS`` is 0/false/no/off."""
    return os.environ.get("GAMO_ADAPT_THREADS", "1").strip().lower() not in ("0", "false", "no", "off")


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def busy_ticks(cpus: list[int], path: str = "/proc/stat") -> int | None:
    """Busy clock ticks (all but idle and iowait) of these CPUs since boot; None where unknown."""
    want = {f"cpu{c}" for c in cpus}
    total, seen = 0, 0
    try:
        with open(path) as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                parts = line.split()
                if parts[0] in want:
                    v = [int(x) for x in parts[1:9]]   # user nice system idle iowait irq softirq steal
                    total += sum(v) - v[3] - v[4]
                    seen += 1
    except (OSError, ValueError, IndexError):
        return None
    return total if seen == len(want) else None


class ThreadGovernor:
    """Lowers this process's torch threads while other work keeps its cores busy (see the module
    docstring), and raises them again, never above ``threads``.

    Call :meth:`poll` between iterations; it is a clock read except once per ``every`` seconds.
    ``read_busy`` (seconds of busy CPU time of ``cpus``), ``own_cpu`` (this process's CPU
    seconds), ``clock`` and ``set_threads`` can be replaced (tests).
    """

    def __init__(self, threads: int, *, every: float = 1.0, cpus: list[int] | None = None,
                 read_busy: Callable[[], float | None] | None = None,
                 own_cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic,
                 set_threads: Callable[[int], None] | None = None) -> None:
        self.max_threads = max(1, int(threads))
        self.cpus = list(cpus) if cpus is not None else _cpus()
        self.every = float(every)
        if read_busy is None:
            hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

            def read_busy() -> float | None:
                t = busy_ticks(self.cpus)
                return None if t is None else t / hz
        self._read_busy, self._own_cpu, self._clock = read_busy, own_cpu, clock
        if set_threads is None:
            import torch

            def set_threads(n: int) -> None:
                if torch.get_num_threads() != n:
                    torch.set_num_threads(n)
        self._set = set_threads
        self.threads = self.max_threads
        self.others: float | None = None      # the others' load (cores) over the last window
        self._mark = self._sample()

    def _sample(self) -> tuple[float, float, float | None]:
        return self._clock(), self._own_cpu(), self._read_busy()

    def poll(self) -> int:
        """Re-decide the thread count when a window has passed; the count in use."""
        now = self._clock()
        t0, own0, busy0 = self._mark
        if now - t0 < self.every:
            return self.threads
        t1, own1, busy1 = self._sample()
        self._mark = (t1, own1, busy1)
        if busy0 is None or busy1 is None or t1 <= t0:
            return self.threads
        self.others = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))
        want = int(len(self.cpus) - self.others + FREE_MARGIN)
        want = max(1, min(self.max_threads, want))
        if want != self.threads:
            self._set(want)
            self.threads = want
        return self.threads
