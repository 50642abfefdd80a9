"""The Toy Lab's "Keep and share" block: share the setup, download the generated points,
save the runs to the run store."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui import toylab as tl
from app.ui.toylab_runs import LiveRun, save_run
from gamo.config import METHOD_LABELS
from gamo.runs import RunError


def keep_and_share(runs: list[LiveRun], s: tl.ToySettings, runs_dir: Path) -> None:
    """The "Keep and share" expander: the URL, the PNG, the generated points as CSV per run,
    and saving the runs (paused or finished) under ``runs_dir``."""
    with st.expander("Keep and share", expanded=False):
        st.markdown(
            "**Share this setup:** every setting is in the page's address (URL); copy it from "
            "the browser's address bar.  \n**Figure as PNG:** hover the plot and click the camera "
            "icon (“Download plot as png”) in its toolbar.  \n**Generated points as CSV:** their "
            "positions, M's verdict, and each point's heaviest convex parents with weights."
        )
        c1, c2 = st.columns(2)
        for i, r in enumerate(runs):
            def csv(r=r) -> str:
                snap = r.handle.latest
                return tl.generated_table(snap.generated if snap else None, r.data.x_train,
                                          snap.step if snap else None).to_csv(index=False)

            c1.download_button(f"Generated points of {METHOD_LABELS[r.method]} (CSV)", data=csv,
                               file_name=f"toylab_{r.method}_{s.dataset}_generated.csv",
                               mime="text/csv", key=f"tl_csv_{i}", on_click="ignore",
                               disabled=r.handle.latest is None or r.handle.latest.generated is None)
        vs = "-vs-" + "-".join(tl.compare_methods(s)) if s.compare else ""
        default = f"toylab-{s.dataset}-{s.method}{vs}"[:68] + f"-seed{s.seed}"
        name = c2.text_input("Run name (saved under runs/)", value=default, key="tl_run_name")
        busy = any(r.handle.status.state in ("starting", "running") for r in runs)
        if c2.button("Save run", key="tl_save", disabled=busy,
                     help="Pause first: a run is saved while it is paused or finished."):
            for r in runs:
                folder = name if len(runs) == 1 else f"{name}-{r.method}"
                try:
                    out = save_run(r, runs_dir, folder, s)
                except (ValueError, RunError) as e:
                    c2.error(f"Not saved: {e}")
                else:
                    c2.success(f"Saved {METHOD_LABELS[r.method]} at step {r.handle.latest.step} "
                               f"to `{out}`")
