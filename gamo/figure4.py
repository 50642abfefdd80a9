"""The paper's Figure 4 for any stored runs: a row of generated samples per method, a column per
minority class, Table 1's numbers beside it, and the caption's claims measured
(:mod:`gamo.claims`). UI-free: the Ablation Grid page and ``python -m gamo bench figure4`` use it.

Per finished run, :func:`write_run_files` adds two small files to the run folder, made from the
run's checkpoint (so a fresh clone opens the grid without the checkpoints, which are not
committed):

* ``figure4.npz``: a few generated samples per minority class (``gen`` uint8 images, or float16
  points for 2D data; conv runs store GAMO2pix's decodings of fresh samples once every minority
  class has a trained decoder, ``gen_kind`` ``"decoded"``, else the nearest real image of each
  sample, ``gen_kind`` ``"nearest real"``, since their samples are F's features), ``gen_y``, the heaviest convex
  parent where the method has one (``gen_parent``, rows of the training set), and ``real`` /
  ``real_y``: real training samples of every class;
* ``claims.json``: the claim measures of ``n_claims`` fresh samples per minority class (the
  audit's flags in the samples' space; class fidelity and Fréchet distance in the reference
  classifier's space when the samples are images or rows of the dataset), the reference
  classifier used, the run's class counts.

:func:`collect` reads a store of runs, :func:`summary` aggregates them per method over seeds
(Table 1, per-class recall, claim means, verdicts), :func:`grid_png` draws the figure and
:func:`write_markdown` the measured-claims table.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gamo.claims import CLAIMS, ClassClaims, Verdict, mean_measures, measure_claims, verdicts
from gamo.config import METHOD_LABELS
from gamo.errors import DataError, GamoError
from gamo.runs import CONFIG, FINAL, RunError, load_config, savez_atomic
from gamo.tables import mean_std

__all__ = ["CLAIMS_FILE", "FIGURE4_METHODS", "GRID_FILE", "MethodSummary", "RunFigure", "collect", "grid_png",
           "load_run", "stale", "summary", "write_markdown", "write_run_files"]

FIGURE4_METHODS = ("baseline", "smote", "cgan", "cg", "cg_d", "gamo_no_d", "gamo")
"""The paper's six Figure-4 rows (SMOTE, cGAN, cG, cG+D, GAMO\\D, GAMO) plus Baseline CN."""
GRID_FILE, CLAIMS_FILE = "figure4.npz", "claims.json"
N_GRID = 8          # generated samples kept per minority class for the grid
N_REAL = 8          # real samples kept per class
N_POINTS = 64       # 2D data: points per class for the scatter thumbnails
N_CLAIMS = 500      # fresh samples per minority class behind the claim measures
VERSION = 1


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _spread(rows: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` of ``rows``, spread evenly over them (deterministic)."""
    if len(rows) <= k:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, k).round().astype(int))]


def _trainer(run: Path, data_root: str | None = None):
    from gamo.cli import _sample_data
    from gamo.runs import check_indices, load_checkpoint
    from gamo.train import Trainer

    cfg = load_config(run)
    cfg2, data = _sample_data(run, cfg, data_root)
    tr = Trainer(cfg2, data=data, state=load_checkpoint(run), with_grid=False)
    check_indices(run, tr.data)
    return tr


def write_run_files(run: str | os.PathLike, *, reference: Any = None, n_claims: int = N_CLAIMS, seed: int = 0,
                    data_root: str | None = None) -> dict[str, Any]:
    """Make ``figure4.npz`` and ``claims.json`` for a finished run from its checkpoint.

    Parameters
    ----------
    reference : gamo.reference.Reference, optional
        The dataset's reference classifier; without it fidelity and Fréchet distances are None.
    n_claims : int
        Fresh samples per minority class behind the claim measures.

    Returns
    -------
    dict
        What ``claims.json`` holds.

    Raises
    ------
    gamo.errors.GamoError
        A damaged run or data that cannot be read (one line).
    """
    from gamo.audit import SPACE_FEATURES, audit_run
    from gamo.export import generates_samples

    run = Path(run)
    tr = _trainer(run, data_root)
    m, data = tr.method, tr.data
    cfg = tr.cfg
    counts = np.bincount(data.y_train, minlength=data.n_classes)
    majority = int(np.argmax(counts))
    minority = [int(c) for c in getattr(m, "minority", [c for c in range(len(counts)) if counts[c] < counts.max()])]
    is_2d = data.kind == "2d"
    images = data.kind == "image" or (data.image_shape is not None)
    real_flat = data.x_train.reshape(len(data.x_train), -1)
    # real samples of every class, for the grid's first row (and the 2D thumbnails' backdrop)
    real_rows = np.concatenate([_spread(np.flatnonzero(data.y_train == c), N_POINTS if is_2d else N_REAL)
                                for c in range(data.n_classes)])
    arrays: dict[str, np.ndarray] = {
        "real": (real_flat[real_rows].astype(np.float16) if is_2d else _to_uint8(real_flat[real_rows])),
        "real_y": data.y_train[real_rows].astype(np.int64), "real_rows": real_rows.astype(np.int64),
    }
    claims: dict[str, Any] = {
        "version": VERSION, "method": cfg.train.method, "seed": cfg.train.seed, "dataset": cfg.data.dataset,
        "family": m.family, "kind": data.kind, "counts": counts.tolist(), "majority": majority,
        "minority": minority, "class_names": list(data.class_names),
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "generates": bool(generates_samples(cfg.train.method)), "n_claims": int(n_claims), "sample_seed": seed,
    }
    if claims["generates"] and minority:
        audit = audit_run(m, n_per_class=n_claims, seed=seed)
        x, y = np.asarray(audit.x), np.asarray(audit.y)
        # fidelity and Fréchet distance need images (or rows) of the dataset: samples in pixels or
        # input features are measured as they are; F's features only through GAMO2pix's decoders
        in_data_space = audit.space != SPACE_FEATURES
        rows = measure_claims(x, y, majority=majority, reference=reference if in_data_space else None,
                              ood=audit.out_of_distribution, near_dup=audit.near_duplicate, classes=minority)
        gan_images = _gan_images(m, minority, n_claims, seed) if not in_data_space else None
        if reference is not None and gan_images is not None:     # cDCGAN: its images, before F
            img = {r.cls: r for r in measure_claims(*gan_images, majority=majority, reference=reference,
                                                    classes=minority)}
            rows = [replace(r, fidelity=img[r.cls].fidelity, majority_share=img[r.cls].majority_share,
                            frechet=img[r.cls].frechet, floor=img[r.cls].floor) for r in rows]
            claims["images_from"] = f"the generator's images ({n_claims} a class), which F turns into its samples"
        elif reference is not None and not in_data_space:
            parts = _decode_parts(m, run, minority, seed, n_claims, sample=True)
            if parts is not None:
                dx = np.concatenate([d.images.reshape(d.n, -1) for d in parts])
                dy = np.concatenate([np.full(d.n, d.cls, np.int64) for d in parts])
                img = {r.cls: r for r in measure_claims(dx, dy, majority=majority, reference=reference,
                                                        classes=minority)}
                rows = [replace(r, fidelity=img[r.cls].fidelity, majority_share=img[r.cls].majority_share,
                                frechet=img[r.cls].frechet, floor=img[r.cls].floor) for r in rows]
                claims["images_from"] = (f"GAMO2pix's decodings (a posterior draw each, as Table 5) of {n_claims} "
                                         "fresh samples a class")
        claims["classes"] = [r.to_dict() for r in rows]
        claims["space"] = audit.space
        if reference is not None:
            claims["reference"] = {"key": reference.key, "test_accuracy": reference.info.get("test_accuracy"),
                                   "architecture": reference.info.get("architecture")}
        if reference is None:
            claims["not_measured"] = "no reference classifier for this dataset"
        elif not in_data_space and "images_from" not in claims:
            claims["not_measured"] = ("class fidelity and Fréchet distance need images: this conv run's samples "
                                      "are F's features (train its GAMO2pix decoders to measure their decodings)")
        keep = np.concatenate([_spread(np.flatnonzero(y == c), N_POINTS if is_2d else N_GRID) for c in minority])
        arrays["gen_y"] = y[keep].astype(np.int64)
        arrays["gen_flags"] = np.stack([audit.near_duplicate[keep], audit.out_of_distribution[keep],
                                        audit.label_disputed[keep]], 1)
        if audit.parent_idx is not None:
            arrays["gen_parent"] = audit.parent_idx[keep, 0].astype(np.int64)
            arrays["gen_parent_w"] = audit.parent_w[keep, 0].astype(np.float32)
        if is_2d:
            arrays["gen"] = x[keep].astype(np.float16)
            arrays["gen_kind"] = np.array("points")
        elif m.family == "dense" and images:
            arrays["gen"] = _to_uint8(x[keep])
            arrays["gen_kind"] = np.array("generated")
        elif gan_images is not None:   # cDCGAN's images themselves (the audit's flags are of their features)
            gx, gy = gan_images
            pick = np.concatenate([np.flatnonzero(gy == c)[:N_GRID] for c in minority])
            for k in ("gen_flags", "gen_parent", "gen_parent_w"):
                arrays.pop(k, None)
            arrays.update(gen=_to_uint8(gx[pick]), gen_y=gy[pick].astype(np.int64), gen_kind=np.array("generated"))
        else:
            dec = _decoded(m, run, minority, seed) if m.family == "conv" else None
            if dec is not None:   # GAMO2pix's decodings of fresh samples (the audit's flags are not theirs)
                for k in ("gen_flags", "gen_parent", "gen_parent_w"):
                    arrays.pop(k, None)
                arrays.update(dec)
            else:   # F's features: show the nearest real image of each sample, labelled as such
                arrays["gen"] = _to_uint8(real_flat[audit.nearest_idx[keep]])
                arrays["gen_kind"] = np.array("nearest real")
    savez_atomic(run / GRID_FILE, **arrays)
    tmp = run / (CLAIMS_FILE + ".tmp")
    tmp.write_text(json.dumps(claims, indent=1))
    os.replace(tmp, run / CLAIMS_FILE)
    return claims


def _gan_images(method: Any, minority: Sequence[int], n: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(images, classes) of a conv generator whose samples are images before F (cDCGAN+CN:
    ``_generate``), ``n`` a minority class; None for other methods."""
    gen = getattr(method, "_generate", None)
    if gen is None or method.family != "conv" or not minority:
        return None
    x, y = gen({int(c): int(n) for c in minority}, seed)
    return x.reshape(len(x), -1).cpu().numpy(), y.cpu().numpy()


def _decode_parts(method: Any, run: Path, minority: Sequence[int], seed: int, n: int, sample: bool = False
                  ) -> list | None:
    """``n`` fresh samples of each minority class decoded by the run's GAMO2pix decoders
    (:func:`gamo.gamo2pix.decode_generated`), or None unless every minority class has a
    finished, current decoder."""
    try:
        from gamo import gamo2pix
        g = gamo2pix.Gamo2pix(method, run)
        if not minority or any(c not in g.decoders or not g.decoders[c].done for c in minority):
            return None
        return [gamo2pix.decode_generated(g, c, n, seed, sample=sample) for c in minority]
    except (ImportError, GamoError, AttributeError, KeyError, RuntimeError):
        return None


def _decoded(method: Any, run: Path, minority: Sequence[int], seed: int) -> dict[str, np.ndarray] | None:
    """The grid's samples of a conv run decoded by its GAMO2pix decoders (``gen_kind``
    ``"decoded"``), or None unless every minority class has a finished, current decoder."""
    parts = _decode_parts(method, run, minority, seed, N_GRID)
    if parts is None:
        return None
    out = {"gen": _to_uint8(np.concatenate([d.images.reshape(d.n, -1) for d in parts])),
           "gen_y": np.concatenate([np.full(d.n, d.cls, np.int64) for d in parts]),
           "gen_kind": np.array("decoded")}
    if all(d.parent_idx is not None for d in parts):
        out["gen_parent"] = np.concatenate([d.parent_idx[:, 0] for d in parts]).astype(np.int64)
        out["gen_parent_w"] = np.concatenate([d.parent_w[:, 0] for d in parts]).astype(np.float32)
    return out


def _decoders_newer(run: Path, than: float) -> bool:
    """Whether a GAMO2pix decoder of the run was saved after ``than`` (a modification time)."""
    try:
        return any(p.stat().st_mtime > than for p in (run / "gamo2pix").glob("decoder_c*.pt"))
    except OSError:
        return False


def stale(run: "RunFigure", reference: Any, n_claims: int = N_CLAIMS) -> bool:
    """Whether a run's figure files must be (re)made: missing, of another version, sample count
    or reference classifier, or older than its checkpoint (or, for a conv run, than a GAMO2pix
    decoder). A run without a checkpoint (a fresh clone of the committed results) keeps the
    files it has."""
    from gamo.runs import CHECKPOINT

    ck = run.path / CHECKPOINT
    if run.claims is None or run.grid is None:
        return ck.is_file()
    if not ck.is_file():
        return False
    c = run.claims
    ref = c.get("reference") or {}
    same_ref = reference is None or not c.get("generates") or ref.get("key") == reference.key and \
        ref.get("test_accuracy") == reference.info.get("test_accuracy")
    made = (run.path / CLAIMS_FILE).stat().st_mtime
    newer = ck.stat().st_mtime > made or (c.get("family") == "conv" and _decoders_newer(run.path, made))
    return c.get("version") != VERSION or c.get("n_claims") != n_claims or not same_ref or newer


@dataclass
class RunFigure:
    """One run's figure files and final metrics."""

    path: Path
    method: str
    seed: int
    final: dict[str, Any]
    claims: dict[str, Any] | None
    grid: dict[str, np.ndarray] | None
    problem: str | None = None

    @property
    def class_claims(self) -> list[dict[str, Any]]:
        return list((self.claims or {}).get("classes") or [])


def load_run(run: str | os.PathLike) -> RunFigure:
    """Read a run's final metrics and figure files (missing files: None, with ``problem`` saying
    what to run)."""
    run = Path(run)
    cfg = load_config(run)
    try:
        final = json.loads((run / FINAL).read_text())
    except (OSError, ValueError):
        final = {}
    claims = grid = None
    problem = None
    try:
        claims = json.loads((run / CLAIMS_FILE).read_text())
        with np.load(run / GRID_FILE, allow_pickle=False) as z:
            grid = {k: z[k] for k in z.files}
    except FileNotFoundError:
        problem = f"{run.name} has no figure files yet: python -m gamo bench figure4 makes them"
    except (OSError, ValueError) as e:
        problem = f"{run.name}: its figure files cannot be read ({type(e).__name__}); make them again"
        claims = grid = None
    return RunFigure(run, cfg.train.method, cfg.train.seed, final, claims, grid, problem)


def collect(base: str | os.PathLike, methods: Sequence[str] = FIGURE4_METHODS,
            seeds: Sequence[int] | None = None) -> dict[str, list[RunFigure]]:
    """Finished runs under ``base`` (``<method>-seed<k>`` folders), by method; runs that cannot
    be read are skipped (the run store lists them with their reason)."""
    out: dict[str, list[RunFigure]] = {m: [] for m in methods}
    base = Path(base)
    for m in methods:
        for d in sorted(base.glob(f"{m}-seed*")):
            tail = d.name[len(m) + 5:]
            if not tail.isdigit() or (seeds is not None and int(tail) not in seeds):
                continue
            if not (d / CONFIG).is_file() or not (d / FINAL).is_file():
                continue
            try:
                r = load_run(d)
            except GamoError:
                continue
            if r.final.get("complete"):
                out[m].append(r)
    return out


@dataclass
class MethodSummary:
    method: str
    seeds: list[int]
    acsa: list[float]
    gm: list[float]
    best_acsa: list[float]
    best_gm: list[float]
    recall: list[float] | None             # mean per-class test recall over seeds (last epoch)
    measures: dict[str, float | None]      # claim means over seeds and minority classes
    by_size: tuple[dict, dict] = field(default_factory=lambda: ({}, {}))


def summary(runs: dict[str, list[RunFigure]]) -> tuple[dict[str, MethodSummary], list[Verdict]]:
    """Per method: Table 1 (last and best-validation epoch), mean per-class recall, the claim
    measures' means, and the caption's verdicts."""
    out: dict[str, MethodSummary] = {}
    for m, rs in runs.items():
        if not rs:
            continue
        fin = [r.final for r in rs]
        best = [f["best_val"]["test"] for f in fin if f.get("best_val") and not f["best_val"].get("unscored")]
        recalls = [f.get("recall") for f in fin if f.get("recall")]
        per_run = [r.class_claims for r in rs if r.class_claims]
        ms = MethodSummary(m, [r.seed for r in rs], [f["acsa"] for f in fin], [f["gm"] for f in fin],
                           [b["acsa"] for b in best], [b["gm"] for b in best],
                           list(np.mean(recalls, 0)) if recalls else None,
                           mean_measures(per_run) if per_run else {})
        if per_run:
            counts = rs[0].claims.get("counts", [])
            minority = sorted(rs[0].claims.get("minority", []), key=lambda c: -counts[c] if counts else 0)
            ms.by_size = (mean_measures(per_run, minority[:3]), mean_measures(per_run, minority[-3:]))
        out[m] = ms
    means = {m: s.measures for m, s in out.items() if s.measures}
    by_size = {m: s.by_size for m, s in out.items()}
    return out, verdicts(means, by_size)


def _f(v: float | None, nd: int = 3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def write_markdown(runs: dict[str, list[RunFigure]], path: str | os.PathLike, *, command: str = "",
                   paper: dict[str, tuple[float, float]] | None = None, title: str = "Figure 4",
                   paper_note: str = "") -> Path:
    """Table 1 of the runs beside the measured claims and the caption's verdicts, as Markdown."""
    sums, vs = summary(runs)
    first = next((r for rs in runs.values() for r in rs if r.claims and r.claims.get("space")), None)
    ref = (first.claims or {}).get("reference") if first else None
    lines = [f"# {title}: the caption's claims, measured", ""]
    if command:
        lines += [f"- command: `{command}`"]
    if first is not None:
        lines += [f"- runs: `{first.path.parent}` ({first.claims.get('dataset')}, {first.claims.get('family')} "
                  f"family, class counts {first.claims.get('counts')}); claims from {first.claims.get('n_claims')} "
                  f"fresh samples per minority class; OOD and near-duplicate flags in {first.claims.get('space', '?')} "
                  "(the audit's defaults: 95th / 5th percentile of the class's own nearest-neighbour distances, or "
                  "closer to another class)"]
    if ref:
        lines += [f"- reference classifier `{ref.get('key')}`: {ref.get('architecture')}; test accuracy "
                  f"{_f(ref.get('test_accuracy'))}, trained on the balanced full training set "
                  "(`gamo.reference`); fidelity and Fréchet distance are taken in its 128-d feature space"]
    sources = {}
    for m, rs in runs.items():
        for r in rs:
            if (r.claims or {}).get("images_from"):
                sources.setdefault(r.claims["images_from"], set()).add(METHOD_LABELS.get(m, m))
    for src, ms in sorted(sources.items()):
        lines += [f"- {', '.join(sorted(ms))}: samples in F's features; fidelity and Fréchet distance measured on "
                  + src + (" (so they include the decoder's own error: `bench/results/table5_*`)"
                           if "GAMO2pix" in src else "")]
    undecoded = sorted({METHOD_LABELS.get(m, m) for m, rs in runs.items() for r in rs
                        if (r.claims or {}).get("not_measured") and (r.claims or {}).get("generates")})
    if undecoded:
        lines += [f"- {', '.join(undecoded)}: no fidelity or Fréchet distance ({next(r.claims['not_measured'] for rs in runs.values() for r in rs if (r.claims or {}).get('not_measured'))})"]
    if paper_note:
        lines += [f"- paper columns: {paper_note}"]
    lines += ["", "## Table 1 for these runs (mean ± std over seeds)", "",
              "| method | seeds | ACSA (last) | GM (last) | ACSA (best val.) | GM (best val.) | paper ACSA | paper GM |",
              "|---|---|---|---|---|---|---|---|"]
    for m, s in sums.items():
        p = (paper or {}).get(m)
        lines.append(f"| {METHOD_LABELS.get(m, m)} | {' '.join(map(str, s.seeds))} | {mean_std(s.acsa)} | {mean_std(s.gm)} | "
                     f"{mean_std(s.best_acsa)} | {mean_std(s.best_gm)} | {_f(p[0], 2) if p else '-'} | {_f(p[1], 2) if p else '-'} |")
    lines += ["", "## Claim measures (mean over seeds and minority classes)", "",
              "| method | class fidelity | majority share | Fréchet distance | real floor | OOD share | near-duplicate share |",
              "|---|---|---|---|---|---|---|"]
    for m, s in sums.items():
        if not s.measures:
            lines.append(f"| {METHOD_LABELS.get(m, m)} | no generated samples | | | | | |")
            continue
        v = s.measures
        lines.append(f"| {METHOD_LABELS.get(m, m)} | {_f(v['fidelity'])} | {_f(v['majority_share'])} | "
                     f"{_f(v['frechet'], 1)} | {_f(v['floor'], 1)} | {_f(v['ood_share'])} | {_f(v['near_dup_share'])} |")
    lines += ["", "\"real floor\": the Fréchet distance held-out real images of the class get at the same sample size.",
              "", "## The caption, claim by claim", "", "| method | the paper says | test | measured | verdict |",
              "|---|---|---|---|---|"]
    for v in vs:
        lines.append(f"| {METHOD_LABELS.get(v.method, v.method)} | {v.claim} | {v.test} | {v.evidence} | **{v.verdict}** |")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def grid_png(runs: dict[str, list[RunFigure]], path: str | os.PathLike, *, seed: int | None = None,
             per_cell: int = 3, tile: int = 28, title: str = "") -> Path:
    """Draw the figure: the real row, then a row per method (one seed: ``seed`` or each method's
    first), a column per minority class, ``per_cell`` samples a cell. 2D runs get scatter
    thumbnails. Raises DataError when no run has figure files."""
    from PIL import Image, ImageDraw

    from gamo.audit import _font

    have = {m: next((r for r in rs if r.grid is not None and (seed is None or r.seed == seed)), None)
            for m, rs in runs.items()}
    have = {m: r for m, r in have.items() if r is not None}
    if not have:
        raise DataError("no run has figure files: run python -m gamo bench figure4 first")
    any_run = next(iter(have.values()))
    info = any_run.claims or {}
    minority = list(info.get("minority") or [])
    names = info.get("class_names") or [str(c) for c in range(len(info.get("counts", [])))]
    shape = info.get("image_shape")
    is_2d = info.get("kind") == "2d"
    cell_w = (tile + 2) * per_cell + 6 if not is_2d else 96
    cell_h = tile + 6 if not is_2d else 96
    label_w, head_h = 120, 34
    rows = [("real", any_run)] + [(m, r) for m, r in have.items()]
    img = Image.new("RGB", (label_w + cell_w * len(minority), head_h + cell_h * len(rows) + (18 if title else 0)),
                    "white")
    draw = ImageDraw.Draw(img)
    font = _font(11)
    top = 18 if title else 0
    if title:
        draw.text((4, 2), title, fill="black", font=font)
    for j, c in enumerate(minority):
        n = info.get("counts", [0] * (c + 1))[c]
        draw.text((label_w + j * cell_w + 4, top + 2), f"{names[c][:12]}", fill="black", font=font)
        draw.text((label_w + j * cell_w + 4, top + 16), f"n={n}", fill="gray", font=font)
    for i, (m, r) in enumerate(rows):
        y0 = top + head_h + i * cell_h
        label = "real samples" if m == "real" else METHOD_LABELS.get(m, m)
        g = r.grid
        kind = str(g["gen_kind"]) if m != "real" and "gen_kind" in g else ""
        # say what a row shows when it is not the samples themselves (conv runs' samples are F's features)
        note = {"nearest real": "nearest real images", "decoded": "GAMO2pix decodings"}.get(kind, "")
        draw.text((4, y0 + cell_h // 2 - (12 if note else 6)), label[:18], fill="black", font=font)
        if note:
            draw.text((4, y0 + cell_h // 2 + 2), note, fill="gray", font=font)
        if m == "real":
            xs, ys = g["real"], g["real_y"]
        elif "gen" in g:
            xs, ys = g["gen"], g["gen_y"]
        else:
            draw.text((label_w + 4, y0 + cell_h // 2 - 6), "no generated samples (classifier only)", fill="gray",
                      font=font)
            continue
        for j, c in enumerate(minority):
            x0 = label_w + j * cell_w
            pts = xs[ys == c]
            if is_2d:
                _scatter(draw, g["real"].astype(np.float32), g["real_y"], pts.astype(np.float32), c, x0 + 3, y0 + 3,
                         cell_h - 6)
                continue
            for k, t in enumerate(pts[:per_cell]):
                a = np.asarray(t, np.uint8).reshape(shape)
                a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
                im = Image.fromarray(a).resize((tile, tile), Image.NEAREST)
                img.paste(im, (x0 + 3 + k * (tile + 2), y0 + 3))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _scatter(draw, real: np.ndarray, real_y: np.ndarray, pts: np.ndarray, c: int, x0: int, y0: int, size: int) -> None:
    """A thumbnail: real points in grey, class ``c``'s real points in blue, its generated in red."""
    allp = np.concatenate([real, pts]) if len(pts) else real
    lo, hi = allp.min(0), allp.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)

    def xy(p):
        q = (p - lo) / span
        return x0 + q[0] * (size - 1), y0 + (1 - q[1]) * (size - 1)

    draw.rectangle([x0, y0, x0 + size, y0 + size], outline=(220, 220, 220))
    for p, yy in zip(real, real_y):
        px, py = xy(p)
        col = (31, 119, 180) if yy == c else (200, 200, 200)
        draw.point((px, py), fill=col)
    for p in pts:
        px, py = xy(p)
        draw.rectangle([px - 1, py - 1, px + 1, py + 1], fill=(214, 39, 40))


def claim_rows(run: RunFigure) -> list[ClassClaims]:
    """The run's per-class claim measures as :class:`ClassClaims`."""
    return [ClassClaims(**d) for d in run.class_claims]
