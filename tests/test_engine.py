"""Engine tests: the convex generator, metrics, shapes of every family, determinism, GAMO's
effect on a toy problem, Algorithm 1's schedule, checkpoints, and the no-Streamlit rule.

Everything runs on the CPU with tiny data (a few seconds in all, apart from the GAMO-vs-baseline
run).
"""
from __future__ import annotations

import copy
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    recall_score,
)
from sklearn.metrics import confusion_matrix as sk_confusion

from gamo.data import load_dataset
from gamo.methods import make_method
from gamo.nets import ConvexGenerator
from gamo.metrics import confusion_matrix, evaluate
from gamo.train import Trainer, train

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def _method(cfg, data=None, steps: int = 0):
    data = data if data is not None else load_dataset(cfg.data)
    m = make_method(cfg, data, CPU)
    for _ in range(steps):
        m.step()
    return m, data


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in module.parameters()]


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --------------------------------------------------------------------------- 1. convexity
CONVEX_CASES = {
    # two minority classes (two IGU blocks), so the blocked product really splits the batch
    "toy-blobs-3": dict(data=dict(dataset="toy:blobs", n_classes=3, profile="counts:80,20,10", n_per_class=100)),
    # flattened 8x8 digits: dense family, 64 features, nine minority classes
    "digits": dict(data=dict(dataset="digits", profile="exp:ir=10,max=30", n_test_per_class=5)),
}


@pytest.mark.parametrize("case", list(CONVEX_CASES))
def test_convex_generator_dense_and_blocked_agree_and_are_convex(case, tiny_cfg):
    cfg = tiny_cfg("gamo", **CONVEX_CASES[case])
    m, data = _method(cfg, steps=5)   # a few steps, so that the weights are no longer uniform
    G = m.G
    y_train = torch.as_tensor(data.y_train)

    # the IGU blocks are the minority classes, in label order, each over its own rows
    assert G.block_classes == m.minority and len(m.minority) >= 2
    assert G.block_sizes == [int(data.class_counts[c]) for c in m.minority]
    members = m.train_features()[m.min_rows]                                      # (N, d)
    member_class = y_train[m.min_rows]                                            # (N,)
    for b, c in enumerate(G.block_classes):
        lo, n = G.block_starts[b], G.block_sizes[b]
        assert torch.all(member_class[lo:lo + n] == c)

    gen = torch.Generator().manual_seed(1)
    B = 64
    z = torch.randn(B, G.latent, generator=gen)
    minority = torch.tensor(m.minority)
    y = minority[torch.randint(len(minority), (B,), generator=gen)]
    y[: len(minority)] = minority                  # every minority class present, unsorted order
    y = y[torch.randperm(B, generator=gen)]
    rx = torch.randn(B, members.shape[1], generator=gen)
    rw = torch.randn(B, members.shape[0], generator=gen)

    out = {}
    try:
        for mode in ("dense", "blocked"):
            G.mode = mode
            G.zero_grad(set_to_none=True)
            x, w = G(z, y, members)
            ((x * rx).sum() + (w * rw).sum()).backward()
            out[mode] = (x.detach(), w.detach(), _grads(G))
            x2, _ = G(z, y, members, need_weights=False)
            assert torch.allclose(x2, x)
    finally:
        G.mode = "auto"

    for mode, (x, w, _) in out.items():
        own = member_class.unsqueeze(0) == y.unsqueeze(1)                         # (B, N)
        assert torch.all(w >= 0), mode
        assert torch.all(w[~own] == 0), f"{mode}: weight on another class's member"
        assert torch.all(w[own] > 0), mode
        assert torch.allclose(w.sum(dim=1), torch.ones(B), atol=1e-5), mode
        assert torch.allclose((w * own).sum(dim=1), torch.ones(B), atol=1e-5), mode
        assert torch.allclose(x, w @ members, atol=1e-5), mode
        # hence inside the bounding box of its class's members
        for c in m.minority:
            rows, mem = y == c, members[member_class == c]
            assert torch.all(x[rows] >= mem.min(dim=0).values - 1e-5)
            assert torch.all(x[rows] <= mem.max(dim=0).values + 1e-5)

    (xd, wd, gd), (xb, wb, gb) = out["dense"], out["blocked"]
    assert torch.allclose(xd, xb, atol=1e-6)
    assert torch.allclose(wd, wb, atol=1e-7)
    assert len(gd) == len(gb) == len(list(G.parameters()))
    for a, b in zip(gd, gb):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(float(g.abs().sum()) > 0 for g in gd)


