"""Frozen, validated, JSON-able configuration of a run.

Defaults reproduce the paper's setup where the paper gives one (Adam 2e-4 with beta1 0.5,
batch 32, latent size 100, LS loss). Invalid values raise :class:`ConfigError` whose message
says which field to change and to what.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import os
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

MAX_SEED = 2**32 - 1
"""Largest seed (numpy's and torch's generators both take 0 .. 2**32-1)."""
MAX_PER_CLASS = 100_000
"""Largest ``n_per_class``, ``n_test_per_class`` and ``n_val_per_class``."""
MAX_CLASSES = 100
"""Largest ``n_classes`` of the toys with a free number of classes (blobs, spirals)."""
MAX_TOY_POINTS = 2_000_000
"""Largest number of toy points generated in all (classes x (train + test + validation))."""
MAX_THREADS = 1024
"""Largest ``threads`` a config may hold (the machine's own core count bounds it further)."""


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_seed(name: str, v: Any, *, negative_ok: bool = False) -> None:
    """Seeds must fit numpy's and torch's generators: a whole number in 0 .. MAX_SEED."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v > MAX_SEED or (v < 0 and not negative_ok):
        raise ConfigError(f"{name}: choose a whole number between 0 and {MAX_SEED} (got {v!r})")


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
        for name in ("n_test_per_class", "n_val_per_class"):
            if getattr(self, name) > MAX_PER_CLASS:
                raise ConfigError(f"{name}: choose at most {MAX_PER_CLASS:,} (got {getattr(self, name):,})")
        if self.n_per_class < 2:
            raise ConfigError("n_per_class: must be at least 2")
        if self.n_per_class > MAX_PER_CLASS:
            raise ConfigError(f"n_per_class: choose between 2 and {MAX_PER_CLASS:,} points per class "
                              f"(got {self.n_per_class:,})")
        if self.n_classes < 2:
            raise ConfigError("n_classes: a classification problem needs at least 2 classes")
        if self.n_classes > MAX_CLASSES:
            raise ConfigError(f"n_classes: choose between 2 and {MAX_CLASSES} (got {self.n_classes:,})")
        _check_seed("seed", self.seed, negative_ok=True)   # negative: a DataError when the data is loaded
        low = self.dataset.strip().lower()
        if low.startswith("toy:"):
            k = self.n_classes if low in ("toy:blobs", "toy:spirals") else 2
            total = k * (self.n_per_class + self.n_test_per_class + self.n_val_per_class)
            if total > MAX_TOY_POINTS:
                raise ConfigError(f"toy data: {k} classes x {self.n_per_class + self.n_test_per_class + self.n_val_per_class:,} "
                                  f"points (train + test + validation) is {total:,}, over {MAX_TOY_POINTS:,}: "
                                  f"lower n_per_class or n_classes")
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
        if not 0 <= self.threads <= MAX_THREADS:
            raise ConfigError(f"threads: choose 0 (torch's default) to the number of CPU cores (got {self.threads!r})")
        _check_seed("seed", self.seed)


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
        """A config from :meth:`to_dict`'s form (a run's ``config.json``). Anything else, a
        list, null, an unknown section or field, a value of the wrong type, raises
        :class:`ConfigError` naming it (never another exception)."""
        if not isinstance(d, dict):
            raise ConfigError(f"config: expected an object with data, model and train sections, "
                              f"got {_json_kind(d)}")
        unknown = set(d) - {"data", "model", "train"}
        if unknown:
            raise ConfigError(f"config: unknown section(s) {', '.join(sorted(map(str, unknown)))}")
        try:
            return cls(
                data=_build(DataConfig, d.get("data", {})),
                model=_build(ModelConfig, d.get("model", {})),
                train=_build(TrainConfig, d.get("train", {})),
            )
        except (TypeError, ValueError, AttributeError) as e:  # a value a check could not compare
            raise ConfigError(f"config: {e}") from None

    def replace(self, **sections: dict[str, Any]) -> "RunConfig":
        """Return a copy with fields of the named sections replaced, e.g. ``train={'steps': 5}``."""
        parts = {name: getattr(self, name) for name in ("data", "model", "train")}
        for name, changes in sections.items():
            if name not in parts:
                raise ConfigError(f"config: no section {name!r}")
            parts[name] = dataclasses.replace(parts[name], **changes)
        return RunConfig(**parts)


def _json_kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(v), "a number" if isinstance(v, numbers.Number) else type(v).__name__)


def _build(kind, values: dict[str, Any]):
    if not isinstance(values, dict):
        raise ConfigError(f"{kind.__name__}: expected an object of fields, got {_json_kind(values)}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"{kind.__name__}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    for name, v in values.items():   # the type of each field's default (JSON has no other types)
        want = type(fields[name].default)
        ok = (isinstance(v, bool) if want is bool else
              isinstance(v, int) and not isinstance(v, bool) if want is int else
              isinstance(v, (int, float)) and not isinstance(v, bool) if want is float else
              isinstance(v, want))
        if not ok:
            word = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(want, want.__name__)
            raise ConfigError(f"{kind.__name__}.{name}: expected {word}, got {_json_kind(v)} ({v!r:.40})")
    return kind(**values)
