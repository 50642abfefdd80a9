"""The Ablation Grid page (app/pages/3_Ablation_Grid.py, AppTest) and its logic
(app/ui/ablation.py), on small stored runs made here: a couple of epochs on digits, their figure
files, and a quick reference classifier in a private cache."""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui import ablation as ab  # noqa: E402
from gamo import figure4  # noqa: E402
from gamo.cli import execute_run  # noqa: E402
from gamo.config import DataConfig  # noqa: E402
from gamo.reference import train_reference  # noqa: E402

PAGE = ROOT / "app" / "pages" / "3_Ablation_Grid.py"
METHODS = ("baseline", "smote", "gamo")
SETTINGS = ab.GridSettings(data="digits", seeds=(0,), methods=",".join(METHODS), length=2)
QUERY = {"d": "digits", "n": "2", "s": "0", "m": ",".join(METHODS)}


@pytest.fixture(scope="module")
def store(tmp_path_factory, one_thread):
    """Committed-style runs (the table layout) of baseline and SMOTE, the user's GAMO run (the
    page's layout), all of seed 0 with figure files, and a reference classifier."""
    base = tmp_path_factory.mktemp("ablation")
    user, bench, cache = base / "runs", base / "bench" / "runs", base / "cache"
    mp = pytest.MonkeyPatch()
    mp.setenv("GAMO_CACHE", str(cache))
    ref = train_reference(DataConfig(dataset="digits"), epochs=2)
    for m in METHODS:
        where = (bench / ab.store_folder(SETTINGS) if m != "gamo" else ab.page_base(SETTINGS, user)) / f"{m}-seed0"
        execute_run(ab.cell_config(SETTINGS, m, 0), where)
        figure4.write_run_files(where, reference=ref, n_claims=8)
    mp.undo()
    return {"user": user, "bench": bench, "cache": cache, "base": base}


@pytest.fixture()
def env(monkeypatch, store):
    monkeypatch.setenv("GAMO_RUNS_DIR", str(store["user"]))
    monkeypatch.setenv("GAMO_BENCH_RUNS", str(store["bench"]))
    monkeypatch.setenv("GAMO_CACHE", str(store["cache"]))
    monkeypatch.setenv("GAMO_ABLATION_JOBS", "1")
    return store


def _page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    for k, v in (QUERY if query is None else query).items():
        at.query_params[k] = v
    return at.run()


def _text(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                    + [w.value for w in at.warning] + [e.value for e in at.error])


def _roots(store) -> list[ab.Root]:
    return [ab.Root(store["user"], False), ab.Root(store["bench"], True)]


# --------------------------------------------------------------------------------------------
# the logic
# --------------------------------------------------------------------------------------------
def test_settings_round_trip_through_the_url_and_bad_values_warn():
    s, warns = ab.settings_from_query(ab.settings_to_query(SETTINGS))
    assert s == SETTINGS and not warns
    s, warns = ab.settings_from_query({"d": "nope", "s": "1,x", "m": "gamo,nope", "n": "-3", "l": "ls"})
    assert s == ab.DEFAULTS and len(warns) == 4 and all("ignored" in w for w in warns)


def test_a_cell_is_the_same_run_wherever_and_however_fast_it_ran():
    a = ab.cell_config(SETTINGS, "gamo", 0)
    b = a.replace(train={"threads": 2, "device": "cpu", "snapshot_every": 7}, data={"data_root": "/elsewhere"})
    assert ab.identity(a) == ab.identity(b)
    assert ab.identity(a) != ab.identity(a.replace(train={"epochs": 3}))
    assert ab.identity(a) != ab.identity(ab.cell_config(SETTINGS, "gamo", 1))
    # every profile and length gets a folder of its own under the user's root
    other = ab.GridSettings(data="digits", profile="exp:ir=10", length=5)
    assert ab.page_base(other, Path("r")) == Path("r/ablation/exp-ir-10-e5/digits-ls")
    assert ab.page_base(ab.GridSettings(data="toy-blobs"), Path("r")).name == "toy-blobs-k4-ls"
    toy = ab.cell_config(ab.GridSettings(data="toy-spirals", length=50), "gamo", 3)
    assert (toy.data.dataset, toy.data.n_classes, toy.train.steps, toy.data.seed) == ("toy:spirals", 3, 50, 3)