def _small_generator(dtype=torch.float64, seed=0):
    """A convex generator over three minority blocks (classes 1-3 of 4), in double precision."""
    torch.manual_seed(seed)
    G = ConvexGenerator(latent=3, n_classes=4, hidden=5, block_sizes=[4, 3, 2], block_classes=[1, 2, 3]).to(dtype)
    members = torch.randn(9, 6, dtype=dtype)
    return G, members


@pytest.mark.parametrize("mode", ["dense", "blocked"])
def test_forward_class_is_the_batch_forward_for_one_class_and_trains_only_its_igu(mode):
    """G's training updates go class by class (the official per-class models): forward_class(z, c)
    is eq. 1 for class c, equal to the mixed-batch forward, and its backward reaches the cTMU and
    IGU_c only -- the other IGUs get no gradient at all (None), so Adam leaves them and their
    moments untouched (a zero gradient would still move them through Adam's momentum)."""
    G, members = _small_generator()
    G.mode = mode
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(6, 3, dtype=torch.float64, generator=gen)
    for b, c in enumerate(G.block_classes):
        G.zero_grad(set_to_none=True)
        x = G.forward_class(z, c, members)
        y = torch.full((6,), c)
        xb, w = G(z, y, members)
        assert torch.allclose(x, xb)
        lo, n = G.block_starts[b], G.block_sizes[b]
        assert torch.allclose(x, w[:, lo:lo + n] @ members[lo:lo + n])
        x.sum().backward()
        assert G.igu_w[b].grad is not None and G.igu_w[b].grad.abs().sum() > 0
        assert all(G.igu_w[o].grad is None and G.igu_b[o].grad is None for o in range(3) if o != b)
        assert all(q.grad is not None for q in G.ctmu.parameters())
    with pytest.raises(ValueError, match="no IGU"):
        G.forward_class(z, 0, members)


