"""The Toy Lab page (AppTest) and its pure helpers (app/ui/toylab.py, app/ui/toylab_runs.py)."""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui import toylab as tl  # noqa: E402
from app.ui import runs_in  # noqa: E402
from app.ui.toylab_runs import (  # noqa: E402
    save_run,
    start_live_run,
    start_watchdog,
    stop_runs,
    wait_for_step,
    wait_idle,
)
from conftest import live_plot_args, no_exception, wait_until as _wait  # noqa: E402  (tests/ is on sys.path under pytest)
from gamo.config import METHODS  # noqa: E402
from gamo.data import load_dataset  # noqa: E402
from gamo.geometry import convex_hull  # noqa: E402
from gamo.snapshot import Generated, Grid, Metrics, Snapshot  # noqa: E402

PAGE = ROOT / "app" / "pages" / "1_Toy_Lab.py"
STATUS = re.compile(r'id="toylab-status-(\d)" data-step="(\d+)" data-digest="(\w+)" data-state="(\w+)"')


# --------------------------------------------------------------------------------------
# AppTest helpers
# --------------------------------------------------------------------------------------
@pytest.fixture()
def app(monkeypatch, tmp_path, page_app):
    """``app(**query)``: a fresh page session; its live runs are stopped afterwards (``page_app``
    in conftest.py). Runs are saved to tmp."""
    monkeypatch.setenv("GAMO_RUNS_DIR", str(tmp_path / "runs"))
    return lambda **query: page_app(PAGE, query, runs_key="tl_runs")


def status(at: AppTest) -> list[dict]:
    """The status line(s) the page shows: step, digest of generated positions, state."""
    out = []
    for m in at.markdown:
        hit = STATUS.search(m.value)
        if hit:
            out.append(dict(run=int(hit.group(1)), step=int(hit.group(2)), digest=hit.group(3),
                            state=hit.group(4)))
    return out


def live_charts(at: AppTest) -> list[dict]:
    """The figures of the page's in-place charts (app.ui.live_plot components), in page order."""
    return [json.loads(a["spec"]) for a in live_plot_args(at)]


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------
def test_defaults_render(app) -> None:
    at = app().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Toy Lab"]
    assert not at.error
    (s,) = status(at)
    assert s["step"] == 0 and s["state"] == "paused" and s["digest"] != "none"
    # every setting is written to the URL
    assert at.query_params["data"] == "moons" and at.query_params["method"] == "gamo"
    assert at.selectbox(key="tl_method").value == "gamo"
    # the student panel and the curves are there
    assert any("GAMO" in i.value for i in at.info)
    # the generator's health of the current snapshot, one row per minority class
    assert any("effective parents" in m.value and "distinct top parents / n" in m.value
               for m in at.markdown)
    # D exists for GAMO: all three per-player buttons are enabled
    assert not at.button(key="tl_step_D").disabled


def test_step_advances_and_moves_points_then_reset_clears(app) -> None:
    at = app().run()
    (s0,) = status(at)
    at.button(key="tl_step").click().run()
    no_exception(at)
    (s1,) = status(at)
    assert s1["step"] == 1 and s1["digest"] != s0["digest"]
    # the 2D view and the curves beside it (losses, scores, G's points), each updated in place
    titles = [(f["layout"].get("title") or {}).get("text", "") for f in live_charts(at)]
    assert len(titles) == 4 and titles[0].endswith("step 1"), titles
    assert "Losses" in titles[1] and len(live_charts(at)[1]["data"]) == 3   # M, D and G
    at.button(key="tl_step_G").click().run()
    (s2,) = status(at)
    assert s2["step"] == 2 and s2["digest"] != s1["digest"]
    assert "G, the generator, just moved" in at.info[0].value
    at.button(key="tl_step_M").click().run()
    (s3,) = status(at)
    # M alone does not move G's points (G's weights are unchanged, the real points are fixed)
    assert s3["step"] == 3 and s3["digest"] == s2["digest"]
    at.button(key="tl_reset").click().run()
    no_exception(at)
    (s4,) = status(at)
    assert s4["step"] == 0 and s4["digest"] == s0["digest"]  # same seed: the same start


@pytest.mark.parametrize("method", tl.TOY_METHODS)
def test_every_method_renders_and_steps(app, method) -> None:
    """A method the page offers starts and steps (no error state is accepted)."""
    at = app(method=method, counts="300,30").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    (s0,) = status(at)
    assert s0["state"] == "paused" and s0["step"] == 0
    at.button(key="tl_step").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    (s1,) = status(at)
    assert s1["step"] == 1 and s1["state"] == "paused"
    assert at.info and "Test recall" in at.info[0].value


def test_only_methods_that_run_on_2d_points_are_offered(app) -> None:
    at = app().run()
    offered = at.selectbox(key="tl_method").options
    assert "Augment+CN" not in offered and len(offered) == len(tl.TOY_METHODS)
    assert set(tl.TOY_METHODS) == set(METHODS) - {"augment"}
    # a link that names it falls back with a warning, and never starts a run that fails
    at = app(method="augment", compare="augment").run()
    no_exception(at)
    text = " ".join(w.value for w in at.warning)
    assert "images only" in text
    assert at.selectbox(key="tl_method").value == tl.DEFAULTS.method
    assert [s["state"] for s in status(at)] == ["paused"] and not at.error


def test_a_run_that_fails_says_so_and_shows_no_spinner(app) -> None:
    # ADASYN refuses well-separated blobs (no minority point has a majority neighbour)
    at = app(data="blobs", counts="300,30", method="adasyn").run()
    no_exception(at)
    (s,) = status(at)
    assert s["state"] == "error"
    text = " ".join(e.value for e in at.error)
    assert "The run stopped with an error" in text and "SMOTE" in text and "Traceback" not in text
    page = " ".join(x.value for x in list(at.info) + list(at.markdown) + list(at.caption))
    assert "Building" not in page and "…" not in " ".join(i.value for i in at.info)
    assert any("could not be trained on this data" in i.value for i in at.info)


def test_play_then_pause(app) -> None:
    at = app().run()
    at.button(key="tl_play").click().run()
    no_exception(at)
    assert status(at)[0]["state"] == "running"
    at.button(key="tl_pause").click().run()
    assert status(at)[0]["state"] == "paused"


def test_minority_of_one_point_shows_error_not_exception(app) -> None:
    at = app(counts="1000,1").run()
    no_exception(at)
    assert at.error, "expected an st.error"
    text = " ".join(e.value for e in at.error)
    assert "at least 2" in text
    assert not status(at)  # nothing is trained
    # fixing it in the sidebar recovers
    at.text_input(key="tl_counts").set_value("1000,40").run()
    no_exception(at)
    assert not at.error and status(at)[0]["step"] == 0


