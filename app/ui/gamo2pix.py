"""The GAMO2pix page's logic: which stored runs it can open, the cDCGAN run of the same data, the
commands that make what is missing, the decoder trainings in the background, and the pictures.
Never calls Streamlit (the blocks are in :mod:`app.ui.gamo2pix_view`; the engine is
:mod:`gamo.gamo2pix`).

Runs come from the Runs page's roots (:func:`app.ui.runs_view.run_roots`: the user's runs folder
and the committed benchmark runs). The page lists the *finished* runs with a convolutional F of a
convex method (GAMO, GAMO\\D): the ones whose samples are F's features, made of real members,
that a decoder can turn into images. Training the decoders writes ``RUN/gamo2pix/decoder_c<k>.pt``
(derived files, like the Ablation Grid's figure files, so committed runs get them too).

:class:`DecoderTrainings` is one per server (the page keeps it in ``st.cache_resource``, as the
Ablation Grid keeps its job queue): a daemon thread trains one run's decoders at a time, in the
order asked, with :func:`gamo.gamo2pix.train_decoders` on the page's own
:class:`gamo.gamo2pix.Gamo2pix` object, so the decoders it publishes after each epoch are the ones
the page draws. A thread, not a process: decoding while it trains needs the same object, and
torch releases the interpreter lock in its kernels (one torch thread, as the engine measured).
"""
from __future__ import annotations

import os
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.ui import runs_view as rv
from gamo.config import METHOD_LABELS, RunConfig
from gamo.errors import GamoError
from gamo.runs import CHECKPOINT, load_config

__all__ = ["CONVEX", "CONV_SETS", "RunChoice", "Cdcgan", "choices", "is_conv", "unfit", "table1_command",
           "train_command", "remake_command", "find_cdcgan", "image_lab_query", "decoder_stamp", "TrainJob",
           "DecoderTrainings", "grid_image", "frechet_rows"]

CONVEX = ("gamo", "gamo_no_d")
"""The methods whose samples are convex combinations of real members in F's space."""
CONV_SETS = ("mnist", "fashion-mnist", "cifar10", "svhn")
"""The image sets a conv F is built for (28x28 grey, 32x32 colour)."""


# --------------------------------------------------------------------------------------------
# the runs
# --------------------------------------------------------------------------------------------
def is_conv(cfg: RunConfig) -> bool:
    """Whether the run has a convolutional F (``auto`` picks it for the four image sets)."""
    fam = cfg.model.family
    return fam == "conv" or (fam == "auto" and cfg.data.dataset.strip().lower() in CONV_SETS)


def unfit(cfg: RunConfig) -> str:
    """Why GAMO2pix cannot decode this run's samples ("" when it can)."""
    if not is_conv(cfg):
        return ("trained on flattened images (family dense): its samples are already pixels"
                if cfg.data.dataset.strip().lower() in CONV_SETS + ("digits",) else
                f"on {cfg.data.dataset}: no convolutional F")
    m = cfg.train.method
    if m not in CONVEX:
        return (f"{METHOD_LABELS.get(m, m)} makes no convex samples in F's space "
                "(GAMO2pix decodes GAMO's and GAMO\\D's)")
    return ""


@dataclass(frozen=True)
class RunChoice:
    """A finished run the page can offer (``why``: why it cannot be decoded, "" when it can)."""

    label: str
    path: Path
    root: rv.Root
    cfg: RunConfig
    why: str

    @property
    def method(self) -> str:
        return self.cfg.train.method

    @property
    def seed(self) -> int:
        return int(self.cfg.train.seed)

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    @property
    def title(self) -> str:
        return (f"{METHOD_LABELS.get(self.method, self.method)} · {self.cfg.data.dataset} · seed {self.seed} · "
                f"{self.label}")


def _config(path: Path) -> RunConfig | None:
    try:
        return load_config(path)
    except (GamoError, OSError, ValueError):
        return None


def choices(rows: Sequence[rv.RunRow], every: bool = False) -> list[RunChoice]:
    """The finished runs of ``rows`` that GAMO2pix can decode (``every``: the other finished
    runs too, each with the reason it cannot), the decodable ones first."""
    out = []
    for r in rows:
        if r.state != "finished":
            continue
        cfg = _config(r.path)
        if cfg is None:
            continue
        why = unfit(cfg)
        if why and not every:
            continue
        out.append(RunChoice(r.label, r.path, r.root, cfg, why))
    return sorted(out, key=lambda c: (bool(c.why), c.root.read_only, c.label))


# --------------------------------------------------------------------------------------------
# commands that make what is missing
# --------------------------------------------------------------------------------------------
def _identity(cfg: RunConfig) -> dict:
    from app.ui.ablation import identity

    return identity(cfg)


