"""The Toy Lab's logic, kept out of the page so it can be tested without Streamlit.

Everything here is a plain function of settings, arrays or engine snapshots:

* :class:`ToySettings` and the URL round trip (:func:`settings_from_query`,
  :func:`settings_to_query`), so a teacher can share an exact setup as a link;
* :func:`build_config`, the widgets' values as a :class:`gamo.config.RunConfig`;
* what is drawn from a snapshot: :func:`toy_view` (the 2D figure), :func:`trail_positions`,
  :func:`generated_stats`, :func:`generated_chart`, :func:`generated_table` (the CSV export),
  :func:`explain` (the student-facing panel), and the generator's health
  (:func:`health_markdown`, :func:`collapse_message`; drawn by ``app/ui/health_view.py``);
* re-exported from the shared :mod:`app.ui.curves` (the Image Lab draws them too):
  :func:`history_series`, :func:`loss_chart`, :func:`score_chart`, :func:`compare_chart`,
  :func:`points_digest`.

Nothing here starts a thread or calls Streamlit; see ``app/ui/toylab_runs.py`` for the live runs.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.ui.figures import class_colors, metric_curves, toy_figure, trails_legend_entry
from app.ui.curves import (compare_chart, history_series, loss_chart, mark_step, method_color,
                           points_digest, score_chart)
from app.ui.pacer import pace_chunk
from app.ui.url_state import parse_bool, parse_number, parse_query, to_query
from gamo.config import LOSSES, METHOD_LABELS, METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.errors import ConfigError, GamoError
from gamo.geometry import convex_hull, hull_distance
from gamo.snapshot import Generated, Snapshot

__all__ = [
    "TOY_NAMES", "STEP_CAP", "N_TEST_PER_CLASS", "TRAIL_LENGTH", "PLOTLY_CONFIG", "ToySettings",
    "DEFAULTS", "parse_counts", "settings_from_query", "settings_to_query", "class_counts",
    "profile_for", "build_config", "reset_key", "method_players", "axis_ranges",
    "minority_hulls", "real_points_image", "trails_image", "trail_positions", "generated_stats",
    "history_series", "toy_view",
    "loss_chart", "score_chart", "generated_chart", "compare_chart", "generated_table",
    "points_digest", "explain", "last_mover", "collapsed_classes", "collapse_message",
    "health_markdown", "TOY_METHODS", "IMAGE_ONLY_METHODS", "compare_methods", "methods_of",
    "plural", "color_name", "classes_caption", "reading_guide", "verdict", "MIN_VERDICT_STEP",
]

TOY_NAMES = ("moons", "circles", "blobs", "spirals", "nonconvex")
MULTICLASS_TOYS = ("blobs", "spirals")
MAX_TOY_CLASSES = 10        # the paper's profile has 10 classes
MAX_COMPARED = 4            # methods side by side in compare mode (a 2 x 2 grid)
# methods that cannot run on 2D points (Augment+CN transforms images): the Toy Lab does not offer
# them, so every method in its list starts and steps (tests/test_toy_lab.py checks each one)
IMAGE_ONLY_METHODS = ("augment",)
TOY_METHODS = tuple(m for m in METHODS if m not in IMAGE_ONLY_METHODS)
# how the class sizes are given: counts, a step ratio, and for the multi-class toys the engine's
# exponential (long-tail) and paper profiles
IMBALANCE_KINDS = ("counts", "ratio", "exp", "paper")
IMBALANCE_LABELS = {"counts": "points per class", "ratio": "step ratio",
                    "exp": "long tail (exponential)", "paper": "the paper's (10 classes)"}
MULTICLASS_ONLY_KINDS = ("exp", "paper")
STEP_CAP = 20_000           # a run never trains longer than this (DESIGN: runs have a step cap)
N_TEST_PER_CLASS = 100      # balanced test split, as in the paper
TRAIL_LENGTH = 10           # snapshots of recent positions drawn behind each generated point
N_FIXED = 24                # generated points followed per minority class
GRID = 60                   # resolution of M's and D's maps
TOP_PARENTS_SHOWN = 5

# Plotly's modebar, shown on hover: the camera button ("Download plot as png") is kept on
# purpose, since exporting the figure is a feature of the page (kaleido is not needed: the
# browser renders the PNG).
PLOTLY_CONFIG: dict[str, Any] = {
    "displayModeBar": True,
    "displaylogo": False,
    # no "Share chart..." (it uploads the chart to Plotly Cloud): the lab keeps data on this machine
    "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "sendChartToCloud"],
    "toImageButtonOptions": {"format": "png", "filename": "gamo_toy_lab", "scale": 2},
    "scrollZoom": False,
}


# ------------------------------------------------------------------------------------------
# settings and the URL
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ToySettings:
    """Every setting of the Toy Lab (the page's widgets; the URL's query parameters).

    ``imbalance`` is ``"counts"`` (``counts`` gives each class's training size, label order),
    ``"ratio"`` (class 0 gets ``n_max`` points, every other class ``n_max / ir``), and on the
    multi-class toys ``"exp"`` (a long tail from ``n_max`` down to ``n_max / ir``) or
    ``"paper"`` (the paper's 10 class sizes, scaled to a largest class of ``n_max``).
    ``compare`` is ``""`` (one run) or up to three more methods, comma-separated, trained side
    by side on the same data and seed. ``pace`` is iterations per second (0: full speed);
    ``speed`` the number of iterations between two snapshots at full speed.
    """

    dataset: str = "moons"
    n_classes: int = 2
    imbalance: str = "counts"
    counts: tuple[int, ...] = (1000, 50)
    n_max: int = 1000
    ir: float = 20.0
    noise: float = 0.25
    seed: int = 0
    method: str = "gamo"
    compare: str = ""
    loss: str = "ls"
    lr_m: float = 1e-3
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    latent: int = 16
    width: int = 32
    batch: int = 64
    speed: int = 20
    pace: int = 0
    # a newcomer's first view: M's regions, the points and G's crosses; D's contours and the
    # trails are one click away (together they were a web of lines at first sight)
    show_d: bool = False
    d_class: int = 1
    trails: bool = False


DEFAULTS = ToySettings()

# The paper's Figure 1 on screen: a non-convex minority class (an arc around the majority blob),
# GAMO next to GAMO\D, with the CE loss. With LS, D's push on G fades once D is confident (a
# squared error on a saturated sigmoid has almost no gradient) and GAMO's points bleed into the
# majority much like GAMO\D's. `python bench/figure1_toy.py --loss ce --loss ls` measures both
# (bench/results/figure1_toy.md).
FIGURE1 = dataclasses.replace(DEFAULTS, dataset="nonconvex", counts=(1000, 50), method="gamo",
                              compare="gamo_no_d", loss="ce", show_d=True)

# query key -> field name (short keys keep shared links readable)
QUERY_KEYS: dict[str, str] = {
    "data": "dataset", "classes": "n_classes", "imb": "imbalance", "counts": "counts",
    "nmax": "n_max", "ir": "ir", "noise": "noise", "seed": "seed", "method": "method",
    "compare": "compare", "loss": "loss", "lr_m": "lr_m", "lr_d": "lr_d", "lr_g": "lr_g",
    "latent": "latent", "width": "width", "batch": "batch", "speed": "speed", "pace": "pace",
    "d": "show_d", "d_class": "d_class", "trails": "trails",
}
FIELD_KEYS = {v: k for k, v in QUERY_KEYS.items()}

# (low, high) bounds accepted from the URL and offered by the widgets
BOUNDS: dict[str, tuple[float, float]] = {
    "n_classes": (2, MAX_TOY_CLASSES), "n_max": (2, 5000), "ir": (1.0, 1000.0), "noise": (0.0, 1.0),
    "seed": (0, 2**31 - 1), "lr_m": (1e-5, 1e-1), "lr_d": (1e-5, 1e-1), "lr_g": (1e-5, 1e-1),
    "latent": (1, 128), "width": (4, 256), "batch": (8, 512), "speed": (1, 500),
    "pace": (0, 1000), "d_class": (0, MAX_TOY_CLASSES - 1),
}
COUNT_BOUNDS = (1, 5000)   # 1 is accepted so that the engine can explain why it is too few


def parse_counts(text: str) -> tuple[int, ...]:
    """``"1000, 50"`` -> ``(1000, 50)``.

    Raises
    ------
    ValueError
        With a message for the user when the text is not 2-6 whole numbers in
        ``COUNT_BOUNDS``.
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not 2 <= len(parts) <= MAX_TOY_CLASSES:
        raise ValueError("give one count per class, separated by commas, e.g. 1000,50")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{p!r} is not a number: give whole numbers such as 1000,50") from None
        if not math.isfinite(v) or v != int(v):
            raise ValueError(f"{p!r} is not a whole number")
        v = int(v)
        if not COUNT_BOUNDS[0] <= v <= COUNT_BOUNDS[1]:
            raise ValueError(f"{v} is out of range: each count must be between "
                             f"{COUNT_BOUNDS[0]} and {COUNT_BOUNDS[1]}")
        out.append(v)
    return tuple(out)


def _parse_field(name: str, raw: str) -> Any:
    """One query value -> the field's type; ValueError when it is not acceptable."""
    raw = raw.strip()
    if name == "dataset":
        v = raw.lower().removeprefix("toy:")
        if v not in TOY_NAMES:
            raise ValueError(f"choose one of {', '.join(TOY_NAMES)}")
        return v
    if name == "imbalance":
        if raw not in IMBALANCE_KINDS:
            raise ValueError(f"choose one of {', '.join(IMBALANCE_KINDS)}")
        return raw
    if name == "counts":
        return parse_counts(raw)
    if name in ("method",):
        if raw in IMAGE_ONLY_METHODS:
            raise ValueError(f"{METHOD_LABELS.get(raw, raw)} works on images only (try the Image Lab)")
        if raw not in TOY_METHODS:
            raise ValueError(f"choose one of {', '.join(TOY_METHODS)}")
        return raw
    if name == "compare":
        if raw in ("", "none", "off"):
            return ""
        out: list[str] = []
        for m in (p.strip() for p in raw.split(",") if p.strip()):
            if m in IMAGE_ONLY_METHODS:
                raise ValueError(f"{METHOD_LABELS.get(m, m)} works on images only (try the Image Lab)")
            if m not in TOY_METHODS:
                raise ValueError(f"choose from {', '.join(TOY_METHODS)} (or leave it out)")
            if m not in out:
                out.append(m)
        if len(out) > MAX_COMPARED - 1:
            raise ValueError(f"at most {MAX_COMPARED - 1} methods beside the first")
        return ",".join(out)
    if name == "loss":
        if raw.lower() not in LOSSES:
            raise ValueError("choose ls or ce")
        return raw.lower()
    if name in ("show_d", "trails"):
        return parse_bool(raw)
    lo, hi = BOUNDS[name]
    return parse_number(raw, lo, hi, whole=type(getattr(DEFAULTS, name)) is int)


def settings_from_query(params: Mapping[str, Any]) -> tuple[ToySettings, list[str]]:
    """Read settings from URL query parameters; bad values fall back to defaults.

    Parameters
    ----------
    params : mapping
        ``st.query_params`` (or any str -> str / list of str mapping). Unknown keys are
        ignored (other pages may use them).

    Returns
    -------
    (ToySettings, list of str)
        The settings, and one warning per value that was rejected (that field keeps its
        default).
    """
    values, warnings = parse_query(params, QUERY_KEYS, DEFAULTS, _parse_field)
    s = dataclasses.replace(DEFAULTS, **values)
    # consistency between fields
    if s.dataset not in MULTICLASS_TOYS and s.n_classes != 2:
        s = dataclasses.replace(s, n_classes=2)
    if s.imbalance in MULTICLASS_ONLY_KINDS and s.dataset not in MULTICLASS_TOYS:
        warnings.append(f"URL parameter imb={s.imbalance} needs a multi-class toy (blobs or spirals); "
                        "using the step ratio")
        s = dataclasses.replace(s, imbalance="ratio")
    if s.imbalance == "paper" and s.n_classes != MAX_TOY_CLASSES:
        s = dataclasses.replace(s, n_classes=MAX_TOY_CLASSES)
    if s.imbalance == "counts" and len(s.counts) != s.n_classes:
        if "counts" in values and "n_classes" not in values and s.dataset in MULTICLASS_TOYS:
            s = dataclasses.replace(s, n_classes=len(s.counts))
        elif "counts" in values:
            warnings.append(f"URL parameter counts has {len(s.counts)} values for {s.n_classes} "
                            f"classes; using {s.counts[0]} then {s.counts[-1]} for the others")
            s = dataclasses.replace(s, counts=_fit_counts(s.counts, s.n_classes))
        else:
            s = dataclasses.replace(s, counts=_fit_counts(s.counts, s.n_classes))
    others = [m for m in compare_methods(s) if m != s.method]
    if len(others) != len(compare_methods(s)):
        warnings.append("URL parameter compare repeats the first method; it is shown once")
        s = dataclasses.replace(s, compare=",".join(others))
    if s.d_class >= s.n_classes:
        s = dataclasses.replace(s, d_class=min(1, s.n_classes - 1))
    return s, warnings


def _fit_counts(counts: Sequence[int], k: int) -> tuple[int, ...]:
    """Stretch or cut a count list to ``k`` classes: the first stays, the rest copy the last."""
    counts = list(counts) or [DEFAULTS.counts[0]]
    if len(counts) >= k:
        return tuple(counts[:k])
    return tuple(counts + [counts[-1]] * (k - len(counts)))


def settings_to_query(s: ToySettings) -> dict[str, str]:
    """All settings as query parameters (every key is written, so a link stays exact)."""
    return to_query(s, QUERY_KEYS)


def compare_methods(s: ToySettings) -> tuple[str, ...]:
    """The methods trained beside ``s.method`` (none, or up to three)."""
    return tuple(m for m in str(s.compare or "").split(",") if m)


def methods_of(s: ToySettings) -> tuple[str, ...]:
    """Every method the settings train, the first one first."""
    return (s.method,) + tuple(m for m in compare_methods(s) if m != s.method)


def class_counts(s: ToySettings) -> tuple[int, ...]:
    """Training points per class the settings ask for.

    Raises
    ------
    gamo.errors.DataError
        A profile that gives a class fewer than 2 points (the message says what to change).
    """
    if s.imbalance == "ratio":
        small = max(1, int(round(s.n_max / s.ir)))
        return (int(s.n_max),) + (small,) * (s.n_classes - 1)
    if s.imbalance in MULTICLASS_ONLY_KINDS:
        from gamo.data import parse_profile

        return tuple(int(c) for c in parse_profile(profile_for(s), int(s.n_classes), None,
                                                   f"toy:{s.dataset}"))
    return tuple(int(c) for c in s.counts)


def profile_for(s: ToySettings) -> str:
    """The engine's imbalance profile string for the settings."""
    if s.imbalance == "ratio":
        return f"step:ir={s.ir:g},minority={s.n_classes - 1},max={int(s.n_max)}"
    if s.imbalance == "exp":
        return f"exp:ir={s.ir:g},max={int(s.n_max)}"
    if s.imbalance == "paper":
        return f"paper:max={int(s.n_max)}"
    return "counts:" + ",".join(str(int(c)) for c in s.counts)


def build_config(s: ToySettings, method: str | None = None) -> RunConfig:
    """The run's config (may raise ``ConfigError``; the data may still be refused later).

    The toy networks run on the CPU with one thread: they are tiny, and the page's server
    needs the other core.
    """
    try:
        counts = class_counts(s)
    except GamoError as e:
        raise ConfigError(str(e)) from None
    data = DataConfig(
        dataset=f"toy:{s.dataset}", profile=profile_for(s), n_test_per_class=N_TEST_PER_CLASS,
        seed=int(s.seed), n_per_class=max(2, max(counts)), n_classes=int(s.n_classes),
        noise=float(s.noise),
    )
    model = ModelConfig(family="dense", hidden=int(s.width), latent=int(s.latent),
                        g_hidden=int(s.width))
    train = TrainConfig(
        method=method or s.method, loss=s.loss, steps=STEP_CAP, batch_size=int(s.batch),
        lr_m=float(s.lr_m), lr_d=float(s.lr_d), lr_g=float(s.lr_g), seed=int(s.seed),
        device="cpu", snapshot_every=pace_chunk(s.pace, s.speed), n_fixed=N_FIXED, grid=GRID,
        threads=1,
    )
    return RunConfig(data=data, model=model, train=train)


# changing any of these starts a new run; the others (learning rates, speed, view) apply live
LIVE_FIELDS = ("lr_m", "lr_d", "lr_g", "speed", "pace", "show_d", "d_class", "trails")


def reset_key(s: ToySettings) -> tuple:
    """The settings whose change must reset the run (data, model, method, compare mode)."""
    return tuple(getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in LIVE_FIELDS)


def method_players(method: str) -> tuple[str, ...]:
    """The players a method trains: ("M",), ("M", "G") or ("M", "D", "G")."""
    from gamo.methods import REGISTRY

    kind = REGISTRY.get(method)
    return tuple(kind.players) if kind is not None else ("M",)


# ------------------------------------------------------------------------------------------
# geometry of the view
# ------------------------------------------------------------------------------------------
def axis_ranges(*point_sets: np.ndarray, pad: float = 0.1) -> tuple[tuple[float, float], tuple[float, float]]:
    """Fixed axes around all the points (the engine's grid uses the same 10% padding)."""
    pts = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in point_sets])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - pad * span, hi + pad * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def minority_hulls(x: np.ndarray, y: np.ndarray) -> dict[int, np.ndarray]:
    """Convex hull vertices of every class smaller than the largest one."""
    y = np.asarray(y).reshape(-1)
    counts = np.bincount(y)
    big = counts.max() if len(counts) else 0
    return {int(c): convex_hull(np.asarray(x)[y == c]) for c in range(len(counts))
            if 0 < counts[c] < big}


