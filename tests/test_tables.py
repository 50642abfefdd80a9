"""`python -m gamo bench table1` end to end on a tiny profile: runs, skips, table."""
from __future__ import annotations

import csv
import json
import time

import pytest

from gamo.cli import main


def test_bench_table_runs_skips_and_writes(tmp_path, capsys):
    root, out = tmp_path / "runs", tmp_path / "t1"
    args = ["bench", "table1", "--dataset", "digits", "--seeds", "0", "1", "--methods", "baseline", "gamo",
            "--profile", "counts:20,20,20,20,20,10,10,6,4,4", "--test-per-class", "5", "--steps", "8",
            "--root", str(root), "--out", str(out), "--quiet"]
    assert main(args) == 0
    finals = sorted(root.rglob("final.json"))
    assert len(finals) == 4 and all(json.loads(f.read_text())["complete"] for f in finals)
    rows = {r["method"]: r for r in csv.DictReader(open(out.with_suffix(".csv")))}
    assert set(rows) == {"baseline", "gamo"}
    assert rows["gamo"]["n_seeds"] == "2" and rows["gamo"]["paper_acsa"] == "0.91"
    mean = (json.loads((root / "digits-ls" / "gamo-seed0" / "final.json").read_text())["acsa"]
            + json.loads((root / "digits-ls" / "gamo-seed1" / "final.json").read_text())["acsa"]) / 2
    assert float(rows["gamo"]["acsa_mean"]) == pytest.approx(mean)
    md = out.with_suffix(".md").read_text()
    assert "| GAMO |" in md and "0.91" in md
    assert "its MNIST (flattened) column" in md        # what the paper's column is, for digits
    # both protocols: the last epoch and the best validation epoch, each from the runs' final.json
    assert "| method | ACSA (last epoch) | GM (last epoch) | ACSA (best val. epoch) | GM (best val. epoch) |" in md
    bests = [json.loads((root / "digits-ls" / f"gamo-seed{s}" / "final.json").read_text())["best_val"]
             for s in (0, 1)]
    assert all(b is not None and b["val_per_class"] == 100 for b in bests)
    assert rows["gamo"]["best_val_n_seeds"] == "2"
    assert float(rows["gamo"]["best_val_gm_mean"]) == pytest.approx((bests[0]["test"]["gm"] + bests[1]["test"]["gm"]) / 2)
    assert "(100 per class; equal GMs by validation ACSA, then the earliest)" in md
    capsys.readouterr()

    # a second call skips the finished runs (their files are untouched)
    stamp = {f: f.stat().st_mtime_ns for f in finals}
    assert main(args[:-1]) == 0
    assert "skip" in capsys.readouterr().err
    assert all(f.stat().st_mtime_ns == t for f, t in stamp.items())

    # a call for seed 1 alone still writes the table over every finished seed in the store
    one = args[:args.index("--seeds")] + ["--seeds", "1"] + args[args.index("--methods"):-1]
    assert main(one) == 0
    rows = {r["method"]: r for r in csv.DictReader(open(out.with_suffix(".csv")))}
    assert rows["gamo"]["n_seeds"] == "2" and float(rows["gamo"]["acsa_mean"]) == pytest.approx(mean)


