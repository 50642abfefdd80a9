"""The Ablation Grid's logic (the paper's Figure 4 for any dataset, profile and seeds); never
calls Streamlit.

* Settings (:class:`GridSettings`, mirrored in the URL): a dataset choice (:data:`DATASETS`), an
  imbalance profile, the loss, seeds, methods and the training length.
* Each (method, seed) is a :class:`Cell`: the stored run that matches the settings
  (:func:`identity`: data, networks and training, not where or how fast it ran), looked for in
  the user's runs folder and the committed benchmark runs, under the table layout
  (``<root>/<store>/<method>-seed<k>``, :func:`gamo.tables.store_name`) and the page's own
  (``<root>/ablation/<profile>-<length>/<store>/<method>-seed<k>``); a missing one is trained
  into the user's folder under the page's layout (a folder per profile and length, so that runs
  of other settings never meet).
* The pieces the page draws: the figure's cells as images (:func:`cell_image`), the grid as one
  clickable Plotly figure (:func:`grid_figure`), Table 1 (:func:`table1_rows`), recall per class
  (:func:`recall_figure`), the caption per row (:func:`captions`) and the claim measures
  (:func:`measure_rows`).
"""
from __future__ import annotations

import base64
import io
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.ui.curves import method_color
from gamo import figure4
from gamo.claims import CLAIMS, Verdict
from gamo.config import METHOD_LABELS, METHODS, DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.errors import GamoError
from gamo.jobs import JobSpec, run_progress
from gamo.runs import CHECKPOINT, CONFIG, load_config, run_info
from gamo.tables import PAPER, ROWS, mean_std, protocol, store_name

__all__ = ["DATASETS", "DatasetChoice", "GridSettings", "DEFAULTS", "QUERY_KEYS", "Cell", "settings_from_query",
           "settings_to_query", "choice", "profile_of", "length_of", "cell_config", "identity", "store_folder",
           "page_base", "find_cells", "runs_by_method", "train_spec", "figure_spec", "reference_spec",
           "reference_data", "paper_column", "table1_rows", "measure_rows", "captions", "recall_figure",
           "cell_image", "grid_figure", "cell_samples", "parent_images", "grid_png_bytes", "run_summary",
           "figure_info", "seeds_note", "check_profile", "ALL_METHODS"]

ALL_METHODS = tuple(m for m in ROWS if m in METHODS) + tuple(m for m in METHODS if m not in ROWS)
"""Every method the engine has, in the paper's row order."""


@dataclass(frozen=True)
class DatasetChoice:
    key: str
    label: str
    dataset: str               # the engine's name
    family: str                # ModelConfig.family of the runs ("auto": the dataset's default)
    unit: str                  # "epochs" or "steps": how the training length is counted
    length: int                # the default length (the committed runs' where there are some)
    profile: str               # the default profile
    n_classes: int = 2         # toys with a free class count
    note: str = ""


DATASETS: dict[str, DatasetChoice] = {c.key: c for c in (
    DatasetChoice("fashion-mnist-dense", "Fashion-MNIST, flattened (the paper's MNIST ablation, offline)",
                  "fashion-mnist", "dense", "epochs", 20, "paper",
                  note="28x28 images as 784 pixels, F the identity: the samples are images. The paper's Figure 4 "
                       "is on MNIST; Fashion-MNIST is its offline stand-in here."),
    DatasetChoice("digits", "scikit-learn digits, 8x8 (flattened)", "digits", "auto", "epochs", 500, "paper:max=140",
                  note="The small offline digits set: runs take a minute or two on a CPU."),
    DatasetChoice("fashion-mnist-conv", "Fashion-MNIST, convolutional features (Table 1)", "fashion-mnist", "auto",
                  "epochs", 20, "paper",
                  note="Samples live in F's feature space: the grid shows their decodings once GAMO2pix decoders are "
                       "trained, else each sample's nearest real image (labelled as such)."),
    DatasetChoice("toy-moons", "2D toy: moons", "toy:moons", "auto", "steps", 2000, "step:ir=10"),
    DatasetChoice("toy-circles", "2D toy: circles", "toy:circles", "auto", "steps", 2000, "step:ir=10"),
    DatasetChoice("toy-nonconvex", "2D toy: non-convex minority (Figure 1)", "toy:nonconvex", "auto", "steps", 2000,
                  "step:ir=10"),
    DatasetChoice("toy-blobs", "2D toy: 4 blobs", "toy:blobs", "auto", "steps", 2000, "exp:ir=10", n_classes=4),
    DatasetChoice("toy-spirals", "2D toy: 3 spirals", "toy:spirals", "auto", "steps", 2000, "exp:ir=10", n_classes=3),
)}

