"""The NumPy kernel of a full GAMO iteration (gamo.methods.dense_kernel) against the torch path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gamo.data import load_dataset
from gamo.methods import REGISTRY
from gamo.methods.blocked_kernel import BlockedKernel
from gamo.methods.dense_kernel import DenseKernel, eligible
from kernel_checks import assert_same_state

TWO = dict(dataset="toy:moons", n_classes=2, profile="counts:60,12", n_per_class=60)          # one IGU
THREE = dict(dataset="toy:blobs", n_classes=3, profile="counts:60,20,8", n_per_class=60)     # masked


def _pair(tiny_cfg, method, loss, data_kw, steps=50):
    """The same method twice on the same data and seed: through the kernel, and through torch."""
    cfg = tiny_cfg(method, loss=loss, steps=steps, data=data_kw)
    data = load_dataset(cfg.data)
    out = []
    for use in (True, False):
        m = REGISTRY[method](cfg, data, torch.device("cpu"))
        m.use_kernel = use
        out.append(m)
    return out


def _assert_close(a, b, atol=1e-5):
    assert_same_state(a, b, atol=atol, rtol=1e-5)


@pytest.mark.filterwarnings("error")      # no overflow or invalid-value warnings from NumPy
@pytest.mark.parametrize("data_kw", [TWO, THREE], ids=["2-classes", "3-classes"])
@pytest.mark.parametrize("loss", ["ls", "ce"])
@pytest.mark.parametrize("method", ["gamo", "gamo_no_d"])
def test_kernel_iteration_equals_the_torch_iteration(method, loss, data_kw, tiny_cfg, one_thread):
    k, t = _pair(tiny_cfg, method, loss, data_kw)
    for step in range(8):
        lk, lt = k.step(), t.step()
        assert lk.keys() == lt.keys() == set(k.players)
        for p in lk:
            assert float(lk[p]) == pytest.approx(float(lt[p]), rel=1e-5, abs=1e-6), (step, p)
        _assert_close(k, t)
    assert isinstance(k._kernel, DenseKernel) and t._kernel is False
    # the torch modules see the kernel's weights: generation and evaluation agree too
    gk, gt = k.generated(), t.generated()
    np.testing.assert_allclose(gk.x, gt.x, atol=1e-5)
    assert np.array_equal(gk.parent_idx, gt.parent_idx)
    assert k.evaluate("test").confusion.tolist() == t.evaluate("test").confusion.tolist()


def test_kernel_follows_live_learning_rates_and_single_player_steps(tiny_cfg, one_thread):
    k, t = _pair(tiny_cfg, "gamo", "ls", THREE)
    for m in (k, t):
        m.step()
        m.set_lr("G", 5e-3)               # applies to the next step, through either path
        m.set_lr("D", 1e-4)
        m.step()
        m.step({"G"})                    # a teaching step of one player runs through torch
        m.step({"M", "D"})
        m.step()
        m.step()
    assert isinstance(k._kernel, DenseKernel)
    _assert_close(k, t)


def test_kernel_repacks_after_a_checkpoint_load(tiny_cfg, one_thread, tmp_path):
    k, t = _pair(tiny_cfg, "gamo", "ce", THREE)
    k.step()
    for _ in range(4):
        t.step()
    torch.save(t.state_dict(), tmp_path / "c.pt")
    k.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=True))   # replaces Adam's state
    _assert_close(k, t, atol=0)
    old = k._kernel
    for _ in range(4):
        k.step(), t.step()
    assert k._kernel is not old and isinstance(k._kernel, DenseKernel)
    _assert_close(k, t)


def test_kernel_is_only_used_where_eligible(tiny_cfg, fake_images, one_thread):
    cfg = tiny_cfg("gamo", data=THREE)
    data = load_dataset(cfg.data)
    dev = torch.device("cpu")
    assert eligible(REGISTRY["gamo"](cfg, data, dev))
    # an unconstrained generator, the conv family, and a generator on its blocked product
    assert not eligible(REGISTRY["cg_d"](tiny_cfg("cg_d", data=THREE), data, dev))
    conv = REGISTRY["gamo"](cfg, fake_images((1, 28, 28), [24, 12, 6]), dev)
    assert not eligible(conv)
    blocked = REGISTRY["gamo"](cfg, data, dev)
    blocked.G.mode = "blocked"
    assert not eligible(blocked)
    blocked.step()
    assert isinstance(blocked._kernel, BlockedKernel)   # the blocked product has its own kernel


def test_kernel_adam_with_parameters_at_different_step_counts(tiny_cfg, one_thread):
    # Adam's bias correction is per parameter: a state loaded from elsewhere may have parameters
    # of one group at different step counts; the kernel then corrects each one on its own
    k, t = _pair(tiny_cfg, "gamo", "ls", THREE)
    for m in (k, t):
        m.step()
        for i, q in enumerate(m.G.parameters()):
            m.opt_g.state[q]["step"].fill_(1.0 + (i % 3))
        m.opt_g._lists = None
        m.step()
        m.step()
    assert isinstance(k._kernel, DenseKernel)
    _assert_close(k, t)
