"""The claim measures (gamo.claims) and the reference classifier (gamo.reference) on data where
the answer is known."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gamo.audit import audit_points
from gamo.claims import frechet_distance, mean_measures, measure_claims, verdicts
from gamo.config import DataConfig
from gamo.errors import DataError
from gamo.reference import find_reference, get_reference, load_reference, train_reference


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    d = [frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    # a pure shift of every row by s adds ||s||^2 = 6 s^2 and nothing else
    assert d == pytest.approx([6 * 0.25, 6 * 1.0, 6 * 4.0], rel=1e-6)
    # a wider spread (same mean) is a distance too
    assert frechet_distance(a, 3 * a) > 1.0
    with pytest.raises(ValueError):
        frechet_distance(a[:1], a)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    # N(0, I) vs N(0, 4 I) in 3 dimensions: tr(I + 4I - 2 * 2I) = 3
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200_000, 3))
    b = 2 * rng.normal(size=(200_000, 3))
    assert frechet_distance(a, b) == pytest.approx(3.0, rel=0.02)


class CentroidReference:
    """A stand-in reference: nearest class centroid; features are the points themselves."""

    def __init__(self, x, y):
        self.means = np.stack([x[y == c].mean(0) for c in np.unique(y)])
        self.x, self.y = x, y

    def predict_proba(self, x):
        d = ((np.asarray(x)[:, None, :] - self.means[None]) ** 2).sum(-1)
        p = np.exp(-(d - d.min(1, keepdims=True)))
        return p / p.sum(1, keepdims=True)

    def features(self, x):
        return np.asarray(x, np.float64)

    def class_stats(self, c):
        xc = self.x[self.y == c]
        return xc.mean(0), np.cov(xc, rowvar=False)

    def floor(self, c, n):
        return None


def _three_blobs(rng, n=200):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = np.repeat(np.arange(3), n)
    return centres[y] + rng.normal(size=(len(y), 2)), y


def test_samples_copied_from_another_class_get_low_fidelity_and_copies_are_near_duplicates():
    rng = np.random.default_rng(2)
    x, y = _three_blobs(rng)
    ref = CentroidReference(x, y)
    # class 1's "samples" are copies of class 2's real points; class 2's are fresh class-2 points
    fake1 = x[y == 2][:50]
    fake2 = np.array([0.0, 10.0]) + rng.normal(size=(50, 2))
    gx, gy = np.concatenate([fake1, fake2]), np.repeat([1, 2], 50)
    aud = audit_points(gx, gy, x, y)
    rows = {r.cls: r for r in measure_claims(gx, gy, majority=0, reference=ref, ood=aud.out_of_distribution,
                                             near_dup=aud.near_duplicate)}
    assert rows[1].fidelity == 0.0 and rows[2].fidelity > 0.9
    assert rows[1].majority_share == 0.0
    # copies of real points are near-duplicates (DCR 0), and class 1's copies sit in class 2: OOD
    assert rows[1].near_dup_share == 1.0 and rows[1].ood_share == 1.0
    assert rows[2].near_dup_share < 0.5
    # the misplaced class is far from its real class in the reference space, the right one near
    assert rows[1].frechet > 100 > 5 > rows[2].frechet
    assert rows[1].n == rows[2].n == 50


def test_without_a_reference_only_the_audit_shares_are_measured():
    rows = measure_claims(np.zeros((4, 2)), np.array([1, 1, 2, 2]), majority=0, ood=np.array([1, 0, 0, 0], bool),
                          near_dup=np.array([0, 0, 1, 1], bool))
    assert [r.fidelity for r in rows] == [None, None] and [r.frechet for r in rows] == [None, None]
    assert [r.ood_share for r in rows] == [0.5, 0.0] and [r.near_dup_share for r in rows] == [0.0, 1.0]
    assert mean_measures([rows])["ood_share"] == 0.25 and mean_measures([rows])["fidelity"] is None


def _m(**kw):
    base = dict(fidelity=0.9, majority_share=0.05, frechet=10.0, floor=1.0, ood_share=0.1, near_dup_share=0.2)
    base.update(kw)
    return base


def test_verdicts_follow_the_measures():
    means = {"smote": _m(ood_share=0.3, frechet=30.0), "cg": _m(majority_share=0.8, fidelity=0.1),
             "cg_d": _m(fidelity=0.5, frechet=40.0), "gamo_no_d": _m(fidelity=0.85, ood_share=0.4),
             "gamo": _m(frechet=8.0, ood_share=0.05)}
    by_size = {"cgan": (_m(fidelity=0.9), _m(fidelity=0.4))}
    v = {x.method: x.verdict for x in verdicts({**means, "cgan": _m()}, by_size)}
    assert v == {"smote": "supported", "cgan": "supported", "cg": "supported", "cg_d": "supported",
                 "gamo_no_d": "supported", "gamo": "supported"}
    # flip each: the verdict follows
    worse = {**means, "smote": _m(ood_share=0.01, frechet=30.0), "cg": _m(majority_share=0.2),
             "gamo": _m(frechet=50.0)}
    v = {x.method: x.verdict for x in verdicts(worse, {"cgan": (_m(fidelity=0.3), _m(fidelity=0.4))} | {})}
    assert v["smote"] == v["cg"] == v["gamo"] == "not supported"
    # a claim without the measures it needs says so
    v = {x.method: x.verdict for x in verdicts({"smote": _m(ood_share=None)})}
    assert v["smote"] == "not measurable"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "reference"


def test_reference_is_trained_on_balanced_data_cached_and_read_back(cache, one_thread):
    cfg = DataConfig(dataset="toy:blobs", n_classes=3)
    assert find_reference(cfg) is None or find_reference(cfg).path.parent != cache
    ref = train_reference(cfg, epochs=5)
    info = json.loads((cache / ref.key / "reference.json").read_text())
    assert info["test_accuracy"] > 0.9 and info["train_rows"] == 3 * info["train_per_class"]
    assert info["architecture"].startswith("dense-128") and info["feature_dim"] == 128
    again = get_reference(cfg, train=False)
    assert again is not None and again.path == cache / ref.key
    x = np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32)
    np.testing.assert_allclose(again.features(x), ref.features(x), rtol=1e-6)
    assert again.predict_proba(x).shape == (7, 3)
    # held-out class statistics: a class's own points are nearer its statistics than another's
    mu0, _ = again.class_stats(0)
    assert mu0.shape == (128,)
    with pytest.raises(DataError, match="takes 2 values"):
        again.features(np.zeros((2, 5)))


def test_a_damaged_reference_is_one_clear_error(cache, one_thread):
    ref = train_reference(DataConfig(dataset="toy:moons"), epochs=2)
    (ref.path / "reference.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="delete the folder"):
        load_reference(ref.path)
    # a pickle that is not plain tensors is refused (weights_only), not executed
    torch.save({"w": object()}, ref.path / "reference.pt")
    with pytest.raises(DataError):
        load_reference(ref.path)
