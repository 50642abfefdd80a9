"""Image Lab speed: how often the live map redraws while a run trains, on the running app.

Issue 14's targets: "on a digits run the map redraws at least 2 times a second while training;
on a Fashion-MNIST conv run at least once a second, with keyframes refitted in the background".

What is measured
----------------
``streamlit run app/Home.py`` on a free port; headless Chromium (Debian's ``/usr/bin/chromium``)
opens ``/Image_Lab?<settings>`` for each case, presses Play, waits ``--warmup`` seconds, then
watches the page for the case's window:

* *map redraws/s*: completed ``Plotly.react`` draws of the map in the browser. The map is the
  ``app.ui.live_plot`` component (an iframe under ``.st-key-il_map_0_<run>``) that counts the
  draws it finished in ``window.gamoLivePlot.draws``; a page script polls it every 10 ms (a new
  iframe is a new mount and its count is added on). Also counted: the distinct ``data-map-step``
  values of the status line ``#imagelab-status-0`` (the snapshot step the map shows), i.e. map
  redraws that showed a new state of training;
* *iterations/s*: the status line's ``data-step`` (step of the latest snapshot) from Play to
  Pause over that wall time (read once the paused page has caught up), and its progress during
  the window;
* *keyframes*: the distinct ``data-keyframe`` values the status line showed during the window
  (a keyframe is a refit of the map's layout; for conv runs on F's features, refitted in the
  background when G's phase starts on F's new features);
* *the map before Play*: whether the paused page draws its map (real and generated points) by
  itself, waited for up to a minute after the status line appears;
* conv runs: a window in F's phase (where the run starts; G, M and D wait, so the generated
  points hold still) and, once the run is in G's phase with that phase's keyframe on screen
  (``data-phase``, ``data-keyframe``), a window there;
* *Pause latency*: Pause is clicked from inside the page and timed there until the status line
  reads ``data-state="paused"``.

Both cases run on one server, one after another (the first is paused before the second starts).
Helpers (free port, CPU time of processes, Chromium path and flags) come from
``bench/toy_lab_speed.py``; the command, machine and git revision from ``bench/common.py``.

Usage::

    python bench/image_lab_speed.py                 # writes bench/results/image_lab_speed.md
    python bench/image_lab_speed.py --digits-seconds 10 --fashion-seconds 20 --g-phase-seconds 20 --out -
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import serve  # noqa: E402
from bench.common import git_rev, machine  # noqa: E402
from bench.toy_lab_speed import (  # noqa: E402
    pause_js,
    CHROMIUM, CHROMIUM_ARGS, _browser_cpu_seconds, _cpu_seconds, _descendants_cpu_seconds)

STATUS = "#imagelab-status-0"
MAP_IFRAME = '[class*="st-key-il_map_0_"] iframe'

INSTRUMENT_JS = """
() => {
  if (window.__ilTimer) clearInterval(window.__ilTimer);
  window.__il = {draws: 0, mounts: 0, mapSteps: new Set(), keyframes: new Set(),
                 redraws: new Set(), longtask_ms: 0};
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__il.longtask_ms += e.duration;
    }).observe({type: 'longtask'});
  } catch (e) { window.__il.longtask_ms = -1; }
  let last = null, base = 0, done = 0;
  const poll = () => {
    const f = document.querySelector('%s');
    const lp = f && f.contentWindow && f.contentWindow.gamoLivePlot;
    if (lp) {
      if (f !== last) { done = window.__il.draws; last = f; base = lp.draws; window.__il.mounts += 1; }
      window.__il.draws = done + (lp.draws - base);
    }
    const st = document.querySelector('%s');
    if (st) {
      window.__il.mapSteps.add(st.dataset.mapStep);
      window.__il.keyframes.add(st.dataset.keyframe);
      window.__il.redraws.add(st.dataset.redraw);
    }
  };
  poll();
  window.__ilTimer = setInterval(poll, 10);
  return true;
}
""" % (MAP_IFRAME, STATUS)

READ_JS = """() => ({draws: window.__il.draws, mounts: window.__il.mounts,
  mapSteps: window.__il.mapSteps.size, keyframes: Array.from(window.__il.keyframes),
  redraws: window.__il.redraws.size, longtask_ms: window.__il.longtask_ms})"""

PAUSE_JS = pause_js("il_pause", STATUS)


def case_query(**fields) -> str:
    """The Image Lab's URL query for its defaults with ``fields`` changed (app/ui/imagelab.py)."""
    from app.ui import imagelab as il

    s = dataclasses.replace(il.DEFAULTS, **fields)
    return urllib.parse.urlencode(il.settings_to_query(s))


