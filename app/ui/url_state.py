"""Settings mirrored in the page's URL, shared by the lab's pages (Toy Lab, Image Lab).

A page keeps its settings in a frozen dataclass and names each field's query key (short keys keep
shared links readable). The pure part here turns settings into query parameters and back, with
one warning per rejected value (the field keeps its default); the two Streamlit helpers give a
widget its value from the settings and write the settings back to the address bar.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["first", "fmt", "to_query", "parse_query", "parse_bool", "sync_url", "widget_default"]


def first(v: Any) -> str:
    """One query value as a string (a repeated key arrives as a list: its last value)."""
    if isinstance(v, (list, tuple)):
        return str(v[-1]) if v else ""
    return str(v)


def fmt(v: Any) -> str:
    """A setting's value as written in the URL: ``1``/``0`` for booleans, ``a,b`` for tuples."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, tuple):
        return ",".join(str(int(c)) for c in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def parse_bool(raw: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``; ValueError otherwise."""
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("use 1 or 0")


def parse_number(raw: str, lo: float, hi: float, whole: bool = False) -> float | int:
    """A number from a URL value within [lo, hi] (a whole number when ``whole``); ValueError
    with a short reason otherwise."""
    try:
        v = float(raw)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(v):
        raise ValueError("not a finite number")
    if whole:
        if v != int(v):
            raise ValueError("must be a whole number")
        v = int(v)
    if not lo <= v <= hi:
        raise ValueError(f"must be between {lo:g} and {hi:g}")
    return v


def to_query(settings: Any, keys: Mapping[str, str]) -> dict[str, str]:
    """Every field named in ``keys`` (query key -> field name) as a query parameter."""
    return {key: fmt(getattr(settings, name)) for key, name in keys.items()}


def parse_query(params: Mapping[str, Any], keys: Mapping[str, str], defaults: Any,
                parse: Callable[[str, str], Any]) -> tuple[dict[str, Any], list[str]]:
    """Read the fields named in ``keys`` from ``params``.

    Parameters
    ----------
    params : mapping
        ``st.query_params`` or any str -> str (or list of str) mapping; keys not in ``keys``
        are ignored (another page may have left them).
    keys : mapping
        Query key -> dataclass field name.
    defaults : dataclass instance
        The page's defaults (named in the warnings).
    parse : callable
        ``parse(field_name, raw) -> value``; raises ValueError with a short reason.

    Returns
    -------
    (dict, list of str)
        The accepted values by field name, and one warning per rejected value.
    """
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, name in keys.items():
        if key not in params:
            continue
        raw = first(params[key])
        try:
            values[name] = parse(name, raw)
        except ValueError as e:
            default = fmt(getattr(defaults, name))
            warnings.append(f"URL parameter {key}={raw!r} ignored ({e}); using the default {default!r}")
    return values, warnings


def replace(settings: Any, **values: Any) -> Any:
    """``dataclasses.replace`` (re-exported so pages need one import)."""
    return dataclasses.replace(settings, **values)


# ---------------------------------------------------------------------------------------------
# Streamlit helpers
# ---------------------------------------------------------------------------------------------
def sync_url(query: Mapping[str, str]) -> None:
    """Write ``query`` to the address bar when it differs from what is there (no rerun)."""
    import streamlit as st

    if {k: st.query_params.get(k) for k in query} != dict(query):
        st.query_params.update(dict(query))


def widget_default(key: str, value: Any) -> None:
    """Give a widget its value from the current settings unless it already has one."""
    import streamlit as st

    if key not in st.session_state:
        st.session_state[key] = value