MAX_SEEDS = 10
MAX_LENGTH = 100_000


@dataclass(frozen=True)
class GridSettings:
    """The page's settings (URL keys in :data:`QUERY_KEYS`). ``profile`` "" and ``length`` 0
    mean the dataset's defaults."""

    data: str = "fashion-mnist-dense"
    profile: str = ""
    loss: str = "ls"
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: str = ",".join(figure4.FIGURE4_METHODS)
    length: int = 0

    @property
    def method_list(self) -> list[str]:
        return [m for m in self.methods.split(",") if m]


DEFAULTS = GridSettings()
QUERY_KEYS = {"d": "data", "p": "profile", "l": "loss", "s": "seeds", "m": "methods", "n": "length"}
_PROFILE_RE = re.compile(r"^[a-z]+(:[a-z0-9=,.]+)?$")


def _parse_field(name: str, raw: str) -> Any:
    raw = raw.strip()
    if name == "data":
        if raw not in DATASETS:
            raise ValueError(f"choose one of {', '.join(DATASETS)}")
        return raw
    if name == "profile":
        if raw and not _PROFILE_RE.match(raw.lower()):
            raise ValueError("not a profile (e.g. paper, exp:ir=20, step:ir=10)")
        return raw.lower()
    if name == "loss":
        if raw not in ("ls", "ce"):
            raise ValueError("use ls or ce")
        return raw
    if name == "seeds":
        try:
            seeds = tuple(sorted({int(v) for v in raw.split(",") if v.strip()}))
        except ValueError:
            raise ValueError("give whole numbers separated by commas") from None
        if not seeds or len(seeds) > MAX_SEEDS or min(seeds) < 0 or max(seeds) > 9999:
            raise ValueError(f"give 1 to {MAX_SEEDS} seeds between 0 and 9999")
        return seeds
    if name == "methods":
        ms = [m for m in raw.split(",") if m]
        bad = [m for m in ms if m not in METHODS]
        if bad or not ms:
            raise ValueError(f"unknown method {bad[0]!r}" if bad else "give at least one method")
        return ",".join(dict.fromkeys(ms))
    if name == "length":
        try:
            v = int(raw)
        except ValueError:
            raise ValueError("not a whole number") from None
        if not 0 <= v <= MAX_LENGTH:
            raise ValueError(f"must be between 0 (the default) and {MAX_LENGTH}")
        return v
    raise ValueError("unknown setting")


def settings_from_query(params: Mapping[str, Any]) -> tuple[GridSettings, list[str]]:
    """Settings from the URL, with one warning per value ignored."""
    from app.ui.url_state import parse_query, replace

    values, warnings = parse_query(params, QUERY_KEYS, DEFAULTS, _parse_field)
    return replace(DEFAULTS, **values), warnings


def settings_to_query(s: GridSettings) -> dict[str, str]:
    from app.ui.url_state import fmt

    return {k: fmt(getattr(s, name)) for k, name in QUERY_KEYS.items()}


def choice(s: GridSettings) -> DatasetChoice:
    return DATASETS[s.data]


def profile_of(s: GridSettings) -> str:
    return s.profile or choice(s).profile


def length_of(s: GridSettings) -> int:
    return s.length or choice(s).length


def is_toy(s: GridSettings) -> bool:
    return choice(s).dataset.startswith("toy:")


def data_config(s: GridSettings, seed: int = 0) -> DataConfig:
    c = choice(s)
    if is_toy(s):
        return DataConfig(dataset=c.dataset, profile=profile_of(s), seed=seed, n_classes=c.n_classes)
    return protocol(c.dataset, s.loss, seed, "baseline", profile=profile_of(s), epochs=1).data


_AVAILABLE = {"fashion-mnist": 5800, "digits": 144}    # training images a class can give, about


def check_profile(s: GridSettings) -> list[int] | None:
    """The settings' per-class training counts (None: ``none``); DataError with the reason for
    a profile the dataset cannot take (the loader checks the exact availability again)."""
    from gamo.data.profiles import parse_profile

    c = choice(s)
    k = c.n_classes if is_toy(s) else 10
    avail = [DataConfig.n_per_class if is_toy(s) else _AVAILABLE.get(c.dataset, 5000)] * k
    return parse_profile(profile_of(s), k, avail, c.dataset)