CASES = [
    # name, settings, target redraws/s
    ("digits (dense, PCA map; the page's defaults)", dict(projection="pca"), 2.0, "digits"),
    ("Fashion-MNIST (conv, PCA map)", dict(dataset="fashion-mnist", family="conv", projection="pca"),
     1.0, "fashion"),
]


def start_server(log):
    """The app on a free port, its runs in a fresh temporary folder: (process, port)."""
    return serve.start(log, env={"GAMO_RUNS_DIR": tempfile.mkdtemp(prefix="gamo-bench-il-")})


def _window(page, srv, seconds: float) -> dict:
    """Watch the page for ``seconds``: map draws in the browser, the status line's steps."""
    status = page.locator(STATUS).first

    def read():
        return (time.monotonic(), int(status.get_attribute("data-step")),
                int(status.get_attribute("data-map-step")), status.get_attribute("data-keyframe"),
                status.get_attribute("data-phase"))

    page.evaluate(INSTRUMENT_JS)
    t0, step0, mstep0, kf0, ph0 = read()
    cpu0 = (_cpu_seconds(srv.pid), _descendants_cpu_seconds(srv.pid), _browser_cpu_seconds())
    load0 = os.getloadavg()
    samples = []
    while time.monotonic() - t0 < seconds:
        page.wait_for_timeout(1000)
        samples.append(read())
    t1, step1, mstep1, kf1, ph1 = read()
    cpu1 = (_cpu_seconds(srv.pid), _descendants_cpu_seconds(srv.pid), _browser_cpu_seconds())
    load1 = os.getloadavg()
    js = page.evaluate(READ_JS)
    wall = t1 - t0
    return {
        "seconds": wall, "step_start": step0, "step_end": step1,
        "iters_per_s_window": (step1 - step0) / wall,
        "redraws_per_s": js["draws"] / wall, "mounts": js["mounts"],
        "map_steps_per_s": (js["mapSteps"] - 1) / wall,  # less the step shown at the start
        "map_step_start": mstep0, "map_step_end": mstep1,
        "keyframes": sorted({k for k in js["keyframes"] if k is not None}, key=lambda k: int(k)),
        "keyframe_start": kf0, "keyframe_end": kf1,
        "phases": sorted({p for *_, p in samples + [(t0, step0, mstep0, kf0, ph0)] if p}),
        "server_redraws_per_s": js["redraws"] / wall,
        "server_cpu": (cpu1[0] - cpu0[0]) / wall, "runs_cpu": (cpu1[1] - cpu0[1]) / wall,
        "browser_cpu": (cpu1[2] - cpu0[2]) / wall,
        "browser_busy": js["longtask_ms"] / 1000.0 / wall,
        "load_before": load0, "load_after": load1,
        "samples": [(round(t - t0, 1), s, m, k, p) for t, s, m, k, p in samples],
    }


