"""GAMO as an imbalanced-learn sampler: ``GAMOSampler(...).fit_resample(X, y)``.

It trains GAMO (dense family: M, D and the convex G directly on the rows of X) and returns X
with generated rows appended, each a convex combination of real rows of its class. Usable inside
an ``imblearn.pipeline.Pipeline``; imbalanced-learn validates ``X``, ``y`` and
``sampling_strategy`` as for its own samplers.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from gamo.config import MAX_SEED, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.data.types import Dataset

_F32_MAX = float(np.finfo(np.float32).max)


class GAMOSampler(BaseOverSampler):
    """Oversample minority classes with GAMO's convex generator.

    Parameters
    ----------
    sampling_strategy : str, float, dict or callable
        As for imbalanced-learn's over-samplers (default ``"auto"``: every class up to the
        majority's size). Only classes smaller than the largest can be oversampled.
    steps : int
        GAMO iterations to train before sampling (at least 1).
    method : {"gamo", "gamo_no_d"}
    loss : {"ls", "ce"}
    hidden, latent : int
        Network width and latent size.
    batch_size : int
    lr : float
        Adam learning rate of the three players.
    random_state : int, RandomState instance or None
        Seeds training and sampling: an int in ``0 .. 2**32-1`` is the seed itself, a
        ``RandomState`` gives one (drawn at each ``fit_resample``), and None means 0, so that
        results repeat by default.
    device : str
        ``auto`` (CUDA when present), ``cpu`` or ``cuda``.

    Attributes
    ----------
    sampling_strategy_ : dict
        Number of rows generated per class (set by ``fit_resample``).
    parents_ : (n_generated, k) int array
        Row indices into X of each generated row's top convex parents.
    parent_weights_ : (n_generated, k) float array
    """

    _sampling_type = "over-sampling"
    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "steps": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"gamo", "gamo_no_d"})],
        "loss": [StrOptions({"ls", "ce"})],
        "hidden": [Interval(Integral, 1, 8192, closed="both")],
        "latent": [Interval(Integral, 1, 8192, closed="both")],
        "batch_size": [Interval(Integral, 1, 4096, closed="both")],
        "lr": [Interval(Real, 0, 1, closed="right")],
        "device": [str],
    }

    def __init__(self, *, sampling_strategy="auto", steps: int = 1000, method: str = "gamo", loss: str = "ls",
                 hidden: int = 64, latent: int = 32, batch_size: int = 32, lr: float = 1e-3,
                 random_state: int | None = None, device: str = "cpu") -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.steps = steps
        self.method = method
        self.loss = loss
        self.hidden = hidden
        self.latent = latent
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device

    def _fit_resample(self, X, y):
        from gamo.train import Trainer  # torch-heavy: imported when used

        if self.method not in ("gamo", "gamo_no_d"):
            raise ValueError(f"method must be 'gamo' or 'gamo_no_d', got {self.method!r}")
        sparse_format = None
        if sp.issparse(X):  # densify for the networks; hand back the same sparse format
            sparse_format, X = X.format, X.toarray()
        X = np.asarray(X)
        labels, y_idx = np.unique(y, return_inverse=True)
        if X.size and np.abs(X).max() > _F32_MAX:   # imbalanced-learn has refused NaN/inf already
            raise ValueError(f"X has values up to {float(np.abs(X).max()):.3g}, beyond float32's range "
                             f"(about 3.4e38) that GAMO trains in: rescale X first (e.g. StandardScaler)")
        x32 = X.reshape(len(X), -1).astype(np.float32)
        seed = self._seed()
        # rows are kept in the given order; a tiny test split (the data itself) feeds the snapshots
        data = Dataset(name="array", kind="table", x_train=x32, y_train=y_idx.astype(np.int64),
                       x_test=x32[:1], y_test=y_idx[:1].astype(np.int64),
                       class_names=tuple(str(c) for c in labels),
                       train_idx=np.arange(len(X)), test_idx=np.arange(1))
        cfg = RunConfig(
            data=DataConfig(dataset="array", profile="none", seed=seed),
            model=ModelConfig(family="dense", hidden=self.hidden, latent=self.latent, g_hidden=self.hidden),
            train=TrainConfig(method=self.method, loss=self.loss, steps=int(self.steps),
                              batch_size=self.batch_size, lr_m=self.lr, lr_d=self.lr, lr_g=self.lr,
                              seed=seed, device=self.device, snapshot_every=0),
        )
        tr = Trainer(cfg, data, with_grid=False)
        while not tr.finished:
            tr.step()
        index = {lab: i for i, lab in enumerate(labels)}
        counts = {index[lab]: int(n) for lab, n in self.sampling_strategy_.items() if n > 0}
        k = min(5, len(X))
        if not counts:
            self.parents_ = np.zeros((0, k), np.int64)
            self.parent_weights_ = np.zeros((0, k), np.float32)
            return (sp.csr_matrix(X).asformat(sparse_format) if sparse_format else X), y
        gen = tr.method.sample(counts, seed=seed + 1)
        if not np.isfinite(gen["x"]).all():
            raise ValueError(f"GAMO's training diverged ({int((~np.isfinite(gen['x'])).any(axis=1).sum())} "
                             f"generated rows are NaN/inf): rescale X (e.g. StandardScaler) or lower lr")
        self.parents_, self.parent_weights_ = gen["parent_idx"], gen["parent_w"]
        x_new = gen["x"].astype(X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64)
        y_new = labels[gen["y"]]
        x_res = np.concatenate([X.reshape(len(X), -1), x_new]).reshape((-1,) + X.shape[1:])
        if sparse_format:
            x_res = sp.csr_matrix(x_res).asformat(sparse_format)
        return x_res, np.concatenate([np.asarray(y), y_new])

    def _seed(self) -> int:
        """The training and sampling seed, after scikit-learn's ``random_state`` conventions."""
        rs = self.random_state
        if rs is None:
            return 0
        if isinstance(rs, Integral) and not isinstance(rs, bool):
            if not 0 <= rs <= MAX_SEED:
                raise ValueError(f"random_state must be between 0 and {MAX_SEED}, got {rs}")
            return int(rs)
        return int(check_random_state(rs).randint(MAX_SEED, dtype=np.int64))
