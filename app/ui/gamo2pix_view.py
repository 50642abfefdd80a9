"""The GAMO2pix page's Streamlit blocks: the run and class pickers, opening a run (with a clear
message for one that cannot be decoded), the decoders with their background training and
progress, the decoded samples beside real and cDCGAN images, the selected sample's audit, the
interpolation strip, the reconstructions and the Fréchet table. The logic they draw is in
:mod:`app.ui.gamo2pix` and :mod:`gamo.gamo2pix` (no Streamlit there).

What is computed once: the opened run (``st.cache_resource``: one :class:`gamo.gamo2pix.Gamo2pix`
per run and checkpoint, shared by sessions and by the training thread), and the decoded samples,
their audit, the real and cDCGAN images and the Fréchet table (``st.cache_data``, keyed by run,
class, noise seed, count and the decoder's position), so moving a slider redraws from the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import streamlit as st

from app.ui import gamo2pix as gp
from app.ui import runs_view as rv
from gamo import gamo2pix as g2p
from gamo.errors import GamoError
from gamo.runs import CHECKPOINT

__all__ = ["trainings", "scan", "pick_run", "open_run", "pick_class", "show_decoders", "show_samples",
           "show_selected", "show_cdcgan", "show_interpolation", "show_reconstructions", "show_frechet", "cdcgan_of"]

ss = st.session_state
SAMPLE_COUNTS = (8, 16, 32, 64)
NCOLS = 8                    # reconstructions a row


def _ncols(n: int) -> int:
    """Columns of a grid of ``n`` samples in a third of the page: 4 for 16, 8 for 64."""
    return max(4, int(np.ceil(np.sqrt(n))))

REFRESH_S = 1.0
PAGE_IMAGE_LAB = "pages/2_Image_Lab.py"


# --------------------------------------------------------------------------------------------
# server-wide state
# --------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def trainings() -> gp.DecoderTrainings:
    """The server's decoder trainings (one at a time, in a thread)."""
    return gp.DecoderTrainings()


@st.cache_resource(show_spinner=False)
def _stamps() -> dict[str, tuple]:
    return {}


@st.cache_data(ttl=5, show_spinner=False)
def _scan(labels: tuple) -> list[rv.RunRow]:
    return rv.scan(rv.run_roots())


def scan() -> tuple[list[rv.RunRow], rv.Root]:
    """(every stored run under the Runs page's roots, the user's root); rescanned every few seconds."""
    roots = rv.run_roots()
    return _scan(tuple(str(r.path) for r in roots)), roots[0]


def _image(img: Any, caption: str = "") -> None:
    """A PIL picture at its own size or narrower, its caption below (an image's own caption, when
    longer than the picture is wide, stretches the picture: blurred)."""
    st.image(img)
    if caption:
        st.caption(caption)


def _mtime(p: Path) -> int:
    try:
        return os.stat(p).st_mtime_ns
    except OSError:
        return 0


def _key(path: Path) -> str:
    return os.path.realpath(path)


@st.cache_resource(max_entries=3, show_spinner=False)
def _open(path: str, ckpt_mtime: int) -> g2p.Gamo2pix:
    return g2p.open_run(path)


# --------------------------------------------------------------------------------------------
# the run and the class
# --------------------------------------------------------------------------------------------
def pick_run(rows: list[rv.RunRow]) -> gp.RunChoice | None:
    """The sidebar's run picker (first from the URL's ``run``, written back to it)."""
    with st.sidebar:
        st.header("Run")
        every = st.toggle("Also list the runs GAMO2pix cannot decode", key="gp_all",
                          help="Finished runs without a convolutional F (flattened images, 2D toys, tables) or "
                               "of methods that make no convex samples; choosing one says why.")
        want = st.query_params.get("run")
        options = gp.choices(rows, every=True)
        shown = [c for c in options if every or not c.why or c.label == want]
        if not shown:
            return None
        labels = [c.label for c in shown]
        if ss.get("gp_run") not in labels:
            ss["gp_run"] = want if want in labels else labels[0]
        by = {c.label: c for c in shown}
        label = st.selectbox("Finished run", labels, key="gp_run", format_func=lambda v: by[v].title)
        n_ok = sum(not c.why for c in options)
        st.caption(f"{n_ok} finished conv run{'s' * (n_ok != 1)} of GAMO or GAMO\\D"
                   + (f"; {len(options) - n_ok} other finished runs {'listed' if every else 'left out'}"
                      if len(options) > n_ok else "") + ".")
    if st.query_params.get("run") != label:
        st.query_params["run"] = label
    return by[label]


