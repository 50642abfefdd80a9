"""GAMO2pix (Section 5): images of GAMO's samples. Pick a finished conv run, train its per-class decoders in the background (or open the trained ones), and see decoded samples beside real images and cDCGAN's, interpolations, reconstructions, each sample's audit and the Fréchet distances.

The page only wires widgets: the run listing, the cDCGAN lookup, the commands, the background
trainings and the pictures are in ``app/ui/gamo2pix.py``; the Streamlit blocks (pickers, decoders
and progress, grids, audit, interpolation, reconstructions, Fréchet table) in
``app/ui/gamo2pix_view.py``; the decoders themselves in ``gamo/gamo2pix.py`` (also
``python -m gamo gamo2pix --run DIR``); the audit's measures in ``gamo/audit.py``, drawn with the
Image Lab's blocks (``app/ui/audit_view.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

_ROOT = Path(__file__).resolve().parent.parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui import gamo2pix_view as gv  # noqa: E402
from gamo.config import METHOD_LABELS  # noqa: E402

st.set_page_config(page_title="GAMO2pix · GAMO Lab", page_icon="🖼️", layout="wide")

st.title("GAMO2pix")
st.markdown(
    "With a convolutional network, GAMO does not generate images: it generates points in the space of "
    "its feature extractor F, each a convex combination of real members' features. GAMO2pix (Section 5 of "
    "the paper) turns them into pictures: per minority class, a small VAE whose encoder is the run's "
    "**frozen F** learns to map F's features of the class's real images back to those images; GAMO's "
    "samples then go through the same head and decoder. What you see is a picture of the sample, as good "
    "as the decoder: its reconstructions of real images below show what it can and cannot recover."
)

rows, user = gv.scan()
choice = gv.pick_run(rows)
if choice is None:
    st.info("No finished GAMO or GAMO\\D run with a convolutional F is stored yet. Train one, e.g.\n\n"
            "`python -m gamo bench table1 --dataset fashion-mnist --methods gamo --seeds 0 --epochs 20 "
            f"--root {user.label}`\n\nand it appears here (your runs folder `{user.label}` and the committed "
            "benchmark runs are searched, as on the Runs page).")
    st.stop()

g = gv.open_run(choice, user)
if g is None:
    st.stop()
st.caption(f"`{choice.label}`: {METHOD_LABELS.get(choice.method, choice.method)} on {choice.cfg.data.dataset} (profile "
           f"{choice.cfg.data.profile}, seed {choice.seed}), step {g.run_step:,}; minority classes "
           f"{', '.join(gv.class_name(g, k) for k in g.classes)}.")

st.header("Decoders")
gv.show_decoders(g, choice)

cls, n, seed = gv.pick_class(g)
cdcgan = gv.cdcgan_of(choice, rows)
st.header(f"Class {gv.class_name(g, cls)}")
if cls not in g.decoders:
    st.info(f"Class {gv.class_name(g, cls)} has no decoder yet: train the decoders above (each class is shown as "
            "soon as its decoder has an epoch). Meanwhile, cDCGAN's images of the class:")
    gv.show_cdcgan(cdcgan, cls, n, seed)
    st.stop()
d = g.decoders[cls]
if not d.done:
    st.caption(f"This class's decoder is {'stale (trained on another F)' if d.stale else 'still training'}: "
               f"{d.step:,} of {d.steps:,} minibatches.")

try:
    dec, i = gv.show_samples(g, cls, n, seed, cdcgan)
except Exception as e:  # noqa: BLE001 - a damaged decoder file or run never breaks the page
    st.error(f"The samples cannot be decoded: {type(e).__name__}: {str(e)[:300]}")
    st.stop()

st.subheader(f"Sample #{i}")
try:
    gv.show_selected(g, choice, cls, dec, i, n, seed)
except Exception as e:  # noqa: BLE001
    st.error(f"The sample's audit cannot be shown: {type(e).__name__}: {str(e)[:300]}")

st.subheader("Interpolation")
gv.show_interpolation(g, dec, i)

st.subheader("Reconstructions of real images")
gv.show_reconstructions(g, cls, seed)

st.header("Fréchet distances (Table 5)")
gv.show_frechet(g, choice, cdcgan, seed)