def cell_config(s: GridSettings, method: str, seed: int) -> RunConfig:
    """The run of one cell: the table protocol (:func:`gamo.tables.protocol`) for image sets,
    the engine's defaults for toys; one CPU thread (several cells train at once).

    Raises ConfigError for a bad setting (the message says which)."""
    c = choice(s)
    n = length_of(s)
    if is_toy(s):
        return RunConfig(data=data_config(s, seed), model=ModelConfig(),
                         train=TrainConfig(method=method, loss=s.loss, steps=n, seed=seed, threads=1))
    return protocol(c.dataset, s.loss, seed, method, profile=profile_of(s), epochs=n, family=c.family, threads=1)


_DATA_KEYS = ("dataset", "profile", "n_test_per_class", "n_val_per_class", "seed", "n_per_class", "n_classes",
              "noise", "label_column")
_TRAIN_KEYS = ("method", "loss", "steps", "epochs", "batch_size", "lr_m", "lr_d", "lr_g", "beta1", "seed")


def identity(cfg: RunConfig) -> dict[str, Any]:
    """What makes two runs the same cell: the data, the networks and the training, not where
    or how fast it ran (device, threads, snapshots, data root)."""
    d = cfg.to_dict()
    data = {k: d["data"][k] for k in _DATA_KEYS}
    if not cfg.data.dataset.startswith("toy:"):
        for k in ("n_per_class", "n_classes", "noise"):
            data.pop(k)
    return {"data": data, "model": d["model"], "train": {k: d["train"][k] for k in _TRAIN_KEYS}}


def store_folder(s: GridSettings) -> str:
    """The folder of the settings' runs under a root (the tables' layout for image sets)."""
    c = choice(s)
    if is_toy(s):
        k = f"-k{c.n_classes}" if c.n_classes != 2 else ""
        return f"{c.dataset.replace(':', '-')}{k}-{s.loss}"
    return store_name(c.dataset, s.loss, c.family)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "default"


def page_base(s: GridSettings, root: Path) -> Path:
    """Where the page trains the settings' runs: ``root/ablation/<profile>-<length>/<store>``."""
    unit = "e" if choice(s).unit == "epochs" else "s"
    return Path(root) / "ablation" / f"{_slug(profile_of(s))}-{unit}{length_of(s)}" / store_folder(s)


@dataclass
class Cell:
    """One (method, seed) of the settings: the stored run, or where it will be trained.

    ``state``: ``ready`` (finished, figure files read), ``no figures`` (finished, no figure files
    yet; ``can_make``: it has a checkpoint to make them from), ``stale`` (figure files older than
    the run or the reference classifier: shown, and remade on request), ``running elsewhere``
    (a process outside this page trains it), ``stopped`` (resumable), ``missing`` (not trained),
    ``broken`` (the folder cannot be read; ``note`` says why)."""

    method: str
    seed: int
    path: Path
    state: str
    read_only: bool = False
    figure: figure4.RunFigure | None = None
    note: str = ""
    can_make: bool = False

    @property
    def key(self) -> str:
        return os.path.realpath(self.path)

    @property
    def label(self) -> str:
        return f"{METHOD_LABELS.get(self.method, self.method)}, seed {self.seed}"

    @property
    def finished(self) -> bool:
        return self.state in ("ready", "no figures", "stale")


@dataclass(frozen=True)
class Root:
    path: Path
    read_only: bool


def _candidates(s: GridSettings, method: str, seed: int, roots: Sequence[Root]) -> list[tuple[Path, bool]]:
    name = f"{method}-seed{seed}"
    out, seen = [], set()
    for r in roots:
        for d in (Path(r.path) / store_folder(s) / name, page_base(s, r.path) / name):
            key = os.path.realpath(d)
            if key not in seen:
                seen.add(key)
                out.append((d, r.read_only))
    return out


def _figure(path: Path, load=figure4.load_run) -> tuple[figure4.RunFigure | None, str]:
    try:
        return load(path), ""
    except GamoError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - a foreign folder must not break the page
        return None, f"{type(e).__name__}: {str(e)[:200]}"


def find_cells(s: GridSettings, roots: Sequence[Root], user_root: Path, *, reference: Any = None,
               load=figure4.load_run) -> list[Cell]:
    """A :class:`Cell` per method and seed (methods in the settings' order, then seeds). Never
    raises: damaged folders are ``broken`` cells with the reason in ``note``.

    ``load`` reads a run's figure files (the page passes a cached :func:`gamo.figure4.load_run`).
    """
    cells = []
    for m in s.method_list:
        for seed in s.seeds:
            try:
                want = identity(cell_config(s, m, seed))
            except GamoError as e:
                cells.append(Cell(m, seed, page_base(s, user_root) / f"{m}-seed{seed}", "broken", note=str(e)))
                continue
            cells.append(_find_cell(s, m, seed, want, roots, user_root, reference, load))
    return cells


