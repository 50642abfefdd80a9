"""The reference classifier: the engine's measuring instrument for generated samples.

The Ablation Grid's claim measures (class fidelity, Fréchet distance) and GAMO2pix's Table-5
distances are taken in one space: the features of a classifier trained on the **balanced full
training set** of the dataset (every class cut to the size of the smallest), never on a run's
imbalanced subset, so that it judges every method's samples by the same yardstick.

* Images: two 3x3 convolutions (32, 64 channels, ReLU, 2x2 max pooling), a dense 128 ReLU layer
  (the feature space), a dense layer to the classes. Trained with Adam(1e-3), batch 128,
  ``IMAGE_EPOCHS`` epochs, or more for a small set (at least ``MIN_STEPS`` updates).
* 2D toys and tables: a dense 128-128 ReLU network (the second layer is the feature space),
  ``VECTOR_EPOCHS`` epochs (at least ``MIN_STEPS`` updates).

Accuracy is measured on the dataset's official test set (or, for a dataset with one pool, a
balanced fifth of it held out with seed 0) and written beside the weights with the architecture
and the training settings (``reference.json``); the weights are a state dict
(``reference.pt``, read with ``torch.load(weights_only=True)``), and ``stats.npz`` holds each
class's mean and covariance of held-out real features, which Fréchet distances compare against.

A reference is trained once and cached: first looked up under ``$GAMO_CACHE/reference`` (default
``~/.cache/gamo/reference``), then among the committed ones in ``bench/results/reference``, so a
fresh clone measures the committed Figure-4 runs without training anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gamo.config import DataConfig
from gamo.errors import DataError

__all__ = ["FEATURE_DIM", "Reference", "RefNet", "committed_dir", "cache_dir", "find_reference",
           "get_reference", "reference_key", "train_reference"]

VERSION = 1
FEATURE_DIM = 128
IMAGE_EPOCHS = 4
VECTOR_EPOCHS = 40
BATCH = 128
LR = 1e-3
MIN_STEPS = 1500      # small sets (digits: 11 batches an epoch) get more epochs, not an undertrained net
WEIGHTS, INFO, STATS = "reference.pt", "reference.json", "stats.npz"
FLOOR_SIZES = (16, 50, 100, 200, 500, 1000)
"""Sample sizes at which the Fréchet distance of held-out real samples to the class's statistics
is recorded (``floor_<n>``): the value a perfect generator would get with that many samples."""


def cache_dir() -> Path:
    """Where references trained on this machine are kept (``$GAMO_CACHE/reference``)."""
    return Path(os.environ.get("GAMO_CACHE", "~/.cache/gamo")).expanduser() / "reference"


def committed_dir() -> Path:
    """The references committed with the project's results."""
    return Path(__file__).resolve().parents[1] / "bench" / "results" / "reference"


def reference_key(cfg: DataConfig) -> str:
    """A folder name for the reference of ``cfg``'s dataset: the dataset name; toys add their
    generation settings, tables a hash of the file's bytes."""
    name = cfg.dataset.strip().lower()
    if name.startswith("toy:"):
        return f"toy-{name[4:]}-k{cfg.n_classes}-n{cfg.noise:g}"
    if name.startswith("table:"):
        path = Path(cfg.dataset.strip()[6:]).expanduser()
        try:
            digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
        except OSError as e:
            raise DataError(f"cannot read {path} for its reference classifier: {e.strerror or e}") from None
        return f"table-{digest}"
    return name


