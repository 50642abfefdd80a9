"""Curves over training steps, shared by the lab's pages (Toy Lab, Image Lab).

:func:`history_series` turns a run's snapshots into arrays; the chart builders draw them (losses
of each player, recall / ACSA / GM on the balanced test split, two runs side by side), and
:func:`points_digest` fingerprints the generated points (the pages print it in their status line,
so tests and a browser can tell that the points moved). Plain functions: no Streamlit here.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.ui.figures import class_colors, metric_curves
from gamo.snapshot import Generated, Snapshot

__all__ = ["history_series", "loss_chart", "score_chart", "compare_chart", "points_digest",
           "METHOD_COLORS", "method_color", "mark_step"]

# one colour per method, wherever methods are drawn side by side (distinct at a glance; the
# classes keep their own palette, app.ui.figures.class_colors)
METHOD_COLORS: dict[str, str] = {
    "gamo": "#0072b2", "gamo_no_d": "#e69f00", "baseline": "#4d4d4d", "cg": "#cc79a7",
    "cg_d": "#d55e00", "dos": "#009e73", "cgan": "#56b4e9", "smote": "#8c564b",
    "borderline_smote": "#9a9a1f", "adasyn": "#17becf", "class_weighted": "#9467bd",
    "logit_adjusted": "#a6761d", "ldam_drw": "#1b7837", "augment": "#e377c2",
}


def method_color(method: str, i: int = 0) -> str:
    """The method's colour (a distinct fallback for an unknown method, by position ``i``)."""
    fallback = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9")
    return METHOD_COLORS.get(method, fallback[i % len(fallback)])


def mark_step(fig: go.Figure, step: int | None, text: str = "shown") -> go.Figure:
    """A vertical line at ``step`` (the step the timeline shows); nothing for None."""
    if step is not None:
        fig.add_vline(x=int(step), line=dict(color="#555555", width=1, dash="dot"),
                      annotation_text=f"{text}: step {int(step):,}", annotation_position="top right",
                      annotation_font_size=10)
    return fig


