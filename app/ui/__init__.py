"""The app's building blocks: what pages share, and each page's own blocks (a page is wiring).

Plain modules (no Streamlit; testable alone): :mod:`~app.ui.figures`, :mod:`~app.ui.curves`,
:mod:`~app.ui.live_runs`, :mod:`~app.ui.queries` (run inside a run's process), the pages' own logic
(:mod:`~app.ui.toylab`, :mod:`~app.ui.toylab_runs`, :mod:`~app.ui.imagelab`,
:mod:`~app.ui.imagelab_runs`, :mod:`~app.ui.ablation`, :mod:`~app.ui.gamo2pix`) and the pure half
of :mod:`~app.ui.url_state`. Streamlit blocks shared by pages: :mod:`~app.ui.live_plot` (the
in-place chart component), :mod:`~app.ui.run_controls` (run buttons, status line),
:mod:`~app.ui.health_view`, :mod:`~app.ui.audit_view` (the Image Lab's and GAMO2pix's audit of a
sample), :mod:`~app.ui.runs_view` (the run store's roots and rows), :mod:`~app.ui.warm` (the
server's head starts) and :func:`app.ui.url_state.sync_url` / :func:`~app.ui.url_state.widget_default`.
Each page's own blocks: :mod:`~app.ui.toylab_sidebar`, :mod:`~app.ui.toylab_view`,
:mod:`~app.ui.toylab_share`, :mod:`~app.ui.imagelab_sidebar`, :mod:`~app.ui.imagelab_map`, :mod:`~app.ui.imagelab_start`,
:mod:`~app.ui.imagelab_view`, :mod:`~app.ui.imagelab_audit`,
:mod:`~app.ui.ablation_view`, :mod:`~app.ui.gamo2pix_view`, :mod:`~app.ui.runs_blocks`.

This package's own import is light (no torch), so the Home page can read :func:`runs_in`.
"""
from __future__ import annotations

import os


def runs_in() -> str:
    """Where the app's live runs train: ``process`` (default) or ``thread`` (``GAMO_RUNS_IN``)."""
    return "thread" if os.environ.get("GAMO_RUNS_IN", "").strip().lower() == "thread" else "process"
