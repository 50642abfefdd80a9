"""The app's building blocks (figures, Toy Lab settings, live runs); none of them calls Streamlit
except :mod:`app.ui.live_plot`, the live chart component.

This package's own import is light (no torch), so the Home page can read :func:`runs_in`.
"""
from __future__ import annotations

import os


def runs_in() -> str:
    """Where the app's live runs train: ``process`` (default) or ``thread`` (``GAMO_RUNS_IN``)."""
    return "thread" if os.environ.get("GAMO_RUNS_IN", "").strip().lower() == "thread" else "process"