# --------------------------------------------------------------------------- 2. Generated
@pytest.mark.parametrize("case", ["moons", "blobs-3"])
def test_generated_snapshot_parents(case, tiny_cfg):
    data_kw = {} if case == "moons" else dict(dataset="toy:blobs", n_classes=3, profile="counts:80,20,10",
                                               n_per_class=100)
    cfg = tiny_cfg("gamo", steps=6, data=data_kw)
    data = load_dataset(cfg.data)
    tr = Trainer(cfg, data, with_grid=False)
    snaps = list(train(cfg, trainer=tr))
    m = tr.method
    g = snaps[-1].generated
    n_fixed = cfg.train.n_fixed
    assert snaps[-1].step == 6
    assert g.x.shape == (n_fixed * len(m.minority), 2)
    assert g.y.tolist() == np.repeat(m.minority, n_fixed).tolist()
    k = g.parent_idx.shape[1]
    assert g.parent_w.shape == g.parent_idx.shape and k == min(5, len(m.min_rows))
    # parents are training rows of the point's own class
    assert np.all((g.parent_idx >= 0) & (g.parent_idx < len(data.y_train)))
    assert np.all(data.y_train[g.parent_idx] == g.y[:, None])
    # heaviest first, each a convex weight, the top ones summing to at most 1
    assert np.all(np.diff(g.parent_w, axis=1) <= 0)
    assert np.all((g.parent_w > 0) & (g.parent_w <= 1))
    assert np.all(g.parent_w.sum(axis=1) <= 1 + 1e-5)
    # recompute every point by hand (eq. 1): t from the cTMU with G in inference mode, the softmax
    # of the point's own class's IGU over t, and the weighted sum of that class's training rows
    # (the dense family's F is the identity, so the members are the raw training rows)
    G = m.G
    was = G.training
    G.eval()
    try:
        with torch.no_grad():
            t = G._t(m.z_fixed, m.y_fixed).double().numpy()                    # (B, t_dim)
    finally:
        G.train(was)
    x_train = np.asarray(data.x_train, np.float64).reshape(len(data.y_train), -1)
    want_x = np.zeros_like(g.x, dtype=np.float64)
    for i, c in enumerate(g.y):
        b = m.minority.index(int(c))
        own = np.flatnonzero(data.y_train == c)                                # IGU_b's members
        logits = t[i] @ G.igu_w[b].detach().double().numpy().T + G.igu_b[b].detach().double().numpy()
        w = np.exp(logits - logits.max())
        w /= w.sum()
        want_x[i] = w @ x_train[own]
        # the parents are the k heaviest of those weights, each with its own row's weight
        assert np.allclose(g.parent_w[i], np.sort(w)[::-1][:k], atol=1e-6)
        pos = {int(r): j for j, r in enumerate(own)}
        assert np.allclose([w[pos[int(r)]] for r in g.parent_idx[i]], g.parent_w[i], atol=1e-6)
    assert np.allclose(g.x, want_x, atol=1e-5)
    # M's prediction and D's score are those of the recomputed points
    xt = torch.as_tensor(want_x, dtype=torch.float32)
    with torch.no_grad():
        logits_m = m.M(xt)
        d_want = torch.sigmoid(m.D(xt, torch.as_tensor(g.y))).numpy()
    assert np.array_equal(g.m_pred, logits_m.argmax(dim=1).numpy())
    assert np.allclose(g.d_real, d_want, atol=1e-5)
    # the same noise follows the same point: the first snapshot has the same classes per row
    assert snaps[0].generated.y.tolist() == g.y.tolist()


def test_generated_parents_of_a_class_smaller_than_top_k(tiny_cfg):
    cfg = tiny_cfg("gamo", steps=2, data=dict(dataset="toy:blobs", n_classes=3, profile="counts:60,3,30",
                                              n_per_class=100))
    m, data = _method(cfg, steps=2)
    g = m.generated()
    assert np.all(data.y_train[g.parent_idx] == g.y[:, None])


# --------------------------------------------------------------------------- 3. metrics
def _labels(seed: int, zero_recall: bool):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 8))
    n = 300
    y_true = rng.integers(0, K, n)
    y_true[:K] = np.arange(K)                                  # every class present
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, K, n))
    if zero_recall:
        c = int(rng.integers(0, K))
        bad = y_true == c
        y_pred[bad] = (c + 1 + rng.integers(0, K - 1, int(bad.sum()))) % K   # never c where true is c
    return y_true, y_pred, K


@pytest.mark.parametrize("zero_recall", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_metrics_match_sklearn_and_imblearn(seed, zero_recall):
    y_true, y_pred, K = _labels(seed, zero_recall)
    got = evaluate(y_true, y_pred, K)
    assert got.acsa == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)
    gm = geometric_mean_score(y_true, y_pred, average="multiclass")
    assert got.gm == pytest.approx(gm, abs=1e-12)
    assert got.accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert np.allclose(got.recall, recall_score(y_true, y_pred, average=None, labels=range(K)))
    cm = sk_confusion(y_true, y_pred, labels=list(range(K)))
    assert np.array_equal(got.confusion, cm)
    # the torch version the methods use gives the same matrix
    assert np.array_equal(confusion_matrix(torch.as_tensor(y_true), torch.as_tensor(y_pred), K).numpy(), cm)
    if zero_recall:
        assert min(got.recall) == 0.0 and got.gm == 0.0 and gm == 0.0
    else:
        assert got.gm > 0
    assert got.gm <= got.acsa + 1e-12                           # GM <= arithmetic mean


