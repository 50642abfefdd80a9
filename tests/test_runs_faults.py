"""The run store and the CLI under faults and hostile input (issue 15): damaged or half-written
run folders, killed runs, and the user's own files. Every case ends in one line and exit code 2
(or 130 for Ctrl-C), nothing saved is lost, and ``gamo list`` shows every folder."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gamo.cli import main
from gamo.runs import list_runs

SMALL = ["--n-per-class", "120", "--test-per-class", "20", "--val-per-class", "20", "--hidden", "16",
         "--latent", "8", "--batch-size", "16"]
TRAIN = ["train", "--dataset", "toy:moons", "--profile", "step:ir=20", "--seed", "0", *SMALL]
RUN_FILES = ("config.json", "metrics.jsonl", "final.json", "checkpoint.pt", "indices.npz", "data.npz",
             "samples.npz", "status.json")

pytestmark = pytest.mark.usefixtures("one_thread")


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``main(args)`` in-process: (exit code, stdout, stderr). A KeyboardInterrupt or any other
    exception escaping main is a failure of the test (never of the session)."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_line_error(rc, err, code=2) -> str:
    assert rc == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def steps_of(d: Path) -> list[int]:
    """The steps of metrics.jsonl; every line must be one whole JSON record."""
    text = (d / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line)["step"] for line in text.splitlines()]


def n_records(path: Path) -> int:
    """Whole lines in a metrics.jsonl being written (0 when there is none yet)."""
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def dead_pid() -> int:
    """The pid of a process that has ended."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, one_thread):
    """A finished 30-step GAMO run (snapshots every 5 steps) that each test copies and damages."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert main([*TRAIN, "--method", "gamo", "--steps", "30", "--snapshot-every", "5", "--out", str(out),
                 "--quiet"]) == 0
    return out


@pytest.fixture
def run(base_run, tmp_path):
    d = tmp_path / "runs" / "r"
    shutil.copytree(base_run, d)
    return d


# --- Runs that are damaged or half-written ---------------------------------------------------
DAMAGES = {
    "final truncated": ("final.json", '{"acsa": 0.5, "gm'),
    "final list": ("final.json", "[1, 2]"),
    "final null": ("final.json", "null"),
    "final non-numeric": ("final.json", '{"acsa": "high", "gm": 0.5, "step": "ten", "complete": true}'),
    "final huge int": ("final.json", '{"acsa": 0.5, "gm": 0.5, "step": ' + "9" * 400 + "}"),
    "status truncated": ("status.json", '{"state": "run'),
    "status list": ("status.json", '["running"]'),
    "status null": ("status.json", "null"),
    "status non-numeric": ("status.json", '{"state": "finished", "step": [30]}'),
    "config list": ("config.json", "[]"),
    "config null": ("config.json", "null"),
    "config directory": ("config.json", None),
    "config truncated": ("config.json", '{"data": {"dataset": "toy:moons"'),
    "config unknown key": ("config.json", "UNKNOWN"),
    "config wrong type": ("config.json", "WRONGTYPE"),
}


def _damage(d: Path, case: str) -> None:
    name, text = DAMAGES[case]
    path = d / name
    if text is None:
        path.unlink()
        path.mkdir()
    elif text in ("UNKNOWN", "WRONGTYPE"):
        cfg = json.loads(path.read_text())
        if text == "UNKNOWN":
            cfg["train"]["warmup"] = 3
        else:
            cfg["model"]["hidden"] = "16"
        path.write_text(json.dumps(cfg))
    else:
        path.write_text(text)


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_list_shows_every_folder_damaged_ones_with_the_reason(case, run, base_run, capsys):
    shutil.copytree(base_run, run.parent / "good")
    _damage(run, case)
    rc, out, err = run_cli(["list", "--root", run.parent], capsys)
    assert rc == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {str(run), str(run.parent / "good")}
    assert " finished " in rows[str(run.parent / "good")]
    bad = rows[str(run)]
    assert " broken " in bad and DAMAGES[case][0] in bad, bad
    if case.startswith("final") or case.startswith("status"):   # the config is fine: what it is, is shown
        assert " gamo " in bad and "toy:moons" in bad


@pytest.mark.parametrize("case", [c for c in sorted(DAMAGES) if c.startswith("config")])
def test_a_damaged_config_is_one_line_for_sample_and_resume(case, run, tmp_path, capsys):
    _damage(run, case)
    before = files(run)
    line = one_line_error(*run_cli(["sample", "--run", run, "--out", tmp_path / "s.npz"], capsys)[::2])
    assert "config.json" in line
    line = one_line_error(*run_cli(["train", "--resume", run, "--steps", "40"], capsys)[::2])
    assert "config.json" in line
    assert files(run) == before and not (tmp_path / "s.npz").exists()


def _other_structure(d: Path) -> None:
    torch.save({"step": 3, "modules": {"X": {}}, "optimizers": {}}, d / "checkpoint.pt")


def _not_a_dict(d: Path) -> None:
    torch.save(torch.zeros(3), d / "checkpoint.pt")


def _garbage_checkpoint(d: Path) -> None:
    (d / "checkpoint.pt").write_bytes(os.urandom(500))


def _edit_config(**train_or_model):
    def edit(d: Path) -> None:
        cfg = json.loads((d / "config.json").read_text())
        for k, v in train_or_model.items():
            cfg["model" if k in ("hidden", "latent") else "train"][k] = v
        (d / "config.json").write_text(json.dumps(cfg))
    return edit


def _old_checkpoint(d: Path) -> None:
    """A checkpoint as runs made before this change saved it (no method name in it)."""
    state = torch.load(d / "checkpoint.pt", weights_only=True)
    state.pop("method", None)
    torch.save(state, d / "checkpoint.pt")


CHECKPOINT_FAULTS = {
    "checkpoint of another structure": _other_structure,
    "checkpoint not a dict": _not_a_dict,
    "checkpoint garbage": _garbage_checkpoint,
    "config edited to another hidden size": _edit_config(hidden=32),
    "config edited to another latent size": _edit_config(latent=4),
    "config edited to another method": _edit_config(method="gamo_no_d"),
    "config edited to baseline": _edit_config(method="baseline"),
    "old checkpoint, config edited to another method": lambda d: (_old_checkpoint(d), _edit_config(method="cg")(d)),
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_FAULTS))
def test_a_checkpoint_that_does_not_fit_is_one_line(case, run, tmp_path, capsys):
    CHECKPOINT_FAULTS[case](run)
    before = files(run)
    line = one_line_error(*run_cli(["sample", "--run", run, "--out", tmp_path / "s.npz"], capsys)[::2])
    assert "checkpoint" in line
    line = one_line_error(*run_cli(["train", "--resume", run, "--steps", "40"], capsys)[::2])
    assert "checkpoint" in line
    assert files(run) == before and not (tmp_path / "s.npz").exists()


def _pickled_indices(d: Path) -> None:
    np.savez(d / "indices.npz", train_idx=np.array([object()], dtype=object), test_idx=np.arange(3))


INDEX_FAULTS = {
    "garbage": lambda d: (d / "indices.npz").write_bytes(os.urandom(300)),
    "truncated": lambda d: (d / "indices.npz").write_bytes((d / "indices.npz").read_bytes()[:200]),
    "wrong keys": lambda d: np.savez(d / "indices.npz", a=np.arange(3)),
    "a single array": lambda d: np.save(open(d / "indices.npz", "wb"), np.arange(3)),
    "pickled arrays": _pickled_indices,
}


@pytest.mark.parametrize("case", sorted(INDEX_FAULTS))
def test_a_damaged_indices_file_is_one_line(case, run, tmp_path, capsys):
    INDEX_FAULTS[case](run)
    before = files(run)
    line = one_line_error(*run_cli(["sample", "--run", run, "--out", tmp_path / "s.npz"], capsys)[::2])
    assert "indices.npz" in line
    line = one_line_error(*run_cli(["train", "--resume", run, "--steps", "40"], capsys)[::2])
    assert "indices.npz" in line
    assert files(run) == before


def test_metrics_truncated_mid_line_then_resumed_drops_the_partial_line(run, capsys):
    before = steps_of(run)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text[:-40])              # the step-30 record cut mid-line
    rc, _, err = run_cli(["train", "--resume", run, "--steps", "45", "--quiet"], capsys)
    assert rc == 0, err
    steps = steps_of(run)                                        # every line parses: nothing glued
    assert before[-1] == 30 and [s for s in steps if s <= 30] == before   # the step-30 record made again
    assert steps == sorted(set(steps)) and steps[-1] == 45
    assert json.loads((run / "final.json").read_text())["step"] == 45


# --- Killed runs ------------------------------------------------------------------------------
def _as_killed(d: Path, keep_checkpoint: bool, keep_records: int) -> None:
    """What SIGKILL leaves: status "running" of a process that is gone, no final results,
    metrics.jsonl ending in a partial line."""
    lines = (d / "metrics.jsonl").read_text().splitlines(keepends=True)
    (d / "metrics.jsonl").write_text("".join(lines[:keep_records]) + lines[keep_records][:25])
    for name in ("final.json", "samples.npz") + (() if keep_checkpoint else ("checkpoint.pt",)):
        (d / name).unlink()
    (d / "status.json").write_text(json.dumps({"state": "running", "step": None, "pid": dead_pid(),
                                               "host": socket.gethostname()}))


def test_a_run_killed_before_its_first_checkpoint_is_shown_dead_and_can_be_continued(run, base_run, capsys):
    _as_killed(run, keep_checkpoint=False, keep_records=2)
    rc, out, _ = run_cli(["list", "--root", run.parent], capsys)
    row = out.splitlines()[1]
    assert rc == 0 and " dead " in row and "--resume" in row and " running " not in row
    # one way forward: train --out says to resume it, and resuming it works (from step 0)
    line = one_line_error(*run_cli([*TRAIN, "--method", "gamo", "--steps", "30", "--out", run], capsys)[::2])
    assert f"--resume {run}" in line
    rc, _, err = run_cli(["train", "--resume", run, "--quiet"], capsys)
    assert rc == 0, err
    assert steps_of(run) == steps_of(base_run)                   # the same records as a run never killed
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 30
    assert "finished" in run_cli(["list", "--root", run.parent], capsys)[1].splitlines()[1]


def test_a_run_killed_after_a_checkpoint_drops_the_records_past_it_atomically(run, capsys, monkeypatch):
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # records written after the step-30 checkpoint by the killed process, with a better val. GM
    extra = [dict(recs[-1], step=s, val=dict(recs[-1]["val"], gm=1.0), killed=True) for s in (35, 40, 45)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs + extra) + '{"step": 5')
    (run / "final.json").unlink()
    (run / "status.json").write_text(json.dumps({"state": "running", "step": None, "pid": dead_pid(),
                                                 "host": socket.gethostname()}))
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr("gamo.runs.os.replace", lambda a, b: (replaced.append(Path(b).name), real_replace(a, b)))
    rc, _, err = run_cli(["train", "--resume", run, "--steps", "60", "--quiet"], capsys)
    assert rc == 0, err
    assert "metrics.jsonl" in replaced                           # rewritten through a rename
    steps = steps_of(run)
    assert steps == sorted(set(steps)) and steps[-1] == 60       # strictly increasing, no duplicates
    kept = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert not any(r.get("killed") for r in kept)
    best = json.loads((run / "final.json").read_text())["best_val"]
    assert best["val"]["gm"] < 1.0 and best["evaluated"] == sum("val" in r for r in kept)


def test_metrics_that_went_back_in_an_older_resume_are_made_strictly_increasing(run, capsys):
    """A run resumed by the code before this fix has duplicate steps and steps going back: the
    later records are the trajectory the checkpoint continues, the earlier ones are dropped."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    again = [dict(r, again=True) for r in recs if r["step"] >= 20]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs + again))
    rc, _, err = run_cli(["train", "--resume", run, "--steps", "40", "--quiet"], capsys)
    assert rc == 0, err
    kept = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in kept]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    assert all(r.get("again") for r in kept if 20 <= r["step"] <= 30)


