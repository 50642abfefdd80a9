"""Streamlit blocks that show a snapshot's generator health (:mod:`gamo.health`).

The texts and the table come from :mod:`app.ui.toylab` (plain functions, tested without
Streamlit); this module only draws them, so any page can show the same health.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from app.ui.toylab import collapse_message, collapsed_classes, health_markdown

HEALTH_CAPTION = (
    "Generator health at this step, per minority class. *Effective parents*: how many real points "
    "each generated point really averages (1 = a copy of one point). *Distinct top parents*: how "
    "many different real points are the heaviest parent of the class's generated points. "
    "*Spread*: their mean distance to the real class's centre, *self-spread*: to their own centre, "
    "both relative to the real points' (1 = spread like the class, 0 = all on one spot). "
    "*M-share*: points M assigns to their class. A class is **collapsed** when one member is "
    "every point's heaviest parent or the self-spread is under 1/3."
)


def show_collapse_warnings(health: Mapping[str, Mapping[str, Any]] | None, method: str = "gamo",
                           max_shown: int | None = None, step: int | None = None) -> int:
    """One ``st.warning`` per collapsed class of ``health`` (with ``max_shown``: that many, then
    one line naming the other collapsed classes); returns how many classes have collapsed.
    At ``step`` 0 the generator has not trained: one note instead of warnings (an untrained
    softmax sits on few members, which is where it starts, not a failure)."""
    shown = collapsed_classes(health)
    if step == 0 and shown:
        st.info("Step 0: the generator has not trained yet, so its points are not judged; the health "
                "measures say where it starts.", icon="ℹ️")
        return 0
    head = shown if max_shown is None else shown[:max_shown]
    for c in head:
        st.warning(collapse_message(c, health[str(c)], method), icon="⚠️")
    rest = shown[len(head):]
    if rest:
        st.warning(f"**The generator has also collapsed for class{'es' if len(rest) > 1 else ''} "
                   f"{', '.join(str(c) for c in rest)}** (see the generator health table).", icon="⚠️")
    return len(shown)


def show_health_table(health: Mapping[str, Mapping[str, Any]] | None, title: str | None = None,
                      caption: bool = True) -> bool:
    """The compact per-class health table (Markdown), with a short legend unless ``caption`` is
    False; False when there is no health to show (a method that generates nothing)."""
    table = health_markdown(health)
    if not table:
        return False
    st.markdown((f"**{title}**\n\n" if title else "") + table)
    if caption:
        st.caption(HEALTH_CAPTION)
    return True