def test_unparsable_counts_in_the_sidebar(app) -> None:
    at = app().run()
    at.text_input(key="tl_counts").set_value("1000,abc").run()
    no_exception(at)
    assert any("not a number" in e.value for e in at.error)


def test_query_params_prefill_widgets(app) -> None:
    at = app(data="circles", method="baseline", loss="ce", noise="0.3", lr_g="0.002",
             counts="800,40", speed="50", seed="3", width="64").run()
    no_exception(at)
    assert at.selectbox(key="tl_dataset").value == "circles"
    assert at.selectbox(key="tl_method").value == "baseline"
    assert at.radio(key="tl_loss").value == "ce"
    assert at.slider(key="tl_noise").value == pytest.approx(0.3)
    assert at.select_slider(key="tl_lr_g").value == pytest.approx(0.002)
    assert at.text_input(key="tl_counts").value == "800,40"
    assert at.select_slider(key="tl_speed").value == 50
    assert at.number_input(key="tl_seed").value == 3
    assert at.select_slider(key="tl_width").value == 64
    # Baseline CN has only M
    assert at.button(key="tl_step_D").disabled and at.button(key="tl_step_G").disabled
    assert not at.warning


def test_bad_query_params_fall_back_with_a_warning(app) -> None:
    at = app(method="bogus", noise="9", data="moons").run()
    no_exception(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "method" in warnings and "noise" in warnings
    assert at.selectbox(key="tl_method").value == tl.DEFAULTS.method
    assert at.slider(key="tl_noise").value == pytest.approx(tl.DEFAULTS.noise)


def test_compare_mode_runs_two_methods(app) -> None:
    at = app(compare="baseline").run()
    no_exception(at)
    runs = status(at)
    assert [r["run"] for r in runs] == [0, 1]
    at.button(key="tl_step").click().run()
    assert [r["step"] for r in status(at)] == [1, 1]
    # G exists only in GAMO: stepping G moves only the GAMO run
    at.button(key="tl_step_G").click().run()
    assert [r["step"] for r in status(at)] == [2, 1]


def test_figure1_preset_loads_nonconvex_gamo_vs_gamo_no_d(app) -> None:
    at = app().run()
    no_exception(at)
    at.button(key="tl_fig1").click().run()
    no_exception(at)
    assert at.selectbox(key="tl_dataset").value == "nonconvex"
    assert at.selectbox(key="tl_method").value == "gamo"
    assert at.multiselect(key="tl_compare").value == ["gamo_no_d"]
    assert at.radio(key="tl_loss").value == "ce"
    runs = status(at)
    assert [r["run"] for r in runs] == [0, 1] and all(r["step"] == 0 for r in runs)
    assert at.session_state.tl_settings == tl.FIGURE1
    assert "Figure 1" in " ".join(i.value for i in at.info)


def test_live_learning_rate_does_not_reset(app) -> None:
    at = app().run()
    at.button(key="tl_step").click().run()
    run_id = at.session_state["tl_runs"][0].run_id
    at.select_slider(key="tl_lr_g").set_value(2e-3).run()
    no_exception(at)
    r = at.session_state["tl_runs"][0]
    assert r.run_id == run_id and status(at)[0]["step"] == 1
    assert r.applied["lr_g"] == pytest.approx(2e-3)
    assert {"step": 1, "set": "lr_g", "value": 2e-3} in r.events
    at.selectbox(key="tl_dataset").set_value("circles").run()
    assert at.session_state["tl_runs"][0].run_id != run_id  # data change: a new run


def test_save_from_the_page(app, tmp_path) -> None:
    at = app().run()
    at.button(key="tl_step").click().run()
    at.text_input(key="tl_run_name").set_value("t1").run()
    at.button(key="tl_save").click().run()
    no_exception(at)
    assert at.success, [e.value for e in at.error]
    out = tmp_path / "runs" / "t1"
    assert (out / "config.json").exists() and (out / "checkpoint.pt").exists()


def _runs(at: AppTest) -> list:
    return at.session_state["tl_runs"]




def test_compare_four_methods_in_a_grid_with_method_colours(app) -> None:
    at = app(compare="gamo_no_d,baseline,smote", counts="300,30").run()
    no_exception(at)
    assert [r["run"] for r in status(at)] == [0, 1, 2, 3]
    at.button(key="tl_step").click().run()
    assert [r["step"] for r in status(at)] == [1, 1, 1, 1]
    charts = live_charts(at)
    views, cmp = charts[:4], charts[4]
    # every panel the same size: same height, fixed margins Plotly may not grow, same axes
    assert len({(v["layout"]["height"], json.dumps(v["layout"]["margin"], sort_keys=True)) for v in views}) == 1
    assert all(v["layout"]["margin"]["autoexpand"] is False for v in views)
    assert len({json.dumps([v["layout"]["xaxis"]["range"], v["layout"]["yaxis"]["range"]]) for v in views}) == 1
    # the side-by-side chart: one colour per method (never near-black), legend under the plot
    assert cmp["layout"]["title"]["text"].startswith("Side by side")
    by_method: dict[str, set] = {}
    for tr in cmp["data"]:
        by_method.setdefault(tr["name"].split(":")[0], set()).add(tr["line"]["color"])
    assert len(by_method) == 4 and all(len(c) == 1 for c in by_method.values())
    colors = {label: c.pop() for label, c in by_method.items()}
    assert len(set(colors.values())) == 4
    assert all(int(c[1:3], 16) + int(c[3:5], 16) + int(c[5:7], 16) > 60 for c in colors.values())
    assert cmp["layout"]["legend"]["orientation"] == "h" and cmp["layout"]["legend"]["y"] < 0
    # each panel's title is in its method's colour, as in the chart
    for v in views:
        label = v["layout"]["title"]["text"].split(" — ")[0]
        assert v["layout"]["title"]["font"]["color"] == colors[label]


def test_compared_runs_move_in_lockstep(app) -> None:
    at = app(compare="baseline", counts="300,30", speed="10").run()
    at.button(key="tl_play").click().run()
    no_exception(at)
    for _ in range(4):
        time.sleep(0.6)
        at.run()
        steps = [r["step"] for r in status(at)]
        assert steps[0] == steps[1], steps          # every redraw: the same step on both sides
    assert steps[0] > 0
    runs = _runs(at)
    # the faster run never gets far ahead (two snapshot intervals at most)
    counts = [r.handle.step_count() for r in runs]
    assert abs(counts[0] - counts[1]) <= 2 * 10 + 1, counts
    at.button(key="tl_pause").click().run()
    no_exception(at)
    st = status(at)
    assert [r["state"] for r in st] == ["paused", "paused"]
    assert st[0]["step"] == st[1]["step"] > 0
    assert [r.handle.step_count() for r in runs] == [st[0]["step"]] * 2   # stopped there, both


def test_a_slow_pace_is_that_many_iterations_per_second(app) -> None:
    from app.ui.live_runs import rate

    at = app(pace="5", counts="300,30").run()
    assert at.select_slider(key="tl_pace").value == 5
    run = _runs(at)[0]
    at.button(key="tl_play").click().run()
    t0 = time.monotonic()
    time.sleep(3.0)
    n = run.handle.step_count()
    dt = time.monotonic() - t0
    at.button(key="tl_pause").click().run()
    assert 0.6 * 5 * dt <= n <= 5 * dt + 2, (n, dt)       # about 5 iterations a second
    r = rate(run.handle.history())
    hist = run.handle.history()
    # one snapshot per iteration: a learner sees every step
    assert [s.step for s in hist[-4:]] == list(range(hist[-1].step - 3, hist[-1].step + 1))
    assert rate is not None
    span = hist[-1].elapsed - hist[1].elapsed
    assert 3.0 <= (hist[-1].step - hist[1].step) / span <= 6.5


def test_pause_stops_where_pressed_and_step_is_one_iteration(app) -> None:
    at = app(counts="300,30").run()
    run = _runs(at)[0]
    at.button(key="tl_play").click().run()
    time.sleep(0.8)
    at.button(key="tl_pause").click().run()
    (s,) = status(at)
    assert s["state"] == "paused" and s["step"] > 0
    assert run.handle.step_count() == s["step"]           # the view shows where it stopped
    time.sleep(0.4)
    assert run.handle.step_count() == s["step"]           # and it stays there
    at.button(key="tl_step").click().run()
    (s1,) = status(at)
    assert s1["step"] == s["step"] + 1 and run.handle.step_count() == s["step"] + 1


def test_a_finished_run_says_so_and_can_be_extended(app, monkeypatch) -> None:
    import app.ui.toylab_runs as tr

    monkeypatch.setattr(tl, "STEP_CAP", 60)
    monkeypatch.setattr(tr, "STEP_CAP", 60)
    monkeypatch.setattr(tr, "EXTEND_STEPS", 40)
    at = app(counts="300,30").run()
    run = _runs(at)[0]
    at.button(key="tl_play").click().run()
    _wait(lambda: run.handle.status.state == "finished", what="the cap")
    at.run()
    no_exception(at)
    (s,) = status(at)
    assert s["state"] == "finished" and s["step"] == 60
    assert any("Finished" in x.value and "step cap" in x.value for x in at.success)
    at.button(key="tl_extend").click().run()
    no_exception(at)
    _wait(lambda: run.handle.status.state == "finished" and run.handle.status.step == 100,
          what="the extended cap")
    at.run()
    (s,) = status(at)
    assert s["step"] == 100 and run.handle.status.total == 100


def test_the_timeline_goes_back_and_replays(app) -> None:
    at = app(counts="300,30").run()
    for _ in range(3):
        at.button(key="tl_step").click().run()
    run = _runs(at)[0]
    hist = run.handle.history()
    assert [h.step for h in hist] == [0, 1, 2, 3]
    assert at.select_slider(key="tl_timeline").value == 3
    at.select_slider(key="tl_timeline").set_value(1).run()
    no_exception(at)
    (s,) = status(at)
    assert s["step"] == 1 and s["digest"] == tl.points_digest(hist[1].generated)
    # the explanation and the curves at that step
    assert f"ACSA {hist[1].test.acsa:.2f}" in at.info[0].value
    losses = live_charts(at)[1]
    assert losses["layout"]["shapes"] and losses["layout"]["shapes"][0]["x0"] == 1
    assert any("Showing step 1 of 3" in c.value for c in at.caption)
    at.button(key="tl_replay_btn").click().run()
    seen = [status(at)[0]["step"]]
    for _ in range(4):
        at.run()
        seen.append(status(at)[0]["step"])
    assert seen[:3] == [2, 3, 3] or seen[:2] == [1, 2], seen
    assert not at.session_state["tl_replay"] and seen[-1] == 3
    at.button(key="tl_latest").click().run()
    assert status(at)[0]["step"] == 3


def test_same_data_baseline_reference_in_one_click(app) -> None:
    at = app(counts="300,30").run()
    at.button(key="tl_play").click().run()
    time.sleep(0.6)
    at.button(key="tl_pause").click().run()
    step = status(at)[0]["step"]
    at.button(key="tl_ref_0").click().run()
    no_exception(at)
    refs = at.session_state["tl_refs"]
    (mine,) = refs.values()
    ref = mine[step]
    _wait(lambda: ref.state == "done", timeout=60, what="the reference")
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "id='toylab-ref-0'" in text and f"Baseline CN, same data, {step:,} iteration" in text
    assert ref.result()["steps"] == step and 0 <= ref.result()["acsa"] <= 1


def test_captions_follow_the_class_colours_and_counts_are_plural(app) -> None:
    at = app(data="blobs", counts="300,30,30").run()
    caption = " ".join(c.value for c in at.caption)
    assert "the minorities are red (class 1, 30), green (class 2, 30)" in caption
    assert "Blue is the majority class, red the minority" not in caption
    guide = at.expander[-1].markdown[0].value
    assert "red, green:\n  minorities" in guide and "red: minority" not in guide
    at = app(counts="1000,1").run()
    text = " ".join(e.value for e in at.error)
    assert "only 1 point;" in text and "1 points" not in text


def _plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_long_tail_and_paper_profiles_for_multiclass_toys(app) -> None:
    at = app(data="blobs", classes="5", imb="exp", ir="50", nmax="1000").run()
    no_exception(at)
    assert at.radio(key="tl_imb").value == "exp"
    (bars,) = [f for f in _plotly_specs(at) if f["layout"]["title"]["text"] == "Training points per class"]
    assert list(bars["data"][0]["y"]) == [1000, 376, 141, 53, 20]
    run = _runs(at)[0]
    assert list(np.bincount(run.data.y_train)) == [1000, 376, 141, 53, 20]
    at.radio(key="tl_imb").set_value("paper").run()
    no_exception(at)
    assert at.number_input(key="tl_classes").value == 10
    (bars,) = [f for f in _plotly_specs(at) if f["layout"]["title"]["text"] == "Training points per class"]
    assert list(bars["data"][0]["y"]) == [1000, 500, 250, 188, 125, 88, 50, 25, 15, 10]
    assert list(np.bincount(_runs(at)[0].data.y_train)) == list(bars["data"][0]["y"])
    # two-class toys offer counts and the step ratio only
    at = app(data="moons").run()
    assert at.radio(key="tl_imb").options == ["points per class", "step ratio"]


# --------------------------------------------------------------------------------------
# settings and the URL
# --------------------------------------------------------------------------------------
def test_parse_counts() -> None:
    assert tl.parse_counts("1000, 50") == (1000, 50)
    assert tl.parse_counts("10;5;5") == (10, 5, 5)
    for bad in ("", "1000", "a,b", "10,2.5", "10,-1", "10,99999"):
        with pytest.raises(ValueError):
            tl.parse_counts(bad)


def test_settings_round_trip_through_the_url() -> None:
    s = dataclasses.replace(tl.DEFAULTS, dataset="spirals", n_classes=3, counts=(500, 40, 20),
                            method="gamo_no_d", compare="gamo,baseline,smote", lr_d=5e-4,
                            show_d=True, seed=7, pace=5)
    q = tl.settings_to_query(s)
    assert all(isinstance(v, str) for v in q.values())
    back, warnings = tl.settings_from_query(q)
    assert back == s and warnings == []
    assert tl.settings_from_query({}) == (tl.DEFAULTS, [])


def test_settings_from_query_rejects_bad_values() -> None:
    s, w = tl.settings_from_query({"data": "mnist", "lr_m": "0", "batch": "abc", "seed": "1.5",
                                   "d": "maybe", "counts": "5", "unrelated": "x"})
    assert s == tl.DEFAULTS
    assert len(w) == 6 and all("ignored" in x for x in w)
    # lists (how st.query_params may hand repeated keys) use the last value
    s, w = tl.settings_from_query({"noise": ["0.1", "0.4"]})
    assert s.noise == pytest.approx(0.4) and not w
    # counts imply the number of classes on multi-class toys
    s, w = tl.settings_from_query({"data": "blobs", "counts": "300,30,30"})
    assert s.n_classes == 3 and s.counts == (300, 30, 30) and not w
    # two-class toys ignore classes=...
    s, _ = tl.settings_from_query({"data": "moons", "classes": "4"})
    assert s.n_classes == 2
    s, w = tl.settings_from_query({"compare": "gamo"})
    assert s.compare == "" and w
    s, w = tl.settings_from_query({"compare": "baseline,gamo_no_d,smote,adasyn"})
    assert s.compare == "" and w and "at most 3" in w[0]
    s, w = tl.settings_from_query({"data": "moons", "imb": "exp"})
    assert s.imbalance == "ratio" and w
    s, w = tl.settings_from_query({"data": "blobs", "imb": "paper", "nmax": "500"})
    assert s.n_classes == 10 and not w


def test_build_config_and_profiles() -> None:
    cfg = tl.build_config(tl.DEFAULTS)
    assert cfg.data.dataset == "toy:moons" and cfg.data.profile == "counts:1000,50"
    assert cfg.train.threads == 1 and cfg.train.steps == tl.STEP_CAP
    assert cfg.train.batch_size == 64 and cfg.model.latent == 16
    data = load_dataset(cfg.data)
    assert list(np.bincount(data.y_train)) == [1000, 50]
    ratio = dataclasses.replace(tl.DEFAULTS, dataset="blobs", n_classes=3, imbalance="ratio",
                                n_max=400, ir=8.0)
    assert tl.class_counts(ratio) == (400, 50, 50)
    data = load_dataset(tl.build_config(ratio).data)
    assert list(np.bincount(data.y_train)) == [400, 50, 50]
    assert tl.build_config(tl.DEFAULTS, "baseline").train.method == "baseline"


def test_reset_key_ignores_live_settings() -> None:
    k = tl.reset_key(tl.DEFAULTS)
    for live in ({"lr_g": 5e-3}, {"speed": 5}, {"show_d": False}, {"trails": False}):
        assert tl.reset_key(dataclasses.replace(tl.DEFAULTS, **live)) == k
    for change in ({"noise": 0.1}, {"method": "baseline"}, {"width": 64}, {"compare": "baseline"}):
        assert tl.reset_key(dataclasses.replace(tl.DEFAULTS, **change)) != k


def test_method_players_and_png_button() -> None:
    assert tl.method_players("baseline") == ("M",)
    assert tl.method_players("gamo_no_d") == ("M", "G")
    assert tl.method_players("gamo") == ("M", "D", "G")
    for m in METHODS:  # every engine method has players the page can step
        assert tl.method_players(m)[0] == "M" and set(tl.method_players(m)) <= {"M", "D", "G"}
    assert tl.PLOTLY_CONFIG["displayModeBar"] is True
    assert "toImage" not in tl.PLOTLY_CONFIG["modeBarButtonsToRemove"]
    assert tl.PLOTLY_CONFIG["toImageButtonOptions"]["format"] == "png"


# --------------------------------------------------------------------------------------
# snapshots -> what is drawn
# --------------------------------------------------------------------------------------
SQUARE = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1]], dtype=np.float32)