_RANK = {"ready": 0, "stale": 0, "no figures": 0, "running elsewhere": 1, "stopped": 2}


def _find_cell(s, m, seed, want, roots, user_root, reference, load) -> Cell:
    target = page_base(s, user_root) / f"{m}-seed{seed}"
    found = []
    for d, ro in _candidates(s, m, seed, roots):
        if os.path.lexists(d):
            cell = _look(m, seed, d, ro, want, reference, load, os.path.realpath(d) == os.path.realpath(target))
            if cell is not None:
                found.append(cell)
    usable = [c for c in found if c.state != "broken"]
    if usable:
        return min(usable, key=lambda c: _RANK.get(c.state, 9))
    mine = [c for c in found if c.key == os.path.realpath(target)]
    if mine:
        return mine[0]                      # it cannot be trained there: the note says why
    note = f"{found[0].path} cannot be read ({found[0].note})" if found else ""
    return Cell(m, seed, target, "missing", note=note)


def _look(m, seed, d: Path, ro: bool, want, reference, load, is_target: bool) -> Cell | None:
    """The cell a folder holds, or None when it holds another cell's run (or nothing)."""
    info = run_info(d)
    if info.state == "broken":
        return Cell(m, seed, d, "broken", ro, note=info.note)
    if not (d / CONFIG).is_file():
        return None
    try:
        same = identity(load_config(d)) == want
    except GamoError as e:
        return Cell(m, seed, d, "broken", ro, note=str(e))
    if not same:
        return Cell(m, seed, d, "broken", ro, note="it holds a run of other settings: delete it on the Runs page "
                                                    "to train this cell there") if is_target else None
    if info.state == "finished":
        return _finished(m, seed, d, ro, reference, load)
    if info.state == "running":
        p = run_progress(d)
        where = f" ({p.line} {p.done:,} of {p.total:,} done)" if p and p.total else ""
        return Cell(m, seed, d, "running elsewhere", ro, note=f"another process trains it{where}")
    if ro:
        return None                           # a stopped committed run is not resumed from here
    return Cell(m, seed, d, "stopped", ro, note=info.note or "stopped: train it to resume")


def _finished(m, seed, d: Path, ro: bool, reference: Any, load) -> Cell:
    fig, why = _figure(d, load)
    if fig is None:
        return Cell(m, seed, d, "broken", ro, note=why)
    has_ck = (d / CHECKPOINT).is_file()
    if fig.grid is None or fig.claims is None:
        missing = not fig.problem or "no figure files yet" in fig.problem
        note = ("no figure files yet: the Make figure files button (or python -m gamo bench figure4) makes them"
                if missing else fig.problem) if has_ck else \
            "no figure files and no checkpoint to make them from (a fresh clone keeps only the results)"
        return Cell(m, seed, d, "no figures", ro, fig, note, can_make=has_ck)
    try:
        old = figure4.stale(fig, reference, int(fig.claims.get("n_claims") or figure4.N_CLAIMS))
    except (OSError, TypeError, ValueError):
        old = False
    if old:
        why = ("made without the reference classifier: remake them to measure class fidelity and Fréchet distance"
               if reference is not None and not (fig.claims.get("reference") or {}) and fig.claims.get("generates")
               else "older than the run's checkpoint or the reference classifier")
        return Cell(m, seed, d, "stale", ro, fig, why, can_make=has_ck)
    return Cell(m, seed, d, "ready", ro, fig)


def runs_by_method(cells: Sequence[Cell], seed: int | None = None) -> dict[str, list[figure4.RunFigure]]:
    """The finished runs of each method (one seed: ``seed``), in the cells' order."""
    out: dict[str, list[figure4.RunFigure]] = {}
    for c in cells:
        out.setdefault(c.method, [])
        if c.finished and c.figure is not None and (seed is None or c.seed == seed):
            out[c.method].append(c.figure)
    return out


# --------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------
def train_spec(s: GridSettings, cell: Cell) -> JobSpec:
    return JobSpec(key=cell.key, kind="train", label=cell.label, run_dir=str(cell.path),
                   config=cell_config(s, cell.method, cell.seed).to_dict(), n_claims=figure4.N_CLAIMS)