def _length(cfg: RunConfig) -> str:
    t = cfg.train
    return f"--steps {t.steps}" if t.steps else f"--epochs {t.epochs}"


def table1_command(cfg: RunConfig, method: str, root: str) -> str | None:
    """``python -m gamo bench table1 ...`` that trains this run's cell (with ``method``) under
    ``root``, or None when the run is not a table cell (its config is not the paper's protocol)."""
    from gamo.tables import TABLES, protocol

    d, t = cfg.data, cfg.train
    if d.dataset not in TABLES.get("table1", ()) + TABLES.get("table2", ()) or d.seed != t.seed:
        return None
    try:
        want = protocol(d.dataset, t.loss, t.seed, method, profile=d.profile, epochs=t.epochs or None,
                        steps=t.steps or None, test_per_class=d.n_test_per_class,
                        val_per_class=d.n_val_per_class, family=cfg.model.family)
    except GamoError:
        return None
    if _identity(want) != _identity(cfg.replace(train={"method": method})):
        return None
    table = "table1" if d.dataset in TABLES.get("table1", ()) else "table2"
    parts = ["python -m gamo bench", table, "--dataset", d.dataset, "--methods", method, "--seeds", str(t.seed),
             _length(cfg)]
    if t.loss != "ls":
        parts += ["--loss", t.loss]
    if d.profile != "paper":
        parts += ["--profile", shlex.quote(d.profile)]
    if d.n_test_per_class != 100:
        parts += ["--test-per-class", str(d.n_test_per_class)]
    if d.n_val_per_class != 100:
        parts += ["--val-per-class", str(d.n_val_per_class)]
    if cfg.model.family != "auto":
        parts += ["--family", cfg.model.family]
    return " ".join(parts + ["--root", shlex.quote(root)])


def train_command(cfg: RunConfig, method: str, out: str) -> str:
    """``python -m gamo train ...`` with the run's main settings and ``method`` (the others as
    in its config.json)."""
    d, t = cfg.data, cfg.train
    return (f"python -m gamo train --dataset {d.dataset} --profile {shlex.quote(d.profile)} --family conv "
            f"--method {method} --loss {t.loss} --seed {t.seed} {_length(cfg)} --out {shlex.quote(out)}")


def remake_command(choice: RunChoice, user_label: str) -> str:
    """How to get a checkpoint for a finished run that has none here (a committed run keeps only
    its config and scores): train the same run into the user's folder (the tables skip a
    finished cell, so not over the committed one)."""
    return (table1_command(choice.cfg, choice.method, user_label)
            or train_command(choice.cfg, choice.method, f"{user_label}/{choice.path.name}"))


@dataclass(frozen=True)
class Cdcgan:
    """The cDCGAN+CN run of a GAMO run's data and seed: ``path`` (None: none usable), its
    ``state`` (``ready``, ``training``, ``no checkpoint``, ``missing``) and the command that
    makes it."""

    path: Path | None
    state: str
    command: str
    label: str = ""


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(rv.ROOT))
    except ValueError:
        return str(p)


def find_cdcgan(choice: RunChoice, rows: Sequence[rv.RunRow]) -> Cdcgan:
    """The cDCGAN+CN conv run (method ``cgan``) of the same data, networks, training and seed
    as ``choice``, among ``rows`` (the Runs page's scan): a finished one with its checkpoint
    first, else one training now, else one without checkpoint."""
    from gamo.tables import store_name

    want = _identity(choice.cfg.replace(train={"method": "cgan"}))
    parent = choice.path.parent
    if parent.name == store_name(choice.cfg.data.dataset, choice.cfg.train.loss, choice.cfg.model.family):
        command = table1_command(choice.cfg, "cgan", _rel(parent.parent))
    else:
        command = None
    command = command or train_command(choice.cfg, "cgan", _rel(parent / f"cgan-seed{choice.seed}"))
    found: dict[str, rv.RunRow] = {}
    for r in rows:
        if r.info.method != "cgan" or r.state == "broken":
            continue
        cfg = _config(r.path)
        if cfg is None or not is_conv(cfg) or _identity(cfg) != want:
            continue
        kind = ("ready" if r.state == "finished" and (r.path / CHECKPOINT).is_file() else
                "training" if r.state == "running" else
                "no checkpoint" if r.state == "finished" else "")
        if kind and kind not in found:
            found[kind] = r
    for kind in ("ready", "training", "no checkpoint"):
        if kind in found:
            return Cdcgan(found[kind].path, kind, command, found[kind].label)
    return Cdcgan(None, "missing", command)