def _metrics(recall) -> Metrics:
    r = tuple(float(v) for v in recall)
    return Metrics(acsa=float(np.mean(r)), gm=float(np.prod(r) ** (1 / len(r))), accuracy=0.9,
                   recall=r, confusion=np.eye(len(r)))


def _snap(step: int, gen_x=None, losses=None, recall=(0.9, 0.5), grid=False) -> Snapshot:
    gen = None
    if gen_x is not None:
        gx = np.asarray(gen_x, dtype=np.float32)
        m = len(gx)
        gen = Generated(x=gx, y=np.ones(m, np.int64),
                        parent_idx=np.tile(np.array([[10, 11, 12]]), (m, 1)),
                        parent_w=np.tile(np.array([[0.5, 0.3, 0.2]], np.float32), (m, 1)),
                        m_pred=np.array([1] * (m - 1) + [0]), d_real=np.full(m, 0.4, np.float32))
    g = None
    if grid:
        xs, ys = np.linspace(-1, 3, 8, dtype=np.float32), np.linspace(-1, 3, 6, dtype=np.float32)
        gx, gy = np.meshgrid(xs, ys)
        p1 = 1 / (1 + np.exp(-(gx + gy - 2)))
        mp = np.stack([1 - p1, p1], -1)
        g = Grid(xs=xs, ys=ys, m_proba=mp, d_real=mp.copy())
    return Snapshot(step=step, epoch=0.0, losses=losses or {}, test=_metrics(recall), train=None,
                    generated=gen, grid=g, elapsed=0.01 * step)


