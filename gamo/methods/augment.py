"""Augment+CN (Section 4): the training set is balanced with augmented copies of minority images
(torchvision's RandomAffine: rotation up to 10 degrees, shifts up to 10%, scale 0.9-1.1; no flips,
which would change digits), made once before training; then CN trains on it as Baseline CN does.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gamo.errors import ConfigError
from gamo.methods.base import Method


class AugmentCN(Method):
    name = "augment"

    def __init__(self, cfg, data, device) -> None:
        if data.kind != "image":
            raise ConfigError("method augment: Augment+CN transforms images; choose it for digits, "
                              "MNIST, Fashion-MNIST, CIFAR10 or SVHN (or use smote for 2D and tables)")
        super().__init__(cfg, data, device)
        from torchvision.transforms import v2

        torch.manual_seed(cfg.train.seed + 1)  # the transforms draw from torch's global generator
        affine = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
        images = torch.as_tensor(data.x_train)                       # (n, C, H, W) in [-1, 1]
        rng = np.random.default_rng(cfg.train.seed)
        n_max = int(self.counts.max())
        new_x, new_y = [], []
        for c in self.minority:
            members = np.flatnonzero(data.y_train == c)
            pick = rng.choice(members, size=n_max - len(members), replace=True)
            # background is -1: shift to [0, 2] so the transform's zero fill is background
            new_x += [affine(images[i] + 1.0) - 1.0 for i in pick]
            new_y += [c] * len(pick)
        if new_x:
            x_new = torch.stack(new_x).to(device)
            if self.family == "dense":
                x_new = x_new.reshape(len(x_new), -1)
            else:
                x_new = x_new.contiguous(memory_format=torch.channels_last)
            self.fit_x = torch.cat([self.x_train, x_new])
            self.fit_y = torch.cat([self.y_train, torch.as_tensor(new_y, dtype=torch.long, device=device)])
        self.n_augmented = len(new_y)
        self.iters_per_phase = max(1, math.ceil(len(self.fit_y) / self.batch))

    def balancing_samples(self, seed: int):
        if self.n_augmented == 0:
            return None
        x = self.fit_x[self.n:]
        return {"x": x.reshape(len(x), -1).cpu().numpy(), "y": self.fit_y[self.n:].cpu().numpy()}
