"""Frozen, validated, JSON-able configuration of a run.

Defaults reproduce the paper's setup where the paper gives one (Adam 2e-4 with beta1 0.5,
batch 32, latent size 100, LS loss). Invalid values raise :class:`ConfigError` whose message
says which field to change and to what.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from gamo.errors import ConfigError

METHODS = ("baseline", "gamo_no_d", "gamo", "cg", "cg_d", "augment", "dos", "cgan", "smote", "borderline_smote",
           "adasyn", "class_weighted", "logit_adjusted", "ldam_drw")
METHOD_LABELS = {
    "baseline": "Baseline CN", "gamo_no_d": "GAMO\\D", "gamo": "GAMO", "cg": "cG+CN", "cg_d": "cG+D+CN",
    "augment": "Augment+CN", "dos": "DOS", "cgan": "cGAN+CN",
    "smote": "SMOTE+CN", "borderline_smote": "BorderlineSMOTE+CN", "adasyn": "ADASYN+CN",
    "class_weighted": "Class-weighted CN", "logit_adjusted": "Logit-adjusted CN", "ldam_drw": "LDAM-DRW",
}
LOSSES = ("ls", "ce")
FAMILIES = ("auto", "dense", "conv")


@dataclass(frozen=True)
class DataConfig:
    """What data to load and how to unbalance it.

    Parameters
    ----------
    dataset : str
        ``toy:moons``, ``toy:circles``, ``toy:blobs``, ``toy:spirals``, ``toy:nonconvex``,
        ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``svhn``, or ``table:PATH``
        (a CSV or NPZ file).
    profile : str
        ``none`` (keep what is there; toys: ``n_per_class`` each), ``paper``
        (Section 4 counts; ``paper:max=N`` scales them to a largest class of N),
        ``exp:ir=R[,max=N]``, ``step:ir=R[,minority=K][,max=N]`` or
        ``counts:n0,n1,...`` (custom per-class counts in label order).
    n_test_per_class : int
        Size of the balanced test split per class (the paper uses 100).
    n_val_per_class : int
        Size of the balanced validation split per class (0: none), drawn from the training
        pool's rows the profile left unused (toys: generated apart), never from train or test.
        Where the smallest class has fewer unused rows, every class gets that many (recorded as
        ``meta["val_per_class"]``); none at all leaves the split empty. The run reports the
        test scores at the evaluated epoch with the best validation GM beside the last ones.
    seed : int
        Seeds toy generation and every subsampling.
    n_per_class : int
        Toy data: points generated per class before the profile subsamples them.
    n_classes : int
        Toy data with a free number of classes (blobs, spirals).
    noise : float
        Toy data: noise level.
    label_column : str
        Tables: the name of the label column (CSV header, or NPZ array name).
    data_root : str
        Where torchvision datasets live / are downloaded to.
    download : bool
        Allow torchvision to download when the files are missing.
    """

    dataset: str = "toy:moons"
    profile: str = "step:ir=10"
    n_test_per_class: int = 100
    n_val_per_class: int = 100
    seed: int = 0
    n_per_class: int = 1000
    n_classes: int = 2
    noise: float = 0.1
    label_column: str = "label"
    data_root: str = "~/.cache/gamo/data"
    download: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError("dataset: give a dataset name such as 'toy:moons' or 'fashion-mnist'")
        if self.n_test_per_class < 1:
            raise ConfigError("n_test_per_class: must be at least 1 (the paper uses 100)")
        if not isinstance(self.n_val_per_class, int) or self.n_val_per_class < 0:
            raise ConfigError(f"n_val_per_class: must be a whole number, 0 (no validation split) or more "
                              f"(default 100, like the test split); got {self.n_val_per_class!r}")
        if self.n_per_class < 2:
            raise ConfigError("n_per_class: must be at least 2")
        if self.n_classes < 2:
            raise ConfigError("n_classes: a classification problem needs at least 2 classes")
        if not 0.0 <= self.noise <= 5.0:
            raise ConfigError("noise: choose a value between 0 and 5")


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes. ``family='auto'`` picks conv for 28x28x1 / 32x32x3 images, else dense."""

    family: str = "auto"
    hidden: int = 256          # M's and D's first hidden layer; the second has half (official 256, 128)
    latent: int = 100          # l, the latent size of G
    g_hidden: int = 256        # the cTMU's first layer (official 256)
    t_dim: int = 64            # the cTMU's output t, the IGUs' input (official 64)
    feat_dim: int = 512        # conv F output size (dense-512 tanh in the paper's F)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"family: choose one of {', '.join(FAMILIES)} (got {self.family!r})")
        for name in ("hidden", "latent", "g_hidden", "t_dim", "feat_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1 or v > 8192:
                raise ConfigError(f"{name}: must be an integer between 1 and 8192 (got {v!r})")


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    ``steps`` counts iterations (one minibatch update of every player the phase trains);
    when ``steps`` is 0, ``epochs`` outer epochs of Algorithm 1 are run instead.
    """

    method: str = "gamo"
    loss: str = "ls"
    steps: int = 2000
    epochs: int = 0
    batch_size: int = 32
    lr_m: float = 2e-4
    lr_d: float = 2e-4
    lr_g: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    device: str = "auto"
    snapshot_every: int = 100   # iterations between snapshots (0: only at epoch ends and the end)
    n_fixed: int = 16           # fixed-noise generated points followed per minority class
    grid: int = 60              # 2D only: grid resolution for M's and D's maps
    threads: int = 0            # torch CPU threads (0: leave torch's choice)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method: choose one of {', '.join(METHODS)} (got {self.method!r})")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss: choose 'ls' or 'ce' (got {self.loss!r})")
        if self.steps < 0 or self.epochs < 0 or (self.steps == 0 and self.epochs == 0):
            raise ConfigError("steps/epochs: give a positive number of steps or of epochs")
        if not 1 <= self.batch_size <= 4096:
            raise ConfigError("batch_size: choose a value between 1 and 4096")
        for name in ("lr_m", "lr_d", "lr_g"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ConfigError(f"{name}: learning rate must be in (0, 1] (got {v!r})")
        if not 0 <= self.beta1 < 1:
            raise ConfigError("beta1: must be in [0, 1)")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError("device: choose auto, cpu or cuda")
        if self.snapshot_every < 0:
            raise ConfigError("snapshot_every: must be 0 or more")
        if not 1 <= self.n_fixed <= 1024:
            raise ConfigError("n_fixed: choose between 1 and 1024")
        if not 4 <= self.grid <= 400:
            raise ConfigError("grid: choose between 4 and 400")
        if self.threads < 0:
            raise ConfigError("threads: must be 0 (torch default) or more")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; ``asdict()`` is what the run store writes."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        try:
            return cls(
                data=_build(DataConfig, d.get("data", {})),
                model=_build(ModelConfig, d.get("model", {})),
                train=_build(TrainConfig, d.get("train", {})),
            )
        except TypeError as e:  # unknown keys
            raise ConfigError(f"config: {e}") from None

    def replace(self, **sections: dict[str, Any]) -> "RunConfig":
        """Return a copy with fields of the named sections replaced, e.g. ``train={'steps': 5}``."""
        parts = {name: getattr(self, name) for name in ("data", "model", "train")}
        for name, changes in sections.items():
            if name not in parts:
                raise ConfigError(f"config: no section {name!r}")
            parts[name] = dataclasses.replace(parts[name], **changes)
        return RunConfig(**parts)


def _build(kind, values: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{kind.__name__}: unknown field(s) {', '.join(sorted(unknown))}")
    return kind(**values)