def _toy_data():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (10, 2)), SQUARE]).astype(np.float32)
    y = np.r_[np.zeros(10, int), np.ones(5, int)]
    return x, y


def test_trail_positions() -> None:
    snaps = [_snap(0), _snap(10, [[0, 0], [1, 1]]), _snap(20, [[0.5, 0], [1, 1.5]]),
             _snap(30, [[1, 0], [1, 2]])]
    tr = tl.trail_positions(snaps, n=10)
    assert tr.shape == (3, 2, 2)
    np.testing.assert_allclose(tr[0], [[0, 0], [1, 1]])   # oldest first
    np.testing.assert_allclose(tr[-1], [[1, 0], [1, 2]])
    assert tl.trail_positions(snaps, n=2).shape == (2, 2, 2)
    assert tl.trail_positions(snaps[:2]) is None


def test_generated_stats_hand_made() -> None:
    hulls = {1: convex_hull(SQUARE)}
    gen = _snap(0, [[1, 1], [0.5, 1], [1, 0.1], [3, 1]]).generated
    st = tl.generated_stats(gen, hulls)
    # distances to the square's edge: 1, 0.5, 0.1 and (outside) 1
    assert st["hull_distance"] == pytest.approx((1 + 0.5 + 0.1 + 1) / 4)
    assert st["inside"] == pytest.approx(0.75)
    assert st["misclassified"] == pytest.approx(0.25)  # the last point: M says class 0
    assert np.isnan(tl.generated_stats(None, hulls)["misclassified"])
    assert tl.real_hull_distance(SQUARE, np.ones(5, int), hulls) == pytest.approx(0.2)


