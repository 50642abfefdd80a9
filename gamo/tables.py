"""The paper's Tables 1 and 2 from one command: ``python -m gamo bench table1|table2 ...``.

Every method runs on the paper's protocol (profile, 100 test images per class, LS loss by default,
Algorithm 1's schedule) for each seed; each run is stored under ``--root`` and skipped when it
already finished (a stopped one is resumed), so a table grows across sessions. The table gives
the mean and standard deviation of test ACSA and GM per method over the finished seeds under two
protocols, with the paper's figures beside ours:

* **last epoch**: the test scores after the last epoch;
* **best val. epoch**: the test scores at the evaluated epoch with the highest GM on the
  balanced validation split (training images the profile left unused; equal GMs by validation ACSA, then the earliest), the
  paper's protocol. Runs stored before the validation split existed show "-" there.

One test evaluation of 100 images a class has a standard error of about 0.012 GM and epochs
swing by 0.016-0.03, so the last-epoch column alone says little about a method.
"""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from gamo.config import METHOD_LABELS, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.errors import ConfigError, GamoError

FAILED = "failed.json"

# Paper figures (mean ACSA, mean GM), Table 1 and Table 2; None where the paper reports none.
PAPER = {
    ("mnist", "ce"): {"baseline": (0.88, 0.87), "smote": (0.88, 0.87), "cgan": (0.88, 0.87), "cg": (0.86, 0.85),
                      "cg_d": (0.85, 0.83), "gamo_no_d": (0.87, 0.86), "gamo": (0.89, 0.88)},
    ("mnist", "ls"): {"baseline": (0.88, 0.86), "smote": (0.89, 0.89), "cgan": (0.89, 0.88), "cg": (0.86, 0.85),
                      "cg_d": (0.85, 0.82), "gamo_no_d": (0.88, 0.87), "gamo": (0.91, 0.90)},
    ("fashion-mnist", "ce"): {"baseline": (0.82, 0.80), "augment": (0.82, 0.78), "dos": (0.82, 0.79),
                              "cgan": (0.81, 0.78), "cg": (0.79, 0.77), "cg_d": (0.79, 0.78),
                              "gamo_no_d": (0.81, 0.80), "gamo": (0.82, 0.80)},
    ("fashion-mnist", "ls"): {"baseline": (0.81, 0.79), "augment": (0.82, 0.78), "dos": (0.81, 0.79),
                              "cgan": (0.82, 0.80), "cg": (0.80, 0.77), "cg_d": (0.79, 0.78),
                              "gamo_no_d": (0.82, 0.80), "gamo": (0.83, 0.81)},
    ("cifar10", "ls"): {"baseline": (0.45, 0.37), "augment": (0.47, 0.39), "cgan": (0.42, 0.32), "dos": (0.46, 0.37),
                        "gamo_no_d": (0.47, 0.40), "gamo": (0.49, 0.43)},
    ("svhn", "ls"): {"baseline": (0.74, 0.73), "augment": (0.69, 0.63), "cgan": (0.69, 0.66), "dos": (0.71, 0.68),
                     "gamo_no_d": (0.75, 0.75), "gamo": (0.76, 0.75)},
}
# the MNIST-style flattened ablation on the offline 8x8 digits is compared with the paper's MNIST column
PAPER[("digits", "ls")] = PAPER[("mnist", "ls")]
PAPER[("digits", "ce")] = PAPER[("mnist", "ce")]

TABLES = {"table1": ("mnist", "fashion-mnist", "digits"), "table2": ("cifar10", "svhn")}
# methods the engine has, in the paper's row order, then today's rivals
ROWS = ("baseline", "smote", "borderline_smote", "adasyn", "augment", "dos", "cgan", "cg", "cg_d", "gamo_no_d", "gamo",
        "class_weighted", "logit_adjusted", "ldam_drw")