def test_ctrl_c_while_the_data_is_written_leaves_a_stopped_run(tmp_path, capsys, monkeypatch):
    from gamo.runs import RunWriter

    def interrupted(self, data, dense):
        (self.dir / "indices.npz.tmp").write_bytes(b"half")
        raise KeyboardInterrupt
    d = tmp_path / "r"
    with monkeypatch.context() as m:
        m.setattr(RunWriter, "write_data", interrupted)
        rc, _, err = run_cli([*TRAIN, "--method", "gamo", "--steps", "20", "--out", d, "--quiet"], capsys)
    line = one_line_error(rc, err, code=130)
    assert "resume" in line
    assert json.loads((d / "status.json").read_text())["state"] == "stopped"
    rc, out, _ = run_cli(["list", "--root", tmp_path], capsys)
    assert " stopped " in out.splitlines()[1]
    rc, _, err = run_cli(["train", "--resume", d, "--quiet"], capsys)
    assert rc == 0, err
    assert (d / "indices.npz").is_file() and (d / "data.npz").is_file() and (d / "samples.npz").is_file()
    assert steps_of(d)[-1] == 20


def test_ctrl_c_while_the_data_loads_is_one_line_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import gamo.train

    def interrupted(cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(gamo.train, "load_dataset", interrupted)
    d = tmp_path / "r"
    one_line_error(*run_cli([*TRAIN, "--steps", "20", "--out", d], capsys)[::2], code=130)
    assert not d.exists()


@pytest.mark.parametrize("flags", [["--method", "baseline"], ["--method", "gamo"], ["--out", "elsewhere"],
                                   ["--lr-m", "0.001"], ["--hidden", "32", "--seed", "3"], ["--dataset", "toy:circles"]])
def test_resume_refuses_flags_that_cannot_apply(flags, run, capsys):
    before = files(run)
    line = one_line_error(*run_cli(["train", "--resume", run, "--steps", "40", *flags], capsys)[::2])
    for flag in flags[::2]:
        assert flag in line
    assert files(run) == before


def test_resume_applies_and_records_the_flags_that_can(run, capsys):
    rc, _, err = run_cli(["train", "--resume", run, "--epochs", "5", "--snapshot-every", "10", "--quiet"], capsys)
    assert rc == 0, err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["epochs"] == 5 and cfg["train"]["steps"] == 0 and cfg["train"]["snapshot_every"] == 10
    steps = steps_of(run)
    assert steps == sorted(set(steps)) and steps[-1] == json.loads((run / "final.json").read_text())["step"] > 30


# --- Data the user cares about ----------------------------------------------------------------
def test_train_never_writes_into_a_folder_that_is_not_a_run(tmp_path, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("my notes")
    (d / "metrics.jsonl").write_text("my own metrics\n")
    before = files(d)
    line = one_line_error(*run_cli([*TRAIN, "--steps", "5", "--out", d], capsys)[::2])
    assert "--out" in line and "notes.txt" in line
    assert files(d) == before and sorted(p.name for p in d.iterdir()) == ["metrics.jsonl", "notes.txt"]


def test_training_a_table_into_its_own_folder_keeps_the_table(tmp_path, capsys):
    d = tmp_path / "D"
    d.mkdir()
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", x=rng.normal(size=(200, 3)), label=np.r_[np.zeros(160), np.ones(40)].astype(int))
    before = (d / "data.npz").read_bytes()
    line = one_line_error(*run_cli(["train", "--dataset", f"table:{d / 'data.npz'}", "--profile", "none",
                                    "--test-per-class", "10", "--val-per-class", "0", "--steps", "5",
                                    "--out", d], capsys)[::2])
    assert "--out" in line
    assert (d / "data.npz").read_bytes() == before and sorted(p.name for p in d.iterdir()) == ["data.npz"]


@pytest.mark.parametrize("name", ["indices.npz", "data.npz", "samples.npz", "link.npz"])
def test_sample_never_overwrites_the_runs_own_files(name, run, capsys):
    if name == "link.npz":
        os.symlink(run / "indices.npz", run / "link.npz")
    before = files(run)
    line = one_line_error(*run_cli(["sample", "--run", run, "--out", run / name], capsys)[::2])
    assert "--out" in line
    assert files(run) == before
    assert run_cli(["sample", "--run", run, "--out", run / "balanced.npz"], capsys)[0] == 0   # a new name is fine


def test_sample_out_that_cannot_be_written_is_one_line(run, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.npz").mkdir()
    for out in (tmp_path / "dir.npz", tmp_path / "file" / "s.npz", "/proc/gamo-test.npz", "/sys/gamo-test/s.npz"):
        line = one_line_error(*run_cli(["sample", "--run", run, "--out", out], capsys)[::2])
        assert "--out" in line, line
    assert (tmp_path / "file").read_text() == "x" and not any((tmp_path / "dir.npz").iterdir())


def test_train_out_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out in ("/sys/gamo-test-run", tmp_path / "file" / "run", tmp_path / "file"):
        one_line_error(*run_cli([*TRAIN, "--steps", "5", "--out", out], capsys)[::2])
    assert (tmp_path / "file").read_text() == "x" and not os.path.exists("/sys/gamo-test-run")


def test_sample_does_not_read_a_table_outside_the_run(tmp_path, capsys, monkeypatch):
    src = tmp_path / "elsewhere" / "t.npz"
    src.parent.mkdir()
    rng = np.random.default_rng(1)
    np.savez(src, x=rng.normal(size=(200, 3)), label=np.r_[np.zeros(170), np.ones(30)].astype(int))
    d = tmp_path / "tab"
    rc, _, err = run_cli(["train", "--dataset", f"table:{src}", "--profile", "none", "--test-per-class", "10",
                          "--val-per-class", "5", "--method", "gamo", "--steps", "10", "--hidden", "16",
                          "--latent", "8", "--out", d, "--quiet"], capsys)
    assert rc == 0, err
    src.unlink()                       # the table moved, or the config points somewhere else
    import gamo.data
    monkeypatch.setattr(gamo.data, "load_table_file", lambda *a: pytest.fail("read the table outside the run"))
    rc, out, err = run_cli(["sample", "--run", d, "--out", tmp_path / "s.npz"], capsys)
    assert rc == 0, err
    with np.load(tmp_path / "s.npz") as f, np.load(d / "data.npz") as g:
        assert np.array_equal(f["x"][~f["synthetic"]], g["x_train"])
        assert np.bincount(f["y"]).tolist() == [160, 160]


def test_sample_does_not_follow_a_crafted_data_root(run, tmp_path, capsys):
    cfg = json.loads((run / "config.json").read_text())
    outside = tmp_path / "outside" / "deep"
    cfg["data"].update(dataset="mnist", profile="none", data_root=str(outside), download=True)
    (run / "config.json").write_text(json.dumps(cfg))
    given = tmp_path / "given"
    given.mkdir()
    line = one_line_error(*run_cli(["sample", "--run", run, "--out", tmp_path / "s.npz", "--data-root", given],
                                   capsys)[::2])
    assert str(given) in line
    one_line_error(*run_cli(["sample", "--run", run, "--out", tmp_path / "s.npz"], capsys)[::2])
    assert not (tmp_path / "outside").exists() and not any(given.iterdir())


# --- gamo list never crashes ---------------------------------------------------------------
def test_list_never_crashes_on_any_folder(base_run, tmp_path, capsys):
    root = tmp_path / "root"
    contents = {"empty file": b"", "binary": os.urandom(64) + b"\xff\xfe", "number": b"3", "string": b'"x"',
                "true": b"true", "nan": b'{"state": NaN, "step": NaN, "acsa": Infinity, "gm": -Infinity}',
                "deep": b"[" * 5000 + b"]" * 5000, "nested": b'{"state": {"a": 1}, "step": {"b": 2}}',
                "huge": b'{"step": 1e999, "acsa": 1e308}', "utf16": '{"state": "x"}'.encode("utf-16")}
    n = 0
    for marker in ("config.json", "status.json", "final.json", "checkpoint.pt", "metrics.jsonl"):
        for label, raw in contents.items():
            d = root / f"{marker}-{label}"
            d.mkdir(parents=True)
            (d / marker).write_bytes(raw)
            n += 1
        d = root / f"{marker}-dir"
        (d / marker).mkdir(parents=True)
        d = root / f"{marker}-dangling"
        d.mkdir()
        os.symlink(d / "nowhere", d / marker)
        n += 2
    # a good run with every other file damaged in turn, a run in a run, a link loop, odd names
    for name in ("final.json", "status.json"):
        d = root / f"good-{name}"
        shutil.copytree(base_run, d)
        (d / name).write_bytes(b"\x00")
        n += 1
    shutil.copytree(base_run, root / "outer")
    shutil.copytree(base_run, root / "outer" / "inner")
    os.symlink(root, root / "outer" / "loop")
    odd = root / "name with spaces\tand tab ü"
    shutil.copytree(base_run, odd)
    n += 3
    cfg = json.loads((base_run / "config.json").read_text())
    for i, (section, key, value) in enumerate([("train", "steps", None), ("train", "method", "nope"),
                                               ("data", "noise", "x"), ("model", "hidden", True),
                                               ("train", "lr_m", float("nan")), ("data", "seed", 2**70)]):
        d = root / f"cfg-{i}"
        d.mkdir()
        bad = json.loads(json.dumps(cfg))
        bad[section][key] = value
        (d / "config.json").write_text(json.dumps(bad))
        n += 1
    rc, out, err = run_cli(["list", "--root", root], capsys)
    assert rc == 0, err
    rows = out.splitlines()[1:]
    assert len(rows) == n == len(list_runs(root))
    assert sum(" finished " in r for r in rows) == 3 and "Traceback" not in out + err   # outer, inner, odd
    # a root that is a file, or missing
    for r in (base_run / "config.json", tmp_path / "missing"):
        rc, out, _ = run_cli(["list", "--root", r], capsys)
        assert rc == 0 and "no runs" in out


# --- fault injection ---------------------------------------------------------------------------
def test_runs_killed_at_random_points_resume_to_the_same_end(tmp_path, capsys):
    """SIGKILL and SIGINT at random points (while starting, writing the data, training,
    checkpointing), then resume: metrics.jsonl stays whole and strictly increasing, and the
    final checkpoint is at the step an uninterrupted run ends at."""
    steps = 600
    args = ["--method", "gamo", "--steps", str(steps), "--snapshot-every", "10", "--threads", "1", "--quiet"]
    ref = tmp_path / "ref"
    assert main([*TRAIN, *args, "--out", str(ref)]) == 0
    ref_steps = steps_of(ref)
    ref_end = torch.load(ref / "checkpoint.pt", weights_only=True)["step"]

    d = tmp_path / "runs" / "killed"
    rng = random.Random(15)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    kills = [(signal.SIGKILL, "early"), (signal.SIGINT, "training"), (signal.SIGKILL, "training"),
             (signal.SIGINT, "training")]
    rng.shuffle(kills)
    def command() -> list[str]:   # resume once the run exists (with or without a checkpoint)
        return ([sys.executable, "-m", "gamo", "train", "--resume", str(d), "--quiet", "--threads", "1"]
                if (d / "config.json").exists() else [sys.executable, "-m", "gamo", *TRAIN, *args, "--out", str(d)])

    for sig, when in kills:
        cmd = command()
        before = n_records(d / "metrics.jsonl")
        # Python's own Ctrl-C handling in the child however pytest was started (a shell's
        # background job starts with SIGINT ignored, and children inherit that)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        t_end = time.monotonic() + 90   # a loaded machine starts slowly: never a SIGINT mid-import
        if when == "early":         # imports, data, the folder being made
            time.sleep(rng.uniform(0.5, 3.0))
        else:                       # while training: once new records appear
            while p.poll() is None and n_records(d / "metrics.jsonl") <= before + 1 \
                    and time.monotonic() < t_end:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        assert "Traceback" not in err, err
        assert p.returncode in ((0, 130) if sig == signal.SIGINT else (0, -signal.SIGKILL)), err
        infos = list_runs(d.parent)                               # never crashes, never "running"
        assert all(i.state in ("dead", "stopped", "finished") for i in infos), infos
    rc = subprocess.run(command(), capture_output=True, text=True, env=env, timeout=120)
    assert rc.returncode == 0 or (rc.returncode == 2 and "already ran" in rc.stderr), rc.stderr
    got = steps_of(d)
    assert got == sorted(set(got))                               # strictly increasing, no duplicates
    assert set(ref_steps) <= set(got)                            # extra steps only where Ctrl-C stopped it
    assert torch.load(d / "checkpoint.pt", weights_only=True)["step"] == ref_end == steps
    assert json.loads((d / "final.json").read_text())["step"] == steps
    assert [i.state for i in list_runs(d.parent)] == ["finished"]
