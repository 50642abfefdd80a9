"""Seconds per 100 GAMO-phase iterations on Fashion-MNIST with 0, 1 and 2 competing runs beside it.

The timed run is a GAMO trainer (conv family, LS, paper profile) moved to the start of its GAMO
phase (features computed once), warmed up, then timed for ``--iters`` iterations. The competing
runs are child processes that train without pause as the app's or the CLI's runs do:

* ``toy``: a toy:moons GAMO run with ``--threads 1`` (the Toy Lab's setting);
* ``fashion``: a second Fashion-MNIST GAMO run in its GAMO phase, with ``--threads`` threads.

Condition 1 adds the toy run, condition 2 the toy run and the second Fashion run. Each condition is
timed ``--repeats`` times (conditions interleaved) and the median kept. Next to wall time the
table gives the timed run's CPU seconds (its own threads, all of them), so that threads that spin
waiting for work show up as CPU burnt without progress, and the torch threads it used (the
engine lowers them while other work keeps the cores busy: gamo/cpuload.py). "fair" is the time the
run would take if it got its fair share of the cores: alone-time x demanded threads / cores, where
the demand counts the timed run's threads and each competitor's (never below alone-time); work
of other users of the machine is not counted, so the load average is recorded with each timing.

    python bench/phase_under_load.py --threads 2 --iters 150
    python bench/phase_under_load.py --threads 2 --iters 20 --repeats 1 --fixed-threads   # as before the fix
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import command, git_rev, machine, md_table  # noqa: E402

COMPETITORS = {0: [], 1: ["toy"], 2: ["toy", "fashion"]}


def gamo_trainer(dataset: str, threads: int):
    """A GAMO Trainer positioned at the first iteration of its GAMO phase, features computed."""
    from gamo.config import DataConfig, RunConfig, TrainConfig
    from gamo.train import Trainer

    data_cfg = DataConfig(dataset=dataset, profile="paper" if dataset == "fashion-mnist" else "step:ir=10")
    cfg = RunConfig(data=data_cfg, train=TrainConfig(method="gamo", loss="ls", steps=10**9, device="cpu",
                                                     threads=threads))
    tr = Trainer(cfg, with_grid=False)
    m = tr.method
    if m.family == "conv":
        m.step_count = m.iters_per_phase          # F's phase skipped: the GAMO phase is what is timed
        m.train_features()
    return tr


def compete(kind: str, threads: int) -> None:
    """A competing run: train without end (the parent kills it); prints 'ready' once training."""
    tr = gamo_trainer("toy:moons" if kind == "toy" else "fashion-mnist", 1 if kind == "toy" else threads)
    m = tr.method
    start = m.step_count
    for _ in range(5):
        tr.step()
    print("ready", flush=True)
    while True:
        if m.family == "conv" and m.phase != "gamo":   # stay in the GAMO phase
            m.step_count = start
        tr.step()


def start_competitors(kinds: list[str], threads: int) -> list[subprocess.Popen]:
    procs = []
    env = dict(os.environ)
    for k in kinds:
        p = subprocess.Popen([sys.executable, __file__, "--compete", k, "--threads", str(threads)],
                             stdout=subprocess.PIPE, text=True, env=env)
        procs.append(p)
    for p in procs:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a competing run did not start (said {line!r})")
    time.sleep(1.0)                                # let them settle into their loop
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def time_phase(tr, iters: int) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, mean torch threads) for ``iters`` GAMO-phase
    iterations."""
    import torch

    m = tr.method
    start = m.step_count
    if m.family == "conv" and m.phase != "gamo":
        m.step_count = start = m.iters_per_phase
    threads = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        if m.family == "conv" and m.phase != "gamo":
            m.step_count = start
        tr.step()
        threads += torch.get_num_threads()
    return time.perf_counter() - t0, time.process_time() - c0, threads / max(1, iters)


