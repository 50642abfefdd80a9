"""A Plotly chart that stays mounted while its figure changes: the Toy Lab's live 2D view.

``st.plotly_chart`` gives a chart a new identity whenever its figure changes, so the browser
mounts a new chart and runs a full ``Plotly.newPlot`` at every redraw of a training run. This
component (a Streamlit custom component, ``live_plot_frontend/index.html``) keeps one chart and
updates it with ``Plotly.react``, which redraws only what changed; a figure that arrives while
the previous one is still being drawn replaces any older one waiting, so a busy browser skips
frames instead of falling behind. A zoom survives redraws too.

A figure whose layout says ``showlegend: false`` keeps the plot area of the last figure drawn
with a legend, and shows a static copy of that legend in its place (the Toy Lab's view while a
run trains: Plotly redraws its legend at every update); the first figure, if it has none yet, is
drawn with its legend so that there is one to copy, and after the window is resized the last
figure is drawn once more with its legend and copied again (the copy fits the new width).

The frontend loads ``plotly.min.js`` shipped inside the ``plotly`` Python package (the same
plotly.js version the figures are built for); it is copied once, beside ``index.html``, into a
per-user cache folder that the component serves. That folder (``$GAMO_CACHE_DIR``, else
``gamo-lab-<uid>`` under the system's temporary folder) is made private (mode 0700) and used only
if it is a real folder owned by this user that no one else can write to: on a shared host another
user could otherwise make it first and plant the JavaScript the app serves. A temporary-folder
one that fails the check is left alone and a fresh private folder is used instead; a
``$GAMO_CACHE_DIR`` that fails it is an error.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

FRONTEND = Path(__file__).resolve().parent / "live_plot_frontend"
_component = None
_fallback: Path | None = None      # a fresh private folder, when the usual one is not safe to use


def _plotly_js() -> Path:
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the plotly package (pip install --force-reinstall plotly)")
    return path


def served_dir() -> Path:
    """The folder the component serves: ``index.html`` and ``plotly.min.js``, made on first use.

    Its name carries a hash of both files, so a new index.html or plotly version gets a new
    folder and never a half-updated one.
    """
    js = _plotly_js()
    html = (FRONTEND / "index.html").read_bytes()
    h = hashlib.sha256(html)
    st = js.stat()
    h.update(f"{js}:{st.st_size}:{st.st_mtime_ns}".encode())
    out = _cache_dir() / f"live-plot-{h.hexdigest()[:16]}"
    if os.path.lexists(out) and (why := _unsafe(out)):
        raise RuntimeError(f"{out} is not safe to serve files from ({why}): remove it")
    if not (out / "index.html").is_file():
        tmp = Path(tempfile.mkdtemp(prefix="live-plot-", dir=out.parent))
        shutil.copyfile(js, tmp / "plotly.min.js")
        (tmp / "index.html").write_bytes(html)
        try:
            tmp.rename(out)
        except OSError:            # another server process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _cache_dir() -> Path:
    """The per-user folder that holds the served folders, checked to be private."""
    global _fallback
    explicit = os.environ.get("GAMO_CACHE_DIR")
    if not explicit and _fallback is not None:
        return _fallback
    base = Path(explicit or Path(tempfile.gettempdir()) / f"gamo-lab-{getattr(os, 'getuid', lambda: 0)()}")
    try:
        base.mkdir(mode=0o700, parents=bool(explicit))
    except FileExistsError:
        pass
    why = _unsafe(base)
    if not why:
        return base
    if explicit:
        raise RuntimeError(f"GAMO_CACHE_DIR={explicit} is not safe to serve the app's files from ({why}): "
                           f"point it at a folder only you can write to")
    _fallback = Path(tempfile.mkdtemp(prefix="gamo-lab-"))     # mode 0700, made by this process
    warnings.warn(f"{base} is not safe to serve the app's files from ({why}); using {_fallback} instead",
                  RuntimeWarning, stacklevel=3)
    return _fallback


def _unsafe(p: Path) -> str | None:
    """Why ``p`` may not be trusted (None: a real folder of this user's that no one else can
    write to). On Windows the temporary folder is the user's own and modes do not apply."""
    try:
        st = os.lstat(p)
    except OSError as e:
        return f"cannot read it: {e.strerror}"
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder"
    if not hasattr(os, "getuid"):
        return None
    if st.st_uid != os.getuid():
        return f"owned by another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def live_plot(fig: go.Figure | str, *, key: str, config: dict[str, Any] | None = None,
              hover: dict[str, Any] | None = None) -> Any:
    """Show ``fig`` (a figure, or its JSON) in a chart that is updated in place; returns the
    last click.

    ``hover`` (the Image Lab's map): images shown in a tooltip beside the cursor while a point is
    hovered, ``{"version": str, "real": {"rows": [...], "uris": [...]} | None, "gen": [[uri,
    label] | None, ...]}``. A point with ``customdata = -(row + 1)`` shows the real image of
    ``row`` (labelled with its trace's name), one with ``customdata = k >= 0`` shows ``gen[k]``.
    The frontend keeps the real images it was sent for ``version``: ``real`` may be None when
    the same version's images were sent before (a redraw while training does not resend them).

    The value is ``None`` until a point is clicked, then ``{"selection": {"points": [...]},
    "click": n}``: the points under the click with their ``customdata`` (as
    ``st.plotly_chart(on_select=...)`` reports a selection) and a click counter. A click reruns
    the script. ``key`` must stay the same across redraws of one chart.
    """
    import plotly.io as pio
    import streamlit.components.v1 as components

    global _component
    if _component is None:
        _component = components.declare_component("gamo_live_plot", path=str(served_dir()))
    spec = fig if isinstance(fig, str) else pio.to_json(fig, validate=False)
    if hover is None:
        return _component(spec=spec, config=config or {}, key=key, default=None)
    return _component(spec=spec, config=config or {}, hover=hover, key=key, default=None)