def figure_spec(cell: Cell) -> JobSpec:
    return JobSpec(key=cell.key, kind="figure", label=f"figure files: {cell.label}", run_dir=str(cell.path),
                   n_claims=figure4.N_CLAIMS)


def reference_data(s: GridSettings) -> DataConfig:
    """The dataset the reference classifier is trained on (profile and seed do not matter)."""
    c = choice(s)
    return DataConfig(dataset=c.dataset, n_classes=c.n_classes) if is_toy(s) else DataConfig(dataset=c.dataset)


def reference_spec(s: GridSettings) -> JobSpec:
    from gamo.reference import reference_key

    d = reference_data(s)
    return JobSpec(key=f"reference:{reference_key(d)}", kind="reference",
                   label=f"reference classifier: {choice(s).dataset}",
                   data={k: getattr(d, k) for k in ("dataset", "n_classes", "noise", "n_per_class")})


# --------------------------------------------------------------------------------------------
# Table 1, the claims, the captions
# --------------------------------------------------------------------------------------------
def paper_column(s: GridSettings) -> tuple[dict[str, tuple[float, float]], str]:
    """The paper's Table 1 numbers to put beside these runs, and which column they are."""
    c = choice(s)
    paper = PAPER.get((c.dataset, s.loss), {})
    if not paper:
        return {}, "The paper reports no numbers for this dataset."
    words = {
        "fashion-mnist-dense": "the paper's Table 1 Fashion-MNIST column (its convolutional networks: the paper's "
                               "flattened ablation is on MNIST, so the comparison is loose)",
        "digits": "the paper's Table 1 MNIST column (flattened 28x28 images; these are 8x8 digits)",
        "fashion-mnist-conv": "the paper's Table 1 Fashion-MNIST column",
    }.get(c.key, "the paper's Table 1")
    prof = "" if profile_of(s) == "paper" or c.key == "digits" and profile_of(s) == "paper:max=140" else \
        " (with the paper's profile, not this one)"
    return paper, f"Paper: {words}, {s.loss.upper()} loss{prof}."


def _ms(v: Sequence[float]) -> str:
    return mean_std(list(v), none="–")


def table1_rows(sums: Mapping[str, figure4.MethodSummary], paper: Mapping[str, tuple[float, float]],
                methods: Sequence[str]) -> list[dict[str, Any]]:
    """Table 1 for the runs: mean ± std over seeds of test ACSA and GM at the last epoch and at
    the best validation epoch (bv), with the paper's numbers (:func:`seeds_note` names the seeds)."""
    rows = []
    for m in methods:
        s, p = sums.get(m), paper.get(m)
        rows.append({
            "method": METHOD_LABELS.get(m, m),
            "ACSA": _ms(s.acsa) if s else "–", "GM": _ms(s.gm) if s else "–",
            "ACSA (bv)": _ms(s.best_acsa) if s else "–", "GM (bv)": _ms(s.best_gm) if s else "–",
            "paper ACSA": f"{p[0]:.2f}" if p else "–", "paper GM": f"{p[1]:.2f}" if p else "–",
        })
    return rows


def seeds_note(sums: Mapping[str, figure4.MethodSummary], methods: Sequence[str]) -> str:
    """Which finished seeds each method's row averages ("seeds 0, 1, 2" when all agree)."""
    per = {m: tuple(sums[m].seeds) if m in sums else () for m in methods}
    if len(set(per.values())) == 1:
        seeds = next(iter(per.values()), ())
        return f"seeds {', '.join(map(str, seeds))}" if seeds else "no finished seed"
    return "; ".join(f"{METHOD_LABELS.get(m, m)}: {' '.join(map(str, v)) or 'none'}" for m, v in per.items())


