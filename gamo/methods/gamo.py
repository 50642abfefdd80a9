"""GAMO and GAMO\\D (Section 3, Algorithm 1).

One GAMO iteration on F's current features (held fixed during the phase):

* train classifier / discriminator (lines 7-11): a real minibatch, and a generated minibatch whose
  labels are drawn with probability proportional to (n_c - n_i). M is updated once on the real
  and the generated batch together (their two losses summed), D likewise with targets 1 and 0,
  and M and D share one optimizer call (their parameters are disjoint); the official code makes
  four separate calls;
* train generator (lines 12-15): labels drawn uniformly over the minority classes; G's loss is M
  predicting the ones' complement of the label plus, for GAMO, D saying "real". Only G's
  parameters receive gradients. G's parameters do not change between line 10 and line 14, so
  the generated batches of both parts come from a single forward pass of G.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.losses import classifier_loss, discriminator_loss, generator_vs_classifier_loss
from gamo.methods.base import Method, adam
from gamo.methods import blocked_kernel, dense_kernel
from gamo.methods.blocked_kernel import BlockedKernel
from gamo.methods.dense_kernel import DenseKernel
from gamo.nets import ConvexGenerator, Discriminator, OneHot
from gamo.snapshot import Generated

TOP_PARENTS = 5


class Gamo(Method):
    """GAMO: convex generator G, classifier M and conditional discriminator D."""

    name = "gamo"
    players = ("M", "D", "G")
    convex = True
    use_d = True
    use_kernel = True   # full iterations through gamo.methods.dense_kernel / blocked_kernel where eligible

    def __init__(self, cfg: RunConfig, data: Dataset, device: torch.device) -> None:
        super().__init__(cfg, data, device)
        tc, mc = cfg.train, cfg.model
        self.latent = mc.latent
        # rows of x_train that G combines, grouped by minority class (the IGU blocks)
        y_np = np.asarray(data.y_train)
        rows = [np.flatnonzero(y_np == c) for c in self.minority]
        self.min_rows = torch.as_tensor(np.concatenate(rows) if rows else np.zeros(0, np.int64),
                                        dtype=torch.long, device=device)          # (N,)
        sizes = [len(r) for r in rows]
        self.G = self._make_generator(sizes).to(device)
        self.opt_g = adam([("G", self.G.parameters(), tc.lr_g)], tc.beta1)
        if self.use_d:
            # M and D step at the same point of Alg. 1 (lines 9, 11): one optimizer, one backward
            self.D = Discriminator(self.feat_dim, self.n_classes, mc.hidden).to(device)
            self.opt_m = adam([("M", self.M.parameters(), tc.lr_m), ("D", self.D.parameters(), tc.lr_d)], tc.beta1)
        self._members_cache: torch.Tensor | None = None
        self._rf_target: torch.Tensor | None = None     # D's targets for the M/D step, made once
        self._members_of: torch.Tensor | None = None
        # the CPU kernel for full iterations; None: not decided yet, False: not eligible
        self._kernel: DenseKernel | BlockedKernel | None | bool = None
        self.minority_t = torch.as_tensor(self.minority, dtype=torch.long, device=device)
        gap = float(self.counts.max()) - self.counts[self.minority].astype(np.float64)
        self.p_md = torch.as_tensor(gap / gap.sum() if len(gap) else gap, dtype=torch.float32, device=device)
        # a fixed noise batch per minority class, so the same point can be followed across steps
        g = torch.Generator(device="cpu").manual_seed(tc.seed + 7919)
        m = tc.n_fixed
        self.z_fixed = torch.randn(m * len(self.minority), mc.latent, generator=g).to(device)
        self.y_fixed = self.minority_t.repeat_interleave(m)

    def _make_generator(self, sizes: list[int]) -> torch.nn.Module:
        mc = self.cfg.model
        return ConvexGenerator(mc.latent, self.n_classes, mc.g_hidden, sizes, self.minority)

    def _extra_phases(self) -> list[tuple[str, int]]:
        return [("gamo", self.iters_per_phase)] if self.minority else []  # balanced data: Baseline CN

    # ------------------------------------------------------------------ one iteration
    def _members(self) -> torch.Tensor:
        """Current features of the minority members, grouped by class block (N, d); cached
        until F changes."""
        feats = self.train_features()
        if self._members_of is not feats:
            self._members_cache, self._members_of = feats[self.min_rows], feats
        return self._members_cache

    def _real_fake(self, b: int) -> torch.Tensor:
        """D's targets for a real batch of b then a generated batch of b: b ones, b zeros."""
        t = self._rf_target
        if t is None or len(t) != 2 * b:
            t = torch.cat([torch.ones(b, device=self.device), torch.zeros(b, device=self.device)])
            self._rf_target = t
        return t

    def _fast_kernel(self) -> DenseKernel | BlockedKernel | None:
        """The kernel for full iterations on the CPU, or None where the autograd path runs: NumPy
        for small dense problems (2D toys, :mod:`gamo.methods.dense_kernel`); torch without
        autograd plus compiled loops for the blocked convex product (e.g. conv features,
        :mod:`gamo.methods.blocked_kernel`)."""
        k = self._kernel
        if k is None:
            if not self.use_kernel:
                k = False
            elif dense_kernel.eligible(self):
                k = DenseKernel(self)
            elif blocked_kernel.eligible(self):
                k = BlockedKernel(self)
            else:
                k = False
            self._kernel = k
        elif k and not k.valid():          # the torch side replaced a packed tensor: start again
            k = self._kernel = type(k)(self)
        return k or None

    def _step_phase(self, phase: str, players: set[str] | None) -> dict[str, torch.Tensor | float]:
        if players is None or players.issuperset(self.players):
            kernel = self._fast_kernel()
            if kernel is not None:
                return kernel.step()
        players = set(self.players) if players is None else players
        feats = self.train_features()
        members = self._members()
        b, dev, losses = self.batch, self.device, {}
        train_md = "M" in players or (self.use_d and "D" in players)
        train_g = "G" in players

        # noise and labels: for M and D with p(i) ~ (n_c - n_i) (line 10), for G uniform (line 13)
        zs, ys = [], []
        if not (train_md or train_g):
            return losses
        if train_md:
            zs.append(torch.randn(b, self.latent, generator=self.gen, device=dev))
            ys.append(self.minority_t[torch.multinomial(self.p_md, b, replacement=True, generator=self.gen)])
        if train_g:
            zs.append(torch.randn(b, self.latent, generator=self.gen, device=dev))
            ys.append(self.minority_t[torch.randint(len(self.minority), (b,), generator=self.gen, device=dev)])
        # G does not change between lines 10 and 14, so both batches come from one forward pass
        # (the M/D batch frozen: G's backward only goes through its own batch)
        with torch.set_grad_enabled(train_g):
            x_all, _ = self.G(torch.cat(zs), torch.cat(ys), members, need_weights=False,
                              frozen=b if train_md and train_g else 0)               # (b or 2b, d)

        if train_md:
            idx = self._real_batch()
            xr, yr = feats[idx], self.y_train[idx]                                   # (b, d), (b,)
            xg, yg = x_all[:b].detach(), ys[0]
            x2, y2 = torch.cat([xr, xg]), torch.cat([yr, yg])                       # (2b, d), (2b,)
            # train classifier and discriminator (their losses touch disjoint parameters). Both
            # halves have b points, so the sum of the two halves' mean losses is twice the mean
            # over the 2b points: one loss call instead of two
            total = 0.0
            if "M" in players:
                loss_m = 2.0 * classifier_loss(self.M(x2), y2, self.loss_kind)
                losses["M"] = loss_m.detach()
                total = total + loss_m
            if self.use_d and "D" in players:
                loss_d = 2.0 * discriminator_loss(self.D(x2, y2), self._real_fake(b), self.loss_kind)
                losses["D"] = loss_d.detach()
                total = total + loss_d
            self.opt_m.zero_grad(set_to_none=True)
            total.backward()
            self.opt_m.step()

        # train generator: M (just updated) should predict the ones' complement; D should say real
        if train_g:
            xg, yg = x_all[-b:], ys[-1]
            loss_g = generator_vs_classifier_loss(self.M(xg), yg, self.loss_kind)
            if self.use_d:
                loss_g = loss_g + discriminator_loss(self.D(xg, yg), True, self.loss_kind)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=list(self.G.parameters()))   # M and D stay fixed
            self.opt_g.step()
            losses["G"] = loss_g.detach()
        return losses

    # ------------------------------------------------------------------ what the UI and the store read
    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor, top: int = TOP_PARENTS):
        """Generate for (z, y); returns points (B, d), full weights (B, N), top parent rows and weights."""
        x, w = self.G(z, y, self._members())
        if w is None:  # an unconstrained generator: no convex parents
            return x, None, None, None
        # at most as many parents as the smallest class has members, so every parent is of the
        # sample's own class (weights outside it are exactly 0)
        k = min(top, min(self.G.block_sizes))
        pw, pi = torch.topk(w, k, dim=1)
        return x, w, self.min_rows[pi], pw

    @torch.no_grad()
    def d_real(self, feats: torch.Tensor) -> torch.Tensor | None:
        if not self.use_d:
            return None
        n, k = len(feats), self.n_classes
        ys = torch.arange(k, device=self.device).repeat_interleave(n)
        out = torch.sigmoid(self.D(feats.repeat(k, 1), ys)).reshape(k, n)
        return out.T                                                                     # (n, K)

    @torch.no_grad()
    def generated(self) -> Generated | None:
        if not self.minority:
            return None
        x, _, pi, pw = self.generate(self.z_fixed, self.y_fixed)
        self.M.eval()
        pred = self.M(x).argmax(dim=1)
        self.M.train()
        d = torch.sigmoid(self.D(x, self.y_fixed)).cpu().numpy() if self.use_d else None
        return Generated(
            x=x.cpu().numpy(), y=self.y_fixed.cpu().numpy(),
            parent_idx=None if pi is None else pi.cpu().numpy(),
            parent_w=None if pw is None else pw.cpu().numpy(), m_pred=pred.cpu().numpy(), d_real=d,
        )

    @torch.no_grad()
    def sample(self, counts: dict[int, int], seed: int) -> dict[str, np.ndarray]:
        """Generate ``counts[c]`` points for each minority class c, from fresh noise seeded by
        ``seed``: ``x`` (n, d), ``y``, and each point's top convex parents (rows of x_train)."""
        bad = [c for c, n in counts.items() if n > 0 and c not in self.minority]
        if bad:
            raise ValueError(f"classes {bad} have no IGU: GAMO generates only for minority classes {self.minority}")
        y = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in counts.items()] or
                      [torch.zeros(0, dtype=torch.long)]).to(self.device)
        total = len(y)
        g = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(total, self.latent, generator=g).to(self.device)
        xs, pis, pws = [], [], []
        for i in range(0, total, 1024):
            x, _, pi, pw = self.generate(z[i:i + 1024], y[i:i + 1024])
            xs.append(x.cpu())
            if pi is not None:
                pis.append(pi.cpu()), pws.append(pw.cpu())
        if not self.convex:
            return {"x": torch.cat(xs).numpy() if xs else np.zeros((0, self.feat_dim), np.float32),
                    "y": y.cpu().numpy()}
        if not xs:
            k = min(TOP_PARENTS, min(self.G.block_sizes))
            return {"x": np.zeros((0, self.feat_dim), np.float32), "y": np.zeros(0, np.int64),
                    "parent_idx": np.zeros((0, k), np.int64), "parent_w": np.zeros((0, k), np.float32)}
        return {"x": torch.cat(xs).numpy(), "y": y.cpu().numpy(),
                "parent_idx": torch.cat(pis).numpy(), "parent_w": torch.cat(pws).numpy()}

    def balancing_samples(self, seed: int) -> dict[str, np.ndarray] | None:
        need = {c: int(self.counts.max() - self.counts[c]) for c in self.minority}
        if sum(need.values()) == 0:
            return None
        return self.sample(need, seed)

    def optimizers(self):
        opts = super().optimizers()
        opts["G"] = self.opt_g
        return opts

    def modules(self):
        mods = super().modules()
        mods["G"] = self.G
        if self.use_d:
            mods["D"] = self.D
        return mods

    def _extra_state(self) -> dict[str, Any]:
        return {"z_fixed": self.z_fixed.cpu()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        if "z_fixed" in extra:
            self.z_fixed = extra["z_fixed"].to(self.device)


class GamoNoD(Gamo):
    """GAMO\\D: the same game without the discriminator (M and G only)."""

    name = "gamo_no_d"
    players = ("M", "G")
    use_d = False


class UnconstrainedGenerator(torch.nn.Module):
    """cG: a conditional generator that outputs a point directly (no convex constraint).

    (z, one-hot class) -> two LeakyReLU layers -> d outputs; tanh when the data lives in [-1, 1]
    (image pixels, F's tanh features), linear otherwise (2D toys, tables).
    """

    def __init__(self, latent: int, n_classes: int, hidden: int, d: int, bounded: bool) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.onehot = OneHot(n_classes)
        layers = [torch.nn.Linear(latent + n_classes, hidden), torch.nn.LeakyReLU(0.1),
                  torch.nn.Linear(hidden, hidden), torch.nn.LeakyReLU(0.1), torch.nn.Linear(hidden, d)]
        if bounded:
            layers.append(torch.nn.Tanh())
        self.net = torch.nn.Sequential(*layers)

    def forward(self, z, y, members=None, need_weights: bool = False, frozen: int = 0):
        x = self.net(torch.cat([z, self.onehot(y).to(z.dtype)], dim=1))
        if frozen:   # the first rows detached, as ConvexGenerator does
            x = torch.cat([x[:frozen].detach(), x[frozen:]])
        return x, None


class CGCN(GamoNoD):
    """cG+CN (Section 4's ablation): GAMO's game with an unconstrained conditional generator, no D."""

    name = "cg"
    convex = False

    def _make_generator(self, sizes):
        mc = self.cfg.model
        bounded = self.family == "conv" or self.cfg.data.dataset in ("digits", "mnist", "fashion-mnist", "cifar10", "svhn")
        return UnconstrainedGenerator(mc.latent, self.n_classes, mc.g_hidden, self.feat_dim, bounded)


class CGDCN(Gamo):
    """cG+D+CN: the unconstrained conditional generator, with GAMO's conditional discriminator."""

    name = "cg_d"
    convex = False
    _make_generator = CGCN._make_generator