def test_minority_hulls_and_axis_ranges() -> None:
    x, y = _toy_data()
    hulls = tl.minority_hulls(x, y)
    assert list(hulls) == [1] and len(hulls[1]) == 4
    (x0, x1), (y0, y1) = tl.axis_ranges(x)
    assert x0 < x[:, 0].min() and x1 > x[:, 0].max() and y0 < x[:, 1].min() and y1 > x[:, 1].max()


def test_history_series() -> None:
    snaps = [_snap(0), _snap(10, [[1, 1]], {"M": 1.0, "D": 0.5, "G": 2.0}, (0.9, 0.2)),
             _snap(20, [[0.1, 1]], {"M": 0.8, "D": 0.4, "G": 2.5}, (0.8, 0.6))]
    hulls = {1: convex_hull(SQUARE)}
    s = tl.history_series(snaps, lambda sn: tl.generated_stats(sn.generated, hulls))
    assert list(s["steps"]) == [0, 10, 20]
    assert set(s["losses"]) == {"M", "D", "G"} and np.isnan(s["losses"]["M"][0])
    np.testing.assert_allclose(s["recall"][:, 1], [0.5, 0.2, 0.6])
    np.testing.assert_allclose(s["acsa"], [0.7, 0.55, 0.7])
    np.testing.assert_allclose(s["hull_distance"][1:], [1.0, 0.1], atol=1e-6)
    for fig in (tl.loss_chart(s), tl.score_chart(s), tl.generated_chart(s, 0.3)):
        assert len(fig.data) >= 2
    cmp = tl.compare_chart({"A": s, "B": tl.history_series(snaps[:2], None)}, [1])
    assert [t.name for t in cmp.data] == ["A: ACSA", "A: minority recall", "B: ACSA",
                                          "B: minority recall"]
    assert len(cmp.data[2].x) == 3 and np.isnan(cmp.data[2].y[-1])


def test_toy_view_draws_every_layer() -> None:
    x, y = _toy_data()
    hulls = tl.minority_hulls(x, y)
    snaps = [_snap(s, [[1, 1 + 0.1 * s / 10], [0.5, 0.5]], grid=True) for s in (0, 10, 20)]
    fig = tl.toy_view(snaps[-1], x, y, hulls=hulls, x_range=(-3, 4), y_range=(-3, 4),
                      trails=tl.trail_positions(snaps), selected=0, show_d=True, d_class=1)
    names = [t.name or "" for t in fig.data]
    assert "M's predicted class" in names
    assert any(n.startswith("D(x | class 1)") for n in names)
    assert "class 1 convex hull" in names
    assert any("recent path" in n for n in names)
    gen = [t for t in fig.data if t.meta == "generated"]
    assert len(gen) == 1 and "top parents (weight): #10 (0.50)" in gen[0].text[0]
    lines = [t for t in fig.data if t.meta == "parent-line"]
    assert len(lines) == 3
    # parents_x = x_train[parent_idx[selected]], line width follows the weight
    assert (lines[0].x[0], lines[0].y[0]) == pytest.approx(tuple(x[10]))
    assert lines[0].line.width > lines[2].line.width
    assert list(fig.layout.xaxis.range) == [-3, 4] and fig.layout.xaxis.autorange is False
    # D's contours can be hidden, and a run without grid still draws points
    fig2 = tl.toy_view(snaps[-1], x, y, hulls=hulls, x_range=(-3, 4), y_range=(-3, 4),
                       show_d=False, d_class=1)
    assert not any((t.name or "").startswith("D(x") for t in fig2.data)
    fig3 = tl.toy_view(None, x, y, hulls=hulls, x_range=(-3, 4), y_range=(-3, 4))
    assert any("real" in (t.name or "") for t in fig3.data)


def test_generated_table_and_digest() -> None:
    x, _ = _toy_data()
    snap = _snap(30, [[1, 1], [0.5, 0.5]])
    df = tl.generated_table(snap.generated, x, snap.step)
    assert list(df.columns[:7]) == ["step", "point", "class", "x1", "x2", "m_pred", "m_wrong"]
    assert len(df) == 2 and list(df["m_wrong"]) == [False, True]
    assert df.loc[0, "parent1_row"] == 10 and df.loc[0, "parent1_weight"] == pytest.approx(0.5)
    assert (df.loc[0, "parent2_x1"], df.loc[0, "parent2_x2"]) == pytest.approx(tuple(x[11]))
    assert "parent1_row" in df.to_csv(index=False)
    assert tl.generated_table(None, x).empty
    d1 = tl.points_digest(snap.generated)
    assert d1 == tl.points_digest(_snap(40, [[1, 1], [0.5, 0.5]]).generated)
    assert d1 != tl.points_digest(_snap(40, [[1, 1.01], [0.5, 0.5]]).generated)
    assert tl.points_digest(None) == "none"