def test_metrics_perfect_and_constant_predictions():
    y = np.array([0, 0, 1, 1, 1, 2])
    perfect = evaluate(y, y, 3)
    assert perfect.acsa == perfect.gm == perfect.accuracy == 1.0
    const = evaluate(y, np.zeros_like(y), 3)
    assert const.recall == (1.0, 0.0, 0.0)
    assert const.acsa == pytest.approx(1 / 3) and const.gm == 0.0 and const.accuracy == pytest.approx(2 / 6)


# --------------------------------------------------------------------------- 4. shapes
FAMILIES = ["toy", "digits", "conv28", "conv32"]


def _family_setup(family, tiny_cfg, fake_images, method):
    if family == "toy":
        cfg = tiny_cfg(method, steps=1)
        return cfg, load_dataset(cfg.data), 2
    if family == "digits":
        cfg = tiny_cfg(method, steps=1, data=dict(dataset="digits", profile="exp:ir=10,max=30", n_test_per_class=5))
        return cfg, load_dataset(cfg.data), 64
    shape = (1, 28, 28) if family == "conv28" else (3, 32, 32)
    data = fake_images(shape, [24, 12, 6])
    # one outer epoch: ceil(42/16) = 3 iterations of F+M, then 3 GAMO iterations
    n_steps = 3 if method == "baseline" else 6
    return tiny_cfg(method, steps=n_steps, model=dict(feat_dim=512)), data, 512


@pytest.mark.parametrize("method", ["baseline", "gamo_no_d", "gamo"])
@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_of_every_family(family, method, tiny_cfg, fake_images):
    cfg, data, d = _family_setup(family, tiny_cfg, fake_images, method)
    tr = Trainer(cfg, data)
    m = tr.method
    assert m.family == ("conv" if family.startswith("conv") else "dense")
    assert m.feat_dim == d
    snaps = list(train(cfg, trainer=tr))
    K = data.n_classes
    assert snaps[0].step == 0 and snaps[-1].step == cfg.train.steps == m.step_count
    for s in snaps:
        assert len(s.test.recall) == K and s.test.confusion.shape == (K, K)
        assert int(s.test.confusion.sum()) == len(data.y_test)
        assert all(math.isfinite(v) for v in s.losses.values())
    last = snaps[-1]
    assert set(last.losses) == set(m.players)
    assert last.train is not None and len(last.train.recall) == K
    assert int(last.train.confusion.sum()) == len(data.y_train)
    g = last.generated
    if method == "baseline":
        assert g is None
    else:
        n_min = len(m.minority)
        assert n_min == K - 1
        assert g.x.shape == (cfg.train.n_fixed * n_min, d) and np.isfinite(g.x).all()
        assert g.y.shape == g.m_pred.shape == (cfg.train.n_fixed * n_min,)
        assert (g.d_real is None) == (method == "gamo_no_d")
    if family == "toy":
        n = cfg.train.grid
        assert last.grid.m_proba.shape == (n, n, K)
        assert np.allclose(last.grid.m_proba.sum(axis=2), 1, atol=1e-5)
        if method == "gamo":
            assert last.grid.d_real.shape == (n, n, K)
        else:
            assert last.grid.d_real is None
    else:
        assert last.grid is None


# --------------------------------------------------------------------------- 5. determinism
def _run(cfg, data):
    return list(train(cfg, data))