# the official schedule: about 25,000 GAMO iterations (89 epochs for n = 9,000 at batch 32)
PAPER_EPOCHS = {"mnist": 89, "fashion-mnist": 89, "cifar10": 80, "svhn": 80,
                "digits": 500}  # digits: ~320 training images, 10 iterations an epoch; 5,000 iterations in all


def protocol(dataset: str, loss: str, seed: int, method: str, *, profile: str | None = None,
             epochs: int | None = None, steps: int | None = None, test_per_class: int | None = None,
             val_per_class: int | None = None, threads: int = 0, device: str = "auto",
             family: str = "auto") -> RunConfig:
    """The paper's protocol for one table cell (the flattened dense family for digits; ``family``
    "dense" flattens 28x28 images too: the paper's MNIST-style ablation of Figure 4).

    The validation split has ``val_per_class`` images a class (default
    ``DataConfig.n_val_per_class``), or as many as the class with the fewest unused training
    images has (digits: about 10 beside the 140 of the largest class).
    """
    n_val = DataConfig.n_val_per_class if val_per_class is None else val_per_class
    if dataset == "digits":
        # 8x8 digits have about 180 images per class: 30 test images, the paper's shape scaled to 140
        data = DataConfig(dataset="digits", profile=profile or "paper:max=140",
                          n_test_per_class=test_per_class or 30, n_val_per_class=n_val, seed=seed)
    else:
        data = DataConfig(dataset=dataset, profile=profile or "paper", n_test_per_class=test_per_class or 100,
                          n_val_per_class=n_val, seed=seed)
    n_epochs = 0 if steps else (epochs or PAPER_EPOCHS[dataset])
    train = TrainConfig(method=method, loss=loss, steps=steps or 0, epochs=n_epochs, seed=seed,
                        snapshot_every=0, threads=threads, device=device)
    return RunConfig(data=data, model=ModelConfig(family=family), train=train)


def store_name(dataset: str, loss: str, family: str = "auto") -> str:
    """The folder of a table's runs under ``--root``: ``<dataset>-<loss>``, or
    ``<dataset>-<family>-<loss>`` for a family other than the dataset's default."""
    return f"{dataset}-{loss}" if family == "auto" else f"{dataset}-{family}-{loss}"


def run_table(table: str, dataset: str, seeds: list[int], *, methods: list[str] | None = None, loss: str = "ls",
              root: str = "bench/results/runs", out: str | None = None, log=print, family: str = "auto",
              **overrides) -> Path:
    """Run (or skip/resume) every method x seed, then write the Markdown and CSV table."""
    from gamo.cli import execute_run
    from gamo.runs import CHECKPOINT, FINAL, load_checkpoint

    if dataset not in TABLES[table]:
        raise ConfigError(f"{table} covers {', '.join(TABLES[table])}, not {dataset!r}")
    methods = list(methods or ROWS)
    unknown = [m for m in methods if m not in METHOD_LABELS]
    if unknown:
        raise ConfigError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    base = Path(root) / store_name(dataset, loss, family)
    for seed in seeds:
        for method in methods:
            cfg = protocol(dataset, loss, seed, method, family=family, **overrides)
            run_dir = base / f"{method}-seed{seed}"
            final = run_dir / FINAL
            if final.exists() and json.loads(final.read_text()).get("complete"):
                log(f"skip {run_dir} (finished)")
                continue
            if (run_dir / FAILED).exists():
                log(f"skip {run_dir} (failed before: {json.loads((run_dir / FAILED).read_text())['error']})")
                continue
            try:
                if (run_dir / CHECKPOINT).exists():
                    log(f"resume {run_dir}")
                    execute_run(cfg, run_dir, state=load_checkpoint(run_dir), resume=True, log=log)
                else:
                    if run_dir.exists():  # a run that died before its first checkpoint: start it again
                        for f in run_dir.iterdir():
                            f.unlink()
                    log(f"run {run_dir}")
                    execute_run(cfg, run_dir, log=log)
            except GamoError as e:  # a method that cannot handle this data: say so in the table, go on
                log(f"failed {run_dir}: {e}")
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / FAILED).write_text(json.dumps({"error": str(e)}))
    return write_table(table, dataset, loss, base, methods, seeds, out, family=family)