def open_run(c: gp.RunChoice, user: rv.Root) -> g2p.Gamo2pix | None:
    """The opened run, or None after saying (one line, what to do) why it cannot be opened."""
    if c.why and gp.is_conv(c.cfg):
        st.error(f"`{c.label}`: GAMO2pix cannot decode this run: {c.why}. Choose a GAMO or GAMO\\D run with a "
                 "convolutional F.")
        return None
    if gp.is_conv(c.cfg) and not c.has_checkpoint:
        st.error(f"This run's checkpoint is not here (`{c.label}` keeps only its config and scores: the committed "
                 f"runs' checkpoints are not in git). Train it with\n\n`{gp.remake_command(c, user.label)}`\n\n"
                 "and it appears in this list (from your runs folder).")
        return None
    try:
        with st.spinner("Opening the run (its data, checkpoint and F)…"):
            g = _open(str(c.path), _mtime(c.path / CHECKPOINT))
    except g2p.Gamo2pixError as e:
        st.error(str(e))
        return None
    except GamoError as e:
        st.error(f"The run cannot be opened: {e}")
        return None
    except Exception as e:  # noqa: BLE001 - a damaged folder never breaks the page
        st.error(f"The run cannot be opened: {type(e).__name__}: {str(e)[:300]}")
        return None
    job = trainings().get(_key(c.path))
    if job is not None and job.active and job.g is not g:
        return job.g                    # the object being trained (the cache has let it go since)
    _sync(g, c.path)
    return g


def _sync(g: g2p.Gamo2pix, path: Path) -> None:
    """Read the decoders again when their files changed outside this server's training (the
    command line trained them, another server...)."""
    key, stamp = _key(path), gp.decoder_stamp(path)
    job = trainings().get(key)
    seen = _stamps()
    if job is not None and job.active:
        return
    if key in seen and seen[key] != stamp:
        g.reload()
    seen[key] = stamp


def class_name(g: g2p.Gamo2pix, c: int) -> str:
    return f"{c} ({g.class_names[c]})" if c < len(g.class_names) else str(c)


def pick_class(g: g2p.Gamo2pix) -> tuple[int, int, int]:
    """(minority class, samples, noise seed) from the sidebar."""
    with st.sidebar:
        st.header("Samples")
        if ss.get("gp_cls") not in g.classes:
            ss["gp_cls"] = g.classes[-1]
        c = st.selectbox("Minority class", g.classes, key="gp_cls", format_func=lambda k: class_name(g, k))
        n = st.select_slider("Decoded samples", SAMPLE_COUNTS, value=16, key="gp_n")
        seed = st.number_input("Noise seed", 0, 2**31 - 1, 0, step=1, key="gp_seed",
                               help="G's noise: the same seed gives the samples `python -m gamo sample` and the "
                                    "audit draw with it.")
    return int(c), int(n), int(seed)


# --------------------------------------------------------------------------------------------
# the decoders and their training
# --------------------------------------------------------------------------------------------
def _state(d: g2p.ClassDecoder | None) -> str:
    if d is None:
        return "not trained"
    if d.stale:
        return "stale (another F)"
    return "trained" if d.done else "partly trained"


