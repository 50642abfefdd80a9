"""The kernel of a full GAMO iteration with the blocked convex product
(gamo.methods.blocked_kernel) against the autograd path, step by step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gamo.data import load_dataset
from gamo.methods import REGISTRY
from gamo.methods.blocked_kernel import BlockedKernel, eligible
from kernel_checks import assert_same_state

BLOBS = dict(dataset="toy:blobs", n_classes=4, profile="counts:60,24,12,5", n_per_class=60)


def _assert_close(a, b, atol=2e-5):
    assert_same_state(a, b, atol=atol, rtol=1e-4)


def _pair(tiny_cfg, fake_images, method, loss, data):
    """The same method twice on the same data and seed, G forced to its blocked product:
    through the kernel, and through autograd."""
    if data == "conv":
        cfg = tiny_cfg(method, loss=loss, batch_size=8, model=dict(family="conv"))
        ds = fake_images((1, 28, 28), [24, 12, 6, 3])
    else:
        cfg = tiny_cfg(method, loss=loss, data=BLOBS)
        ds = load_dataset(cfg.data)
    out = []
    for use in (True, False):
        m = REGISTRY[method](cfg, ds, torch.device("cpu"))
        m.use_kernel = use
        m.G.mode = "blocked"
        out.append(m)
    return out


@pytest.mark.parametrize("data", ["dense", "conv"])
@pytest.mark.parametrize("loss", ["ls", "ce"])
@pytest.mark.parametrize("method", ["gamo", "gamo_no_d"])
def test_kernel_iteration_equals_the_autograd_iteration(method, loss, data, tiny_cfg, fake_images, one_thread):
    k, t = _pair(tiny_cfg, fake_images, method, loss, data)
    gamo_steps = 0
    for step in range(k.steps_per_epoch + 12):
        phase = k.phase
        lk, lt = k.step(), t.step()
        assert lk.keys() == lt.keys()
        for p in lk:
            assert float(lk[p]) == pytest.approx(float(lt[p]), rel=1e-4, abs=1e-6), (step, p)
        _assert_close(k, t)
        gamo_steps += phase == "gamo"
    assert gamo_steps >= 12
    assert isinstance(k._kernel, BlockedKernel) and t._kernel is False
    # the torch modules see the kernel's weights: generation and evaluation agree too
    gk, gt = k.generated(), t.generated()
    np.testing.assert_allclose(gk.x, gt.x, atol=1e-5)
    assert np.array_equal(gk.parent_idx, gt.parent_idx)
    assert k.evaluate("test").confusion.tolist() == t.evaluate("test").confusion.tolist()


def test_kernel_and_single_player_steps_mix(tiny_cfg, fake_images, one_thread):
    """Teaching-mode steps of one player (autograd) between kernel steps, and live learning rates."""
    k, t = _pair(tiny_cfg, fake_images, "gamo", "ls", "dense")
    for m in (k, t):
        m.step()
        m.set_lr("G", 5e-3)
        m.step({"G"})
        m.step({"M", "D"})
        m.step()
        m.step()
    assert isinstance(k._kernel, BlockedKernel)
    _assert_close(k, t)


def test_kernel_survives_a_state_load(tiny_cfg, fake_images, one_thread, tmp_path):
    """A checkpoint loaded into a run on the kernel (parameters copied in place, Adam's state
    replaced) carries on exactly as the autograd run it came from."""
    k, t = _pair(tiny_cfg, fake_images, "gamo", "ls", "dense")
    k.step()
    for _ in range(4):
        t.step()
    torch.save(t.state_dict(), tmp_path / "c.pt")
    k.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True))
    _assert_close(k, t, atol=0)
    for _ in range(4):
        k.step(), t.step()
    assert isinstance(k._kernel, BlockedKernel) and k._kernel.valid()
    _assert_close(k, t)


def test_kernel_is_only_used_where_eligible(tiny_cfg, fake_images, one_thread):
    cfg = tiny_cfg("gamo", data=BLOBS)
    data = load_dataset(cfg.data)
    dev = torch.device("cpu")
    dense = REGISTRY["gamo"](cfg, data, dev)           # small N*d: the dense product
    assert not eligible(dense)
    cg = REGISTRY["cg_d"](tiny_cfg("cg_d", data=BLOBS), data, dev)
    assert not eligible(cg)                            # no convex generator
    ce = REGISTRY["gamo"](cfg, data, dev)
    ce.G.mode = "blocked"
    assert eligible(ce)
    ce.loss_kind = "hinge"                              # a loss the kernel does not know
    assert not eligible(ce)


@pytest.mark.parametrize("threads", [1, 2])
def test_compiled_stages_match_numpy(threads):
    """The compiled forward and backward of the blocked product against plain NumPy, with the
    scratch and output buffers full of NaN (a stage reading what no stage wrote shows up), the
    batch in an order other than the grouped one, on one thread and on two (the halves then run
    at the same time)."""
    from gamo.methods import _blocked_numba as nb
    rng = np.random.default_rng(0)
    n_all, d, h, rows = 97, 6, 16, 32
    # blocks of 48, 19 and 30 members; grouped positions [s, e) per class, G's from m (one has none)
    spans = np.array([[0, 48, 0, 5, 13], [48, 19, 13, 20, 20], [67, 30, 20, 22, 32]], np.int64)
    order = rng.permutation(rows).astype(np.int64)        # grouped position r is batch row order[r]
    ts = rng.standard_normal((rows, h)).astype(np.float32)                         # batch order
    w = (0.3 * rng.standard_normal((n_all, h))).astype(np.float32)
    c = rng.standard_normal(n_all).astype(np.float32)
    x = rng.standard_normal((n_all, d)).astype(np.float32)
    dxs = rng.standard_normal((rows, d)).astype(np.float32)                        # batch order
    p, q = (np.full((rows, n_all), np.nan, np.float32) for _ in range(2))
    xs = np.full((rows, d), np.nan, np.float32)
    gw, gc = np.full((n_all, h), np.nan, np.float32), np.full(n_all, np.nan, np.float32)
    dts2 = np.full((2, rows, h), np.nan, np.float32)
    nb.set_threads(threads)
    nb.forward(ts, order, spans, w, c, np.ascontiguousarray(x.T), p, xs)
    nb.dweights_softmax_back(dxs, order, spans, x, p, q)
    nb.igu_grads(spans[:, [0, 1, 3, 4]].copy(), ts, order, w, q, gw, gc, dts2)
    dts = dts2.sum(axis=0)
    for lo, n, s, m, e in spans:
        rs, live = order[s:e], order[m:e]
        logits = ts[rs].astype(np.float64) @ w[lo:lo + n].T + c[lo:lo + n]
        pw = np.exp(logits - logits.max(axis=1, keepdims=True))
        pw /= pw.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(p[s:e, lo:lo + n], pw, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(xs[rs], pw @ x[lo:lo + n], rtol=1e-4, atol=1e-5)
        if m == e:                    # no G rows: a zero gradient
            assert not gw[lo:lo + n].any() and not gc[lo:lo + n].any()
            continue
        dw = dxs[live] @ x[lo:lo + n].T
        pl = pw[m - s:]
        dl = pl * (dw - (pl * dw).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(gw[lo:lo + n], dl.T @ ts[live], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(gc[lo:lo + n], dl.sum(axis=0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dts[live], dl @ w[lo:lo + n], rtol=1e-4, atol=1e-5)


def test_kernel_adam_with_parameters_at_different_step_counts(tiny_cfg, fake_images, one_thread):
    """Adam's bias correction is per parameter. With the IGUs at different step counts (a state
    loaded from elsewhere) the kernel leaves their update to the optimizer, and with them alike
    it updates them itself: both agree with the autograd path."""
    k, t = _pair(tiny_cfg, fake_images, "gamo", "ls", "dense")
    for m in (k, t):
        m.step()
        for i, q in enumerate(m.G.parameters()):
            m.opt_g.state[q]["step"].fill_(1.0 + (i % 3))
        m.opt_g._lists = None
        m.step()
        m.step()
    assert isinstance(k._kernel, BlockedKernel)
    _assert_close(k, t)
    steps = k._kernel.arrays["igu_steps"]
    assert steps.min() < steps.max()
