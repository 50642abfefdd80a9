"""Figure 4's caption, measured: per minority class, for one method's generated samples,

* **class fidelity**: the share the reference classifier (:mod:`gamo.reference`) assigns to the
  class they were generated for, and ``majority_share``, the share it assigns to the majority
  class (the caption's "cG's samples all resemble the majority class");
* **realism**: the Fréchet distance between the samples and the class's held-out real samples in
  the reference classifier's feature space (``frechet``; ``floor``: what as many real samples
  get, the best a generator can expect at this sample size), and ``ood_share``, the share the
  audit (:mod:`gamo.audit`) flags out-of-distribution;
* **novelty**: ``near_dup_share``, the share the audit flags as near-duplicates of a real sample.

Fidelity and Fréchet distances need samples that are images or rows of the dataset (the dense
family, toys, tables; conv runs once GAMO2pix decodes them); OOD and near-duplicate shares are
taken in the space the samples live in (the audit's). :func:`verdicts` states each of the
caption's claims and whether the measured numbers support it. UI-free.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["CLAIMS", "ClassClaims", "Verdict", "frechet_distance", "frechet_from_moments", "measure_claims",
           "mean_measures", "verdicts"]


def frechet_from_moments(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), the Fréchet distance of two
    Gaussians. The matrix square roots come from symmetric eigendecompositions (stable for
    the rank-deficient covariances of small sample sets); the result is clipped at 0."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1, c2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))

    def sqrt_psd(a: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh((a + a.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    s1 = sqrt_psd(c1)
    cross = sqrt_psd(s1 @ c2 @ s1)
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(cross))
    return max(d, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two sample sets (rows are samples), each summarised by its mean
    and covariance. Zero for identical sets; grows with a shift of one of them."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples in each set")
    return frechet_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


@dataclass(frozen=True)
class ClassClaims:
    """The caption's measures for one minority class of one run (None: not measurable here)."""

    cls: int
    n: int
    fidelity: float | None
    majority_share: float | None
    frechet: float | None
    floor: float | None
    ood_share: float | None
    near_dup_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_claims(x: np.ndarray, y: np.ndarray, *, majority: int, reference: Any = None,
                   ood: np.ndarray | None = None, near_dup: np.ndarray | None = None,
                   classes: Sequence[int] | None = None) -> list[ClassClaims]:
    """The measures of samples ``x`` (rows in the dataset's scale: images in [-1, 1]) generated
    for classes ``y``.

    Parameters
    ----------
    majority : int
        The majority class of the run's training set.
    reference : gamo.reference.Reference, optional
        Without it (or for samples that are not images/rows of the dataset: pass None), fidelity
        and Fréchet distance are None.
    ood, near_dup : (n,) bool, optional
        The audit's flags of the same samples.
    classes : sequence of int, optional
        Default: the classes in ``y``.
    """
    x, y = np.asarray(x), np.asarray(y, np.int64)
    classes = sorted(set(int(c) for c in (classes if classes is not None else np.unique(y))))
    pred = feats = None
    if reference is not None and len(x):
        proba = reference.predict_proba(x)
        pred = proba.argmax(1)
        feats = reference.features(x).astype(np.float64)
    out = []
    for c in classes:
        rows = y == c
        n = int(rows.sum())
        fid = maj = fd = floor = None
        if pred is not None and n:
            fid = float((pred[rows] == c).mean())
            maj = float((pred[rows] == majority).mean())
            if n > 1:
                mu, cov = reference.class_stats(c)
                fc = feats[rows]
                fd = frechet_from_moments(fc.mean(0), np.cov(fc, rowvar=False), mu, cov)
                floor = reference.floor(c, n)
        share = (lambda f: float(np.asarray(f)[rows].mean()) if f is not None and n else None)
        out.append(ClassClaims(c, n, fid, maj, fd, floor, share(ood), share(near_dup)))
    return out


MEASURES = ("fidelity", "majority_share", "frechet", "floor", "ood_share", "near_dup_share")


def mean_measures(per_run: Sequence[Sequence[ClassClaims | Mapping[str, Any]]],
                  classes: Sequence[int] | None = None) -> dict[str, float | None]:
    """Mean of each measure over the given classes of every run (runs = seeds of one method).
    A measure that is None everywhere stays None."""
    acc: dict[str, list[float]] = {k: [] for k in MEASURES}
    for rows in per_run:
        for r in rows:
            d = r.to_dict() if isinstance(r, ClassClaims) else dict(r)
            if classes is not None and int(d["cls"]) not in classes:
                continue
            for k in MEASURES:
                if d.get(k) is not None:
                    acc[k].append(float(d[k]))
    return {k: (float(np.mean(v)) if v else None) for k, v in acc.items()}


@dataclass(frozen=True)
class Verdict:
    method: str
    claim: str
    test: str
    verdict: str           # "supported", "not supported" or "not measurable"
    evidence: str