def test_cells_are_found_in_both_layouts_and_missing_ones_go_to_the_users_folder(store):
    s = ab.GridSettings(data="digits", seeds=(0, 1), methods=",".join(METHODS), length=2)
    cells = ab.find_cells(s, _roots(store), store["user"])
    by = {(c.method, c.seed): c for c in cells}
    assert [by[(m, 0)].state for m in METHODS] == ["ready"] * 3
    assert by[("smote", 0)].read_only and not by[("gamo", 0)].read_only
    assert by[("gamo", 1)].state == "missing"
    assert by[("gamo", 1)].path == ab.page_base(s, store["user"]) / "gamo-seed1"
    # another length is another cell: nothing is reused
    longer = ab.find_cells(ab.GridSettings(data="digits", seeds=(0,), methods="gamo", length=3), _roots(store),
                           store["user"])
    assert [c.state for c in longer] == ["missing"]


def test_the_grid_has_a_clickable_cell_per_row_and_minority_class(store):
    cells = ab.find_cells(SETTINGS, _roots(store), store["user"])
    runs = {m: rs[0] for m, rs in ab.runs_by_method(cells, seed=0).items()}
    fig, lay = ab.grid_figure(runs, per_cell=4)
    assert lay.rows == ["real", *METHODS] and lay.classes == runs["gamo"].claims["minority"]
    (cells_trace,) = [t for t in fig.data if t.meta == "cells"]
    assert len(cells_trace.x) == len(lay.rows) * len(lay.classes)
    # an image per cell of the real row, SMOTE and GAMO; none for the baseline (it generates nothing)
    assert len(fig.layout.images) == 3 * len(lay.classes)
    big = ab.cell_samples(runs["gamo"], "gamo", lay.classes[0])
    assert big["images"].shape[1:] == (1, 8, 8) and len(big["flags"]) == len(big["images"])
    # each generated sample's heaviest parent is a training image of its own class
    y_train = np.load(runs["gamo"].path / "data.npz")["y_train"]
    assert (y_train[big["parent"]] == lay.classes[0]).all()
    png = ab.grid_png_bytes(ab.runs_by_method(cells, seed=0), 0, "test")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------
def test_page_draws_the_grid_table1_and_a_caption_per_row(env):
    at = _page()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert "3 runs" in text and "3 ready" in text
    charts = at.get("plotly_chart")
    assert len(charts) >= 2                            # the grid and recall per class
    (t1,) = [d for d in at.dataframe if list(d.value.columns)[:3] == ["method", "ACSA", "GM"]]
    assert list(t1.value["method"]) == ["Baseline CN", "SMOTE+CN", "GAMO"]
    assert t1.value["paper ACSA"].tolist() == ["0.88", "0.89", "0.91"]        # the MNIST column
    assert "MNIST column" in text
    # a caption per row: the paper's claim and a verdict on these runs
    assert "Baseline CN generates no samples" in text
    assert "SMOTE sometimes generates unrealistic" in text and "on these runs" in text
    # the reference classifier: architecture, training, test accuracy
    assert "architecture" in text and "test accuracy" in text and "balanced" in text
    assert at.query_params["d"] == ["digits"] or at.query_params["d"] == "digits"


def test_choosing_a_cell_enlarges_it_with_flags_and_parents(env):
    at = _page()
    at.selectbox(key="ag_cell_row").set_value("smote")
    at.selectbox(key="ag_cell_cls").select_index(0)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert "SMOTE+CN, class" in text and "generated samples" in text
    assert "no flag" in text or "out-of-distribution" in text or "near-duplicate" in text
    at.selectbox(key="ag_cell_row").set_value("gamo").run()
    assert "GAMO, class" in _text(at) and "parent: row" in _text(at)
    images = at.get("image")
    assert len(images) >= 4 and any("heaviest parent" in str(el.proto) for el in images)