def measure(browser, port: int, srv, query: str, warmup: float, seconds: float,
            g_phase_seconds: float = 0.0) -> dict:
    """One case: load the page, wait for its map (before Play), Play, the window(s), Pause.

    With ``g_phase_seconds`` (conv runs) the first window is in F's phase (the run starts there)
    and a second one opens once the run is in G's phase with that phase's keyframe drawn.
    """
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    t_load = time.monotonic()
    page.goto(f"http://localhost:{port}/Image_Lab?{query}", wait_until="domcontentloaded")
    page.wait_for_selector(STATUS, timeout=120_000)
    load_s = time.monotonic() - t_load
    status = page.locator(STATUS).first

    def attr(name: str) -> str:
        return status.get_attribute(f"data-{name}")

    # a newcomer should see the map before pressing Play: wait for it (up to a minute)
    drawn_js = "(s) => (document.querySelector(s)?.contentWindow?.gamoLivePlot?.draws || 0) > 0"
    try:
        page.wait_for_function(drawn_js, arg=MAP_IFRAME, timeout=60_000)
        map_before_play, map_before_s = True, time.monotonic() - t_load - load_s
    except Exception:  # noqa: BLE001 - reported as not drawn
        map_before_play, map_before_s = False, float("nan")
    state_before = attr("state")
    step_play = int(attr("step"))
    t_play = time.monotonic()
    page.locator(".st-key-il_play button").first.click()
    page.wait_for_function(f"() => document.querySelector('{STATUS}')?.dataset.state === 'running'",
                           timeout=30_000)
    page.wait_for_timeout(int(warmup * 1000))
    windows = [("F's phase" if g_phase_seconds else "", _window(page, srv, seconds))]
    if g_phase_seconds:
        kf = max(int(k) for k in windows[0][1]["keyframes"] + [attr("keyframe")])
        t_wait = time.monotonic()
        page.wait_for_function(
            f"() => {{ const d = document.querySelector('{STATUS}')?.dataset;"
            f" return d && d.phase === 'gamo' && +d.keyframe > {kf}; }}", timeout=300_000)
        wait_g = time.monotonic() - t_wait
        page.wait_for_timeout(int(warmup * 1000))
        w = _window(page, srv, g_phase_seconds)
        w["waited_s"] = wait_g
        windows.append(("G's phase", w))
    text = status.inner_text()
    t_pause = time.monotonic()
    pause_latency = page.evaluate(PAUSE_JS, 30_000) / 1000.0
    page.wait_for_timeout(1500)
    step_pause = int(attr("step"))
    exceptions = page.locator('[data-testid="stException"]').count()
    page.close()
    return {
        "query": query, "load_s": load_s, "map_before_play": map_before_play,
        "map_before_s": map_before_s, "state_before": state_before, "warmup": warmup,
        "step_pause": step_pause, "iters_per_s": (step_pause - step_play) / (t_pause - t_play),
        "play_seconds": t_pause - t_play, "pause_latency_s": pause_latency, "exceptions": exceptions,
        "status_text": text, "windows": windows,
    }


