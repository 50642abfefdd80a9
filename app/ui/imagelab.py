"""The Image Lab's logic, kept out of the page so it can be tested without Streamlit.

Plain functions of settings, arrays and engine snapshots:

* :class:`ImageSettings` and the URL round trip (:func:`settings_from_query`,
  :func:`settings_to_query`);
* the data: which datasets are on this machine (:func:`dataset_status`), the imbalance profile
  editor's spec (:func:`profile_spec`) and the class sizes it gives (:func:`class_sizes`),
  uploads (:func:`save_upload`), the run's config (:func:`build_config`);
* images: :func:`as_images` (rows -> (n, C, H, W)), :func:`to_pil`, :func:`tile_grid`;
* the map: :func:`map_figure` (real points by class, generated points by class with trails, as
  plain dicts for :func:`app.ui.figures.figure_json`), :func:`picked` (a click -> which point),
  :func:`map_digest`;
* the audit's per-class table (:func:`flag_table`) and export (:func:`flagged_npz`).

Nothing here starts a thread or calls Streamlit; the live runs and the background projections
are in ``app/ui/imagelab_runs.py``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.ui.figures import class_colors
from app.ui.url_state import parse_bool, parse_number, parse_query, to_query
from gamo.config import LOSSES, METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.data import FASHION_MNIST_ENV, FASHION_MNIST_SYSTEM_DIR, MAX_UPLOAD_BYTES, load_table_bytes
from gamo.errors import DataError

__all__ = [
    "DATASETS", "DATASET_LABELS", "PROFILE_KINDS", "STEP_CAP", "ImageSettings", "DEFAULTS",
    "settings_from_query", "settings_to_query", "reset_key", "data_root", "dataset_status",
    "dataset_spec", "n_test_for", "profile_spec", "class_sizes", "save_upload", "build_config",
    "conv_ok", "as_images", "to_pil", "png_uri", "hover_rows", "hover_gen", "tile_grid", "map_figure", "picked", "map_digest",
    "flag_table", "flagged_npz", "parse_counts",
]

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10", "svhn", "upload")
DATASET_LABELS = {
    "digits": "scikit-learn digits (8x8, offline)",
    "fashion-mnist": "Fashion-MNIST (28x28)",
    "mnist": "MNIST (28x28)",
    "cifar10": "CIFAR10 (32x32 colour)",
    "svhn": "SVHN (32x32 colour)",
    "upload": "my own table (CSV / NPZ upload)",
}
PROFILE_KINDS = ("paper", "exp", "step", "counts")
PROFILE_LABELS = {"paper": "the paper's (IR 100 / 56)", "exp": "exponential (long tail)",
                  "step": "step", "counts": "custom counts"}
STEP_CAP = 20_000            # a run never trains longer than this (DESIGN: runs have a step cap)
CONV_SHAPES = ((1, 28, 28), (3, 32, 32))
DATA_ROOT_ENV = "GAMO_DATA_ROOT"
UPLOAD_DIR_ENV = "GAMO_UPLOAD_DIR"
TRAIL_LENGTH = 6             # placed positions drawn behind each generated point
MAX_CLASSES = 100


@dataclass(frozen=True)
class ImageSettings:
    """Every setting of the Image Lab (the sidebar's widgets; the URL's query parameters).

    ``profile`` is one of :data:`PROFILE_KINDS`: ``paper`` (the paper's counts, scaled down
    to ``n_max`` or to what the data has), ``exp`` (exponential long tail with ratio ``ir``),
    ``step`` (the last ``minority`` classes get ``n_max / ir``) or ``counts`` (``counts``, one
    per class). ``n_max`` 0 means "as large as the data allows". ``family`` is ``dense``
    (flattened images: generated samples are images) or ``conv`` (convolutional F: generated
    samples are F's features; 28x28x1 and 32x32x3 images only). ``compare`` is ``""`` or a
    second method trained side by side on the same data and seed. ``speed`` is the number of
    iterations between two snapshots. ``low_pct`` / ``high_pct`` are the audit's flag
    percentiles.
    """

    dataset: str = "digits"
    label: str = "label"
    download: bool = False
    profile: str = "exp"
    ir: float = 10.0
    minority: int = 5
    n_max: int = 0
    counts: tuple[int, ...] = ()
    family: str = "dense"
    method: str = "gamo"
    compare: str = ""
    loss: str = "ls"
    seed: int = 0
    speed: int = 10
    projection: str = "pca"
    trails: bool = True
    low_pct: float = 5.0
    high_pct: float = 95.0


DEFAULTS = ImageSettings()

QUERY_KEYS: dict[str, str] = {
    "data": "dataset", "label": "label", "download": "download", "profile": "profile", "ir": "ir",
    "minority": "minority", "max": "n_max", "counts": "counts", "family": "family",
    "method": "method", "compare": "compare", "loss": "loss", "seed": "seed", "speed": "speed",
    "map": "projection", "trails": "trails", "low": "low_pct", "high": "high_pct",
}
BOUNDS: dict[str, tuple[float, float]] = {
    "ir": (1.0, 1000.0), "minority": (1, MAX_CLASSES - 1), "n_max": (0, 100_000),
    "seed": (0, 2**31 - 1), "speed": (1, 1000), "low_pct": (0.0, 99.0), "high_pct": (1.0, 100.0),
}
# changing any of these starts new runs; the others apply to the runs on screen
LIVE_FIELDS = ("speed", "projection", "trails", "low_pct", "high_pct")


def parse_counts(text: str) -> tuple[int, ...]:
    """``"500, 50, 20"`` -> ``(500, 50, 20)``; ValueError with a message for the user."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not parts:
        return ()
    if len(parts) > MAX_CLASSES:
        raise ValueError(f"at most {MAX_CLASSES} counts")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{p!r} is not a number: give whole numbers such as 500,50,20") from None
        if not math.isfinite(v) or v != int(v) or v < 0:
            raise ValueError(f"{p!r} is not a whole number of points")
        out.append(int(v))
    return tuple(out)


def _parse_field(name: str, raw: str) -> Any:
    raw = raw.strip()
    if name == "dataset":
        v = raw.lower()
        if v not in DATASETS:
            raise ValueError(f"choose one of {', '.join(DATASETS)}")
        return v
    if name == "label":
        if not raw or len(raw) > 200:
            raise ValueError("give the label column's name")
        return raw
    if name in ("download", "trails"):
        return parse_bool(raw)
    if name == "profile":
        if raw not in PROFILE_KINDS:
            raise ValueError(f"choose one of {', '.join(PROFILE_KINDS)}")
        return raw
    if name == "counts":
        return parse_counts(raw)
    if name == "family":
        if raw not in ("dense", "conv"):
            raise ValueError("choose dense or conv")
        return raw
    if name == "method":
        if raw not in METHODS:
            raise ValueError(f"choose one of {', '.join(METHODS)}")
        return raw
    if name == "compare":
        if raw in ("", "none", "off"):
            return ""
        if raw not in METHODS:
            raise ValueError(f"choose one of {', '.join(METHODS)} (or leave it out)")
        return raw
    if name == "loss":
        if raw.lower() not in LOSSES:
            raise ValueError("choose ls or ce")
        return raw.lower()
    if name == "projection":
        if raw.lower() not in ("pca", "umap"):
            raise ValueError("choose pca or umap")
        return raw.lower()
    lo, hi = BOUNDS[name]
    return parse_number(raw, lo, hi, whole=type(getattr(DEFAULTS, name)) is int)


def settings_from_query(params: Mapping[str, Any]) -> tuple[ImageSettings, list[str]]:
    """Settings from URL query parameters; a bad value keeps its default and gives a warning."""
    values, warnings = parse_query(params, QUERY_KEYS, DEFAULTS, _parse_field)
    s = dataclasses.replace(DEFAULTS, **values)
    if s.compare == s.method:
        warnings.append("URL parameter compare is the same method as method; compare mode is off")
        s = dataclasses.replace(s, compare="")
    if s.low_pct >= s.high_pct:
        warnings.append("URL parameters low and high: low must be below high; using the defaults")
        s = dataclasses.replace(s, low_pct=DEFAULTS.low_pct, high_pct=DEFAULTS.high_pct)
    return s, warnings


def settings_to_query(s: ImageSettings) -> dict[str, str]:
    """All settings as query parameters (every key is written, so a link stays exact)."""
    return to_query(s, QUERY_KEYS)


def reset_key(s: ImageSettings, upload_id: str = "") -> tuple:
    """What must restart the runs when it changes (data, profile, model, methods, seed)."""
    return tuple(getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in LIVE_FIELDS) + (upload_id,)


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def data_root() -> str:
    """Where torchvision datasets are looked for: ``$GAMO_DATA_ROOT`` or the engine's default."""
    return os.environ.get(DATA_ROOT_ENV) or DataConfig().data_root


def n_test_for(dataset: str, smallest: int | None = None) -> int:
    """Balanced test points per class: 100 as in the paper; 50 for the small digits set (it has
    about 180 images a class, and the test split comes out of them); for an uploaded table a
    quarter of its smallest class (``smallest`` rows), between 1 and 100."""
    if dataset == "digits":
        return 50
    if dataset == "upload" and smallest is not None:
        return int(min(100, max(1, smallest // 4)))
    return 100


def dataset_status(name: str, root: str | None = None) -> tuple[bool, str]:
    """Whether ``name``'s files are on this machine, and how to get them when they are not.

    Only file names are checked (nothing is read): the engine's loader says what is wrong with
    files that are there.
    """
    root_p = Path(os.path.expanduser(root or data_root()))
    if name in ("digits", "upload"):
        return True, ""
    if name == "fashion-mnist":
        system = Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_SYSTEM_DIR)
        for d in (system, root_p / "FashionMNIST" / "raw"):
            if (d / "train-images-idx3-ubyte").exists() or (d / "train-images-idx3-ubyte.gz").exists():
                return True, ""
        return False, (f"Fashion-MNIST is not on this machine. Install the Debian package "
                       f"`dataset-fashion-mnist` (it puts the files in {FASHION_MNIST_SYSTEM_DIR}), "
                       f"put the four IDX files in `{root_p / 'FashionMNIST' / 'raw'}`, or allow the "
                       f"download below (needs internet).")
    where = {
        "mnist": (root_p / "MNIST", f"put the four IDX files in `{root_p / 'MNIST' / 'raw'}`"),
        "cifar10": (root_p / "cifar-10-batches-py",
                    f"put the folder `cifar-10-batches-py` in `{root_p}`"),
        "svhn": (root_p / "train_32x32.mat",
                 f"put `train_32x32.mat` and `test_32x32.mat` in `{root_p}`"),
    }
    if name not in where:
        return False, f"unknown dataset {name!r}"
    path, how = where[name]
    if path.exists():
        return True, ""
    label = DATASET_LABELS[name].split(" (")[0]
    return False, (f"{label} is not on this machine: {how} (the data root is set by the "
                   f"`{DATA_ROOT_ENV}` environment variable), or allow the download below "
                   f"(needs internet).")


def dataset_spec(s: ImageSettings, upload_path: str | None = None) -> str | None:
    """The engine's dataset name for the settings (``table:PATH`` for an upload; None when the
    upload is missing)."""
    if s.dataset == "upload":
        return f"table:{upload_path}" if upload_path else None
    return s.dataset


def profile_spec(s: ImageSettings, n_classes: int, n_available: Sequence[int] | None = None,
                 dataset: str = "") -> str:
    """The engine's profile string for the editor's settings.

    ``paper`` keeps the paper's counts where they fit (``n_max`` 0) and otherwise scales them
    down to a largest class the data has (``paper:max=N``, N the smallest class's available
    points, or ``n_max``); ``exp``/``step`` pass ``max=n_max`` when it is set (else the engine
    takes the smallest class's available points); ``counts`` gives the counts as they are.
    """
    if s.profile == "paper":
        if s.n_max:
            return f"paper:max={int(s.n_max)}"
        if n_available is not None and n_classes == 10:
            from gamo.data import PAPER_COUNTS, paper_family

            base = PAPER_COUNTS[paper_family(dataset)]
            if any(c > a for c, a in zip(base, n_available)):
                return f"paper:max={int(min(n_available))}"
        return "paper"
    mx = f",max={int(s.n_max)}" if s.n_max else ""
    if s.profile == "exp":
        return f"exp:ir={s.ir:g}{mx}"
    if s.profile == "step":
        m = min(max(1, int(s.minority)), max(1, n_classes - 1))
        return f"step:ir={s.ir:g},minority={m}{mx}"
    return "counts:" + ",".join(str(int(c)) for c in s.counts)


def class_sizes(s: ImageSettings, n_available: Sequence[int], class_names: Sequence[str],
                dataset: str) -> tuple[str, list[int]]:
    """(profile spec, training points per class) of the settings on data with ``n_available``
    points per class; raises :class:`gamo.errors.DataError` with a message for the user."""
    from gamo.data import parse_profile

    k = len(n_available)
    if s.profile == "counts" and len(s.counts) != k:
        raise DataError(f"custom counts: give {k} counts, one per class in label order "
                        f"({', '.join(class_names)}); got {len(s.counts)}")
    spec = profile_spec(s, k, n_available, dataset)
    counts = parse_profile(spec, k, list(n_available), dataset, class_names=class_names)
    return spec, list(counts if counts is not None else n_available)


def save_upload(name: str, raw: bytes, label: str, folder: str | None = None) -> tuple[str, str]:
    """Check an uploaded table with the engine's reader and keep it as a file.

    Returns ``(path, upload id)``; the file is named by a hash of its contents, so the same
    upload is stored once and its runs can be restarted. Raises DataError (over the size cap,
    not CSV/NPZ, unreadable, no label column, ...) with one message for the user.
    """
    if len(raw) > MAX_UPLOAD_BYTES:
        raise DataError(f"{name!r} is {len(raw) / 2**20:.1f} MB, over the "
                        f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB limit: subsample the rows or drop columns")
    load_table_bytes(raw, name, label)        # raises DataError with the reason
    digest = hashlib.sha1(raw).hexdigest()[:16]
    base = Path(folder or os.environ.get(UPLOAD_DIR_ENV)
                or Path(tempfile.gettempdir()) / f"gamo-lab-uploads-{getattr(os, 'getuid', lambda: 0)()}")
    base.mkdir(parents=True, exist_ok=True)
    path = base / f"{digest}{Path(name).suffix.lower()}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(raw)
        tmp.replace(path)
    return str(path), digest


def conv_ok(image_shape: Sequence[int] | None) -> bool:
    """The conv family takes 28x28x1 and 32x32x3 images."""
    return image_shape is not None and tuple(int(v) for v in image_shape) in CONV_SHAPES


def build_config(s: ImageSettings, data: DataConfig, method: str | None = None) -> RunConfig:
    """The run's config (may raise ``ConfigError``). One torch thread: the page's server needs
    the other core; CUDA when there is one."""
    model = ModelConfig(family=s.family)
    train = TrainConfig(method=method or s.method, loss=s.loss, steps=STEP_CAP, seed=int(s.seed),
                        device="auto", snapshot_every=int(s.speed), threads=1)
    return RunConfig(data=data, model=model, train=train)


def data_config(s: ImageSettings, spec: str, profile: str, n_test: int | None = None) -> DataConfig:
    """The DataConfig of the settings (dataset ``spec``, profile string ``profile``, ``n_test``
    test points per class, default :func:`n_test_for`)."""
    return DataConfig(dataset=spec, profile=profile,
                      n_test_per_class=int(n_test if n_test is not None else n_test_for(s.dataset)),
                      seed=int(s.seed), label_column=s.label, data_root=data_root(),
                      download=bool(s.download))


# ------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------
def as_images(x: np.ndarray, image_shape: Sequence[int] | None) -> np.ndarray | None:
    """Rows -> (n, C, H, W) images: with ``image_shape``, or for rows whose width is a square
    (a table of 8x8 = 64 pixels); None when the rows are not images."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    flat = x.reshape(n, -1)
    if image_shape is not None and int(np.prod(image_shape)) == flat.shape[1]:
        return flat.reshape(n, *(int(v) for v in image_shape))
    side = int(round(math.sqrt(flat.shape[1])))
    if image_shape is None and side * side == flat.shape[1] and side >= 4:
        return flat.reshape(n, 1, side, side)
    return None


def to_pil(img: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0), scale: int = 1) -> Any:
    """One (C, H, W) image (C = 1 or 3) -> a PIL image, ``scale`` times larger (nearest)."""
    from PIL import Image

    lo, hi = value_range
    a = np.clip((np.asarray(img, dtype=np.float32) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    a = (a * 255).round().astype(np.uint8)
    im = Image.fromarray(a[0], "L") if a.shape[0] == 1 else Image.fromarray(np.moveaxis(a[:3], 0, -1), "RGB")
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    return im


def tile_grid(images: np.ndarray, ncols: int, *, value_range: tuple[float, float] = (-1.0, 1.0),
              scale: int = 1, gap: int = 2, rows: int | None = None) -> Any:
    """Images (n, C, H, W) in a grid of ``ncols`` columns (``rows``: at least that many rows),
    white gaps between them; a PIL RGB image."""
    from PIL import Image

    imgs = np.asarray(images, dtype=np.float32)
    n = len(imgs)
    c, h, w = imgs.shape[1:] if n else (1, 8, 8)
    nrows = max(rows or 0, math.ceil(n / max(ncols, 1)) if n else 1)
    tw, th = w * scale, h * scale
    sheet = Image.new("RGB", (ncols * (tw + gap) + gap, nrows * (th + gap) + gap), "white")
    for i in range(n):
        im = to_pil(imgs[i], value_range, scale).convert("RGB")
        sheet.paste(im, (gap + (i % ncols) * (tw + gap), gap + (i // ncols) * (th + gap)))
    return sheet


HOVER_REAL_CAP = 3_000       # at most this many real points carry a hover image (a seeded subset beyond)


def png_uri(img: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> str:
    """One (C, H, W) image as a PNG data URI at its own size (an 8x8 digit: a few hundred bytes;
    the map's hover tooltip scales it up, pixelated)."""
    import base64

    buf = io.BytesIO()
    to_pil(img, value_range).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def hover_rows(rows: np.ndarray, seed: int = 0, cap: int = HOVER_REAL_CAP) -> np.ndarray:
    """The real rows of the map that carry a hover image: all of them, or a seeded subset of
    ``cap`` (in the rows' order) when there are more."""
    rows = np.asarray(rows).astype(int).reshape(-1)
    if len(rows) <= cap:
        return rows
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=cap, replace=False))
    return rows[keep]


def hover_gen(family: str, gen: Any, image_shape: Sequence[int] | None, images: np.ndarray | None,
              vrange: tuple[float, float], *, real_feats: np.ndarray | None = None,
              uri: Any = None, nearest: Any = None) -> list:
    """[PNG data URI, label] (or None: no image) per generated point of ``gen`` (a snapshot's
    ``Generated``), for the map's hover tooltip: the sample itself (dense family), else (conv:
    the samples are F's features) its strongest convex parent, or without parents its nearest
    real image in ``real_feats`` (``nearest(q, x)`` -> rows), labelled as such. ``uri(row)``
    encodes real image ``row`` (a cache), by default :func:`png_uri`."""
    if gen is None:
        return []
    m = len(gen.y)
    if family == "dense":
        imgs = as_images(gen.x, image_shape)
        if imgs is None:
            return [None] * m
        return [[png_uri(imgs[k], vrange), f"generated #{k} (class {int(gen.y[k])})"] for k in range(m)]
    if images is None:
        return [None] * m
    uri = uri or (lambda j: png_uri(images[j], vrange))
    if gen.parent_idx is not None:
        parents = [int(j) for j in np.asarray(gen.parent_idx)[:, 0]]
        what = "strongest parent"
    elif nearest is not None and real_feats is not None and real_feats.shape[1] == np.asarray(gen.x).shape[1]:
        parents = [int(j) for j in nearest(gen.x, real_feats)]
        what = "nearest real image"
    else:
        return [None] * m
    return [[uri(j), f"{what} of generated #{k} (class {int(gen.y[k])}): real #{j}"]
            for k, j in enumerate(parents)]


def value_range(x: np.ndarray, image_like: bool) -> tuple[float, float]:
    """Pixel values shown black..white: [-1, 1] for the engine's images, else the data's range."""
    if image_like:
        return (-1.0, 1.0)
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    return (lo, hi if hi > lo else lo + 1.0)


# ------------------------------------------------------------------------------------------
# the map
# ------------------------------------------------------------------------------------------
def map_figure(
    real_xy: np.ndarray,
    real_y: np.ndarray,
    real_rows: np.ndarray,
    class_names: Sequence[str],
    *,
    gen_xy: np.ndarray | None = None,
    gen_y: np.ndarray | None = None,
    gen_text: Sequence[str] | None = None,
    trails: np.ndarray | None = None,
    selected: tuple[str, int] | None = None,
    title: str = "",
    height: int = 560,
    uirevision: str = "imagelab",
    legend: bool = True,
) -> dict[str, Any]:
    """The map as plain dicts (``{"data": [...], "layout": {...}}``) for
    :func:`app.ui.figures.figure_json`.

    Real points (WebGL, small dots, one trace per class) carry ``customdata = -(row + 1)``
    (``row``: their row of ``x_train``); generated points (crosses, one trace per class, drawn
    above the real points) carry their row of the snapshot's fixed-noise batch (0, 1, ...), so
    :func:`picked` can tell a click on a real point from one on a generated point. ``trails``
    (T, m, 2): recent positions of the generated points, oldest first, drawn as one faint line
    trace per class. ``selected`` (``("gen", i)`` or ``("real", row)``) is ringed.
    """
    real_xy = np.asarray(real_xy, dtype=np.float32).reshape(-1, 2)
    real_y = np.asarray(real_y).astype(int).reshape(-1)
    real_rows = np.asarray(real_rows).astype(int).reshape(-1)
    k = len(class_names)
    colors = class_colors(max(k, 1))
    data: list[dict[str, Any]] = []
    for c in range(k):
        sel = real_y == c
        if not sel.any():
            continue
        data.append(dict(
            type="scattergl", x=real_xy[sel, 0], y=real_xy[sel, 1], mode="markers",
            marker=dict(size=5, color=colors[c], opacity=0.45),
            name=f"{c}: {class_names[c]}" if str(class_names[c]) != str(c) else f"class {c}",
            legendgroup=f"real{c}", customdata=-(real_rows[sel] + 1), meta="real",
            # no text per point: thousands of strings at every redraw; the trace names the class
            hovertemplate="a real training image of %{fullData.name}<br><i>click to show it</i><extra></extra>",
        ))
    if gen_xy is not None and gen_y is not None and len(gen_y):
        gxy = np.asarray(gen_xy, dtype=np.float32).reshape(-1, 2)
        gy = np.asarray(gen_y).astype(int).reshape(-1)
        if trails is not None and trails.ndim == 3 and trails.shape[0] >= 2 and trails.shape[1] == len(gy):
            for c in np.unique(gy):
                idx = np.flatnonzero(gy == c)
                seg = trails[:, idx, :]                                   # (T, m_c, 2)
                gap = np.full((1, len(idx), 2), np.nan, dtype=np.float32)
                path = np.concatenate([seg, gap], axis=0).transpose(1, 0, 2).reshape(-1, 2)
                data.append(dict(
                    type="scattergl", x=path[:, 0], y=path[:, 1], mode="lines",
                    line=dict(color=colors[int(c)], width=1), opacity=0.55, hoverinfo="skip",
                    name="recent path", legendgroup="trails", showlegend=bool(c == gy.min()),
                    connectgaps=False, meta="trail",
                ))
        rows = np.arange(len(gy))
        for c in np.unique(gy):
            sel = gy == c
            data.append(dict(
                type="scattergl", x=gxy[sel, 0], y=gxy[sel, 1], mode="markers",
                marker=dict(symbol="x", size=9, color=colors[int(c)],
                            line=dict(color="#222222", width=1)),
                name=f"generated for {int(c)}", legendgroup=f"gen{int(c)}", customdata=rows[sel],
                meta="generated",
                text=[gen_text[i] for i in rows[sel]] if gen_text is not None else None,
                hovertemplate=("%{text}<br><i>click to audit it</i><extra></extra>" if gen_text is not None
                               else "generated #%{customdata}<extra></extra>"),
            ))
    if selected is not None:
        kind, i = selected
        xy = None
        if kind == "gen" and gen_xy is not None and 0 <= i < len(gen_xy):
            xy = np.asarray(gen_xy)[i]
        elif kind == "real":
            hit = np.flatnonzero(real_rows == i)
            if len(hit):
                xy = real_xy[hit[0]]
        if xy is not None and np.isfinite(xy).all():
            data.append(dict(type="scatter", x=[float(xy[0])], y=[float(xy[1])], mode="markers",
                             marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(color="#000000", width=2.5)),
                             name="selected", hoverinfo="skip", meta="selected", showlegend=False))
    layout: dict[str, Any] = dict(
        height=int(height), margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(showticklabels=False, zeroline=False, showgrid=False),
        yaxis=dict(showticklabels=False, zeroline=False, showgrid=False, scaleanchor=None),
        plot_bgcolor="white", uirevision=uirevision, clickmode="event", dragmode="pan",
        hovermode="closest", showlegend=legend,
        legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0.0,
                    itemsizing="constant", font=dict(size=11)),
        font=dict(family="sans-serif", size=13),
    )
    if title:
        layout["title"] = dict(text=title, x=0.0, xanchor="left", font=dict(size=14))
    return {"data": data, "layout": layout}


def picked(selection: Any) -> tuple[str, int] | None:
    """The point a click on :func:`map_figure` picked: ``("gen", row)`` for a generated point,
    ``("real", row)`` for a real one (``row`` of ``x_train``); None for nothing. The last
    point under the click wins (generated points are drawn above the real ones)."""
    if selection is None:
        return None
    sel = selection.get("selection", selection) if isinstance(selection, Mapping) else selection
    points = sel.get("points", []) if isinstance(sel, Mapping) else (sel if isinstance(sel, (list, tuple)) else [])
    out = None
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, Mapping) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is None or isinstance(cd, bool):
            continue
        try:
            v = int(cd)
        except (TypeError, ValueError):
            continue
        out = ("gen", v) if v >= 0 else ("real", -v - 1)
    return out


