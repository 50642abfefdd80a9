"""The paper's Figure 4 for your own dataset, profile and seeds: a row of generated samples per method, a column per minority class, Table 1's numbers and recall per class beside it, and each of the caption's claims checked with a measurement. Stored runs are reused; missing ones train in the background, several at a time.

The page only wires widgets: the settings, the run lookup, the grid's figure, Table 1 and the
captions are in ``app/ui/ablation.py``; the Streamlit blocks (sidebar, runs and jobs, reference
classifier, grid, enlarged cell) in ``app/ui/ablation_view.py``; the background jobs in
``gamo/jobs.py``; the figure files, claim measures and verdicts in ``gamo/figure4.py`` and
``gamo/claims.py``; the reference classifier in ``gamo/reference.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import ablation as ab  # noqa: E402
from app.ui import ablation_view as av  # noqa: E402

st.set_page_config(page_title="Ablation Grid · GAMO Lab", page_icon="🧪", layout="wide")

st.title("Ablation Grid")
st.markdown(
    "Figure 4 of the paper is the one people remember: one row per method, one column per minority "
    "class, and the reader sees SMOTE make ghostly blends, cG drift towards the majority class, GAMO\\D "
    "leave the class and GAMO stay realistic. Here it is for the runs you choose, beside Table 1's "
    "numbers, and each of the caption's claims is **measured** on these runs instead of taken on trust."
)

settings = av.sidebar_settings()
if not settings.seeds or not settings.method_list:
    st.warning("Choose at least one seed and one method in the sidebar.")
    st.stop()
try:
    ab.check_profile(settings)
    ab.cell_config(settings, settings.method_list[0], settings.seeds[0])
except Exception as e:  # noqa: BLE001 - a bad profile is the user's to fix, never a traceback
    st.error(f"These settings cannot make a run: {e}")
    st.caption("Profiles: paper, paper:max=N, exp:ir=R, step:ir=R,minority=K, counts:n0,n1,… "
               "(empty: the dataset's default).")
    st.stop()

roots, user = av.store_roots()
queue = av.job_queue(user)
reference, ref_problem = av.load_reference(settings)
no_train = av.dataset_problem(settings)

st.caption(f"{ab.choice(settings).label}; profile **{ab.profile_of(settings)}**; {settings.loss.upper()} loss; "
           f"{ab.length_of(settings):,} {ab.choice(settings).unit} a run; seeds "
           f"{', '.join(map(str, settings.seeds))}. Runs are looked for in your runs folder (`{user}`) and the "
           f"committed benchmark runs; new ones train into `{ab.page_base(settings, user)}`.")

st.header("Runs")
try:
    cells = av.find_cells(settings, roots, user, reference)
except Exception as e:  # noqa: BLE001 - find_cells never raises; this is the last line of defence
    st.error(f"The runs cannot be listed: {type(e).__name__}: {str(e)[:300]}")
    st.stop()
av.show_runs(settings, cells, queue, no_train)
av.show_reference(settings, reference, ref_problem, queue, no_train)

finished = [c for c in cells if c.finished]
if not finished:
    st.info("No run of these settings has finished yet. Train the missing runs above (each in its own "
            "process, with its progress shown there), or choose settings the store has runs for: the "
            "committed benchmark has the scikit-learn digits (all methods, seeds 0-2) and the Fashion-MNIST "
            "flattened runs of the paper's profile.")
    st.stop()

sums, verdicts, why = ab.run_summary(cells)
if why:
    st.error(why)
info = ab.figure_info(cells)
n_classes = max((len(c.figure.final.get("recall") or []) for c in finished if c.figure is not None), default=0)

st.header("The grid")
left, right = st.columns([1.1, 1.0], gap="large")
layout = None
with left:
    try:
        layout = av.show_grid(settings, cells)
    except Exception as e:  # noqa: BLE001 - damaged figure files must not break the page
        st.error(f"The grid cannot be drawn from these figure files: {type(e).__name__}: {str(e)[:300]}. "
                 "Make the figure files again (the button above).")
with right:
    av.show_table1(settings, sums)
    if any(s.recall for s in sums.values()):
        st.markdown("**Test recall per class** (mean over seeds, last epoch)")
        av.show_recall(settings, sums, info, n_classes)
if layout is not None:
    av.show_enlarged(layout)

av.show_captions(ab.captions(verdicts, settings.method_list, sums))
with st.expander("The claim measures behind the verdicts", expanded=False):
    av.show_measures(sums, settings.method_list, reference)
    if not ab.measure_rows(sums, settings.method_list):
        st.caption("No run of a generating method has figure files yet.")
