"""One full GAMO / GAMO\\D iteration with the blocked convex product, without autograd.

Where G combines many members (a conv run on Fashion-MNIST: 5,000 minority members with 512
features each), :class:`~gamo.nets.ConvexGenerator` uses its blocked product on the CPU. Through
autograd an iteration then cost about twice its matrix products (the graph of the softmaxes, the
per-class slices and index copies, the small networks M and D, each operation's dispatch and
bookkeeping), and the products themselves ran slowly: BLAS handles the skinny shapes of a class
block times the few batch rows of that class poorly. This kernel computes the same iteration as
:meth:`Gamo._step_phase` -- the same random draws from the method's generator, in the same order,
the same forward passes, hand-written backward passes of the same networks -- with torch
operations under ``no_grad`` for the cTMU, M and D, and compiled loops
(:mod:`gamo.methods._blocked_numba`) for G's class blocks, forward and backward, Adam's update of
the IGUs included.

It owns no state. The IGUs' weights and Adam state are packed into flat buffers that the torch
parameters and optimizer state view (as :mod:`gamo.methods.dense_kernel` does); the other
gradients go into buffers set as the parameters' ``.grad`` before the method's own optimizers
step. So a torch step and a kernel step can follow each other in any order, and checkpoints,
generation and resuming need nothing from the kernel.

:meth:`Gamo._step_phase` uses it when :func:`eligible` says so: a full iteration (all players) on
the CPU, a convex generator using the blocked product, the Classifier and Discriminator of
:mod:`gamo.nets`, the engine's :class:`~gamo.methods.base.FusedAdam`, LS or CE loss. Results agree
with the autograd path to float32 rounding (``tests/test_blocked_kernel.py`` follows both step by
step); over many steps a GAN's dynamics amplify those last bits, so runs are not bit-identical to
the autograd path's. ``bench/gamo_phase_parts.py`` and ``bench/epoch_time.py`` measure it.
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
    """Whether :class:`BlockedKernel` can run this method's full iteration."""
    g = method.G
    return (method.device.type == "cpu" and method.loss_kind in ("ls", "ce")
            and type(g) is ConvexGenerator and type(method.M) is Classifier
            and (not method.use_d or type(method.D) is Discriminator)
            and g._use_blocked(method._members())
            and all(isinstance(o, FusedAdam) for o in (method.opt_m, method.opt_g)))