class RefNet(nn.Module):
    """The reference network; :meth:`features` is the space measures are taken in."""

    def __init__(self, n_classes: int, image_shape: tuple[int, int, int] | None, n_features: int) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape) if image_shape else None
        self.n_features = int(n_features)
        if self.image_shape:
            c, h, w = self.image_shape
            self.body = nn.Sequential(
                nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), FEATURE_DIM), nn.ReLU())
        else:
            self.body = nn.Sequential(nn.Linear(n_features, FEATURE_DIM), nn.ReLU(),
                                      nn.Linear(FEATURE_DIM, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, n_classes)

    def shape_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_shape:
            return x.reshape(len(x), *self.image_shape)
        return x.reshape(len(x), -1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.shape_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def describe(self) -> str:
        if self.image_shape:
            return ("conv3x3-32 ReLU maxpool2, conv3x3-64 ReLU maxpool2, dense-128 ReLU (features), "
                    "dense-classes")
        return "dense-128 ReLU, dense-128 ReLU (features), dense-classes"


@dataclass
class Reference:
    """A trained reference classifier and its held-out class statistics.

    ``features``/``predict_proba`` accept the engine's data scale (images in [-1, 1], flattened
    rows or (n, C, H, W)); they run on the CPU in batches without gradients.
    """

    key: str
    net: RefNet
    info: dict[str, Any]
    stats: dict[str, np.ndarray]
    path: Path | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.info.get("class_names", []))

    def _batches(self, x: Any, fn: Callable[[torch.Tensor], torch.Tensor], batch: int = 1024) -> np.ndarray:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        width = self.net.n_features
        if len(x) and int(np.prod(x.shape[1:])) != width:
            raise DataError(f"the reference classifier of {self.key} takes {width} values a sample, "
                            f"these have {int(np.prod(x.shape[1:]))}")
        self.net.eval()
        with torch.no_grad():
            out = [fn(x[i:i + batch]) for i in range(0, len(x), batch)]
        if not out:
            return np.zeros((0, 0), np.float32)
        return torch.cat(out).numpy()

    def features(self, x: Any) -> np.ndarray:
        """(n, FEATURE_DIM) float32 features of samples ``x``."""
        f = self._batches(x, self.net.features)
        return f.reshape(len(f), -1) if f.size else np.zeros((0, FEATURE_DIM), np.float32)

    def predict_proba(self, x: Any) -> np.ndarray:
        """(n, K) class probabilities."""
        return self._batches(x, lambda t: torch.softmax(self.net(t), dim=1))

    def predict(self, x: Any) -> np.ndarray:
        p = self.predict_proba(x)
        return p.argmax(1) if len(p) else np.zeros(0, np.int64)

    def class_stats(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of class ``c``'s held-out real features."""
        return self.stats["mean"][c], self.stats["cov"][c]

    def floor(self, c: int, n: int) -> float | None:
        """Fréchet distance of ``n`` held-out real samples of class ``c`` to the class's statistics
        (recorded at training for the sizes in FLOOR_SIZES); None for another size."""
        key = f"floor_{n}"
        return float(self.stats[key][c]) if key in self.stats and np.isfinite(self.stats[key][c]) else None


def _balanced(y: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``idx`` cut to the same count in every class (the smallest class's), seeded."""
    classes = np.unique(y[idx])
    n = min(int((y[idx] == c).sum()) for c in classes)
    keep = [np.sort(rng.permutation(idx[y[idx] == c])[:n]) for c in classes]
    return np.concatenate(keep)


def _source_splits(cfg: DataConfig):
    """(x_train, y_train, x_test, y_test, class_names, image_shape, kind) of the reference."""
    from gamo.data import load_source
    from gamo.data.split import to_float32

    src = load_source(cfg)
    rng = np.random.default_rng(0)
    if src.kind == "2d":     # toys: generate a large balanced sample
        from gamo.data.toy import make_toy
        toy = cfg.dataset.strip().lower()[4:]
        x, y, _ = make_toy(toy, 2000, cfg.n_classes, cfg.noise, np.random.SeedSequence([12345, 7]))
        xt, yt, _ = make_toy(toy, 500, cfg.n_classes, cfg.noise, np.random.SeedSequence([12345, 8]))
        return x, y, xt, yt, src.class_names, None, src.kind
    y = np.asarray(src.y)
    if src.single_pool:     # hold out a balanced fifth as the test split
        tr, te = [], []
        for c in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == c))
            cut = max(1, len(rows) // 5)
            te.append(rows[:cut]), tr.append(rows[cut:])
        tr_idx, te_idx = np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))
        x_all = src.x
        xtr, ytr = x_all[tr_idx], y[tr_idx]
        xte, yte = x_all[te_idx], y[te_idx]
    else:
        xtr, ytr, xte, yte = src.x, y, src.x_test, np.asarray(src.y_test)
    keep = _balanced(ytr, np.arange(len(ytr)), rng)
    xtr, ytr = xtr[keep], ytr[keep]
    return (to_float32(np.asarray(xtr)), ytr.astype(np.int64), to_float32(np.asarray(xte)),
            yte.astype(np.int64), src.class_names, src.image_shape, src.kind)


def _frechet_to_stats(f: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    from gamo.claims import frechet_from_moments
    return frechet_from_moments(f.mean(0), np.cov(f, rowvar=False) if len(f) > 1 else np.zeros_like(cov), mean, cov)


def train_reference(cfg: DataConfig, *, epochs: int | None = None, out_dir: Path | None = None,
                    progress: Callable[[str, float], None] | None = None, seed: int = 0) -> Reference:
    """Train the reference classifier of ``cfg``'s dataset and store it under ``out_dir``
    (default :func:`cache_dir`/key).

    Parameters
    ----------
    cfg : DataConfig
        The dataset (its profile and seed are ignored: the reference sees the balanced full set).
    epochs : int, optional
        Default ``IMAGE_EPOCHS`` for images, ``VECTOR_EPOCHS`` otherwise.
    progress : callable, optional
        ``progress(message, fraction)`` after every epoch.

    Raises
    ------
    DataError
        The dataset cannot be read (the message says how to get it).
    """
    t0 = time.perf_counter()
    key = reference_key(cfg)
    xtr, ytr, xte, yte, names, image_shape, kind = _source_splits(cfg)
    K = len(names)
    n_features = int(np.prod(xtr.shape[1:]))
    torch.manual_seed(seed)
    net = RefNet(K, image_shape, n_features)
    if not epochs:
        per_epoch = -(-len(ytr) // BATCH)
        epochs = max(IMAGE_EPOCHS if image_shape else VECTOR_EPOCHS, -(-MIN_STEPS // per_epoch))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    x_t, y_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    g = torch.Generator().manual_seed(seed)
    for ep in range(epochs):
        net.train()
        order = torch.randperm(len(x_t), generator=g)
        total = 0.0
        for i in range(0, len(order), BATCH):
            b = order[i:i + BATCH]
            loss = nn.functional.cross_entropy(net(x_t[b]), y_t[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        if progress:
            progress(f"reference classifier of {key}: epoch {ep + 1}/{epochs}, loss {total / len(order):.3f}",
                     (ep + 1) / epochs)
    ref = Reference(key=key, net=net, info={}, stats={})
    pred = ref.predict(xte)
    per_class = [float((pred[yte == c] == c).mean()) if (yte == c).any() else None for c in range(K)]
    # held-out class statistics: the real distribution generated samples are compared with
    feats = ref.features(xte)
    means = np.zeros((K, FEATURE_DIM)), np.zeros((K, FEATURE_DIM, FEATURE_DIM))
    stats: dict[str, np.ndarray] = {"mean": means[0], "cov": means[1]}
    rng = np.random.default_rng(1)
    for c in range(K):
        fc = feats[yte == c].astype(np.float64)
        if len(fc) > 1:
            stats["mean"][c], stats["cov"][c] = fc.mean(0), np.cov(fc, rowvar=False)
    # the floor: held-out *training* rows of the class (not used for the statistics) at each size
    ftr = ref.features(xtr)
    for n in FLOOR_SIZES:
        fl = np.full(K, np.nan)
        for c in range(K):
            rows = np.flatnonzero(ytr == c)
            if len(rows) >= n and (yte == c).sum() > 1:
                pick = rng.choice(rows, n, replace=False)
                fl[c] = _frechet_to_stats(ftr[pick].astype(np.float64), stats["mean"][c], stats["cov"][c])
        stats[f"floor_{n}"] = fl
    ref.stats = stats
    ref.info = {
        "version": VERSION, "key": key, "dataset": cfg.dataset, "kind": kind, "class_names": list(names),
        "image_shape": list(image_shape) if image_shape else None, "n_features": n_features,
        "architecture": net.describe(), "feature_dim": FEATURE_DIM,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "training": f"Adam(lr={LR}), batch {BATCH}, {epochs} epochs, cross-entropy, seed {seed}",
        "train_rows": int(len(ytr)), "train_per_class": int(len(ytr) // K),
        "test_rows": int(len(yte)), "test_accuracy": float((pred == yte).mean()),
        "test_per_class_accuracy": per_class, "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = Path(out_dir) if out_dir is not None else cache_dir() / key
    save_reference(ref, out)
    return ref


def save_reference(ref: Reference, out: Path) -> None:
    """Write ``reference.pt``, ``stats.npz`` and ``reference.json`` (the last: its presence marks
    a complete reference)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS + ".tmp")
    torch.save(ref.net.state_dict(), tmp)
    os.replace(tmp, out / WEIGHTS)
    with open(out / (STATS + ".tmp"), "wb") as f:
        np.savez(f, **{k: v.astype(np.float32) for k, v in ref.stats.items()})
    os.replace(out / (STATS + ".tmp"), out / STATS)
    (out / (INFO + ".tmp")).write_text(json.dumps(ref.info, indent=1))
    os.replace(out / (INFO + ".tmp"), out / INFO)
    ref.path = out


def load_reference(folder: Path) -> Reference:
    """Read a stored reference (weights with ``weights_only=True``).

    Raises
    ------
    DataError
        A damaged or foreign folder (the message names the file).
    """
    folder = Path(folder)
    try:
        info = json.loads((folder / INFO).read_text())
        shape = tuple(info["image_shape"]) if info.get("image_shape") else None
        net = RefNet(len(info["class_names"]), shape, int(info["n_features"]))
        net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
        with np.load(folder / STATS, allow_pickle=False) as z:
            stats = {k: z[k].astype(np.float64) for k in z.files}
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, EOFError, pickle.UnpicklingError) as e:
        raise DataError(f"the reference classifier in {folder} cannot be read ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); delete the folder to train it again") from None
    net.eval()
    return Reference(key=info.get("key", folder.name), net=net, info=info, stats=stats, path=folder)


def find_reference(cfg: DataConfig) -> Reference | None:
    """The stored reference of ``cfg``'s dataset (this machine's cache first, then the
    committed ones), or None."""
    key = reference_key(cfg)
    for root in (cache_dir(), committed_dir()):
        folder = root / key
        if (folder / INFO).is_file():
            ref = load_reference(folder)
            if ref.info.get("version") == VERSION:
                return ref
    return None


def get_reference(cfg: DataConfig, *, train: bool = True,
                  progress: Callable[[str, float], None] | None = None) -> Reference | None:
    """The stored reference of ``cfg``'s dataset, trained (and cached) first when there is none
    and ``train``; None when there is none and not ``train``."""
    ref = find_reference(cfg)
    if ref is None and train:
        ref = train_reference(cfg, progress=progress)
    return ref
