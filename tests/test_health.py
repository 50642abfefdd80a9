"""Generator health (gamo/health.py): the measures on constructed cases, the Trainer's wiring for
every method, and the Toy Lab's health blocks (app/ui/health_view.py, app/ui/toylab.py)."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gamo.config import METHOD_LABELS  # noqa: E402
from gamo.health import (  # noqa: E402
    KEYS,
    class_reference,
    format_health,
    generator_health,
    health_summary,
)
from gamo.methods.gamo import effective_parents  # noqa: E402
from gamo.snapshot import Generated  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _class(n: int = 200, d: int = 2, seed: int = 0, label: int = 1, offset: float = 5.0):
    """A Gaussian class of n members (label ``label``) beside a majority class of 0s."""
    rng = np.random.default_rng(seed)
    x_min = rng.normal(offset, 1.0, (n, d))
    x_maj = rng.normal(0.0, 1.0, (3 * n, d))
    x = np.vstack([x_maj, x_min]).astype(np.float32)
    y = np.r_[np.zeros(3 * n, np.int64), np.full(n, label, np.int64)]
    return x, y


def _gen(x, label=1, parent_idx=None, eff=None, m_pred=None) -> Generated:
    m = len(x)
    return Generated(x=np.asarray(x, np.float32), y=np.full(m, label, np.int64),
                     parent_idx=parent_idx, parent_w=None,
                     m_pred=np.full(m, label, np.int64) if m_pred is None else m_pred,
                     eff_parents=eff)


# --------------------------------------------------------------------------------------
# the measures
# --------------------------------------------------------------------------------------
def test_effective_parents_of_uniform_and_one_hot_weights() -> None:
    for n in (1, 2, 7, 50):
        w = torch.full((3, n), 1.0 / n)
        assert effective_parents(w).tolist() == pytest.approx([n] * 3, rel=1e-5)
    w = torch.zeros(2, 9)
    w[:, 4] = 1.0
    assert effective_parents(w).tolist() == pytest.approx([1.0, 1.0])


def test_all_weight_on_one_member_is_collapsed() -> None:
    x, y = _class()
    rows = np.flatnonzero(y == 1)
    one = rows[3]
    m = 16
    w = torch.zeros(m, len(rows))
    w[:, 3] = 1.0
    gen = _gen(np.repeat(x[one][None], m, axis=0), parent_idx=np.tile([[one, rows[0], rows[1]]], (m, 1)),
               eff=effective_parents(w).numpy())
    h = generator_health(gen, x, y)
    assert list(h) == ["1"] and set(h["1"]) == set(KEYS)
    c = h["1"]
    assert c["n"] == m and c["eff_parents"] == pytest.approx(1.0)
    assert c["distinct_top"] == 1 and c["spread_self"] == 0.0 and c["collapsed"] is True
    assert c["m_share"] == 1.0
    json.dumps(h, allow_nan=False)                        # JSON-able, no NaN


def test_collapse_onto_an_outlier_keeps_spread_but_not_spread_self() -> None:
    """Why two ratios: every point on one far member is far from the real centroid (spread >> 0)
    but has no spread of its own (spread_self = 0)."""
    x, y = _class()
    rows = np.flatnonzero(y == 1)
    far = rows[np.argmax(np.linalg.norm(x[rows] - x[rows].mean(0), axis=1))]
    gen = _gen(np.repeat(x[far][None], 10, axis=0))         # no parents: an unconstrained generator
    c = generator_health(gen, x, y)["1"]
    assert c["spread"] > 1.5 and c["spread_self"] == 0.0
    assert c["eff_parents"] is None and c["distinct_top"] is None
    assert c["collapsed"] is True


@pytest.mark.parametrize("d", [2, 16])
def test_points_drawn_like_the_class_are_healthy(d) -> None:
    x, y = _class(n=400, d=d, seed=d)
    rows = np.flatnonzero(y == 1)
    rng = np.random.default_rng(1)
    # (a) a random subset of the members themselves
    pick = rng.choice(rows, 100, replace=False)
    c = generator_health(_gen(x[pick], parent_idx=pick[:, None]), x, y)["1"]
    assert 0.7 <= c["spread"] <= 1.3 and 0.7 <= c["spread_self"] <= 1.3
    assert c["distinct_top"] == 100 and c["collapsed"] is False
    # (b) random convex combinations, each of a few random members with random weights
    m, k = 200, 2
    w = torch.zeros(m, len(rows), dtype=torch.float64)
    for i in range(m):
        j = rng.choice(len(rows), k, replace=False)
        w[i, j] = torch.as_tensor(rng.dirichlet(np.ones(k)))
    pts = (w @ torch.as_tensor(x[rows], dtype=torch.float64)).numpy()
    top = rows[torch.topk(w, 3, dim=1).indices.numpy()]
    c = generator_health(_gen(pts, parent_idx=top, eff=effective_parents(w).numpy()), x, y)["1"]
    assert 0.7 <= c["spread_self"] <= 1.3 and 0.7 <= c["spread"] <= 1.3
    assert 1.0 < c["eff_parents"] <= 2.0 and c["distinct_top"] > m // 2
    assert c["collapsed"] is False


def test_points_on_the_centroid_have_no_spread() -> None:
    x, y = _class()
    mu = x[y == 1].mean(0)
    pts = mu + np.random.default_rng(0).normal(0, 1e-3, (12, 2))
    c = generator_health(_gen(pts, parent_idx=np.arange(12)[:, None] + 600), x, y)["1"]
    assert c["spread"] < 0.01 and c["spread_self"] < 0.01 and c["collapsed"] is True


def test_m_share_counts_the_points_m_gives_their_class() -> None:
    x, y = _class()
    pts = x[y == 1][:8]
    assert generator_health(_gen(pts, m_pred=np.zeros(8, np.int64)), x, y)["1"]["m_share"] == 0.0
    half = np.array([1, 0] * 4)
    assert generator_health(_gen(pts, m_pred=half), x, y)["1"]["m_share"] == 0.5


def test_empty_single_member_and_mismatched_classes_are_handled_without_warnings() -> None:
    x, y = _class(n=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no division by zero, no mean of an empty slice
        assert generator_health(None, x, y) == {}
        # a class without real members, and one with a single member: no scale, no spreads
        gen = Generated(x=np.ones((6, 2), np.float32), y=np.r_[[2] * 3, [3] * 3].astype(np.int64),
                        parent_idx=None, parent_w=None, m_pred=np.r_[[2] * 3, [0] * 3].astype(np.int64))
        xs = np.vstack([x, [[7.0, 7.0]]]).astype(np.float32)
        ys = np.r_[y, 3]
        h = generator_health(gen, xs, ys)
        assert set(h) == {"2", "3"}
        for c in ("2", "3"):
            assert h[c]["spread"] is None and h[c]["spread_self"] is None and h[c]["collapsed"] is False
        assert h["2"]["m_share"] == 1.0 and h["3"]["m_share"] == 0.0
        ref = class_reference(xs, ys, [2, 3])
        assert ref[2].n_members == 0 and ref[3].n_members == 1 and ref[3].radius is None
        # one generated point cannot be a collapse by itself
        one = generator_health(_gen(x[y == 1][:1], parent_idx=np.array([[0]])), x, y)["1"]
        assert one["n"] == 1 and one["collapsed"] is False
        # generated images against member features: the spreads do not apply, M's share does
        c = generator_health(_gen(np.zeros((4, 784))), x, y)["1"]
        assert c["spread"] is None and c["spread_self"] is None and c["m_share"] == 1.0
        # no real points at all
        assert generator_health(_gen(x[:4]))["1"]["spread"] is None
        json.dumps(h, allow_nan=False)


def test_summary_and_the_cli_line() -> None:
    health = {
        "1": {"n": 16, "eff_parents": 3.25, "distinct_top": 9, "spread": 0.8, "spread_self": 0.7,
              "m_share": 0.5, "collapsed": False},
        "3": {"n": 16, "eff_parents": 1.0, "distinct_top": 1, "spread": 1.9, "spread_self": 0.0,
              "m_share": 0.0, "collapsed": True},
        "5": {"n": 16, "eff_parents": 1.2, "distinct_top": 2, "spread": 0.05, "spread_self": 0.02,
              "m_share": 0.25, "collapsed": True},
    }
    s = health_summary(health)
    assert s["eff_parents"] == 1.0 and (s["distinct_top"], s["n"]) == (1, 16)
    assert s["spread"] == 0.05 and s["spread_self"] == 0.0 and s["m_share"] == 0.0
    assert s["collapsed"] == [3, 5] and s["classes"] == 3
    line = format_health(health)
    assert line == ("health: parents>=1.0 distinct>=1/16 spread>=0.05 self>=0.00 M-share>=0.00 "
                    "COLLAPSED: 3,5")
    assert "\n" not in line
    assert format_health(None) == "" and format_health({}) == ""
    # a method without convex parents: those parts are left out
    free = {"1": {**health["1"], "eff_parents": None, "distinct_top": None}}
    assert format_health(free) == "health: spread>=0.80 self>=0.70 M-share>=0.50"


# --------------------------------------------------------------------------------------
# the engine: every method's snapshots, dense every time, conv with the training metrics
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(METHOD_LABELS))
def test_every_method_snapshots_health_on_dense_data(method, tiny_cfg) -> None:
    from gamo.data import load_dataset
    from gamo.errors import GamoError
    from gamo.train import Trainer

    cfg = tiny_cfg(method, steps=2)
    try:
        tr = Trainer(cfg, load_dataset(cfg.data), with_grid=False)
    except GamoError:          # a method the engine refuses on 2D data (image augmentation)
        return
    for _ in range(2):
        tr.step()
    snap = tr.snapshot()
    if snap.generated is None:
        assert snap.health is None and "health" not in snap.to_record()
        return
    h = snap.health
    assert set(h) == {str(c) for c in tr.method.minority}
    for c in h.values():
        assert set(c) == set(KEYS) and c["n"] == cfg.train.n_fixed
        assert c["spread"] is not None and c["spread_self"] is not None   # same space: dense rows
        assert (c["eff_parents"] is None) == (snap.generated.eff_parents is None)
        assert (c["distinct_top"] is None) == (snap.generated.parent_idx is None)
    if method in ("gamo", "gamo_no_d"):
        assert all(c["eff_parents"] >= 1.0 - 1e-4 for c in h.values())
    rec = json.loads(json.dumps(snap.to_record(), allow_nan=False))
    assert rec["health"] == h


@pytest.mark.parametrize("method", ["gamo", "cgan", "smote"])
def test_conv_health_only_with_the_training_metrics(method, tiny_cfg, fake_images) -> None:
    from gamo.train import Trainer

    data = fake_images((1, 28, 28), [24, 12, 6])
    tr = Trainer(tiny_cfg(method, steps=6, model=dict(feat_dim=32)), data, with_grid=False)
    tr.step()
    mid = tr.snapshot(with_train=False)
    assert mid.health is None
    full = tr.snapshot(with_train=True)
    if full.generated is None:            # SMOTE before its first resampling
        assert full.health is None
        return
    assert set(full.health) == {"1", "2"}
    for c in full.health.values():
        # cGAN's images are shown (and measured) in F's feature space, like GAMO's points
        assert c["spread"] is not None and c["m_share"] is not None


# --------------------------------------------------------------------------------------
# the Toy Lab's blocks
# --------------------------------------------------------------------------------------
COLLAPSED = {"1": {"n": 24, "eff_parents": 1.0, "distinct_top": 1, "spread": 1.7, "spread_self": 0.0,
                   "m_share": 0.0, "collapsed": True}}
HEALTHY = {"1": {"n": 24, "eff_parents": 6.5, "distinct_top": 14, "spread": 0.9, "spread_self": 0.8,
                 "m_share": 0.6, "collapsed": False}}


def _blocks(health_json: str, method: str) -> None:   # an AppTest script: imports inside
    import json

    from app.ui.health_view import show_collapse_warnings, show_health_table

    health = json.loads(health_json)
    show_collapse_warnings(health, method)
    show_health_table(health)


def test_collapsed_health_shows_a_warning_and_the_table() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_blocks, args=(json.dumps(COLLAPSED), "gamo")).run()
    assert not at.exception
    assert len(at.warning) == 1
    text = at.warning[0].value
    assert "collapsed for class 1" in text and "one real member" in text and "duplicates" in text
    assert "GAMO adds duplicates" in text
    table = " ".join(m.value for m in at.markdown)
    assert "effective parents" in table and "1 / 24" in table and "collapsed" in table

    at = AppTest.from_function(_blocks, args=(json.dumps(HEALTHY), "gamo")).run()
    assert not at.exception and not at.warning
    assert "14 / 24" in " ".join(m.value for m in at.markdown)


def test_explain_praises_the_periphery_only_when_not_collapsed() -> None:
    from app.ui import toylab as tl
    from gamo.snapshot import Metrics, Snapshot

    met = Metrics(acsa=0.7, gm=0.67, accuracy=0.9, recall=(0.9, 0.5), confusion=np.eye(2))
    gen = _gen(np.zeros((2, 2)), m_pred=np.array([1, 0]))
    snap = Snapshot(step=5, epoch=0.0, losses={}, test=met, train=None, generated=gen, grid=None,
                    elapsed=0.1)
    stats = {"misclassified": 0.5, "hull_distance": 0.05, "inside": 1.0}
    ok = tl.explain("gamo", "G", snap, stats, minority=[1], real_distance=0.5, health=HEALTHY)
    bad = tl.explain("gamo", "G", snap, stats, minority=[1], real_distance=0.5, health=COLLAPSED)
    assert "hug the class periphery" in ok
    assert "hug the class periphery" not in bad and "collapsed for class 1" in bad
    assert tl.collapsed_classes(COLLAPSED) == [1] and tl.collapsed_classes(None) == []
    # the non-convex wording for a collapse found by the spread alone
    spread_only = {"2": {"n": 24, "eff_parents": None, "distinct_top": None, "spread": 0.1,
                         "spread_self": 0.1, "m_share": 1.0, "collapsed": True}}
    msg = tl.collapse_message(2, spread_only["2"], "cg")
    assert "collapsed for class 2" in msg and "cG+CN adds near-duplicates" in msg and "10%" in msg