def _f(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


def measure_rows(sums: Mapping[str, figure4.MethodSummary], methods: Sequence[str]) -> list[dict[str, Any]]:
    """The claim measures per method (means over seeds and minority classes)."""
    rows = []
    for m in methods:
        s = sums.get(m)
        v = s.measures if s else {}
        if not v:
            continue
        rows.append({"method": METHOD_LABELS.get(m, m), "class fidelity": _f(v.get("fidelity")),
                     "majority share": _f(v.get("majority_share")), "Fréchet distance": _f(v.get("frechet"), 1),
                     "real floor": _f(v.get("floor"), 1), "OOD share": _f(v.get("ood_share")),
                     "near-duplicate share": _f(v.get("near_dup_share"))})
    return rows


VERDICT_ICON = {"supported": ":green[:material/check_circle:]", "not supported": ":red[:material/cancel:]",
                "not measurable": ":gray[:material/help:]"}


@dataclass(frozen=True)
class Caption:
    method: str
    claim: str
    test: str
    verdict: str          # supported, not supported, not measurable, no claim
    evidence: str


def captions(verdicts: Sequence[Verdict], methods: Sequence[str], sums: Mapping[str, figure4.MethodSummary]
             ) -> list[Caption]:
    """A caption per method row: the paper's claim, the test it is held to, the measured
    evidence and the verdict on these runs."""
    by = {v.method: v for v in verdicts}
    out = []
    for m in methods:
        if m in by:
            v = by[m]
            out.append(Caption(m, v.claim, v.test, v.verdict, v.evidence))
        elif m in CLAIMS:
            claim, test = CLAIMS[m]
            why = ("no run of it has figure files yet" if not (sums.get(m) and sums[m].measures)
                   else "a method it is compared with is not among these runs")
            out.append(Caption(m, claim, test, "not measurable", why))
        elif m == "baseline":
            out.append(Caption(m, "Baseline CN generates no samples: its row is empty, and it is here for Table 1.",
                               "", "no claim", ""))
        else:
            out.append(Caption(m, f"The paper's Figure 4 has no {METHOD_LABELS.get(m, m)} row: no claim to check.",
                               "", "no claim", ""))
    return out


def recall_figure(sums: Mapping[str, figure4.MethodSummary], methods: Sequence[str], class_names: Sequence[str],
                  counts: Sequence[int] | None = None, height: int = 400) -> go.Figure:
    """Mean test recall per class (over seeds), a bar per method in each class's group."""
    labels = [f"{n}<br>n = {counts[i]}" if counts is not None and i < len(counts) else str(n)
              for i, n in enumerate(class_names)]
    fig = go.Figure()
    for i, m in enumerate(methods):
        s = sums.get(m)
        if s is None or not s.recall:
            continue
        r = np.asarray(s.recall, dtype=float)
        fig.add_trace(go.Bar(x=labels[:len(r)], y=r, name=METHOD_LABELS.get(m, m), marker_color=method_color(m, i),
                             hovertemplate=f"{METHOD_LABELS.get(m, m)}<br>%{{x}}: recall %{{y:.3f}}<extra></extra>"))
    fig.update_layout(barmode="group", height=height, margin=dict(l=50, r=10, t=10, b=60),
                      yaxis=dict(range=[0, 1.05], title={"text": "recall"}), plot_bgcolor="white",
                      xaxis=dict(title={"text": "class (training count)" if counts is not None else "class"},
                                 type="category"),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0, font=dict(size=11)),
                      uirevision="ablation-recall")
    return fig


# --------------------------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------------------------
def _info(fig: figure4.RunFigure) -> dict[str, Any]:
    return fig.claims or {}


