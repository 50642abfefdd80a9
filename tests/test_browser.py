"""The running app in headless Chromium: Home -> Toy Lab -> Play, and the points move.

Starts ``streamlit run app/Home.py`` on a free port, opens the landing page, follows its link to
the Toy Lab, presses Play and checks that the step counter the page shows goes up, that the
generated points move (the page prints a digest of their positions), and that no exception box
is on the page. Saves a screenshot to a temporary folder (and once to
``bench/results/toy_lab.png`` for the record; set ``GAMO_RECORD_SCREENSHOT=1`` to refresh it).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RECORD = ROOT / "bench" / "results" / "toy_lab.png"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.serve import serve  # noqa: E402  (one way to start and stop the app, shared with the benchmarks)

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)


@contextlib.contextmanager
def _serve(tmp_path: Path, **env_extra: str):
    """``streamlit run app/Home.py`` on a free port with the environment given; its address."""
    with serve(open(tmp_path / "streamlit.log", "w"), env={"GAMO_RUNS_DIR": str(tmp_path / "runs"), **env_extra},
               timeout=30) as (_, port):
        yield f"http://localhost:{port}"


@pytest.fixture()
def server(tmp_path):
    with _serve(tmp_path) as url:
        yield url


def _status(page) -> dict:
    el = page.locator("#toylab-status-0").first
    return {k: el.get_attribute(f"data-{k}") for k in ("step", "digest", "state", "redraw")}


def test_toy_lab_plays_in_chromium(server, tmp_path) -> None:
    t_start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1500})
            page.goto(server + "/", wait_until="domcontentloaded")
            # Home links the page in one click
            link = page.locator('[data-testid="stPageLink"] a', has_text="Toy Lab").first
            link.wait_for(timeout=30_000)
            link.click()
            page.wait_for_selector("#toylab-status-0", timeout=40_000)
            assert "/Toy_Lab" in page.url and "method=gamo" in page.url  # settings in the URL
            before = _status(page)
            assert before["state"] == "paused" and int(before["step"]) == 0

            page.locator(".st-key-tl_play button").click()
            deadline = time.monotonic() + 20
            now = before
            while time.monotonic() < deadline:
                now = _status(page)
                if int(now["step"] or 0) >= 40 and now["digest"] != before["digest"]:
                    break
                page.wait_for_timeout(250)
            assert int(now["step"]) > int(before["step"]), now
            assert now["digest"] != before["digest"], "the generated points did not move"
            assert now["state"] == "running"
            assert page.locator('[data-testid="stException"]').count() == 0
            # while it trains, the chart's legend is a static copy (Plotly's own is not redrawn)
            view = page.frame_locator('[class*="st-key-tl_fig_0_"] iframe')
            copy = view.locator("#legend-copy")
            copy.locator("g.legend").wait_for(state="attached", timeout=10_000)
            assert copy.evaluate("c => getComputedStyle(c).display") == "block"
            assert copy.evaluate("c => c.querySelector('g.legend').getBoundingClientRect().width") > 100
            assert "class 1 (minority) real" in copy.evaluate("c => c.textContent")
            assert view.locator(".js-plotly-plot g.legend").count() == 0
            # the 2D view is the live_plot component: one chart updated in place while it trains
            draws = page.evaluate("() => document.querySelector("
                                  "'[class*=\"st-key-tl_fig_0_\"] iframe').contentWindow.gamoLivePlot.draws")
            assert draws >= 2, draws          # updated while it trained, not drawn once
            # a narrower window while it trains: the legend is drawn and copied again, to fit
            frame = "document.querySelector('[class*=\"st-key-tl_fig_0_\"] iframe').contentWindow"
            saves = page.evaluate(f"() => {frame}.gamoLivePlot.legendSaves")
            old_width = float(copy.evaluate("c => c.getAttribute('width')"))
            page.set_viewport_size({"width": 1100, "height": 1500})
            page.wait_for_function(f"() => {frame}.gamoLivePlot.legendSaves > {saves}", timeout=10_000)
            page.wait_for_function(f"() => {frame}.document.getElementById('legend-copy').style.display"
                                   " === 'block'", timeout=10_000)
            new_width = float(copy.evaluate("c => c.getAttribute('width')"))
            chart_width = page.evaluate(f"() => {frame}.document.getElementById('plot')._fullLayout.width")
            assert new_width < old_width and new_width == pytest.approx(chart_width), (old_width, new_width)
            assert view.locator(".js-plotly-plot g.legend").count() == 0

            page.wait_for_timeout(1500)
            page.locator(".st-key-tl_pause button").click()
            page.wait_for_function(
                "() => document.querySelector('#toylab-status-0')?.dataset.state === 'paused'",
                timeout=10_000,
            )
            assert page.locator('[data-testid="stException"]').count() == 0

            # a person should see the picture
            view.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=10_000)
            # paused: Plotly's own (clickable) legend is back and the copy is gone
            view.locator(".js-plotly-plot g.legend").first.wait_for(timeout=10_000)
            assert copy.evaluate("c => getComputedStyle(c).display") == "none"
            assert view.locator("g.scatterlayer g.trace.scatter").count() >= 3
            # the toolbar offers a PNG, and nothing that uploads the chart (Plotly Cloud)
            assert view.locator('.modebar-btn[data-title="Download plot as a PNG"]').count() == 1
            assert view.locator('.modebar-btn[data-title="Share chart..."]').count() == 0
            page.wait_for_timeout(1500)
            shot = tmp_path / "toy_lab.png"
            page.screenshot(path=str(shot))
            if not RECORD.exists() or os.environ.get("GAMO_RECORD_SCREENSHOT") == "1":
                RECORD.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, RECORD)

            # clicking a generated point (the last trace) picks it: its convex parents are listed
            view.locator("g.scatterlayer g.trace.scatter").last.locator(".points path").nth(2).click(force=True)
            page.get_by_text("these are its heaviest parents").first.wait_for(timeout=15_000)
            assert page.locator("table", has_text="parent (training row)").count() == 1
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert time.monotonic() - t_start < 90


def _il_status(page) -> dict:
    el = page.locator("#imagelab-status-0").first
    return {k: el.get_attribute(f"data-{k}") for k in ("step", "digest", "state", "map-step")}


def test_image_lab_plays_and_a_click_audits_a_point(server) -> None:
    """The Image Lab in Chromium: Play moves the generated points on the map (the map's step and
    digest change while the real points' layout stays), and clicking a generated point selects
    it for the audit panel, which shows its image."""
    t_start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 2600})
            page.goto(server + "/Image_Lab", wait_until="domcontentloaded")
            page.wait_for_selector("#imagelab-status-0", timeout=60_000)
            assert "data=digits" in page.url
            before = _il_status(page)
            assert before["state"] == "paused" and before["map-step"] == "0"
            page.locator(".st-key-il_play button").first.click()
            deadline = time.monotonic() + 30
            now = before
            while time.monotonic() < deadline:
                now = _il_status(page)
                if int(now["map-step"] or 0) >= 20 and now["digest"] != before["digest"]:
                    break
                page.wait_for_timeout(250)
            assert int(now["map-step"]) > 0 and now["digest"] != before["digest"], now
            page.locator(".st-key-il_pause button").first.click()
            page.wait_for_function(
                "() => document.querySelector('#imagelab-status-0')?.dataset.state === 'paused'",
                timeout=15_000)
            page.wait_for_timeout(1500)
            assert page.locator('[data-testid="stException"]').count() == 0

            # click a generated point on the map (a WebGL trace: click at its pixel position)
            sel = '[class*="st-key-il_map_0_"] iframe'
            box = page.locator(sel).bounding_box()
            # every generated point's pixel position; near-copies of one real member sit on top of
            # each other, so a click may select any point drawn there
            xs, ys, cd = page.evaluate("""(s) => {
                const gd = document.querySelector(s).contentWindow.document.getElementById('plot');
                const i = gd._fullData.findIndex(t => t.meta === 'generated');
                const t = gd._fullData[i], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                return [Array.from(t.x).map(v => xa.l2p(v) + xa._offset),
                        Array.from(t.y).map(v => ya.l2p(v) + ya._offset), Array.from(t.customdata)]; }""", sel)
            shown = re.search(r"generated #(\d+) \(the sample itself\)", page.inner_text("body"))
            default = int(shown.group(1)) if shown else None

            def drawn_at(j):
                return [int(r) for r, u, v in zip(cd, xs, ys) if ((u - xs[j]) ** 2 + (v - ys[j]) ** 2) ** 0.5 < 6]
            # a point whose spot does not hold the sample the panel shows before the click
            j = next(j for j in range(len(cd)) if default not in drawn_at(j))
            rows = drawn_at(j)
            page.mouse.move(box["x"] + xs[j], box["y"] + ys[j])   # plotly picks a WebGL point on hover first
            page.wait_for_timeout(700)
            # hovering it shows its image beside the cursor (the sample itself: a data: URI)
            tip = page.frame_locator(sel).locator("#tip-img")
            tip.wait_for(state="visible", timeout=5_000)
            assert tip.get_attribute("src").startswith("data:image/png")
            assert "generated #" in page.frame_locator(sel).locator("#tip-label").inner_text()
            page.mouse.click(box["x"] + xs[j], box["y"] + ys[j])
            # the audit panel now shows that point: the sample itself (pixels) and its parents
            wanted = [f"generated #{r} (the sample itself)" for r in rows]
            until = time.monotonic() + 20
            while not any(w in page.inner_text("body") for w in wanted):
                assert time.monotonic() < until, f"the click did not select any of {rows}"
                page.wait_for_timeout(250)
            page.get_by_text("Convex parents").first.wait_for(timeout=5_000)
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert time.monotonic() - t_start < 120


def test_image_lab_conv_map_is_drawn_before_play(server) -> None:
    """A newcomer opening a convolutional run sees the map (the real points in F's features and
    the generated points) before pressing Play: its layout is fitted in the background and the
    paused page draws it once it is there, not only after Play."""
    from app.ui import imagelab as il

    ok, how = il.dataset_status("fashion-mnist")
    if not ok:
        pytest.skip(how)
    sel = '[class*="st-key-il_map_0_"] iframe'
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1600})
            page.goto(server + "/Image_Lab?data=fashion-mnist&family=conv&max=300",
                      wait_until="domcontentloaded")
            page.wait_for_selector("#imagelab-status-0", timeout=90_000)
            page.wait_for_function(
                "(s) => (document.querySelector(s)?.contentWindow?.gamoLivePlot?.draws || 0) > 0",
                arg=sel, timeout=60_000)
            status = _il_status(page)
            assert status["state"] == "paused" and status["map-step"] == "0", status
            counts = page.evaluate("""(s) => {
                const gd = document.querySelector(s).contentWindow.document.getElementById('plot');
                const n = (m) => gd._fullData.filter(t => t.meta === m).reduce((a, t) => a + t.x.length, 0);
                return [n('real'), n('generated')]; }""", sel)
            assert counts[0] > 100 and counts[1] > 0, counts
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()


# ---------------------------------------------------------------------------------------------
# the Ablation Grid
# ---------------------------------------------------------------------------------------------
GRID_QUERY = "d=digits&n=2&s=0&m=smote,gamo"


@pytest.fixture()
def grid_server(tmp_path, monkeypatch):
    """A server whose committed runs are two tiny digits runs (SMOTE and GAMO, 2 epochs, seed 0)
    with their figure files, measured by a quickly trained reference classifier."""
    import torch

    from app.ui import ablation as ab
    from gamo import figure4
    from gamo.cli import execute_run
    from gamo.config import DataConfig
    from gamo.reference import train_reference

    monkeypatch.setenv("GAMO_CACHE", str(tmp_path / "cache"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = train_reference(DataConfig(dataset="digits"), epochs=2)
        s = ab.GridSettings(data="digits", seeds=(0,), methods="smote,gamo", length=2)
        for m in ("smote", "gamo"):
            run = tmp_path / "bench" / ab.store_folder(s) / f"{m}-seed0"
            execute_run(ab.cell_config(s, m, 0), run)
            figure4.write_run_files(run, reference=ref, n_claims=8)
    finally:
        torch.set_num_threads(old)
    with _serve(tmp_path, GAMO_BENCH_RUNS=str(tmp_path / "bench"), GAMO_CACHE=str(tmp_path / "cache"),
                GAMO_WARM_UP="0") as url:
        yield url


def test_ablation_grid_opens_and_a_click_enlarges_a_cell(grid_server) -> None:
    """Home links the Ablation Grid; the grid draws a cell image per row and minority class, and
    clicking a cell (SMOTE's, first minority class) shows it enlarged below."""
    t_start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 2200})
            page.goto(grid_server + "/", wait_until="domcontentloaded")
            page.locator('[data-testid="stPageLink"] a', has_text="Ablation Grid").first.wait_for(timeout=30_000)
            page.goto(grid_server + "/Ablation_Grid?" + GRID_QUERY, wait_until="domcontentloaded")
            sel = '[class*="st-key-ag_grid_"] .js-plotly-plot'
            page.wait_for_selector(sel, timeout=60_000)
            page.wait_for_timeout(1000)
            n_images, xs, ys, cd = page.evaluate("""(s) => {
                const gd = document.querySelector(s), r = gd.getBoundingClientRect();
                const t = gd._fullData.find(t => t.meta === 'cells'), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                return [gd._fullLayout.images.length,
                        Array.from(t.x).map(v => r.left + xa.l2p(v) + xa._offset),
                        Array.from(t.y).map(v => r.top + ya.l2p(v) + ya._offset), t.customdata]; }""", sel)
            rows = sorted({c[0] for c in cd})
            classes = sorted({c[1] for c in cd})
            assert rows == ["gamo", "real", "smote"] and n_images == 3 * len(classes)
            body = page.inner_text("body")
            assert "2 ready" in body and "Table 1 for these runs" in body and "claim by claim" in body
            k = next(i for i, c in enumerate(cd) if c[0] == "smote" and c[1] == classes[0])
            page.mouse.move(xs[k], ys[k])
            page.wait_for_timeout(300)
            page.mouse.click(xs[k], ys[k])
            want = f"SMOTE+CN, class {classes[0]}"
            page.get_by_text(want).first.wait_for(timeout=20_000)
            assert page.locator('[class*="st-key-ag_png"] button').count() == 1      # the PNG export
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert time.monotonic() - t_start < 120