def write_table(table: str, dataset: str, loss: str, base: Path, methods: list[str], seeds: list[int],
                out: str | None, family: str = "auto") -> Path:
    """Write the Markdown and CSV table of ``methods`` from the run store ``base``.

    Every finished seed in the store counts, not only ``seeds``: a call that ran seed 2 alone
    (or was interrupted) must not write over a table of seeds 0-2 with one of seed 2.

    Two protocols side by side, each the mean ± std of test ACSA and GM over finished seeds:
    the last epoch (final.json's ``acsa``/``gm``) and the best validation epoch (its
    ``best_val.test``); runs without ``best_val`` (stored before the validation split, or
    without one), or whose choice missed some of their epochs (``best_val.unscored``: an old run
    resumed), count in the first only, and a method none of whose runs has one shows "-".
    The CSV keeps ``acsa_mean`` ... ``gm_std`` for the last epoch and adds ``best_val_*``.
    """
    stored = {int(d.name.rsplit("-seed", 1)[1]) for m in methods for d in base.glob(f"{m}-seed*")
              if d.name.rsplit("-seed", 1)[1].isdigit() and (d / "final.json").exists()}
    seeds = sorted(set(seeds) | stored)
    rows, csv_rows = [], []
    machines: dict[str, int] = {}
    val_sizes: set[int] = set()
    paper = PAPER.get((dataset, loss), {})
    means: dict[str, tuple[list[float], list[float]]] = {}
    best_means: dict[str, tuple[list[float], list[float]]] = {}
    for method in methods:
        acsa, gm, done, failed = [], [], [], []
        b_acsa, b_gm, b_done = [], [], []
        means[method], best_means[method] = (acsa, gm), (b_acsa, b_gm)
        for seed in seeds:
            f = base / f"{method}-seed{seed}" / "final.json"
            bad = base / f"{method}-seed{seed}" / FAILED
            if bad.exists() and not f.exists():
                failed.append(json.loads(bad.read_text())["error"].split(";")[0])
            if f.exists():
                r = json.loads(f.read_text())
                if r.get("complete"):
                    acsa.append(r["acsa"]), gm.append(r["gm"]), done.append(seed)
                    where = f"{r.get('device', 'unrecorded device')} (torch {r.get('torch', '?')})"
                    machines[where] = machines.get(where, 0) + 1
                    b = r.get("best_val")
                    if b and not b.get("unscored"):   # chosen over every evaluated epoch of the run
                        b_acsa.append(b["test"]["acsa"]), b_gm.append(b["test"]["gm"]), b_done.append(seed)
                        if b.get("val_per_class"):
                            val_sizes.add(int(b["val_per_class"]))

        p = paper.get(method)
        note = " ".join(map(str, done)) or "none"
        if b_done != done:
            note += f" (best val.: {' '.join(map(str, b_done)) or 'none'})"
        if failed:
            note += f"; failed: {failed[0]}"
        rows.append([METHOD_LABELS[method], mean_std(acsa), mean_std(gm), mean_std(b_acsa), mean_std(b_gm),
                     f"{p[0]:.2f}" if p else "-", f"{p[1]:.2f}" if p else "-", note])
        csv_rows.append([method, len(done), *_mean_std(acsa), *_mean_std(gm),
                         len(b_done), *_mean_std(b_acsa), *_mean_std(b_gm),
                         p[0] if p else "", p[1] if p else "", " ".join(map(str, done)),
                         " ".join(map(str, b_done))])
    tag = dataset if family == "auto" else f"{dataset}-{family}"
    out_path = Path(out or f"bench/results/{table}_{tag}_{loss}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    header = ["method", "ACSA (last epoch)", "GM (last epoch)", "ACSA (best val. epoch)", "GM (best val. epoch)",
              "ACSA (paper)", "GM (paper)", "seeds finished"]
    sizes = ", ".join(map(str, sorted(val_sizes))) or "?"
    fam = "" if family == "auto" else f" --family {family}"
    lines = [f"# {table.capitalize()}: {tag}, {loss.upper()} loss, mean ± std over finished seeds", "",
             f"- command: `python -m gamo bench {table} --dataset {dataset}{fam} --loss {loss} --seeds {' '.join(map(str, seeds))}`",
             f"- runs stored under `{base}`"
             + ("; the paper's column for digits is its MNIST (flattened) column" if dataset == "digits" else "")
             + (f"; the paper's column is its {dataset} column, whose networks are convolutional: these runs "
                f"flatten the images (the paper's flattened ablation is on MNIST), so the comparison is loose"
                if family == "dense" and dataset != "digits" and paper else ""),
             "- finished runs by device: " + ("; ".join(f"{k}: {v}" for k, v in sorted(machines.items())) or "none"),
             "- test scores under two protocols: after the **last epoch**, and at the **best val. epoch**, the "
             "evaluated epoch with the highest GM on a balanced validation split of training images the profile "
             f"left unused ({sizes} per class; equal GMs by validation ACSA, then the earliest), as the paper selects; \"-\": runs stored "
             "before the validation split (or resumed from such a run)",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for standing in (gamo_standing(means), gamo_standing(best_means, "best val. epoch")):
        if standing:
            lines += ["", standing]
    out_path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    with open(out_path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "n_seeds", "acsa_mean", "acsa_std", "gm_mean", "gm_std",
                    "best_val_n_seeds", "best_val_acsa_mean", "best_val_acsa_std", "best_val_gm_mean",
                    "best_val_gm_std", "paper_acsa", "paper_gm", "seeds", "best_val_seeds"])
        w.writerows(csv_rows)
    return out_path.with_suffix(".md")