@pytest.mark.parametrize("family", ["toy", "conv28"])
def test_same_seed_same_snapshots_different_seed_different(family, tiny_cfg, fake_images, monkeypatch):
    monkeypatch.setenv("GAMO_ADAPT_THREADS", "0")    # bit-equal at a fixed thread count (gamo.cpuload)
    if family == "toy":
        cfg = tiny_cfg("gamo", steps=20, snapshot_every=5)
        data = load_dataset(cfg.data)
    else:
        cfg = tiny_cfg("gamo", steps=8, snapshot_every=2)
        data = fake_images((1, 28, 28), [24, 12, 6])
    a, b = _run(cfg, data), _run(cfg, data)
    assert [s.step for s in a] == [s.step for s in b] and len(a) >= 4
    for sa, sb in zip(a, b):
        assert sa.losses == sb.losses
        assert np.array_equal(sa.test.confusion, sb.test.confusion)
        assert np.array_equal(sa.generated.x, sb.generated.x)
        assert np.array_equal(sa.generated.parent_idx, sb.generated.parent_idx)
        if sa.grid is not None:
            assert np.array_equal(sa.grid.m_proba, sb.grid.m_proba)
    c = _run(cfg.replace(train={"seed": 1}), data)
    assert a[-1].losses != c[-1].losses
    assert not np.allclose(a[-1].generated.x, c[-1].generated.x)


# --------------------------------------------------------------------------- 6. GAMO helps the minority
def test_gamo_raises_minority_recall_over_baseline(tiny_cfg):
    # toy:moons with noise 0.3, IR 50 (300 vs 6 training points), 200 test points per class,
    # 400 iterations, batch 32, LS loss, seed 0. Measured (torch 2.14 CPU, 1 thread):
    #   Baseline CN: recall (1.00, 0.00), ACSA 0.500, GM 0.000
    #   GAMO:        recall (0.815, 0.71), ACSA 0.762, GM 0.761
    # (seeds 1-3: GAMO minority recall 0.56 / 0.87 / 0.70, baseline 0.00 each)
    def final(method):
        cfg = tiny_cfg(method, steps=400, batch_size=32,
                       data=dict(profile="step:ir=50", noise=0.3, n_per_class=300, n_test_per_class=200),
                       model=dict(hidden=32, g_hidden=32))
        tr = Trainer(cfg, with_grid=False)
        assert tr.data.class_counts.tolist() == [300, 6]
        for _ in train(cfg, trainer=tr):
            pass
        return tr.method.evaluate("test")

    base, gamo = final("baseline"), final("gamo")
    assert gamo.recall[1] >= base.recall[1] + 0.4
    assert gamo.acsa >= base.acsa + 0.15
    assert gamo.gm >= base.gm + 0.4


# --------------------------------------------------------------------------- 7. schedule
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_conv_f_infer_is_forward_bit_for_bit(shape):
    """F's in-place inference pass (the features pass) gives exactly F's forward, and leaves its
    input alone."""
    from gamo.nets import ConvF
    torch.manual_seed(0)
    f = ConvF(shape, 32).eval()
    x = torch.rand(9, *shape) * 2 - 1
    x0 = x.clone()
    with torch.no_grad():
        ref = f(x)
    out = f.infer(x)
    assert torch.equal(out, ref) and torch.equal(x, x0)
    assert not out.requires_grad


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_conv_schedule_and_feature_refresh(shape, tiny_cfg, fake_images):
    data = fake_images(shape, [24, 12, 6])                            # n = 42, batch 16 -> 3
    base, _ = _method(tiny_cfg("baseline"), data)
    nod, _ = _method(tiny_cfg("gamo_no_d"), data)
    m, _ = _method(tiny_cfg("gamo"), data)
    assert base.schedule() == [("fm", 3)]
    assert m.schedule() == nod.schedule() == [("fm", 3), ("gamo", 3)]
    assert m.steps_per_epoch == 6
    assert [m.phase_at(s)[0] for s in range(8)] == ["fm"] * 3 + ["gamo"] * 3 + ["fm"] * 2

    f0 = m.train_features().clone()
    for _ in range(3):
        assert m.phase == "fm"
        m.step()
    assert m.phase == "gamo"
    f1 = m.train_features()
    assert f1.shape == (42, 32)
    assert not torch.allclose(f0, f1)                                # F+M trained: features recomputed
    assert torch.allclose(f1, m.features(m.x_train), atol=1e-6)
    F_before = _params(m.F)
    for _ in range(3):
        m.step()
        assert m.train_features() is f1                              # F fixed during the GAMO phase
    assert all(torch.equal(v, _params(m.F)[k]) for k, v in F_before.items())
    assert torch.equal(m._members(), f1[m.min_rows])
    g = m.generated()
    x, w, _, _ = m.generate(m.z_fixed, m.y_fixed)
    assert torch.allclose(torch.as_tensor(g.x), w @ f1[m.min_rows], atol=1e-5)   # samples live in F's space

    for _ in range(3):
        m.step()                                                     # next epoch's F+M phase
    f2 = m.train_features()
    assert not torch.allclose(f1, f2)
    assert torch.allclose(f2, m.features(m.x_train), atol=1e-6)
    assert torch.equal(m._members(), f2[m.min_rows])                 # G combines the new features


