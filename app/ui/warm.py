"""Head starts the server gives the pages, once per server process, in background threads.

* :func:`warm_run_server` starts the process that live runs are forked from (it imports torch:
  seconds), so that a page's first run starts at once;
* :func:`warm_projection` compiles umap-learn's numba code (:func:`gamo.projection.warm_up`:
  about 30 s on a 2-core machine), so that nobody waits for it in front of a UMAP map.

The Home page calls both when it loads (and the Image Lab, for a user who opens it first);
``GAMO_WARM_UP=0`` in the environment skips the projection's warm-up (the tests do).
"""
from __future__ import annotations

import os
import threading

import streamlit as st

from app.ui import runs_in

__all__ = ["warm_run_server", "warm_projection", "WARM_UP_ENV"]

WARM_UP_ENV = "GAMO_WARM_UP"


def _background(name: str, work) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except Exception:  # noqa: BLE001 - only a head start: the pages do it themselves if need be
            pass

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t


@st.cache_resource(show_spinner=False)
def warm_run_server() -> threading.Thread | None:
    """Once per server: start the live runs' fork server in the background (None: runs train in
    threads, ``GAMO_RUNS_IN=thread``)."""
    if runs_in() == "thread":
        return None

    def work() -> None:
        from gamo.worker import warm_up

        warm_up()

    return _background("gamo-warm-up", work)


@st.cache_resource(show_spinner=False)
def warm_projection() -> threading.Thread | None:
    """Once per server: compile UMAP's code in the background (None when ``GAMO_WARM_UP=0``)."""
    if os.environ.get(WARM_UP_ENV, "").strip() == "0":
        return None

    def work() -> None:
        from gamo.projection import warm_up

        warm_up()

    return _background("gamo-warm-projection", work)
