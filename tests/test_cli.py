"""The command line: ``python -m gamo train / sample / list``, its run folders and its errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gamo.cli import main

SMALL = ["--n-per-class", "120", "--test-per-class", "20", "--hidden", "16", "--latent", "8",
         "--batch-size", "16"]
TRAIN = ["train", "--dataset", "toy:moons", "--profile", "step:ir=20", "--loss", "ls", "--seed", "0", *SMALL]


pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``main(args)`` in-process: (exit code, stdout, stderr); argparse errors exit via SystemExit."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _snapshot_files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def gamo_run(tmp_path_factory, one_thread):
    """One 60-step GAMO run on toy:moons (IR 20), shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "moons-gamo"
    rc = main([*TRAIN, "--method", "gamo", "--steps", "60", "--snapshot-every", "20", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def test_train_writes_a_complete_run_folder(gamo_run):
    d = gamo_run
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["data"]["dataset"] == "toy:moons" and cfg["data"]["profile"] == "step:ir=20"
    assert cfg["train"]["method"] == "gamo" and cfg["train"]["steps"] == 60 and cfg["model"]["latent"] == 8

    lines = (d / "metrics.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    steps = [r["step"] for r in recs]
    assert steps[0] == 0 and steps[-1] == 60 and {20, 40} <= set(steps)
    assert steps == sorted(steps)
    assert all(len(r["test"]["recall"]) == 2 for r in recs)
    assert set(recs[-1]["losses"]) == {"M", "D", "G"}
    # every line has the generator's health of its snapshot, per minority class (gamo.health)
    from gamo.health import KEYS
    assert all(set(r["health"]) == {"1"} and set(r["health"]["1"]) == set(KEYS) for r in recs)
    assert all(r["health"]["1"]["n"] == 16 and r["health"]["1"]["eff_parents"] >= 1 for r in recs)

    final = json.loads((d / "final.json").read_text())
    assert {"acsa", "gm", "accuracy", "recall"} <= set(final)
    assert len(final["recall"]) == 2 and final["step"] == 60 and final["complete"] is True
    assert final["acsa"] == pytest.approx(np.mean(final["recall"]))
    assert final["gm"] == pytest.approx(np.sqrt(np.prod(final["recall"])))
    assert final["acsa"] == pytest.approx(recs[-1]["test"]["acsa"])

    state = torch.load(d / "checkpoint.pt", weights_only=True)
    assert state["step"] == 60 and set(state["modules"]) == {"F", "M", "D", "G"}

    with np.load(d / "data.npz") as f:
        assert set(f.files) == {"x_train", "y_train", "x_test", "y_test", "x_val", "y_val"}
        assert f["x_val"].shape == (200, 2) and np.bincount(f["y_val"]).tolist() == [100, 100]
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    counts = np.bincount(y_train)
    assert counts.tolist() == [120, 6] and x_train.shape == (126, 2)
    assert np.bincount(y_test).tolist() == [20, 20] and x_test.shape == (40, 2)

    with np.load(d / "samples.npz") as f:
        assert {"x", "y", "parent_idx", "parent_w"} <= set(f.files)
        x, y, pi, pw = f["x"], f["y"], f["parent_idx"], f["parent_w"]
    # n_c - n_i generated points per minority class (here 120 - 6 of class 1)
    assert np.bincount(y, minlength=2).tolist() == [0, 114]
    assert x.shape == (114, 2) and np.isfinite(x).all()
    assert np.all(y_train[pi] == y[:, None])                          # parents of the sample's class
    assert np.all(np.diff(pw, axis=1) <= 0) and np.all(pw > 0) and np.all(pw.sum(axis=1) <= 1 + 1e-5)
    # convex combinations of the class's members: inside their bounding box
    members = x_train[y_train == 1]
    assert np.all(x >= members.min(axis=0) - 1e-5) and np.all(x <= members.max(axis=0) + 1e-5)
    # the top parents' share of each point: sum_j w_j x_j over them, plus the rest's share
    approx = np.einsum("nk,nkd->nd", pw, x_train[pi])
    rest = 1 - pw.sum(axis=1, keepdims=True)
    assert np.all(np.abs(x - approx) <= rest * np.abs(members).max() + 1e-4)


def _best_from_records(recs: list[dict]) -> dict:
    """The record with the highest validation GM, the earliest on ties (computed here, apart
    from gamo.selection)."""
    evaluated = [r for r in recs if "val" in r]
    top = max(r["val"]["gm"] for r in evaluated)
    return next(r for r in evaluated if r["val"]["gm"] == top)


def test_final_reports_the_test_scores_at_the_best_validation_epoch(tmp_path, capsys):
    d = tmp_path / "r"
    rc, stdout, err = run_cli([*TRAIN, "--method", "baseline", "--steps", "80", "--snapshot-every", "5",
                               "--val-per-class", "40", "--out", d, "--quiet"], capsys)
    assert rc == 0, err
    recs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    # the validation split is scored where the training metrics are, from step 1 on
    assert "val" not in recs[0] and all("val" in r for r in recs[1:])
    assert all(sum(r["val"]["confusion"][0]) == 40 for r in recs[1:])
    final = json.loads((d / "final.json").read_text())
    best, want = final["best_val"], _best_from_records(recs)
    assert best["step"] in [r["step"] for r in recs[1:]]
    assert best["step"] == want["step"] and best["epoch"] == want["epoch"]
    assert best["val"]["gm"] == max(r["val"]["gm"] for r in recs[1:]) == want["val"]["gm"]
    assert best["val"]["acsa"] == want["val"]["acsa"]
    assert best["test"] == {k: want["test"][k] for k in ("acsa", "gm", "accuracy", "recall")}
    assert best["val_per_class"] == 40 and best["evaluated"] == len(recs) - 1 and best["first_step"] == 5
    assert best["unscored"] == 0
    # the last epoch's scores, as before and as "test", and its validation scores
    assert final["test"] == {k: recs[-1]["test"][k] for k in ("acsa", "gm", "accuracy", "recall")}
    assert final["acsa"] == recs[-1]["test"]["acsa"] and final["val"]["gm"] == recs[-1]["val"]["gm"]
    # the summary gives both
    last = stdout.strip().splitlines()[-1]
    assert f"test ACSA {final['acsa']:.4f} GM {final['gm']:.4f} at the last epoch (step 80)" in last
    assert (f"at the best val. epoch (step {best['step']}, epoch {best['epoch']:.2f}, val GM {best['val']['gm']:.4f}): "
            f"test ACSA {best['test']['acsa']:.4f} GM {best['test']['gm']:.4f}") in last
    with np.load(d / "indices.npz") as f:
        assert len(f["val_idx"]) == 80 and np.bincount(f["y_val"]).tolist() == [40, 40]


def test_a_run_without_a_validation_split_has_no_best_val(tmp_path, capsys):
    d = tmp_path / "r"
    rc, stdout, err = run_cli([*TRAIN, "--method", "baseline", "--steps", "10", "--val-per-class", "0",
                               "--out", d], capsys)
    assert rc == 0, err
    assert "no validation split" in err
    final = json.loads((d / "final.json").read_text())
    assert final["best_val"] is None and final["val"] is None
    assert all("val" not in json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines())
    assert "best val." not in stdout


def test_a_run_stored_before_the_validation_split_resumes(tmp_path, capsys):
    """An old run folder: config.json without n_val_per_class, indices.npz without val_idx,
    metrics without "val". It loads, resumes on the same rows, and best_val covers the steps
    after the resume."""
    d = tmp_path / "old"
    assert run_cli([*TRAIN, "--method", "baseline", "--steps", "20", "--snapshot-every", "5", "--out", d,
                    "--quiet"], capsys)[0] == 0
    cfg = json.loads((d / "config.json").read_text())
    del cfg["data"]["n_val_per_class"]
    (d / "config.json").write_text(json.dumps(cfg))
    with np.load(d / "indices.npz") as f:
        old = {k: f[k] for k in ("train_idx", "test_idx", "y_train", "y_test")}
    np.savez(d / "indices.npz", **old)
    recs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    (d / "metrics.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "val"}) + "\n"
                                             for r in recs))
    rc, stdout, err = run_cli(["train", "--resume", d, "--steps", "40", "--quiet"], capsys)
    assert rc == 0, err
    recs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    best = json.loads((d / "final.json").read_text())["best_val"]
    scored = [r["step"] for r in recs if "val" in r]
    assert scored and min(scored) > 20 and {25, 30, 35, 40} <= set(scored)
    assert best["first_step"] == min(scored) and best["evaluated"] == len(scored)
    # the epochs before the resume had no validation scores: the choice says it missed them
    assert best["unscored"] == len([r for r in recs if 0 < r["step"] <= 20]) > 0
    assert best["step"] == _best_from_records(recs)["step"] and best["step"] > 20


def test_sample_writes_a_balanced_set(gamo_run, tmp_path, capsys):
    out = tmp_path / "sub" / "balanced.npz"
    rc, stdout, err = run_cli(["sample", "--run", gamo_run, "--out", out, "--seed", "3"], capsys)
    assert rc == 0, err
    with np.load(out) as f:
        x, y, synthetic, pi = f["x"], f["y"], f["synthetic"], f["parent_idx"]
    assert np.bincount(y).tolist() == [120, 120]
    assert x.shape == (240, 2) and int(synthetic.sum()) == 114
    assert np.all(y[synthetic] == 1) and np.all(pi[~synthetic] == -1)
    with np.load(gamo_run / "data.npz") as f:
        x_train, y_train = f["x_train"], f["y_train"]
    assert np.array_equal(x[~synthetic], x_train)                     # the real rows, unchanged
    assert np.all(y_train[pi[synthetic]] == 1)
    assert "[120, 120]" in stdout


def test_list_shows_the_run(gamo_run, capsys):
    rc, stdout, _ = run_cli(["list", "--root", gamo_run.parent], capsys)
    assert rc == 0
    row = [line for line in stdout.splitlines() if str(gamo_run) in line]
    assert len(row) == 1
    assert "gamo" in row[0] and "toy:moons" in row[0] and "finished" in row[0] and " 60 " in row[0]
    rc, stdout, _ = run_cli(["list", "--root", gamo_run.parent / "nothing-here"], capsys)
    assert rc == 0 and "no runs" in stdout


def test_resume_continues_a_run(tmp_path, capsys):
    d = tmp_path / "r"
    rc, _, err = run_cli([*TRAIN, "--method", "gamo", "--steps", "30", "--out", d, "--quiet"], capsys)
    assert rc == 0, err
    n_lines = len((d / "metrics.jsonl").read_text().splitlines())
    assert json.loads((d / "final.json").read_text())["step"] == 30

    rc, stdout, err = run_cli(["train", "--resume", d, "--steps", "60", "--quiet"], capsys)
    assert rc == 0, err
    recs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) > n_lines and recs[-1]["step"] == 60
    assert [r["step"] for r in recs] == sorted(r["step"] for r in recs)
    assert json.loads((d / "final.json").read_text())["step"] == 60
    assert torch.load(d / "checkpoint.pt", weights_only=True)["step"] == 60
    # the extension is recorded: config.json says what the run now is
    assert json.loads((d / "config.json").read_text())["train"]["steps"] == 60
    # the best validation epoch is chosen over the records from before the resume too
    assert json.loads((d / "final.json").read_text())["best_val"]["step"] == _best_from_records(recs)["step"]
    assert "ACSA" in stdout.splitlines()[-1]

    # a finished run cannot be resumed without more steps
    before = _snapshot_files(d)
    rc, _, err = run_cli(["train", "--resume", d], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    after = _snapshot_files(d)
    for name in ("config.json", "metrics.jsonl", "final.json", "checkpoint.pt", "data.npz", "samples.npz"):
        assert before[name] == after[name], name


def test_failed_resume_leaves_the_run_status_alone(tmp_path, capsys):
    d = tmp_path / "r"
    assert run_cli([*TRAIN, "--method", "baseline", "--steps", "5", "--out", d, "--quiet"], capsys)[0] == 0
    before = (d / "status.json").read_bytes()
    assert run_cli(["train", "--resume", d], capsys)[0] == 2
    assert (d / "status.json").read_bytes() == before


def test_existing_run_folder_is_never_overwritten(tmp_path, capsys):
    d = tmp_path / "r"
    assert run_cli([*TRAIN, "--method", "baseline", "--steps", "5", "--out", d, "--quiet"], capsys)[0] == 0
    before = _snapshot_files(d)
    rc, stdout, err = run_cli([*TRAIN, "--method", "gamo", "--steps", "7", "--out", d], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "--resume" in err
    assert _snapshot_files(d) == before


def _bad_args(tmp_path: Path) -> dict[str, list[str]]:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,cls\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(40)))
    out = ["--out", str(tmp_path / "out"), "--steps", "5", *SMALL]
    return {
        "unknown dataset": ["train", "--dataset", "toy:moonz", *out],
        "bad profile": ["train", "--dataset", "toy:moons", "--profile", "step:ir=banana", *out],
        "negative steps": ["train", "--dataset", "toy:moons", "--steps", "-3", "--out", str(tmp_path / "out")],
        "unknown method": ["train", "--method", "smote-ish", *out],
        "csv without label column": ["train", "--dataset", f"table:{csv}", *out],
        "non-integer steps": ["train", "--steps", "ten", *out],
        "no command": [],
        "sample from a missing run": ["sample", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "s.npz")],
    }


