"""GAMO2pix (Section 5, Figure 5(a)): images from GAMO's samples in F's feature space.

With the convolutional family GAMO generates 512-dimensional vectors in the space of its feature
extractor F. GAMO2pix trains, per minority class, a VAE whose encoder is the run's *frozen* F
followed by trainable mean / log-variance layers, and whose decoder learns to map back to
images; a GAMO sample of the class is then decoded as ``decoder(mean(head(sample)))``. UI-free:
this module never imports Streamlit.

The API (what a page or a script uses)
--------------------------------------
``g = open_run(run_dir)``
    Rebuild the finished conv run (its data, checkpoint and F) and load the decoders stored in
    it (:class:`Gamo2pix`). A run without a convolutional F raises :class:`Gamo2pixError`
    with one line saying why. ``load_decoders(run_dir)`` is the same;
    :func:`decoder_status` reads only the decoder files (no data, no networks rebuilt).
``train_decoders(g, epochs=..., progress=callback, stop=threading.Event())``
    Train one decoder per minority class, class after class; ``progress(Progress)`` after each
    epoch; ``stop.set()`` ends it at the next minibatch with its state saved. Resumable: each
    class's decoder, optimizer, noise generator and position are saved in
    ``RUN/gamo2pix/decoder_c<class>.pt`` (state dicts, read back with ``weights_only=True``;
    atomic writes) every ``save_every`` seconds, at a stop and at the class's end, so calling
    it again continues exactly where it stopped (the same numbers as an uninterrupted run);
    finished classes are skipped, a larger ``epochs`` extends them. Decoders trained on
    another F (the run was continued since) are stale and retrained.
``decode_generated(g, cls, n, seed)`` -> :class:`Decoded`
    GAMO's samples of class ``cls`` (the same noise and points as ``method.sample({cls: n},
    seed)`` and :func:`gamo.audit.convex_samples`), decoded. Each sample keeps its full convex
    weights over the class's members *in the order G was trained with* (``members``: rows of
    the run's ``x_train``) and its heaviest parents (``parent_idx``: rows of ``x_train``, as
    the audit reports them), so a decoded image can be put beside its parents.
``interpolate(g, decoded, i, j, steps)`` -> :class:`Decoded`
    The segment between generated samples i and j: in F's space (default; every point is
    again a convex combination of the same members, weights mixed linearly) or in G's noise.
``reconstruct(g, cls, rows=None, split="train", n=8)`` -> :class:`Reconstruction`
    Real images of the class (training members or held-out test images) through F and the
    decoder: what the decoder can and cannot recover from F's features.
``frechet_table(g, n=1000, seed=0)`` -> dict
    Table 5's measure: per minority class, the Fréchet distance between the decoded GAMO
    samples and the class's held-out real images, in the feature space of the dataset's
    reference classifier (:mod:`gamo.reference`; not Inception's: the scale differs from the
    paper's), with the class's floor (as many held-out real samples) and the distances of the
    decoded members (reconstructions) and of the members themselves; means over classes.
``write_report(g, out_dir)``
    A PNG grid per class (decoded samples with their heaviest parent, an interpolation, real
    members beside their reconstructions) and ``gamo2pix.json`` with the Fréchet table: what
    ``python -m gamo gamo2pix --run DIR`` writes.

Where it departs from the official script (``fashion_mnist_gamo2pix_main.py``), see DESIGN.md
("GAMO2pix"): the member order (the official script redraws its shuffle, so G's weights meet
other members than they were trained on; here the members are the run's own rows in G's
order), the reparameterisation (``mu + exp(logvar / 2) * eps`` where the official samples with
``exp(logvar)`` but its KL term reads it as a log-variance), F's features precomputed once per
class (F is frozen: the same numbers, without a forward pass of F per minibatch), decoding from
the posterior mean by default (the official decodes a sampled z; :func:`frechet_table` reports
both), and a much shorter schedule
(``epochs`` passes over the class, at least ``min_steps`` updates, a higher learning rate) where
the official runs 25,000 minibatches per class.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gamo.errors import GamoError
from gamo.nets import Gamo2pixDecoder

__all__ = ["Gamo2pix", "Gamo2pixError", "ClassDecoder", "Decoded", "Reconstruction", "Progress", "TrainReport",
           "open_run", "load_decoders", "decoder_status", "train_decoders", "decode", "decode_generated",
           "interpolate", "reconstruct", "frechet_table", "write_report", "FOLDER", "REPORT_JSON",
           "EPOCHS", "MIN_STEPS", "BATCH", "LATENT", "LR", "BETA1"]

FOLDER = "gamo2pix"                 # inside the run folder
REPORT_JSON = "gamo2pix.json"
VERSION = 1
EPOCHS = 30          # passes over each class's members ...
MIN_STEPS = 300      # ... and at least this many minibatches per class (a 40-member class: 2 per epoch)
BATCH = 32           # official
LATENT = 100         # official latDim
LR = 1e-3            # official 2e-4 over 25,000 minibatches a class; see DESIGN.md for the measurement
BETA1 = 0.5          # official Adam(0.0002, 0.5)
SAVE_EVERY = 10.0    # seconds between checkpoints of a class's training
PAPER_TABLE5 = {"fashion-mnist": (0.75, 5.57), "svhn": (0.17, 0.59), "cifar10": (1.59, 2.96)}
"""The paper's Table 5 (FID of GAMO2pix, of cDCGAN) by dataset."""


