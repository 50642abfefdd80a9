"""One full GAMO / GAMO\\D iteration for small dense problems on the CPU, in NumPy.

A 2D GAMO iteration (M, D and G on a batch of 64, networks 32 wide) is a few hundred tiny
operations. Through torch each costs 5-10 us of dispatch and autograd bookkeeping, far more than
its arithmetic, so the loop ran at about 200 iterations/s. This kernel computes the same
iteration -- the same random draws from the method's generator, in the same order, the same
forward passes, the hand-written backward passes of the same networks, and the same Adam update
-- with NumPy calls of a few us each (2.6-4.3x the iterations per second on the Toy Lab's
networks, ``bench/results/toy_lab_speed.md``).

It owns no state. The torch parameters, and the optimizers' ``exp_avg`` / ``exp_avg_sq`` /
``step`` tensors, are re-pointed at views of one flat NumPy buffer per parameter group
(:class:`_Group`), and the kernel updates those buffers in place. So the torch modules always see
the current weights: snapshots, checkpoints, generation, teaching-mode steps of one player (which
go through torch) and resuming need nothing from the kernel, and a torch step and a kernel step
can follow each other in any order.

:meth:`Gamo._step_phase` uses the kernel when :func:`eligible` says so: a full iteration (all
players) on the CPU, dense family, convex generator using the dense product (``N * d`` below
:attr:`ConvexGenerator.BLOCKED_MIN_WORK`, e.g. the 2D toys), LS or CE loss. Results agree with the
torch path to float32 rounding (``tests/test_dense_kernel.py`` follows both step by step); over
hundreds of steps a GAN's dynamics amplify those last bits, so runs are not bit-identical to the
torch path's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from gamo.methods.base import FusedAdam
from gamo.nets import Classifier, ConvexGenerator, Discriminator

if TYPE_CHECKING:  # pragma: no cover
    from gamo.methods.gamo import Gamo

SLOPE = 0.1   # LeakyReLU slope of every network here


def eligible(method: "Gamo") -> bool:
    """Whether :class:`DenseKernel` can run this method's full iteration."""
    g = method.G
    return (method.device.type == "cpu" and method.family == "dense" and method.loss_kind in ("ls", "ce")
            and type(g) is ConvexGenerator and type(method.M) is Classifier
            and (not method.use_d or type(method.D) is Discriminator)
            and not g._use_blocked(method._members())
            and all(isinstance(o, FusedAdam) for o in (method.opt_m, method.opt_g))
            and all(not grp["amsgrad"] and not grp["maximize"] and grp["weight_decay"] == 0
                    for o in (method.opt_m, method.opt_g) for grp in o.param_groups))


