"""SMOTE+CN, BorderlineSMOTE+CN and ADASYN+CN (Section 4's SMOTE+CN, from imbalanced-learn).

The training set is oversampled to balance, then the classifier network trains on it. Dense
family: SMOTE runs once, on the flattened inputs. Conv family: F is trained on real images as in
Baseline CN, and after each F phase SMOTE runs on F's current features, then M trains on the
oversampled features (the same schedule as GAMO, with SMOTE in G's place).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gamo.errors import DataError
from gamo.methods.base import Method
from gamo.snapshot import Generated


class SmoteCN(Method):
    """Oversample with imbalanced-learn's SMOTE, then train CN on the balanced set."""

    name = "smote"
    sampler_name = "SMOTE"

    def __init__(self, cfg, data, device) -> None:
        super().__init__(cfg, data, device)
        self.k_neighbors = int(min(5, max(1, self.counts[self.counts > 0].min() - 1)))
        self._syn_x: torch.Tensor | None = None    # synthetic rows of the last resampling
        self._syn_y: torch.Tensor | None = None
        # real + synthetic rows, kept apart from fit_x: in the conv family fit_x must stay the images
        # that the F phase trains on, while these are features
        self._bal_x: torch.Tensor | None = None
        self._bal_y: torch.Tensor | None = None
        self._res_version = -1
        if self.family == "dense":
            self._resample()
            self.iters_per_phase = max(1, math.ceil(len(self._bal_y) / self.batch))

    def _sampler(self):
        import imblearn.over_sampling as ovs

        seed = self.cfg.train.seed
        if self.sampler_name == "ADASYN":
            return ovs.ADASYN(random_state=seed, n_neighbors=self.k_neighbors)
        if self.sampler_name == "BorderlineSMOTE":
            return ovs.BorderlineSMOTE(random_state=seed, k_neighbors=self.k_neighbors)
        return ovs.SMOTE(random_state=seed, k_neighbors=self.k_neighbors)

    def _resample(self) -> None:
        feats = self.train_features()
        x = feats.cpu().numpy()
        y = self.y_train.cpu().numpy()
        if len(np.unique(self.counts)) == 1:      # already balanced: nothing to add
            xs, ys = x, y
        else:
            try:
                xs, ys = self._sampler().fit_resample(x, y)
            except (ValueError, RuntimeError) as e:
                raise DataError(f"{self.sampler_name} could not oversample this data ({e}); "
                                "try SMOTE, or give the minority classes more points") from None
        n = len(y)
        self._bal_x = torch.as_tensor(np.asarray(xs, np.float32), device=self.device)
        self._bal_y = torch.as_tensor(np.asarray(ys, np.int64), device=self.device)
        self._syn_x, self._syn_y = self._bal_x[n:], self._bal_y[n:]
        self._res_version = self._f_updates

    def _extra_phases(self):
        return [("smote", self.iters_per_phase)] if self.family == "conv" else []

    def _train_m_on_balanced(self) -> dict[str, torch.Tensor]:
        if self._bal_x is None or (self.family == "conv" and self._res_version != self._f_updates):
            self._resample()
        idx = torch.randint(len(self._bal_y), (self.batch,), generator=self.gen, device=self.device)
        loss = self.real_loss(self.M(self._bal_x[idx]), self._bal_y[idx])
        self.opt_m.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_m.step()
        return {"M": loss.detach()}

    def _step_m(self):
        return self._train_m_on_balanced()

    def _step_phase(self, phase, players):
        return self._train_m_on_balanced()

    def generated(self) -> Generated | None:
        if self._syn_x is None or len(self._syn_y) == 0:
            return None
        m = self.cfg.train.n_fixed
        ys = self._syn_y.cpu().numpy()
        pick = np.concatenate([np.flatnonzero(ys == c)[:m] for c in np.unique(ys)])
        x = self._syn_x[torch.as_tensor(pick, device=self.device)]
        pred = self.predict(x, features=True).cpu().numpy()
        return Generated(x=x.cpu().numpy(), y=ys[pick], parent_idx=None, parent_w=None, m_pred=pred)

    def balancing_samples(self, seed: int):
        if self._syn_x is None:
            self._resample()
        if len(self._syn_y) == 0:
            return None
        return {"x": self._syn_x.cpu().numpy(), "y": self._syn_y.cpu().numpy()}


class BorderlineSmoteCN(SmoteCN):
    name = "borderline_smote"
    sampler_name = "BorderlineSMOTE"


class AdasynCN(SmoteCN):
    name = "adasyn"
    sampler_name = "ADASYN"