def show_decoders(g: g2p.Gamo2pix, c: gp.RunChoice) -> None:
    """The decoders' table, the Train / Stop buttons and the training's progress bars."""
    board, key = trainings(), _key(c.path)
    job = board.get(key)
    active = job is not None and job.active
    with st.expander("Training settings", expanded=False):
        a, b = st.columns(2)
        epochs = a.number_input("Epochs a class (passes over its members)", 0, 1000, g2p.EPOCHS, key="gp_epochs")
        min_steps = b.number_input("At least this many minibatches a class", 0, 100_000, g2p.MIN_STEPS,
                                   key="gp_min_steps")
        restart = st.checkbox("From scratch (forget the stored decoders)", key="gp_restart")
        st.caption(f"Defaults: {g2p.EPOCHS} epochs, at least {g2p.MIN_STEPS} minibatches of {g2p.BATCH} a class, "
                   f"Adam {g2p.LR:g} (the official script runs 25,000 minibatches a class: hours on a CPU). On the "
                   "Fashion-MNIST runs the nine classes take 5,580 minibatches, about 3 to 4 minutes on 2 cores.")
    plan = gp.planned_steps(g, int(epochs), int(min_steps), bool(restart))
    todo = sum(t - s for s, t in plan.values())
    n_done = sum(g.decoders.get(k) is not None and g.decoders[k].done for k in g.classes)
    if active:
        label = "Training…"
    elif restart:
        label = f"Train all {len(g.classes)} decoders from scratch"
    elif n_done == 0 and not g.decoders:
        label = "Train the decoders"
    else:
        label = "Continue training the decoders" if todo else "All decoders are trained"
    b = st.columns([2, 1, 3])
    if b[0].button(label, key="gp_train", type="primary", icon=":material/play_arrow:",
                   disabled=active or not todo):
        board.submit(key, c.label, g, epochs=int(epochs), min_steps=int(min_steps), restart=bool(restart))
        st.rerun()
    if b[1].button("Stop", key="gp_stop", icon=":material/stop:", disabled=not active,
                   help="Stops at the next minibatch; what is trained is kept, and training again continues."):
        board.stop(key)
        st.rerun()
    b[2].caption(f"{n_done} of {len(g.classes)} decoders trained; {todo:,} minibatches to go with these settings. "
                 "They train class by class in the background on this server (one run at a time); the page stays "
                 "usable, and each class's decoder is used as soon as it has an epoch.")
    rows = []
    for k in g.classes:
        d = g.decoders.get(k)
        hist = d.history[-1] if d is not None and d.history else None
        rows.append({"class": class_name(g, k), "members": len(g.class_rows(k)),
                     "minibatches": "–" if d is None else f"{d.step:,} / {d.steps:,}",
                     "recon. error (last epoch)": None if hist is None else round(hist[1], 1),
                     "KL": None if hist is None else round(hist[2], 1),
                     "seconds": None if d is None else round(d.seconds), "state": _state(d)})
    with st.expander(f"The {len(g.classes)} decoders (one per minority class)", expanded=not n_done):
        st.dataframe(rows, hide_index=True, key="gp_decoders")
        st.caption("Recon. error: summed squared pixel error per image of the class's members (pixels in [-1, 1]); "
                   "KL: the posterior's divergence from N(0, I). Stored in "
                   f"`{_rel(c.path / g2p.FOLDER)}`.")
    st.fragment(_progress, run_every=REFRESH_S if active or board.active() else None)(key, g)


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(rv.ROOT))
    except ValueError:
        return str(p)


def _progress(key: str, g: g2p.Gamo2pix) -> None:
    board = trainings()
    job = board.get(key)
    others = [j for j in board.active() if j.key != key]
    if job is not None and (job.active or job.state in ("failed", "stopped", "done")):
        if job.state == "failed":
            st.error(f"Training the decoders failed: {job.message}")
        elif job.state == "queued":
            st.progress(0.0, text=f"Queued behind {len(others)} other run{'s' * (len(others) != 1)}' decoders")
        else:
            done = sum(min(s, t) for s, t in job.per_class.values())
            total = sum(t for _, t in job.per_class.values())
            words = {"running": "training", "done": job.message, "stopped": job.message}[job.state]
            st.progress(job.fraction, text=f"All classes: {done:,} of {total:,} minibatches · {job.elapsed:.0f} s · "
                                           f"{words}")
            cols = st.columns(3)
            for i, (k, (s, t)) in enumerate(job.per_class.items()):
                cols[i % 3].progress(min(s, t) / t if t else 1.0,
                                     text=f"class {class_name(g, k)}: {min(s, t):,} / {t:,}")
    elif others:
        st.caption(f"Another run's decoders are training on this server ({others[0].label}); a training asked "
                   "for here waits for it.")
    before, finished_before = ss.get("gp_watch", set()), ss.get("gp_finished", {})
    now = {j.key for j in board.active()}
    finished = 0 if job is None else sum(s >= t for s, t in job.per_class.values())
    ss["gp_watch"], ss["gp_finished"] = now, {key: finished}
    # this run's training ended, or one more class is done: redraw the page with its decoders
    if key in before - now or (job is not None and job.active and finished > finished_before.get(key, finished)):
        st.rerun(scope="app")