def test_dense_schedule(tiny_cfg):
    cfg = tiny_cfg("gamo")
    data = load_dataset(cfg.data)
    n = len(data.y_train)
    per = math.ceil(n / 16)
    assert _method(cfg, data)[0].schedule() == [("gamo", per)]
    assert _method(tiny_cfg("baseline"), data)[0].schedule() == [("m", per)]


def test_label_distributions_and_losses(tiny_cfg):
    # M and D see generated labels with p(i) ~ n_c - n_i (Alg. 1 line 10): gaps 60 and 70 here
    cfg = tiny_cfg("gamo", data=dict(dataset="toy:blobs", n_classes=3, profile="counts:80,20,10", n_per_class=100))
    m, _ = _method(cfg)
    assert m.minority == [1, 2]
    assert torch.allclose(m.p_md, torch.tensor([60 / 130, 70 / 130]))

    from torch.nn import functional as F_

    from gamo.losses import classifier_loss, discriminator_loss, generator_vs_classifier_loss
    big = 30.0
    y = torch.tensor([0, 1, 2])
    right = F_.one_hot(y, 3).float() * big                      # M sure of the true class
    assert float(classifier_loss(right, y, "ls")) == pytest.approx(0, abs=1e-6)
    assert float(classifier_loss(right, y, "ce")) == pytest.approx(0, abs=1e-6)
    logits = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(classifier_loss(logits, y, "ce"), F_.cross_entropy(logits, y))
    # LS on arbitrary logits: squared errors of the probabilities, summed over classes, averaged
    # over points (eqs. 4-6)
    p, t = torch.softmax(logits, dim=1), F_.one_hot(y, 3).float()
    assert torch.allclose(classifier_loss(logits, y, "ls"), ((p - t) ** 2).sum(1).mean())
    assert torch.allclose(classifier_loss(logits, y, "ls", reduction="none"), ((p - t) ** 2).sum(1))
    assert torch.allclose(generator_vs_classifier_loss(logits, y, "ls"), ((p - (1 - t)) ** 2).sum(1).mean())
    d = torch.randn(5, generator=torch.Generator().manual_seed(1))
    real = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    assert torch.allclose(discriminator_loss(d, True, "ls"), ((torch.sigmoid(d) - 1) ** 2).mean())
    assert torch.allclose(discriminator_loss(d, real, "ls"), ((torch.sigmoid(d) - real) ** 2).mean())
    # G wants M to predict the ones' complement of the class: for K=2, the other class
    y2 = torch.tensor([0, 1])
    other = F_.one_hot(1 - y2, 2).float() * big
    assert float(generator_vs_classifier_loss(other, y2, "ls")) == pytest.approx(0, abs=1e-6)
    assert float(generator_vs_classifier_loss(other, y2, "ce")) == pytest.approx(0, abs=1e-6)
    assert float(generator_vs_classifier_loss(F_.one_hot(y2, 2).float() * big, y2, "ls")) == pytest.approx(2)
    assert float(discriminator_loss(torch.full((4,), big), True, "ls")) == pytest.approx(0, abs=1e-6)
    assert float(discriminator_loss(torch.full((4,), big), False, "ls")) == pytest.approx(1, abs=1e-6)
    assert float(discriminator_loss(torch.full((4,), -big), False, "ce")) == pytest.approx(0, abs=1e-6)


