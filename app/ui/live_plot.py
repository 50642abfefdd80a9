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
per-user cache folder that the component serves.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

FRONTEND = Path(__file__).resolve().parent / "live_plot_frontend"
_component = None


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
    base = Path(os.environ.get("GAMO_CACHE_DIR") or Path(tempfile.gettempdir()) / f"gamo-lab-{getattr(os, 'getuid', lambda: 0)()}")
    out = base / f"live-plot-{h.hexdigest()[:16]}"
    if not (out / "index.html").is_file():
        tmp = Path(tempfile.mkdtemp(prefix="live-plot-", dir=_mkdir(base)))
        shutil.copyfile(js, tmp / "plotly.min.js")
        (tmp / "index.html").write_bytes(html)
        try:
            tmp.rename(out)
        except OSError:            # another server process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def live_plot(fig: go.Figure | str, *, key: str, config: dict[str, Any] | None = None) -> Any:
    """Show ``fig`` (a figure, or its JSON) in a chart that is updated in place; returns the
    last click.

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
    return _component(spec=spec, config=config or {}, key=key, default=None)
