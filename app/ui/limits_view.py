"""The page's side of the server's limits (:mod:`app.ui.live_runs`): what a student sees when
the lab is full. A Streamlit block."""
from __future__ import annotations

import streamlit as st

from app.ui.live_runs import LabFull, live_run_count, max_live_runs

__all__ = ["lab_full_notice"]


def lab_full_notice(e: LabFull, prefix: str) -> None:
    """Say the lab is full (the message names the count and what to do) with a Try again button
    (a rerun, in which the page asks for its runs again)."""
    st.warning(f"**{e}**", icon="🚦")
    st.caption(f"{live_run_count()} of {max_live_runs()} places taken. A run ends a minute after its "
               "browser tab is closed, or after 15 minutes nobody looks at it.")
    st.button("Try again", key=f"{prefix}_lab_full_retry", icon=":material/refresh:")
