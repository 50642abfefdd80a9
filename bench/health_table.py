"""Generator health per minority class over epochs, for GAMO-family runs on one dataset.

Trains (or resumes, or reuses) one run per method with the given seed and epochs, then writes a
Markdown table per method: for each minority class and each evaluated epoch, the fixed-noise
batch's effective parents (exp of the convex weights' entropy, mean over points), its distinct
heaviest parents out of the batch, and its self-spread (the points' mean distance to their own
centroid over the class's mean distance to its centroid), from the runs' ``metrics.jsonl``.

    python bench/health_table.py --dataset fashion-mnist --methods gamo gamo_no_d --epochs 8 --seed 0
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, git_rev, machine  # noqa: E402


def run_dir(out: Path, method: str, seed: int) -> Path:
    return out / f"{method}-seed{seed}"


def ensure_run(d: Path, dataset: str, method: str, seed: int, epochs: int, threads: int) -> None:
    """Train the run unless it finished; resume it where it stopped."""
    fin = d / "final.json"
    if fin.exists() and json.loads(fin.read_text()).get("complete"):
        return
    if (d / "checkpoint.pt").exists():
        cmd = [sys.executable, "-m", "gamo", "train", "--resume", str(d)]
    else:
        cmd = [sys.executable, "-m", "gamo", "train", "--dataset", dataset, "--profile", "paper", "--method", method,
               "--loss", "ls", "--epochs", str(epochs), "--seed", str(seed), "--snapshot-every", "0",
               "--threads", str(threads), "--out", str(d)]
    subprocess.run(cmd, check=True, cwd=ROOT)


def epoch_records(d: Path) -> list[dict]:
    """The metrics.jsonl records with health at whole epochs >= 1, one per epoch (the last)."""
    recs = {}
    for line in (d / "metrics.jsonl").read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if r.get("health") and r["epoch"] >= 1 and float(r["epoch"]).is_integer():
            recs[int(r["epoch"])] = r
    return [recs[e] for e in sorted(recs)]


def method_table(method: str, recs: list[dict]) -> list[str]:
    classes = sorted(recs[0]["health"], key=int)
    head = "| class | " + " | ".join(f"epoch {int(r['epoch'])}" for r in recs) + " |"
    lines = [head, "|---|" + "---|" * len(recs)]
    for c in classes:
        cells = []
        for r in recs:
            h = r["health"][c]
            mark = " **collapsed**" if h["collapsed"] else ""
            cells.append(f"{h['eff_parents']:.1f} / {h['distinct_top']}/{h['n']} / {h['spread_self']:.2f}{mark}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    worst = []
    for r in recs:
        hs = list(r["health"].values())
        worst.append(f"{min(h['eff_parents'] for h in hs):.1f} / {min(h['distinct_top'] for h in hs)} / "
                     f"{min(h['spread_self'] for h in hs):.2f}")
    lines.append("| worst | " + " | ".join(worst) + " |")
    lines.append("| test GM | " + " | ".join(f"{r['test']['gm']:.3f}" for r in recs) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--methods", nargs="+", default=["gamo", "gamo_no_d"])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", default=None, help="where the runs are stored (default bench/out/health/<dataset>)")
    ap.add_argument("--out", default=None, help="Markdown path (default bench/results/health_<dataset>.md)")
    ap.add_argument("--no-train", action="store_true", help="only read runs that exist")
    a = ap.parse_args(argv)
    runs = ROOT / (a.runs or f"bench/out/health/{a.dataset}")
    out = Path(a.out) if a.out else ROOT / "bench" / "results" / f"health_{a.dataset}.md"
    lines = [f"# Generator health per minority class: {a.dataset}, paper profile, LS, seed {a.seed}", "",
             f"- command: `{command()}` (commit {git_rev()})", f"- machine: {machine()}",
             "- each cell: effective parents (mean exp-entropy of the convex weights) / distinct heaviest "
             "parents among the class's fixed-noise points / self-spread (their mean distance to their own "
             "centroid over the class members' mean distance to the class centroid); **collapsed** when one "
             "distinct parent or a self-spread under 1/3 (gamo/health.py)", ""]
    for method in a.methods:
        d = run_dir(runs, method, a.seed)
        if not a.no_train:
            ensure_run(d, a.dataset, method, a.seed, a.epochs, a.threads)
        if not (d / "metrics.jsonl").exists():
            lines += [f"## {method}", "", "no run", ""]
            continue
        recs = epoch_records(d)
        lines += [f"## {method} ({d.relative_to(ROOT)})", ""] + (method_table(method, recs) if recs else ["no epochs"]) + [""]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
