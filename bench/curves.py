"""Test ACSA / GM curves of stored runs (one row per snapshot) as CSV and a Markdown summary.

    python bench/curves.py RUN_DIR [RUN_DIR ...] --out bench/results/NAME
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import command, git_rev, machine, md_table  # noqa: E402
from gamo.config import METHOD_LABELS  # noqa: E402
from gamo.runs import load_config  # noqa: E402
from gamo.selection import BestVal  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows, summary, cmds = [], [], []
    for run in a.runs:
        d = Path(run)
        cfg = load_config(d)
        recs = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines() if line.strip()]
        label = METHOD_LABELS.get(cfg.train.method, cfg.train.method)
        for r in recs:
            rows.append([label, r["step"], r["epoch"], r["elapsed"], r["test"]["acsa"], r["test"]["gm"],
                         r.get("train", {}).get("acsa", "")])
        final = json.loads((d / "final.json").read_text()) if (d / "final.json").exists() else None
        best = max(recs, key=lambda r: r["test"]["acsa"])
        bv = BestVal.from_records(recs).to_dict()   # the sound choice: the epoch by validation GM
        last = recs[-1]
        per_epoch = last["elapsed"] / max(last["epoch"], 1e-9)
        summary.append([label, cfg.train.loss.upper(), f"{last['epoch']:.0f}", f"{last['test']['acsa']:.3f}",
                        f"{last['test']['gm']:.3f}",
                        f"{bv['test']['acsa']:.3f} / {bv['test']['gm']:.3f} (epoch {bv['epoch']:.0f})" if bv else "-",
                        f"{best['test']['acsa']:.3f} (epoch {best['epoch']:.0f})",
                        f"{last['elapsed'] / 60:.1f}", f"{per_epoch:.1f}",
                        "yes" if final and final.get("complete") else "no"])
        cmds.append(f"`{d}`: {cfg.data.dataset}, profile {cfg.data.profile}, seed {cfg.train.seed}, "
                    f"threads {cfg.train.threads or 'default'}, device {cfg.train.device}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "step", "epoch", "elapsed_s", "test_acsa", "test_gm", "train_acsa"])
        w.writerows(rows)
    md = "\n".join([
        "# Test ACSA / GM over training",
        "",
        f"- summary command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        "- runs: " + "; ".join(cmds),
        f"- per-snapshot curve: `{out.with_suffix('.csv').name}`",
        "",
        md_table(["method", "loss", "epochs", "final test ACSA", "final test GM",
                  "test ACSA / GM at the best val. epoch", "best test ACSA (chosen on test: optimistic)",
                  "wall minutes", "s/epoch (incl. evaluation)", "complete"], summary),
        "",
        "Wall times come from the runs' own clocks on a machine that may have been busy with other",
        "work; `bench/epoch_time.py` times epochs under controlled conditions.",
        "",
    ])
    out.with_suffix(".md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