def _tile(imgs: np.ndarray, shape: Sequence[int], scale: int, cols: int | None = None):
    """uint8 rows -> one PIL image: ``cols`` per row (default: a square-ish block)."""
    from PIL import Image

    n = len(imgs)
    c, h, w = (int(v) for v in shape)
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    th, tw, gap = h * scale, w * scale, max(1, scale)
    sheet = Image.new("RGB", (cols * (tw + gap) + gap, rows * (th + gap) + gap), "white")
    for i, t in enumerate(imgs):
        a = np.asarray(t, np.uint8).reshape(c, h, w)
        im = Image.fromarray(a[0], "L") if c == 1 else Image.fromarray(np.moveaxis(a[:3], 0, -1), "RGB")
        im = im.resize((tw, th), Image.NEAREST).convert("RGB")
        sheet.paste(im, (gap + (i % cols) * (tw + gap), gap + (i // cols) * (th + gap)))
    return sheet


def _scatter(real: np.ndarray, real_y: np.ndarray, pts: np.ndarray, c: int, size: int = 140):
    """A 2D thumbnail: real points grey, class ``c``'s blue, its generated points red."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    allp = np.concatenate([real, pts]) if len(pts) else real
    lo, hi = allp.min(0), allp.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    pad = 6

    def xy(p):
        q = (np.asarray(p, np.float64) - lo) / span
        return pad + q[0] * (size - 2 * pad), size - pad - q[1] * (size - 2 * pad)

    d.rectangle([0, 0, size - 1, size - 1], outline=(215, 215, 215))
    for p, yy in zip(real, real_y):
        x, y = xy(p)
        col = (31, 119, 180) if yy == c else (190, 190, 190)
        d.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=col)
    for p in pts:
        x, y = xy(p)
        d.line([x - 3, y - 3, x + 3, y + 3], fill=(214, 39, 40), width=2)
        d.line([x - 3, y + 3, x + 3, y - 3], fill=(214, 39, 40), width=2)
    return img


def cell_image(fig: figure4.RunFigure, row: str, cls: int, per_cell: int = 4, scale: int = 3):
    """The PIL image of one cell: ``per_cell`` samples of class ``cls`` (``row`` "real": real
    ones), or for 2D data a scatter thumbnail; None when the run has none for the class."""
    g, info = fig.grid or {}, _info(fig)
    if not g:
        return None
    if info.get("kind") == "2d":
        real, real_y = g["real"].astype(np.float32), g["real_y"]
        if row == "real":
            return _scatter(real, real_y, np.zeros((0, 2), np.float32), cls)
        if "gen" not in g:
            return None
        return _scatter(real, real_y, g["gen"][g["gen_y"] == cls].astype(np.float32), cls)
    shape = info.get("image_shape")
    if not shape:
        return None
    xs, ys = (g["real"], g["real_y"]) if row == "real" else (g.get("gen"), g.get("gen_y"))
    if xs is None:
        return None
    pick = xs[ys == cls][:per_cell]
    if not len(pick):
        return None
    side = int(shape[-1])
    return _tile(pick, shape, scale=max(1, round(scale * 28 / side / 2)) if side < 28 else scale // 2 or 1)


def _uri(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class GridLayout:
    """What :func:`grid_figure` drew: row keys ("real" or a method) and the minority classes."""

    rows: list[str]
    classes: list[int]
    kind: str
    sources: dict[str, figure4.RunFigure] = field(default_factory=dict)


def grid_figure(runs: Mapping[str, figure4.RunFigure | None], *, per_cell: int = 4, cell_px: int | None = None,
                width_px: int = 560) -> tuple[go.Figure, GridLayout] | None:
    """The figure: a row of real samples, then a row per method, a column per minority class,
    each cell an image (layout images in data coordinates), and one invisible square marker per
    cell that makes it clickable (its ``customdata``: [row, class]; point k is row k // n_classes,
    class k % n_classes), highlighted by Plotly once clicked (the figure itself never changes with
    the selection: a changed figure resets Streamlit's selection). None when no run has figure
    files."""
    have = {m: r for m, r in runs.items() if r is not None and r.grid is not None and r.claims}
    if not have:
        return None
    first = next(iter(have.values()))
    info = _info(first)
    minority = [int(c) for c in info.get("minority") or []]
    names = info.get("class_names") or [str(c) for c in range(len(info.get("counts", [])))]
    counts = info.get("counts") or []
    rows = ["real"] + list(runs)
    sources = {"real": first, **have}
    if cell_px is None:     # square cells in a plot about width_px wide
        cell_px = int(min(150, max(56, width_px / max(1, len(minority)))))
    images, xs, ys, cd, hover, empty = [], [], [], [], [], []
    for i, row in enumerate(rows):
        r = sources.get(row)
        n_images = len(images)
        for j, c in enumerate(minority):
            img = None if r is None else cell_image(r, row, c, per_cell)
            label = "real samples" if row == "real" else METHOD_LABELS.get(row, row)
            what = ("no figure files" if r is None else "no samples" if img is None else "click to enlarge")
            if img is not None:
                images.append(dict(source=_uri(img), xref="x", yref="y", x=j, y=i, sizex=0.94, sizey=0.94,
                                   xanchor="center", yanchor="middle", sizing="contain", layer="below"))
            xs.append(j), ys.append(i), cd.append([row, c])
            hover.append(f"{label} · {names[c] if c < len(names) else c} (n = "
                         f"{counts[c] if c < len(counts) else '?'}): {what}")
        if len(images) == n_images:
            empty.append((i, "no figure files for this seed" if r is None else "generates no samples"))
    fig = go.Figure(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=cd, hovertext=hover, hoverinfo="text",
        marker=dict(symbol="square", size=cell_px * 0.9, color="rgba(0,114,178,0.0)",
                    line=dict(width=0)),
        selected=dict(marker=dict(color="rgba(0,114,178,0.18)")),
        unselected=dict(marker=dict(opacity=1.0)), showlegend=False, meta="cells"))
    xt = [f"<b>{names[c] if c < len(names) else c}</b><br>n = {counts[c] if c < len(counts) else '?'}"
          for c in minority]
    yt = ["real samples" if r == "real" else METHOD_LABELS.get(r, r) for r in rows]
    fig.update_layout(
        images=images, height=60 + cell_px * len(rows), margin=dict(l=10, r=10, t=50, b=10),
        xaxis=dict(range=[-0.5, len(minority) - 0.5], tickvals=list(range(len(minority))), ticktext=xt,
                   side="top", showgrid=False, zeroline=False, fixedrange=True),
        yaxis=dict(range=[len(rows) - 0.5, -0.5], tickvals=list(range(len(rows))), ticktext=yt, showgrid=False,
                   zeroline=False, fixedrange=True, automargin=True),
        plot_bgcolor="white", clickmode="event+select", hovermode="closest",
        uirevision="ablation-grid")
    for i in range(1, len(rows)):
        fig.add_hline(y=i - 0.5, line=dict(color="#e6e6e6", width=1))
    for i, words in empty:
        fig.add_annotation(x=(len(minority) - 1) / 2, y=i, text=words, showarrow=False,
                           font=dict(color="#888888", size=12))
    return fig, GridLayout(rows, minority, str(info.get("kind")), sources)


def cell_samples(fig: figure4.RunFigure, row: str, cls: int) -> dict[str, Any]:
    """Everything the enlarged cell shows: ``images`` (n, C, H, W uint8) or ``points`` (2D),
    ``kind`` (generated / nearest real / real / points), and per sample ``flags`` (words) and
    ``parent`` / ``parent_w`` (the heaviest convex parent, a training row; None without)."""
    g, info = fig.grid or {}, _info(fig)
    out: dict[str, Any] = {"kind": "real" if row == "real" else str(g.get("gen_kind", "generated")),
                           "images": None, "points": None, "flags": [], "parent": None, "parent_w": None}
    if row == "real":
        x, sel = g.get("real"), g.get("real_y", np.zeros(0)) == cls
    else:
        x, sel = g.get("gen"), g.get("gen_y", np.zeros(0)) == cls
    if x is None or not sel.any():
        return out
    x = x[sel]
    if info.get("kind") == "2d":
        out["points"] = x.astype(np.float32)
    else:
        out["images"] = x.reshape(len(x), *info["image_shape"])
    if row != "real":
        if "gen_flags" in g:
            words = ("near-duplicate", "out-of-distribution", "label disputed")
            out["flags"] = [[w for w, f in zip(words, fl) if f] for fl in g["gen_flags"][sel]]
        if "gen_parent" in g:
            out["parent"] = g["gen_parent"][sel].astype(int)
            out["parent_w"] = g["gen_parent_w"][sel].astype(float)
    return out


def parent_images(run: Path, rows: Sequence[int], image_shape: Sequence[int]) -> np.ndarray | None:
    """The training images at ``rows`` of a dense run (its ``data.npz``; None where it has
    none, e.g. conv runs or a fresh clone), as (n, C, H, W) in [-1, 1]."""
    try:
        with np.load(Path(run) / "data.npz", allow_pickle=False) as z:
            x = z["x_train"]
            rows = np.asarray(rows, int)
            if len(rows) and (rows.min() < 0 or rows.max() >= len(x)):
                return None
            return x[rows].reshape(len(rows), *image_shape)
    except (OSError, KeyError, ValueError):
        return None


def grid_png_bytes(runs: Mapping[str, Sequence[figure4.RunFigure]], seed: int, title: str, per_cell: int = 4) -> bytes:
    """The grid as one PNG (:func:`gamo.figure4.grid_png`)."""
    with tempfile.TemporaryDirectory(prefix="gamo-grid-") as d:
        path = figure4.grid_png(dict(runs), Path(d) / "grid.png", seed=seed, per_cell=per_cell, title=title)
        return path.read_bytes()


def run_summary(cells: Sequence[Cell]) -> tuple[dict[str, figure4.MethodSummary], list[Verdict], str | None]:
    """:func:`gamo.figure4.summary` of the finished cells; (.., .., why) when it fails."""
    runs = {m: rs for m, rs in runs_by_method(cells).items() if rs}
    try:
        sums, vs = figure4.summary(runs)
    except Exception as e:  # noqa: BLE001 - a foreign final.json must not break the page
        return {}, [], f"the runs' results cannot be summarised ({type(e).__name__}: {str(e)[:200]})"
    return sums, vs, None


def figure_info(cells: Sequence[Cell]) -> dict[str, Any]:
    """The claims header of any finished run (class names, counts, minority, kind)."""
    for c in cells:
        if c.figure is not None and c.figure.claims:
            return c.figure.claims
    return {}