def history_series(
    snaps: Sequence[Snapshot],
    stats: Callable[[Snapshot], Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """Curves over training steps from a run's snapshots.

    Parameters
    ----------
    snaps : sequence of Snapshot
        Oldest first.
    stats : callable, optional
        ``snapshot -> generated_stats(...)`` (memoised by the caller); skipped when None.

    Returns
    -------
    dict
        ``steps`` (T,), ``losses`` {player: (T,)}, ``acsa``, ``gm`` (T,), ``recall`` (T, K)
        on the test split, and, with ``stats``, ``misclassified`` and ``hull_distance`` (T,).
    """
    steps = np.array([s.step for s in snaps], dtype=np.int64)
    players = [p for p in ("M", "D", "G") if any(p in s.losses for s in snaps)]
    losses = {p: np.array([s.losses.get(p, np.nan) for s in snaps], dtype=np.float64) for p in players}
    k = max((len(s.test.recall) for s in snaps), default=0)
    recall = np.full((len(snaps), k), np.nan)
    for i, s in enumerate(snaps):
        recall[i, : len(s.test.recall)] = s.test.recall
    out: dict[str, Any] = {
        "steps": steps,
        "losses": losses,
        "acsa": np.array([s.test.acsa for s in snaps], dtype=np.float64),
        "gm": np.array([s.test.gm for s in snaps], dtype=np.float64),
        "recall": recall,
    }
    if stats is not None:
        st = [stats(s) for s in snaps]
        out["misclassified"] = np.array([d["misclassified"] for d in st], dtype=np.float64)
        out["hull_distance"] = np.array([d["hull_distance"] for d in st], dtype=np.float64)
    return out


def loss_chart(series: Mapping[str, Any], *, height: int = 230) -> go.Figure:
    """Each player's loss over steps."""
    colors = {"M": "#3b6ea5", "D": "#8c564b", "G": "#e377c2"}
    names = {"M": "M (classifier)", "D": "D (discriminator)", "G": "G (generator)"}
    fig = metric_curves(series["steps"], {names[p]: v for p, v in series["losses"].items()},
                        "Losses", colors={names[p]: c for p, c in colors.items()},
                        height=height, uirevision="losses", validate=False)
    return fig


def score_chart(series: Mapping[str, Any], *, height: int = 260, per_class: bool = True,
                minority: Sequence[int] | None = None) -> go.Figure:
    """Per-class recall (``per_class``), the minority classes' mean recall (``minority``), ACSA
    and GM on the (balanced) test split over steps."""
    lines: dict[str, np.ndarray] = {}
    if per_class:
        for k in range(series["recall"].shape[1]):
            lines[f"class {k} recall"] = series["recall"][:, k]
    if minority:
        rec = series["recall"][:, list(minority)] if len(series["steps"]) else np.zeros((0, 1))
        with np.errstate(all="ignore"):
            lines["minority recall (mean)"] = np.nanmean(rec, axis=1) if rec.size else np.zeros(len(series["steps"]))
    lines["ACSA"] = series["acsa"]
    lines["GM"] = series["gm"]
    cols = {f"class {k} recall": c for k, c in enumerate(class_colors(series["recall"].shape[1]))}
    cols.update({"ACSA": "#111111", "GM": "#7f7f7f", "minority recall (mean)": "#d62728"})
    return metric_curves(series["steps"], lines, "Test recall, ACSA, GM", (0.0, 1.05),
                         colors=cols, height=height, uirevision="scores", validate=False)


def compare_chart(named: Mapping[str, Mapping[str, Any]], minority: Sequence[int], *,
                  height: int = 300, colors: Mapping[str, str] | None = None) -> go.Figure:
    """Compare mode: minority recall (dashed) and ACSA (solid) of each run over steps, on one
    chart; each run in its own colour (``colors``: label -> colour, default
    :func:`method_color` by position), the legend under the plot (clear of the toolbar)."""
    # runs may be at different steps: put everything on the union of steps (NaN gaps)
    all_steps = np.unique(np.concatenate([np.asarray(s["steps"]) for s in named.values()]))
    lines: dict[str, np.ndarray] = {}
    for label, s in named.items():
        pos = {int(v): i for i, v in enumerate(s["steps"])}
        idx = np.array([pos.get(int(v), -1) for v in all_steps])

        def pick(a: np.ndarray) -> np.ndarray:
            out = np.full(len(idx), np.nan)
            out[idx >= 0] = np.asarray(a)[idx[idx >= 0]]
            return out

        lines[f"{label}: ACSA"] = pick(s["acsa"])
        if minority:
            lines[f"{label}: minority recall"] = pick(np.nanmean(s["recall"][:, list(minority)], axis=1))
    cols: dict[str, str] = {}
    for i, label in enumerate(named):
        col = (colors or {}).get(label) or method_color("", i)
        cols[f"{label}: ACSA"] = cols[f"{label}: minority recall"] = col
    fig = metric_curves(all_steps, lines, "Side by side: ACSA (solid), minority recall (dashed)",
                        (0.0, 1.05), height=height, uirevision="compare", validate=False,
                        colors=cols)
    for tr in fig.data:
        if tr.name.endswith("minority recall"):
            tr.line.dash = "dash"
    fig.layout.legend = dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0.0,
                             font=dict(size=11))
    fig.layout.margin = dict(l=50, r=20, t=50, b=40)
    fig.layout.xaxis.title = dict(text="step", standoff=4)
    return fig


def points_digest(gen: Generated | None) -> str:
    """A short fingerprint of the generated positions (changes whenever a point moves)."""
    if gen is None:
        return "none"
    x = np.round(np.asarray(gen.x, dtype=np.float64), 5)
    return hashlib.sha1(x.tobytes()).hexdigest()[:10]