# --------------------------------------------------------------------------- 8. checkpoints
def _roundtrip(cfg, data, k, tmp_path, n_next=4):
    a, _ = _method(cfg, data, steps=k)
    path = tmp_path / "ckpt.pt"
    torch.save(a.state_dict(), path)
    b, _ = _method(cfg, data)
    b.load_state_dict(torch.load(path, weights_only=True))
    assert b.step_count == a.step_count == k
    for _ in range(n_next):
        la = {p: float(v) for p, v in a.step().items()}
        lb = {p: float(v) for p, v in b.step().items()}
        assert la == lb, f"resumed at step {k}: {la} != {lb}"
    for name, mod in a.modules().items():
        pa, pb = _params(mod), _params(b.modules()[name])
        assert all(torch.equal(pa[key], pb[key]) for key in pa), name
    ga, gb = a.generated(), b.generated()
    if ga is not None:
        assert np.array_equal(ga.x, gb.x)
    assert a.evaluate("test") .confusion.tolist() == b.evaluate("test").confusion.tolist()


@pytest.mark.parametrize("method", ["baseline", "gamo_no_d", "gamo"])
def test_checkpoint_roundtrip_dense(method, tiny_cfg, tmp_path):
    cfg = tiny_cfg(method, loss="ce" if method == "gamo_no_d" else "ls")
    _roundtrip(cfg, load_dataset(cfg.data), 7, tmp_path)


@pytest.mark.parametrize("k", [0, 3, 4, 6], ids=lambda k: f"step{k}")
def test_checkpoint_roundtrip_conv_at_phase_boundaries_and_in_gamo_phase(k, tiny_cfg, fake_images, tmp_path):
    # epoch = 3 F+M iterations then 3 GAMO iterations
    _roundtrip(tiny_cfg("gamo"), fake_images((1, 28, 28), [24, 12, 6]), k, tmp_path)


def test_checkpoint_roundtrip_conv_mid_fm_phase(tiny_cfg, fake_images, tmp_path):
    _roundtrip(tiny_cfg("gamo"), fake_images((1, 28, 28), [24, 12, 6]), 1, tmp_path)


# --------------------------------------------------------------------------- 10. no Streamlit
def test_engine_never_imports_streamlit():
    code = ("import gamo, gamo.train, gamo.cli, gamo.runs, gamo.methods, gamo.metrics; import sys; "
            "assert 'streamlit' not in sys.modules, 'gamo imported streamlit'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_fused_adam_matches_torch_adam_exactly():
    """The lean optimizer makes the very updates of torch.optim.Adam(fused=True), state included,
    also when a group has no gradients, when only some parameters of a group have one, and after
    a state_dict round trip."""
    from gamo.methods.base import FusedAdam

    def nets():
        torch.manual_seed(0)
        return torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)

    a, b = nets()
    ref_a, ref_b = nets()
    groups = lambda x, y: [{"params": list(x.parameters()), "lr": 1e-2}, {"params": list(y.parameters()), "lr": 3e-3}]
    opt = FusedAdam(groups(a, b), betas=(0.5, 0.999))
    ref = torch.optim.Adam(groups(ref_a, ref_b), betas=(0.5, 0.999), fused=True)
    g = torch.Generator().manual_seed(1)
    for i in range(8):
        x = torch.randn(5, 4, generator=g)
        for net_a, net_b, o in ((a, b, opt), (ref_a, ref_b, ref)):
            o.zero_grad(set_to_none=True)
            if i == 3:       # only the first group has gradients
                net_a(x).pow(2).sum().backward()
            elif i == 5:     # only some parameters of a group have one
                (net_a(x) @ net_b.weight.T).sum().backward()
            else:
                net_b(torch.tanh(net_a(x))).pow(2).sum().backward()
            o.step()
        if i == 4:           # resume both from their state dicts
            opt.load_state_dict(copy.deepcopy(ref.state_dict()))  # as read back from a checkpoint
    for p, q in zip(list(a.parameters()) + list(b.parameters()), list(ref_a.parameters()) + list(ref_b.parameters())):
        assert torch.equal(p, q)
    s, r = opt.state_dict()["state"], ref.state_dict()["state"]
    assert s.keys() == r.keys()
    for k in s:
        assert all(torch.equal(s[k][n], r[k][n]) for n in ("step", "exp_avg", "exp_avg_sq"))