def image_lab_query(cfg: RunConfig) -> dict[str, str]:
    """The Image Lab's URL settings closest to the run (it trains live; it opens no stored run):
    the dataset, conv family, method, loss, seed and, when it is the paper's, the profile."""
    from app.ui.url_state import fmt

    q = {"data": cfg.data.dataset, "family": "conv", "method": cfg.train.method, "loss": cfg.train.loss,
         "seed": fmt(int(cfg.train.seed))}
    if cfg.data.profile == "paper":
        q["profile"] = "paper"
    return q


def decoder_stamp(run_dir: str | os.PathLike) -> tuple:
    """The decoder files' names and modification times: changes when anything trains them."""
    from gamo.gamo2pix import FOLDER

    try:
        entries = sorted(os.scandir(Path(run_dir) / FOLDER), key=lambda e: e.name)
    except OSError:
        return ()
    out = []
    for e in entries:
        if e.name.startswith("decoder_c") and e.name.endswith(".pt"):
            try:
                out.append((e.name, e.stat().st_mtime_ns))
            except OSError:
                continue
    return tuple(out)


# --------------------------------------------------------------------------------------------
# the decoder trainings
# --------------------------------------------------------------------------------------------
ACTIVE = ("queued", "running")


@dataclass
class TrainJob:
    """One run's decoder training: ``state`` queued, running, done, stopped or failed;
    ``per_class`` class -> [step, steps]; ``progress`` the engine's last
    :class:`gamo.gamo2pix.Progress`."""

    key: str
    label: str
    g: Any
    epochs: int
    min_steps: int
    restart: bool
    stop: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"
    per_class: dict[int, list[int]] = field(default_factory=dict)
    progress: Any = None
    message: str = ""
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def fraction(self) -> float:
        done = sum(min(s, t) for s, t in self.per_class.values())
        total = sum(t for _, t in self.per_class.values())
        return done / total if total else 0.0

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started


def planned_steps(g: Any, epochs: int, min_steps: int, restart: bool = False) -> dict[int, list[int]]:
    """Class -> [minibatches already done, minibatches in all] of a training with these settings
    (what :func:`gamo.gamo2pix.train_decoders` will do, as far as the page can tell)."""
    from gamo import gamo2pix as g2p

    out = {}
    for c in g.classes:
        steps = g2p.steps_for(len(g.class_rows(c)), epochs, g2p.BATCH, min_steps)
        d = None if restart else g.decoders.get(c)
        out[int(c)] = [0 if d is None or d.stale else min(int(d.step), steps), steps]
    return out


class DecoderTrainings:
    """The server's decoder trainings, one at a time in a daemon thread (submission order).

    Parameters
    ----------
    train : callable
        :func:`gamo.gamo2pix.train_decoders` (a stand-in in tests).
    threads : int
        torch threads while training (the engine's default: 1).
    """

    def __init__(self, train: Callable[..., Any] | None = None, threads: int = 1) -> None:
        if train is None:
            from gamo.gamo2pix import train_decoders as train
        self._train = train
        self._threads = threads
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainJob] = {}
        self._thread: threading.Thread | None = None

    def submit(self, key: str, label: str, g: Any, *, epochs: int, min_steps: int,
               restart: bool = False) -> TrainJob:
        """Queue a training of ``g``'s decoders (the active one of ``key`` when there is one)."""
        with self._lock:
            j = self._jobs.get(key)
            if j is not None and j.active:
                return j
            j = TrainJob(key, label, g, int(epochs), int(min_steps), bool(restart),
                         per_class=planned_steps(g, epochs, min_steps, restart))
            self._jobs[key] = j
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="gamo2pix-decoders", daemon=True)
                self._thread.start()
            return j

    def stop(self, key: str) -> bool:
        """Stop ``key``'s training at its next minibatch (its state saved), or drop it from the
        queue; False when it is not active."""
        with self._lock:
            j = self._jobs.get(key)
            if j is None or not j.active:
                return False
            j.stop.set()
            if j.state == "queued":
                j.state, j.message, j.ended = "stopped", "stopped before it started", time.monotonic()
            return True

    def get(self, key: str) -> TrainJob | None:
        with self._lock:
            return self._jobs.get(key)

    def active(self) -> list[TrainJob]:
        with self._lock:
            return sorted((j for j in self._jobs.values() if j.active), key=lambda j: j.submitted)

    def _next(self) -> TrainJob | None:
        with self._lock:
            queued = sorted((j for j in self._jobs.values() if j.state == "queued"), key=lambda j: j.submitted)
            if not queued:
                self._thread = None
                return None
            j = queued[0]
            j.state, j.started = "running", time.monotonic()
            return j

    def _loop(self) -> None:
        while True:
            j = self._next()
            if j is None:
                return
            self._run(j)

    def _run(self, j: TrainJob) -> None:
        order = list(j.per_class)              # the order the engine trains them in

        def progress(p: Any) -> None:
            c = int(p.cls)
            for before in order[:order.index(c) if c in order else 0]:
                j.per_class[before][0] = j.per_class[before][1]
            j.per_class[c] = [int(p.step), int(p.steps)]
            j.progress = p

        try:
            rep = self._train(j.g, epochs=j.epochs, min_steps=j.min_steps, progress=progress, stop=j.stop,
                              threads=self._threads, restart=j.restart)
        except GamoError as e:
            j.state, j.message = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - whatever breaks, the page says it and the thread goes on
            j.state, j.message = "failed", f"{type(e).__name__}: {str(e)[:300]}"
        else:
            stopped = bool(getattr(rep, "stopped", False))
            if not stopped:
                for v in j.per_class.values():
                    v[0] = v[1]
            j.state = "stopped" if stopped else "done"
            j.message = (f"stopped after {j.elapsed:.0f} s: train again to continue where it stopped" if stopped
                         else f"trained in {j.elapsed:.0f} s")
        j.ended = time.monotonic()