def mean_std(v: list[float], none: str = "-") -> str:
    """``mean ± std`` to 3 decimals (sample std); one value alone (no spread to report); ``none``
    for none. Tables, Figure 4's Markdown and the Ablation Grid page write means this one way."""
    if not v:
        return none
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}"


def _mean_std(v: list[float]) -> tuple[float | str, float | str]:
    """(mean, std) for the CSV; empty strings where there are too few values."""
    return (statistics.mean(v) if v else "", statistics.stdev(v) if len(v) > 1 else "")


def gamo_standing(results: dict[str, tuple[list[float], list[float]]], protocol: str = "last epoch") -> str | None:
    """One sentence on where GAMO's means stand in the table: the methods above it on ACSA and on
    GM (the paper reports GAMO first on both; a table must say so when a baseline wins).
    ``results`` maps a method to its finished seeds' ACSA and GM values under ``protocol``
    (``"last epoch"`` or ``"best val. epoch"``, named in the sentence)."""
    g_acsa, g_gm = results.get("gamo", ([], []))
    if not g_acsa:
        return None
    ga, gg = statistics.mean(g_acsa), statistics.mean(g_gm)
    others = {m: (statistics.mean(a), statistics.mean(g)) for m, (a, g) in results.items() if m != "gamo" and a}
    if not others:
        return None
    above_a = sorted((m for m, (a, _) in others.items() if a > ga), key=lambda m: -others[m][0])
    above_g = sorted((m for m, (_, g) in others.items() if g > gg), key=lambda m: -others[m][1])

    def names(ms: list[str], k: int) -> str:
        return ", ".join(f"{METHOD_LABELS[m]} ({others[m][k]:.3f})" for m in ms) or "none"

    n = len(g_acsa)
    return (f"**Where GAMO stands** ({protocol}: means over finished seeds; GAMO: ACSA {ga:.3f}, GM {gg:.3f}, "
            f"{n} seed{'s' if n != 1 else ''}): {len(above_a)} of {len(others)} other methods have a "
            f"higher mean ACSA -- {names(above_a, 0)}; {len(above_g)} a higher mean GM -- "
            f"{names(above_g, 1)}. With a few seeds, differences within one standard deviation "
            "(the table's ±) are not evidence either way.")