class Gamo2pixError(GamoError):
    """A run GAMO2pix cannot work with, or a request it cannot answer (one line, what to do)."""


# ---------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Progress:
    """Where :func:`train_decoders` is: class ``cls`` (the ``index``-th of ``n_classes``),
    ``step`` of its ``steps`` minibatches, the last epoch's mean losses per image
    (``recon``: summed squared pixel error, ``kl``), and over every class ``done_steps`` of
    ``total_steps``."""

    cls: int
    index: int
    n_classes: int
    step: int
    steps: int
    epoch: int
    recon: float
    kl: float
    done_steps: int
    total_steps: int
    elapsed: float

    @property
    def fraction(self) -> float:
        return self.done_steps / self.total_steps if self.total_steps else 1.0


@dataclass
class ClassDecoder:
    """One class's decoder and its training state (``step`` of ``steps`` minibatches done)."""

    cls: int
    net: Gamo2pixDecoder
    step: int
    steps: int
    epochs: int
    history: list[list[float]]          # per epoch: [step, mean recon, mean kl]
    seconds: float
    stale: bool = False                 # trained on another F than the run's (the run went on)

    @property
    def done(self) -> bool:
        return not self.stale and self.step >= self.steps


@dataclass(frozen=True)
class Decoded:
    """Decoded feature vectors of one class (row i of every array is sample i).

    ``images`` (n, C, H, W) in [-1, 1]; ``features`` (n, d) the vectors decoded (F's space);
    ``z`` (n, latent) G's noise (None where not from G); ``weights`` (n, n_c) the convex
    weights over ``members`` (n_c rows of the run's ``x_train``, in the order G combines them),
    ``parent_idx`` / ``parent_w`` (n, k) the heaviest parents (rows of ``x_train``) and their
    weights, ``eff_parents`` (n,) exp(entropy) of the weights (all None for a generator without
    convex weights); ``t`` (n,) the position on an interpolation (None otherwise); ``seed``
    the noise seed (None where not drawn)."""

    cls: int
    images: np.ndarray
    features: np.ndarray
    z: np.ndarray | None
    weights: np.ndarray | None
    members: np.ndarray | None
    parent_idx: np.ndarray | None
    parent_w: np.ndarray | None
    eff_parents: np.ndarray | None
    t: np.ndarray | None = None
    seed: int | None = None

    @property
    def n(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class Reconstruction:
    """Real images of a class and their decodings through F: ``rows`` of the split's arrays
    (``"train"``: rows of ``x_train``; ``"test"``: of ``x_test``), ``real`` and ``decoded``
    (n, C, H, W), ``sse`` (n,) the summed squared pixel error of each."""

    cls: int
    split: str
    rows: np.ndarray
    real: np.ndarray
    decoded: np.ndarray
    sse: np.ndarray


@dataclass
class TrainReport:
    """What :func:`train_decoders` did: classes finished, whether it was stopped, per class
    ``{"steps", "seconds", "recon", "kl", "trained"}`` (``trained``: steps run in this call)."""

    classes: list[int]
    finished: list[int]
    stopped: bool
    elapsed: float
    per_class: dict[int, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- the run
def _f_digest(F: torch.nn.Module) -> str:
    """A short hash of F's weights: decoders trained on another F are stale."""
    h = hashlib.sha1()
    for k, v in sorted(F.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_config(run: Path):
    """The run's config; :class:`Gamo2pixError` when it cannot have a conv F."""
    from gamo.runs import load_config

    cfg = load_config(run)
    name = cfg.data.dataset.strip().lower()
    why = None
    if cfg.model.family == "dense":
        why = "was trained on flattened images (family dense): its samples are already pixels"
    elif not (name in ("mnist", "fashion-mnist", "cifar10", "svhn")):
        why = f"is on {cfg.data.dataset}, whose samples have no images to decode (only 28x28 and 32x32 image sets have a conv F)"
    if why:
        raise Gamo2pixError(f"{run} {why}; GAMO2pix needs a run with a convolutional F "
                            f"(python -m gamo train --dataset fashion-mnist --family conv ...)")
    return cfg


class Gamo2pix:
    """A conv run with its GAMO2pix decoders.

    Parameters
    ----------
    method : gamo.methods.base.Method
        The run's method, loaded (its F is frozen here: never trained).
    run_dir : path, optional
        Where the decoders are stored (``run_dir/gamo2pix``); None: kept in memory only.
    """

    def __init__(self, method: Any, run_dir: str | os.PathLike | None = None, *, latent: int = LATENT,
                 step: int | None = None) -> None:
        if getattr(method, "family", None) != "conv":
            where = f"{run_dir} " if run_dir else "this run "
            raise Gamo2pixError(f"{where}has no convolutional F (family {getattr(method, 'family', '?')}): its samples "
                                f"are already images or table rows; GAMO2pix needs a run with --family conv")
        self.method = method
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.latent = int(latent)
        self.run_step = int(method.step_count if step is None else step)
        self.image_shape = tuple(int(s) for s in method.x_train.shape[1:])
        self.feat_dim = int(method.feat_dim)
        self.f_digest = _f_digest(method.F)
        self.decoders: dict[int, ClassDecoder] = {}
        self.dataset = getattr(getattr(method, "cfg", None), "data", None)
        self._feats: torch.Tensor | None = None
        self._lock = threading.Lock()     # decoders are read by pages while a thread trains them
        self.trainer: Any = None          # the Trainer that rebuilt the run (open_run)
        self.class_names: tuple[str, ...] = ()
        if self.run_dir is not None:
            self.reload()

    # -- what the run offers
    @property
    def classes(self) -> list[int]:
        """The minority classes, the ones with a decoder each."""
        return list(self.method.minority)

    @property
    def folder(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / FOLDER

    def decoder_path(self, cls: int) -> Path | None:
        return None if self.folder is None else self.folder / f"decoder_c{int(cls)}.pt"

    def train_features(self) -> torch.Tensor:
        """F(x_train) with the run's F (N, d), computed once."""
        if self._feats is None:
            self._feats = self.method.train_features()
        return self._feats

    def class_rows(self, cls: int) -> np.ndarray:
        """The rows of ``x_train`` of class ``cls``, in the order G combines them (GAMO's IGU
        block for a minority class; ascending rows, as the method builds the blocks)."""
        self._check_class(cls, need_decoder=False)
        m = self.method
        G = getattr(m, "G", None)
        if hasattr(G, "block_sizes") and hasattr(m, "min_rows"):
            b = G._block_of[int(cls)]
            lo = G.block_starts[b]
            return m.min_rows[lo:lo + G.block_sizes[b]].cpu().numpy()
        return np.flatnonzero(m.y_train.cpu().numpy() == int(cls))

    def _check_class(self, cls: int, need_decoder: bool = True) -> None:
        if int(cls) not in self.classes:
            raise Gamo2pixError(f"class {cls} is not a minority class of this run (those are {self.classes})")
        if need_decoder and int(cls) not in self.decoders:
            raise Gamo2pixError(f"class {cls} has no trained decoder yet: train it first "
                                f"(python -m gamo gamo2pix --run {self.run_dir or 'RUN'})")

    # -- stored decoders
    def reload(self) -> None:
        """Read the stored decoders of this run (missing ones are left out; one trained on
        another F is loaded as ``stale``)."""
        if self.folder is None:
            return
        found = {}
        for c in self.classes:
            st = _read_state(self.decoder_path(c))
            if st is None:
                continue
            net = self._new_net()
            try:
                net.load_state_dict(st["decoder"])
            except (RuntimeError, KeyError, TypeError):
                continue                    # another shape (latent size, image shape): retrain
            found[c] = ClassDecoder(c, net, int(st["step"]), int(st["steps"]), int(st["epochs"]),
                                    [list(map(float, h)) for h in st["history"].tolist()],
                                    float(st["seconds"]), stale=st["f_digest"] != self.f_digest)
        with self._lock:
            self.decoders = found

    def _new_net(self) -> Gamo2pixDecoder:
        return Gamo2pixDecoder(self.feat_dim, self.image_shape, self.latent).to(self.method.device)

    # -- the API as methods (see the module's functions)
    def train(self, **kw: Any) -> TrainReport:
        return train_decoders(self, **kw)

    def decode(self, cls: int, features: Any, **kw: Any) -> np.ndarray:
        return decode(self, cls, features, **kw)

    def decode_generated(self, cls: int, n: int = 16, seed: int = 0, **kw: Any) -> Decoded:
        return decode_generated(self, cls, n, seed, **kw)

    def interpolate(self, decoded: Decoded, i: int, j: int, steps: int = 8, **kw: Any) -> Decoded:
        return interpolate(self, decoded, i, j, steps, **kw)

    def reconstruct(self, cls: int, rows: Sequence[int] | None = None, **kw: Any) -> Reconstruction:
        return reconstruct(self, cls, rows, **kw)

    def frechet_table(self, **kw: Any) -> dict[str, Any]:
        return frechet_table(self, **kw)


def open_run(run_dir: str | os.PathLike, *, data: Any = None, data_root: str | None = None,
             device: str | None = None) -> Gamo2pix:
    """Rebuild a stored conv run and load its decoders.

    Parameters
    ----------
    run_dir : path
        A run folder with a checkpoint (finished or stopped).
    data : gamo.data.types.Dataset, optional
        The run's data when already loaded (else read as ``python -m gamo sample`` reads it:
        image sets from ``data_root``, default the usual cache, never downloaded).
    device : str, optional
        ``cpu`` or ``cuda`` (default: the run's setting).

    Raises
    ------
    Gamo2pixError
        The run has no convolutional F.
    gamo.runs.RunError, gamo.errors.DataError
        A missing or damaged run, or its data cannot be read.
    """
    from gamo.cli import _sample_data
    from gamo.runs import check_indices, load_checkpoint
    from gamo.train import Trainer

    run = Path(run_dir)
    cfg = _check_config(run)
    state = load_checkpoint(run)
    cfg, loaded = _sample_data(run, cfg, data_root)
    if device:
        cfg = cfg.replace(train={"device": device})
    tr = Trainer(cfg, data=data if data is not None else loaded, state=state, with_grid=False)
    check_indices(run, tr.data)
    g = Gamo2pix(tr.method, run, step=tr.step_count)
    g.trainer, g.class_names = tr, tuple(tr.data.class_names)
    return g


def load_decoders(run_dir: str | os.PathLike, **kw: Any) -> Gamo2pix:
    """The run with its stored decoders (:func:`open_run`)."""
    return open_run(run_dir, **kw)


def _read_state(path: Path | None) -> dict[str, Any] | None:
    """A decoder file's state (``weights_only=True``), or None when missing or damaged."""
    if path is None or not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged or foreign file: trained again
        return None
    need = ("version", "decoder", "optimizer", "rng", "step", "steps", "epochs", "history", "f_digest", "seconds")
    if not isinstance(st, dict) or any(k not in st for k in need) or st["version"] != VERSION:
        return None
    return st


def decoder_status(run_dir: str | os.PathLike) -> dict[int, dict[str, Any]]:
    """Per class with a stored decoder: ``step``, ``steps``, ``epochs``, ``seconds``, the last
    epoch's ``recon`` and ``kl``, ``f_digest`` and ``run_step`` (the run's step whose F it was
    trained on). Reads only the decoder files (cheap: for a page's status line)."""
    out: dict[int, dict[str, Any]] = {}
    folder = Path(run_dir) / FOLDER
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("decoder_c*.pt")):
        st = _read_state(p)
        if st is None:
            continue
        hist = st["history"].tolist()
        out[int(st["cls"])] = {"step": int(st["step"]), "steps": int(st["steps"]), "epochs": int(st["epochs"]),
                               "seconds": float(st["seconds"]), "recon": hist[-1][1] if hist else None,
                               "kl": hist[-1][2] if hist else None, "f_digest": st["f_digest"],
                               "run_step": int(st["run_step"])}
    return dict(sorted(out.items()))


def _as_g2p(g: Gamo2pix | str | os.PathLike) -> Gamo2pix:
    return g if isinstance(g, Gamo2pix) else open_run(g)


# ---------------------------------------------------------------------------------- training
def vae_loss(net: Gamo2pixDecoder, f: torch.Tensor, x: torch.Tensor, eps: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(recon, kl), each averaged over the batch: recon the summed squared error per image
    (the official ``28*28*mean_squared_error``), kl the KL divergence of the posterior to N(0, I)."""
    xh, mu, logvar = net(f, eps)
    recon = (xh - x).square().flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)).mean()
    return recon, kl


def _epoch_order(seed: int, cls: int, epoch: int, n: int) -> torch.Tensor:
    """The minibatch order of one epoch of one class: a function of (seed, class, epoch), so a
    resumed training draws the same batches."""
    s = int(np.random.SeedSequence([int(seed), int(cls), int(epoch)]).generate_state(1)[0])
    return torch.randperm(n, generator=torch.Generator().manual_seed(s))


def steps_for(n: int, epochs: int, batch: int = BATCH, min_steps: int = MIN_STEPS) -> int:
    """Minibatches for a class of ``n`` members: ``epochs`` passes, at least ``min_steps``."""
    return max(int(epochs) * math.ceil(n / batch), int(min_steps)) if n else 0


def train_decoders(g: Gamo2pix | str | os.PathLike, classes: Sequence[int] | None = None, *,
                   epochs: int = EPOCHS, min_steps: int = MIN_STEPS, batch_size: int = BATCH, lr: float = LR,
                   seed: int = 0, progress: Callable[[Progress], None] | None = None,
                   stop: threading.Event | None = None, threads: int | None = 1, restart: bool = False,
                   save_every: float = SAVE_EVERY) -> TrainReport:
    """Train (or continue) the decoder of each minority class, class after class.

    Parameters
    ----------
    g : Gamo2pix or path
        The run (a folder is opened with :func:`open_run`).
    classes : sequence of int, optional
        Default: every minority class.
    epochs, min_steps : int
        A class gets ``max(epochs * ceil(n_c / batch_size), min_steps)`` minibatches. A stored
        decoder trained with fewer is continued to the new count; one with as many is skipped.
    batch_size, lr, seed : training settings (Adam with beta1 0.5, as the official code);
        ``seed`` fixes the minibatch order and the VAE's noise.
    progress : callable, optional
        ``progress(Progress)`` at the start of each class and after each epoch.
    stop : threading.Event, optional
        Set it to end the training at the next minibatch (the state is saved first).
    threads : int or None
        torch threads while training (process-wide; restored after). 1 by default: on a
        shared 2-core CPU two threads spin against other work (DESIGN.md). None: leave as is.
    restart : bool
        Train from scratch, ignoring stored decoders.
    save_every : float
        Seconds between saves of a class's state (also saved at a stop and at its end).

    Returns
    -------
    TrainReport
    """
    g = _as_g2p(g)
    classes = g.classes if classes is None else [int(c) for c in classes]
    for c in classes:
        g._check_class(c, need_decoder=False)
    if epochs < 0 or min_steps < 0 or batch_size < 1 or not lr > 0:
        raise Gamo2pixError("epochs and min_steps must be >= 0, batch_size >= 1 and lr > 0")
    rows = {c: g.class_rows(c) for c in classes}
    total = {c: steps_for(len(rows[c]), epochs, batch_size, min_steps) for c in classes}
    states = {c: (None if restart else _read_state(g.decoder_path(c))) for c in classes}
    for c, st in states.items():   # stale (another F) or other settings: from scratch
        if st is not None and (st["f_digest"] != g.f_digest or int(st["batch_size"]) != batch_size
                               or int(st["seed"]) != seed or int(st["latent"]) != g.latent):
            states[c] = None
    done0 = {c: min(int(states[c]["step"]), total[c]) if states[c] is not None else 0 for c in classes}
    grand, done_all = sum(total.values()), sum(done0.values())
    report = TrainReport(classes=list(classes), finished=[], stopped=False, elapsed=0.0)
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        feats_all = g.train_features()
        for index, c in enumerate(classes):
            if stop is not None and stop.is_set():
                report.stopped = True
                break
            r = torch.as_tensor(rows[c], device=g.method.device)
            f = feats_all[r].contiguous()                                   # (n_c, d): F is frozen
            x = g.method.x_train[r].contiguous()                            # (n_c, C, H, W) in [-1, 1]
            stopped, info = _train_class(g, c, f, x, total[c], epochs, batch_size, lr, seed, states[c], stop,
                                         save_every, progress, index, len(classes), done_all - done0[c], grand, t0)
            done_all += info["trained"]
            report.per_class[c] = info
            if stopped:
                report.stopped = True
                break
            report.finished.append(c)
    finally:
        if threads:
            torch.set_num_threads(old_threads)
    report.elapsed = time.perf_counter() - t0
    return report


def _train_class(g: Gamo2pix, c: int, f: torch.Tensor, x: torch.Tensor, steps: int, epochs: int, batch: int,
                 lr: float, seed: int, st: dict | None, stop: threading.Event | None, save_every: float,
                 progress: Callable[[Progress], None] | None, index: int, n_classes: int, done_before: int,
                 grand: int, t0: float) -> tuple[bool, dict[str, Any]]:
    from gamo.methods.base import adam

    n = len(f)
    per_epoch = math.ceil(n / batch)
    with torch.random.fork_rng(devices=[]):   # the initial weights: a function of (seed, class)
        torch.manual_seed(int(np.random.SeedSequence([int(seed), int(c), 3]).generate_state(1)[0]))
        net = g._new_net()
    opt = adam([("G2P", list(net.parameters()), lr)], BETA1)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(np.random.SeedSequence([int(seed), int(c), 7]).generate_state(1)[0]))
    step, history, seconds = 0, [], 0.0
    if st is not None:
        net.load_state_dict(st["decoder"])
        opt.load_state_dict(st["optimizer"])
        for group in opt.param_groups:       # a resumed training takes this call's learning rate
            group["lr"] = lr
        gen.set_state(st["rng"])
        step, seconds = int(st["step"]), float(st["seconds"])
        history = [list(map(float, h)) for h in st["history"].tolist()]
    start_step = step
    dev = f.device

    def save() -> None:
        if g.folder is None:
            return
        from gamo.runs import _atomic_write
        g.folder.mkdir(parents=True, exist_ok=True)
        state = {"version": VERSION, "cls": int(c), "decoder": net.state_dict(), "optimizer": opt.state_dict(),
                 "rng": gen.get_state(), "step": int(step), "steps": int(steps), "epochs": int(epochs),
                 "history": torch.tensor(history, dtype=torch.float64).reshape(-1, 3),
                 "f_digest": g.f_digest, "run_step": int(g.run_step), "n_members": int(n),
                 "batch_size": int(batch), "lr": float(lr), "seed": int(seed), "latent": int(g.latent),
                 "seconds": float(seconds + time.perf_counter() - t_class)}
        _atomic_write(g.decoder_path(c), lambda p: torch.save(state, p))

    def publish() -> None:
        with g._lock:
            g.decoders[c] = ClassDecoder(c, net, step, steps, epochs, list(history),
                                         seconds + time.perf_counter() - t_class)

    def report_progress() -> None:
        if progress is not None:
            last = history[-1] if history else [0, float("nan"), float("nan")]
            progress(Progress(c, index, n_classes, step, steps, step // per_epoch, last[1], last[2],
                              done_before + min(step, steps), grand, time.perf_counter() - t0))

    t_class = time.perf_counter()
    last_save = t_class
    sum_r = sum_k = 0.0
    cnt = 0
    order = None
    stopped = False
    net.train()
    report_progress()
    try:
        while step < steps:
            if stop is not None and stop.is_set():
                stopped = True
                break
            e, k = divmod(step, per_epoch)
            if order is None or k == 0:
                order = _epoch_order(seed, c, e, n).to(dev)
            idx = order[k * batch:(k + 1) * batch]
            eps = torch.randn(len(idx), g.latent, generator=gen).to(dev)
            recon, kl = vae_loss(net, f[idx], x[idx], eps)
            loss = recon + kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sum_r += float(recon.detach()) * len(idx)
            sum_k += float(kl.detach()) * len(idx)
            cnt += len(idx)
            step += 1
            if step % per_epoch == 0 or step == steps:
                history.append([float(step), sum_r / max(cnt, 1), sum_k / max(cnt, 1)])
                sum_r = sum_k = 0.0
                cnt = 0
                publish()
                report_progress()
            now = time.perf_counter()
            if now - last_save > save_every and step < steps:
                save()
                last_save = now
    except KeyboardInterrupt:
        save()
        publish()
        raise
    if step > start_step or st is None or int(st["steps"]) != steps:
        save()
    publish()
    last = history[-1] if history else [0, float("nan"), float("nan")]
    return stopped, {"steps": steps, "step": step, "trained": step - start_step,
                     "seconds": seconds + time.perf_counter() - t_class, "recon": last[1], "kl": last[2]}


# ---------------------------------------------------------------------------------- decoding
def _tensor(a: Any, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32) if not isinstance(a, torch.Tensor) else a,
                           dtype=torch.float32, device=device)


@torch.no_grad()
def decode(g: Gamo2pix, cls: int, features: Any, *, sample: bool = False, seed: int = 0,
           chunk: int = 1024) -> np.ndarray:
    """Images (n, C, H, W) in [-1, 1] from feature vectors (n, d) of class ``cls``: through
    the class's VAE head to the posterior mean (``sample``: a draw from the posterior, as the
    official script decodes) and its decoder."""
    g._check_class(cls)
    dec = g.decoders[int(cls)]
    f = _tensor(features, g.method.device).reshape(-1, g.feat_dim)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    out = []
    for i in range(0, len(f), chunk):
        part = f[i:i + chunk]
        eps = torch.randn(len(part), g.latent, generator=gen).to(part.device) if sample else None
        out.append(dec.net(part, eps)[0].cpu())
    if not out:
        return np.zeros((0, *g.image_shape), np.float32)
    return torch.cat(out).numpy()


def _parents(w: torch.Tensor, members: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from gamo.methods.gamo import TOP_PARENTS, effective_parents

    k = min(k or TOP_PARENTS, w.shape[1])
    pw, pi = torch.topk(w, k, dim=1)
    return members[pi].cpu().numpy(), pw.cpu().numpy(), effective_parents(w).double().cpu().numpy()


@torch.no_grad()
def _generate(g: Gamo2pix, cls: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """G's points for noise ``z`` of class ``cls`` and their weights over the class block only
    (B, n_c), in G's member order; None for an unconstrained generator."""
    m = g.method
    y = torch.full((len(z),), int(cls), dtype=torch.long, device=m.device)
    xs, ws = [], []
    for i in range(0, len(z), 1024):
        x, w, _, _ = m.generate(z[i:i + 1024], y[i:i + 1024])
        xs.append(x)
        if w is not None:
            b = m.G._block_of[int(cls)]
            lo = m.G.block_starts[b]
            ws.append(w[:, lo:lo + m.G.block_sizes[b]])
    x = torch.cat(xs) if xs else torch.zeros(0, g.feat_dim, device=m.device)
    return x, (torch.cat(ws) if ws else None)


@torch.no_grad()
def decode_generated(g: Gamo2pix | str | os.PathLike, cls: int, n: int = 16, seed: int = 0, *,
                     sample: bool = False, top: int = 5) -> Decoded:
    """Generate ``n`` samples of minority class ``cls`` with the run's G (fresh noise seeded by
    ``seed``: the points of ``method.sample({cls: n}, seed)``) and decode them.

    Each sample's weights are over the class's members in the order G was trained with
    (``members``, rows of ``x_train``): ``features[i] == weights[i] @ F(x_train[members])``.
    """
    g = _as_g2p(g)
    g._check_class(cls)
    m = g.method
    if not hasattr(m, "generate") or not hasattr(m, "latent"):
        raise Gamo2pixError(f"{m.name} generates no feature vectors to decode (GAMO and GAMO\\D do; "
                            f"reconstruct real images instead)")
    if n < 1:
        raise Gamo2pixError(f"ask for at least one sample (got {n})")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    z = torch.randn(int(n), m.latent, generator=gen).to(m.device)     # as Gamo.sample draws it
    x, w = _generate(g, cls, z)
    members = pi = pw = eff = None
    if w is not None:
        rows = torch.as_tensor(g.class_rows(cls), device=m.device)
        members = rows.cpu().numpy()
        pi, pw, eff = _parents(w, rows, top)
    return Decoded(cls=int(cls), images=decode(g, cls, x, sample=sample, seed=seed), features=x.cpu().numpy(),
                   z=z.cpu().numpy(), weights=None if w is None else w.cpu().numpy(), members=members,
                   parent_idx=pi, parent_w=pw, eff_parents=eff, seed=int(seed))


@torch.no_grad()
def interpolate(g: Gamo2pix, decoded: Decoded, i: int, j: int, steps: int = 8, *, space: str = "features",
                top: int = 5) -> Decoded:
    """``steps`` points from sample ``i`` to sample ``j`` of ``decoded`` (both ends included),
    decoded.

    ``space="features"``: the segment in F's space; each point is the convex combination of
    the same members with the weights mixed linearly (so it is a sample GAMO could make).
    ``space="noise"``: the segment in G's noise, each point generated by G (G's own path).
    """
    if space not in ("features", "noise"):
        raise Gamo2pixError(f"space: choose features or noise (got {space!r})")
    if steps < 2:
        raise Gamo2pixError(f"steps: at least 2 (the two ends), got {steps}")
    for k in (i, j):
        if not 0 <= int(k) < decoded.n:
            raise Gamo2pixError(f"sample {k} is not among the {decoded.n} decoded samples")
    cls, dev = decoded.cls, g.method.device
    t = torch.linspace(0, 1, int(steps), dtype=torch.float32, device=dev)[:, None]
    members = pi = pw = eff = None
    if space == "features":
        fa, fb = (_tensor(decoded.features[k], dev) for k in (i, j))
        x = (1 - t) * fa + t * fb
        z = None
        w = None
        if decoded.weights is not None:
            wa, wb = (_tensor(decoded.weights[k], dev) for k in (i, j))
            w = (1 - t) * wa + t * wb
    else:
        if decoded.z is None:
            raise Gamo2pixError("these samples carry no noise to interpolate: use space='features'")
        za, zb = (_tensor(decoded.z[k], dev) for k in (i, j))
        zt = (1 - t) * za + t * zb
        x, w = _generate(g, cls, zt)
        z = zt.cpu().numpy()
    if w is not None:
        rows = torch.as_tensor(decoded.members if decoded.members is not None else g.class_rows(cls), device=dev)
        members = rows.cpu().numpy()
        pi, pw, eff = _parents(w, rows, top)
    return Decoded(cls=cls, images=decode(g, cls, x), features=x.cpu().numpy(), z=z,
                   weights=None if w is None else w.cpu().numpy(), members=members, parent_idx=pi, parent_w=pw,
                   eff_parents=eff, t=t[:, 0].cpu().numpy())


@torch.no_grad()
def reconstruct(g: Gamo2pix | str | os.PathLike, cls: int, rows: Sequence[int] | None = None, *,
                split: str = "train", n: int = 8, seed: int = 0) -> Reconstruction:
    """Real images of class ``cls`` through F and the class's decoder.

    Parameters
    ----------
    rows : sequence of int, optional
        Rows of the split (``x_train`` or ``x_test``), all of class ``cls``; default ``n`` of
        the class's rows drawn with ``seed`` (all of them when ``n`` is 0 or more than there are).
    split : str
        ``"train"``: the class's members (what the decoder was trained on); ``"test"``: its
        held-out test images (never seen by F or the decoder).
    """
    g = _as_g2p(g)
    g._check_class(cls)
    m = g.method
    if split not in ("train", "test"):
        raise Gamo2pixError(f"split: choose train or test (got {split!r})")
    xs, ys = (m.x_train, m.y_train) if split == "train" else (m.x_test, m.y_test)
    y = ys.cpu().numpy()
    own = np.flatnonzero(y == int(cls))
    if rows is None:
        rows = own if not n or n >= len(own) else np.sort(np.random.default_rng(seed).choice(own, n, replace=False))
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(y)):
        raise Gamo2pixError(f"rows must be between 0 and {len(y) - 1} (rows of x_{split})")
    bad = rows[y[rows] != int(cls)] if len(rows) else rows
    if len(bad):
        raise Gamo2pixError(f"rows {bad[:5].tolist()} of x_{split} are not of class {cls}")
    r = torch.as_tensor(rows, device=m.device)
    real = xs[r]
    feats = g.train_features()[r] if split == "train" else m.features(real.contiguous(memory_format=torch.channels_last))
    dec = decode(g, cls, feats)
    real_np = real.contiguous().cpu().numpy()
    sse = ((dec - real_np) ** 2).reshape(len(rows), -1).sum(1).astype(np.float64)
    return Reconstruction(cls=int(cls), split=split, rows=rows, real=real_np, decoded=dec, sse=sse)


def recon_loss(g: Gamo2pix, cls: int) -> float:
    """Mean summed squared error per image of the decoded members of class ``cls`` (posterior
    mean): how well the decoder has learned its training set."""
    return float(reconstruct(g, cls, n=0).sse.mean())


# ---------------------------------------------------------------------------------- Table 5
def _frechet(ref: Any, images: np.ndarray, cls: int) -> float | None:
    from gamo.claims import frechet_from_moments

    if len(images) < 2:
        return None
    f = ref.features(images).astype(np.float64)
    mu, cov = ref.class_stats(int(cls))
    return frechet_from_moments(f.mean(0), np.cov(f, rowvar=False), mu, cov)


def reference_for(g: Gamo2pix, progress: Callable[[str, float], None] | None = None) -> Any:
    """The dataset's reference classifier (trained and cached first when there is none)."""
    from gamo.config import DataConfig
    from gamo.reference import get_reference

    return get_reference(DataConfig(dataset=g.method.cfg.data.dataset), progress=progress)


def frechet_table(g: Gamo2pix | str | os.PathLike, *, n: int = 1000, seed: int = 0, reference: Any = None,
                  classes: Sequence[int] | None = None) -> dict[str, Any]:
    """Table 5's measure for a run: per minority class with a decoder, ``frechet``, the Fréchet
    distance between ``n`` decoded GAMO samples and the class's held-out real images (their
    mean and covariance in the reference classifier's feature space, :mod:`gamo.reference`),
    each sample decoded from a draw of its posterior as the official script decodes
    (``frechet_mean``: from the posterior mean, as the grids show them); ``floor``, what ``n``
    held-out real images of the class get (the best to expect at that sample size; None when
    not recorded for ``n``); ``frechet_recon``, the decoded members (every real training
    image of the class through F and the decoder, posterior mean), and ``frechet_members``,
    the members themselves (the images GAMO's samples combine), each with ``n_members``
    samples. ``mean`` holds each measure's mean over the classes.
    """
    g = _as_g2p(g)
    ref = reference if reference is not None else reference_for(g)
    classes = [c for c in (g.classes if classes is None else classes) if c in g.decoders]
    rows = []
    for c in classes:
        dec = decode_generated(g, c, n, seed)
        drawn = decode(g, c, dec.features, sample=True, seed=seed)
        rec = reconstruct(g, c, n=0)
        rows.append({"cls": int(c), "n": int(n), "n_members": int(len(rec.rows)),
                     "frechet": _frechet(ref, drawn, c), "frechet_mean": _frechet(ref, dec.images, c),
                     "floor": ref.floor(int(c), int(n)),
                     "frechet_recon": _frechet(ref, rec.decoded, c), "frechet_members": _frechet(ref, rec.real, c),
                     "epochs": g.decoders[c].epochs, "steps": g.decoders[c].step, "stale": g.decoders[c].stale})
    mean = {}
    for k in ("frechet", "frechet_mean", "floor", "frechet_recon", "frechet_members"):
        v = [r[k] for r in rows if r[k] is not None]
        mean[k] = float(np.mean(v)) if v and len(v) == len(rows) else None
    names = list(getattr(ref, "class_names", []) or [])
    return {"dataset": g.method.cfg.data.dataset, "run_step": g.run_step, "n": int(n), "seed": int(seed),
            "classes": rows, "mean": mean,
            "class_names": names,
            "space": f"features of the reference classifier {getattr(ref, 'key', '')} ({ref.info.get('architecture', '')}), "
                     f"not Inception's: the scale differs from the paper's FID"}


# ---------------------------------------------------------------------------------- report
def write_report(g: Gamo2pix, out: str | os.PathLike | None = None, *, n: int = 16, seed: int = 0,
                 table: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``grid_c<class>.png`` per class with a decoder (``n`` decoded GAMO samples
    captioned with their heaviest parent's row and weight, an interpolation between the first
    two, then real members beside their reconstructions) and ``gamo2pix.json`` (``table``, the
    Fréchet table, and ``extra``) into ``out`` (default ``RUN/gamo2pix``). Returns
    ``{"pngs": [...], "json": path}``."""
    from gamo.audit import contact_sheet
    from gamo.runs import _write_text

    out = Path(out) if out is not None else (g.folder or Path(FOLDER))
    out.mkdir(parents=True, exist_ok=True)
    names = list(g.class_names)
    pngs = []
    for c in [c for c in g.classes if c in g.decoders]:
        dec = decode_generated(g, c, n, seed)
        ncols = 8
        imgs, labels = [], []
        for i in range(dec.n):
            imgs.append(dec.images[i])
            labels.append(f"gen {i}" + (f"\nr{dec.parent_idx[i, 0]} w{dec.parent_w[i, 0]:.2f}"
                                        if dec.parent_idx is not None else ""))
        while len(imgs) % ncols:
            imgs.append(np.ones(g.image_shape, np.float32))
            labels.append("")
        if dec.n >= 2:
            it = interpolate(g, dec, 0, 1, ncols)
            imgs += list(it.images)
            labels += [f"0->1 t={t:.2f}" for t in it.t]
        rec = reconstruct(g, c, n=ncols // 2, seed=seed)
        for k in range(len(rec.rows)):
            imgs += [rec.real[k], rec.decoded[k]]
            labels += [f"real r{rec.rows[k]}", f"decoded r{rec.rows[k]}"]
        name = f" ({names[c]})" if c < len(names) else ""
        d = g.decoders[c]
        title = (f"GAMO2pix, class {c}{name}: {dec.n} decoded GAMO samples (caption: heaviest parent row, weight), "
                 f"an interpolation in F's space, real members and their decodings. Decoder: {d.step} minibatches"
                 + (" (stale: trained on another F)" if d.stale else ""))
        pngs.append(contact_sheet(np.stack(imgs), labels, out / f"grid_c{c}.png", ncols=ncols, title=title))
    payload = {"run": str(g.run_dir) if g.run_dir else None, "run_step": g.run_step,
               "decoders": {str(c): {"step": d.step, "steps": d.steps, "epochs": d.epochs, "seconds": round(d.seconds, 2),
                                     "recon": d.history[-1][1] if d.history else None,
                                     "kl": d.history[-1][2] if d.history else None, "stale": d.stale}
                            for c, d in sorted(g.decoders.items())},
               "frechet": table, **(extra or {})}
    path = out / REPORT_JSON
    _write_text(path, json.dumps(payload, indent=1, default=float))
    return {"pngs": pngs, "json": path}