def test_train_queues_the_missing_runs_and_cancel_stops_them(env, tmp_path):
    at = _page({**QUERY, "s": "0,1"})
    assert not at.exception
    assert "3 to train" in _text(at)
    at.button(key="ag_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert "3 in the queue" in text
    assert any("queued" in str(p.proto.text) or "starting" in str(p.proto.text) or "training" in str(p.proto.text)
               for p in at.get("progress"))
    at.button(key="ag_cancel_all").click().run()
    assert not at.exception
    deadline = time.monotonic() + 90
    while "in the queue" in _text(at):          # the running one saves a checkpoint and stops
        assert time.monotonic() < deadline, _text(at)
        time.sleep(1.0)
        at.run()
    assert "in the queue" not in _text(at)


def test_a_training_job_ends_with_a_ready_cell(env):
    at = _page({**QUERY, "s": "1", "m": "baseline"})
    assert "1 to train" in _text(at)
    at.button(key="ag_train").click().run()
    deadline = time.monotonic() + 240
    while "1 ready" not in _text(at):
        assert time.monotonic() < deadline, _text(at)
        time.sleep(1.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    run = ab.page_base(ab.GridSettings(**{**SETTINGS.__dict__, "seeds": (1,), "methods": "baseline"}),
                       env["user"]) / "baseline-seed1"
    claims = json.loads((run / "claims.json").read_text())
    assert claims["method"] == "baseline" and claims["seed"] == 1 and (run / "figure4.npz").is_file()
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_a_broken_run_folder_is_named_with_its_reason(env, tmp_path):
    s = ab.GridSettings(data="digits", seeds=(2,), methods="gamo", length=2)
    run = ab.page_base(s, env["user"]) / "gamo-seed2"
    shutil.copytree(ab.page_base(SETTINGS, env["user"]) / "gamo-seed0", run)
    (run / "config.json").write_text('{"data": {"dataset": "digits"')              # cut off mid-write
    try:
        at = _page({**QUERY, "s": "2", "m": "gamo"})
        assert not at.exception, [e.value for e in at.exception]
        errors = " ".join(e.value for e in at.error)
        assert "cannot be used" in errors and "config.json" in errors and "not valid JSON" in errors
        assert at.button(key="ag_train").disabled          # never trained over
        # damaged figure files: the run still counts in Table 1, its files are to be made again
        shutil.rmtree(run)
        shutil.copytree(ab.page_base(SETTINGS, env["user"]) / "gamo-seed0", run)
        cfg = json.loads((run / "config.json").read_text())
        cfg["data"]["seed"] = cfg["train"]["seed"] = 2
        (run / "config.json").write_text(json.dumps(cfg))
        (run / "figure4.npz").write_bytes(b"garbage")
        at = _page({**QUERY, "s": "2", "m": "gamo"})
        assert not at.exception, [e.value for e in at.exception]
        assert "1 no figure files yet" in _text(at)
        assert not at.button(key="ag_make").disabled
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_no_runs_a_missing_dataset_and_a_bad_profile_are_messages(env, monkeypatch, tmp_path):
    monkeypatch.setenv("GAMO_FASHION_MNIST_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("GAMO_DATA_ROOT", str(tmp_path / "none"))
    at = _page({"d": "fashion-mnist-dense", "s": "0", "m": "gamo"})
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert "Nothing can be trained here" in text and "not on this machine" in text
    assert "No run of these settings has finished yet" in text
    assert at.button(key="ag_train").disabled
    at = _page({**QUERY, "p": "exp:ir=abc"})
    assert not at.exception
    assert "cannot make a run" in " ".join(e.value for e in at.error)


def test_conv_cells_are_gamo2pix_decodings_once_every_class_has_a_decoder(tmp_path, fake_images, tiny_cfg,
                                                                        one_thread):
    """A conv run's grid shows decoded samples when GAMO2pix decoders are trained (else the
    nearest real images), and new decoders make its figure files stale."""
    import torch

    from gamo import gamo2pix
    from gamo.methods import make_method

    data = fake_images((1, 28, 28), [40, 12, 8])
    cfg = tiny_cfg("gamo", steps=3, data=dict(dataset="fashion-mnist", profile="none"), model=dict(family="conv"))
    m = make_method(cfg, data, torch.device("cpu"))
    for _ in range(3):
        m.step()
    assert figure4._decoded(m, tmp_path, [1, 2], 0) is None          # no decoder yet
    g = gamo2pix.Gamo2pix(m, tmp_path)
    gamo2pix.train_decoders(g, [1], epochs=1, min_steps=2)
    assert figure4._decoded(m, tmp_path, [1, 2], 0) is None          # class 2 has none
    gamo2pix.train_decoders(g, [2], epochs=1, min_steps=2)
    out = figure4._decoded(m, tmp_path, [1, 2], 0)
    assert str(out["gen_kind"]) == "decoded" and out["gen"].dtype == np.uint8
    assert out["gen"].shape == (2 * figure4.N_GRID, 28 * 28)
    assert out["gen_y"].tolist() == [1] * figure4.N_GRID + [2] * figure4.N_GRID
    assert (data.y_train[out["gen_parent"]] == out["gen_y"]).all()
    assert figure4._decoders_newer(tmp_path, 0.0) and not figure4._decoders_newer(tmp_path, time.time() + 60)


def test_a_missing_reference_classifier_trains_from_its_button(env):
    """No reference for the toy in the private cache: the page says what is not measured and
    trains it in the background on request; then shows its architecture and accuracy."""
    at = _page({"d": "toy-circles", "s": "0", "m": "gamo", "n": "50"})
    assert not at.exception, [e.value for e in at.exception]
    assert "No reference classifier is stored for **toy:circles**" in _text(at)
    at.button(key="ag_ref_train").click().run()
    deadline = time.monotonic() + 180
    while "test accuracy" not in _text(at):
        assert time.monotonic() < deadline, _text(at)
        time.sleep(1.0)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert (env["cache"] / "reference" / "toy-circles-k2-n0.1" / "reference.json").is_file()
