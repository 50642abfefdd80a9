"""GAMO Lab: the landing page (`streamlit run app/Home.py`).

Explains class imbalance, the class-balanced metrics and GAMO's three players, shows a small
static picture of convex oversampling, and links to the lab's pages.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import numpy as np
import streamlit as st

# `streamlit run app/Home.py` puts app/ on sys.path, not the repository root; add it so that
# `app.ui` and `gamo` import the same way here, in the pages and in the tests.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from app.ui.figures import toy_figure  # noqa: E402
from app.ui.warm import warm_projection, warm_run_server  # noqa: E402
from gamo.geometry import convex_hull  # noqa: E402

PAGES_DIR = Path(__file__).resolve().parent / "pages"


# Each page is described by the first paragraph of its module docstring (read without
# importing it); these notes are the fallback for a page without one.
PAGE_NOTES: dict[str, str] = {
    "Toy_Lab": (
        "Train GAMO (or a baseline) on a 2D toy in seconds and watch it live: M's decision "
        "regions, D's score, each minority class's convex hull, and the generated points "
        "moving toward the class periphery. Click a generated point to see its convex parents."
    ),
    "Image_Lab": (
        "Train on real images live (scikit-learn digits in seconds, Fashion-MNIST, MNIST, "
        "CIFAR10, SVHN or your own table), watch the generated points migrate in a PCA or UMAP "
        "map fitted on the real points only, and audit every generated sample."
    ),
    "Ablation_Grid": (
        "The paper's Figure 4 for your own dataset, profile and seeds: generated samples per method "
        "and minority class, Table 1 beside them, and each of the caption's claims measured."
    ),
    "Runs": (
        "Every stored run (yours and the committed benchmark runs): compare their curves, "
        "export one's balanced training set, samples, config and checkpoint, or delete your own."
    ),
    "GAMO2pix": (
        "Images of GAMO's samples (Section 5): train a finished conv run's per-class decoders in the "
        "background, then see decoded samples beside real and cDCGAN images, interpolations, "
        "reconstructions, each sample's audit and the Fréchet distances."
    ),
}


def balanced_scores(recall: list[float], counts: list[int]) -> dict[str, float]:
    """Accuracy, ACSA and GM of a classifier with the given per-class recall on a test set.

    Parameters
    ----------
    recall : list of float
        Recall of each class.
    counts : list of int
        Test points per class.

    Returns
    -------
    dict
        ``accuracy`` (weighted by ``counts``), ``acsa`` (mean recall) and ``gm`` (geometric
        mean of recall).
    """
    r = np.asarray(recall, dtype=float)
    n = np.asarray(counts, dtype=float)
    return {
        "accuracy": float((r * n).sum() / n.sum()),
        "acsa": float(r.mean()),
        "gm": float(np.prod(r) ** (1.0 / len(r))),
    }


N_CROSSES = 8               # convex combinations in Home's picture (its caption says so; 12 hid each other)
PICTURE_TITLE = "Convex oversampling, by hand"


def illustration(n_crosses: int = N_CROSSES) -> object:
    """A hand-made 2D imbalanced toy: the minority hull and ``n_crosses`` convex combinations,
    chosen apart from one another so that every cross can be seen."""
    rng = np.random.default_rng(7)
    maj = rng.normal(loc=(0.0, 0.0), scale=(1.0, 0.9), size=(300, 2))
    # a small, elongated minority class up and to the right of the majority
    u = rng.uniform(-1.0, 1.0, size=(25, 1))
    minr = (3.3, 1.2) + 2.4 * u * np.array([0.55, -0.83]) + rng.normal(0, 0.45, size=(25, 2))
    x = np.vstack([maj, minr])
    y = np.r_[np.zeros(len(maj), int), np.ones(len(minr), int)]

    # candidate convex combinations, each of 4 minority points with random weights; keep
    # n_crosses far from each other and from the real points (a weighted average of random
    # points clusters near the centroid, where crosses would hide one another)
    cand = 400
    parents = np.stack([rng.choice(len(minr), size=4, replace=False) for _ in range(cand)])
    weights = rng.dirichlet(np.full(4, 0.6), size=cand)
    order = np.argsort(-weights, axis=1)  # heaviest parent first
    parents = np.take_along_axis(parents, order, axis=1)
    weights = np.take_along_axis(weights, order, axis=1)
    pts = np.einsum("mk,mkd->md", weights, minr[parents])  # (cand, 2) weighted averages
    gap_real = np.min(np.linalg.norm(pts[:, None] - minr[None], axis=2), axis=1)
    keep = [int(np.argmax(gap_real))]
    for _ in range(n_crosses - 1):   # farthest point first: well apart, and off the real dots
        d = np.min(np.linalg.norm(pts[:, None] - pts[keep][None], axis=2), axis=1)
        keep.append(int(np.argmax(np.minimum(d, 2.0 * gap_real))))
    parents, weights, gen = parents[keep], weights[keep], pts[keep]

    # highlight the point whose parents lie far from each other and from it, so that the lines
    # are long and the weights written by the parents do not overlap
    spread = [min(np.min([np.linalg.norm(minr[a] - minr[b]) for i, a in enumerate(p) for b in p[i + 1:]]),
                  np.min(np.linalg.norm(minr[p] - g, axis=1)))
              for p, g in zip(parents, gen)]
    sel = int(np.argmax(spread))
    fig = toy_figure(
        x,
        y,
        hulls={1: convex_hull(minr)},
        gen_x=gen,
        gen_y=np.ones(len(gen), int),
        selected=sel,
        parents_x=minr[parents[sel]],
        parents_w=weights[sel],
        x_range=(-3.2, 6.2),
        y_range=(-3.0, 4.3),
        height=470,
        uirevision="home",
    )
    # the title is a heading above the chart (in a narrow column Plotly cut it off); the weights
    # on the parents alternate above and below their circles, so that near ones do not overlap
    fig.update_layout(margin=dict(l=40, r=10, t=10, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.08, x=0.0, font=dict(size=11)))
    for tr in fig.data:
        if tr.meta == "parent-markers":
            tr.textposition = ["top center" if j % 2 == 0 else "bottom center" for j in range(len(tr.x))]
        elif tr.legendgroup == "real1":        # small dots, so the crosses among them stand out
            tr.marker.size = 6
            tr.marker.line.width = 0.5
        elif tr.meta == "generated":
            tr.marker.size = 11
    return fig


def page_description(path: Path) -> str:
    """The first paragraph of the page's docstring, else its entry in ``PAGE_NOTES``."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError):
        doc = ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    if first:
        return first
    return PAGE_NOTES.get(re.sub(r"^\d+_", "", path.stem), "")