def map_digest(step: int, gen_xy: np.ndarray | None, keyframe: int) -> str:
    """A short fingerprint of what the map shows (changes when a generated point moves)."""
    h = hashlib.sha1(f"{step}:{keyframe}".encode())
    if gen_xy is not None:
        h.update(np.round(np.asarray(gen_xy, dtype=np.float64), 4).tobytes())
    return h.hexdigest()[:10]


# ------------------------------------------------------------------------------------------
# the audit's tables and export
# ------------------------------------------------------------------------------------------
def flag_table(rows: Sequence[Mapping[str, Any]], class_names: Sequence[str]) -> Any:
    """:func:`gamo.audit.per_class_summary` rows as a DataFrame for the page."""
    import pandas as pd

    out = []
    for r in rows:
        c = int(r["class"])
        out.append({
            "class": f"{c}: {class_names[c]}" if str(class_names[c]) != str(c) else str(c),
            "samples": r["n"],
            "near-duplicate": r["near_duplicate"],
            "out-of-distribution": r["out_of_distribution"],
            "(of which nearer another class)": r["closer_to_other"],
            "label disputed": r["label_disputed"],
            "any flag": r["flagged"],
            "median DCR percentile": r["median_dcr_pct"],
            "mean effective parents": r["mean_eff_parents"],
        })
    return pd.DataFrame(out)


