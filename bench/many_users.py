"""N simulated Toy Lab sessions on one server: memory (server + run processes) and responsiveness.

Each session is a thread of this process (the "server", as Streamlit runs each session's script
in a thread) that does what the Toy Lab page does: starts its run with
:func:`app.ui.toylab_runs.start_live_run` (a :class:`gamo.worker.ProcessRunHandle` child forked
from the run server, through the server's cap on live runs), starts the watchdog, waits for the
first snapshot, presses Play, and then polls as the page's live view does, every 0.2 s: marks the
run as looked at, reads its status and history and the newest snapshot's statistics. Once a
second it also asks the run's process for its step count (a query: what Step and Save wait on).

For each N the table gives: the time from start to the first snapshot; poll latency (one poll's
reads) and query latency (the round trip to the run's process), median / 95th percentile / max;
iterations per second, all runs together; the snapshots and their bytes held in the server; and
memory: RSS and PSS (shared pages divided among the processes that share them) of the server
plus the run server plus the run processes, summed. Then, with the cap set to N, one more session
is refused with the page's message.

    python bench/many_users.py --sessions 1 4 8 16 --seconds 20
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import command, git_rev, machine, md_table  # noqa: E402

REFRESH_S = 0.2      # the Toy Lab's live view redraws this often while a run trains
QUERY_S = 1.0


def _tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _kib(pid: int, path: str, key: str) -> int:
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _private(pid: int) -> int:
    return _kib(pid, "smaps_rollup", "Private_Clean") + _kib(pid, "smaps_rollup", "Private_Dirty")


def memory() -> dict[str, float]:
    """MiB of RSS and PSS of this process and its descendants, how many processes, and the run
    processes' private memory (what each run adds beyond the pages it shares with the run server)."""
    me = os.getpid()
    pids = _tree(me)
    runs = [p for p in pids if p != me and len(_tree(p)) == 1 and _kib(p, "status", "VmRSS") > 100 * 1024]
    rss = sum(_kib(p, "status", "VmRSS") for p in pids)
    pss = sum(_kib(p, "smaps_rollup", "Pss") for p in pids)
    return {"processes": len(pids), "rss_mib": rss / 1024, "pss_mib": pss / 1024,
            "server_rss_mib": _kib(me, "status", "VmRSS") / 1024, "run_processes": len(runs),
            "run_private_mib": sum(_private(p) for p in runs) / 1024}


class Session(threading.Thread):
    def __init__(self, i: int, data, stop: threading.Event) -> None:
        super().__init__(name=f"session-{i}", daemon=True)
        self.data, self.stop_evt = data, stop
        self.run_obj = None
        self.error: str | None = None
        self.start_s: float | None = None
        self.polls: list[float] = []
        self.queries: list[float] = []
        self.measuring = False

    def run(self) -> None:
        from app.ui import toylab as tl
        from app.ui.live_runs import LabFull, start_watchdog, wait_for_step
        from app.ui.toylab_runs import start_live_run

        s = tl.ToySettings()
        t0 = time.perf_counter()
        try:
            r = start_live_run(tl.build_config(s), self.data, s, paused=True)
        except LabFull as e:
            self.error = str(e)
            return
        self.run_obj = r
        start_watchdog([r], connected=None)
        wait_for_step([r], [0], timeout=120.0)
        self.start_s = time.perf_counter() - t0
        r.handle.resume()                                   # Play
        next_query = time.monotonic() + QUERY_S
        while not self.stop_evt.is_set():
            t = time.perf_counter()
            r.last_poll = time.monotonic()
            st = r.handle.status
            snaps = r.handle.history()
            if snaps and snaps[-1].generated is not None:
                r.stats(snaps[-1])
            dt = time.perf_counter() - t
            if self.measuring:
                self.polls.append(dt)
            if time.monotonic() >= next_query and st.state in ("running", "paused"):
                t = time.perf_counter()
                try:
                    r.handle.step_count(timeout=30.0)
                    if self.measuring:
                        self.queries.append(time.perf_counter() - t)
                except (TimeoutError, RuntimeError):
                    pass
                next_query = time.monotonic() + QUERY_S
            time.sleep(REFRESH_S)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def spread(xs: list[float]) -> list[float] | None:
    """Median, 95th percentile and max, in ms."""
    return [1000 * statistics.median(xs), 1000 * pct(xs, 0.95), 1000 * max(xs)] if xs else None


