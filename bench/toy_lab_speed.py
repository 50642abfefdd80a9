"""Toy Lab speed: GAMO iterations per second and page redraws per second, on the running app.

Issue target: with 2 CPU threads and 2,000 real points, the 2D GAMO loop sustains at least 300
full iterations per second (M, D and G updates on a batch of 64) while the page redraws at least
4 times per second.

What is measured
----------------
1. **Engine alone** (no app): ``Trainer.step`` in a loop on the same config, in a fresh process
   per thread count (``torch.set_num_threads`` 1 and 2), without snapshots and with a snapshot
   every ``--speed`` iterations (what the page's worker does: the snapshot evaluates M and D on
   the 60x60 grid and the test split).
2. **The running app**: ``streamlit run app/Home.py`` on a free port, headless Chromium opens
   ``/Toy_Lab?<settings>`` (2,000 points given in the URL's query parameters), presses Play and
   watches for ``--seconds`` seconds after a short warm-up:

   * *iterations/s*: from the step counter the page displays (``#toylab-status-0``'s
     ``data-step``, the step of the latest snapshot drawn): the steps trained from Play to
     Pause (read once the paused page has caught up) over that wall time, and the counter's
     progress during the measurement window (lower when the browser lags behind);
   * *redraws/s*: completed Plotly draws of the main 2D figure in the browser, over the same
     window: the view is the ``app.ui.live_plot`` component, which counts the draws it
     finished (``Plotly.react`` in place; polled every 10 ms); also the number of distinct
     server redraws that reached the page (``data-redraw``);
   * *Pause latency*: the issue asks that controls answer within half a second while a run
     trains; Pause is clicked from inside the page and timed there until the status line reads
     "paused".

The machine description, the load average during the run and the exact command go into the
Markdown results (``--out``).

Usage::

    python bench/toy_lab_speed.py                       # writes bench/results/toy_lab_speed.md
    python bench/toy_lab_speed.py --seconds 20 --speed 25 --out -   # print only
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench import serve  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGET_ITERS, TARGET_REDRAWS = 300.0, 4.0


# ---------------------------------------------------------------------------------------
# settings shared by both measurements
# ---------------------------------------------------------------------------------------
def toy_settings(args):
    sys.path.insert(0, str(ROOT))
    import dataclasses

    from app.ui import toylab as tl

    return dataclasses.replace(tl.DEFAULTS, dataset=args.dataset, counts=tuple(args.counts),
                               method=args.method, batch=64, speed=args.speed)


# ---------------------------------------------------------------------------------------
# 1. the engine alone
# ---------------------------------------------------------------------------------------
def engine_only(args) -> dict:
    """Run in a fresh process: steps/s of Trainer.step with ``args.threads`` torch threads."""
    import torch

    torch.set_num_threads(args.threads)
    from app.ui import toylab as tl
    from gamo.train import Trainer

    s = toy_settings(args)
    cfg = tl.build_config(s).replace(train={"threads": args.threads})
    tr = Trainer(cfg)
    for _ in range(50):  # warm-up
        tr.step()

    def loop(snapshot_every: int) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.engine_seconds:
            tr.step()
            n += 1
            if snapshot_every and n % snapshot_every == 0:
                tr.snapshot()
        return n / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for _ in range(20):
        tr.snapshot()
    snap_ms = (time.perf_counter() - t0) / 20 * 1000
    return {"threads": args.threads, "steps_per_s": loop(0),
            "steps_per_s_with_snapshots": loop(args.speed), "snapshot_ms": snap_ms,
            "n_train": int(len(tr.data.y_train))}


def run_engine(args, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--engine-only", "--threads", str(threads),
           "--engine-seconds", str(args.engine_seconds), "--speed", str(args.speed),
           "--dataset", args.dataset, "--counts", ",".join(map(str, args.counts)),
           "--method", args.method]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# 2. the running app
# ---------------------------------------------------------------------------------------
INSTRUMENT_JS = """
() => {
  // The 2D view is the live_plot component: an iframe whose chart is updated in place with
  // Plotly.react and counts its completed draws (window.gamoLivePlot.draws). A new iframe is a
  // new mount (a new run, or Streamlit re-creating the element).
  window.__tl = {draws: 0, mounts: 0, redraws: new Set(), longtask_ms: 0};
  try {  // main-thread time spent in tasks over 50 ms: is the browser the bottleneck?
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__tl.longtask_ms += e.duration;
    }).observe({type: 'longtask'});
  } catch (e) { window.__tl.longtask_ms = -1; }
  let last = null, base = 0, done = 0;
  const poll = () => {
    const f = document.querySelector('[class*="st-key-tl_fig_0_"] iframe');
    const lp = f && f.contentWindow && f.contentWindow.gamoLivePlot;
    if (lp) {
      if (f !== last) { done = window.__tl.draws; last = f; base = lp.draws; window.__tl.mounts += 1; }
      window.__tl.draws = done + (lp.draws - base);
    }
    const st = document.querySelector('#toylab-status-0');
    if (st) window.__tl.redraws.add(st.dataset.redraw);
  };
  poll();
  window.__tlTimer = setInterval(poll, 10);
  return true;
}
"""


def pause_js(button_key: str, status: str) -> str:
    """A page function that clicks the page's Pause button (``.st-key-<button_key>``) and
    resolves with the milliseconds until the status element ``status`` says 'paused'."""
    return """
