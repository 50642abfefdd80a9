"""GAMO and GAMO\\D (Section 3, Algorithm 1), as the official code trains them.

One GAMO iteration on F's current features (held fixed during the phase):

* train classifier / discriminator (lines 7-11): M and D are updated on a real minibatch (D's
  targets smoothed to [0.9, 1]), then on a generated minibatch whose labels are drawn with
  probability proportional to (n_c - n_i) (D's targets in [0, 0.1]), generated with G in
  inference mode (batch norm on running statistics), as the official ``gen.predict`` does. M and
  D share one optimizer call per batch: their parameters are disjoint, so that is exactly two
  separate updates;
* train generator (lines 12-15): for each minority class in turn, ``ceil(b / K)`` points of that
  class; G (the cTMU and that class's IGU) is updated so that M predicts the ones' complement of
  the class, then, for GAMO, on the same noise so that D says "real" -- two updates per class,
  each with its own Adam state, as the official ``genP_mlp[i]`` and ``genP_dis[i]`` models.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.losses import classifier_loss, discriminator_loss, generator_vs_classifier_loss
from gamo.methods.base import Method, adam
from gamo.nets import ConvexGenerator, Discriminator, OneHot, glorot_
from gamo.snapshot import Generated

TOP_PARENTS = 5
D_SMOOTH = 0.1   # D's targets: real in [1 - D_SMOOTH, 1], generated in [0, D_SMOOTH] (official code)


def effective_parents(w: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of each row of convex weights (B, N) -> (B,): 1 for all weight on one member,
    n for weight spread evenly over n members."""
    ent = -(w * torch.log(w.clamp_min(1e-30))).sum(dim=1)
    return torch.exp(ent)


