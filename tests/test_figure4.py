"""`python -m gamo bench figure4` end to end on tiny digits runs, and the figure files it leaves."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gamo import figure4
from gamo.cli import main
from gamo.config import DataConfig
from gamo.reference import train_reference

METHODS = ["baseline", "smote", "gamo"]


@pytest.fixture(scope="module")
def fig_runs(tmp_path_factory, one_thread):
    """Tiny Figure-4 runs on digits, a quick reference classifier in a private cache."""
    tmp = tmp_path_factory.mktemp("fig4")
    mp = pytest.MonkeyPatch()
    mp.setenv("GAMO_CACHE", str(tmp / "cache"))
    train_reference(DataConfig(dataset="digits"), epochs=3)
    rc = main(["bench", "figure4", "--dataset", "digits", "--seeds", "0", "--methods", *METHODS, "--steps", "20",
               "--root", str(tmp / "runs"), "--out", str(tmp / "out" / "fig"), "--n-claims", "12", "--threads", "1",
               "--quiet"])
    assert rc == 0
    yield tmp
    mp.undo()


def test_figure4_writes_the_claims_table_and_the_grid(fig_runs):
    md = (fig_runs / "out" / "fig.md").read_text()
    assert "| SMOTE+CN |" in md and "| GAMO |" in md
    assert "| Baseline CN | no generated samples |" in md
    assert "**supported**" in md or "**not supported**" in md
    assert "reference classifier `digits`" in md
    with Image.open(fig_runs / "out" / "fig.png") as im:
        # a header, the real row and one row per method
        assert im.format == "PNG" and im.height >= 34 + 4 * 40 - 10
    assert (fig_runs / "out" / "fig_table1.md").is_file()


def test_run_files_hold_samples_of_their_classes_with_in_class_parents(fig_runs):
    run = fig_runs / "runs" / "digits-ls" / "gamo-seed0"
    r = figure4.load_run(run)
    claims, grid = r.claims, r.grid
    minority = claims["minority"]
    assert claims["generates"] and claims["n_claims"] == 12 and claims["space"] == "pixels"
    assert [c["cls"] for c in claims["classes"]] == minority and all(c["n"] == 12 for c in claims["classes"])
    assert all(0.0 <= c["fidelity"] <= 1.0 and c["frechet"] >= 0 for c in claims["classes"])
    assert grid["gen"].dtype == np.uint8 and grid["gen"].shape[1] == 64
    assert sorted(set(grid["gen_y"].tolist())) == minority
    # each sample's heaviest convex parent is a training row of the sample's own class
    y_train = np.load(run / "data.npz")["y_train"]
    assert (y_train[grid["gen_parent"]] == grid["gen_y"]).all()
    # the real row: every class, images as stored
    assert sorted(set(grid["real_y"].tolist())) == list(range(10)) and grid["real"].dtype == np.uint8
    base = figure4.load_run(fig_runs / "runs" / "digits-ls" / "baseline-seed0")
    assert base.claims["generates"] is False and "gen" not in base.grid


def test_made_files_are_kept_until_the_run_changes(fig_runs):
    run = fig_runs / "runs" / "digits-ls" / "smote-seed0"
    r = figure4.load_run(run)
    assert not figure4.stale(r, None, 12)
    assert figure4.stale(r, None, 500)          # another sample count
    (run / "checkpoint.pt").rename(run / "checkpoint.keep")
    try:                                        # a committed run without its checkpoint keeps its files
        assert not figure4.stale(r, None, 500)
    finally:
        (run / "checkpoint.keep").rename(run / "checkpoint.pt")


def test_summary_aggregates_table1_and_the_claims(fig_runs):
    runs = figure4.collect(fig_runs / "runs" / "digits-ls", METHODS)
    sums, verdicts = figure4.summary(runs)
    assert set(sums) == set(METHODS)
    assert len(sums["gamo"].acsa) == 1 and 0 <= sums["gamo"].acsa[0] <= 1
    assert sums["baseline"].measures == {} and sums["gamo"].measures["fidelity"] is not None
    assert len(sums["gamo"].recall) == 10
    assert {v.method for v in verdicts} == {"smote", "gamo"}


def test_damaged_figure_files_are_reported_not_raised(fig_runs, tmp_path):
    import shutil
    run = tmp_path / "gamo-seed0"
    shutil.copytree(fig_runs / "runs" / "digits-ls" / "gamo-seed0", run)
    (run / "figure4.npz").write_bytes(b"garbage")
    r = figure4.load_run(run)
    assert r.grid is None and "cannot be read" in r.problem
    (run / "figure4.npz").unlink()
    assert "no figure files yet" in figure4.load_run(run).problem


def test_figure4_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    rc = main(["bench", "figure4", "--dataset", "digits", "--methods", "nope", "--root", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--methods: unknown nope" in err[0]
