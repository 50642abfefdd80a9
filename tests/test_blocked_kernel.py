"""The torch kernel of a full GAMO iteration with the blocked convex product
(gamo.methods.blocked_kernel) against the autograd path, step by step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gamo.data import load_dataset
from gamo.methods import REGISTRY
from gamo.methods.blocked_kernel import BlockedKernel

BLOBS = dict(dataset="toy:blobs", n_classes=4, profile="counts:60,24,12,5", n_per_class=60)


def _state(m) -> dict[str, np.ndarray]:
    """Every parameter and every Adam state tensor of the method, by name."""
    out = {}
    for name, mod in m.modules().items():
        for k, v in mod.state_dict().items():
            out[f"{name}.{k}"] = v.detach().numpy().copy()
    for name, opt in m.optimizers().items():
        for i, st in enumerate(opt.state.values()):
            for k, v in st.items():
                out[f"{name}.state{i}.{k}"] = np.asarray(v).copy()
    return out


def _assert_close(a, b, atol=2e-5):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], atol=atol, rtol=1e-4, err_msg=k)


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
