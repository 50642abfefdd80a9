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
def test_method_contract(method):
    tr = run(tiny_cfg(method))
    snap = tr.snapshot(with_train=True)
    assert snap.step == 12
    assert len(snap.test.recall) == 3 and len(snap.train.recall) == 3
    assert all(np.isfinite(v) for v in snap.losses.values()) and "M" in snap.losses
    counts = tr.data.class_counts
    gen = tr.method.balancing_samples(seed=0)
    if gen is not None:  # oversamplers: the generated rows balance the training set
        assert np.isfinite(gen["x"]).all() and gen["x"].shape[1] == 2
        after = counts + np.bincount(gen["y"], minlength=3)
        if method in ("borderline_smote", "adasyn"):
            # these place points only near borders / where neighbours disagree (imblearn's rules)
            assert (after >= counts).all() and (after <= counts.max() * 1.05).all(), after
        else:
            assert (after == counts.max()).all(), after
    else:
        assert method in ("baseline", "class_weighted", "logit_adjusted", "ldam_drw", "borderline_smote")
        assert method not in ("gamo", "gamo_no_d", "cg", "cg_d", "smote", "cgan")
    # same seed, same result; another seed, another result
    again = run(tiny_cfg(method)).snapshot(with_train=True)
    assert again.losses == snap.losses
    other = run(tiny_cfg(method, seed=1)).snapshot(with_train=True)
    assert other.losses != snap.losses


@pytest.mark.parametrize("method", ["smote", "class_weighted", "logit_adjusted", "ldam_drw"])
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
    logits = torch.zeros(4, 3)
    y = torch.tensor([0, 0, 0, 2])
    early = m.real_loss(logits, y)
    m.step_count = 29  # past 2/3 of training: class-balanced weights switch on
    late = m.real_loss(logits, y)
    assert not torch.isclose(early, late)


def test_smote_rows_lie_between_class_members():
    tr = run(tiny_cfg("smote"))
    gen = tr.method.balancing_samples(seed=0)
    x_train, y_train = tr.data.x_train, tr.data.y_train
    for c in np.unique(gen["y"]):
        pts = x_train[y_train == c]
        lo, hi = pts.min(axis=0) - 1e-5, pts.max(axis=0) + 1e-5
        g = gen["x"][gen["y"] == c]
        assert ((g >= lo) & (g <= hi)).all()  # SMOTE interpolates between same-class neighbours


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
    from sklearn.linear_model import LogisticRegression

    from gamo.sampler import GAMOSampler

    X, y = _xy()
    pipe = make_pipeline(GAMOSampler(steps=20, random_state=0), LogisticRegression(max_iter=200))
    pipe.fit(X, y)
    assert pipe.predict(X).shape == y.shape
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
