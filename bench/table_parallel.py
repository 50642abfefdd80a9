"""Fill a paper table faster on a machine with many cores or a GPU: run its cells (method x seed)
as parallel ``python -m gamo bench`` processes, each one cell, then write the table.

    python -m bench.table_parallel table1 --dataset fashion-mnist --seeds 0 1 2 --jobs 8 --deadline 3600

Each cell is its own process (a crash stays in its cell and its log), stored under ``--root`` like
``python -m gamo bench`` stores it, so both commands share finished runs and either can resume what
the other left. Cells go seed by seed (every method for the first seed before the next seed), the
slowest methods first. At ``--deadline`` seconds the running cells are interrupted (each saves a
checkpoint and can be resumed by the next call) and the table is written from what finished.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gamo.runs import FINAL
from gamo.tables import FAILED, ROWS, TABLES, store_name, write_table

# rough cost of one run relative to Baseline CN, slowest first (GAN methods train two more networks)
COST = {"dos": 4.5, "gamo": 3, "cg_d": 3, "cgan": 3, "gamo_no_d": 2.5, "cg": 2.5, "smote": 2, "borderline_smote": 2,
        "adasyn": 2, "augment": 1.5}


def cells(methods: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    order = sorted(methods, key=lambda m: -COST.get(m, 1))
    return [(m, s) for s in seeds for m in order]


def finished(run_dir: Path) -> bool:
    f = run_dir / FINAL
    return (f.exists() and json.loads(f.read_text()).get("complete", False)) or (run_dir / FAILED).exists()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("table", choices=sorted(TABLES))
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--loss", default="ls", choices=("ls", "ce"))
    ap.add_argument("--root", default="bench/results/runs")
    ap.add_argument("--out", default=None, help="table path without suffix (default bench/results/<table>_<dataset>_<loss>)")
    ap.add_argument("--jobs", type=int, default=2, help="cells run at once")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per cell")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--family", default="auto", choices=("auto", "dense", "conv"))
    ap.add_argument("--deadline", type=float, default=0, help="seconds; 0: none")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--steps", type=int, default=None, help="iterations instead of epochs (smoke tests)")
    ap.add_argument("--test-per-class", type=int, default=None)
    ap.add_argument("--val-per-class", type=int, default=None, help="validation split per class (0: none)")
    a = ap.parse_args(argv)
    methods = list(a.methods or [m for m in ROWS if m in __import__("gamo.config").config.METHODS])
    base = Path(a.root) / store_name(a.dataset, a.loss, a.family)
    logs = Path(a.root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells(methods, a.seeds) if not finished(base / f"{c[0]}-seed{c[1]}")]
    print(f"{len(todo)} cells to run with {a.jobs} at once", flush=True)
    start = time.monotonic()
    running: dict[tuple[str, int], tuple[subprocess.Popen, float]] = {}
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    stopping = False
    interrupted: list[int] = []
    # Ctrl-C (SIGINT) stops like the deadline: the cells are interrupted and save checkpoints
    old_handler = signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
    while todo or running:
        over = (a.deadline and time.monotonic() - start > a.deadline) or interrupted
        if over and not stopping:
            stopping = True
            why = "interrupted" if interrupted else "deadline"
            print(f"{why}: interrupting {len(running)} cells (each saves a checkpoint)", flush=True)
            for p, _ in running.values():
                p.send_signal(signal.SIGINT)
            todo = []
        while todo and len(running) < a.jobs and not stopping:
            m, s = todo.pop(0)
            cmd = [sys.executable, "-m", "gamo", "bench", a.table, "--dataset", a.dataset, "--seeds", str(s),
                   "--methods", m, "--loss", a.loss, "--root", a.root, "--out", str(logs / f"table-{m}-{s}"),
                   "--threads", str(a.threads), "--device", a.device, "--family", a.family]
            if a.epochs:
                cmd += ["--epochs", str(a.epochs)]
            for flag, value in (("--profile", a.profile), ("--steps", a.steps), ("--test-per-class", a.test_per_class)):
                if value:
                    cmd += [flag, str(value)]
            if a.val_per_class is not None:   # 0 (no validation split) is a value too
                cmd += ["--val-per-class", str(a.val_per_class)]
            log = open(logs / f"{m}-seed{s}.log", "a")
            # SIGINT back to its default: a shell starts background jobs with it ignored, and a cell
            # must turn it into KeyboardInterrupt (save a checkpoint) at the deadline
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            running[(m, s)] = (proc, time.monotonic())
            print(f"start {m} seed {s}", flush=True)
        for key, (p, t0) in list(running.items()):
            if p.poll() is not None:
                del running[key]
                print(f"done {key[0]} seed {key[1]} (exit {p.returncode}, {time.monotonic() - t0:.0f} s)", flush=True)
        time.sleep(0.5)
    signal.signal(signal.SIGINT, old_handler)
    path = write_table(a.table, a.dataset, a.loss, base, methods, a.seeds, a.out, family=a.family)
    print(f"wrote {path}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
