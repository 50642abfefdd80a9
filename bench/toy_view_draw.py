"""The Toy Lab's 2D view, one redraw taken apart: server-side build and browser-side draw.

``bench/toy_lab_speed.py`` measures the whole running app. This script isolates the view's two
costs for the figure a training run shows (GAMO on toy:moons, 1900/100 points, the page's
defaults, snapshots 40-59 of a fresh run):

1. **Server**: building the figure's JSON for one snapshot, with Plotly's objects
   (``toy_view(...)`` then ``plotly.io.to_json``) and as plain dicts (``toy_view(...,
   as_dict=True)`` then ``figure_json``, what the page does), each with the trails as SVG traces
   and as one image (``trails_as_image``, what the page does while a run trains).
2. **Browser**: headless Chromium draws the first figure with ``Plotly.newPlot`` and then each
   next one with ``Plotly.react`` (what the page's component does); per figure, the median time
   of ``Plotly.react`` and of the paint that follows (to the next animation frame), for the
   trails as SVG traces and as an image.

Usage::

    python bench/toy_view_draw.py                     # writes bench/results/toy_view_draw.md
    python bench/toy_view_draw.py --out -             # print only
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import command, git_rev, machine  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

DRAW_JS = """
async (strs) => {
  const div = document.getElementById('p');
  Plotly.purge(div);
  let f = JSON.parse(strs[0]);
  await Plotly.newPlot(div, f.data, f.layout, {});
  const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
  await frame();
  const react = [], paint = [];
  for (let rep = 0; rep < 4; rep++) for (let i = 1; i < strs.length; i++) {
    f = JSON.parse(strs[i]);
    const t1 = performance.now();
    await Plotly.react(div, f.data, f.layout, {});
    const t2 = performance.now();
    await frame();
    react.push(t2 - t1); paint.push(performance.now() - t2);
  }
  const med = (a) => { a.sort((x, y) => x - y); return a[a.length >> 1]; };
  return {react: med(react), paint: med(paint)};
}
"""


def snapshots(n: int):
    from app.ui import toylab as tl
    from gamo.data import load_dataset
    from gamo.train import train

    s = dataclasses.replace(tl.DEFAULTS, dataset="moons", counts=(1900, 100), method="gamo", batch=64)
    cfg = tl.build_config(s)
    data = load_dataset(cfg.data)
    return s, data, list(itertools.islice(train(cfg, data), n))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "toy_view_draw.md"))
    args = ap.parse_args(argv)

    import plotly
    import plotly.io as pio
    from playwright.sync_api import sync_playwright

    from app.ui import toylab as tl
    from app.ui.figures import figure_json

    s, data, snaps = snapshots(60)
    hulls = tl.minority_hulls(data.x_train, data.y_train)
    xr, yr = tl.axis_ranges(data.x_train, data.x_test)
    real = tl.real_points_image(data.x_train, data.y_train, xr, yr, n_classes=data.n_classes)

    def build(k: int, as_image: bool, as_dict: bool) -> str:
        fig = tl.toy_view(snaps[k], data.x_train, data.y_train, hulls=hulls, x_range=xr, y_range=yr,
                          trails=tl.trail_positions(snaps[:k + 1]), show_d=True, d_class=1, title="GAMO",
                          height=600, real_image=real, contour_labels=False, trails_as_image=as_image,
                          trails_legend=True, as_dict=as_dict)
        if as_dict:
            fig["layout"]["showlegend"] = False
            return figure_json(fig)
        fig.layout.showlegend = False
        return pio.to_json(fig, validate=False)

    ks = range(40, 60)
    server, specs = {}, {}
    for as_image in (False, True):
        for as_dict in (False, True):
            for k in ks:                     # warm-up
                build(k, as_image, as_dict)
            t0 = time.perf_counter()
            out = [build(k, as_image, as_dict) for k in ks]
            server[(as_image, as_dict)] = (time.perf_counter() - t0) / len(ks) * 1000
            if as_dict:
                specs[as_image] = out

    js = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    browser: dict[bool, list[dict]] = {False: [], True: []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1000, "height": 700})
        page.set_content("<html><body><div id=p style='width:900px;height:600px'></div></body></html>")
        page.add_script_tag(path=str(js))
        for _ in range(3):                   # alternate, 3 rounds
            for as_image in (False, True):
                browser[as_image].append(page.evaluate(DRAW_JS, specs[as_image]))
        b.close()

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    m = machine()
    lines = [
        "# The Toy Lab's 2D view: one redraw, server and browser", "",
        f"Command: `{command()}` (commit {git_rev()})  ",
        f"Machine: {m}; plotly {plotly.__version__}, headless Chromium ({CHROMIUM}, software rendering).  ",
        f"Figure: GAMO on toy:moons, per-class counts 1900,100, the page's defaults; snapshots "
        f"{ks.start}-{ks.stop - 1} of a fresh run, drawn as while a run trains (no legend, no contour "
        "labels, the real points as one image).", "",
        "## Server: the figure's JSON, ms per snapshot (mean of 20)", "",
        "| trails | Plotly objects + `to_json` | plain dicts + `figure_json` |", "|---|---:|---:|",
    ]
    for as_image, name in ((False, "SVG traces"), (True, "one image (`trails_image`)")):
        lines.append(f"| {name} | {server[(as_image, False)]:.1f} | {server[(as_image, True)]:.1f} |")
    lines += ["", "## Browser: `Plotly.react` of the next figure, ms (median of 76 redraws, "
              "per round; 3 alternating rounds)", "",
              "| trails | react, each round | paint, each round | JSON size (KB) |", "|---|---|---|---:|"]
    for as_image, name in ((False, "SVG traces"), (True, "one image")):
        rows = browser[as_image]
        react = " / ".join(f"{r['react']:.1f}" for r in rows)
        paint = " / ".join(f"{r['paint']:.1f}" for r in rows)
        lines.append(f"| {name} | {react} | {paint} | {len(specs[as_image][0]) / 1000:.0f} |")
    lines += ["", f"Medians: react {med(browser[False], 'react'):.1f} -> {med(browser[True], 'react'):.1f} ms, "
              f"paint {med(browser[False], 'paint'):.1f} -> {med(browser[True], 'paint'):.1f} ms "
              "(SVG traces -> image)."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
