"""Table 5 (Section 5): Fréchet distances of GAMO2pix's decoded samples and of cDCGAN's images.

For each seed: the GAMO conv run ``ROOT/gamo-seed<s>`` (its GAMO2pix decoders, trained first with
the defaults of :mod:`gamo.gamo2pix` where the run has none or unfinished ones, unless
``--no-train``) and the cDCGAN+CN conv run ``ROOT/cgan-seed<s>`` (method ``cgan``, same data and
seed). Per minority class, ``--n`` samples (GAMO2pix: GAMO's samples decoded; cDCGAN: its
generator's images, as it oversamples) are compared with the class's held-out real images: the
Fréchet distance between their means and covariances in the feature space of the dataset's
reference classifier (:mod:`gamo.reference`). The distances are averaged over the minority
classes (the paper: "calculated between real and artificial images from each class and averaged
over classes"), then mean ± std over seeds. Missing runs are skipped and listed.

    python bench/table5.py [--root bench/results/runs-ep20/fashion-mnist-ls] [--seeds 0 1 2] [--n 1000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import command, git_rev, machine, md_table  # noqa: E402

ROOT = "bench/results/runs-ep20/fashion-mnist-ls"


def _open_method(run: Path):
    """The stored run's Trainer (data read as ``python -m gamo sample`` reads it)."""
    from gamo.cli import _sample_data
    from gamo.runs import check_indices, load_checkpoint, load_config
    from gamo.train import Trainer

    cfg, data = _sample_data(run, load_config(run), None)
    tr = Trainer(cfg, data=data, state=load_checkpoint(run), with_grid=False)
    check_indices(run, tr.data)
    return tr


def cdcgan_frechet(run: Path, ref, n: int, seed: int) -> list[dict]:
    """Per minority class: the Fréchet distance of ``n`` cDCGAN images to the class's real ones."""
    from gamo.claims import frechet_from_moments

    tr = _open_method(run)
    m = tr.method
    if m.name != "cgan" or m.family != "conv":
        raise SystemExit(f"{run} is not a cDCGAN+CN conv run ({m.name}, {m.family})")
    rows = []
    for c in m.minority:
        x, _ = m._generate({c: n}, seed)
        f = ref.features(x.cpu().numpy()).astype(np.float64)
        mu, cov = ref.class_stats(c)
        rows.append({"cls": c, "frechet": frechet_from_moments(f.mean(0), np.cov(f, rowvar=False), mu, cov),
                     "floor": ref.floor(c, n)})
    return rows


def agreement(g_seed: dict, c_seed: dict, recon_seed: dict, gamo_rows: dict, cgan_rows: dict, classes: list,
              paper: tuple | None) -> list[str]:
    """The sentence on what agrees with the paper and what does not, from the measured numbers."""
    if not g_seed or not c_seed:
        return ["**What agrees with the paper:** not measurable without both GAMO and cDCGAN runs.", ""]
    g, c = float(np.mean(list(g_seed.values()))), float(np.mean(list(c_seed.values())))
    r = float(np.mean(list(recon_seed.values()))) if recon_seed else None

    def cls_mean(rows, cls):
        v = [x["frechet"] for rs in rows.values() for x in rs if x["cls"] == cls]
        return float(np.mean(v)) if v else None
    wins = [k for k in classes if None not in (cls_mean(gamo_rows, k), cls_mean(cgan_rows, k))
            and cls_mean(gamo_rows, k) < cls_mean(cgan_rows, k)]
    members = {x["cls"]: x.get("n_members") for rs in gamo_rows.values() for x in rs}
    order = "lower" if g < c else "higher"
    text = (f"**What agrees with the paper and what does not.** The paper finds GAMO2pix's images closer to the real "
            f"classes than cDCGAN's" + (f" (FID {paper[0]} against {paper[1]})" if paper else "") + f"; here GAMO2pix's "
            f"mean distance is {order} ({g:.1f} against {c:.1f})"
            + (", which agrees" if g < c else ", which does not") + ". "
            f"GAMO2pix is lower on {len(wins)} of {len(classes)} minority classes"
            + (f" (class{'es' * (len(wins) > 1)} {', '.join(f'{k} ({members.get(k)} members)' for k in wins)})" if wins else "")
            + ".")
    ks = [k for k in classes if members.get(k) and cls_mean(cgan_rows, k) is not None]
    if len(ks) >= 3:    # Spearman's rank correlation of class size and cDCGAN's distance
        rank = lambda v: np.argsort(np.argsort(v))   # noqa: E731
        rho = float(np.corrcoef(rank([members[k] for k in ks]), rank([cls_mean(cgan_rows, k) for k in ks]))[0, 1])
        text += (f" cDCGAN's distance {'grows' if rho < 0 else 'does not grow'} as its classes get rarer (rank "
                 f"correlation of class size and distance {rho:+.2f})"
                 + (", as the paper argues for GANs on rare classes." if rho < 0 else "."))
    if r is not None:
        text += (f" The decoders' reconstructions of the classes' own training images already score {r:.1f}, so most "
                 "of GAMO2pix's distance here is its decoder (minutes of training where the official script runs "
                 "25,000 minibatches a class), not GAMO's samples.")
    return [text, ""]