def test_conv_features_in_two_threads_equal_one_by_one(tiny_cfg, fake_images):
    """On a multi-threaded CPU, Method.features splits the chunks between two Python threads, each
    with one torch thread: the result is bit for bit the one-thread, chunk-by-chunk one (so it
    does not depend on the thread count), and the caller's torch thread count is restored."""
    data = fake_images((1, 28, 28), [24, 12, 6])
    m, _ = _method(tiny_cfg("gamo"), data)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        want = m.features(m.x_train, chunk=5)                   # the one-thread path
        torch.set_num_threads(2)
        got = m.features(m.x_train, chunk=5)                    # 9 chunks: 5 in one thread, 4 in the other
        assert torch.get_num_threads() == 2
        assert torch.equal(got, want)
        assert torch.equal(m.features(m.x_train[:5], chunk=5), want[:5])   # one chunk: one thread too
        assert m.F.training                                      # left in training mode, as before
    finally:
        torch.set_num_threads(old)


def test_conv_snapshots_while_f_trains_make_no_pass_over_the_training_set(tiny_cfg, fake_images, one_thread):
    """A conv GAMO run's snapshots while F trains combine the generated points in the features of
    the last F-frozen phase (``Method.last_features``, stamped ``features_step``) instead of a
    forward pass of F over the training set at each snapshot (2.3 s on Fashion-MNIST): F passes
    only where training needs them (step 0's metrics, each GAMO phase's start). The training
    itself is the same as with the features recomputed at every snapshot."""
    data = fake_images((1, 28, 28), [24, 12, 6])                     # phases of 3 iterations
    cfg = tiny_cfg("gamo", steps=12, snapshot_every=1)

    def counted(tr):
        passes, test_passes = [], []
        full = tr.method.features

        def features(x, *a, **k):
            if len(x) == len(tr.method.x_train):
                passes.append(tr.method.step_count)
            elif len(x) == len(tr.method.x_test):
                test_passes.append(tr.method.step_count)
            return full(x, *a, **k)
        tr.method.features = features
        return passes, test_passes

    tr = Trainer(cfg, data)
    passes, test_passes = counted(tr)
    snaps = {s.step: s for s in train(cfg, trainer=tr)}
    assert passes == [0, 3, 9]
    assert test_passes == [0, 1, 2, 3, 7, 8, 9]          # the test set's features kept while F is frozen
    assert [snaps[s].generated.features_step for s in range(13)] == [0] * 4 + [3] * 6 + [9] * 3
    # F's phase: G, M and D wait, the points stay where the last GAMO phase left them
    for a, b in [(0, 3), (6, 9)]:
        assert np.array_equal(snaps[a].generated.x, snaps[b].generated.x)
    assert not np.array_equal(snaps[4].generated.x, snaps[3].generated.x)   # G trained
    m = tr.method
    x, w, _, _ = m.generate(m.z_fixed, m.y_fixed, fresh=False)
    assert np.allclose(snaps[12].generated.x, (w @ m.last_features()[m.min_rows]).numpy(), atol=1e-5)

    assert torch.equal(m.predict(m.x_test), m.predict(m._split_features("test", m.x_test), features=True))

    ref = Trainer(cfg, data)                  # as before: F's features recomputed at every snapshot
    for sn in train(cfg, trainer=ref):
        ref.method.train_features()
        assert np.array_equal(sn.test.confusion, snaps[sn.step].test.confusion)     # the same scores
    for name, module in m.modules().items():
        want = _params(ref.method.modules()[name])
        assert all(torch.equal(v, want[k]) for k, v in _params(module).items()), name
