"""Cost-sensitive rivals users reach for today, on the same F and M as Baseline CN.

* class-weighted loss: each sample weighted by n / (K n_y), so every class carries equal weight;
* logit-adjusted loss (Menon et al., ICLR 2021): train on logits + tau * log(prior), predict with
  the plain logits (tau = 1);
* LDAM-DRW (Cao et al., NeurIPS 2019): a margin C / n_y^(1/4) (largest 0.5) subtracted from the
  true class's logit, on cosine logits scaled by s = 30 (the paper's normalised last layer), and
  deferred re-weighting: class-balanced weights (effective number, beta = 0.9999) switched on for
  the last third of training.

With ``--loss ls`` the class-weighted and logit-adjusted adjustments are applied before the softmax
of the least-squares loss. LDAM is a cross-entropy loss by definition and always uses it: on the
scaled cosine logits the least-squares form saturates (digits, 3,000 steps: test ACSA 0.32 with
LS against 0.82 with CE).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F_

from gamo.losses import classifier_loss, one_hot_like
from gamo.methods.base import Method, adam


def _weighted(per_sample: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (per_sample * w).sum() / w.sum()


def _loss_per_sample(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "ce":
        return F_.cross_entropy(logits, y, reduction="none")
    target = one_hot_like(logits, y)
    return ((torch.softmax(logits, dim=1) - target) ** 2).sum(dim=1)


class ClassWeighted(Method):
    """Baseline CN with each class's samples weighted inversely to the class's size."""

    name = "class_weighted"

    def __init__(self, cfg, data, device) -> None:
        super().__init__(cfg, data, device)
        counts = np.maximum(self.counts, 1).astype(np.float64)
        w = counts.sum() / (len(counts) * counts)
        self.class_w = torch.as_tensor(w, dtype=torch.float32, device=device)

    def real_loss(self, logits, y):
        return _weighted(_loss_per_sample(logits, y, self.loss_kind), self.class_w[y])


class LogitAdjusted(Method):
    """Logit-adjusted loss: the training logits are shifted by tau * log(class prior)."""

    name = "logit_adjusted"
    tau = 1.0

    def __init__(self, cfg, data, device) -> None:
        super().__init__(cfg, data, device)
        prior = np.maximum(self.counts, 1) / self.counts.sum()
        self.shift = torch.as_tensor(self.tau * np.log(prior), dtype=torch.float32, device=device)

    def real_loss(self, logits, y):
        return classifier_loss(logits + self.shift, y, self.loss_kind)


class LDAMDRW(Method):
    """LDAM margins on scaled cosine logits, with deferred class-balanced re-weighting."""

    name = "ldam_drw"
    max_margin, scale, beta, drw_from = 0.5, 30.0, 0.9999, 2 / 3

    def __init__(self, cfg, data, device) -> None:
        super().__init__(cfg, data, device)
        counts = np.maximum(self.counts, 1).astype(np.float64)
        m = 1.0 / counts ** 0.25
        self.margin = torch.as_tensor(m * (self.max_margin / m.max()), dtype=torch.float32, device=device)
        eff = (1.0 - self.beta ** counts) / (1.0 - self.beta)
        w = 1.0 / eff
        self.drw_w = torch.as_tensor(w * len(w) / w.sum(), dtype=torch.float32, device=device)
        tc = cfg.train
        self.total_steps = tc.steps if tc.steps else tc.epochs * self.steps_per_epoch
        # the normalised last layer: cosine logits between features and class weights
        last = self.M.net[-1]
        self.M.net[-1] = _NormedLinear(last.in_features, last.out_features).to(device)
        self.opt_m = adam([("M", self.M.parameters(), tc.lr_m)], tc.beta1)
        if self.opt_fm is not None:
            self.opt_fm = adam([("M", list(self.F.parameters()) + list(self.M.parameters()), tc.lr_m)], tc.beta1)

    def real_loss(self, logits, y):
        adjusted = self.scale * (logits - one_hot_like(logits, y) * self.margin[y].unsqueeze(1))
        per = _loss_per_sample(adjusted, y, "ce")   # LDAM is defined on cross-entropy
        if self.step_count >= self.drw_from * self.total_steps:   # deferred re-weighting
            return _weighted(per, self.drw_w[y])
        return per.mean()


class _NormedLinear(torch.nn.Module):
    """Cosine logits: normalised features times normalised class weights (Cao et al.)."""

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(d, k).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5))
        self.in_features, self.out_features = d, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F_.normalize(x, dim=1) @ F_.normalize(self.weight, dim=0)