def flagged_npz(audit: Any, step: int, real_images: np.ndarray | None = None) -> bytes:
    """The flagged samples and their measures as an NPZ file's bytes.

    Arrays: ``x`` (the samples in the audit's space), ``y``, ``index`` (their rows in the
    fixed-noise batch), ``m_pred``, ``m_conf``, ``dcr``, ``dcr_pct``, ``dcr_other``,
    ``dcr_other_pct``, ``nearest_idx``, the three flags, ``parent_idx`` / ``parent_w`` /
    ``eff_parents`` / ``dcr_ratio`` where known, ``d_score`` where the method has D, ``nearest_image`` (the
    nearest real training image of each, when the data are images), and ``space``, ``step``,
    ``low_pct``, ``high_pct``.
    """
    sel = np.flatnonzero(audit.flagged)
    arrays: dict[str, Any] = {
        "x": audit.x[sel], "y": audit.y[sel], "index": sel, "m_pred": audit.m_pred[sel],
        "m_conf": audit.m_conf[sel], "dcr": audit.dcr[sel], "dcr_pct": audit.dcr_pct[sel],
        "dcr_other": audit.dcr_other[sel], "dcr_other_pct": audit.dcr_other_pct[sel],
        "nearest_idx": audit.nearest_idx[sel], "near_duplicate": audit.near_duplicate[sel],
        "out_of_distribution": audit.out_of_distribution[sel], "label_disputed": audit.label_disputed[sel],
        "space": np.array(audit.space), "step": np.array(int(step)),
        "low_pct": np.array(audit.low_pct), "high_pct": np.array(audit.high_pct),
    }
    for name in ("parent_idx", "parent_w", "eff_parents", "d_score", "dcr_ratio"):
        v = getattr(audit, name, None)
        if v is not None:
            arrays[name] = v[sel]
    if real_images is not None and len(sel):
        arrays["nearest_image"] = np.asarray(real_images)[audit.nearest_idx[sel]]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
