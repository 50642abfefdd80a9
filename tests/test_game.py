"""Tests that know what GAMO's game means: they look inside real iterations and check who is
trained on what, with which labels and targets (Algorithm 1 and the official code), so that a bug
made alike everywhere -- D's real and generated targets swapped, G asking M to classify its points
correctly, M's generated labels drawn uniformly -- fails here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gamo.methods.gamo as gm
from gamo.data import load_dataset
from gamo.losses import generator_vs_classifier_loss
from gamo.methods import make_method

CPU = torch.device("cpu")
COUNTS = "counts:200,100,40,20"       # 4 classes: majority 0, minority 1-3, n_c - n_i = 100, 160, 180


def _gamo(tiny_cfg, method="gamo", **kw):
    cfg = tiny_cfg(method, data=dict(dataset="toy:blobs", n_classes=4, profile=COUNTS, n_per_class=220), **kw)
    data = load_dataset(cfg.data)
    return make_method(cfg, data, CPU), data


class Spy:
    """Records the arguments of the loss functions the GAMO step calls."""

    def __init__(self, monkeypatch):
        self.d, self.g_m = [], []
        real_d, real_g = gm.discriminator_loss, gm.generator_vs_classifier_loss

        def d_loss(logit, real, kind):
            self.d.append((real.detach().clone() if isinstance(real, torch.Tensor) else real))
            return real_d(logit, real, kind)

        def g_loss(logits, y, kind):
            self.g_m.append(y.clone())
            return real_g(logits, y, kind)

        monkeypatch.setattr(gm, "discriminator_loss", d_loss)
        monkeypatch.setattr(gm, "generator_vs_classifier_loss", g_loss)


def test_md_labels_follow_the_class_gap_and_g_labels_every_minority_class(tiny_cfg, monkeypatch, one_thread):
    m, data = _gamo(tiny_cfg, batch_size=64)
    md_labels, g_calls = [], []
    real_md, real_gc = m._md_update, m._generate_class

    def md(x, y, real, train_m, train_d):
        if not real:
            md_labels.append(y.clone())
        return real_md(x, y, real, train_m, train_d)

    def gc(z, c, y, members):
        g_calls.append((c, len(z), bool(m.G.training)))
        return real_gc(z, c, y, members)

    monkeypatch.setattr(m, "_md_update", md)
    monkeypatch.setattr(m, "_generate_class", gc)
    iters = 150
    for _ in range(iters):
        m.step()
    counts = np.bincount(data.y_train, minlength=4)
    gap = counts.max() - counts[1:]
    expected = gap / gap.sum()                                   # 100, 160, 180 -> 0.227, 0.364, 0.409
    got = np.bincount(torch.cat(md_labels).numpy(), minlength=4)
    assert got[0] == 0, "the majority class is never generated"
    share = got[1:] / got.sum()
    assert np.allclose(share, expected, atol=0.03), (share, expected)   # 9,600 draws: sd ~ 0.005
    # G: every minority class once per iteration for M and once for D, ceil(b / K) points, training mode
    per_iter = [c for c, _, _ in g_calls[: 2 * 3]]
    assert per_iter == [1, 1, 2, 2, 3, 3]
    assert len(g_calls) == iters * 2 * 3
    assert all(k == 16 and training for _, k, training in g_calls)


def test_d_targets_are_smoothed_and_g_asks_d_for_real_and_m_for_another_class(tiny_cfg, monkeypatch, one_thread):
    m, _ = _gamo(tiny_cfg)
    spy = Spy(monkeypatch)
    m.step()
    # per iteration: D on the real batch, D on the generated batch, then G against D per class
    real_t, fake_t, *g_d = spy.d
    assert isinstance(real_t, torch.Tensor) and isinstance(fake_t, torch.Tensor)
    assert torch.all((real_t >= 0.9) & (real_t <= 1.0)) and real_t.std() > 0
    assert torch.all((fake_t >= 0.0) & (fake_t <= 0.1)) and fake_t.std() > 0
    assert g_d == [True, True, True]                              # G wants D to say "real"
    # G against M: one call per minority class, with that class's label (the loss then targets
    # the ones' complement of it)
    assert [sorted(set(y.tolist())) for y in spy.g_m] == [[1], [2], [3]]


def test_g_against_m_targets_the_ones_complement():
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    y = torch.tensor([0, 0])
    # M sure of the true class 0: a high loss for G; M sure of another class: a low one
    for kind in ("ls", "ce"):
        right, wrong = (generator_vs_classifier_loss(logits[i:i + 1], y[:1], kind) for i in (0, 1))
        assert right > wrong, kind
    p = torch.softmax(logits, dim=1)
    target = torch.tensor([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    assert torch.allclose(generator_vs_classifier_loss(logits, y, "ls"), ((p - target) ** 2).sum(1).mean())


def test_a_g_step_moves_its_points_away_from_their_class_in_m(tiny_cfg, one_thread):
    """One class's G update against M lowers M's probability of that class on the same noise."""
    m, _ = _gamo(tiny_cfg, lr_g=5e-3)
    for _ in range(20):
        m.step()
    members = m._members()
    z = torch.randn(64, m.latent, generator=torch.Generator().manual_seed(0))

    def p_own():
        with torch.no_grad():
            m.G.eval()
            x = m.G.forward_class(z, 3, members)
            m.G.train()
            return torch.softmax(m.M(x), dim=1)[:, 3].mean()

    before = p_own()
    for _ in range(10):
        y = torch.full((16,), 3)
        x = m._generate_class(z[:16], 3, y, members)
        loss = gm.generator_vs_classifier_loss(m.M(x), y, m.loss_kind)
        m.opt_g.zero_grad(set_to_none=True)
        loss.backward(inputs=list(m.G.parameters()))
        m.opt_g.step()
    assert p_own() < before


def test_md_batch_is_generated_in_inference_mode(tiny_cfg, monkeypatch, one_thread):
    m, _ = _gamo(tiny_cfg)
    modes = []
    real = m.G.forward

    def fwd(z, y, members, need_weights=True):
        modes.append(m.G.training)
        return real(z, y, members, need_weights)

    monkeypatch.setattr(m.G, "forward", fwd)
    m.step()
    assert modes == [False]          # the mixed M/D batch; G's own updates go through forward_class
    assert m.G.training


@pytest.mark.parametrize("method,m_moves", [("gamo", False), ("gamo_no_d", False), ("baseline", True)])
def test_f_phase_holds_m_fixed_for_gamo(method, m_moves, tiny_cfg, fake_images, one_thread):
    data = fake_images((1, 28, 28), [40, 20, 10])
    cfg = tiny_cfg(method, data=dict(dataset="digits"), model=dict(family="conv"), batch_size=8)
    m = make_method(cfg, data, CPU)
    assert m.phase == "fm"
    m0 = {k: v.clone() for k, v in m.M.state_dict().items()}
    f0 = {k: v.clone() for k, v in m.F.state_dict().items()}
    m.step()
    assert any(not torch.equal(f0[k], v) for k, v in m.F.state_dict().items())
    moved = any(not torch.equal(m0[k], v) for k, v in m.M.state_dict().items())
    assert moved == m_moves


def test_a_g_update_steps_only_the_ctmu_and_its_own_igu(tiny_cfg, one_thread):
    m, _ = _gamo(tiny_cfg)
    m.step()                                     # Adam state exists for every IGU now
    w0 = [w.detach().clone() for w in m.G.igu_w]
    st0 = [m.opt_g.state[w]["exp_avg"].clone() for w in m.G.igu_w]
    y = torch.full((16,), 2)
    x = m._generate_class(torch.randn(16, m.latent), 2, y, m._members())
    loss = gm.generator_vs_classifier_loss(m.M(x), y, m.loss_kind)
    m.opt_g.zero_grad(set_to_none=True)
    loss.backward(inputs=list(m.G.parameters()))
    m.opt_g.step()
    changed = [not torch.equal(a, b.detach()) for a, b in zip(w0, m.G.igu_w)]
    moments = [not torch.equal(a, m.opt_g.state[w]["exp_avg"]) for a, w in zip(st0, m.G.igu_w)]
    assert changed == [False, True, False] and moments == [False, True, False]