def page_label(path: Path) -> str:
    """``3_Image_Lab.py`` -> ``Image Lab``."""
    return re.sub(r"^\d+_", "", path.stem).replace("_", " ").strip() or path.stem


def existing_pages() -> list[Path]:
    """Page files under app/pages/, in Streamlit's order (by leading number, then name)."""
    if not PAGES_DIR.is_dir():
        return []

    def key(p: Path) -> tuple[float, str]:
        m = re.match(r"^(\d+)", p.stem)
        return (float(m.group(1)) if m else float("inf"), p.stem)

    return sorted(
        (p for p in PAGES_DIR.glob("*.py") if not p.name.startswith(("_", "."))), key=key
    )


# ---------------------------------------------------------------------------------------
st.set_page_config(page_title="GAMO Lab", page_icon="⚖️", layout="wide")
warm_run_server()      # the live runs' fork server (imports torch: seconds)
warm_projection()      # UMAP's compiled code for the Image Lab's maps (about 30 s)

st.title("GAMO Lab")
st.markdown(
    "An interactive companion to *Generative Adversarial Minority Oversampling* "
    "(S. S. Mullick, S. Datta, S. Das, ICCV 2019; "
    "[authors' code](https://github.com/SankhaSubhra/GAMO)). Train small models on "
    "imbalanced data, watch the three players of GAMO move, and compare GAMO with the "
    "baselines the paper uses."
)

