"""CE and LS (least-squares, Section 3.4) forms of the three players' objectives.

M outputs logits; its "probabilities" are their softmax. D outputs a logit; its "real" score is
the sigmoid. The LS forms apply squared errors to those probabilities (eqs. 4-6); the CE forms
use cross-entropy on the same targets (eqs. 2-3).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F_


def one_hot_like(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``F.one_hot(y, K)`` in the logits' dtype and shape (B, K), by a scatter: a quarter of
    one_hot's cost for small batches on the CPU, and no bounds check that would sync a GPU."""
    return torch.zeros_like(logits).scatter_(1, y.unsqueeze(1), 1.0)


def classifier_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, reduction: str = "mean") -> torch.Tensor:
    """M's loss for labelled points (real or generated): L_i1..L_i4 (LS) or J_i1..J_i4 (CE).

    ``reduction="none"`` gives the per-point losses (B,) for methods that weight points.
    """
    if kind == "ce":
        return F_.cross_entropy(logits, y, reduction=reduction)
    target = one_hot_like(logits, y)
    if reduction == "none":
        return ((torch.softmax(logits, dim=1) - target) ** 2).sum(dim=1)
    # the sum over classes, averaged over points, as one fused op (fewer ops per iteration)
    return F_.mse_loss(torch.softmax(logits, dim=1), target, reduction="sum") / len(logits)


def generator_vs_classifier_loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """G's loss against M: M should predict the ones' complement of y (Alg. 1, line 14; L_i7, L_i8)."""
    target = 1.0 - one_hot_like(logits, y)
    if kind == "ce":
        return -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    return F_.mse_loss(torch.softmax(logits, dim=1), target, reduction="sum") / len(logits)


def discriminator_loss(logit: torch.Tensor, real: bool | torch.Tensor, kind: str) -> torch.Tensor:
    """D's loss with target 1 (real) or 0 (generated); also G's loss against D with target 1.

    ``real`` may also be a tensor of per-point targets (1 real, 0 generated) shaped like ``logit``.
    """
    if isinstance(real, torch.Tensor):
        target = real
    else:
        target = torch.ones_like(logit) if real else torch.zeros_like(logit)
    if kind == "ce":
        return F_.binary_cross_entropy_with_logits(logit, target)
    return F_.mse_loss(torch.sigmoid(logit), target)