def report(results: list[tuple], cmd: str, notes: list[str] = ()) -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# Image Lab speed",
        "",
        f"Command: `{cmd}` (git {git_rev()})  ",
        f"Date: {now}  ",
        f"Machine: {machine()}; headless Chromium ({CHROMIUM}, software rendering).  ",
        "Setting: the Image Lab's defaults (exponential profile, ratio 10, GAMO, LS loss, "
        "seed 0, 10 iterations per refresh, PCA map, trails on) with the dataset and family "
        "below; the app trains each run in its own process (CPU).",
        "",
        "Issue 14's targets: the map redraws at least 2 times/s on a digits run and at least "
        "once a second on a Fashion-MNIST conv run, keyframes refitted in the background.",
        "",
        "| run | measure | value | target | met |",
        "|---|---|---:|---:|:---:|",
    ]
    yes = lambda ok: "yes" if ok else "no"  # noqa: E731
    for (name, _, target, _), r in results:
        conv = "fashion" in r["query"]
        lines.append(f"| {name} | map drawn before Play (a paused page: s after the status line) | "
                     + (f"yes ({r['map_before_s']:.1f} s)" if r["map_before_play"] else "no")
                     + " | yes | " + yes(r["map_before_play"]) + " |")
        for wname, w in r["windows"]:
            head = f"| {wname} |" if wname else "| |"
            lines += [
                f"{head} map redraws/s in the browser (completed `Plotly.react`) | "
                f"{w['redraws_per_s']:.2f} | {target:g} | {yes(w['redraws_per_s'] >= target)} |",
                f"| | map redraws/s showing a new step (distinct `data-map-step`) | "
                f"{w['map_steps_per_s']:.2f} | {target:g} | {yes(w['map_steps_per_s'] >= target)} |",
                f"| | iterations/s by the page's step counter in the window | "
                f"{w['iters_per_s_window']:.0f} | | |",
                f"| | ... per core the run's process had (its CPU seconds in the window) | "
                f"{w['iters_per_s_window'] / max(w['runs_cpu'], 1e-9):.0f} | | |",
                f"| | keyframes shown in the window | {len(w['keyframes'])} ({', '.join(w['keyframes'])}) | | |",
            ]
        kfs = sorted({k for _, w in r["windows"] for k in w["keyframes"]}, key=int)
        lines += [
            f"| | iterations/s trained (Play -> Pause, {r['play_seconds']:.0f} s) | "
            f"{r['iters_per_s']:.0f} | | |",
            f"| | snapshots/s the run produced (iterations/s / 10 per refresh: the most new "
            f"steps/s the map can show) | {r['iters_per_s'] / 10:.2f} | | |",
        ]
        if conv:
            lines.append(f"| | keyframes while it trains (Play -> Pause) | {len(kfs)} ({', '.join(kfs)}) | "
                         f"new keyframes while it trains | {yes(len(kfs) > 1)} |")
        lines.append(f"| | Pause -> the page shows 'paused' (s) | {r['pause_latency_s']:.2f} | 0.5 | "
                     f"{yes(r['pause_latency_s'] <= 0.5)} |")
    lines += ["", "## Details", ""]
    for (name, _, _, _), r in results:
        lines += [
            f"### {name}",
            "",
            f"Page load to the status line {r['load_s']:.1f} s; map drawn before Play: "
            + (f"yes, {r['map_before_s']:.1f} s after the status line (state {r['state_before']})"
               if r["map_before_play"] else "no (within 60 s)")
            + f"; {r['step_pause']} steps once paused, {r['play_seconds']:.0f} s after Play. "
            f"Exceptions on the page: {r['exceptions']}.  ",
            f"Last status line: `{r['status_text']}`  ",
            f"URL query: `{r['query']}`",
            "",
        ]
        for wname, w in r["windows"]:
            lines += [
                f"Window{' in ' + wname if wname else ''}: {w['seconds']:.1f} s"
                + (f", opened {w['waited_s']:.0f} s after the first one closed (the run reaching G's "
                   f"phase and its keyframe) and {r['warmup']:.0f} s more" if "waited_s" in w else
                   f", after {r['warmup']:.0f} s of warm-up from Play")
                + f"; phase(s) {', '.join(w['phases']) or '?'}; status line step {w['step_start']} -> "
                f"{w['step_end']}; map step {w['map_step_start']} -> {w['map_step_end']}; keyframe "
                f"{w['keyframe_start']} -> {w['keyframe_end']}; map iframe mounts {w['mounts']} (1: "
                f"updated in place); server fragment runs seen {w['server_redraws_per_s']:.1f}/s.  ",
                f"CPU (cores): Streamlit server {w['server_cpu']:.2f}, run processes "
                f"{w['runs_cpu']:.2f}, Chromium {w['browser_cpu']:.2f}; browser main thread in tasks "
                f"> 50 ms {w['browser_busy']:.0%} of the time. Load average (1, 5, 15 min) "
                f"{', '.join(f'{v:.2f}' for v in w['load_before'])} before the window, "
                f"{', '.join(f'{v:.2f}' for v in w['load_after'])} after.",
                "",
                "Per-second samples (s, step, map step, keyframe, phase): "
                + ", ".join(f"({t}, {s}, {m}, {k}, {p})" for t, s, m, k, p in w["samples"]),
                "",
            ]
    lines += [
        "## Notes",
        "",
        f"* {os.cpu_count()} CPUs shared by the training process, the Streamlit server and "
        "Chromium (software rendering), and by whatever else runs on the machine: the load "
        "averages above say how busy it was. One run per case, so the numbers vary from run to run.",
        "* A completed `Plotly.react` may redraw the same step (a fragment run whose figure "
        "changed for another reason); the distinct `data-map-step` count (less the step shown "
        "when the window opens) is the redraws that showed training move. The chart skips a "
        "figure identical to the one it shows, so a step whose map is unchanged costs no redraw.",
        "* The map can show a new step only when the run has made a snapshot (every 10 "
        "iterations, the page's default): a run training at N iterations/s caps the map at N/10 "
        "new steps/s whatever the page does.",
        "* A conv GAMO epoch is F's phase (F learns its features; G, M and D wait) then G's phase "
        "(F frozen), each one pass over the training set in minibatches (767 iterations here). In "
        "F's phase the generated points hold still in the features G's last phase used, so the map "
        "shows each new step with nothing moved and the chart redraws nothing; in G's phase they "
        "move. A keyframe (the map refitted on F's new features, aligned to the previous one) comes "
        "when G's phase starts.",
        *[f"* {n}" for n in notes],
    ]
    return "\n".join(lines) + "\n"


