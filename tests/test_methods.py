"""Every method's contract on tiny data, and GAMOSampler as an imbalanced-learn sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gamo.config import METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.data import load_dataset
from gamo.data.types import Dataset
from gamo.methods import REGISTRY
from gamo.train import Trainer


def tiny_cfg(method: str, steps: int = 12, seed: int = 0) -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset="toy:blobs", n_classes=3, profile="counts:60,20,8", n_per_class=60,
                        n_test_per_class=10, seed=seed, noise=1.0),
        model=ModelConfig(hidden=16, latent=8, g_hidden=16),
        train=TrainConfig(method=method, steps=steps, batch_size=16, seed=seed, snapshot_every=0, lr_m=1e-3),
    )


def run(cfg: RunConfig) -> Trainer:
    tr = Trainer(cfg)
    while not tr.finished:
        tr.step()
    return tr


def test_every_method_is_registered_and_listed():
    assert set(METHODS) == set(REGISTRY)


def digits_cfg(method: str, seed: int = 0) -> RunConfig:
    return RunConfig(
        data=DataConfig(dataset="digits", profile="counts:30,30,30,30,30,20,20,10,6,6", n_test_per_class=10, seed=seed),
        model=ModelConfig(hidden=16, latent=8, g_hidden=16),
        train=TrainConfig(method=method, steps=12, batch_size=16, seed=seed, snapshot_every=0, lr_m=1e-3),
    )


def test_augment_needs_images_and_balances_digits():
    from gamo.errors import ConfigError

    with pytest.raises(ConfigError, match="transforms images"):
        Trainer(tiny_cfg("augment"))
    tr = run(digits_cfg("augment"))
    gen = tr.method.balancing_samples(seed=0)
    after = tr.data.class_counts + np.bincount(gen["y"], minlength=10)
    assert (after == 30).all()
    assert gen["x"].shape[1] == 64 and gen["x"].min() >= -1 - 1e-6 and gen["x"].max() <= 1 + 1e-6
    # augmented copies are transformed, not duplicated
    real = tr.data.x_train.reshape(len(tr.data.x_train), -1)
    dup = (np.abs(gen["x"][:, None, :] - real[None]).max(axis=2) < 1e-6).any(axis=1)
    assert dup.mean() < 0.5
    again = run(digits_cfg("augment")).method.balancing_samples(seed=0)
    assert np.array_equal(again["x"], gen["x"])


def test_cgan_trains_gan_then_classifier():
    tr = Trainer(tiny_cfg("cgan", steps=20))
    phases = []
    while not tr.finished:
        phases.append(tr.method.phase)
        losses = tr.method.step()
        assert set(losses) == ({"D", "G"} if phases[-1] == "gan" else {"M"})
    assert phases[:10] == ["gan"] * 10 and phases[10:] == ["m"] * 10
    # the classifier's fit set is the training set plus the GAN's points, balanced
    assert (np.bincount(tr.method.fit_y.numpy()) == tr.data.class_counts.max()).all()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_cdcgan_on_images_trains_gan_then_classifier(shape):
    """cDCGAN+CN: a conv GAN on the images first (as many iterations as GAMO's G gets), then F+M on
    real + generated images (as many as Baseline CN's), balanced."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [24, 10, 6]).astype(np.int64)
    x = rng.uniform(-1, 1, size=(len(y), *shape)).astype(np.float32)
    data = Dataset("fake", "image", x, y, x[:6], y[:6], ("a", "b", "c"), np.arange(len(y)), np.arange(6),
                   image_shape=shape)
    cfg = tiny_cfg("cgan").replace(train={"steps": 0, "epochs": 2})
    tr = Trainer(cfg, data)
    m = tr.method
    assert m.steps_per_epoch == 2 * m.iters_per_phase and m.gan_steps == 2 * m.iters_per_phase
    g0 = [p.detach().clone() for p in m.G.parameters()]
    phases = []
    while not tr.finished:
        phases.append(m.phase)
        losses = m.step()
        assert set(losses) == ({"D", "G"} if phases[-1] == "gan" else {"M"})
        assert all(torch.isfinite(v) for v in losses.values())
    assert phases == ["gan"] * m.gan_steps + ["fm"] * m.gan_steps
    assert any(not torch.equal(a, b) for a, b in zip(g0, m.G.parameters()))  # the GAN trained
    # F+M trained on images: real + generated, every class at the majority's count
    assert tuple(m.fit_x.shape[1:]) == shape and (np.bincount(m.fit_y.numpy()) == 24).all()
    syn = m.fit_x[len(y):]
    assert syn.min() >= -1 and syn.max() <= 1 and not torch.equal(syn[0], syn[1])
    gen = m.balancing_samples(seed=0)          # in F's feature space, like GAMO's conv samples
    assert gen["x"].shape == (14 + 18, m.feat_dim) and np.isfinite(gen["x"]).all()
    snap = tr.snapshot(with_train=True)
    assert snap.generated is not None and snap.generated.x.shape[1] == m.feat_dim


@pytest.mark.parametrize("method", [m for m in METHODS if m != "augment"])
def test_method_contract(method, monkeypatch):
    # bit-equal reruns hold at a fixed thread count; threads that follow a busy machine's load
    # change the order of float sums (gamo.cpuload)
    monkeypatch.setenv("GAMO_ADAPT_THREADS", "0")
    tr = run(tiny_cfg(method))
    snap = tr.snapshot(with_train=True)
    assert snap.step == 12
    assert len(snap.test.recall) == 3 and len(snap.train.recall) == 3
    assert all(np.isfinite(v) for v in snap.losses.values()) and "M" in snap.losses
    counts = tr.data.class_counts
    x_train, y_train = tr.data.x_train, tr.data.y_train
    gen = tr.method.balancing_samples(seed=0)
    # the cost-sensitive methods and DOS (which over-samples by re-presenting real rows) generate
    # nothing; every oversampler does (on this data BorderlineSMOTE finds danger points too)
    assert (gen is None) == (method in ("baseline", "class_weighted", "logit_adjusted", "ldam_drw", "dos"))
    if gen is None:
        assert tr.method.generated() is None
    else:  # oversamplers: the generated rows balance the training set
        assert np.isfinite(gen["x"]).all() and gen["x"].shape == (len(gen["y"]), 2)
        added = np.bincount(gen["y"], minlength=3)
        assert added[0] == 0                                   # nothing for the majority class
        after = counts + added
        if method in ("borderline_smote", "adasyn"):
            # these place points only near borders / where neighbours disagree (imblearn's rules)
            assert (added[1:] > 0).all() and (after <= counts.max() * 1.05).all(), after
        else:
            assert (after == counts.max()).all(), after
        if method in ("gamo", "gamo_no_d", "smote", "borderline_smote", "adasyn"):
            # convex combinations of (SMOTE: interpolations between) real rows of the point's own
            # class: inside that class's bounding box
            for c in (1, 2):
                own = x_train[y_train == c]
                g = gen["x"][gen["y"] == c]
                assert (g >= own.min(axis=0) - 1e-5).all() and (g <= own.max(axis=0) + 1e-5).all(), c
        if method in ("gamo", "gamo_no_d", "cg", "cg_d", "cgan"):
            # generators draw fresh noise from the seed: same seed, same rows; another, others
            assert np.array_equal(tr.method.balancing_samples(seed=0)["x"], gen["x"])
            assert not np.allclose(tr.method.balancing_samples(seed=1)["x"], gen["x"])
    # same seed, same result; another seed, another result
    again = run(tiny_cfg(method)).snapshot(with_train=True)
    assert again.losses == snap.losses
    other = run(tiny_cfg(method, seed=1)).snapshot(with_train=True)
    assert other.losses != snap.losses


@pytest.mark.parametrize("method", ["smote", "class_weighted", "logit_adjusted", "ldam_drw", "dos"])
def test_method_runs_on_conv_family(method):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [24, 10, 6]).astype(np.int64)
    x = rng.uniform(-1, 1, size=(len(y), 1, 28, 28)).astype(np.float32)
    data = Dataset("fake", "image", x, y, x[:6], y[:6], ("a", "b", "c"), np.arange(len(y)), np.arange(6),
                   image_shape=(1, 28, 28))
    cfg = tiny_cfg(method).replace(train={"steps": 0, "epochs": 2})  # 2: the F phase after a resampling too
    tr = Trainer(cfg, data)
    phases = [p for p, _ in tr.method.schedule()]
    assert phases[0] == "fm"
    while not tr.finished:
        tr.step()
    assert np.isfinite(tr.snapshot().losses["M"])


def test_class_weights_equalise_classes():
    tr = Trainer(tiny_cfg("class_weighted"))
    w = tr.method.class_w.cpu().numpy()
    counts = tr.data.class_counts
    assert np.allclose(w * counts, (w * counts)[0])  # each class carries the same total weight


def test_logit_adjustment_is_log_prior():
    tr = Trainer(tiny_cfg("logit_adjusted"))
    prior = tr.data.class_counts / tr.data.class_counts.sum()
    assert np.allclose(tr.method.shift.cpu().numpy(), np.log(prior), atol=1e-6)


def test_ldam_margins_and_deferred_reweighting():
    tr = Trainer(tiny_cfg("ldam_drw", steps=30))
    m = tr.method
    margin = m.margin.cpu().numpy()
    assert margin.max() == pytest.approx(0.5) and margin[2] > margin[1] > margin[0]  # smaller class, larger margin
    # class-balanced weights (Cui et al.): 1 / effective number (1 - beta^n) / (1 - beta),
    # normalised to sum to K, computed here by hand: the smaller the class, the larger its weight
    n = tr.data.class_counts.astype(np.float64)
    cb = (1 - 0.9999) / (1 - 0.9999 ** n)
    cb = cb * 3 / cb.sum()
    assert cb[2] > cb[1] > cb[0]
    assert np.allclose(m.drw_w.cpu().numpy(), cb, rtol=1e-5)
    # a computed case: equal logits, three majority rows and one minority row
    logits = torch.zeros(4, 3)
    y = torch.tensor([0, 0, 0, 2])
    adjusted = 30.0 * (logits - torch.nn.functional.one_hot(y, 3) * torch.as_tensor(margin, dtype=torch.float32)[y, None])
    per = torch.nn.functional.cross_entropy(adjusted, y, reduction="none").double().numpy()
    assert per[3] > per[0]                      # the minority row's larger margin costs more
    wy = cb[y.numpy()]
    m.step_count = 19  # before 2/3 of the 30 steps: every sample counts the same
    assert float(m.real_loss(logits, y)) == pytest.approx(per.mean(), rel=1e-5)
    m.step_count = 20  # from 2/3 of training on: class-balanced weights switch on
    late = float(m.real_loss(logits, y))
    assert late == pytest.approx((wy * per).sum() / wy.sum(), rel=1e-5)
    # the one minority row now outweighs each majority row, pulling the loss up towards its own
    assert late > per.mean()


def test_smote_rows_lie_between_class_members():
    from sklearn.neighbors import NearestNeighbors

    tr = Trainer(tiny_cfg("smote"))       # the dense family resamples once, before training
    m = tr.method
    gen = m.balancing_samples(seed=0)
    x_train, y_train = tr.data.x_train.astype(np.float64), tr.data.y_train
    counts = tr.data.class_counts
    # every minority class is brought up to the majority's size, the majority gets nothing
    assert (counts + np.bincount(gen["y"], minlength=3) == counts.max()).all()
    assert m.k_neighbors == 5
    for c in (1, 2):
        pts = x_train[y_train == c]
        g = gen["x"][gen["y"] == c].astype(np.float64)
        # SMOTE: s = a + lam (b - a), lam in [0, 1], b one of a's k nearest members of its class
        _, nn = NearestNeighbors(n_neighbors=m.k_neighbors + 1).fit(pts).kneighbors(pts)
        a = np.repeat(pts, m.k_neighbors, axis=0)                            # (P, 2)
        d = pts[nn[:, 1:].reshape(-1)] - a                                   # (P, 2): b - a
        lam = np.einsum("spj,pj->sp", g[:, None] - a[None], d) / (d ** 2).sum(axis=1)
        lam_c = np.clip(lam, 0, 1)
        resid = np.linalg.norm(g[:, None] - (a[None] + lam_c[..., None] * d[None]), axis=2)   # (S, P)
        assert (resid.min(axis=1) < 1e-4).all(), c
        # new points, not copies of real rows
        assert np.linalg.norm(g[:, None] - pts[None], axis=2).min() > 1e-6, c
    # the classifier trains on the real rows followed by these synthetic rows
    assert np.array_equal(m._bal_x[:len(y_train)].numpy(), tr.data.x_train)
    assert np.array_equal(m._bal_y.numpy(), np.concatenate([y_train, gen["y"]]))


# ---------------------------------------------------------------------------- DOS
def _np_embed(m, x: np.ndarray) -> np.ndarray:
    """f(x) = M's hidden layers, recomputed in numpy from M's weights (dense family)."""
    h = x.astype(np.float64)
    for layer in list(m.M.net)[:-1]:
        if isinstance(layer, torch.nn.Linear):
            h = h @ layer.weight.detach().cpu().numpy().T.astype(np.float64) + layer.bias.detach().cpu().numpy()
        else:  # LeakyReLU(0.1)
            h = np.where(h > 0, h, 0.1 * h)
    return h


def test_dos_neighbours_are_the_k_nearest_in_class_embeddings(one_thread):
    from sklearn.neighbors import NearestNeighbors

    tr = Trainer(tiny_cfg("dos"))
    m = tr.method
    x, y = tr.data.x_train.reshape(len(tr.data.y_train), -1), tr.data.y_train
    while m.warming_up:                             # the first epoch: classification loss only
        assert float(m.step()["micro"]) == 0 and m._emb is None
    expected = _np_embed(m, x)                      # the networks after the warm-up epoch
    tr.step()                                       # epoch start: targets from those networks
    assert np.allclose(m._emb.cpu().numpy(), expected, atol=1e-5)
    nbr, ok = m._nbr.cpu().numpy(), m._nbr_ok.cpu().numpy()
    assert not ok[y == 0].any()                     # the majority class is not overloaded (k = 0)
    for c in m.minority:
        rows = np.flatnonzero(y == c)
        k = min(m.k, len(rows) - 1)
        assert ok[rows, :k].all() and not ok[rows, k:].any()
        got = nbr[rows, :k]
        assert (y[got] == c).all() and (got != rows[:, None]).all()       # in-class, never itself
        assert all(len(set(r)) == k for r in got)
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(expected[rows]).kneighbors(expected[rows])
        mine = np.sort(np.linalg.norm(expected[got] - expected[rows][:, None], axis=2), axis=1)
        assert np.allclose(mine, dist[:, 1:], atol=1e-4)                 # the k nearest (self excluded)
    # one epoch presents every class n_max times: the minority classes are over-sampled to balance
    assert (np.bincount(y[m._perm.cpu().numpy()]) == m.counts.max()).all()
    assert m.iters_per_phase == -(-3 * 60 // 16)
    # the targets are recomputed from the current networks at the start of the next epoch
    while m.step_count % m.steps_per_epoch:
        tr.step()
    before = m.embeddings()
    assert not torch.allclose(before, m._emb)
    tr.step()
    assert torch.equal(m._emb, before)


def test_dos_loss_is_micro_cluster_plus_weighted_classification(one_thread):
    from gamo.losses import classifier_loss

    tr = Trainer(tiny_cfg("dos"))
    m = tr.method
    for _ in range(m.steps_per_epoch + 3):          # past the warm-up epoch
        tr.step()
    rows = m._perm[:16]
    x, y = m.x_train[rows], m.y_train[rows]
    state = m.gen.get_state()
    with torch.no_grad():
        loss, l_f = m.dos_loss(x, y, rows)
    m.gen.set_state(state)
    ok = m._nbr_ok[rows].cpu().numpy()
    w = torch.randn(ok.shape, generator=m.gen, device=m.device).abs().cpu().numpy() * ok    # the same weight vectors
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    assert np.allclose(w[ok.any(axis=1)].sum(axis=1), 1) and (w[~ok] == 0).all()
    h = _np_embed(m, x.cpu().numpy())
    v = m._emb[m._nbr[rows]].cpu().numpy().astype(np.float64)
    d2 = ((h[:, None] - v) ** 2).sum(axis=2)
    want_f = (w * d2).sum(axis=1)
    score = np.where(ok, -w * np.sqrt(d2), -np.inf)
    score = np.concatenate([np.zeros((len(h), 1)), score], axis=1)
    rho = np.exp(score - score.max(axis=1, keepdims=True))
    rho /= rho.sum(axis=1, keepdims=True)
    head = m.M.net[-1]
    with torch.no_grad():
        per0 = classifier_loss(head(torch.as_tensor(h, dtype=torch.float32, device=m.device)), y, "ls",
                               reduction="none").cpu().numpy()
        per_n = np.stack([classifier_loss(head(torch.as_tensor(v[:, j], dtype=torch.float32, device=m.device)), y, "ls",
                                          reduction="none").cpu().numpy() for j in range(v.shape[1])], axis=1)
    want_g = rho[:, 0] * per0 + (rho[:, 1:] * per_n).sum(axis=1)
    assert ok.any()                                  # the batch holds overloaded minority inputs
    assert float(l_f) == pytest.approx(want_f.mean(), rel=1e-4)
    assert float(loss) == pytest.approx((want_f + want_g).mean(), rel=1e-4)


def _minority_spread(m) -> float:
    """Mean distance of minority embeddings to their 5 nearest in-class neighbours / mean pair distance."""
    emb = m.embeddings()
    near = []
    for c in m.minority:
        e = emb[m._members[c]]
        d = torch.cdist(e, e).fill_diagonal_(float("inf"))
        near.append(d.topk(min(5, len(e) - 1), largest=False).values.mean())
    return float(torch.stack(near).mean() / torch.cdist(emb, emb).mean())


def test_dos_micro_cluster_term_tightens_minority_classes(one_thread):
    def spread(without_micro: bool) -> tuple[float, float]:
        tr = Trainer(tiny_cfg("dos", steps=240))
        m = tr.method
        if without_micro:  # the same training with l_f removed from the loss
            full = m.dos_loss
            m.dos_loss = lambda x, y, rows: (lambda out: (out[0] - out[1], out[1]))(full(x, y, rows))
        start = _minority_spread(m)
        while not tr.finished:
            tr.step()
        assert np.isfinite(tr.snapshot().losses["M"])
        return start, _minority_spread(m)

    start, with_f = spread(False)
    _, without_f = spread(True)
    # measured (seed 0): 0.59 at the start, 0.24 after 240 steps with DOS, 0.45 without l_f
    assert with_f < 0.6 * start and with_f < 0.75 * without_f, (start, with_f, without_f)


@pytest.mark.parametrize("family", ["dense", "conv"])
@pytest.mark.parametrize("at", [1, 0, 2], ids=["warm-up", "epoch-start", "mid-epoch"])
def test_dos_checkpoint_roundtrip(family, at, one_thread, tmp_path):
    if family == "conv":
        rng = np.random.default_rng(0)
        y = np.repeat([0, 1, 2], [24, 10, 6]).astype(np.int64)
        x = rng.uniform(-1, 1, size=(len(y), 1, 28, 28)).astype(np.float32)
        data = Dataset("fake", "image", x, y, x[:6], y[:6], ("a", "b", "c"), np.arange(len(y)), np.arange(6),
                       image_shape=(1, 28, 28))
        cfg = tiny_cfg("dos").replace(model={"feat_dim": 32})
    else:
        cfg = tiny_cfg("dos").replace(data={"profile": "counts:30,10,6"})
        data = load_dataset(cfg.data)
    a = Trainer(cfg, data)
    if at != 1:                                            # after the warm-up epoch (+ 0 or 2 steps)
        at += a.method.steps_per_epoch
    for _ in range(at):
        a.step()
    path = tmp_path / "ckpt.pt"
    torch.save(a.method.state_dict(), path)
    b = Trainer(cfg, data)
    b.method.load_state_dict(torch.load(path, weights_only=True))
    for _ in range(a.method.steps_per_epoch + 2):        # across the next target update
        la = {k: float(v) for k, v in a.method.step().items()}
        lb = {k: float(v) for k, v in b.method.step().items()}
        assert la == lb
    assert a.method.evaluate("test").confusion.tolist() == b.method.evaluate("test").confusion.tolist()


# ---------------------------------------------------------------------------- GAMOSampler
imblearn = pytest.importorskip("imblearn")


def _xy(seed=0):
    from sklearn.datasets import make_classification

    return make_classification(300, 4, n_classes=3, weights=[0.75, 0.18, 0.07], n_informative=3,
                               n_redundant=0, random_state=seed)


def test_gamo_sampler_balances_with_convex_rows():
    from gamo.sampler import GAMOSampler

    X, y = _xy()
    s = GAMOSampler(steps=40, random_state=0)
    Xr, yr = s.fit_resample(X, y)
    counts = np.bincount(yr)
    assert (counts == counts.max()).all()
    assert np.array_equal(Xr[: len(X)], X) and np.array_equal(yr[: len(y)], y)
    new_y = yr[len(y):]
    # every generated row's parents are real rows of its own class, with weights in (0, 1]
    assert (y[s.parents_] == new_y[:, None]).all()
    assert (s.parent_weights_ > 0).all() and (s.parent_weights_ <= 1 + 1e-6).all()
    assert s.sampling_strategy_ == {1: counts.max() - np.sum(y == 1), 2: counts.max() - np.sum(y == 2)}


def test_gamo_sampler_same_seed_same_rows_and_string_labels():
    from gamo.sampler import GAMOSampler

    X, y = _xy()
    labels = np.array(["cat", "dog", "eel"])[y]
    a = GAMOSampler(steps=20, random_state=3).fit_resample(X, labels)
    b = GAMOSampler(steps=20, random_state=3).fit_resample(X, labels)
    assert np.array_equal(a[0], b[0]) and (a[1] == b[1]).all()
    assert set(a[1]) == {"cat", "dog", "eel"}


def test_gamo_sampler_in_pipeline_and_validation():
    from imblearn.pipeline import make_pipeline
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.linear_model import LogisticRegression

    from gamo.sampler import GAMOSampler

    class Spy(ClassifierMixin, BaseEstimator):
        """A logistic regression that records what the pipeline hands it."""

        def fit(self, X, y):
            self.fit_X_, self.fit_y_ = np.array(X), np.array(y)
            self.lr_ = LogisticRegression(max_iter=200).fit(X, y)
            self.classes_ = self.lr_.classes_
            return self

        def predict(self, X):
            self.predict_X_ = np.array(X)
            return self.lr_.predict(X)

    X, y = _xy()
    pipe = make_pipeline(GAMOSampler(steps=20, random_state=0), Spy())
    pipe.fit(X, y)
    spy = pipe[-1]
    # fit: the classifier sees X and y followed by generated rows that balance every class
    n = len(y)
    assert np.array_equal(spy.fit_X_[:n], X) and np.array_equal(spy.fit_y_[:n], y)
    assert len(spy.fit_y_) > n and (np.bincount(spy.fit_y_) == np.bincount(y).max()).all()
    for c in (1, 2):   # each generated row is a convex combination of rows of its class
        own, new = X[y == c], spy.fit_X_[n:][spy.fit_y_[n:] == c]
        assert (new >= own.min(axis=0) - 1e-6).all() and (new <= own.max(axis=0) + 1e-6).all()
    # predict: the sampler passes the data through untouched (no rows added or changed)
    assert pipe.predict(X).shape == y.shape and np.array_equal(spy.predict_X_, X)
    with pytest.raises(ValueError):
        GAMOSampler(sampling_strategy="not a strategy").fit_resample(X, y)
    with pytest.raises(ValueError):
        GAMOSampler(steps=5).fit_resample(X, y[:-1])  # inconsistent lengths
    with pytest.raises(ValueError):
        GAMOSampler(steps=5, method="smote").fit_resample(X, y)


from imblearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from gamo.sampler import GAMOSampler  # noqa: E402


@parametrize_with_checks([GAMOSampler(steps=5, random_state=0)])
def test_gamo_sampler_passes_imblearn_estimator_checks(estimator, check):
    check(estimator)


def test_ldam_uses_cross_entropy_even_under_ls():
    m = Trainer(tiny_cfg("ldam_drw", steps=30)).method
    assert m.loss_kind == "ls"
    logits = torch.tensor([[0.2, -0.1, 0.3], [0.0, 0.5, -0.5]])
    y = torch.tensor([0, 1])
    margin = torch.nn.functional.one_hot(y, 3) * m.margin[y].unsqueeze(1)
    expected = torch.nn.functional.cross_entropy(m.scale * (logits - margin), y)
    assert torch.isclose(m.real_loss(logits, y), expected)