class Gamo(Method):
    """GAMO: convex generator G, classifier M and conditional discriminator D."""

    name = "gamo"
    players = ("M", "D", "G")
    convex = True
    use_d = True
    fm_trains_m = False   # Alg. 1 line 4: the F phase updates F with M held fixed

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
        # G's update against M and its update against D keep separate Adam states (official: one
        # compiled model each); each IGU is its own parameter group, so a class's update steps
        # only the cTMU and that class's IGU
        self.opt_g = adam(self._g_groups(), tc.beta1)
        self.opt_gd = adam(self._g_groups(), tc.beta1) if self.use_d else None
        if self.use_d:
            # M and D step at the same points of Alg. 1 (lines 9, 11): one optimizer, one backward
            self.D = Discriminator(self.feat_dim, self.n_classes, mc.hidden).to(device)
            self.opt_m = adam([("M", self.M.parameters(), tc.lr_m), ("D", self.D.parameters(), tc.lr_d)], tc.beta1)
        self._members_cache: torch.Tensor | None = None
        self._members_of: torch.Tensor | None = None
        self.minority_t = torch.as_tensor(self.minority, dtype=torch.long, device=device)
        gap = float(self.counts.max()) - self.counts[self.minority].astype(np.float64)
        self.p_md = torch.as_tensor(gap / gap.sum() if len(gap) else gap, dtype=torch.float32, device=device)
        # official: ceil(b / K) points per class in each G update (4 for b = 32, K = 10); at least
        # 2, so that the cTMU's batch norm has a batch
        self.g_points = max(2, math.ceil(self.batch / self.n_classes))
        # a fixed noise batch per minority class, so the same point can be followed across steps
        g = torch.Generator(device="cpu").manual_seed(tc.seed + 7919)
        m = tc.n_fixed
        self.z_fixed = torch.randn(m * len(self.minority), mc.latent, generator=g).to(device)
        self.y_fixed = self.minority_t.repeat_interleave(m)

    def _make_generator(self, sizes: list[int]) -> torch.nn.Module:
        mc = self.cfg.model
        return ConvexGenerator(mc.latent, self.n_classes, mc.g_hidden, sizes, self.minority, t_dim=mc.t_dim)

    def _g_groups(self) -> list[tuple[str, list, float]]:
        lr = self.cfg.train.lr_g
        if not isinstance(self.G, ConvexGenerator):
            return [("G", list(self.G.parameters()), lr)]
        return [("G", list(self.G.ctmu.parameters()), lr)] + [
            ("G", [w, c], lr) for w, c in zip(self.G.igu_w, self.G.igu_b)]

    def _extra_phases(self) -> list[tuple[str, int]]:
        return [("gamo", self.iters_per_phase)] if self.minority else []  # balanced data: Baseline CN

    # ------------------------------------------------------------------ one iteration
    def _members(self, fresh: bool = True) -> torch.Tensor:
        """Current features of the minority members, grouped by class block (N, d); cached
        until F changes. ``fresh=False``: those of the last F-frozen phase (``last_features``:
        no pass over the training set while F trains)."""
        feats = self.train_features() if fresh else self.last_features()
        if self._members_of is not feats:
            self._members_cache, self._members_of = feats[self.min_rows], feats
        return self._members_cache

    def _d_targets(self, n: int, real: bool) -> torch.Tensor:
        """D's smoothed targets: real in [0.9, 1], generated in [0, 0.1] (official code)."""
        u = torch.rand(n, generator=self.gen, device=self.device) * D_SMOOTH
        return 1.0 - u if real else u

    def _md_update(self, x: torch.Tensor, y: torch.Tensor, real: bool, train_m: bool,
                   train_d: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """One update of M (labels y) and D (real or generated, smoothed targets) on a batch."""
        total, lm, ld = 0.0, None, None
        if train_m:
            lm = classifier_loss(self.M(x), y, self.loss_kind)
            total = total + lm
        if train_d:
            ld = discriminator_loss(self.D(x, y), self._d_targets(len(y), real), self.loss_kind)
            total = total + ld
        self.opt_m.zero_grad(set_to_none=True)
        total.backward()
        self.opt_m.step()
        return lm, ld

    @torch.no_grad()
    def _generate_eval(self, z: torch.Tensor, y: torch.Tensor, members: torch.Tensor, need_weights: bool = False):
        """G's output in inference mode (batch norm on running statistics), G's mode restored."""
        was = self.G.training
        self.G.eval()
        try:
            return self.G(z, y, members, need_weights=need_weights)
        finally:
            self.G.train(was)

    def _generate_class(self, z: torch.Tensor, c: int, y: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """G(z | c) in training mode, for G's update of class c (y: c repeated)."""
        if isinstance(self.G, ConvexGenerator):
            return self.G.forward_class(z, c, members)
        return self.G(z, y, members)[0]

    def _step_phase(self, phase: str, players: set[str] | None) -> dict[str, torch.Tensor | float]:
        players = set(self.players) if players is None else players
        feats = self.train_features()
        members = self._members()
        b, dev, losses = self.batch, self.device, {}
        train_m = "M" in players
        train_d = self.use_d and "D" in players

        if train_m or train_d:
            # train classifier and discriminator on a real batch (line 9)
            idx = self._real_batch()
            lm_r, ld_r = self._md_update(feats[idx], self.y_train[idx], True, train_m, train_d)
            # ... and on a generated one, labels with p(i) ~ (n_c - n_i) (lines 10-11), G fixed
            z = torch.randn(b, self.latent, generator=self.gen, device=dev)
            yg = self.minority_t[torch.multinomial(self.p_md, b, replacement=True, generator=self.gen)]
            xg, _ = self._generate_eval(z, yg, members)
            lm_g, ld_g = self._md_update(xg, yg, False, train_m, train_d)
            if train_m:
                losses["M"] = (lm_r + lm_g).detach()
            if train_d:
                losses["D"] = (ld_r + ld_g).detach()

        # train generator (lines 12-15), class by class: M (just updated) should predict the ones'
        # complement of the class, then D should say real; M and D stay fixed
        if "G" in players:
            params = list(self.G.parameters())
            k, total = self.g_points, 0.0
            for c in self.minority:
                z = torch.randn(k, self.latent, generator=self.gen, device=dev)
                y = torch.full((k,), c, dtype=torch.long, device=dev)
                x = self._generate_class(z, c, y, members)
                loss = generator_vs_classifier_loss(self.M(x), y, self.loss_kind)
                self.opt_g.zero_grad(set_to_none=True)
                loss.backward(inputs=params)
                self.opt_g.step()
                total = total + loss.detach()
                if self.use_d:
                    x = self._generate_class(z, c, y, members)
                    loss = discriminator_loss(self.D(x, y), True, self.loss_kind)
                    self.opt_gd.zero_grad(set_to_none=True)
                    loss.backward(inputs=params)
                    self.opt_gd.step()
                    total = total + loss.detach()
            losses["G"] = total / max(1, len(self.minority))
        return losses

    # ------------------------------------------------------------------ what the UI and the store read
    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor, top: int = TOP_PARENTS, fresh: bool = True):
        """Generate for (z, y) with G in inference mode; returns points (B, d), full weights (B, N),
        top parent rows and weights. ``fresh=False`` combines the members' features of the last
        F-frozen phase (see :meth:`_members`)."""
        x, w = self._generate_eval(z, y, self._members(fresh), need_weights=True)
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
        """The fixed-noise batch as G makes it now, combining the members' features of the last
        F-frozen phase (conv family: while F trains in its phase, G, M and D wait, and the points
        are where that phase left them; ``features_step`` says which F)."""
        if not self.minority:
            return None
        x, w, pi, pw = self.generate(self.z_fixed, self.y_fixed, fresh=False)
        eff = None if w is None else effective_parents(w).cpu().numpy()
        self.M.eval()
        pred = self.M(x).argmax(dim=1)
        self.M.train()
        d = torch.sigmoid(self.D(x, self.y_fixed)).cpu().numpy() if self.use_d else None
        return Generated(
            x=x.cpu().numpy(), y=self.y_fixed.cpu().numpy(),
            parent_idx=None if pi is None else pi.cpu().numpy(),
            parent_w=None if pw is None else pw.cpu().numpy(), m_pred=pred.cpu().numpy(), d_real=d,
            eff_parents=eff, features_step=self.features_step if self.family == "conv" and self.convex else None,
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
        if self.opt_gd is not None:
            opts["GD"] = self.opt_gd
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
        self.net = glorot_(torch.nn.Sequential(*layers))

    def forward(self, z, y, members=None, need_weights: bool = False):
        return self.net(torch.cat([z, self.onehot(y).to(z.dtype)], dim=1)), None


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