def measure(n: int, seconds: float, data) -> dict:
    from app.ui.live_runs import live_run_count, stop_runs

    os.environ["GAMO_MAX_LIVE_RUNS"] = str(live_run_count() + n)
    stop = threading.Event()
    sessions = [Session(i, data, stop) for i in range(n)]
    for s in sessions:
        s.start()
    deadline = time.monotonic() + 180.0
    while any(s.start_s is None and s.error is None for s in sessions) and time.monotonic() < deadline:
        time.sleep(0.1)
    runs = [s.run_obj for s in sessions if s.run_obj is not None]
    time.sleep(3.0)                                          # everyone training
    steps0 = sum(r.handle.status.step for r in runs)
    for s in sessions:
        s.measuring = True
    t0 = time.monotonic()
    time.sleep(seconds)
    for s in sessions:
        s.measuring = False
    rate = (sum(r.handle.status.step for r in runs) - steps0) / (time.monotonic() - t0)
    mem = memory()
    held = [len(r.handle.history()) for r in runs]
    held_bytes = sum(r.handle._snaps.nbytes for r in runs)
    extra = Session(n, data, stop)                           # one more than the cap
    extra.start()
    extra.join(60.0)
    refused = extra.error
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    stop.set()
    for s in sessions:
        s.join(10.0)
    stop_runs(runs, wait=10.0)
    polls = [x for s in sessions for x in s.polls]
    queries = [x for s in sessions for x in s.queries]
    starts = [s.start_s for s in sessions if s.start_s is not None]
    out = {
        "sessions": n, "started": len(runs), "start_s_median": statistics.median(starts) if starts else None,
        "start_s_max": max(starts) if starts else None,
        "poll_ms": spread(polls), "query_ms": spread(queries),
        "polls": len(polls), "queries": len(queries), "its_per_s": rate, "snapshots_held": held,
        "snapshot_mib": held_bytes / 2**20, "memory": mem, "refused": refused, "load": load,
    }
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per N (after start)")
    ap.add_argument("--out", default="bench/results/many_users")
    a = ap.parse_args()

    from app.ui import toylab as tl
    from app.ui.live_runs import IDLE_PAUSE_S, IDLE_STOP_S, CLOSED_STOP_S
    from gamo.data import load_dataset
    from gamo.history import DEFAULT_MAX_BYTES
    from gamo.worker import warm_up

    warm_up()                                                # the run server, as the Home page does
    data = load_dataset(tl.build_config(tl.ToySettings()).data)
    one = Session(0, data, threading.Event())                # a first run (the run server is loaded)
    one.start()
    while one.start_s is None and one.error is None:
        time.sleep(0.1)
    one.stop_evt.set()
    one.join(10.0)
    one.run_obj.handle.stop(wait=10.0)
    time.sleep(1.0)
    base = memory()
    results = [measure(n, a.seconds, data) for n in a.sessions]

    def trio(v):
        return "" if v is None else " / ".join(f"{x:.1f}" for x in v)

    rows = []
    for r in results:
        m = r["memory"]
        rows.append([r["sessions"], r["started"], f"{r['start_s_median']:.2f} / {r['start_s_max']:.2f}",
                     trio(r["poll_ms"]), trio(r["query_ms"]), f"{r['its_per_s']:.0f}",
                     f"{sum(r['snapshots_held'])} ({r['snapshot_mib']:.1f} MiB)", m["processes"],
                     f"{m['rss_mib']:.0f}", f"{m['pss_mib']:.0f}",
                     f"{(m['pss_mib'] - base['pss_mib']) / max(1, r['started']):.0f}",
                     f"{m['run_private_mib'] / max(1, m['run_processes']):.0f}",
                     "yes" if r["refused"] else "NO", r["load"]])
    refusal = next((r["refused"] for r in reversed(results) if r["refused"]), "")
    md = "\n".join([
        "# N simulated Toy Lab sessions on one server",
        "",
        f"- command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        f"- each session: the Toy Lab's default run (toy:moons, GAMO, one torch thread, snapshot every "
        f"20 iterations, history 1,000) started through the server's cap, then Play; polled every "
        f"{REFRESH_S} s (status, history, newest snapshot's statistics), a query to its process every "
        f"{QUERY_S:.0f} s; {a.seconds:.0f} s measured after all had started",
        f"- the server before the N runs (this process and the run server, warmed by one run started and "
        f"stopped): {base['processes']} processes, RSS {base['rss_mib']:.0f} MiB, PSS {base['pss_mib']:.0f} MiB. "
        "RSS counts the pages a run shares with the run server (torch and the engine, loaded once) in "
        "every process; PSS divides them among the sharers; private is what a run process has alone",
        f"- limits in force: the cap on live runs set to N for each N (to check the N+1st is refused; "
        f"the default is 40), snapshot memory {DEFAULT_MAX_BYTES / 2**20:.0f} MiB per run, "
        f"idle pause {IDLE_PAUSE_S:.0f} s, idle end {IDLE_STOP_S:.0f} s, closed tab end {CLOSED_STOP_S:.0f} s",
        "- load average (1, 5, 15 min) at the end of each N in the last column: it counts this benchmark's "
        "own N runs (all training on the machine's cores) and any other work on the machine (other "
        "sessions' tests and benchmarks), so timings are noisy",
        "",
        md_table(["N", "runs started", "start s (median / max)", "poll ms (median / p95 / max)",
                  "query ms (median / p95 / max)", "it/s, all runs", "snapshots held (bytes)", "processes",
                  "RSS MiB", "PSS MiB", "PSS MiB added per run", "private MiB per run process",
                  "N+1st refused", "load"], rows),
        "",
        f"The N+1st session is told: \"{refusal}\"",
        "",
    ])
    Path(a.out + ".md").parent.mkdir(parents=True, exist_ok=True)
    Path(a.out + ".md").write_text(md)
    Path(a.out + ".json").write_text(json.dumps({"command": command(), "machine": machine(), "git": git_rev(),
                                                 "base": base, "results": results}, indent=1))
    print(md)


if __name__ == "__main__":
    main()