def test_explain_follows_the_last_mover() -> None:
    hulls = {1: convex_hull(SQUARE)}
    snap = _snap(5, [[1, 1], [0.1, 1]])
    stats = tl.generated_stats(snap.generated, hulls)
    for mover, needle in (("G", "generator, just moved"), ("M", "classifier, just moved"),
                          ("D", "discriminator, just moved"), ("all", "Every iteration")):
        text = tl.explain("gamo", mover, snap, stats, minority=[1], real_distance=0.5)
        assert needle in text
        assert "50%" in text  # M misclassifies one of the two points
        assert "Test recall" in text
    assert "only M" in tl.explain("baseline", "M", _snap(5), None, minority=[1])
    assert "Without D" in tl.explain("gamo_no_d", "G", snap, stats, minority=[1])
    assert tl.last_mover("G", "gamo") == "G"
    assert tl.last_mover("step", "gamo") == "all" and tl.last_mover("step", "baseline") == "M"
    assert tl.last_mover("reset", "gamo") == "none"


# --------------------------------------------------------------------------------------
# live runs and the run store
# --------------------------------------------------------------------------------------
def test_live_run_step_and_save(tmp_path) -> None:
    s = dataclasses.replace(tl.DEFAULTS, counts=(200, 20), speed=5)
    cfg = tl.build_config(s)
    data = load_dataset(cfg.data)
    run = start_live_run(cfg, data, s)
    try:
        assert wait_for_step([run], [0], timeout=20)
        run.handle.step(3)
        assert wait_for_step([run], [3], timeout=20)
        assert wait_idle(run)
        with pytest.raises(ValueError):
            save_run(run, tmp_path, "../escape")
        out = save_run(run, tmp_path, "r1", s)
        for name in ("config.json", "metrics.jsonl", "final.json", "checkpoint.pt", "indices.npz",
                     "data.npz", "samples.npz", "toylab.json", "generated.csv"):
            assert (out / name).exists(), name
        extra = json.loads((out / "toylab.json").read_text())
        assert extra["step"] == 3 and extra["settings"]["counts"] == "200,20"
        lines = (out / "metrics.jsonl").read_text().strip().splitlines()
        assert json.loads(lines[-1])["step"] == 3
        from gamo.runs import RunError, list_runs, load_checkpoint

        assert load_checkpoint(out)["step"] == 3
        assert [r.step for r in list_runs(tmp_path)] == [3]
        with pytest.raises(RunError):
            save_run(run, tmp_path, "r1", s)  # never overwrites
        run.handle.resume()
        with pytest.raises(ValueError, match="pause"):
            save_run(run, tmp_path, "r2", s)
    finally:
        stop_runs([run])


def test_live_runs_train_in_a_process_and_the_watchdog_pauses_then_ends_them(monkeypatch) -> None:
    from gamo.worker import ProcessRunHandle

    assert runs_in() == "process"
    monkeypatch.setenv("GAMO_RUNS_IN", "thread")
    assert runs_in() == "thread"
    monkeypatch.delenv("GAMO_RUNS_IN")
    s = dataclasses.replace(tl.DEFAULTS, counts=(200, 20), speed=5)
    cfg = tl.build_config(s)
    run = start_live_run(cfg, load_dataset(cfg.data), s, paused=False)
    try:
        assert isinstance(run.handle, ProcessRunHandle)
        assert wait_for_step([run], [10], timeout=20)
        run.last_poll -= 10.0                                 # nobody has looked for 10 s
        start_watchdog([run], idle_s=5.0, stop_s=60.0)
        deadline = time.monotonic() + 10
        while not run.events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.handle.status.state == "paused"
        assert run.events and run.events[-1]["set"] == "paused by watchdog"
        run.last_poll -= 60.0                                 # ... and then for over a minute
        deadline = time.monotonic() + 15
        while run.handle.process_alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not run.handle.process_alive and run.handle.status.state == "stopped"
    finally:
        stop_runs([run])


def test_real_points_image_places_points_on_the_axes() -> None:
    import base64
    import io

    from PIL import Image

    x = np.array([[0.0, 0.0], [10.0, 10.0], [5.0, 5.0]])
    y = np.array([0, 0, 1])
    uri = tl.real_points_image(x, y, (0, 10), (0, 10), size=(101, 51), radius=1.5)
    assert uri.startswith("data:image/png;base64,")
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert img.shape == (51, 101, 4)
    # class 1 (red) at the centre, class 0 (blue) in the bottom-left and top-right corners
    r, g, b, a = img[25, 50].astype(int)
    assert a > 150 and r > b
    r, g, b, a = img[50, 0].astype(int)
    assert a > 50 and b > r
    assert img[0, 100, 3] > 50 and img[0, 0, 3] == 0 and img[50, 100, 3] == 0
    # in the view the real traces stay as legend entries and the image lies below
    xd, yd = _toy_data()
    uri = tl.real_points_image(xd, yd, (-3, 4), (-3, 4))
    fig = tl.toy_view(_snap(0, [[1, 1]]), xd, yd, hulls=tl.minority_hulls(xd, yd), x_range=(-3, 4),
                      y_range=(-3, 4), real_image=uri)
    real = [t for t in fig.data if str(t.legendgroup or "").startswith("real")]
    assert len(real) == 2 and all(list(t.x) == [None] for t in real)
    (im,) = fig.layout.images
    assert im.source == uri and im.layer == "below" and (im.x, im.y, im.sizex) == (-3, 4, 7)


def _png(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))