def _command_without_notes() -> str:
    """The command line, each ``--note`` text shown as ``…`` (the notes are under Notes)."""
    words, note = [], False
    for w in sys.argv[1:]:
        words.append("…" if note else ("--note=…" if w.startswith("--note=") else w))
        note = w == "--note"
    return " ".join(["python", os.path.relpath(sys.argv[0])] + words)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--digits-seconds", type=float, default=15.0)
    ap.add_argument("--fashion-seconds", type=float, default=20.0,
                    help="the Fashion-MNIST conv run's window in F's phase (it starts there)")
    ap.add_argument("--g-phase-seconds", type=float, default=20.0,
                    help="its window in G's phase, once the run is there (0: none)")
    ap.add_argument("--only", choices=("digits", "fashion"), default=None)
    ap.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "image_lab_speed.md"),
                    help="Markdown results ('-' prints only)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    cases = [c for c in CASES if args.only in (None, c[3])]
    log = tempfile.NamedTemporaryFile("w+", prefix="image_lab_speed_", suffix=".log", delete=False)
    srv, port = start_server(log)
    results = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for case in cases:
                name, fields, target, key = case
                secs = args.digits_seconds if key == "digits" else args.fashion_seconds
                g = args.g_phase_seconds if key == "fashion" else 0.0
                r = measure(browser, port, srv, case_query(**fields), args.warmup, secs, g)
                results.append((case, r))
                for wname, w in r["windows"]:
                    print(f"{name} {wname}: {w['redraws_per_s']:.2f} map redraws/s "
                          f"({w['map_steps_per_s']:.2f} new steps/s; target {target:g}), "
                          f"{w['iters_per_s_window']:.0f} it/s, keyframes {w['keyframes']}, load "
                          f"{w['load_before'][0]:.2f}", flush=True)
                print(f"{name}: map before Play {r['map_before_play']} ({r['map_before_s']:.1f} s), "
                      f"{r['iters_per_s']:.0f} it/s Play -> Pause, pause {r['pause_latency_s']:.2f} s",
                      flush=True)
            browser.close()
    finally:
        print(f"server log: {log.name}")
        serve.stop(srv, log)
    text = report(results, _command_without_notes(), args.note)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