BAD_CASES = ["unknown dataset", "bad profile", "negative steps", "unknown method", "csv without label column",
             "non-integer steps", "no command", "sample from a missing run"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_arguments_exit_2_with_one_line(case, tmp_path, capsys):
    cases = _bad_args(tmp_path)
    assert sorted(cases) == sorted(BAD_CASES)
    rc, stdout, err = run_cli(cases[case], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0]
    if case == "csv without label column":
        assert "'label'" in lines[0] and "cls" in lines[0]


def test_bad_dataset_leaves_no_run_behind(tmp_path, capsys):
    d = tmp_path / "r"
    assert run_cli(["train", "--dataset", "toy:moonz", "--steps", "3", "--out", d, *SMALL], capsys)[0] == 2
    assert not (d / "config.json").exists()
    assert run_cli(["train", "--dataset", "toy:moons", "--steps", "3", "--out", d, "--quiet", *SMALL], capsys)[0] == 0


def test_sample_from_a_baseline_run_exits_2(tmp_path, capsys):
    d = tmp_path / "base"
    assert run_cli([*TRAIN, "--method", "baseline", "--steps", "5", "--out", d, "--quiet"], capsys)[0] == 0
    assert not (d / "samples.npz").exists()
    rc, _, err = run_cli(["sample", "--run", d, "--out", tmp_path / "s.npz"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.npz").exists()


def test_python_dash_m_gamo_train_subprocess(tmp_path):
    d = tmp_path / "sub"
    cmd = [sys.executable, "-m", "gamo", *TRAIN, "--method", "gamo_no_d", "--steps", "20", "--out", str(d),
           "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert "ACSA" in last and "GM" in last
    assert "step 20/20" in r.stderr                                   # progress goes to stderr
    assert "| health: parents>=" in r.stderr and "distinct>=" in r.stderr   # with the generator's health
    final = json.loads((d / "final.json").read_text())
    assert final["step"] == 20 and f"{final['acsa']:.4f}" in last
    assert (d / "samples.npz").exists()


# ------------------------------------------------ out-of-range numbers (issue 15: bad arguments)

def test_absurd_threads_is_one_line_not_a_segfault(tmp_path):
    """``--threads 100000`` crashed the interpreter (exit 139) and left a run stuck as running."""
    d = tmp_path / "r"
    r = subprocess.run([sys.executable, "-m", "gamo", *TRAIN, "--steps", "3", "--out", str(d), "--threads", "100000"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().count("\n") == 0 and "--threads: this machine has" in r.stderr
    assert not d.exists()


@pytest.mark.parametrize("args, match", [
    (["--threads", "{cores+1}"], r"argument --threads: this machine has \d+ CPU cores?: choose 0 \(torch's default\) to"),
    (["--threads", "-1"], r"argument --threads: .*choose 0"),
    (["--seed", str(2**64 - 1)], r"argument --seed: choose a seed between 0 and 4294967295"),
    (["--seed", "-1"], r"argument --seed: choose a seed between 0 and 4294967295"),
    (["--n-per-class", "100000000"], r"n_per_class: choose between 2 and 100,000"),
    (["--dataset", "toy:blobs", "--n-classes", "100000"], r"n_classes: choose between 2 and 100 "),
    (["--dataset", "toy:blobs", "--n-classes", "100", "--n-per-class", "100000"], r"over 2,000,000: lower"),
    (["--test-per-class", "100000000"], r"n_test_per_class: choose at most 100,000"),
], ids=["threads-over-cores", "threads-negative", "seed-2**64-1", "seed-negative", "n-per-class-1e8",
        "n-classes-1e5", "toy-points-1e7", "test-per-class-1e8"])
def test_out_of_range_numbers_exit_2_with_one_line(args, match, tmp_path, capsys):
    """Seeds torch cannot take were a traceback; points per class or classes by the million ran
    for minutes and wrote gigabytes. Each is one line, before any folder is made."""
    import re

    if "{cores+1}" in args:
        from gamo.config import cpu_cores

        args = [a.replace("{cores+1}", str(cpu_cores() + 1)) for a in args]
    d = tmp_path / "r"
    rc, _, err = run_cli(["train", "--dataset", "toy:moons", "--steps", "3", "--out", d, "--quiet", *args], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(match, err), err
    assert not d.exists()


def test_sample_seed_out_of_range_exits_2(gamo_run, tmp_path, capsys):
    rc, _, err = run_cli(["sample", "--run", gamo_run, "--out", tmp_path / "s.npz", "--seed", str(2**64)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "choose a seed between 0 and" in err
    assert not (tmp_path / "s.npz").exists()


def test_configs_bound_seeds_sizes_and_threads():
    from gamo.config import MAX_SEED, DataConfig, TrainConfig
    from gamo.errors import ConfigError

    assert TrainConfig(seed=MAX_SEED).seed == MAX_SEED and DataConfig(seed=MAX_SEED).seed == MAX_SEED
    for bad in (MAX_SEED + 1, 2**64 - 1, -1, 1.5):
        with pytest.raises(ConfigError, match=r"seed: choose a whole number between 0 and 4294967295"):
            TrainConfig(seed=bad)
    with pytest.raises(ConfigError, match="seed: choose"):
        DataConfig(seed=2**64 - 1)
    with pytest.raises(ConfigError, match=r"threads: choose 0"):
        TrainConfig(threads=100_000)
    with pytest.raises(ConfigError, match=r"n_per_class: choose between 2 and 100,000"):
        DataConfig(n_per_class=100_000_000)
    with pytest.raises(ConfigError, match=r"n_classes: choose between 2 and 100"):
        DataConfig(dataset="toy:spirals", n_classes=100_000)
    with pytest.raises(ConfigError, match=r"n_val_per_class: choose at most 100,000"):
        DataConfig(n_val_per_class=10**6)
    # moons always has 2 classes: a large n_classes is not multiplied in
    assert DataConfig(dataset="toy:moons", n_classes=100, n_per_class=100_000).n_per_class == 100_000


def test_threads_are_honoured_and_bounded_by_the_cores(tiny_cfg):
    """``--threads N`` sets torch's threads and numpy's BLAS pool; a config asking for more than
    this machine's cores (one made elsewhere) gets the cores."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from gamo.train import Trainer

    old = torch.get_num_threads()
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            Trainer(tiny_cfg("gamo", steps=2, threads=1), with_grid=False)
            assert torch.get_num_threads() == 1
            assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")

            from gamo.config import cpu_cores
            from gamo.train import set_threads

            assert set_threads(100_000) == cpu_cores() == torch.get_num_threads()
            assert set_threads(0) == 0 and torch.get_num_threads() == cpu_cores()   # 0: left alone
    finally:
        torch.set_num_threads(old)