def loadavg() -> str:
    """The 1, 5 and 15 min load averages and, after a slash, the tasks runnable right now
    (including this run's own threads): the averages lag, the count does not."""
    try:
        f = open("/proc/loadavg").read().split()
        return " ".join(f[:3]) + " / " + f[3].split("/")[0]
    except (OSError, IndexError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the timed run and the Fashion competitor")
    ap.add_argument("--iters", type=int, default=150, help="timed GAMO-phase iterations per condition and repeat")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--conditions", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fixed-threads", action="store_true",
                    help="keep --threads whatever the load (GAMO_ADAPT_THREADS=0: the engine before the fix)")
    ap.add_argument("--out", default=None, help="default bench/results/phase_under_load[_fixed]")
    ap.add_argument("--compete", choices=["toy", "fashion"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.compete:
        compete(a.compete, a.threads)
        return

    if a.fixed_threads:
        os.environ["GAMO_ADAPT_THREADS"] = "0"      # for this process and the competitors
    a.out = a.out or "bench/results/phase_under_load" + ("_fixed" if a.fixed_threads else "")
    import torch

    tr = gamo_trainer("fashion-mnist", a.threads)
    threads = torch.get_num_threads()
    time_phase(tr, 20)                              # warm-up
    from gamo.config import cpu_cores

    cores = cpu_cores()
    runs: dict[int, list[dict]] = {c: [] for c in a.conditions}
    loads = []
    for rep in range(a.repeats):
        for c in a.conditions:
            procs = start_competitors(COMPETITORS[c], a.threads)
            try:
                la = loadavg()
                wall, cpu, used = time_phase(tr, a.iters)
            finally:
                stop(procs)
            loads.append(la)
            runs[c].append({"wall": wall, "cpu": cpu, "threads": used, "load": la})
            print(f"repeat {rep} competitors {c}: {wall:.2f} s wall, {cpu:.2f} s CPU, {used:.2f} threads "
                  f"({100 * wall / a.iters:.2f} s per 100 it), load {la}", flush=True)

    def per100(x: float) -> float:
        return 100 * x / a.iters

    alone = statistics.median(r["wall"] for r in runs[0]) if 0 in runs else None
    rows = []
    for c in a.conditions:
        wall = statistics.median(r["wall"] for r in runs[c])
        cpu = statistics.median(r["cpu"] for r in runs[c])
        demand = threads + sum(1 if k == "toy" else a.threads for k in COMPETITORS[c])
        fair = None if alone is None else alone * max(1.0, demand / cores)
        used = statistics.mean(r["threads"] for r in runs[c])
        rows.append([c, " + ".join(COMPETITORS[c]) or "none", f"{per100(wall):.2f}",
                     " / ".join(f"{per100(r['wall']):.2f}" for r in runs[c]), f"{per100(cpu):.2f}", f"{used:.2f}",
                     "" if fair is None else f"{per100(fair):.2f}",
                     "" if fair is None else f"{wall / fair:.2f}",
                     ", ".join(r["load"].split()[0] + " / " + r["load"].split()[-1] for r in runs[c])])
    md = "\n".join([
        f"# A Fashion-MNIST GAMO phase beside competing runs ({a.iters} iterations, {a.threads} torch threads"
        f"{', fixed whatever the load: the engine before the fix' if a.fixed_threads else ''})",
        "",
        f"- command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        f"- timed run: GAMO, conv family, LS, paper profile, CPU, torch threads {threads} "
        f"({'fixed' if a.fixed_threads else 'fewer while the cores are busy: gamo/cpuload.py'}); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'unset')}",
        "- competitors: toy = toy:moons GAMO with 1 thread; fashion = a second Fashion-MNIST GAMO phase "
        f"with {a.threads} threads; each trains without pause in its own process",
        f"- {a.repeats} repeats per condition, conditions interleaved; medians. Load average (1, 5, 15 min) "
        f"and runnable tasks at the start of each timing: {'; '.join(loads)}. Other work may run on the "
        "machine (other sessions' tests and benchmarks): the load average counts it, and it lags (a high "
        "1-min average with few runnable tasks is load that has just ended).",
        "",
        md_table(["competing runs", "which", "median s / 100 it", "each (s / 100 it)", "CPU s / 100 it", "threads used",
                  "fair share s / 100 it", "vs fair", "1-min load / runnable at start"], rows),
        "",
        "\"vs fair\" near 1 or below: the phase slows in proportion to the load; far above: it collapses.",
        "",
    ])
    Path(a.out + ".md").parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".md").write_text(md)
    Path(a.out + ".json").write_text(json.dumps({"command": command(), "machine": machine(), "git": git_rev(),
                                                 "threads": threads, "fixed_threads": a.fixed_threads, "iters": a.iters,
                                                 "runs": runs}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