left, right = st.columns([1.05, 1.0], gap="large")

with left:
    st.header("What class imbalance does to a classifier")
    st.markdown(
        """
A classifier is trained to make its **average loss over the training points** small. If
class 0 has 1,000 points and class 1 has 20, about 98% of that average comes from class 0.
The cheapest way to lower it is to move the decision boundary *into* the minority class:
a few minority points end up on the wrong side, and many majority points gain a little
margin. On new data the minority class's **recall** (the fraction of its points the
classifier finds) collapses, while the majority's stays close to 1.

**Accuracy hides this**, because it is dominated by the large class. Take a test set with
990 majority and 10 minority points:
"""
    )
    a = balanced_scores([1.0, 0.0], [990, 10])
    b = balanced_scores([0.95, 0.80], [990, 10])
    st.table(
        {
            "classifier": ["A: always answers 'majority'", "B: recall 0.95 / 0.80"],
            "accuracy": [f"{a['accuracy']:.1%}", f"{b['accuracy']:.1%}"],
            "ACSA": [f"{a['acsa']:.1%}", f"{b['acsa']:.1%}"],
            "GM": [f"{a['gm']:.1%}", f"{b['gm']:.1%}"],
        },
        hide_index=True,
    )
    st.markdown(
        """
Accuracy prefers A, which never finds a minority point. The paper therefore reports two
**class-balanced** scores computed from the recalls $r_1, \\dots, r_C$ of the $C$ classes,
in which every class counts the same whatever its size:
"""
    )
    st.latex(
        r"\mathrm{ACSA} = \frac{1}{C}\sum_{i=1}^{C} r_i"
        r"\qquad\qquad"
        r"\mathrm{GM} = \Bigl(\prod_{i=1}^{C} r_i\Bigr)^{1/C}"
    )
    st.markdown(
        """
ACSA (average class-specific accuracy) is the mean recall; GM (geometric mean) falls to 0
as soon as one class is never recognised. Test sets in this lab are balanced, as in the
paper (100 points per class for the image sets), and both scores are shown during training.
"""
    )

with right:
    st.markdown(f"**{PICTURE_TITLE}**")
    st.plotly_chart(illustration(), width="stretch", key="home_illustration")
    st.caption(
        f"Blue dots: 300 majority points. Red dots: 25 minority points; the dashed red line is "
        f"their convex hull. Red crosses: {N_CROSSES} weighted averages of minority points (each "
        "of 4 points, weights ≥ 0 summing to 1), so each lies inside the hull. The star is one "
        "of them: the lines join it to its 4 parents, thicker = larger weight, with the weights "
        "written by them. This picture is made by hand; in the Toy Lab the generator learns the "
        "weights, and M's gradients move the points toward the side of the hull that faces the "
        "majority class."
    )

st.header("GAMO: three players")
st.markdown(
    """
Classic oversampling (e.g. SMOTE) adds synthetic minority points to the training set
before training. A deep network learns its features while it trains, so GAMO oversamples
*inside* the training loop, in the space where the classifier works (pixels for flattened
images, or the features of a convolutional network F), and lets the classifier's own
gradients decide where new points help most.
"""
)

c1, c2, c3 = st.columns(3, gap="medium")
with c1:
    st.subheader("Convex generator G")
    st.markdown(
        """
G has two parts. The **cTMU** (conditional transient mapping unit) maps a noise vector
$z$ and a minority class $i$ to an intermediate vector $t$. The **IGU** of class $i$
(instance generation unit, one per minority class) turns $t$ into $n_i$ softmax weights,
one for each real training point of class $i$. The sample is their weighted average
(eq. 1):
"""
    )
    # two short lines: one long one was cut in a narrow column
    st.latex(r"G(z \mid i) = \sum_{j=1}^{n_i} w_j\,x_j")
    st.latex(r"w_j \ge 0,\quad \sum_j w_j = 1")
    st.markdown(
        "Because the weights are non-negative and sum to 1, **every generated point lies "
        "inside the convex hull** of the real points of its class."
    )
