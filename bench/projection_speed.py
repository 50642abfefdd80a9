"""2D maps of real and generated points (``gamo.projection``): speed and keyframe continuity.

Data: Fashion-MNIST training images (``gamo.data.load_dataset``, profile ``none``), ``--n`` real
rows and ``--m`` other rows drawn with ``--seed``, flattened and mapped to ``--dim`` features by a
fixed random matrix and tanh (shaped like the convolutional F's 512 tanh features). The
"generated" points are GAMO-like: each a convex combination (Dirichlet weights) of 5 random real
points of one class. Keyframes: the features of the same rows as F trains, simulated by adding
``--drift`` times a fresh random matrix to the feature matrix at each keyframe.

Measured, each timing group in a fresh Python process (numba compiles per process):

1. ``cold``: this module's UMAP, no warm-up: the first fit (umap's import and numba's
   compilation included), the first placement of the generated points, then warm fits and
   placements, and variants (PCA to 50 dims before UMAP, umap's 500 fit epochs, 30 placement
   epochs; PCA maps).
2. ``warmed``: ``warm_up()`` first, then the first fit and placement a user would wait for.
3. ``stock``: umap-learn as it comes (``umap.UMAP()``: pynndescent's approximate neighbours,
   parallel optimisation, no seed), for reference (``--no-stock`` skips it).
4. ``keyframes``: a fit then ``--keyframes`` refits on drifting features, for each way of keeping
   consecutive keyframes continuous; the Procrustes disparity between consecutive layouts of the
   same real rows, as shapes (``rotate=True``: scipy's) and as seen on the screen
   (``rotate=False``: no rotation allowed).

Usage::

    python bench/projection_speed.py                  # writes bench/results/projection_speed.md
    python bench/projection_speed.py --n 3000 --no-stock --out -   # quick, print only
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import command, git_rev, machine, md_table  # noqa: E402


# ---------------------------------------------------------------------------------- data
def make_data(n: int, m: int, dim: int, keyframes: int, drift: float, seed: int) -> dict[str, np.ndarray]:
    """``real``: the n real rows' features at each keyframe (K+1, n, dim); ``gen``: m GAMO-like
    generated points at keyframe 0 (m, dim); ``other``: m held-out real rows at keyframe 0."""
    from gamo.config import DataConfig
    from gamo.data import load_dataset

    data = load_dataset(DataConfig(dataset="fashion-mnist", profile="none", n_val_per_class=0))
    x = data.x_train.reshape(len(data.x_train), -1)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), n + m, replace=False)
    real_rows, other_rows = rows[:n], rows[n:]
    scale = 1.5 / np.sqrt(x.shape[1])
    w0 = w = rng.standard_normal((x.shape[1], dim)).astype(np.float32) * scale
    feats = []
    for _ in range(keyframes + 1):
        feats.append(np.tanh(x[real_rows] @ w).astype(np.float32))
        w = w + drift * rng.standard_normal(w.shape).astype(np.float32) * scale
    # convex combinations (Dirichlet weights) of 5 real points of one class, as GAMO's G makes
    yr = data.y_train[real_rows]
    gen = np.empty((m, dim), np.float32)
    for i, c in enumerate(rng.integers(0, 10, m)):
        pick = rng.choice(np.flatnonzero(yr == c), 5, replace=False)
        gen[i] = rng.dirichlet(np.ones(5)).astype(np.float32) @ feats[0][pick]
    return {"real": np.stack(feats), "gen": gen, "other": np.tanh(x[other_rows] @ w0).astype(np.float32)}


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def wall_cpu(fn, *args) -> list[float]:
    """[wall, CPU] seconds of one call (CPU: this process, all its threads; on a shared machine
    the CPU time is closer to what an idle machine's wall time would be)."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return [time.perf_counter() - t0, time.process_time() - c0]


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean fraction of each row's neighbours in ``a`` also in ``b``'s row."""
    return float(np.mean([len(set(u) & set(v)) / len(u) for u, v in zip(a, b)]))


# ---------------------------------------------------------------------------------- workers
def work_cold(d: dict, reps: int) -> dict:
    from gamo.projection import Projector, exact_knn

    real, gen = d["real"][0], d["gen"]
    out: dict = {}
    p = Projector("umap", seed=0)
    _, out["first_fit"] = timed(p.fit, real)
    _, out["first_transform"] = timed(p.transform, gen)
    out["warm_fit_cpu"] = [wall_cpu(p.fit, real) for _ in range(2)]
    out["warm_fit"] = [w for w, _ in out["warm_fit_cpu"]]
    out["warm_transform_cpu"] = [wall_cpu(p.transform, gen) for _ in range(reps)]
    out["warm_transform"] = [w for w, _ in out["warm_transform_cpu"]]
    base = p.transform(gen)
    spread = float(np.sqrt(((p.layout - p.layout.mean(0)) ** 2).sum(1).mean()))
    # real rows placed again: how far from their fitted positions, relative to the spread
    back = p.transform(real[:1000])
    out["real_back"] = float(np.median(np.linalg.norm(back - p.layout[:1000], axis=1)) / spread)
    # variants
    q = Projector("umap", seed=0, transform_epochs=30)
    q.model, q.fitted_x, q.layout = p.model, p.fitted_x, p.layout
    out["t30_transform"] = [timed(q.transform, gen)[1] for _ in range(reps)]
    out["t30_moved"] = float(np.median(np.linalg.norm(q.transform(gen) - base, axis=1)) / spread)
    q = Projector("umap", seed=0, pca_dims=50)
    out["pca50_fit"] = timed(q.fit, real)[1]
    out["pca50_transform"] = [timed(q.transform, gen)[1] for _ in range(reps)]
    k = 15
    full_fit, _ = exact_knn(real, real, k)
    full_gen, _ = exact_knn(gen, real, k)
    red = q._reduce(real)
    out["pca50_agree_fit"] = agreement(full_fit, exact_knn(red, red, k)[0])
    out["pca50_agree_gen"] = agreement(full_gen, exact_knn(q._reduce(gen), red, k)[0])
    q = Projector("umap", seed=0, n_epochs=500)
    out["e500_fit"] = timed(q.fit, real)[1]
    q = Projector("pca", seed=0)
    out["pca_fit"] = [timed(q.fit, real)[1] for _ in range(2)]
    out["pca_transform"] = [timed(q.transform, gen)[1] for _ in range(reps)]
    return out


def work_warmed(d: dict, reps: int) -> dict:
    from gamo.projection import Projector, warm_up

    real, gen = d["real"][0], d["gen"]
    out: dict = {"warm_up": warm_up()}
    p = Projector("umap", seed=0)
    _, out["first_fit"] = timed(p.fit, real)
    _, out["first_transform"] = timed(p.transform, gen)
    out["warm_transform"] = [timed(p.transform, gen)[1] for _ in range(reps)]
    return out


def work_stock(d: dict, reps: int) -> dict:
    import warnings

    real, gen = d["real"][0], d["gen"]
    out: dict = {}
    t0 = time.perf_counter()
    import umap
    out["import"] = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = umap.UMAP()
        _, out["first_fit"] = timed(model.fit, real)
        _, out["first_transform"] = timed(model.transform, gen)
        model = umap.UMAP()
        _, out["warm_fit"] = timed(model.fit, real)
        _, out["new_model_first_transform"] = timed(model.transform, gen)
        out["warm_transform"] = [timed(model.transform, gen)[1] for _ in range(reps)]
    return out


KEYFRAME_MODES = [("umap", "none", 200), ("umap", "procrustes", 200), ("umap", "init", 200),
                  ("umap", "both", 200), ("umap", "both", 100), ("pca", "none", None), ("pca", "procrustes", None)]


def work_keyframes(d: dict, reps: int) -> dict:
    from gamo.projection import Projector, procrustes_disparity, warm_up

    warm_up()
    out: dict = {}
    for method, align, epochs in KEYFRAME_MODES:
        p = Projector(method, seed=0, align=align, refit_epochs=epochs)
        prev = p.fit(d["real"][0])
        shape, screen, secs = [], [], []
        for t in range(1, len(d["real"])):
            new, s = timed(p.refit, d["real"][t])
            shape.append(procrustes_disparity(prev, new))
            screen.append(procrustes_disparity(prev, new, rotate=False))
            secs.append(s)
            prev = new
        out[f"{method}/{align}/{epochs}"] = {"shape": shape, "screen": screen, "refit": secs,
                                              "keyframe": p.keyframe}
        print(method, align, epochs, np.round(shape, 4), np.round(screen, 4), np.round(secs, 2),
              file=sys.stderr, flush=True)
    return out


WORKERS = {"cold": work_cold, "warmed": work_warmed, "stock": work_stock, "keyframes": work_keyframes}


def run_worker(name: str, path: str, reps: int) -> dict:
    """One worker in a fresh Python process; its JSON is the last line of its output."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--data", path, "--reps", str(reps)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{proc.stderr[-4000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return res


# ---------------------------------------------------------------------------------- report
def s_(v: float) -> str:
    return f"{v:.2f}"


def spread(vs: list[float]) -> str:
    """median (min-max) in seconds"""
    return f"{statistics.median(vs):.3f} ({min(vs):.3f}-{max(vs):.3f})"


def report(a, res: dict, load: tuple[tuple, tuple], elapsed: float) -> str:
    c, w = res["cold"], res["warmed"]
    st = res.get("stock")
    lines = [
        f"# 2D maps (`gamo.projection`): speed and keyframe continuity, {a.n:,} x {a.dim} real points",
        "",
        f"- command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        f"- load average (1, 5, 15 min) at start {load[0]}, at the end {load[1]}: the 2 cores were shared "
        "with other benchmark runs, so every time here is noisy (a multiple of what an idle machine gives)",
        f"- data: Fashion-MNIST training images, {a.n:,} real rows and {a.m:,} GAMO-like generated points "
        f"(convex combinations of 5 same-class real points), features tanh(x W) with a fixed random "
        f"784 x {a.dim} W; keyframes: W drifts by {a.drift} x a fresh random matrix each; seed {a.seed}; "
        f"{elapsed:.0f} s in all",
        "- settings (`Projector(\"umap\")` defaults): exact neighbours (no pynndescent index), no PCA before "
        "UMAP, 200 fit epochs, spectral start, umap's placement (100 epochs), BLAS on one thread",
        "",
        "## UMAP: fit and placement, seconds (each group a fresh process)",
        "",
    ]
    rows = [
        ["this module, no warm-up", s_(c["first_fit"]), s_(c["first_transform"]),
         " / ".join(s_(v) for v in c["warm_fit"]), spread(c["warm_transform"])],
        [f"this module after `warm_up()` ({w['warm_up']:.1f} s, e.g. in a background thread)", s_(w["first_fit"]),
         s_(w["first_transform"]), "-", spread(w["warm_transform"])],
    ]
    if st:
        rows.append([f"umap-learn as it comes (`umap.UMAP()`; import {st['import']:.1f} s)", s_(st["first_fit"]),
                     s_(st["first_transform"]), s_(st["warm_fit"]) + f" (its first placement {st['new_model_first_transform']:.2f})",
                     spread(st["warm_transform"])])
    lines += [md_table(["", "first fit", f"first placement of {a.m:,}", "warm fit", f"warm placement of {a.m:,}: median (min-max)"], rows), ""]
    fc = "; ".join(f"{w:.2f} s wall, {cpu:.2f} s CPU" for w, cpu in c["warm_fit_cpu"])
    tc = statistics.median(cpu for _, cpu in c["warm_transform_cpu"])
    lines += [f"CPU time of this process (all its threads) for the warm runs of the first row: fits {fc}; "
              f"placements {tc:.3f} s CPU (median).", "",
              "\"First\" is the first in a fresh process, but numba keeps the code of functions marked "
              "`cache=True` on disk (many of pynndescent's, one of umap's) once any process has compiled "
              "them, so umap-learn's first placement depends on whether an earlier run wrote that cache.", ""]
    lines += [
        "## Variants (warm, same process as the first row)",
        "",
        md_table(["variant", "fit, s", "placement, s", "what changes"], [
            ["defaults", " / ".join(s_(v) for v in c["warm_fit"]), spread(c["warm_transform"]),
             f"real rows placed again land {c['real_back']:.3f} x the layout's RMS radius from their fitted positions (median)"],
            ["PCA to 50 dims before UMAP", s_(c["pca50_fit"]), spread(c["pca50_transform"]),
             f"{c['pca50_agree_fit']:.3f} of the real rows' 15 nearest neighbours kept, {c['pca50_agree_gen']:.3f} of the generated points'"],
            ["500 fit epochs (umap's default up to 10,000 points)", s_(c["e500_fit"]), "-", "-"],
            ["30 placement epochs", "-", spread(c["t30_transform"]),
             f"placements move {c['t30_moved']:.3f} x the layout's RMS radius (median) from the 100-epoch ones"],
            ["PCA map", " / ".join(f"{v:.3f}" for v in c["pca_fit"]), spread(c["pca_transform"]), "-"],
        ]),
        "",
        f"## Keyframes: {a.keyframes} refits on drifting features, Procrustes disparity between consecutive layouts",
        "",
        "`shape`: `scipy.spatial.procrustes` (translation, scale and rotation removed); `screen`: the same with the "
        "rotation held at the identity, i.e. how far the points move on the screen between keyframes. Mean (max) "
        "over the refits.",
        "",
    ]
    krows = []
    for key, r in res["keyframes"].items():
        method, align, epochs = key.split("/")
        what = {"none": "refit from scratch", "procrustes": "refit, then rotated onto the previous layout",
                "init": "UMAP started from the previous layout", "both": "started from it, then rotated onto it"}[align]
        if method == "umap":
            what += f", {epochs} epochs"
        krows.append([method, align, what, f"{np.mean(r['shape']):.4f} ({max(r['shape']):.4f})",
                      f"{np.mean(r['screen']):.4f} ({max(r['screen']):.4f})", f"{np.mean(r['refit']):.2f}"])
    lines += [md_table(["map", "align", "", "shape", "screen", "refit, s"], krows), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="real points fitted")
    ap.add_argument("--m", type=int, default=1_000, help="generated points placed")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--keyframes", type=int, default=3, help="refits after the first fit")
    ap.add_argument("--drift", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=5, help="repeats of each warm placement")
    ap.add_argument("--no-stock", action="store_true", help="skip umap-learn as it comes")
    ap.add_argument("--out", default="bench/results/projection_speed", help="path without .md; - prints only")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        d = dict(np.load(a.data))
        print(json.dumps(WORKERS[a.worker](d, a.reps)))
        return
    t0 = time.perf_counter()
    load0 = tuple(round(v, 1) for v in os.getloadavg())
    d = make_data(a.n, a.m, a.dim, a.keyframes, a.drift, a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, **d)
        res = {name: run_worker(name, path, a.reps)
               for name in ["cold", "warmed"] + ([] if a.no_stock else ["stock"]) + ["keyframes"]}
    load1 = tuple(round(v, 1) for v in os.getloadavg())
    md = report(a, res, (load0, load1), time.perf_counter() - t0)
    print(md)
    if a.out != "-":
        Path(a.out + ".md").write_text(md)
        print(f"wrote {a.out}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
