"""cGAN+CN and cDCGAN+CN (Section 4): a conditional GAN is trained first (the first half of the
run's iterations), then it oversamples every minority class to the majority's size once, and CN
trains on the balanced set for the second half.

* Dense family (cGAN+CN): G and D have the sizes of GAMO's dense networks; G's output is
  tanh-bounded for image pixels, linear for 2D toys and tables.
* Conv family (cDCGAN+CN): a conditional DCGAN on the images (:class:`gamo.nets.ConvGenerator`,
  :class:`gamo.nets.ConvDiscriminator`), then F+M train on real + generated images. An epoch
  counts one F+M phase and one GAN phase (as GAMO's counts one F+M and one GAMO phase), so the
  GAN gets as many updates as GAMO's G and the classifier as many as Baseline CN's.
"""
from __future__ import annotations


import numpy as np
import torch

from gamo.losses import discriminator_loss
from gamo.methods.base import Method, adam
from gamo.methods.gamo import UnconstrainedGenerator
from gamo.nets import ConvDiscriminator, ConvGenerator, Discriminator
from gamo.snapshot import Generated


class CGanCN(Method):
    name = "cgan"
    players = ("M", "D", "G")

    def __init__(self, cfg, data, device) -> None:
        super().__init__(cfg, data, device)
        tc, mc = cfg.train, cfg.model
        self.latent = mc.latent
        if self.family == "conv":
            shape = tuple(data.image_shape)
            self.G = ConvGenerator(mc.latent, self.n_classes, shape).to(device)
            self.D = ConvDiscriminator(self.n_classes, shape).to(device)
        else:
            bounded = data.kind == "image"
            self.G = UnconstrainedGenerator(mc.latent, self.n_classes, mc.g_hidden, self.feat_dim, bounded).to(device)
            self.D = Discriminator(self.feat_dim, self.n_classes, mc.hidden).to(device)
        self.opt_g = adam([("G", self.G.parameters(), tc.lr_g)], tc.beta1)
        self.opt_d = adam([("D", self.D.parameters(), tc.lr_d)], tc.beta1)
        total = tc.steps if tc.steps else tc.epochs * self.steps_per_epoch
        self.gan_steps = total // 2
        self._balanced = False
        g = torch.Generator(device="cpu").manual_seed(tc.seed + 7919)
        self.minority_t = torch.as_tensor(self.minority, dtype=torch.long, device=device)
        self.z_fixed = torch.randn(tc.n_fixed * len(self.minority), mc.latent, generator=g).to(device)
        self.y_fixed = self.minority_t.repeat_interleave(tc.n_fixed)

    def _extra_phases(self):
        return [("gan", self.iters_per_phase)] if self.family == "conv" else []

    def phase_at(self, step: int):
        if step < self.gan_steps:
            return "gan", step
        if self.family == "conv":
            return "fm", (step - self.gan_steps) % self.iters_per_phase
        return "m", step - self.gan_steps

    def step(self, players=None):
        if self.step_count < self.gan_steps:
            losses = self._gan_step(players)
        else:
            if not self._balanced:
                self._oversample()
            phase, pos = self.phase_at(self.step_count)
            losses = self._step_fm(pos) if phase == "fm" else self._step_m()
        self.step_count += 1
        return losses

    def _gan_step(self, players) -> dict[str, torch.Tensor]:
        players = {"D", "G"} if players is None else players
        b, losses = self.batch, {}
        idx = self._real_batch()
        xr, yr = self.x_train[idx], self.y_train[idx]
        z = torch.randn(b, self.latent, generator=self.gen, device=self.device)
        xg, _ = self.G(z, yr)                  # fake points for the labels of the real batch
        # train discriminator
        if "D" in players:
            out = self.D(torch.cat([xr, xg.detach()]), torch.cat([yr, yr]))
            loss_d = discriminator_loss(out[:b], True, self.loss_kind) + discriminator_loss(out[b:], False, self.loss_kind)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            losses["D"] = loss_d.detach()
        # train generator
        if "G" in players:
            loss_g = discriminator_loss(self.D(xg, yr), True, self.loss_kind)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=list(self.G.parameters()))
            self.opt_g.step()
            losses["G"] = loss_g.detach()
        return losses

    @torch.no_grad()
    def _generate(self, counts: dict[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in counts.items()] or
                      [torch.zeros(0, dtype=torch.long)]).to(self.device)
        g = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(len(y), self.latent, generator=g).to(self.device)
        self.G.eval()  # batch norm on its running statistics: a sample does not depend on its batch
        x = torch.cat([self.G(z[i:i + 1024], y[i:i + 1024])[0] for i in range(0, len(y), 1024)]) if len(y) \
            else torch.zeros((0, *self.x_train.shape[1:]), device=self.device)
        self.G.train()
        return x, y

    def _oversample(self) -> None:
        need = {c: int(self.counts.max() - self.counts[c]) for c in self.minority}
        x, y = self._generate(need, self.cfg.train.seed + 1)
        self.fit_x, self.fit_y = torch.cat([self.x_train, x]), torch.cat([self.y_train, y])
        if self.family == "conv":
            self.fit_x = self.fit_x.contiguous(memory_format=torch.channels_last)
        self._balanced = True

    def balancing_samples(self, seed: int):
        need = {c: int(self.counts.max() - self.counts[c]) for c in self.minority}
        if not need:
            return None
        x, y = self._generate(need, seed)
        if self.family == "conv":  # the conv family's samples live in F's feature space, as GAMO's do
            x = self.features(x)
        return {"x": x.cpu().numpy(), "y": y.cpu().numpy()}

    @torch.no_grad()
    def generated(self) -> Generated | None:
        if not self.minority:
            return None
        self.G.eval()
        x, _ = self.G(self.z_fixed, self.y_fixed)
        self.G.train()
        d = torch.sigmoid(self.D(x, self.y_fixed))
        if self.family == "conv":  # shown where M sees them: in F's feature space
            x = self.features(x)
        pred = self.predict(x, features=True)
        return Generated(x=x.cpu().numpy(), y=self.y_fixed.cpu().numpy(), parent_idx=None, parent_w=None,
                         m_pred=pred.cpu().numpy(), d_real=d.cpu().numpy())

    @torch.no_grad()
    def d_real(self, feats):
        if self.family == "conv":  # D judges images, not F's features
            return None
        n, k = len(feats), self.n_classes
        ys = torch.arange(k, device=self.device).repeat_interleave(n)
        return torch.sigmoid(self.D(feats.repeat(k, 1), ys)).reshape(k, n).T

    def optimizers(self):
        return {**super().optimizers(), "G": self.opt_g, "D": self.opt_d}

    def modules(self):
        return {**super().modules(), "G": self.G, "D": self.D}

    def _extra_state(self):
        return {"balanced": torch.tensor(int(self._balanced))}

    def _load_extra_state(self, extra):
        if int(extra.get("balanced", torch.tensor(0))):
            self._oversample()