with c2:
    st.subheader("Classifier M")
    st.markdown(
        """
M is trained on the real points **and** on generated ones. Generated points are given to
class $i$ with probability proportional to $n_c - n_i$ (the gap to the largest class
$c$), so the smaller a class, the more synthetic points it receives and the closer the
mix of real and generated points is to balanced.
"""
    )
with c3:
    st.subheader("Conditional discriminator D")
    st.markdown(
        """
$D(x \\mid i)$ learns to tell real points of class $i$ from generated ones. It is needed
because a convex hull can contain regions that do not belong to the class: for a
crescent-shaped class, the hull also covers the empty inside of the crescent. D keeps the
generated points on the class's actual distribution.
"""
    )

st.markdown(
    """
**The game.** G is trained to make M predict a *wrong* class for its points (target: the
ones' complement of the true label) and to make D call them real. Inside the hull, the
points M finds hardest are those close to the other classes, so G's points drift toward
the **periphery** of their class, which is exactly where the minority class needs more
training points to push the decision boundary back. M learns from them; D stops them
from leaving the class's shape. (The paper gives cross-entropy and least-squares versions
of all three objectives; the lab offers both.)
"""
)

st.header("Pages")
pages = existing_pages()
if not pages:
    st.info(
        "No pages are installed yet. The first one, the Toy Lab (app/pages/1_Toy_Lab.py), "
        "trains GAMO on a 2D toy and shows every player live."
    )
for path in pages:
    rel = f"pages/{path.name}"
    desc = page_description(path)
    try:
        st.page_link(rel, label=page_label(path), icon="➡️")
    except Exception:  # a page Streamlit cannot register must not break the landing page
        st.markdown(f"**{page_label(path)}** (open it from the sidebar)")
    if desc:
        st.caption(desc)

st.divider()
st.markdown(
    """
**How to use the lab.** Start with the Toy Lab: runs there take seconds on a CPU. Each
browser session has one live run; starting a new one stops the previous one, and runs have
a step cap. Every page draws the same training loop the command line uses, so what you
see here is what `python -m gamo` computes headlessly.

**Then the Image Lab**, for real images. The map there is a 2D picture of a
high-dimensional space: PCA or UMAP is fitted on the real training images only, and the
generated samples are placed on that fixed map, so what moves is the generator, not the
layout. Its audit answers the practitioner's question: is a generated sample a near copy of
one real image, far from its class (or nearer another class), or one the classifier
disputes? The flagged ones can be exported and looked at.

**The Ablation Grid** is the paper's Figure 4 for the dataset, imbalance profile and seeds you
choose: a row of generated samples per method, a column per minority class, Table 1's numbers
and recall per class beside it, and each of the caption's claims (SMOTE's blends, cG's drift to
the majority class, GAMO\\D leaving the class, GAMO staying realistic) held to a measurement by a
reference classifier. Stored runs are reused; missing ones train in the background.

**The Runs page** keeps what you trained: every saved run and the committed benchmark runs, side
by side, with their curves and exports.

**GAMO2pix** answers the question a conv run leaves open: GAMO's samples there are points in the
space of the network's features F, not images, so what do they look like? For a finished conv run of
GAMO (or GAMO\\D) it trains one small decoder per minority class on the frozen F (a few minutes for
Fashion-MNIST's nine classes, in the background; the page stays usable), then shows the decoded samples
beside real images of the class and cDCGAN's images, an interpolation between two samples, real
images through F and back (what the decoder can recover), each sample's audit (its convex parents,
nearest real neighbours and flags) and Table 5's Fréchet distances.
"""
)