class _Group:
    """One optimizer parameter group packed into flat float32 buffers shared with torch."""

    def __init__(self, opt: FusedAdam, group: dict) -> None:
        params = list(group["params"])
        if opt._lists is None:
            opt._build()                     # Adam's state, created as Adam creates it
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        self.p, self.m, self.v = (np.empty(total, np.float32) for _ in range(3))
        self.g = np.zeros(total, np.float32)
        self.steps = np.empty(len(params), np.float32)
        self.group = group
        self.views: list[np.ndarray] = []    # each parameter as an array of its shape
        self.grads: list[np.ndarray] = []    # where its gradient goes
        o = 0
        for i, (q, n) in enumerate(zip(params, sizes)):
            st = opt.state[q]
            self.p[o:o + n] = q.detach().reshape(-1).numpy()
            self.m[o:o + n] = st["exp_avg"].reshape(-1).numpy()
            self.v[o:o + n] = st["exp_avg_sq"].reshape(-1).numpy()
            self.steps[i] = float(st["step"])
            shape = tuple(q.shape)
            q.data = torch.from_numpy(self.p[o:o + n]).view(shape)
            st["exp_avg"] = torch.from_numpy(self.m[o:o + n]).view(shape)
            st["exp_avg_sq"] = torch.from_numpy(self.v[o:o + n]).view(shape)
            st["step"] = torch.from_numpy(self.steps[i:i + 1]).view(())
            self.views.append(self.p[o:o + n].reshape(shape))
            self.grads.append(self.g[o:o + n].reshape(shape))
            o += n
        self.state_ref = opt.state[params[0]]["exp_avg"]
        self.first = params[0]
        opt._lists = None                    # FusedAdam re-reads the (re-pointed) state tensors

    def adam(self, betas: tuple[float, float]) -> None:
        """``torch._fused_adam_`` on the flat buffers (weight decay 0, no amsgrad)."""
        b1, b2 = betas
        lr, eps = float(self.group["lr"]), float(self.group["eps"])
        self.steps += 1
        s = self.steps
        m, v, g = self.m, self.v, self.g
        m += (1.0 - b1) * (g - m)
        v *= b2
        v += (1.0 - b2) * (g * g)
        if s.min() == s.max():                # the usual case: every parameter stepped alike
            step = float(s[0])
            bc1, bc2 = 1.0 - b1 ** step, 1.0 - b2 ** step
            denom = np.sqrt(v)
            denom *= np.float32(1.0 / np.sqrt(bc2))
            denom += np.float32(eps)
            self.p -= np.float32(lr / bc1) * m / denom
        else:                                 # steps differ (a torch step skipped some)
            for view, mv, vv, st in zip(self.views, self._split(m), self._split(v), s):
                bc1, bc2 = 1.0 - b1 ** float(st), 1.0 - b2 ** float(st)
                view -= np.float32(lr / bc1) * mv / (np.sqrt(vv) / np.float32(np.sqrt(bc2)) + np.float32(eps))

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        out, o = [], 0
        for view in self.views:
            out.append(flat[o:o + view.size].reshape(view.shape))
            o += view.size
        return out


def _leaky(h: np.ndarray) -> np.ndarray:
    return np.maximum(h, SLOPE * h)