(timeout) => new Promise((resolve, reject) => {
  const t0 = performance.now();
  document.querySelector('.st-key-%s button').click();
  const poll = () => {
    if (document.querySelector('%s')?.dataset.state === 'paused') {
      resolve(performance.now() - t0);
    } else if (performance.now() - t0 > timeout) {
      reject(new Error('the page did not show paused'));
    } else {
      setTimeout(poll, 5);
    }
  };
  poll();
})
""" % (button_key, status)


PAUSE_JS = pause_js("tl_pause", "#toylab-status-0")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _browser_cpu_seconds() -> float:
    """CPU time of every Chromium process on the machine (ours, in practice)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if b"chromium" in (d / "cmdline").read_bytes().split(b"\0")[0]:
                total += _cpu_seconds(int(d.name))
        except OSError:
            continue
    return total


def _descendants_cpu_seconds(root: int) -> float:
    """CPU time of every descendant of ``root`` (the run processes under the fork server)."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    total, frontier = 0.0, {root}
    while frontier:
        kids = {pid for pid, pp in parent.items() if pp in frontier}
        total += sum(_cpu_seconds(k) for k in kids)
        frontier = kids
    return total


def run_app(args) -> dict:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from app.ui import toylab as tl

    s = toy_settings(args)
    query = urllib.parse.urlencode(tl.settings_to_query(s))
    log = tempfile.TemporaryFile("w+")
    srv, port = serve.start(log, env={"GAMO_RUNS_DIR": "/tmp/gamo-bench-runs", "GAMO_RUNS_IN": args.runs_in})
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.goto(f"http://localhost:{port}/Toy_Lab?{query}")
            page.wait_for_selector("#toylab-status-0", timeout=60_000)
            page.frame_locator('[class*="st-key-tl_fig_0_"] iframe').locator(
                ".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
            status = page.locator("#toylab-status-0").first
            step_play = int(status.get_attribute("data-step"))
            t_play = time.monotonic()
            page.locator(".st-key-tl_play button").click()
            page.wait_for_function(
                "() => document.querySelector('#toylab-status-0')?.dataset.state === 'running'",
                timeout=20_000)
            page.wait_for_timeout(int(args.warmup * 1000))
            page.evaluate(INSTRUMENT_JS)

            def read() -> tuple[float, int, int]:
                return time.monotonic(), int(status.get_attribute("data-step")), \
                    int(status.get_attribute("data-redraw"))

            t0, step0, redraw0 = read()
            cpu0 = {"server": _cpu_seconds(srv.pid), "browser": _browser_cpu_seconds(),
                    "runs": _descendants_cpu_seconds(srv.pid)}
            load0 = os.getloadavg()
            samples = []
            while time.monotonic() - t0 < args.seconds:
                page.wait_for_timeout(1000)
                samples.append(read())
            t1, step1, redraw1 = read()
            cpu1 = {"server": _cpu_seconds(srv.pid), "browser": _browser_cpu_seconds(),
                    "runs": _descendants_cpu_seconds(srv.pid)}
            load1 = os.getloadavg()
            tl_js = page.evaluate("() => ({draws: window.__tl.draws, mounts: window.__tl.mounts, "
                                  "redraws: window.__tl.redraws.size, "
                                  "longtask_ms: window.__tl.longtask_ms})")
            exceptions = page.locator('[data-testid="stException"]').count()
            text = status.inner_text()
            t_pause = time.monotonic()
            # Pause, clicked in the page (no wait for the button to be "stable", as Playwright's
            # click does), timed in the browser until the status line says "paused"
            pause_latency = page.evaluate(PAUSE_JS, 30_000) / 1000.0
            page.wait_for_timeout(1000)
            step_pause = int(page.locator("#toylab-status-0").first.get_attribute("data-step"))
            if args.screenshot:
                page.screenshot(path=args.screenshot)
            browser.close()
    finally:
        serve.stop(srv, log)
    wall = t1 - t0
    return {
        "query": query, "seconds": wall, "step_start": step0, "step_end": step1,
        "iters_per_s": (step1 - step0) / wall,
        "iters_per_s_worker": (step_pause - step_play) / (t_pause - t_play),
        "play_seconds": t_pause - t_play, "step_pause": step_pause,
        "pause_latency_s": pause_latency,
        "redraws_per_s_dom": tl_js["draws"] / wall,
        "mounts_per_s": tl_js["mounts"] / wall,
        "redraws_per_s_server": (redraw1 - redraw0) / wall,
        "server_redraws_seen_in_dom": tl_js["redraws"],
        "server_cpu_share": (cpu1["server"] - cpu0["server"]) / wall,
        "runs_cpu_share": (cpu1["runs"] - cpu0["runs"]) / wall,
        "browser_cpu_share": (cpu1["browser"] - cpu0["browser"]) / wall,
        "browser_main_thread_busy": tl_js["longtask_ms"] / 1000.0 / wall,
        "load_before": load0, "load_after": load1, "exceptions": exceptions,
        "status_text": text,
        "samples": [(round(t - t0, 2), st, rd) for t, st, rd in samples],
    }


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------
def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import plotly
    import streamlit
    import torch

    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "torch": torch.__version__, "streamlit": streamlit.__version__,
            "plotly": plotly.__version__, "platform": platform.platform()}


def repeats_section(apps: list[dict]) -> list[str]:
    """Every repeat of the app measurement, and the medians the targets are judged on."""
    import statistics

    keys = [("iters_per_s_worker", "iterations/s trained", "{:.0f}"),
            ("redraws_per_s_dom", "redraws/s in the browser", "{:.1f}"),
            ("pause_latency_s", "Pause -> 'paused' (s)", "{:.2f}")]
    lines = ["", f"## Every repeat ({len(apps)} fresh server + browser sessions, one after another)", "",
             "| repeat | " + " | ".join(k[1] for k in keys) + " | load before |",
             "|---:|" + "---:|" * len(keys) + "---:|"]
    for i, a in enumerate(apps, 1):
        lines.append(f"| {i} | " + " | ".join(fmt.format(a[k]) for k, _, fmt in keys)
                     + f" | {a['load_before'][0]:.2f} |")
    med = {k: statistics.median(a[k] for a in apps) for k, _, _ in keys}
    lines.append("| **median** | " + " | ".join(f"**{fmt.format(med[k])}**" for k, _, fmt in keys) + " | |")
    met = [("iterations/s", med["iters_per_s_worker"] >= TARGET_ITERS),
           ("redraws/s", med["redraws_per_s_dom"] >= TARGET_REDRAWS),
           ("Pause within 0.5 s", med["pause_latency_s"] <= 0.5)]
    lines += ["", "Targets on the medians: " + ", ".join(f"{n} {'met' if ok else 'not met'}" for n, ok in met)
              + ". The table above details the repeat with the median redraw rate."]
    return lines


def report(args, eng: list[dict], app: dict | None, m: dict, cmd: str,
           apps: list[dict] | None = None) -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# Toy Lab speed",
        "",
        f"Command: `{cmd}`  ",
        f"Date: {now}  ",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}; Python {m['python']}, "
        f"torch {m['torch']}, streamlit {m['streamlit']}, plotly {m['plotly']}, "
        f"headless Chromium ({CHROMIUM}, software rendering).  ",
        f"Setting: toy:{args.dataset}, per-class counts {','.join(map(str, args.counts))} "
        f"({sum(args.counts)} real training points), method {args.method}, LS loss, batch 64, "
        f"width 32, latent 16, snapshot (= one refresh of the view) every {args.speed} "
        f"iterations, 60x60 grid, CPU; the app trains in a {args.runs_in} "
        f"({'a child process of the server, one per run' if args.runs_in == 'process' else 'a thread of the Streamlit server'}).",
        "",
        f"Issue target: >= {TARGET_ITERS:.0f} full iterations/s while the page redraws >= "
        f"{TARGET_REDRAWS:.0f} times/s, with 2 CPU threads.",
        "",
        "## Engine alone (`Trainer.step` loop, no app)",
        "",
        "| torch threads | iterations/s (no snapshots) | iterations/s (snapshot every "
        f"{args.speed}) | one snapshot (ms) |",
        "|---:|---:|---:|---:|",
    ]
    for e in eng:
        lines.append(f"| {e['threads']} | {e['steps_per_s']:.0f} | "
                     f"{e['steps_per_s_with_snapshots']:.0f} | {e['snapshot_ms']:.1f} |")
    if app is not None:
        ok_i = app["iters_per_s_worker"] >= TARGET_ITERS
        ok_r = app["redraws_per_s_dom"] >= TARGET_REDRAWS
        lines += [
            "",
            f"## The running app ({app['seconds']:.1f} s window after {args.warmup:.0f} s of "
            "warm-up)",
            "",
            "| measure | value | target | met |",
            "|---|---:|---:|:---:|",
            f"| iterations/s trained while the page was live (steps from Play to Pause / "
            f"{app['play_seconds']:.0f} s) | {app['iters_per_s_worker']:.0f} | "
            f"{TARGET_ITERS:.0f} | {'yes' if ok_i else 'no'} |",
            f"| iterations/s shown by the page's step counter during the window | "
            f"{app['iters_per_s']:.0f} | | |",
            f"| figure redraws/s in the browser (completed Plotly draws) | "
            f"{app['redraws_per_s_dom']:.1f} | {TARGET_REDRAWS:.0f} | {'yes' if ok_r else 'no'} |",
            f"| Pause pressed while training -> the page shows 'paused' (s) | "
            f"{app['pause_latency_s']:.2f} | 0.5 | {'yes' if app['pause_latency_s'] <= 0.5 else 'no'} |",
            f"| chart mounts/s (a new chart element; 0 when updated in place) | "
            f"{app['mounts_per_s']:.1f} | | |",
            f"| server redraws/s (fragment runs) | {app['redraws_per_s_server']:.1f} | | |",
            f"| distinct server redraws seen in the page, per s | "
            f"{app['server_redraws_seen_in_dom'] / app['seconds']:.1f} | | |",
            f"| Streamlit server process CPU (cores: the page{', and the training thread' if args.runs_in == 'thread' else ''}) | "
            f"{app['server_cpu_share']:.2f} | | |",
            f"| run processes' CPU (cores: training) | "
            f"{app['runs_cpu_share']:.2f} | | |" if args.runs_in == "process" else None,
            f"| Chromium CPU (cores, all its processes) | {app['browser_cpu_share']:.2f} | | |",
            f"| browser main thread in tasks > 50 ms (share of time) | "
            f"{app['browser_main_thread_busy']:.2f} | | |",
            "",
            f"Page's step counter {app['step_start']} -> {app['step_end']} during the window, "
            f"{app['step_pause']} once paused (the counter lags when the browser is busy); "
            f"exceptions on the page: "
            f"{app['exceptions']}; load average (1 min) {app['load_before'][0]:.2f} before, "
            f"{app['load_after'][0]:.2f} after.  ",
            f"Last status line: `{app['status_text']}`  ",
            f"URL query: `{app['query']}`",
            "",
            "Per-second samples (time s, step, server redraw #): "
            + ", ".join(f"({t}, {s}, {r})" for t, s, r in app["samples"]),
        ]
    if apps and len(apps) > 1:
        lines += repeats_section(apps)
    lines += [
        "",
        "## Notes",
        "",
        "* The app's training (`threads=1`), the Streamlit server and Chromium share the "
        "machine's CPUs; the load average above says how many other processes wanted them too. "
        "Numbers from a shared or loaded machine are lower bounds.",
        "* With `--runs-in process` (the app's default, `gamo.worker.ProcessRunHandle`) a run "
        "trains in its own process, so building the page's figures (Python, ~6 ms a "
        "redraw) no longer competes with training for one interpreter lock; with `--runs-in "
        "thread` (the engine's RunHandle in a thread of the server) it does. On 2 cores the "
        "three of them (training, server, Chromium) still compete for CPU time.",
        "* A 2D GAMO iteration is the official code's (M and D on a real and a generated batch, "
        "then G class by class against M and against D), through torch's autograd; the NumPy "
        "kernel of the earlier, unfaithful iteration was retired with it (DESIGN.md).",
        "* Streamlit 1.67 remounts a `st.plotly_chart` whose figure changed: every redraw would "
        "be a full `Plotly.newPlot` (about 140 ms for this figure in headless Chromium, against "
        "70 ms for `Plotly.react` on the mounted chart). The 2D view is therefore the "
        "`app.ui.live_plot` component, which keeps one chart, updates it with `Plotly.react` "
        "and drops figures that arrive while it is still drawing; the curves beside it are "
        "such charts too. The page also draws the "
        "2,000 real points as one static image (they never move during a run), rebuilds the "
        "figure only when a new snapshot arrived, and redraws the curves every 3 s (once a second gave 2.3 redraws/s of the view against 3.2, "
        "and a Pause latency of 1.42 s against 0.45 s, in back-to-back runs).",
        "* While a run trains, the view's title leaves out the step (it is in the status line; a "
        "changing title re-lays out the chart) and Plotly's legend is replaced by a static copy "
        "of the last one drawn (Plotly redraws its legend at every update); both come back when "
        "the run pauses. The view is refreshed every 0.2 s (0.25 s before: 3.2/3.0 redraws/s in "
        "back-to-back runs; a refresh of 0.15 s gave no more redraws and slower Pause answers).",
        "* While a run trains, the generated points' trails are one image drawn on the server "
        "(`app.ui.toylab.trails_image`) instead of a few hundred SVG paths and dots, and the "
        "view is built as plain dicts encoded by `app.ui.figures.figure_json` instead of "
        "Plotly's objects and `to_json`. `python bench/toy_view_draw.py` "
        "(`bench/results/toy_view_draw.md`): a `Plotly.react` of the view in headless Chromium "
        "77 -> 41 ms (paint 17 -> 8 ms), the figure's JSON on the server 27 -> 6 ms (2 ms "
        "of dicts, 4 of painting the trails). Back to back with 2 repeats each, before/after: 298/327 vs "
        "283/287 iterations/s and 3.1/3.0 vs 4.5/4.1 redraws/s for the trails image alone (the "
        "browser then redraws more often and takes the CPU training had); the dict figures "
        "gave the training that time back (this file's repeats).",
        "* Streamlit's default `runner.postScriptGC = true` runs a full `gc.collect(2)` after "
        "every script run, fragment runs included: with torch, plotly and pandas loaded that "
        "took most of a core and starved the training worker (4x fewer iterations). The Toy "
        "Lab page turns it off for its server, and the project's `.streamlit/config.toml` says so.",
        "* While a run trains, the numbers on D's contours are not drawn (placing them was ~15% "
        "of the browser's time); they come back when the run is paused.",
        "* `torch.set_num_threads(2)` for these tiny networks is catastrophically slow when the "
        "two cores are already busy (intra-op threads wait on each other); one thread is the "
        "right choice for the worker.",
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window on the app")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--engine-seconds", type=float, default=5.0)
    ap.add_argument("--dataset", default="moons")
    ap.add_argument("--counts", type=lambda s: [int(v) for v in s.split(",")], default=[1900, 100])
    ap.add_argument("--method", default="gamo")
    ap.add_argument("--speed", type=int, default=25, help="iterations per refresh (snapshot)")
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--engine-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--skip-app", action="store_true", help="only the engine measurement")
    ap.add_argument("--repeats", type=int, default=3,
                    help="app measurements, each with a fresh server and browser (the machine's "
                         "speed varies from one to the next); targets are judged on the medians")
    ap.add_argument("--runs-in", choices=("process", "thread"), default="process",
                    help="where the app trains (GAMO_RUNS_IN): its own process (default) or a thread")
    ap.add_argument("--screenshot", default="", help="save a screenshot of the page at the end")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "toy_lab_speed.md"),
                    help="Markdown results ('-' prints only)")
    args = ap.parse_args(argv)
    if args.engine_only:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(engine_only(args)))
        return
    cmd = "python bench/toy_lab_speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    eng = [run_engine(args, t) for t in (1, 2)]
    for e in eng:
        print(f"engine, {e['threads']} thread(s): {e['steps_per_s']:.0f} it/s, "
              f"{e['steps_per_s_with_snapshots']:.0f} it/s with snapshots, "
              f"snapshot {e['snapshot_ms']:.1f} ms", flush=True)
    apps = []
    for _ in range(0 if args.skip_app else args.repeats):
        app = run_app(args)
        apps.append(app)
        print(f"app: {app['iters_per_s_worker']:.0f} it/s trained ({app['iters_per_s']:.0f} it/s "
              f"on the page's counter), {app['redraws_per_s_dom']:.1f} redraws/s "
              f"(DOM), {app['redraws_per_s_server']:.1f} server redraws/s, Pause "
              f"{app['pause_latency_s']:.2f} s, load "
              f"{app['load_before'][0]:.2f}->{app['load_after'][0]:.2f}", flush=True)
    # the detailed table: the repeat with the median redraw rate
    app = sorted(apps, key=lambda a: a["redraws_per_s_dom"])[len(apps) // 2] if apps else None
    text = report(args, eng, app, machine(), cmd.strip(), apps)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
