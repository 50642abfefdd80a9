"""The Runs page (app/pages/4_Runs.py, AppTest), its logic (app/ui/runs_view.py) and the run
exports (gamo/export.py), on small runs made here: a few steps on toy:moons and digits."""
from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui import runs_view as rv  # noqa: E402
from gamo import export as ex  # noqa: E402
from gamo.cli import execute_run  # noqa: E402
from gamo.runs import _process_record  # noqa: E402
from conftest import _tiny_cfg, no_exception  # noqa: E402  (tests/ is on sys.path under pytest)

PAGE = ROOT / "app" / "pages" / "4_Runs.py"


# --------------------------------------------------------------------------------------------
# small stored runs
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory, one_thread):
    """A user runs folder (GAMO runs on moons and digits, a baseline, a damaged and a foreign
    folder) and a read-only 'benchmark' root holding one run."""
    base = tmp_path_factory.mktemp("store")
    user, bench = base / "runs", base / "bench" / "runs"
    execute_run(_tiny_cfg("gamo", steps=30, snapshot_every=10), user / "moons-gamo")
    execute_run(_tiny_cfg("baseline", steps=10, snapshot_every=5), user / "moons-baseline")
    execute_run(_tiny_cfg("gamo", steps=20, snapshot_every=10,
                          data={"dataset": "digits", "profile": "exp:ir=5,max=30", "n_test_per_class": 5,
                                "n_val_per_class": 3}), user / "digits-gamo")
    shutil.copytree(user / "moons-gamo", user / "damaged")
    (user / "damaged" / "config.json").write_text('{"data": {"dataset": "toy:moons"')   # cut off mid-write
    (user / "foreign").mkdir()
    (user / "foreign" / "metrics.jsonl").write_text("not a GAMO file\n")
    shutil.copytree(user / "moons-gamo", bench / "toy-ls" / "gamo-seed0")
    return {"user": user, "bench": bench}


@pytest.fixture()
def env(monkeypatch, store, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))      # the page's prepared exports
    monkeypatch.setenv("GAMO_RUNS_DIR", str(store["user"]))
    monkeypatch.setenv("GAMO_BENCH_RUNS", str(store["bench"]))
    return store


def counts_of(y) -> list[int]:
    return np.bincount(np.asarray(y)).tolist()


# --------------------------------------------------------------------------------------------
# exports (gamo/export.py): every file read back
# --------------------------------------------------------------------------------------------
def test_export_writes_each_file_and_each_reads_back(store, tmp_path):
    run = store["user"] / "digits-gamo"
    res = ex.export_run(run, tmp_path / "out")
    assert set(res.files) == set(ex.EXPORT_FILES) and not res.skipped
    with np.load(run / "data.npz") as f:
        x_train, y_train = f["x_train"], f["y_train"]
    n_real, top = len(y_train), int(np.bincount(y_train).max())
    k_classes = int(y_train.max()) + 1
    n = top * k_classes

    # the NPZ: the real rows unchanged, then the generated ones; every class at the largest count
    with np.load(res.files["balanced.npz"], allow_pickle=False) as f:
        x, y, syn, pi, pw, space = f["x"], f["y"], f["synthetic"], f["parent_idx"], f["parent_w"], f["space"]
    assert x.shape == (n, 64) and x.dtype == np.float32 and y.shape == syn.shape == (n,)
    assert counts_of(y) == [top] * k_classes and str(space) == "input"
    assert int(syn.sum()) == n - n_real and not syn[:n_real].any()
    assert np.array_equal(x[:n_real], x_train) and np.array_equal(y[:n_real], y_train)
    assert pi.shape == pw.shape == (n, pi.shape[1]) and np.all(pi[:n_real] == -1)
    assert np.all(y_train[pi[syn]] == y[syn][:, None])         # parents are real rows of the same class
    assert np.all((pw[syn] >= 0) & (pw[syn] <= 1 + 1e-6))

    # the CSV: the same rows, with each generated row's parents as rows of the same file
    with open(res.files["balanced.csv"], newline="") as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    k = pi.shape[1]
    assert head[:3] == ["row", "label", "synthetic"] and head[3:3 + k] == [f"parent_{j + 1}" for j in range(k)]
    assert head[3 + k:3 + 2 * k] == [f"weight_{j + 1}" for j in range(k)] and head[-1] == "x63"
    assert len(body) == n and all(len(r) == 3 + 2 * k + 64 for r in body)
    labels = np.array([int(r[1]) for r in body])
    assert counts_of(labels) == [top] * k_classes
    assert [int(r[0]) for r in body] == list(range(n))
    for r in body:
        if r[2] == "1":
            parent = int(r[3])
            assert parent < n_real and body[parent][2] == "0" and body[parent][1] == r[1]
        else:
            assert r[3:3 + 2 * k] == [""] * (2 * k)
    assert np.allclose(np.array([[float(v) for v in r[3 + 2 * k:]] for r in body]), x, atol=1e-5)

    # the PNG: one row of tiles per class with generated samples, not blank
    with Image.open(res.files["samples.png"]) as im:
        im.load()
        assert im.format == "PNG" and im.mode == "RGB" and im.width >= 320 and im.height > 100
        assert np.asarray(im).min() < 50                        # dark pixels: digits were drawn
    # config and checkpoint: the run's own, the checkpoint readable with weights_only=True
    assert json.loads(res.files["config.json"].read_text()) == json.loads((run / "config.json").read_text())
    state = torch.load(res.files["checkpoint.pt"], weights_only=True)
    assert state["step"] == 20 and state["method"] == "gamo"
    assert res.files["checkpoint.pt"].read_bytes() == (run / "checkpoint.pt").read_bytes()