def test_bench_rejects_a_dataset_outside_the_table(tmp_path, capsys):
    assert main(["bench", "table2", "--dataset", "digits", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "table2 covers" in err[0]


def test_parallel_table_runner_fills_cells_and_stops_at_its_deadline(tmp_path, capsys):
    """bench/table_parallel.py: each cell its own process, shared run store, a deadline that
    leaves resumable checkpoints, slowest methods first within a seed."""
    from bench import table_parallel as tp

    assert tp.cells(["baseline", "gamo", "dos"], [0, 1]) == [
        ("dos", 0), ("gamo", 0), ("baseline", 0), ("dos", 1), ("gamo", 1), ("baseline", 1)]
    tiny = ["table1", "--dataset", "digits", "--profile", "counts:20,20,20,20,20,10,10,6,4,4",
            "--test-per-class", "5", "--seeds", "0"]
    root, out = tmp_path / "runs", tmp_path / "t1"
    assert tp.main(tiny + ["--methods", "baseline", "gamo", "--steps", "8", "--jobs", "2",
                           "--root", str(root), "--out", str(out)]) == 0
    for m in ("baseline", "gamo"):
        final = json.loads((root / "digits-ls" / f"{m}-seed0" / "final.json").read_text())
        assert final["complete"] and final["device"] == "cpu" and final["torch"]
    assert "| GAMO |" in out.with_suffix(".md").read_text()
    assert "cpu (torch" in out.with_suffix(".md").read_text()

    # a run far longer than the deadline is interrupted and leaves a checkpoint to resume from
    root2 = tmp_path / "runs2"
    assert tp.main(tiny + ["--methods", "baseline", "--steps", "1000000", "--deadline", "15",
                           "--root", str(root2), "--out", str(tmp_path / "t2")]) == 0
    run = root2 / "digits-ls" / "baseline-seed0"
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert (run / "checkpoint.pt").exists() and not (run / "final.json").exists()
    capsys.readouterr()

    # Ctrl-C on the runner stops its cells the same way (they do not run on without it)
    import signal
    import threading

    root3 = tmp_path / "runs3"
    run3 = root3 / "digits-ls" / "baseline-seed0"
    def interrupt_once_running() -> None:   # once the cell has made its run (slow on a loaded machine)
        deadline = time.monotonic() + 90
        while not (run3 / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        signal.raise_signal(signal.SIGINT)

    timer = threading.Thread(target=interrupt_once_running, daemon=True)
    timer.start()
    try:
        code = tp.main(tiny + ["--methods", "baseline", "--steps", "1000000", "--deadline", "120",
                               "--root", str(root3), "--out", str(tmp_path / "t3")])
    finally:
        timer.join(timeout=120)
    assert code == 130
    assert json.loads((run3 / "status.json").read_text())["state"] == "stopped"
    assert (run3 / "checkpoint.pt").exists() and not (run3 / "final.json").exists()
    assert "interrupted: interrupting 1 cells" in capsys.readouterr().out


def test_table_header_of_another_dataset_has_no_digits_note(tmp_path):
    from gamo.tables import ROWS, write_table

    md = write_table("table1", "fashion-mnist", "ls", tmp_path, list(ROWS), [0], str(tmp_path / "t")).read_text()
    assert "fashion-mnist" in md and "| GAMO |" in md
    assert "MNIST (flattened)" not in md


def test_table_says_which_methods_beat_gamo(tmp_path):
    from gamo.tables import write_table

    def final(method: str, seed: int, acsa: float, gm: float) -> None:
        d = tmp_path / f"{method}-seed{seed}"
        d.mkdir()
        (d / "final.json").write_text(json.dumps({"acsa": acsa, "gm": gm, "complete": True}))

    final("gamo", 0, 0.80, 0.70)
    final("gamo", 1, 0.82, 0.74)             # GAMO: ACSA 0.81, GM 0.72
    final("smote", 0, 0.83, 0.71)            # above on ACSA, below on GM
    final("baseline", 0, 0.79, 0.75)         # below on ACSA, above on GM
    final("augment", 0, 0.85, 0.76)          # above on both
    md = write_table("table1", "fashion-mnist", "ls", tmp_path, ["baseline", "smote", "augment", "gamo"], [0, 1],
                     str(tmp_path / "t")).read_text()
    line = next(x for x in md.splitlines() if x.startswith("**Where GAMO stands**"))
    assert "GAMO: ACSA 0.810, GM 0.720, 2 seeds" in line
    assert "2 of 3 other methods have a higher mean ACSA -- Augment+CN (0.850), SMOTE+CN (0.830);" in line
    assert "2 a higher mean GM -- Augment+CN (0.760), Baseline CN (0.750)." in line
    # no GAMO run yet: no such line
    md = write_table("table1", "fashion-mnist", "ls", tmp_path, ["baseline", "smote"], [0],
                     str(tmp_path / "t2")).read_text()
    assert "Where GAMO stands" not in md


def test_table_gives_both_protocols_and_a_dash_for_runs_without_best_val(tmp_path):
    from gamo.tables import write_table

    def final(method: str, seed: int, acsa: float, gm: float, best: tuple[float, float] | None) -> None:
        d = tmp_path / f"{method}-seed{seed}"
        d.mkdir()
        r = {"acsa": acsa, "gm": gm, "complete": True}
        if best is not None:
            r["best_val"] = {"step": 10, "epoch": 1.0, "val": {"acsa": 0.9, "gm": 0.9}, "val_per_class": 100,
                             "test": {"acsa": best[0], "gm": best[1], "accuracy": best[0], "recall": []}}
        (d / "final.json").write_text(json.dumps(r))

    final("gamo", 0, 0.80, 0.70, (0.84, 0.80))
    final("gamo", 1, 0.82, 0.74, (0.86, 0.82))
    final("baseline", 0, 0.79, 0.75, None)               # stored before the validation split
    final("smote", 0, 0.83, 0.71, (0.85, 0.79))
    final("smote", 1, 0.81, 0.73, None)                  # one seed of two has best_val
    final("augment", 0, 0.70, 0.60, (0.99, 0.99))        # an old run resumed: its choice missed epochs
    r = json.loads((tmp_path / "augment-seed0" / "final.json").read_text())
    r["best_val"]["unscored"] = 3
    (tmp_path / "augment-seed0" / "final.json").write_text(json.dumps(r))
    out = tmp_path / "t"
    md = write_table("table1", "fashion-mnist", "ls", tmp_path, ["baseline", "smote", "augment", "gamo"], [0, 1],
                     str(out)).read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert rows["GAMO"] == "| GAMO | 0.810 ± 0.014 | 0.720 ± 0.028 | 0.850 ± 0.014 | 0.810 ± 0.014 | 0.83 | 0.81 | 0 1 |"
    assert rows["Baseline CN"].startswith("| Baseline CN | 0.790 | 0.750 | - | - | 0.81 | 0.79 | 0 (best val.: none) |")
    assert rows["SMOTE+CN"].startswith("| SMOTE+CN | 0.820 ± 0.014 | 0.720 ± 0.014 | 0.850 | 0.790 |")
    assert rows["SMOTE+CN"].endswith("| 0 1 (best val.: 0) |")
    assert rows["Augment+CN"].startswith("| Augment+CN | 0.700 | 0.600 | - | - |")
    # where GAMO stands, under each protocol
    lines = [x for x in md.splitlines() if x.startswith("**Where GAMO stands**")]
    assert len(lines) == 2
    assert lines[0].startswith("**Where GAMO stands** (last epoch:") and "GAMO: ACSA 0.810, GM 0.720" in lines[0]
    assert lines[1].startswith("**Where GAMO stands** (best val. epoch:") and "GAMO: ACSA 0.850, GM 0.810" in lines[1]
    assert "1 of 1 other methods have a higher mean ACSA -- SMOTE+CN (0.850)" not in lines[1]   # 0.850 is a tie
    assert "0 of 1 other methods have a higher mean ACSA" in lines[1]
    # the CSV keeps the last-epoch columns and adds the best-val ones ("" where there is none)
    csv_rows = {r["method"]: r for r in csv.DictReader(open(out.with_suffix(".csv")))}
    assert float(csv_rows["gamo"]["acsa_mean"]) == pytest.approx(0.81)
    assert float(csv_rows["gamo"]["best_val_acsa_mean"]) == pytest.approx(0.85)
    assert float(csv_rows["gamo"]["best_val_gm_std"]) == pytest.approx(0.0141421356)
    assert csv_rows["baseline"]["best_val_n_seeds"] == "0" and csv_rows["baseline"]["best_val_acsa_mean"] == ""
    assert csv_rows["smote"]["best_val_seeds"] == "0" and csv_rows["smote"]["best_val_gm_std"] == ""