def _leaky(h: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.leaky_relu(h, SLOPE)


def _dleaky(d: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Gradient through LeakyReLU at pre-activation ``h``: autograd's own backward op (slope
    where h <= 0), one op where ``where(h > 0, ...)`` takes three."""
    return torch.ops.aten.leaky_relu_backward(d, h, SLOPE, False)


def _mlp3(w: list[torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Linear-leaky-Linear-leaky-Linear; w = [W1, b1, W2, b2, W3, b3]; returns output and cache."""
    h1 = torch.addmm(w[1], x, w[0].t())
    a1 = _leaky(h1)
    h2 = torch.addmm(w[3], a1, w[2].t())
    a2 = _leaky(h2)
    return torch.addmm(w[5], a2, w[4].t()), [x, h1, a1, h2, a2]


def _mlp3_back(w: list[torch.Tensor], cache: list[torch.Tensor], dout: torch.Tensor,
               grads: list[torch.Tensor] | None = None, need_input: bool = True) -> torch.Tensor | None:
    """Backward of :func:`_mlp3`: writes the parameter gradients into ``grads`` (when given) and
    returns the gradient with respect to the input (None unless ``need_input``)."""
    x, h1, a1, h2, a2 = cache
    if grads is not None:
        torch.mm(dout.t(), a2, out=grads[4])
        torch.sum(dout, 0, out=grads[5])
    d = _dleaky(dout @ w[4], h2)
    if grads is not None:
        torch.mm(d.t(), a1, out=grads[2])
        torch.sum(d, 0, out=grads[3])
    d = _dleaky(d @ w[2], h1)
    if grads is not None:
        torch.mm(d.t(), x, out=grads[0])
        torch.sum(d, 0, out=grads[1])
    return d @ w[0] if need_input else None


def _softmax_back(p: torch.Tensor, dp: torch.Tensor, dim: int) -> torch.Tensor:
    return p * (dp - (p * dp).sum(dim, keepdim=True))


class BlockedKernel:
    """Runs :meth:`step` for a :class:`Gamo` (or GAMO\\D) whose :func:`eligible` is true."""

    def __init__(self, method: "Gamo") -> None:
        self.method = mm = method
        g = mm.G
        self.g_params = list(g.parameters())       # cTMU W1, b1, W2, b2, IGU weights, IGU biases
        self.m_params = list(mm.M.parameters())
        self.d_params = list(mm.D.parameters()) if mm.use_d else []
        self.params = self.g_params + self.m_params + self.d_params
        self.grads = [torch.zeros_like(p) for p in self.params]
        k = len(g.block_sizes)
        # the IGUs' weights and biases, and their gradients, packed into one (N, hidden) and one
        # (N,) buffer each (the parameters' data become views of them, as the NumPy kernel does)
        n_total, hidden = sum(g.block_sizes), g.igu_w[0].shape[1]
        self.w_buf, self.c_buf = torch.empty(n_total, hidden), torch.empty(n_total)
        self.gw_buf, self.gc_buf = torch.zeros(n_total, hidden), torch.zeros(n_total)
        for blk, (lo, n) in enumerate(zip(g.block_starts, g.block_sizes)):
            for buf, prm in ((self.w_buf, g.igu_w[blk]), (self.c_buf, g.igu_b[blk])):
                buf[lo:lo + n] = prm.detach()
                prm.data = buf[lo:lo + n]
            self.grads[4 + blk] = self.gw_buf[lo:lo + n]
            self.grads[4 + k + blk] = self.gc_buf[lo:lo + n]
        self._ptrs = [(lo * hidden * 4, lo * 4) for lo in g.block_starts]   # byte offsets of each block
        self._igu_w, self._igu_b = list(g.igu_w), list(g.igu_b)
        self.gg = self.grads[:len(self.g_params)]
        self.g_ctmu = self.gg[:4]
        self.arrays = {name: getattr(self, name).numpy() for name in ("w_buf", "c_buf", "gw_buf", "gc_buf")}
        rows = 2 * mm.batch
        self.p, self.q = np.zeros((rows, n_total), np.float32), np.zeros((rows, n_total), np.float32)
        self.xs = np.zeros((rows, mm.feat_dim), np.float32)
        self.dts2 = np.zeros((2, rows, hidden), np.float32)
        from gamo.methods import _blocked_numba   # numba: imported and compiled only when needed
        self.nb = _blocked_numba
        self._pack_igu_adam()
        self.gm = self.grads[len(self.g_params):len(self.g_params) + len(self.m_params)]
        self.gd = self.grads[len(self.g_params) + len(self.m_params):]
        self.eye = torch.eye(mm.n_classes)
        b = mm.batch
        self.rf = torch.cat([torch.ones(b), torch.zeros(b)])
        self.ones = torch.ones(b)

    def _pack_igu_adam(self) -> None:
        """Pack the IGUs' Adam state (first and second moments, step counts) into flat buffers,
        as their weights are, so that the compiled loops can update it row by row; the
        optimizer's state tensors become views of them. Only for G's plain Adam (one group, no
        weight decay, amsgrad or maximize); otherwise the IGUs step through the optimizer."""
        g, opt = self.method.G, self.method.opt_g
        grp = opt.param_groups[0]
        self.fuse_adam = (len(opt.param_groups) == 1 and not grp["amsgrad"] and not grp["maximize"]
                          and grp["weight_decay"] == 0 and not grp.get("capturable") and not grp.get("differentiable"))
        if not self.fuse_adam:
            return
        if opt._lists is None:
            opt._build()                  # Adam's state, created as Adam creates it
        k = len(g.block_sizes)
        self.mw_buf, self.vw_buf = torch.empty_like(self.w_buf), torch.empty_like(self.w_buf)
        self.mc_buf, self.vc_buf = torch.empty_like(self.c_buf), torch.empty_like(self.c_buf)
        self.igu_steps = torch.empty(2 * k)
        for blk, (lo, n) in enumerate(zip(g.block_starts, g.block_sizes)):
            for i, (prm, mb, vb) in enumerate(((g.igu_w[blk], self.mw_buf, self.vw_buf),
                                               (g.igu_b[blk], self.mc_buf, self.vc_buf))):
                st = opt.state[prm]
                mb[lo:lo + n], vb[lo:lo + n] = st["exp_avg"], st["exp_avg_sq"]
                st["exp_avg"], st["exp_avg_sq"] = mb[lo:lo + n], vb[lo:lo + n]
                self.igu_steps[i * k + blk] = st["step"]
                st["step"] = self.igu_steps[i * k + blk]
        opt._lists = None                 # FusedAdam re-reads the (re-pointed) state tensors
        self._state_ref = opt.state[g.igu_w[0]]["exp_avg"]
        for name in ("mw_buf", "vw_buf", "mc_buf", "vc_buf", "igu_steps"):
            self.arrays[name] = getattr(self, name).numpy()

    def valid(self) -> bool:
        """False once an IGU's data no longer lives in the packed buffers, or the optimizer's
        state was replaced (a state load). Cheap: it runs before every step. (Parameters are
        loaded in place, so the kernel's references to them stay good.)"""
        if self.fuse_adam and self.method.opt_g.state[self._igu_w[0]].get("exp_avg") is not self._state_ref:
            return False
        w_ptr, c_ptr = self.w_buf.data_ptr(), self.c_buf.data_ptr()
        return all(wp.data_ptr() == w_ptr + ow and bp.data_ptr() == c_ptr + oc
                   for wp, bp, (ow, oc) in zip(self._igu_w, self._igu_b, self._ptrs))

    # ------------------------------------------------------------------ losses
    def _m_loss(self, logits: torch.Tensor, target: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``scale`` x M's loss for one-hot (or complement) targets, and its gradient wrt logits."""
        n = len(logits)
        if self.method.loss_kind == "ce":
            logp = torch.log_softmax(logits, 1)
            tsum = target.sum(1, keepdim=True)
            loss = -(target * logp).sum() * (scale / n)
            return loss, (scale / n) * (logp.exp() * tsum - target)
        p = torch.softmax(logits, 1)
        diff = p - target
        loss = (diff * diff).sum() * (scale / n)
        return loss, _softmax_back(p, diff * (2.0 * scale / n), 1)

    def _d_loss(self, logit: torch.Tensor, target: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``scale`` x D's loss against per-point targets, and its gradient wrt the logits."""
        s = torch.sigmoid(logit)
        n = len(logit)
        if self.method.loss_kind == "ce":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, target) * scale
            return loss, (scale / n) * (s - target)
        diff = s - target
        return (diff * diff).mean() * scale, (2.0 * scale / n) * diff * s * (1.0 - s)

    # ------------------------------------------------------------------ one iteration
    @torch.no_grad()
    def step(self) -> dict[str, torch.Tensor]:
        mm = self.method
        g = mm.G
        b, gen, use_d, k_cls = mm.batch, mm.gen, mm.use_d, mm.n_classes
        feats = mm.train_features()
        members = mm._members()
        # the random draws of Gamo._step_phase, in its order
        z1 = torch.randn(b, mm.latent, generator=gen)
        y1 = mm.minority_t.index_select(0, torch.multinomial(mm.p_md, b, replacement=True, generator=gen))
        z2 = torch.randn(b, mm.latent, generator=gen)
        y2g = mm.minority_t.index_select(0, torch.randint(len(mm.minority), (b,), generator=gen))
        y = torch.cat([y1, y2g])                                                  # (2b,)

        # G forward for both batches: the cTMU, then each class's rows on its own block
        wg = self.g_params
        inp = torch.cat([torch.cat([z1, z2]), self.eye.index_select(0, y)], 1)
        h1 = torch.addmm(wg[1], inp, wg[0].t())
        a1 = _leaky(h1)
        h2 = torch.addmm(wg[3], a1, wg[2].t())
        t = _leaky(h2)                                                            # (2b, hidden)
        key = y.numpy() * 2
        key[b:] += 1                      # within a class, the M/D rows first, then G's rows
        order_np = np.argsort(key, kind="stable")
        counts = np.bincount(key, minlength=2 * k_cls)
        spans, start = [], 0
        for c in range(k_cls):
            n_md, n_g = int(counts[2 * c]), int(counts[2 * c + 1])
            if n_md + n_g:
                blk = g._block_of[c]
                spans.append((g.block_starts[blk], g.block_sizes[blk], start, start + n_md, start + n_md + n_g))
                start += n_md + n_g
        spans_np = np.array(spans, dtype=np.int64)
        ts_np = t.numpy()                                                         # (2b, hidden)
        arr = self.arrays
        self.nb.set_threads(torch.get_num_threads())
        self.nb.forward(ts_np, order_np, spans_np, arr["w_buf"], arr["c_buf"],
                        g.members_transposed(members).numpy(), self.p, self.xs)
        x = torch.from_numpy(self.xs)                                             # (2b, d), batch order

        # M and D on a real batch and the generated M/D batch (losses x2: two halves' means)
        idx = mm._real_batch()
        x2 = torch.cat([feats.index_select(0, idx), x[:b]])
        yy = torch.cat([mm.y_train.index_select(0, idx), y1])
        onehot = self.eye.index_select(0, yy)
        out, cache_m = _mlp3(self.m_params, x2)
        loss_m, dlog = self._m_loss(out, onehot, 2.0)
        _mlp3_back(self.m_params, cache_m, dlog, self.gm, need_input=False)
        losses = {"M": loss_m}
        if use_d:
            out_d, cache_d = _mlp3(self.d_params, torch.cat([x2, onehot], 1))
            loss_d, dl = self._d_loss(out_d[:, 0], self.rf, 2.0)
            _mlp3_back(self.d_params, cache_d, dl.unsqueeze(1), self.gd, need_input=False)
            losses["D"] = loss_d
        for p, gr in zip(self.m_params + self.d_params, self.gm + self.gd):
            p.grad = gr
        mm.opt_m.step()

        # G against the updated M (and D): the gradient of G's batch, then through G
        xg = x[b:]
        out, cache_m = _mlp3(self.m_params, xg)
        onehot = self.eye.index_select(0, y2g)
        loss_g, dlog = self._m_loss(out, 1.0 - onehot, 1.0)
        dx = _mlp3_back(self.m_params, cache_m, dlog)
        if use_d:
            out_d, cache_d = _mlp3(self.d_params, torch.cat([xg, onehot], 1))
            ld, dl = self._d_loss(out_d[:, 0], self.ones, 1.0)
            loss_g = loss_g + ld
            dx += _mlp3_back(self.d_params, cache_d, dl.unsqueeze(1))[:, :xg.shape[1]]
        # G's rows of the grouped order: position r holds batch row order[r], row order[r] - b of dx
        g_rows = order_np - b
        dx_np = dx.numpy()
        steps = arr["igu_steps"] if self.fuse_adam else None
        fused = steps is not None and steps.min() == steps.max()   # Adam's step alike for every IGU
        self.nb.dweights_softmax_back(dx_np, g_rows, spans_np, members.numpy(), self.p, self.q)
        blocks = np.zeros((len(g.block_sizes), 4), np.int64)     # every block, and its G rows
        blocks[:, 0], blocks[:, 1] = g.block_starts, g.block_sizes
        for lo, _, _, m, e in spans:
            blocks[g.block_starts.index(lo), 2:] = (m, e)
        if fused:
            grp = mm.opt_g.param_groups[0]
            (b1, b2), lr, eps = grp["betas"], float(grp["lr"]), float(grp["eps"])
            steps += 1
            t_adam = float(steps[0])
            f32 = np.float32
            self.nb.igu_grads_adam(blocks, ts_np, order_np, arr["w_buf"], arr["c_buf"], self.q,
                                   arr["mw_buf"], arr["vw_buf"], arr["mc_buf"], arr["vc_buf"], self.dts2,
                                   f32(lr / (1.0 - b1 ** t_adam)), f32(1.0 / np.sqrt(1.0 - b2 ** t_adam)),
                                   f32(b1), f32(b2), f32(eps))
        else:
            self.nb.igu_grads(blocks, ts_np, order_np, arr["w_buf"], self.q, arr["gw_buf"], arr["gc_buf"],
                              self.dts2)
        dt = torch.from_numpy(self.dts2[0, b:] + self.dts2[1, b:])               # G's rows
        gc = self.g_ctmu
        d = _dleaky(dt, h2[b:])
        torch.mm(d.t(), a1[b:], out=gc[2])
        torch.sum(d, 0, out=gc[3])
        d = _dleaky(d @ wg[2], h1[b:])
        torch.mm(d.t(), inp[b:], out=gc[0])
        torch.sum(d, 0, out=gc[1])
        if fused:                         # the IGUs are stepped: Adam for the cTMU, as FusedAdam does
            opt = mm.opt_g
            ctmu = self.g_params[:4]
            sts = [opt.state[q] for q in ctmu]
            st_steps = [st["step"] for st in sts]
            torch._foreach_add_(st_steps, 1)
            torch._fused_adam_(ctmu, gc, [st["exp_avg"] for st in sts], [st["exp_avg_sq"] for st in sts], [],
                               st_steps, amsgrad=False, lr=lr, beta1=b1, beta2=b2, weight_decay=0.0, eps=eps,
                               maximize=False, grad_scale=None, found_inf=None)
            for q, gr in zip(ctmu, gc):
                q.grad = gr
            for q in self.g_params[4:]:
                q.grad = None             # stepped in place, their gradients never written out
        else:
            for q, gr in zip(self.g_params, self.gg):
                q.grad = gr
            mm.opt_g.step()
        losses["G"] = loss_g
        return losses