# ---------------------------------------------------------------------------------------------
# GAMO2pix
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def gamo2pix_server(tmp_path):
    """A server whose committed runs are one tiny GAMO conv run (2 steps on Fashion-MNIST, a small
    profile) with its decoders trained 2 minibatches a class."""
    import torch

    from gamo import gamo2pix as g2p
    from gamo.cli import main

    run = tmp_path / "bench" / "fashion-mnist-ls" / "gamo-seed0"
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--dataset", "fashion-mnist", "--family", "conv", "--profile",
                     "counts:40,12,10,10,10,10,10,10,10,10", "--steps", "2", "--hidden", "16", "--latent", "8",
                     "--test-per-class", "5", "--val-per-class", "0", "--out", str(run), "--quiet"]) == 0
        g2p.train_decoders(run, epochs=0, min_steps=2)
    finally:
        torch.set_num_threads(old)
    with _serve(tmp_path, GAMO_BENCH_RUNS=str(tmp_path / "bench"), GAMO_WARM_UP="0") as url:
        yield url


def test_gamo2pix_opens_from_home_and_the_slider_picks_a_sample(gamo2pix_server) -> None:
    """Home links GAMO2pix; the page decodes the run's samples into a grid, and moving the sample
    slider shows another sample with its audit."""
    t_start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 2200})
            page.goto(gamo2pix_server + "/", wait_until="domcontentloaded")
            link = page.locator('[data-testid="stPageLink"] a', has_text="GAMO2pix").first
            link.wait_for(timeout=30_000)
            link.click()
            page.get_by_text("Decoded GAMO samples").first.wait_for(timeout=60_000)
            page.get_by_text("Sample #0, decoded").first.wait_for(timeout=30_000)
            page.locator('.st-key-gp_i input[type="range"]').first.focus()
            page.keyboard.press("ArrowRight")
            page.get_by_text("Sample #1, decoded").first.wait_for(timeout=30_000)
            page.wait_for_function("document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 6",
                                   timeout=30_000)     # the grids, the sample, its parents, the strips
            body = page.inner_text("body")
            assert "Convex parents" in body and "Reconstructions of real images" in body
            assert "Audit live in the Image Lab" in body
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert time.monotonic() - t_start < 90