def test_the_stored_samples_are_what_the_engine_makes_from_the_checkpoint(store, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(store["user"] / "digits-gamo", run)
    stored = ex.balanced_set(run)
    assert "samples.npz" in stored.source
    (run / "samples.npz").unlink()                               # now rebuilt from the checkpoint
    rebuilt = ex.balanced_set(run)
    assert "checkpoint" in rebuilt.source
    assert np.array_equal(stored.y, rebuilt.y) and np.allclose(stored.x, rebuilt.x, atol=1e-6)
    assert np.array_equal(stored.parent_idx, rebuilt.parent_idx)
    other = ex.balanced_set(run, seed=7)                         # another noise seed: other points, same counts
    assert np.array_equal(other.y, stored.y) and np.array_equal(other.x[:stored.n_real], stored.x[:stored.n_real])
    assert not np.allclose(other.x[stored.synthetic], stored.x[stored.synthetic])


def test_a_toy_run_exports_a_csv_of_2d_points_and_no_picture(store, tmp_path):
    res = ex.export_run(store["user"] / "moons-gamo", tmp_path / "out")
    assert "samples.png" in res.skipped and "not images" in res.skipped["samples.png"]
    with np.load(res.files["balanced.npz"]) as f:
        x, y, syn = f["x"], f["y"], f["synthetic"]
    assert x.shape[1] == 2 and len(set(counts_of(y))) == 1 and syn.any()
    with open(res.files["balanced.csv"], newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-2:] == ["x0", "x1"] and len(rows) == len(y) + 1
    assert counts_of([int(r[1]) for r in rows[1:]]) == counts_of(y)


def test_a_method_that_generates_nothing_still_exports_config_and_checkpoint(store, tmp_path):
    res = ex.export_run(store["user"] / "moons-baseline", tmp_path / "out")
    assert set(res.files) == {"config.json", "checkpoint.pt"}
    assert {"balanced.npz", "balanced.csv", "samples.png"} <= set(res.skipped)
    assert "generates no samples" in res.skipped["balanced.npz"]
    assert not (tmp_path / "out" / "balanced.npz").exists()


def test_a_damaged_checkpoint_is_skipped_with_the_reason(store, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(store["user"] / "moons-gamo", run)
    (run / "checkpoint.pt").write_bytes(b"\x80\x04garbage")
    res = ex.export_run(run, tmp_path / "out")
    assert "cannot be read as a GAMO checkpoint" in res.skipped["checkpoint.pt"]
    assert "balanced.npz" in res.files                           # samples.npz and data.npz are intact
    assert not (tmp_path / "out" / "checkpoint.pt").exists()
    with pytest.raises(ex.RunError):
        ex.export_run(run, run)                                  # never into a run folder
    assert ex.main([str(store["user"] / "digits-gamo"), str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "balanced.csv").is_file()


# --------------------------------------------------------------------------------------------
# the page's logic (app/ui/runs_view.py)
# --------------------------------------------------------------------------------------------
def test_scan_lists_every_folder_damaged_and_foreign_ones_with_the_reason(env):
    rows = {"bench" if r.read_only else r.path.name: r for r in rv.scan()}
    assert set(rows) >= {"moons-gamo", "moons-baseline", "digits-gamo", "damaged", "foreign", "bench"}
    assert rows["damaged"].state == "broken" and "config.json is not valid JSON" in rows["damaged"].info.note
    assert rows["foreign"].state == "broken" and "no config.json" in rows["foreign"].info.note
    assert rows["bench"].read_only and not rows["moons-gamo"].read_only
    g = rows["moons-gamo"]
    assert g.state == "finished" and g.info.step == 30 and g.loss == "ls" and g.best is not None
    table = {t["run"]: t for t in rv.table_rows(rv.scan())}
    assert table[g.label]["ACSA (best val)"] == g.best["acsa"] and table[g.label]["GM (last)"] == g.info.gm
    assert [r.label for r in rv.filter_rows(rv.scan(), method=["baseline"])] == [rows["moons-baseline"].label]
    assert {r.state for r in rv.filter_rows(rv.scan(), status=["broken"])} == {"broken"}
    assert {r.info.dataset for r in rv.filter_rows(rv.scan(), dataset=["digits"], loss=["ls"])} == {"digits"}


def test_curves_from_the_records_overlay_one_line_per_run(env):
    named = {}
    for name in ("moons-gamo", "digits-gamo"):
        recs, dropped, why = rv.load_records(env["user"] / name)
        assert recs and not dropped and why is None
        named[name] = rv.records_series(recs)
        assert named[name]["recall"].shape[0] == len(recs) and "G" in named[name]["losses"]
    assert rv.health_records(rv.load_records(env["user"] / "moons-gamo")[0])
    for metric in rv.OVERLAY_METRICS:
        fig = rv.overlay_chart(named, metric, x="epoch", cls=1, player="G")
        assert [t.name for t in fig.data] == list(named)
    recs, _, why = rv.load_records(env["user"] / "foreign")
    assert recs == [] and why is None                            # no whole records: nothing to draw


def test_delete_only_your_own_runs_and_never_one_that_trains(env, tmp_path):
    user, bench = env["user"], env["bench"]
    with pytest.raises(rv.RunError, match="read-only"):
        rv.delete_run(bench / "toy-ls" / "gamo-seed0", user, [bench])
    with pytest.raises(rv.RunError, match="not in your runs folder"):
        rv.delete_run(bench / "toy-ls" / "gamo-seed0", user)
    with pytest.raises(rv.RunError, match="not in your runs folder"):
        rv.delete_run(user, user)
    mine = tmp_path / "runs"
    shutil.copytree(user / "moons-gamo", mine / "a")
    shutil.copytree(user / "moons-gamo", mine / "a" / "inner")
    with pytest.raises(rv.RunError, match="holds other runs"):
        rv.delete_run(mine / "a", mine)
    (mine / "a" / "inner" / "status.json").write_text(json.dumps({"state": "running", **_process_record()}))
    with pytest.raises(rv.RunError, match="trained right now"):
        rv.delete_run(mine / "a" / "inner", mine)
    shutil.rmtree(mine / "a" / "inner")
    rv.delete_run(mine / "a", mine)
    assert not (mine / "a").exists() and mine.is_dir()


# --------------------------------------------------------------------------------------------
# the page (AppTest)
# --------------------------------------------------------------------------------------------
def page() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=60)


def label_of(at: AppTest, end: str) -> str:
    (hit,) = [o for o in at.selectbox(key="rp_open").options if o.endswith(end)]
    return hit


def test_the_page_renders_every_stored_run_and_names_the_broken_folders(env):
    at = page().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Runs"]
    table = at.dataframe[0].value
    assert len(table) == 6 and {"status", "ACSA (last)", "GM (best val)", "note"} <= set(table.columns)
    assert sorted(table["status"]) == ["broken", "broken", "finished", "finished", "finished", "finished"]
    warning = " ".join(w.value for w in at.warning)
    assert "2 folders cannot be read as runs" in warning and "config.json is not valid JSON" in warning
    assert "no config.json" in warning
    # the first run is open: its scores, its curves, its config, the export button
    assert [m.label for m in at.metric][:2] == ["ACSA, last epoch", "GM, last epoch"]
    assert at.get("plotly_chart") and at.json and at.button(key="rp_prepare")
    # a broken folder opens with its reason, and the page stays up
    at.selectbox(key="rp_open").set_value(label_of(at, "damaged")).run()
    no_exception(at)
    assert any("cannot be read as a run" in e.value and "not valid JSON" in e.value for e in at.error)
    at.selectbox(key="rp_open").set_value(label_of(at, "foreign")).run()
    no_exception(at)
    assert any("no config.json" in e.value for e in at.error)
    at.button(key="rp_prepare").click().run()                     # exporting it is one line, too
    no_exception(at)
    assert any("Nothing could be exported" in e.value and "no config.json" in e.value for e in at.error)


def test_filters_open_a_run_with_its_health_and_overlay_runs(env):
    at = page().run()
    at.multiselect(key="rp_f_method").set_value(["gamo"]).run()
    at.multiselect(key="rp_f_status").set_value(["finished"]).run()
    no_exception(at)
    table = at.dataframe[0].value
    assert len(table) == 3 and set(table["method"]) == {"GAMO"} and set(table["status"]) == {"finished"}
    at.selectbox(key="rp_open").set_value(label_of(at, "digits-gamo")).run()
    no_exception(at)
    assert at.query_params["run"] == label_of(at, "digits-gamo")
    assert any("Generator health at step" in m.value for m in at.markdown)
    runs = [label_of(at, "moons-gamo"), label_of(at, "digits-gamo")]
    at.multiselect(key="rp_compare").set_value(runs).run()
    no_exception(at)
    overlay = [c for c in at.get("plotly_chart") if "per run" in c.proto.spec]
    assert len(overlay) == 1
    fig = json.loads(overlay[0].proto.spec)
    assert [t["name"] for t in fig["data"]] == runs
    at.selectbox(key="rp_metric").set_value("recall of one class (test)").run()
    no_exception(at)
    assert any("recall of class 0" in c.proto.spec for c in at.get("plotly_chart"))


def test_prepare_the_exports_of_a_run(env):
    at = page().run()
    at.selectbox(key="rp_open").set_value(label_of(at, "digits-gamo")).run()
    at.button(key="rp_prepare").click().run()
    no_exception(at)
    (ok,) = [s.value for s in at.success]
    assert "Balanced training set" in ok and "class counts" in ok
    buttons = [b.proto.label for b in at.get("download_button")]
    assert buttons == ["config.json", "balanced.npz", "balanced.csv", "samples.png", "checkpoint.pt"]
    assert at.get("image")                                       # the PNG grid, shown
    prepared = Path(at.session_state["rp_export"]["dir"])
    with np.load(prepared / "balanced.npz") as f:
        assert len(set(counts_of(f["y"]))) == 1


def test_delete_a_run_after_a_confirmation_but_never_a_benchmark_run(env, tmp_path, monkeypatch):
    user = tmp_path / "runs"
    shutil.copytree(env["user"] / "moons-gamo", user / "old")
    shutil.copytree(env["user"] / "moons-baseline", user / "keep")
    monkeypatch.setenv("GAMO_RUNS_DIR", str(user))
    at = page().run()
    at.selectbox(key="rp_open").set_value(label_of(at, "gamo-seed0")).run()     # the benchmark run
    assert not [b for b in at.button if b.key == "rp_delete"]
    assert any("read-only" in c.value for c in at.caption)
    at.selectbox(key="rp_open").set_value(label_of(at, "/old")).run()
    at.button(key="rp_delete").click().run()
    assert (user / "old").is_dir()                                  # nothing yet: asks first
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key="rp_delete_yes").click().run()
    no_exception(at)
    assert not (user / "old").exists() and (user / "keep").is_dir()
    assert any("Deleted" in s.value for s in at.success) and not at.error
    assert not [o for o in at.selectbox(key="rp_open").options if o.endswith("/old")]