# The caption of the paper's Figure 4, one claim per method, and the measurable test we hold it to.
CLAIMS: dict[str, tuple[str, str]] = {
    "smote": ("SMOTE sometimes generates unrealistic out-of-distribution samples (blends of visually "
              "disparate neighbours).",
              "more of SMOTE's samples are flagged out-of-distribution than GAMO's, and its Fréchet distance is higher"),
    "cgan": ("cGAN makes realistic images only for the more abundant minority classes.",
             "class fidelity over the three largest minority classes exceeds that over the three smallest"),
    "cg": ("cG trained against the classifier alone makes samples that all resemble the majority class.",
           "at least half of cG's samples are assigned to the majority class"),
    "cg_d": ("Adding D makes cG's samples somewhat in keeping with their classes, but still unrealistic.",
             "fidelity above cG's, and a Fréchet distance above GAMO's"),
    "gamo_no_d": ("GAMO\\D's convex samples keep their class identity but are often out-of-distribution "
                  "(classes are not convex).",
                  "fidelity above cG+D's, and more samples flagged out-of-distribution than GAMO's"),
    "gamo": ("GAMO generates realistic samples that keep their class identity.",
             "the lowest Fréchet distance among the generating methods, and fidelity within 0.05 of the best"),
}


def _f(v: float | None, nd: int = 3) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def verdicts(means: Mapping[str, Mapping[str, float | None]],
             by_size: Mapping[str, tuple[Mapping[str, float | None], Mapping[str, float | None]]] | None = None
             ) -> list[Verdict]:
    """Hold each of the caption's claims (:data:`CLAIMS`) to the measured means.

    Parameters
    ----------
    means : method -> :func:`mean_measures` over its runs and minority classes.
    by_size : method -> (means over the three largest minority classes, over the three smallest),
        for cGAN's claim.
    """
    out: list[Verdict] = []

    def get(m: str, k: str) -> float | None:
        return (means.get(m) or {}).get(k)

    def verdict(method: str, ok: bool | None, evidence: str) -> None:
        claim, test = CLAIMS[method]
        out.append(Verdict(method, claim, test, "not measurable" if ok is None else
                           ("supported" if ok else "not supported"), evidence))

    if "smote" in means:
        a, b, fa, fb = get("smote", "ood_share"), get("gamo", "ood_share"), get("smote", "frechet"), get("gamo", "frechet")
        ok = None if None in (a, b, fa, fb) else (a > b and fa > fb)
        verdict("smote", ok, f"OOD share {_f(a)} vs GAMO {_f(b)}; Fréchet {_f(fa, 1)} vs GAMO {_f(fb, 1)}")
    if "cgan" in means:
        big, small = (by_size or {}).get("cgan", ({}, {}))
        a, b = big.get("fidelity"), small.get("fidelity")
        verdict("cgan", None if None in (a, b) else a > b,
                f"fidelity {_f(a)} on the three largest minority classes, {_f(b)} on the three smallest")
    if "cg" in means:
        a = get("cg", "majority_share")
        verdict("cg", None if a is None else a >= 0.5, f"majority share {_f(a)} (fidelity {_f(get('cg', 'fidelity'))})")
    if "cg_d" in means:
        a, b, fa, fb = get("cg_d", "fidelity"), get("cg", "fidelity"), get("cg_d", "frechet"), get("gamo", "frechet")
        verdict("cg_d", None if None in (a, b, fa, fb) else (a > b and fa > fb),
                f"fidelity {_f(a)} vs cG {_f(b)}; Fréchet {_f(fa, 1)} vs GAMO {_f(fb, 1)}")
    if "gamo_no_d" in means:
        a, b, oa, ob = (get("gamo_no_d", "fidelity"), get("cg_d", "fidelity"), get("gamo_no_d", "ood_share"),
                        get("gamo", "ood_share"))
        verdict("gamo_no_d", None if None in (a, b, oa, ob) else (a > b and oa > ob),
                f"fidelity {_f(a)} vs cG+D {_f(b)}; OOD share {_f(oa)} vs GAMO {_f(ob)}")
    if "gamo" in means:
        gens = {m: v for m, v in means.items() if v.get("frechet") is not None}
        fd, fid = get("gamo", "frechet"), get("gamo", "fidelity")
        if fd is None or fid is None or len(gens) < 2:
            verdict("gamo", None, "needs GAMO's and another generating method's measures")
        else:
            best_fd = min(gens, key=lambda m: gens[m]["frechet"])
            best_fid = max(v["fidelity"] for v in gens.values() if v.get("fidelity") is not None)
            ok = best_fd == "gamo" and fid >= best_fid - 0.05
            verdict("gamo", ok, f"Fréchet {_f(fd, 1)} (lowest: {best_fd}, {_f(gens[best_fd]['frechet'], 1)}); "
                                f"fidelity {_f(fid)} (best {_f(best_fid)})")
    return out
