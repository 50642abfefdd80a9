"""Methods behind one protocol (:class:`gamo.methods.base.Method`)."""
from __future__ import annotations

import torch

from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.errors import ConfigError
from gamo.methods.base import Method
from gamo.methods.augment import AugmentCN
from gamo.methods.cgan import CGanCN
from gamo.methods.dos import DOS
from gamo.methods.gamo import CGCN, CGDCN, Gamo, GamoNoD
from gamo.methods.rivals import LDAMDRW, ClassWeighted, LogitAdjusted
from gamo.methods.smote import AdasynCN, BorderlineSmoteCN, SmoteCN

REGISTRY: dict[str, type[Method]] = {
    "baseline": Method, "gamo_no_d": GamoNoD, "gamo": Gamo, "cg": CGCN, "cg_d": CGDCN,
    "augment": AugmentCN, "dos": DOS, "cgan": CGanCN,
    "smote": SmoteCN, "borderline_smote": BorderlineSmoteCN, "adasyn": AdasynCN,
    "class_weighted": ClassWeighted, "logit_adjusted": LogitAdjusted, "ldam_drw": LDAMDRW,
}


def make_method(cfg: RunConfig, data: Dataset, device: torch.device) -> Method:
    """Build the method named by ``cfg.train.method`` on ``data`` (with ``data``'s validation
    split, for ``evaluate("val")``)."""
    try:
        kind = REGISTRY[cfg.train.method]
    except KeyError:
        raise ConfigError(f"method: choose one of {', '.join(REGISTRY)}") from None
    method = kind(cfg, data, device)
    method.set_validation(data.x_val, data.y_val)
    return method


__all__ = ["Method", "Gamo", "GamoNoD", "REGISTRY", "make_method"]