def main() -> int:
    from gamo import gamo2pix as g2p
    from gamo.config import DataConfig
    from gamo.reference import get_reference
    from gamo.runs import load_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=ROOT)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n", type=int, default=1000, help="samples per class")
    p.add_argument("--no-train", action="store_true", help="skip GAMO runs whose decoders are not all trained")
    p.add_argument("--out", default=None, help="default bench/results/table5_<dataset>.md")
    a = p.parse_args()

    root = Path(a.root)
    skipped: list[str] = []
    gamo_rows: dict[int, list[dict]] = {}
    cgan_rows: dict[int, list[dict]] = {}
    dataset, ref, train_s = None, None, {}
    for s in a.seeds:
        for method in ("gamo", "cgan"):
            run = root / f"{method}-seed{s}"
            if not (run / "checkpoint.pt").is_file():
                skipped.append(f"`{run}` ({'no such run' if not run.exists() else 'no checkpoint'})")
                continue
            ds = load_config(run).data.dataset
            if dataset is None:
                dataset = ds
                ref = get_reference(DataConfig(dataset=ds), progress=lambda m, f: print(m, flush=True))
            elif ds != dataset:
                skipped.append(f"`{run}` (dataset {ds}, not {dataset})")
                continue
            if method == "gamo":
                g = g2p.open_run(run)
                if not all(c in g.decoders and g.decoders[c].done for c in g.classes):
                    if a.no_train:
                        skipped.append(f"`{run}` (decoders not trained; --no-train)")
                        continue
                    t = time.perf_counter()
                    g2p.train_decoders(g, progress=lambda pr: pr.step >= pr.steps and print(
                        f"{run}: class {pr.cls} trained ({pr.elapsed:.0f} s)", flush=True))
                    train_s[s] = time.perf_counter() - t
                gamo_rows[s] = g2p.frechet_table(g, n=a.n, seed=s, reference=ref)["classes"]
            else:
                cgan_rows[s] = cdcgan_frechet(run, ref, a.n, s)
            print(f"{run}: mean Fréchet distance "
                  f"{np.mean([r['frechet'] for r in (gamo_rows if method == 'gamo' else cgan_rows)[s]]):.3f}",
                  flush=True)
    if dataset is None:
        print("no runs found:", "; ".join(skipped))
        return 1

    def per_seed(rows: dict[int, list[dict]], key: str = "frechet") -> dict[int, float]:
        return {s: float(np.mean([r[key] for r in rs])) for s, rs in rows.items()
                if all(r.get(key) is not None for r in rs)}

    def pm(v: dict[int, float]) -> str:
        if not v:
            return "-"
        x = np.array(list(v.values()))
        return f"{x.mean():.3f} ± {x.std(ddof=1) if len(x) > 1 else 0:.3f} ({len(x)} seed{'s' * (len(x) > 1)})"

    paper = g2p.PAPER_TABLE5.get(dataset)
    g_seed, c_seed = per_seed(gamo_rows), per_seed(cgan_rows)
    floor_seed = per_seed(gamo_rows or cgan_rows, "floor")
    recon_seed = per_seed(gamo_rows, "frechet_recon")
    members_seed = per_seed(gamo_rows, "frechet_members")
    mean_seed = per_seed(gamo_rows, "frechet_mean")
    rows = [["GAMO2pix (decoded GAMO samples, a posterior draw each, as the official script)", pm(g_seed),
             "-" if not paper else f"{paper[0]}"],
            ["GAMO2pix, decoded from the posterior mean", pm(mean_seed), "-"],
            ["cDCGAN (generated images)", pm(c_seed), "-" if not paper else f"{paper[1]}"],
            [f"floor: {a.n} held-out real images a class", pm(floor_seed), "-"],
            ["GAMO2pix reconstructions of the class's training images", pm(recon_seed), "-"],
            ["the class's training images themselves", pm(members_seed), "-"]]
    classes = sorted({r["cls"] for rs in (*gamo_rows.values(), *cgan_rows.values()) for r in rs})

    def cls_mean(rows_by_seed: dict[int, list[dict]], c: int, key: str) -> str:
        v = [r[key] for rs in rows_by_seed.values() for r in rs if r["cls"] == c and r.get(key) is not None]
        return f"{np.mean(v):.3f}" if v else "-"
    per_class = [[c, next((r["n_members"] for rs in gamo_rows.values() for r in rs if r["cls"] == c), "-"),
                  cls_mean(gamo_rows, c, "frechet"), cls_mean(gamo_rows, c, "frechet_mean"),
                  cls_mean(cgan_rows, c, "frechet"),
                  cls_mean(gamo_rows or cgan_rows, c, "floor"), cls_mean(gamo_rows, c, "frechet_recon"),
                  cls_mean(gamo_rows, c, "frechet_members")] for c in classes]
    ref_line = (f"`{ref.key}` reference classifier ({ref.info.get('architecture', '')}; test accuracy "
                f"{ref.info.get('test_accuracy', float('nan')):.3f})")
    md = [
        f"# Table 5 on {dataset}: GAMO2pix vs cDCGAN",
        "",
        f"Command: `{command()}` (git {git_rev()}); machine: {machine()}.",
        "",
        f"Runs: `{root}` (GAMO conv runs, GAMO2pix decoders per minority class with the defaults of "
        f"`gamo.gamo2pix`: {g2p.EPOCHS} epochs, at least {g2p.MIN_STEPS} minibatches a class"
        + (f"; trained here in {', '.join(f'{v:.0f} s (seed {k})' for k, v in train_s.items())}" if train_s else "")
        + f"; cDCGAN+CN conv runs). {a.n} samples a minority class.",
        "",
        "Mean over the minority classes of the per-class Fréchet distance to the class's held-out real images, "
        "then mean ± std over seeds:",
        "",
        md_table(["", "ours", "paper (FID)"], rows),
        "",
        f"**The distance is measured in the feature space of the {ref_line}, not Inception's: its scale is not "
        f"the paper's FID, so compare the two methods' values with each other and with the floor, not with the "
        f"paper's numbers.** The floor is what {a.n} real held-out images of the class get (the best a generator "
        f"can expect at this sample size); the reconstructions and the training images show what the decoder "
        f"and the members GAMO combines can reach.",
        "",
        *agreement(g_seed, c_seed, recon_seed, gamo_rows, cgan_rows, classes, paper),
        "Per class (means over seeds):",
        "",
        md_table(["class", "members", "GAMO2pix", "GAMO2pix (mean z)", "cDCGAN", "floor", "reconstructions",
                  "training images"],
                 per_class),
        "",
    ]
    if skipped:
        md += ["Skipped (missing): " + "; ".join(skipped) + ".", ""]
    out = Path(a.out or f"bench/results/table5_{dataset}.md")
    out.write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