# --------------------------------------------------------------------------------------------
# decoded samples, real and cDCGAN images
# --------------------------------------------------------------------------------------------
def _dec_key(g: g2p.Gamo2pix, c: int) -> tuple:
    d = g.decoders.get(c)
    return (str(g.run_dir), g.run_step, g.f_digest, None if d is None else (d.step, d.steps, d.stale))


@st.cache_data(max_entries=64, show_spinner=False)
def decoded(_g: g2p.Gamo2pix, key: tuple, c: int, n: int, seed: int) -> g2p.Decoded:
    return g2p.decode_generated(_g, c, n, seed)


@st.cache_data(max_entries=64, show_spinner=False)
def audited(_g: g2p.Gamo2pix, key: tuple, c: int, n: int, seed: int) -> Any:
    from gamo.audit import audit_samples

    d = decoded(_g, key, c, n, seed)
    return audit_samples(_g.method, d.features, np.full(d.n, c), d.parent_idx, d.parent_w, d.eff_parents)


@st.cache_data(max_entries=64, show_spinner=False)
def real_images(_g: g2p.Gamo2pix, key: tuple, c: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = _g.class_rows(c)
    pick = np.sort(np.random.default_rng(seed).choice(rows, min(n, len(rows)), replace=False))
    return pick, _g.method.x_train[pick].contiguous().cpu().numpy()


@st.cache_resource(max_entries=2, show_spinner=False)
def _cgan(path: str, ckpt_mtime: int) -> tuple[Any, Any]:
    import threading

    from gamo.cli import _sample_data
    from gamo.runs import check_indices, load_checkpoint, load_config
    from gamo.train import Trainer

    run = Path(path)
    cfg, data = _sample_data(run, load_config(run), None)
    tr = Trainer(cfg, data=data, state=load_checkpoint(run), with_grid=False)
    check_indices(run, tr.data)
    return tr.method, threading.Lock()


@st.cache_data(max_entries=64, show_spinner=False)
def cgan_images(path: str, ckpt_mtime: int, c: int, n: int, seed: int) -> np.ndarray:
    m, lock = _cgan(path, ckpt_mtime)
    with lock:              # _generate switches G to eval mode and back
        x, _ = m._generate({int(c): int(n)}, int(seed))
    return x.cpu().numpy()


def cdcgan_of(c: gp.RunChoice, rows: list[rv.RunRow]) -> gp.Cdcgan:
    return gp.find_cdcgan(c, rows)


def show_cdcgan(cd: gp.Cdcgan, c: int, n: int, seed: int) -> None:
    st.markdown("**cDCGAN+CN's images** (same data, seed and noise seed)")
    if cd.state == "ready":
        try:
            with st.spinner("Generating cDCGAN's images…"):
                x = cgan_images(str(cd.path), _mtime(cd.path / CHECKPOINT), c, n, seed)
        except Exception as e:  # noqa: BLE001 - a damaged cDCGAN run must not break the page
            st.error(f"cDCGAN's run `{cd.label}` cannot be used: {type(e).__name__}: {str(e)[:200]}")
            return
        _image(gp.grid_image(x, _ncols(len(x))), caption=f"{len(x)} images of its generator (`{cd.label}`)")
        return
    words = {"training": f"its run is training now (`{cd.label}`): its images appear when it finishes.",
             "no checkpoint": f"its run `{cd.label}` has no checkpoint here. Train it again with",
             "missing": "no cDCGAN+CN run of the same data and seed is stored. Make one with"}[cd.state]
    st.info(f"cDCGAN: {words}" + ("" if cd.state == "training" else f"\n\n`{cd.command}`"))


def show_samples(g: g2p.Gamo2pix, c: int, n: int, seed: int, cd: gp.Cdcgan) -> tuple[g2p.Decoded, int]:
    """The decoded samples (the selected one framed) beside real images of the class and
    cDCGAN's; the slider over the samples. Returns (the decoded samples, the selected index)."""
    key = _dec_key(g, c)
    with st.spinner("Decoding GAMO's samples…"):
        dec = decoded(g, key, c, n, seed)
    if ss.get("gp_i", 0) >= dec.n:
        ss["gp_i"] = 0
    i = st.slider("Sample", 0, dec.n - 1, key="gp_i", help="The sample shown large below, with its audit; "
                  "framed in red in the grid.") if dec.n > 1 else 0
    cols = st.columns(3, gap="medium")
    with cols[0]:
        st.markdown("**Decoded GAMO samples**")
        _image(gp.grid_image(dec.images, _ncols(dec.n), selected=i),
                 caption=f"{dec.n} samples of G for class {class_name(g, c)}, noise seed {seed}, decoded "
                         "(posterior mean)")
    with cols[1]:
        st.markdown("**Real images of the class** (training members)")
        rows, real = real_images(g, key, c, n, seed)
        _image(gp.grid_image(real, _ncols(n)), caption=f"{len(rows)} of the class's {len(g.class_rows(c))} members, "
                                                     "drawn at random")
    with cols[2]:
        show_cdcgan(cd, c, n, seed)
    return dec, int(i)


def _flags(audit: Any, k: int) -> str:
    return ", ".join(n.replace("_", " ") for n in ("near_duplicate", "out_of_distribution", "label_disputed")
                     if getattr(audit, n)[k]) or "no flag"


def show_selected(g: g2p.Gamo2pix, c: gp.RunChoice, cls: int, dec: g2p.Decoded, i: int, n: int, seed: int) -> None:
    """Sample ``i`` large, with the Image Lab's audit of its feature vector: convex parents,
    nearest real neighbours, measures and flags; a link to the Image Lab."""
    from app.ui.audit_view import show_sample

    audit = audited(g, _dec_key(g, cls), cls, n, seed)
    left, right = st.columns([0.3, 1.0], gap="large")
    with left:
        st.markdown(f"**Sample #{i}, decoded**")
        cap = (f"#{i} · heaviest parent row {int(dec.parent_idx[i, 0])} (w {float(dec.parent_w[i, 0]):.2f}) · "
               f"{float(dec.eff_parents[i]):.1f} effective parents" if dec.parent_idx is not None else f"#{i}")
        _image(gp.grid_image(dec.images[i:i + 1], 1, scale=6), caption=cap)
        st.caption(f"{int(audit.flagged.sum())} of the {audit.n} samples flagged "
                   f"({int(audit.near_duplicate.sum())} near-duplicate, {int(audit.out_of_distribution.sum())} "
                   f"out-of-distribution, {int(audit.label_disputed.sum())} label disputed).")
        _image_lab_link(c)
    with right:
        st.markdown(f"**Its audit** (the Image Lab's measures of its feature vector): {_flags(audit, i)}")
        run = SimpleNamespace(images=g.method.x_train.cpu().numpy(), vrange=(-1.0, 1.0),
                              run_id=hashlib.sha1(str(g.run_dir).encode()).hexdigest()[:8], method=g.method.name,
                              data=SimpleNamespace(class_names=list(g.class_names),
                                                   y_train=g.method.y_train.cpu().numpy(),
                                                   image_shape=g.image_shape))
        show_sample(run, audit, i, _flags(audit, i), picture=False)   # the decoded image is on the left
        st.caption(f"Distances in {audit.space}: the space the sample lives in (the decoded image is a picture of "
                   f"it). DCR: distance to the closest real training point; flags: near-duplicate below the "
                   f"{audit.low_pct:g}th percentile of the class's own nearest-neighbour distances, "
                   f"out-of-distribution above the {audit.high_pct:g}th or nearer another class, label disputed "
                   "when M assigns another class.")


def _image_lab_link(c: gp.RunChoice) -> None:
    q = gp.image_lab_query(c.cfg)
    label = "Audit live in the Image Lab"
    help_ = ("Opens the Image Lab with this run's settings (dataset, conv family, method, loss, seed): it trains "
             "a live run of them and audits every generated point on its map. It does not open stored runs.")
    try:
        st.page_link(PAGE_IMAGE_LAB, label=label, icon=":material/travel_explore:", query_params=q, help=help_)
    except Exception:  # noqa: BLE001 - the page run alone (tests): a plain link
        st.markdown(f"[{label}](Image_Lab?{'&'.join(f'{k}={v}' for k, v in q.items())})", help=help_)


# --------------------------------------------------------------------------------------------
# interpolation, reconstructions
# --------------------------------------------------------------------------------------------
def show_interpolation(g: g2p.Gamo2pix, dec: g2p.Decoded, i: int) -> None:
    """The strip between two chosen samples (in F's space, or in G's noise)."""
    if dec.n < 2:
        st.caption("Decode at least two samples for an interpolation.")
        return
    opts = list(range(dec.n))
    for k, default in (("gp_from", i), ("gp_to", (i + 1) % dec.n)):
        if ss.get(k) not in opts:
            ss[k] = default
    a = st.columns([1, 1, 1, 2])
    start = a[0].selectbox("From sample", opts, key="gp_from")
    end = a[1].selectbox("To sample", opts, key="gp_to")
    steps = a[2].slider("Points", 3, 16, 8, key="gp_steps")
    space = a[3].radio("Along", ("features", "noise"), horizontal=True, key="gp_space",
                       format_func={"features": "a segment in F's space (convex: a sample GAMO could make)",
                                    "noise": "a segment in G's noise (G's own path)"}.get)
    try:
        it = g2p.interpolate(g, dec, int(start), int(end), int(steps), space=space)
    except g2p.Gamo2pixError as e:
        st.error(str(e))
        return
    _image(gp.grid_image(it.images, len(it.images), scale=3),
             caption=f"#{start} → #{end}, t = " + ", ".join(f"{t:.2f}" for t in it.t)
             + ("; heaviest parent rows " + ", ".join(str(int(r)) for r in it.parent_idx[:, 0])
                if it.parent_idx is not None else ""))


def show_reconstructions(g: g2p.Gamo2pix, cls: int, seed: int) -> None:
    """Real images of the class and their decodings through F."""
    split = st.radio("Real images", ("train", "test"), horizontal=True, key="gp_split",
                     format_func={"train": "training members (what the decoder learned from)",
                                  "test": "held-out test images (never seen by F or the decoder)"}.get)
    try:
        r = g2p.reconstruct(g, cls, split=split, n=NCOLS, seed=seed)
    except g2p.Gamo2pixError as e:
        st.error(str(e))
        return
    _image(gp.grid_image(np.concatenate([r.real, r.decoded]), max(1, len(r.rows)), scale=3),
             caption=f"Top: real images (rows {', '.join(str(int(x)) for x in r.rows)} of x_{split}); bottom: "
                     f"decoded from their F features. Summed squared error per image: "
                     + ", ".join(f"{v:.0f}" for v in r.sse))


# --------------------------------------------------------------------------------------------
# the Fréchet table
# --------------------------------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def _reference(dataset: str, stamp: tuple) -> Any:
    from gamo.config import DataConfig
    from gamo.reference import get_reference

    return get_reference(DataConfig(dataset=dataset), train=False)


def reference(dataset: str) -> Any:
    from gamo.config import DataConfig
    from gamo.reference import INFO, cache_dir, committed_dir, reference_key

    try:
        key = reference_key(DataConfig(dataset=dataset))
        return _reference(dataset, tuple(_mtime(r / key / INFO) for r in (cache_dir(), committed_dir())))
    except GamoError:
        return None


@st.cache_data(max_entries=16, show_spinner=False)
def _frechet(_g: g2p.Gamo2pix, _ref: Any, ref_key: str, key: tuple, n: int, seed: int, cgan: tuple | None) -> dict:
    from gamo.claims import frechet_from_moments

    table = g2p.frechet_table(_g, n=n, seed=seed, reference=_ref)
    if cgan is not None:
        out = {}
        for row in table["classes"]:
            c = int(row["cls"])
            f = _ref.features(cgan_images(cgan[0], cgan[1], c, n, seed)).astype(np.float64)
            mu, cov = _ref.class_stats(c)
            out[c] = float(frechet_from_moments(f.mean(0), np.cov(f, rowvar=False), mu, cov))
        table["cdcgan"] = out
    return table


def _stored_table(g: g2p.Gamo2pix) -> dict | None:
    """The table ``python -m gamo gamo2pix`` wrote, when it is of these decoders."""
    try:
        payload = json.loads((g.folder / g2p.REPORT_JSON).read_text())
    except (OSError, ValueError, TypeError):
        return None
    t = payload.get("frechet") if isinstance(payload, dict) else None
    decs = payload.get("decoders") if isinstance(payload, dict) else None
    if not isinstance(t, dict) or payload.get("run_step") != g.run_step or not isinstance(decs, dict):
        return None
    same = all(str(k) in decs and decs[str(k)].get("step") == d.step for k, d in g.decoders.items())
    return t if same and len(decs) == len(g.decoders) else None


def show_frechet(g: g2p.Gamo2pix, c: gp.RunChoice, cd: gp.Cdcgan, seed: int = 0) -> None:
    """Table 5's measure for every class with a decoder (stored, or computed on request)."""
    ds = g.method.cfg.data.dataset
    stored = _stored_table(g)
    a = st.columns([1, 1, 3])
    n = a[0].select_slider("Samples a class", (100, 250, 500, 1000), value=1000, key="gp_fn")
    go = a[1].button("Compute the table", key="gp_frechet", icon=":material/functions:",
                     disabled=not g.decoders)
    ref = reference(ds)
    table = None
    deckey = tuple(_dec_key(g, k) for k in g.classes)
    want = (str(c.path), int(n), int(seed), deckey)
    if go or ss.get("gp_frechet_for") == want:
        if ref is None:
            st.info(f"No reference classifier is stored for {ds}: the distances are measured in its features. "
                    "Train it on the Ablation Grid page (its reference section), or run "
                    f"`python -m gamo gamo2pix --run {_rel(c.path)}`, which trains it first and writes this table.")
            return
        cg = (str(cd.path), _mtime(cd.path / CHECKPOINT)) if cd.state == "ready" else None
        with st.spinner(f"Decoding {n:,} samples a class and measuring them…"):
            table = _frechet(g, ref, str(getattr(ref, "path", "")), deckey, int(n), int(seed), cg)
        ss["gp_frechet_for"] = want
    elif stored is not None:
        table = stored
        a[2].caption(f"From `{_rel(g.folder / g2p.REPORT_JSON)}` (written by `python -m gamo gamo2pix`).")
    if table is None:
        a[2].caption("Per minority class, the Fréchet distance between decoded GAMO samples and the class's held-out "
                     "real images (Table 5's measure), in the features of the dataset's reference classifier. "
                     "Takes a few seconds to a minute.")
        return
    rows = gp.frechet_rows(table, table.get("cdcgan") if cd.state == "ready" else None, g.class_names)
    st.dataframe(rows, hide_index=True, key="gp_frechet_table")
    paper = g2p.PAPER_TABLE5.get(ds)
    st.caption(f"{table.get('n', n):,} samples a class (noise seed {table.get('seed', seed)}); "
               f"{table.get('space', '')}. GAMO2pix: each sample decoded from "
               "a posterior draw (as the official script) and from the posterior mean (as shown above); floor: as "
               "many real held-out images (the best to expect); reconstructions: the class's members through F and "
               "the decoder; training images: the members themselves."
               + (f" The paper's FID (Inception features, another scale): GAMO2pix {paper[0]}, cDCGAN {paper[1]}."
                  if paper else ""))