def real_points_image(
    x: np.ndarray,
    y: np.ndarray,
    x_range: Sequence[float],
    y_range: Sequence[float],
    *,
    n_classes: int | None = None,
    size: tuple[int, int] = (800, 540),
    radius: float = 2.5,
    opacity: float = 0.75,
    minority_radius: float = 3.5,
) -> str:
    """The real points drawn once into a transparent PNG (a ``data:`` URI) for the live view.

    Streamlit re-creates a Plotly chart whenever its figure changes, and thousands of SVG
    markers are most of the browser's cost of each redraw; the real points never move during
    a run, so the live view shows them as one image placed on the fixed axes (see
    :func:`toy_view`'s ``real_image``). Colours and marker size match
    :func:`app.ui.figures.toy_figure`'s real points. Classes are painted largest first, so the
    minority classes lie on top; their dots are larger (``minority_radius``), opaque and
    outlined in dark grey, so that a class of 5 points beside 5,000 stays visible on its own
    shaded region at any imbalance ratio.
    """
    from PIL import Image

    x = np.asarray(x, dtype=np.float64).reshape(-1, 2)
    y = np.asarray(y).reshape(-1).astype(int)
    w, h = int(size[0]), int(size[1])
    (x0, x1), (y0, y1) = (float(v) for v in x_range), (float(v) for v in y_range)
    k = int(n_classes) if n_classes is not None else (int(y.max()) + 1 if len(y) else 1)
    colors = class_colors(max(k, 1))
    px = (x[:, 0] - x0) / (x1 - x0) * w - 0.5          # pixel centres at integer + 0.5
    py = (y1 - x[:, 1]) / (y1 - y0) * h - 0.5
    counts = np.bincount(y, minlength=k) if len(y) else np.zeros(k, int)
    big = counts.max() if len(counts) else 0
    rgb = np.zeros((h * w, 3))
    alpha = np.zeros(h * w)

    def coverage(sel: np.ndarray, rad: float) -> np.ndarray:
        rr = int(np.ceil(rad + 1))
        offs = np.arange(-rr, rr + 1)
        cx, cy = np.round(px[sel]).astype(int), np.round(py[sel]).astype(int)
        gx = cx[:, None, None] + offs[None, None, :]                      # (n, 1, 2r+1)
        gy = cy[:, None, None] + offs[None, :, None]                      # (n, 2r+1, 1)
        dist = np.hypot(gx - px[sel][:, None, None], gy - py[sel][:, None, None])
        cover = np.clip(rad + 0.5 - dist, 0.0, 1.0)                      # anti-aliased disc
        gx, gy = np.broadcast_to(gx, cover.shape), np.broadcast_to(gy, cover.shape)
        ok = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h) & (cover > 0)
        cov = np.zeros(h * w)
        np.maximum.at(cov, (gy[ok] * w + gx[ok]), cover[ok])
        return cov

    def paint(cov: np.ndarray, color: np.ndarray, op: float) -> None:
        nonlocal rgb, alpha
        a = cov * op
        rgb = rgb * (1 - a[:, None]) + color[None, :] * a[:, None]
        alpha = alpha + a * (1 - alpha)

    outline = np.array([40.0, 40.0, 40.0])
    for c in sorted(range(k), key=lambda c: (-counts[c], c)):      # largest first: minorities on top
        sel = y == c
        if not sel.any():
            continue
        col = np.array([int(colors[c][i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
        if counts[c] < big:
            paint(coverage(sel, minority_radius + 1.0), outline, 0.9)
            paint(coverage(sel, minority_radius), col, 1.0)
        else:
            paint(coverage(sel, radius), col, opacity)
    # un-premultiply for PNG's straight alpha
    straight = np.where(alpha[:, None] > 0, rgb / np.maximum(alpha[:, None], 1e-9), 0.0)
    img = np.concatenate([straight, 255.0 * alpha[:, None]], axis=1)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8).reshape(h, w, 4)
    return _png_uri(Image.fromarray(img, "RGBA"))


def _png_uri(img: Any, compress_level: int = 6) -> str:
    import base64
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=compress_level)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def trails_image(
    trails: np.ndarray,
    gen_y: np.ndarray,
    x_range: Sequence[float],
    y_range: Sequence[float],
    *,
    n_classes: int,
    size: tuple[int, int] = (760, 420),
    supersample: int = 2,
) -> tuple[str, tuple[float, float], tuple[float, float]] | None:
    """The generated points' trails drawn into a transparent PNG, or None if nothing shows.

    Returns the image as a ``data:`` URI and the x and y ranges it covers (the painted part of
    a ``size`` pixel canvas over ``x_range`` x ``y_range``, cut to what was painted).

    ``trails`` is (T, m, 2) from :func:`trail_positions`, ``gen_y`` the m points' classes. What
    :func:`app.ui.figures.toy_figure` draws as SVG traces (segments in up to three age bands,
    older = fainter, and a dot at each past position), painted here with the same colours,
    line width (1.5 px) and dot size (3 px); a dot takes its band's opacity. The page uses it
    while a run trains: the trails are a few hundred SVG paths and markers, which were about
    half of a browser redraw (~40 of ~80 ms for the default view in headless Chromium), and
    one image costs next to nothing. Each band is drawn ``supersample`` times larger and
    reduced (anti-aliasing), on a layer cut to its bounding box, and composited in age order.
    """
    from PIL import Image, ImageDraw

    tr = np.asarray(trails, dtype=np.float64)
    g = np.asarray(gen_y).reshape(-1).astype(int)
    if tr.ndim != 3 or tr.shape[0] < 2 or tr.shape[1] == 0 or tr.shape[1] != len(g):
        return None
    T = tr.shape[0]
    w, h = int(size[0]), int(size[1])
    k = int(supersample)
    (x0, x1), (y0, y1) = (float(v) for v in x_range), (float(v) for v in y_range)
    px = (tr[..., 0] - x0) / (x1 - x0) * w * k          # (T, m), supersampled pixels
    py = (y1 - tr[..., 1]) / (y1 - y0) * h * k
    finite = np.isfinite(px) & np.isfinite(py)
    colors = class_colors(max(int(n_classes), int(g.max()) + 1))
    lw, rad = max(1, round(1.5 * k)), 1.5 * k
    pad = int(np.ceil(max(lw, 2 * rad))) + k
    out = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    for c in np.unique(g):
        idx = np.flatnonzero(g == c)
        rgb = tuple(int(colors[int(c)][i:i + 2], 16) for i in (1, 3, 5))
        for band in np.array_split(np.arange(T - 1), min(3, T - 1)):
            alpha = int(round(255 * (0.15 + 0.6 * (band[-1] + 1) / (T - 1))))
            rows = np.concatenate([band, band + 1])
            ok = finite[np.ix_(rows, idx)]
            if not ok.any():
                continue
            bx, by = px[np.ix_(rows, idx)][ok], py[np.ix_(rows, idx)][ok]
            # the band's bounding box on the (supersampled) canvas, in whole output pixels
            lo_x = max(0, int(np.floor((bx.min() - pad) / k)))
            hi_x = min(w, int(np.ceil((bx.max() + pad) / k)))
            lo_y = max(0, int(np.floor((by.min() - pad) / k)))
            hi_y = min(h, int(np.ceil((by.max() + pad) / k)))
            if hi_x <= lo_x or hi_y <= lo_y:
                continue
            ox, oy = lo_x * k, lo_y * k
            # the band's coverage (alpha only: one colour per band), reduced, then coloured
            mask = Image.new("L", ((hi_x - lo_x) * k, (hi_y - lo_y) * k), 0)
            draw = ImageDraw.Draw(mask)
            for a in band:
                for j in idx:
                    if finite[a, j] and finite[a + 1, j]:
                        draw.line([(px[a, j] - ox, py[a, j] - oy), (px[a + 1, j] - ox, py[a + 1, j] - oy)],
                                  fill=alpha, width=lw)
                    if finite[a, j]:
                        cx, cy = px[a, j] - ox, py[a, j] - oy
                        draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=alpha)
            layer = Image.new("RGBA", (hi_x - lo_x, hi_y - lo_y), rgb + (0,))
            layer.putalpha(mask.reduce(k) if k > 1 else mask)
            out.alpha_composite(layer, dest=(lo_x, lo_y))
    box = out.getbbox()
    if box is None:
        return None
    # only the painted box is encoded (most of the view is empty), placed where it belongs
    bx0, by0, bx1, by1 = box
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    return (_png_uri(out.crop(box), compress_level=1),
            (x0 + bx0 * sx, x0 + bx1 * sx), (y1 - by1 * sy, y1 - by0 * sy))


def trail_positions(snaps: Sequence[Snapshot], n: int = TRAIL_LENGTH) -> np.ndarray | None:
    """Positions of the generated points in the last ``n`` snapshots, oldest first (T, m, 2).

    Snapshots without generated points (or with a different number of them) are skipped; None
    when fewer than two positions are known.
    """
    rows: list[np.ndarray] = []
    m = None
    for snap in reversed(snaps):
        g = snap.generated
        if g is None:
            continue
        if m is None:
            m = len(g.x)
        if len(g.x) != m:
            break
        rows.append(np.asarray(g.x, dtype=np.float64)[:, :2])
        if len(rows) == n:
            break
    if len(rows) < 2:
        return None
    return np.stack(rows[::-1])


def generated_stats(gen: Generated | None, hulls: Mapping[int, np.ndarray],
                    nearest_class: Any = None) -> dict[str, float]:
    """What the generated points do at one snapshot.

    Parameters
    ----------
    nearest_class : callable, optional
        ``(m, 2) points -> (m,) class of the nearest real training point`` (the page's runs
        keep a search tree of their training set); gives ``bleed``.

    Returns
    -------
    dict
        ``misclassified``: share of generated points M assigns to another class than the one
        they were generated for; ``hull_distance``: their mean distance to the boundary of
        their class's convex hull (small = on the periphery); ``inside``: share inside the
        hull; ``bleed``: share whose nearest real point belongs to another class (they sit in
        another class's ground; ``bench/figure1_toy.py`` measures the same). NaN when there
        are no generated points (``bleed`` also without ``nearest_class``).
    """
    nan = float("nan")
    if gen is None or len(gen.x) == 0:
        return {"misclassified": nan, "hull_distance": nan, "inside": nan, "bleed": nan}
    x = np.asarray(gen.x, dtype=np.float64)[:, :2]
    y = np.asarray(gen.y).reshape(-1)
    d = np.full(len(x), np.nan)
    for c, hull in hulls.items():
        sel = y == c
        if sel.any() and len(hull):
            d[sel] = hull_distance(x[sel], hull)
    scale = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else 1.0
    ok = np.isfinite(d)
    bleed = nan
    if nearest_class is not None:
        fin = np.isfinite(x).all(axis=1)
        if fin.any():
            bleed = float(np.mean(np.asarray(nearest_class(x[fin])).reshape(-1) != y[fin]))
    return {
        "misclassified": float(np.mean(np.asarray(gen.m_pred) != y)),
        "hull_distance": float(np.mean(np.abs(d[ok]))) if ok.any() else nan,
        "inside": float(np.mean(d[ok] >= -1e-5 * max(scale, 1e-12))) if ok.any() else nan,
        "bleed": bleed,
    }


def real_hull_distance(x: np.ndarray, y: np.ndarray, hulls: Mapping[int, np.ndarray]) -> float:
    """Mean distance of the real minority points to their hull's boundary (a reference line)."""
    ds = []
    for c, hull in hulls.items():
        if len(hull) > 2:
            ds.append(np.abs(hull_distance(np.asarray(x)[np.asarray(y) == c], hull)))
    return float(np.mean(np.concatenate(ds))) if ds else float("nan")


# ------------------------------------------------------------------------------------------
# generator health (gamo.health, computed by the engine at each snapshot)
# ------------------------------------------------------------------------------------------
def collapsed_classes(health: Mapping[str, Mapping[str, Any]] | None) -> list[int]:
    """The classes a snapshot's health marks as collapsed, ascending."""
    return sorted(int(c) for c, h in (health or {}).items() if h.get("collapsed"))


def collapse_message(cls: int | str, h: Mapping[str, Any], method: str = "gamo") -> str:
    """The plain warning for one collapsed class (Markdown), saying what the collapse means.

    Parameters
    ----------
    cls : class
    h : mapping
        That class's entry of :func:`gamo.health.generator_health`.
    method : str
        The run's method (its label names who adds the duplicates).
    """
    label = METHOD_LABELS.get(method, method)
    n = h.get("n")
    distinct, eff = h.get("distinct_top"), h.get("eff_parents")
    head = f"**The generator has collapsed for class {cls}.** "
    if (distinct is not None and distinct <= 1) or (eff is not None and eff < 1.5):
        facts = []
        if distinct is not None:
            facts.append(f"{distinct} distinct heaviest parent for {n} points")
        if eff is not None:
            facts.append(f"{eff:.1f} effective parents per point")
        return (head + "Every generated point of this class is (nearly) one real member"
                + (f" ({', '.join(facts)})" if facts else "")
                + f", so {label} adds duplicates of that member, not new points: M learns "
                "nothing about the class it could not learn from the real points alone.")
    spread, centre = h.get("spread_self"), h.get("spread")
    cover = f" (together they cover {spread:.0%} of the real class's spread)" if spread is not None else ""
    text = (head + f"Its {n} generated points sit (nearly) on one spot{cover}, so {label} adds "
            "near-duplicates of one point, not new points spread over the class.")
    if centre is not None and centre < 1 / 3:   # the spot is the class's centre
        text += (" The spot is the class's centre: a convex generator that averages many "
                 "members lands there, as GAMO's untrained generator does at the start.")
    return text


def _cell(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def health_markdown(health: Mapping[str, Mapping[str, Any]] | None) -> str:
    """A compact Markdown table of a snapshot's generator health, one row per minority class.

    Columns: class (marked when collapsed), effective parents, distinct top parents / n,
    spread (mean distance to the real class centre, relative to the real points'), self-spread
    (mean distance to the points' own centre, same scale), M-share (points M gives their class).
    "–" where a measure does not apply. Empty for no health.
    """
    if not health:
        return ""
    lines = ["| class | effective parents | distinct top parents / n | spread | self-spread | M-share |",
             "|---:|---:|---:|---:|---:|---:|"]
    for c in sorted(health, key=lambda k: int(k)):
        h = health[c]
        top = "–" if h.get("distinct_top") is None else f"{h['distinct_top']} / {h.get('n')}"
        mark = f"**{c} ⚠ collapsed**" if h.get("collapsed") else str(c)
        lines.append(f"| {mark} | {_cell(h.get('eff_parents'), '.1f')} | {top} | "
                     f"{_cell(h.get('spread'), '.2f')} | {_cell(h.get('spread_self'), '.2f')} | "
                     f"{_cell(h.get('m_share'), '.0%')} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------
def toy_view(
    snap: Snapshot | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    hulls: Mapping[int, np.ndarray],
    x_range: Sequence[float],
    y_range: Sequence[float],
    trails: np.ndarray | None = None,
    selected: int | None = None,
    show_d: bool = True,
    d_class: int | None = None,
    title: str = "",
    height: int = 560,
    uirevision: str = "toylab",
    real_gl: bool = True,
    real_image: str | None = None,
    contour_labels: bool = True,
    trails_as_image: bool = False,
    image_size: tuple[int, int] = (760, 420),
    trails_legend: bool = False,
    as_dict: bool = False,
    legend_px: int | None = None,
    title_color: str | None = None,
) -> go.Figure | dict[str, Any]:
    """The main 2D view of one run at one snapshot (see :func:`app.ui.figures.toy_figure`).

    Adds to each generated point's hover its top convex parents and weights, and highlights
    the ``selected`` point's parents (``parents_x = x_train[parent_idx[selected]]``). Real
    points are drawn with WebGL by default (``real_gl``), which halves a browser redraw; with
    ``real_image`` (from :func:`real_points_image` on the same axes) they are one static image
    instead (legend entries kept, no hover on real points), which is cheaper still.
    ``contour_labels=False`` drops the numbers on D's contours (placing them is a large part
    of a browser redraw; the page drops them only while a run trains).
    ``trails_as_image=True`` paints the trails into one image of ``image_size`` pixels
    (:func:`trails_image`) placed above the real points instead of SVG traces (the page does
    so while a run trains; a legend entry is kept).
    ``trails_legend=True`` lists the trails in the legend even before there are any (the page,
    when trails are on: the legend, and the plot area above it, then stay the same as they
    appear). ``as_dict=True`` returns plain dicts for :func:`app.ui.figures.figure_json` (the page's
    live path: no Plotly objects are built) instead of a ``go.Figure``.
    ``legend_px``: fixed margins, with ``legend_px`` pixels at the bottom for the legend, which
    Plotly may not grow (the compare grid: every panel's plot area is then the same size, whatever
    its legend holds). ``title_color``: the title's colour (a method's colour in compare mode).
    """
    n_classes = int(np.max(y_train)) + 1
    kw: dict[str, Any] = {}
    gen = snap.generated if snap is not None else None
    if snap is not None and snap.grid is not None:
        kw.update(xs=snap.grid.xs, ys=snap.grid.ys, m_proba=snap.grid.m_proba)
        if show_d and snap.grid.d_real is not None and d_class is not None:
            kw.update(d_real=snap.grid.d_real, d_class=int(min(d_class, snap.grid.d_real.shape[-1] - 1)))
    trail_uri = None
    if gen is not None:
        kw.update(gen_x=np.asarray(gen.x)[:, :2], gen_y=gen.y)
        if trails is not None and trails.shape[1] == len(gen.x):
            if trails_as_image:
                trail_uri = trails_image(trails, gen.y, x_range, y_range, n_classes=n_classes,
                                         size=image_size)
            else:
                kw.update(trails=trails)
        if selected is not None and 0 <= selected < len(gen.x):
            kw.update(selected=int(selected))
            if gen.parent_idx is not None:
                kw.update(parents_x=np.asarray(x_train)[gen.parent_idx[selected]],
                          parents_w=gen.parent_w[selected])
    spec = toy_figure(
        x_train, y_train, hulls=hulls, x_range=x_range, y_range=y_range, title=title,
        n_classes=n_classes, height=height, uirevision=uirevision, as_dict=True,
        real_gl=real_gl and real_image is None, **kw,
    )
    data, layout = spec["data"], spec["layout"]
    if gen is not None:
        _add_parent_hover(data, gen)
    if real_image is not None:
        _real_as_image(spec, real_image, x_range, y_range)
    if trail_uri is not None:
        _add_image(layout, *trail_uri)      # above the real points' image
    if (trail_uri is not None or trails_legend) and gen is not None and \
            not any(tr.get("legendgroup") == "trails" for tr in data):
        at = next((i for i, tr in enumerate(data) if tr.get("meta") == "generated"), len(data))
        data.insert(at, trails_legend_entry(class_colors(n_classes)[int(np.min(gen.y))]))
    if not contour_labels:
        for tr in data:
            if tr["type"] == "contour" and str(tr.get("name", "")).startswith("D("):
                tr["contours"] = dict(tr["contours"], showlabels=False)
                tr["name"] = f"{tr['name']} (0.1, 0.3, …, 0.9)"
    # legend under the plot, so the plot gets the width
    layout["legend"] = dict(orientation="h", yanchor="top", y=-0.16, xanchor="left", x=0.0,
                            itemsizing="constant", font=dict(size=11))
    if legend_px is not None:
        # the same plot area in every panel: margins Plotly may not grow, the legend in the
        # bottom margin (placed on the figure's container, not on the plot)
        layout["margin"] = dict(l=40, r=10, t=40, b=int(legend_px), autoexpand=False)
        layout["legend"] = dict(orientation="h", yref="container", y=0.0, yanchor="bottom",
                                xanchor="left", x=0.0, itemsizing="constant", font=dict(size=10))
    if title_color and layout.get("title"):
        layout["title"] = dict(layout["title"], font=dict(color=title_color))
    return spec if as_dict else go.Figure(data=data, layout=layout, _validate=False)


def _real_as_image(spec: dict[str, Any], uri: str, x_range: Sequence[float],
                   y_range: Sequence[float]) -> None:
    """Empty the real-point traces (kept as legend entries) and put the image below."""
    for tr in spec["data"]:
        if str(tr.get("legendgroup", "")).startswith("real"):
            tr.update(x=[None], y=[None], hoverinfo="skip")
    _add_image(spec["layout"], uri, x_range, y_range)


def _add_image(layout: dict[str, Any], uri: str, x_range: Sequence[float], y_range: Sequence[float]) -> None:
    """Stretch an image over the axes' ranges, below the traces and above earlier images."""
    (x0, x1), (y0, y1) = x_range, y_range
    layout["images"] = list(layout.get("images", [])) + [
        dict(source=uri, xref="x", yref="y", x=float(x0), y=float(y1),
             sizex=float(x1) - float(x0), sizey=float(y1) - float(y0),
             sizing="stretch", layer="below", xanchor="left", yanchor="top")]


def _add_parent_hover(data: list[dict[str, Any]], gen: Generated) -> None:
    """Hovering a generated point lists its heaviest convex parents and M's verdict."""
    for tr in data:
        if tr.get("meta") != "generated" or tr.get("customdata") is None:
            continue
        rows = np.asarray(tr["customdata"]).reshape(-1).astype(int)
        texts = []
        for r in rows:
            verdict = ("M gets it right" if gen.m_pred[r] == gen.y[r]
                       else f"M says class {int(gen.m_pred[r])}")
            line = f"{verdict}"
            if gen.d_real is not None:
                line += f"; D(real) = {float(gen.d_real[r]):.2f}"
            if gen.parent_idx is not None:
                parts = [f"#{int(i)} ({float(w):.2f})" for i, w in
                         zip(gen.parent_idx[r][:TOP_PARENTS_SHOWN], gen.parent_w[r][:TOP_PARENTS_SHOWN])]
                line += "<br>top parents (weight): " + ", ".join(parts)
            texts.append(line)
        tr["text"] = texts
        tr["hovertemplate"] = (tr.get("hovertemplate") or "").replace("<extra></extra>", "") + \
            "<br>%{text}<br><i>click to show its parents</i><extra></extra>"


def generated_chart(series: Mapping[str, Any], real_distance: float | None = None, *,
                    height: int = 230) -> go.Figure:
    """Share of generated points M misclassifies, and their mean distance to the hull boundary."""
    lines = {"share M misclassifies": series["misclassified"],
             "mean distance to hull boundary": series["hull_distance"]}
    fig = metric_curves(series["steps"], lines, "Generated points",
                        colors={"share M misclassifies": "#d62728",
                                "mean distance to hull boundary": "#2ca02c"},
                        height=height, uirevision="generated", validate=False)
    # the legend under the plot (beside it, it took half the chart's width)
    fig.layout.legend = dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0.0,
                             font=dict(size=11))
    fig.layout.margin = dict(l=50, r=20, t=40, b=30)
    if real_distance is not None and np.isfinite(real_distance) and len(series["steps"]):
        # the label above the line's left end, on a white box, so the line does not cross it
        fig.add_hline(y=real_distance, line=dict(color="#2ca02c", dash="dot", width=1),
                      annotation_text="real minority points' distance", annotation_font_size=10,
                      annotation_position="top left", annotation_bgcolor="rgba(255,255,255,0.85)",
                      annotation_yshift=2)
    return fig


# ------------------------------------------------------------------------------------------
# exports and digests
# ------------------------------------------------------------------------------------------
def generated_table(gen: Generated | None, x_train: np.ndarray, step: int | None = None) -> pd.DataFrame:
    """The generated points with their convex parents and weights, one row per point.

    Columns: ``step``, ``point``, ``class``, ``x1``, ``x2``, ``m_pred``, ``m_wrong``,
    ``d_real`` (when the method has D), then for each parent rank j = 1..k:
    ``parent{j}_row`` (row of the training set), ``parent{j}_x1``, ``parent{j}_x2``,
    ``parent{j}_weight``.
    """
    if gen is None:
        return pd.DataFrame(columns=["step", "point", "class", "x1", "x2", "m_pred", "m_wrong"])
    x = np.asarray(gen.x)
    df = pd.DataFrame({
        "step": step if step is not None else np.nan,
        "point": np.arange(len(x)),
        "class": np.asarray(gen.y).astype(int),
        "x1": x[:, 0],
        "x2": x[:, 1],
        "m_pred": np.asarray(gen.m_pred).astype(int),
        "m_wrong": np.asarray(gen.m_pred) != np.asarray(gen.y),
    })
    if gen.d_real is not None:
        df["d_real"] = np.asarray(gen.d_real, dtype=np.float64)
    if gen.parent_idx is not None:
        xt = np.asarray(x_train)
        for j in range(gen.parent_idx.shape[1]):
            rows = gen.parent_idx[:, j]
            df[f"parent{j + 1}_row"] = rows.astype(int)
            df[f"parent{j + 1}_x1"] = xt[rows, 0]
            df[f"parent{j + 1}_x2"] = xt[rows, 1]
            df[f"parent{j + 1}_weight"] = np.asarray(gen.parent_w[:, j], dtype=np.float64)
    return df


# ------------------------------------------------------------------------------------------
# words: plural forms, class colours, captions that follow the data on screen
# ------------------------------------------------------------------------------------------
COLOR_NAMES = {"#1f77b4": "blue", "#d62728": "red", "#2ca02c": "green", "#ff7f0e": "orange",
               "#9467bd": "purple", "#8c564b": "brown", "#e377c2": "pink", "#17becf": "cyan",
               "#bcbd22": "olive", "#7f7f7f": "grey"}


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """``plural(1, "point")`` -> ``"1 point"``, ``plural(1000, "point")`` -> ``"1,000 points"``."""
    n = int(n)
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def color_name(k: int, n_classes: int) -> str:
    """The name of class ``k``'s colour in the lab's palette ("blue", "red", ...)."""
    col = class_colors(max(int(n_classes), int(k) + 1))[int(k)]
    return COLOR_NAMES.get(col, f"colour {col}")


def _majority_minority(counts: Sequence[int]) -> tuple[int, list[int]]:
    counts = [int(c) for c in counts]
    big = max(counts)
    majority = counts.index(big)
    return majority, [c for c, n in enumerate(counts) if n < big]


def classes_caption(counts: Sequence[int]) -> str:
    """The page's caption in the colours the classes really have, e.g. "Blue dots are the
    majority class (1,000 training points), red dots the minority (50)." (Markdown)."""
    k = len(counts)
    majority, minority = _majority_minority(counts)
    maj = (f"{color_name(majority, k).capitalize()} dots are the majority class"
           f"{'' if k == 2 else f' {majority}'} ({plural(counts[majority], 'training point')})")
    if not minority:
        return maj.replace("the majority class", "one class") + "; every class has the same size."
    if len(minority) == 1:
        c = minority[0]
        mins = f"{color_name(c, k)} dots the minority{'' if k == 2 else f' class {c}'} ({counts[c]:,})"
    else:
        mins = "the minorities are " + ", ".join(f"{color_name(c, k)} (class {c}, {counts[c]:,})"
                                                   for c in minority)
    return (f"{maj}, {mins}. Crosses are G's generated points, in their class's colour; "
            "the shaded background is the class M predicts there.")


def reading_guide(counts: Sequence[int]) -> str:
    """"How to read the picture" (Markdown) with the classes' real colours."""
    k = len(counts)
    majority, minority = _majority_minority(counts)
    mins = ", ".join(color_name(c, k) for c in minority) or "none"
    hull = (f"The **dashed {color_name(minority[0], k)} polygon** is the minority class's convex hull"
            if len(minority) == 1 else
            "Each **dashed polygon** (in its class's colour) is a minority class's convex hull")
    return f"""
* **Dots** are the real training points ({color_name(majority, k)}: majority; {mins}:
  minorit{'y' if len(minority) == 1 else 'ies'}); minority dots are drawn larger, outlined and on
  top, so that a class of a few points stays visible at any imbalance. The **shaded background**
  is the class M predicts there; the dark line is M's decision boundary.
* {hull}. G's points are weighted averages of real minority points, so they can never leave it.
* **Crosses** are G's points for a fixed set of noise vectors (the same cross is the same point
  at every step). With **trails** on (sidebar, View) faint lines show their recent paths. A cross
  M misclassifies sits on the wrong side of the boundary.
* **Dotted contours** (sidebar, View; methods with a discriminator D, such as GAMO) are D's
  "real" score for the chosen class: high where the real points of that class are.
* **Click a cross** to draw lines to its heaviest convex parents (thicker = more weight).
* **Generator health** (the table beside the plot) says whether G makes new points or copies:
  when every generated point of a class is (nearly) one real point, the page warns that the
  generator has *collapsed* for that class; its points then add duplicates, not information.
* **The timeline** (once a run is paused) goes back through the run's snapshots: the picture,
  the curves and this text at that step; **Replay** plays them again.
"""


# ------------------------------------------------------------------------------------------
# the explanation panel
# ------------------------------------------------------------------------------------------
def last_mover(action: str | None, method: str) -> str:
    """Which player moved last: "M", "D", "G", "all" (a full iteration) or "none"."""
    if not action or action in ("reset", "start"):
        return "none"
    if action in ("M", "D", "G"):
        return action
    return "all" if len(method_players(method)) > 1 else "M"


_PLAYER_TEXT = {
    "M": ("**M, the classifier, just moved.** It took one gradient step on a batch of real "
          "points *plus* a batch of G's points labelled with the class they were made for. "
          "It wants every point, real or generated, on the right side of its boundary, so "
          "the shaded regions shift to take the generated points in."),
    "D": ("**D, the discriminator, just moved.** For each class it learns to tell real "
          "points from G's points. Its \"real\" score (dotted contours) rises where the real "
          "points of the class are dense and falls where only generated points sit."),
    "G": ("**G, the generator, just moved.** It changed its convex weights so that its points "
          "land where M gets them *wrong* (its target is the other class) while D still calls "
          "them real. The points can never leave the dashed hull: they are weighted averages "
          "of real minority points. Watch them slide toward the hull's edge that faces the "
          "majority."),
    "G_free": ("**G, the generator, just moved.** This generator is *unconstrained*: it outputs "
               "any point of the plane, not a convex combination, so nothing keeps its points "
               "inside the dashed hull. It moves them to where M gets them wrong"
               "{d}."),
}

# methods that train only M: what they do instead of a game
_M_ONLY_TEXT = {
    "baseline": ("trains only M, on the real (imbalanced) points. Nothing speaks for the "
                 "minority class except its few points, so M's cheapest move is to push the "
                 "boundary into the minority region: watch the minority recall."),
    "smote": ("trains M on the real points plus SMOTE's synthetic ones (the crosses): each is "
              "a random point on the segment between a minority point and one of its nearest "
              "minority neighbours. They are made once, before training, so they never move."),
    "borderline_smote": ("trains M on the real points plus Borderline-SMOTE's synthetic ones "
                         "(the crosses), interpolated only from minority points near the "
                         "majority. They are made once, before training, so they never move."),
    "adasyn": ("trains M on the real points plus ADASYN's synthetic ones (the crosses), made "
               "mostly around the minority points that are hardest to learn. They are made "
               "once, before training, so they never move."),
    "class_weighted": ("trains only M, but each minority point's loss counts as much as its "
                       "class is smaller: every class carries the same total weight."),
    "logit_adjusted": ("trains only M, with logits shifted by the log of each class's prior "
                       "during training, so the minority class gets a larger margin."),
    "ldam_drw": ("trains only M with label-distribution-aware margins (larger for small "
                 "classes) and, later in training, class-balanced re-weighting."),
    "augment": ("trains M on the real points plus transformed copies of the minority "
                "images (it works on images only)."),
}


# below this many iterations M is still learning the data: no verdict on the scores yet
MIN_VERDICT_STEP = 300
GENERATIVE = ("gamo", "gamo_no_d", "cg", "cg_d", "cgan", "smote", "borderline_smote", "adasyn", "dos")

# why a method may do worse than Baseline CN or give away the majority, and the setting to change
_WHY: dict[str, str] = {
    "gamo:ls": ("**Why, likely:** with the least-squares loss, D's squared error on its saturated "
                "output gives G almost no gradient once D is sure of itself, so nothing pulls G's "
                "points back out of the majority's ground and M learns to call that ground "
                "minority (`bench/results/figure1_toy.md` measured it on the Figure 1 data: "
                "majority recall 0.46 with LS against 0.84 with cross-entropy). **Try:** *Loss* → "
                "cross-entropy (CE) in the sidebar."),
    "gamo:ce": ("**Why, likely:** G wins against M faster than D pulls its points back onto the "
                "class's real shape. **Try:** a lower *Learning rate of G* or a higher *Learning "
                "rate of D* (sidebar, Live: no restart), or train longer."),
    "gamo_no_d": ("**Why, likely:** without D nothing keeps G's convex points on the class's real "
                  "shape: they fill the empty parts of its hull, where majority points live (the "
                  "paper's Figure 1(c)). **Try:** *Method* → GAMO (with D), with the cross-entropy "
                  "loss."),
    "cg": ("**Why, likely:** this generator is not convex: nothing ties its points to the minority "
           "class, and they wander into the majority. **Try:** *Method* → GAMO, whose points stay "
           "inside the minority's hull."),
    "cg_d": ("**Why, likely:** this generator is not convex: D alone does not keep its points off "
             "the majority's ground. **Try:** *Method* → GAMO, whose points stay inside the "
             "minority's hull."),
    "cgan": ("**Why, likely:** cGAN's G learns only to look real to D, not what M finds hard, and "
             "its oversampled points can cover majority ground. **Try:** *Method* → GAMO."),
    "smote": ("**Why, likely:** SMOTE draws points on segments between minority neighbours, and "
              "where the class is not convex (or noisy) those segments cross majority ground. "
              "**Try:** less *Noise*, *Method* → Borderline-SMOTE, or GAMO with D."),
    "borderline_smote": ("**Why, likely:** its points are made next to the majority on purpose, "
                         "and where the class is not convex they land on majority ground. "
                         "**Try:** less *Noise*, or *Method* → GAMO with D."),
    "adasyn": ("**Why, likely:** ADASYN makes most points around the hardest minority points, "
               "which sit among majority points. **Try:** *Method* → SMOTE, or GAMO with D."),
    "class_weighted": ("**Why, likely:** each minority point weighs as much as the imbalance ratio, "
                       "which at a high ratio moves M's boundary deep into the majority. **Try:** a "
                       "smaller imbalance, or *Method* → Logit-adjusted CN."),
    "logit_adjusted": ("**Why, likely:** the logit shift grows with the imbalance and moves M's "
                       "boundary into the majority. **Try:** a smaller imbalance, or train longer."),
    "ldam_drw": ("**Why, likely:** the late re-weighting moves M's boundary into the majority. "
                 "**Try:** a smaller imbalance, or train longer."),
}
_WHY_COLLAPSED = ("**Why, likely:** the generator has collapsed (see the warning under the plot): "
                  "its points are copies of one real point, so they add nothing M could not learn "
                  "from that point. **Try:** a lower *Learning rate of G*, or *Reset*.")
_WHY_OTHER = ("**Try:** train longer, lower the learning rates (sidebar, Live), or compare with "
              "the Figure 1 setup.")


def verdict(
    method: str,
    snap: Snapshot | None,
    *,
    minority: Sequence[int] = (1,),
    stats: Mapping[str, float] | None = None,
    reference: Mapping[str, Any] | None = None,
    loss: str = "ls",
    health: Mapping[str, Mapping[str, Any]] | None = None,
) -> str | None:
    """What the scores say about a run, when it is bad news (Markdown), else None.

    The run does **worse than Baseline CN** when ``reference`` (Baseline CN's test scores on the
    same data and seed after as many iterations: ``{"acsa", "recall", "steps"}``) has an ACSA
    higher by more than 0.02; it **gives away the majority** when its majority recall is below
    0.85 (or 0.1 below the reference's) while its generated points bleed into another class's
    ground (``stats["bleed"]`` at least 0.2, where the method generates points). Either way the
    text says why it likely happens and which setting changes it. Nothing before
    :data:`MIN_VERDICT_STEP` iterations, nor for Baseline CN itself.
    """
    if snap is None or method == "baseline" or snap.step < MIN_VERDICT_STEP:
        return None
    rec = np.asarray(snap.test.recall, dtype=np.float64)
    if not len(rec):
        return None
    maj_cls = [c for c in range(len(rec)) if c not in set(minority)]
    if not maj_cls:
        return None
    maj = float(np.mean(rec[maj_cls]))
    label = METHOD_LABELS.get(method, method)
    ref_maj = None
    worse = False
    if reference is not None:
        ref_rec = np.asarray(reference["recall"], dtype=np.float64)
        ref_maj = float(np.mean(ref_rec[maj_cls])) if len(ref_rec) == len(rec) else None
        worse = snap.test.acsa < float(reference["acsa"]) - 0.02
    bleed = float((stats or {}).get("bleed", float("nan")))
    gen_ok = method not in GENERATIVE or (np.isfinite(bleed) and bleed >= 0.2)
    giving = maj < (ref_maj - 0.1 if ref_maj is not None else 0.85) and gen_ok
    if not worse and not giving:
        return None
    parts = []
    if worse:
        parts.append(f"⚠️ **{label} does worse than Baseline CN on the same data:** ACSA "
                     f"{snap.test.acsa:.2f} against {float(reference['acsa']):.2f} (Baseline CN, same data "
                     f"and seed, {plural(int(reference.get('steps', snap.step)), 'iteration')}).")
    if giving:
        head = "It also gives away" if worse else f"⚠️ **{label} gives away"
        tail = "" if worse else "**"
        text = (f"{head} the majority class:{tail} majority recall {maj:.2f}"
                + (f" against {ref_maj:.2f} for Baseline CN" if ref_maj is not None else ""))
        if np.isfinite(bleed) and bleed > 0:
            text += (f"; {bleed:.0%} of the generated points lie nearer a point of another class "
                     "than one of their own: they bleed into the majority")
        parts.append(text + ".")
    if collapsed_classes(health):
        parts.append(_WHY_COLLAPSED)
    else:
        parts.append(_WHY.get(f"{method}:{loss}") or _WHY.get(method) or _WHY_OTHER)
    return " ".join(parts)


def explain(
    method: str,
    mover: str,
    snap: Snapshot | None,
    stats: Mapping[str, float] | None,
    *,
    minority: Sequence[int] = (1,),
    real_distance: float | None = None,
    state: str = "paused",
    health: Mapping[str, Mapping[str, Any]] | None = None,
    reference: Mapping[str, Any] | None = None,
    loss: str = "ls",
) -> str:
    """A few sentences for a student about what is on screen right now (Markdown).

    ``health`` is the snapshot's generator health (:func:`gamo.health.generator_health`): where
    a class has collapsed, the text says so instead of reading the points' closeness to the hull's
    edge as a good sign. ``reference`` (Baseline CN's scores on the same data) and ``loss`` feed
    :func:`verdict`, whose warning comes right after the first paragraph. A run in the ``error``
    state is said to have failed, never to be building.
    """
    label = METHOD_LABELS.get(method, method)
    parts: list[str] = []
    if snap is None:
        if state == "error":
            return (f"**{label} could not be trained on this data.** The message under the status "
                    "line says why; change the setting it names, or choose another method.")
        return f"Building **{label}** on this data…"
    players = method_players(method)
    has_d = "D" in players
    convex = method in ("gamo", "gamo_no_d")
    if method == "cgan":
        parts.append(
            f"**{label}** first trains a plain conditional GAN (G tries to fool D; M plays no "
            "part) for the first half of the run's steps, then oversamples every minority "
            "class once with G and trains M on the balanced set. Unlike GAMO, G never learns "
            "what M finds hard, and its points are not tied to the class's hull."
        )
    elif players == ("M",):
        parts.append(f"**{label}** " + _M_ONLY_TEXT.get(
            method, "trains only M; it has no generator and no discriminator."))
    elif mover == "all" or (mover == "none" and state == "running"):
        who = "M and D update" if has_d else "M updates"
        parts.append(
            f"**Every iteration of {label}:** {who} on a real batch and a generated batch, "
            "then G updates class by class against the new M" + (", then against D." if has_d else ".")
            + " G tries to make M misclassify its points, M learns from exactly those points."
        )
    elif mover == "G" and not convex:
        parts.append(_PLAYER_TEXT["G_free"].format(
            d=", while D pulls them back toward the real points" if has_d else ""))
    elif mover in _PLAYER_TEXT:
        parts.append(_PLAYER_TEXT[mover])
    else:
        parts.append(
            f"**{label} at step {snap.step}.** Press Play, or Step one player at a time to see "
            "what each one does. The crosses are G's points for a fixed set of noise vectors, "
            "so the same cross is the same point at every step."
        )
    if stats is not None and np.isfinite(stats.get("misclassified", np.nan)):
        mis = stats["misclassified"]
        dist = stats["hull_distance"]
        if players == ("M",):
            parts.append(f"M misclassifies **{mis:.0%}** of the synthetic points shown.")
        elif mis > 0.5:
            parts.append(f"Right now M puts **{mis:.0%}** of G's points in the wrong class: G is "
                         "winning, and these hard points are what M trains on next.")
        elif mis > 0:
            parts.append(f"M misclassifies **{mis:.0%}** of G's points: the ones on the far side "
                         "of the boundary are the hard cases M is learning from.")
        else:
            parts.append("M classifies every generated point correctly: G must move them closer "
                         "to the boundary to be useful.")
        # an untrained generator is not judged (it starts on few members): as the warnings do
        collapsed = collapsed_classes(health) if snap is not None and snap.step > 0 else []
        if np.isfinite(dist) and players != ("M",):
            ref = (f" (a typical real minority point: {real_distance:.2f})"
                   if real_distance is not None and np.isfinite(real_distance) else "")
            if collapsed:   # a collapsed generator's points are near the edge by accident
                which = ", ".join(str(c) for c in collapsed)
                parts.append(f"Their mean distance to the hull's edge is **{dist:.2f}**{ref}, but "
                             f"the generator has collapsed for class {which} (see the warning "
                             "under the plot): its points are (nearly) copies of one point, so "
                             "where they sit says nothing about covering the class.")
            else:
                parts.append(f"Their mean distance to the hull's edge is **{dist:.2f}**{ref}: "
                             + ("they hug the class periphery, where new points help M most."
                                if real_distance and np.isfinite(real_distance) and dist < 0.6 * real_distance
                                else "smaller means closer to the class periphery."))
        if method == "gamo_no_d":
            parts.append("Without D nothing keeps the points on the class's actual shape: any "
                         "convex combination is allowed, even in the empty part of the hull.")
        elif method == "cg":
            parts.append("Without D and without the convex constraint, nothing ties the points "
                         "to the minority class: watch how far they wander.")
    bad = verdict(method, snap, minority=minority, stats=stats, reference=reference, loss=loss,
                  health=health)
    if bad:
        parts.insert(1, bad)
    rec = snap.test.recall
    if minority and len(rec):
        maj = [r for c, r in enumerate(rec) if c not in minority]
        mins = ", ".join(f"class {c}: {rec[c]:.2f}" for c in minority if c < len(rec))
        parts.append(
            f"Test recall — minority {mins}; majority {np.mean(maj):.2f}. "
            f"ACSA {snap.test.acsa:.2f}, GM {snap.test.gm:.2f}."
        )
    return "\n\n".join(parts)

