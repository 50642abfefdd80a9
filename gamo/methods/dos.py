"""DOS: Deep Over-sampling (Ando & Huang, ECML-PKDD 2017, arXiv 1704.07515).

DOS splits the network into an embedding f (every layer below the softmax layer; its output is
the "deep feature space") and the classification layer g. Each training input x_i of a minority
class is presented with its k in-class nearest neighbours in the deep feature space,
v_i1..v_ik = f(x_i1)..f(x_ik), and a random non-negative weight vector w_i (the "deep feature
overloading" (x_i, y_i, N_i, w_i)); the synthetic embedding target is the point sum_j w_ij v_ij of
the neighbours' span. The loss of one such instance is

    l_f = sum_{j=1..k} w_ij ||f(x_i) - v_ij||^2                          (micro-cluster loss)
    l_g = sum_{j=0..k} rho_ij L(g(v_ij), y_i),  v_i0 = f(x_i),
          rho_ij = exp(-w_ij ||f(x_i) - v_ij||) / sum_j' exp(-w_ij' ||f(x_i) - v_ij'||)
    loss = l_f + l_g

with L the run's classification loss (``--loss ls`` or ``ce``, :func:`gamo.losses.classifier_loss`).
So g is trained on the neighbours' embeddings too, and f on the input's own classification and on
its pull towards the neighbours' targets. The targets v_ij are fixed during an epoch: DOS
alternates "update the targets" (embed every training input with the current f, find each
minority input's neighbours) and "train the CNN" on the overloaded set; here the targets are
recomputed at the start of every F+M phase (conv family) or M phase (dense family), i.e. once per
outer epoch. Minority classes are over-sampled to balance: each epoch presents n_max overloaded
instances of every minority class (every member floor(n_max / n_i) times, the remainder drawn
without replacement: the paper's over-sampling rate r set to n_max / n_i), each presentation with
its own weight vector; majority members are presented once with the plain classification loss
(k = 0 for them).

The targets need a learned deep feature space: the first epoch (``warmup_epochs``) trains F and M
with the classification loss alone on the same balanced presentation, and the first targets come
from those networks. (From a freshly initialised network the micro-cluster loss pins the embedding
to its near-constant initial values: Fashion-MNIST, paper:max=200, 400 steps, LS, seed 0: test ACSA
0.29 without the warm-up epoch, 0.61 with it.)

On this engine's networks f is M's last hidden layer applied to F's features,
f(x) = M.net[:-1](F(x)), and g is M's output layer: DOS's g is a single softmax layer on the last
hidden layer, and the same split exists in both families (the dense family's F is the identity, so
M's hidden layer is its only learned embedding). Defaults: k = 5 neighbours per minority input
(capped at n_i - 1) for every minority class; the paper tunes k per class, and 5 is the
neighbourhood this engine's SMOTE uses. Weight vectors: |N(0, I_k)| normalised to sum to one, drawn per presentation
from the run's generator (so the convex target lies in the neighbours' span). rho is used as a
fixed weight (no gradient through it). See DESIGN.md's implementation notes for what is and is
not the paper's letter.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gamo.losses import classifier_loss
from gamo.methods.base import Method


class DOS(Method):
    """Deep Over-sampling: in-class neighbour targets in the deep feature space plus over-sampling."""

    name = "dos"
    k = 5                 # neighbours per minority input
    warmup_epochs = 1     # epochs of plain (balanced) training before the first targets
    chunk = 1024          # rows per torch.cdist block in the neighbour search

    def __init__(self, cfg, data, device) -> None:
        super().__init__(cfg, data, device)
        y_np = np.asarray(data.y_train)
        self.n_max = int(self.counts.max())
        self._members = {c: torch.as_tensor(np.flatnonzero(y_np == c), dtype=torch.long, device=device)
                         for c in range(self.n_classes) if self.counts[c] > 0}
        # each present class contributes n_max presentations per epoch (majority: its members once)
        self.n_balanced = self.n_max * len(self._members)
        self.iters_per_phase = max(1, -(-self.n_balanced // self.batch))
        self.embed: nn.Module = self.M.net[:-1]    # f after F: M's hidden layers (shares parameters)
        self.head: nn.Module = self.M.net[-1]      # g: the classification layer
        self._emb: torch.Tensor | None = None      # (n, h) f(x_train) at the last target update
        self._nbr: torch.Tensor | None = None      # (n, k) neighbour rows (self where unused)
        self._nbr_ok: torch.Tensor | None = None   # (n, k) which neighbour slots are real

    # ------------------------------------------------------------------ targets
    @torch.no_grad()
    def embeddings(self) -> torch.Tensor:
        """f(x_train) with the current networks (n, h)."""
        self.M.eval()
        feats = self.train_features()
        out = torch.cat([self.embed(feats[i:i + 4096]) for i in range(0, len(feats), 4096)])
        self.M.train()
        return out

    @torch.no_grad()
    def _update_targets(self) -> None:
        """Embed the training set and find each minority input's k in-class nearest neighbours."""
        emb = self.embeddings()
        n = len(emb)
        nbr = torch.arange(n, device=self.device).unsqueeze(1).repeat(1, self.k)
        ok = torch.zeros(n, self.k, dtype=torch.bool, device=self.device)
        for c in self.minority:
            rows = self._members[c]
            kc = min(self.k, len(rows) - 1)
            if kc < 1:
                continue
            e = emb[rows]
            for s in range(0, len(rows), self.chunk):
                d = torch.cdist(e[s:s + self.chunk], e)                       # (b, n_c)
                b = len(d)
                d[torch.arange(b, device=self.device), torch.arange(s, s + b, device=self.device)] = float("inf")
                near = d.topk(kc, dim=1, largest=False).indices               # (b, kc), nearest first
                nbr[rows[s:s + b], :kc] = rows[near]
                ok[rows[s:s + b], :kc] = True
        self._emb, self._nbr, self._nbr_ok = emb, nbr, ok

    def _new_epoch(self) -> None:
        """Balanced, shuffled presentation order of one epoch (rows of x_train)."""
        parts = []
        for c, rows in self._members.items():
            n_c = len(rows)
            if c in self.minority:
                parts.append(rows.repeat(self.n_max // n_c))
                extra = self.n_max % n_c
                if extra:
                    parts.append(rows[torch.randperm(n_c, generator=self.gen, device=self.device)[:extra]])
            else:
                parts.append(rows)
        order = torch.cat(parts)
        self._perm = order[torch.randperm(len(order), generator=self.gen, device=self.device)]

    # ------------------------------------------------------------------ loss and steps
    def dos_loss(self, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(l_f + l_g averaged over the batch, l_f averaged) for inputs ``x`` = x_train[rows]."""
        h = self.embed(self.F(x))                                   # (B, h) f(x_i)
        ok = self._nbr_ok[rows]                                     # (B, k)
        v = self._emb[self._nbr[rows]]                              # (B, k, h) fixed targets
        w = torch.randn(ok.shape, generator=self.gen, device=self.device).abs() * ok
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)         # rows without neighbours: all 0
        d2 = ((h.unsqueeze(1) - v) ** 2).sum(dim=2)                 # (B, k)
        l_f = (w * d2).sum(dim=1)                                   # micro-cluster loss
        with torch.no_grad():                                       # rho: a weight, not a path
            score = (-w * d2.clamp_min(0).sqrt()).masked_fill(~ok, float("-inf"))
            rho = torch.softmax(torch.cat([score.new_zeros(len(score), 1), score], dim=1), dim=1)  # (B, k+1)
        b, k = ok.shape
        logits = self.head(torch.cat([h, v.reshape(b * k, v.shape[2])]))    # g on f(x_i) and on each v_ij
        per = classifier_loss(logits, torch.cat([y, y.repeat_interleave(k)]), self.loss_kind, reduction="none")
        l_g = rho[:, 0] * per[:b] + (rho[:, 1:] * per[b:].reshape(b, k)).sum(dim=1)
        return (l_f + l_g).mean(), l_f.mean()

    @property
    def warming_up(self) -> bool:
        """True during the first ``warmup_epochs`` epochs (classification loss only, no targets)."""
        return self.step_count < self.warmup_epochs * self.steps_per_epoch

    def _step_dos(self, pos: int, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        warm = self.warming_up
        if pos == 0 or self._perm is None:
            if not warm:
                self._update_targets()
            self._new_epoch()
        elif not warm and self._emb is None:   # resumed from a checkpoint without targets: recompute
            self._update_targets()
        rows = self._perm[pos * self.batch:(pos + 1) * self.batch]
        x, y = self.x_train[rows], self.y_train[rows]
        self.F.train()
        if warm:
            loss = classifier_loss(self.M(self.F(x)), y, self.loss_kind)
            l_f = torch.zeros((), device=self.device)
        else:
            loss, l_f = self.dos_loss(x, y, rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if self.family == "conv":
            self._f_updates += 1
        return {"M": loss.detach(), "micro": l_f.detach()}

    def _step_fm(self, pos: int) -> dict[str, torch.Tensor]:
        return self._step_dos(pos, self.opt_fm)

    def _step_m(self) -> dict[str, torch.Tensor]:
        return self._step_dos(self.phase_at(self.step_count)[1], self.opt_m)

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        if self._emb is None:
            return {}
        return {"emb": self._emb.cpu(), "nbr": self._nbr.cpu(), "nbr_ok": self._nbr_ok.cpu()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        if "emb" in extra:
            self._emb = extra["emb"].to(self.device)
            self._nbr = extra["nbr"].to(self.device)
            self._nbr_ok = extra["nbr_ok"].to(self.device)
        else:
            self._emb = self._nbr = self._nbr_ok = None