# --------------------------------------------------------------------------------------------
# pictures and tables
# --------------------------------------------------------------------------------------------
def _pil(img: np.ndarray, scale: int) -> Any:
    from PIL import Image

    a = np.clip((np.asarray(img, dtype=np.float32) + 1.0) / 2.0, 0.0, 1.0)
    a = (a * 255).round().astype(np.uint8)
    im = Image.fromarray(a[0], "L") if a.shape[0] == 1 else Image.fromarray(np.moveaxis(a[:3], 0, -1), "RGB")
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def grid_image(images: np.ndarray, ncols: int, *, scale: int = 3, selected: int | None = None,
               gap: int = 4) -> Any:
    """Images (n, C, H, W) in [-1, 1] in a grid of ``ncols`` columns on white, the ``selected``
    one framed in red; a PIL RGB image."""
    from PIL import Image, ImageDraw

    imgs = np.asarray(images, dtype=np.float32)
    n = len(imgs)
    c, h, w = imgs.shape[1:] if n else (1, 8, 8)
    ncols = max(1, min(ncols, n or 1))
    nrows = max(1, -(-n // ncols))
    tw, th = w * scale, h * scale
    sheet = Image.new("RGB", (ncols * (tw + gap) + gap, nrows * (th + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        x0, y0 = gap + (i % ncols) * (tw + gap), gap + (i // ncols) * (th + gap)
        if i == selected:
            draw.rectangle([x0 - gap, y0 - gap, x0 + tw + gap - 1, y0 + th + gap - 1], fill=(220, 30, 30))
        sheet.paste(_pil(imgs[i], scale).convert("RGB"), (x0, y0))
    return sheet


def frechet_rows(table: dict[str, Any], cdcgan: dict[int, float] | None = None,
                 class_names: Sequence[str] = ()) -> list[dict[str, Any]]:
    """:func:`gamo.gamo2pix.frechet_table`'s classes as the page's table (and cDCGAN's distance
    per class beside, when given), a row of means last."""
    def r(v: Any) -> float | None:
        return None if v is None else round(float(v), 2)

    rows = []
    for row in table.get("classes", []):
        c = int(row["cls"])
        rows.append({"class": f"{c}" + (f" ({class_names[c]})" if c < len(class_names) else ""),
                     "members": row.get("n_members"), "GAMO2pix": r(row.get("frechet")),
                     "GAMO2pix (posterior mean)": r(row.get("frechet_mean")),
                     **({"cDCGAN": r((cdcgan or {}).get(c))} if cdcgan is not None else {}),
                     "floor (real held-out)": r(row.get("floor")),
                     "reconstructions": r(row.get("frechet_recon")), "training images": r(row.get("frechet_members"))})
    if rows:
        mean = table.get("mean", {})
        cd = [v for v in (cdcgan or {}).values() if v is not None]
        rows.append({"class": "mean", "members": None, "GAMO2pix": r(mean.get("frechet")),
                     "GAMO2pix (posterior mean)": r(mean.get("frechet_mean")),
                     **({"cDCGAN": r(np.mean(cd)) if cd and len(cd) == len(rows) else None}
                        if cdcgan is not None else {}),
                     "floor (real held-out)": r(mean.get("floor")), "reconstructions": r(mean.get("frechet_recon")),
                     "training images": r(mean.get("frechet_members"))})
    return rows
