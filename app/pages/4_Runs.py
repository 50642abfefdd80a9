"""Every stored run, yours and the committed benchmark runs: filter them, open one (config, curves, generator health), overlay the curves of several, export one (its balanced training set with each generated row's parents, a PNG of its samples, its config and checkpoint) or delete one of yours.

The page only wires widgets: the blocks it draws (the filters and table, one run with its curves,
config, health, exports and deleting, the overlay of several runs) are in ``app/ui/runs_blocks.py``;
the listing, filters, curves and deleting in ``app/ui/runs_view.py``, the exports in
``gamo/export.py`` (also ``python -m gamo.export``), the run's own curves in ``app/ui/curves.py``
and its health in ``app/ui/health_view.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import runs_blocks as rb  # noqa: E402
from app.ui import runs_view as rv  # noqa: E402

st.set_page_config(page_title="Runs · GAMO Lab", page_icon="🗂️", layout="wide")
ss = st.session_state

st.title("Runs")
roots = rv.run_roots()
user = roots[0]
st.caption(f"Your runs: `{user.label}` (the Toy Lab saves there, `python -m gamo train` writes to `runs/` "
           "by default; set GAMO_RUNS_DIR to use another folder). "
           + (f"Committed benchmark runs, read-only: {', '.join(f'`{r.label}`' for r in roots[1:])}."
              if len(roots) > 1 else ""))
flash = ss.pop("rp_flash", None)
if flash:
    st.success(flash)

try:
    all_rows = rv.scan(roots)
except Exception as e:  # noqa: BLE001 - list_runs never raises; this is the last line of defence
    st.error(f"The runs cannot be listed: {type(e).__name__}: {str(e)[:300]}")
    st.stop()
if not all_rows:
    st.info("No stored runs yet. Save a run from the Toy Lab, or train one with "
            "`python -m gamo train --out runs/NAME`, and it appears here.")
    st.stop()

broken = [r for r in all_rows if r.state == "broken"]
if broken:
    lines = "\n".join(f"- `{r.label}`: {r.info.note}" for r in broken[:10])
    more = f"\n- … and {len(broken) - 10} more" if len(broken) > 10 else ""
    st.warning(f"**{len(broken)} folder{'s' * (len(broken) > 1)} cannot be read as "
               f"run{'s' * (len(broken) > 1)}** (listed with status *broken*):\n{lines}{more}")

rows = rb.show_table(all_rows)

st.header("Open a run")
labels = [r.label for r in rows]
if not labels:
    st.info("No run matches the filters.")
else:
    want = st.query_params.get("run")
    if "rp_open" not in ss or ss["rp_open"] not in labels:
        ss["rp_open"] = want if want in labels else labels[0]
    label = st.selectbox("Run", labels, key="rp_open")
    if st.query_params.get("run") != label:
        st.query_params["run"] = label
    rb.show_run(next(r for r in rows if r.label == label), user, roots)

rb.show_compare(rows)