def test_trails_image_paints_the_paths_where_they_are() -> None:
    # one class-1 point walking along y = 5 from x = 1 to x = 9 in 4 snapshots, on a 100 x 100
    # canvas over [0, 10] x [0, 10]; a class-2 point standing still at (5, 1)
    tr = np.zeros((5, 2, 2))
    tr[:, 0, 0], tr[:, 0, 1] = [1, 3, 5, 7, 9], 5
    tr[:, 1] = [5, 1]
    uri, xr, yr = tl.trails_image(tr, np.array([1, 2]), (0, 10), (0, 10), n_classes=3, size=(100, 100))
    img = _png(uri)
    # the image covers only what was painted, placed on the axes accordingly
    assert xr[0] == pytest.approx(1, abs=0.5) and xr[1] == pytest.approx(9, abs=0.5)
    assert yr[0] == pytest.approx(1, abs=0.5) and yr[1] == pytest.approx(5, abs=0.5)
    h, w = img.shape[:2]

    def at(x: float, y: float) -> np.ndarray:      # the pixel under data point (x, y)
        col = int((x - xr[0]) / (xr[1] - xr[0]) * w)
        row = int((yr[1] - y) / (yr[1] - yr[0]) * h)
        return img[min(max(row, 0), h - 1), min(max(col, 0), w - 1)].astype(int)

    c1 = tuple(int(tl.class_colors(3)[1][i:i + 2], 16) for i in (1, 3, 5))
    c2 = tuple(int(tl.class_colors(3)[2][i:i + 2], 16) for i in (1, 3, 5))
    old, new = at(2, 5), at(8, 5)                   # the oldest and the newest segment
    assert old[3] > 0 and new[3] > old[3]           # older = fainter
    assert np.abs(new[:3] - np.array(c1)).max() <= 3
    assert np.abs(at(5, 1)[:3] - np.array(c2)).max() <= 3 and at(5, 1)[3] > 0
    assert at(5, 3)[3] == 0                          # between the two: nothing
    # nothing to draw: a single position, labels that do not match, or only non-finite points
    assert tl.trails_image(tr[:1], np.array([1, 2]), (0, 10), (0, 10), n_classes=3) is None
    assert tl.trails_image(tr, np.array([1]), (0, 10), (0, 10), n_classes=3) is None
    assert tl.trails_image(np.full((3, 1, 2), np.nan), np.array([1]), (0, 10), (0, 10), n_classes=2) is None
    # a NaN position breaks a path, the rest is still drawn
    tr[2, 0] = np.nan
    uri, xr, yr = tl.trails_image(tr, np.array([1, 2]), (0, 10), (0, 10), n_classes=3, size=(100, 100))
    assert _png(uri)[..., 3].max() > 0


def test_toy_view_draws_trails_as_an_image_when_asked() -> None:
    x, y = _toy_data()
    snaps = [_snap(10, [[0, 0], [1, 1]]), _snap(20, [[0.5, 0], [1, 1.5]]), _snap(30, [[1, 0], [1, 2]])]
    tr = tl.trail_positions(snaps)
    real = tl.real_points_image(x, y, (-3, 4), (-3, 4), size=(70, 70))
    kw = dict(hulls=tl.minority_hulls(x, y), x_range=(-3, 4), y_range=(-3, 4), trails=tr,
              real_image=real)
    vec = tl.toy_view(snaps[-1], x, y, **kw)
    paths = [t for t in vec.data if t.legendgroup == "trails"]
    assert paths and sum(len(t.x) for t in paths) > 4 and len(vec.layout.images) == 1
    img = tl.toy_view(snaps[-1], x, y, trails_as_image=True, image_size=(70, 70), **kw)
    paths = [t for t in img.data if t.legendgroup == "trails"]
    assert len(paths) == 1 and list(paths[0].x) == [None]      # the legend entry only
    real_im, trail_im = img.layout.images                        # the trails above the real points
    assert real_im.source == real and trail_im.source.startswith("data:image/png")
    assert trail_im.layer == "below" and -3 <= trail_im.x < trail_im.x + trail_im.sizex <= 4
    # the other layers do not change
    rest = lambda f: [(t.type, t.name) for t in f.data if t.legendgroup != "trails"]  # noqa: E731
    assert rest(img) == rest(vec)
    # the legend is the same either way, and before there are trails when the page asks for it
    legend = lambda f: [(t.name, t.line.color) for t in f.data if t.showlegend is not False]  # noqa: E731
    assert legend(img) == legend(vec) and img.data[-1].meta == "generated"
    early = tl.toy_view(snaps[0], x, y, trails_legend=True, **dict(kw, trails=None))
    assert legend(early) == legend(vec)
    assert not any(t.legendgroup == "trails" for t in tl.toy_view(snaps[0], x, y, **dict(kw, trails=None)).data)


def test_contour_labels_can_be_dropped_while_training() -> None:
    x, y = _toy_data()
    snap = _snap(0, [[1, 1]], grid=True)
    kw = dict(hulls=tl.minority_hulls(x, y), x_range=(-3, 4), y_range=(-3, 4), d_class=1)
    on = [t for t in tl.toy_view(snap, x, y, **kw).data if (t.name or "").startswith("D(")]
    off = [t for t in tl.toy_view(snap, x, y, contour_labels=False, **kw).data
           if (t.name or "").startswith("D(")]
    assert on[0].contours.showlabels is True and off[0].contours.showlabels is False
    assert "0.1, 0.3" in off[0].name


# --------------------------------------------------------------------------------------
# what the text claims, what the picture shows
# --------------------------------------------------------------------------------------
def test_verdict_says_when_a_run_is_worse_than_baseline_and_why() -> None:
    hulls = {1: convex_hull(SQUARE)}
    snap = _snap(3000, [[1, 1], [0.1, 1]], recall=(0.77, 0.93))   # default moons: GAMO, LS
    stats = dict(tl.generated_stats(snap.generated, hulls), bleed=0.6)
    ref = {"acsa": 0.91, "gm": 0.9, "recall": [0.99, 0.83], "steps": 3000}
    text = tl.explain("gamo", "all", snap, stats, minority=[1], reference=ref, loss="ls")
    assert "does worse than Baseline CN on the same data" in text and "0.85 against 0.91" in text
    assert "gives away the majority" in text and "60% of the generated points" in text
    assert "least-squares" in text and "cross-entropy (CE)" in text          # why, and what to change
    # with cross-entropy the advice differs; GAMO\D is told to add D
    assert "Learning rate of G" in tl.verdict("gamo", snap, minority=[1], stats=stats, reference=ref, loss="ce")
    assert "GAMO (with D)" in tl.verdict("gamo_no_d", snap, minority=[1], stats=stats, reference=ref)
    # no reference: a majority given away is still named (and its points' bleed)
    alone = tl.verdict("gamo", snap, minority=[1], stats=stats, loss="ls")
    assert alone and "gives away the majority" in alone and "worse than Baseline" not in alone
    # a good run, a run too young to judge, Baseline CN itself: nothing
    good = _snap(3000, [[1, 1]], recall=(0.97, 0.95))
    assert tl.verdict("gamo", good, minority=[1], stats=dict(stats, bleed=0.05), reference=ref) is None
    assert tl.verdict("gamo", _snap(100, [[1, 1]], recall=(0.5, 0.5)), minority=[1], reference=ref) is None
    assert tl.verdict("baseline", snap, minority=[1], reference=ref) is None
    # collapsed generator: the reason is the collapse
    health = {"1": {"collapsed": True, "n": 2}}
    assert "collapsed" in tl.verdict("gamo", snap, minority=[1], stats=stats, reference=ref, health=health)


def test_explain_never_says_building_after_an_error() -> None:
    assert "Building" in tl.explain("gamo", "none", None, None, state="starting")
    text = tl.explain("adasyn", "none", None, None, state="error")
    assert "could not be trained" in text and "Building" not in text