def _dleaky(d: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Gradient through LeakyReLU at pre-activation ``h`` (torch: slope where h <= 0)."""
    return np.where(h > 0, d, SLOPE * d)


def _mlp3(w, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Linear-leaky-Linear-leaky-Linear; w = [W1, b1, W2, b2, W3, b3]; returns output and cache."""
    h1 = x @ w[0].T
    h1 += w[1]
    a1 = _leaky(h1)
    h2 = a1 @ w[2].T
    h2 += w[3]
    a2 = _leaky(h2)
    out = a2 @ w[4].T
    out += w[5]
    return out, [x, h1, a1, h2, a2]


def _mlp3_back(w, cache, dout: np.ndarray, grads=None) -> np.ndarray:
    """Backward of :func:`_mlp3`: writes parameter gradients into ``grads`` (when given) and
    returns the gradient with respect to the input."""
    x, h1, a1, h2, a2 = cache
    if grads is not None:
        np.matmul(dout.T, a2, out=grads[4])
        np.sum(dout, axis=0, out=grads[5])
    d = _dleaky(dout @ w[4], h2)
    if grads is not None:
        np.matmul(d.T, a1, out=grads[2])
        np.sum(d, axis=0, out=grads[3])
    d = _dleaky(d @ w[2], h1)
    if grads is not None:
        np.matmul(d.T, x, out=grads[0])
        np.sum(d, axis=0, out=grads[1])
    return d @ w[0]


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large negative inputs (1/(1+exp(-a)) would)."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0, e) / (1.0 + e)


def _softmax_back(p: np.ndarray, dp: np.ndarray) -> np.ndarray:
    return p * (dp - (p * dp).sum(axis=1, keepdims=True))


class DenseKernel:
    """Runs :meth:`step` for a :class:`Gamo` (or GAMO\\D) whose :func:`eligible` is true."""

    def __init__(self, method: "Gamo") -> None:
        self.method = method
        mm = method
        self.groups_md = [_Group(mm.opt_m, grp) for grp in mm.opt_m.param_groups]
        self.groups_g = [_Group(mm.opt_g, grp) for grp in mm.opt_g.param_groups]
        self.wm = self.groups_md[0].views                         # M: W1, b1, W2, b2, W3, b3
        self.gm = self.groups_md[0].grads
        if mm.use_d:
            self.wd, self.gd = self.groups_md[1].views, self.groups_md[1].grads
        gw, gg = self.groups_g[0].views, self.groups_g[0].grads  # G: cTMU (4), IGU weights, IGU biases
        g = mm.G
        k = len(g.block_sizes)
        self.wg, self.gg = gw[:4], gg[:4]
        # the IGU weights (and biases) are consecutive in the flat buffer: one (N, hidden) matrix
        n_total, hidden = sum(g.block_sizes), gw[4].shape[1]
        flat_w = self.groups_g[0].p
        flat_g = self.groups_g[0].g
        o = sum(a.size for a in gw[:4])
        self.igu_w = flat_w[o:o + n_total * hidden].reshape(n_total, hidden)
        self.igu_gw = flat_g[o:o + n_total * hidden].reshape(n_total, hidden)
        o += n_total * hidden
        self.igu_b, self.igu_gb = flat_w[o:o + n_total], flat_g[o:o + n_total]
        assert gw[4 + k].shape == (g.block_sizes[0],)
        self.members = mm._members().numpy()                      # (N, d)
        self.x_train, self.y_train = mm.x_train.numpy(), mm.y_train.numpy()
        self.eye = np.eye(mm.n_classes, dtype=np.float32)
        self.minority = np.asarray(mm.minority, dtype=np.int64)
        self.block_of = g.block_of.numpy()
        self.member_block = g.member_block.numpy()
        self.masked = k > 1
        b = mm.batch
        self.rf = np.concatenate([np.ones(b, np.float32), np.zeros(b, np.float32)])
        self.betas_md = mm.opt_m.param_groups[0]["betas"]
        self.betas_g = mm.opt_g.param_groups[0]["betas"]

    def valid(self) -> bool:
        """False once the torch side replaced a packed tensor (e.g. an optimizer state load)."""
        mm = self.method
        return all(gr.first.data.data_ptr() == gr.p.ctypes.data
                   and mm_opt.state[gr.first]["exp_avg"] is gr.state_ref
                   for mm_opt, grs in ((mm.opt_m, self.groups_md), (mm.opt_g, self.groups_g)) for gr in grs)

    # ------------------------------------------------------------------ losses
    def _m_loss(self, logits: np.ndarray, target: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
        """``scale`` x M's loss for one-hot (or complement) targets, and its gradient wrt logits."""
        n = len(logits)
        if self.method.loss_kind == "ce":
            shifted = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(shifted)
            se = e.sum(axis=1, keepdims=True)
            p, logp = e / se, shifted - np.log(se)
            tsum = target.sum(axis=1, keepdims=True)
            loss = -(target * logp).sum() / n
            return scale * float(loss), (scale / n) * (p * tsum - target)
        p = _softmax(logits)
        diff = p - target
        loss = float((diff * diff).sum()) / n
        return scale * loss, _softmax_back(p, (2.0 * scale / n) * diff)

    def _d_loss(self, logit: np.ndarray, target: np.ndarray, scale: float) -> tuple[float, np.ndarray]:
        """``scale`` x D's loss against per-point targets, and its gradient wrt the logits."""
        s = _sigmoid(logit)
        n = len(logit)
        if self.method.loss_kind == "ce":
            loss = (np.maximum(logit, 0) - logit * target + np.log1p(np.exp(-np.abs(logit)))).mean()
            return scale * float(loss), (scale / n) * (s - target)
        diff = s - target
        return scale * float((diff * diff).mean()), (2.0 * scale / n) * diff * s * (1.0 - s)

    # ------------------------------------------------------------------ one iteration
    def step(self) -> dict[str, float]:
        mm = self.method
        b, gen, use_d = mm.batch, mm.gen, mm.use_d
        # the random draws of Gamo._step_phase, in its order
        z1 = torch.randn(b, mm.latent, generator=gen)
        i1 = torch.multinomial(mm.p_md, b, replacement=True, generator=gen)
        z2 = torch.randn(b, mm.latent, generator=gen)
        i2 = torch.randint(len(mm.minority), (b,), generator=gen)
        idx = torch.randint(mm.n, (b,), generator=gen).numpy()
        y = self.minority[np.concatenate([i1.numpy(), i2.numpy()])]                # (2b,)
        z = np.concatenate([z1.numpy(), z2.numpy()])                              # (2b, l)

        # G forward for both batches (the M/D half is used as data)
        wg = self.wg
        inp = np.concatenate([z, self.eye[y]], axis=1)
        h1 = inp @ wg[0].T
        h1 += wg[1]
        a1 = _leaky(h1)
        h2 = a1 @ wg[2].T
        h2 += wg[3]
        t = _leaky(h2)                                                            # (2b, hidden)
        logits = t @ self.igu_w.T
        logits += self.igu_b                                                      # (2b, N)
        if self.masked:
            own = self.member_block[None, :] == self.block_of[y][:, None]
            logits = np.where(own, logits, -np.inf).astype(np.float32, copy=False)
        w = _softmax(logits)                                                      # convex weights
        x = w @ self.members                                                      # (2b, d)

        # M and D on a real batch and the generated M/D batch (losses x2: two halves' means)
        x2 = np.concatenate([self.x_train[idx], x[:b]])
        y2 = np.concatenate([self.y_train[idx], y[:b]])
        out, cache_m = _mlp3(self.wm, x2)
        loss_m, dlog = self._m_loss(out, self.eye[y2], 2.0)
        _mlp3_back(self.wm, cache_m, dlog, self.gm)
        losses = {"M": loss_m}
        if use_d:
            out_d, cache_d = _mlp3(self.wd, np.concatenate([x2, self.eye[y2]], axis=1))
            loss_d, dl = self._d_loss(out_d[:, 0], self.rf, 2.0)
            _mlp3_back(self.wd, cache_d, dl[:, None], self.gd)
            losses["D"] = loss_d
        for gr in self.groups_md:
            gr.adam(self.betas_md)

        # G against the updated M (and D): gradient to G's batch only, then through G
        xg, yg = x[b:], y[b:]
        out, cache_m = _mlp3(self.wm, xg)
        loss_g, dlog = self._m_loss(out, 1.0 - self.eye[yg], 1.0)
        dx = _mlp3_back(self.wm, cache_m, dlog)
        if use_d:
            oh = self.eye[yg]
            out_d, cache_d = _mlp3(self.wd, np.concatenate([xg, oh], axis=1))
            ld, dl = self._d_loss(out_d[:, 0], np.ones(b, np.float32), 1.0)
            loss_g += ld
            dx += _mlp3_back(self.wd, cache_d, dl[:, None])[:, :xg.shape[1]]
        wl, tl = w[b:], t[b:]
        dlg = _softmax_back(wl, dx @ self.members.T)                              # (b, N)
        np.matmul(dlg.T, tl, out=self.igu_gw)
        np.sum(dlg, axis=0, out=self.igu_gb)
        dt = _dleaky(dlg @ self.igu_w, h2[b:])
        gg = self.gg
        np.matmul(dt.T, a1[b:], out=gg[2])
        np.sum(dt, axis=0, out=gg[3])
        da = _dleaky(dt @ wg[2], h1[b:])
        np.matmul(da.T, inp[b:], out=gg[0])
        np.sum(da, axis=0, out=gg[1])
        for gr in self.groups_g:
            gr.adam(self.betas_g)
        losses["G"] = loss_g
        return losses