def test_generated_stats_bleed_counts_points_in_another_class_ground() -> None:
    hulls = {1: convex_hull(SQUARE)}
    gen = _snap(0, [[1, 1], [0.5, 1], [1, 0.1], [3, 1]]).generated
    nearest = lambda pts: np.where(np.asarray(pts)[:, 0] > 2, 0, 1)   # noqa: E731 - class 0 right of x=2
    assert tl.generated_stats(gen, hulls, nearest)["bleed"] == pytest.approx(0.25)
    assert np.isnan(tl.generated_stats(gen, hulls)["bleed"])


def test_words_follow_numbers_and_colours() -> None:
    assert tl.plural(1, "point") == "1 point" and tl.plural(1000, "point") == "1,000 points"
    assert [tl.color_name(k, 4) for k in range(4)] == ["blue", "red", "green", "orange"]
    cap = tl.classes_caption((1000, 50))
    assert cap.startswith("Blue dots are the majority class (1,000 training points), red dots the minority (50)")
    cap = tl.classes_caption((40, 500, 40))
    assert cap.startswith("Red dots are the majority class 1") and "blue (class 0, 40), green (class 2, 40)" in cap


def test_minority_points_are_drawn_on_top_larger_and_outlined() -> None:
    # 2,000 majority points and 2 minority points at the same spot: the minority shows
    x = np.array([[5.0, 5.0]] * 2000 + [[5.0, 5.0], [2.0, 2.0]])
    y = np.array([0] * 2000 + [1, 1])
    img = _png(tl.real_points_image(x, y, (0, 10), (0, 10), size=(101, 101)))
    red = np.array([0xD6, 0x27, 0x28])
    assert np.abs(img[50, 50, :3].astype(int) - red).max() <= 3          # on top of the majority
    # outlined: a dark ring around the minority dot at (2, 2), larger than a majority dot
    row, col = 80, 20
    ring = img[row - 6:row + 7, col - 6:col + 7]
    assert (ring[..., :3].max(axis=-1) < 90).any() and (ring[..., 3] > 200).sum() >= 30
    fig = tl.toy_view(None, x, y, hulls={}, x_range=(0, 10), y_range=(0, 10), real_gl=False)
    real = [t for t in fig.data if str(t.legendgroup or "").startswith("real")]
    assert [t.legendgroup for t in real] == ["real0", "real1"]           # the minority last (on top)
    assert real[1].marker.size > real[0].marker.size and real[1].marker.line.width >= 1


def test_side_charts_keep_their_legends_and_labels_clear() -> None:
    snaps = [_snap(0), _snap(10, [[1, 1]], {"M": 1.0}), _snap(20, [[0.1, 1]], {"M": 0.8})]
    s = tl.history_series(snaps, lambda sn: tl.generated_stats(sn.generated, {1: convex_hull(SQUARE)}))
    fig = tl.generated_chart(s, 0.3)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    (ann,) = fig.layout.annotations
    # the label sits above the line (bottom-anchored, shifted up) on a white box: the line does not cross it
    assert ann.y == pytest.approx(0.3) and ann.yanchor == "bottom" and ann.yshift > 0 and ann.bgcolor
    from app.ui.figures import class_sizes_chart

    bars = class_sizes_chart([1000, 376, 20])
    assert list(bars.data[0].y) == [1000, 376, 20] and list(bars.data[0].text) == ["1,000", "376", "20"]
    assert list(bars.data[0].marker.color) == tl.class_colors(3)
    marked = tl.mark_step(tl.loss_chart(s), 10)
    assert marked.layout.shapes[0].x0 == 10


def test_shown_step_is_the_latest_step_every_run_has() -> None:
    from app.ui.pacer import pace_chunk, shown_step

    a = [_snap(0), _snap(20), _snap(40), _snap(60)]
    b = [_snap(0), _snap(20), _snap(40)]
    assert shown_step([a, b]) == 40 and shown_step([a, b], lockstep=False) is None
    assert shown_step([a, []]) is None
    assert pace_chunk(0, 25) == 25 and pace_chunk(2, 25) == 1 and pace_chunk(100, 25) == 10


def test_a_fresh_server_says_what_is_loading(app, monkeypatch) -> None:
    """A first visit shows a loading message while the page imports PyTorch and the engine
    (seconds on a fresh server, a blank page before), a spinner while the first runs start, and
    neither once the page is there."""
    import streamlit

    import app.ui as ui

    # the engine's import stops the script where it is: the message is already on the page
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "app.ui.toylab", None)
        mp.delattr(ui, "toylab")
        at = app().run()
    assert at.exception and "app.ui.toylab" in at.exception[0].value
    assert [i.value for i in at.info] == ["Loading the Toy Lab: PyTorch and the training engine start "
                                          "once per server (a few seconds)…"]

    spinners: list[str] = []
    shown = streamlit.spinner

    def spinner(text="", *a, **k):
        spinners.append(text)
        return shown(text, *a, **k)
    monkeypatch.setattr(streamlit, "spinner", spinner)
    at = app().run()
    no_exception(at)
    assert status(at) and not any("Loading the Toy Lab" in i.value for i in at.info)
    assert any(t.startswith("Starting the training process") for t in spinners), spinners


def _collapse_script():
    import streamlit as st

    from app.ui.health_view import show_collapse_warnings
    h = {"1": {"collapsed": True, "n": 4, "distinct_top": 1, "eff_parents": 1.0}}
    st.session_state["shown"] = show_collapse_warnings(h, "gamo", step=st.session_state.get("step"))


@pytest.mark.parametrize("step, warned", [(0, False), (25, True), (None, True)])
def test_an_untrained_generator_is_not_called_collapsed(step, warned):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_function(_collapse_script)
    at.session_state["step"] = step
    at.run()
    assert not at.exception
    assert (len(at.warning) == 1) == warned and at.session_state["shown"] == int(warned)
    assert any("has not trained yet" in i.value for i in at.info) == (not warned)


def test_explain_does_not_call_the_untrained_generator_collapsed() -> None:
    hulls = {1: convex_hull(SQUARE)}
    health = {"1": {"collapsed": True, "n": 2, "distinct_top": 1, "eff_parents": 1.0}}
    for step, said in ((0, False), (5, True)):
        snap = _snap(step, [[1, 1], [0.1, 1]])
        text = tl.explain("gamo", "none", snap, tl.generated_stats(snap.generated, hulls), minority=[1],
                          real_distance=0.5, health=health)
        assert ("the generator has collapsed" in text) == said, step
