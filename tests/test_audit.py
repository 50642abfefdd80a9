"""The sample audit (``gamo.audit``, ``python -m gamo audit``): known answers on constructed
points, the engine's methods end to end, and the command line's files and errors."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import gamo.audit as A
from gamo.audit import (audit_points, audit_run, check_percentiles, contact_sheet, convex_samples,
                        per_class_summary, to_csv, write_audit)
from gamo.cli import main
from gamo.errors import ConfigError, DataError
from gamo.methods import make_method
from gamo.data import load_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def _real() -> tuple[np.ndarray, np.ndarray]:
    """Class 0 on the x axis at 0, 1, 3, 6 (nearest-member gaps 1, 1, 2, 3); class 1 at x = 20, 21, 23."""
    x0 = np.array([[0, 0], [1, 0], [3, 0], [6, 0]], np.float32)
    x1 = np.array([[20, 0], [21, 0], [23, 0]], np.float32)
    return np.concatenate([x0, x1]), np.array([0, 0, 0, 0, 1, 1, 1])


def _onehot(labels, k=2) -> np.ndarray:
    p = np.full((len(labels), k), 0.1)
    p[np.arange(len(labels)), labels] = 0.9
    return p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------- known answers
def test_a_copy_of_a_real_point_is_a_near_duplicate():
    rx, ry = _real()
    a = audit_points(rx[[2]] + 0.0, [0], rx, ry)
    assert a.dcr[0] == 0.0 and a.dcr_own[0] == 0.0 and a.dcr_pct[0] == 0.0 and a.dcr_ratio[0] == 0.0
    assert a.nearest_idx[0] == 2
    assert a.near_duplicate[0] and not a.out_of_distribution[0] and not a.closer_to_other[0]
    assert a.dcr_other[0] == pytest.approx(17.0) and a.nearest_other_idx[0] == 4
    assert a.dcr_other_pct[0] == 100.0


def test_percentiles_of_the_class_own_nearest_neighbour_gaps():
    rx, ry = _real()
    # gaps of class 0: [1, 1, 2, 3]; x = 4.5 is 1.5 from 3 and 6: two gaps below -> 50th percentile;
    # x = 1.5 is 0.5 from 1: none below -> 0; ratio: 1.5 over the nearest member's (x = 3) gap 2
    a = audit_points([[4.5, 0], [1.5, 0]], [0, 0], rx, ry)
    assert a.dcr.tolist() == pytest.approx([1.5, 0.5])
    assert a.dcr_pct.tolist() == [50.0, 0.0]
    assert a.dcr_ratio[0] == pytest.approx(0.75) and a.dcr_ratio[1] == pytest.approx(0.5)
    assert a.near_duplicate.tolist() == [False, True]
    # the user's percentiles move the flags: below the 60th is a near duplicate, above the 40th out
    b = audit_points([[4.5, 0]], [0], rx, ry, low_pct=60, high_pct=99)
    c = audit_points([[4.5, 0]], [0], rx, ry, low_pct=1, high_pct=40)
    assert b.near_duplicate[0] and not b.out_of_distribution[0]
    assert c.out_of_distribution[0] and not c.near_duplicate[0]


def test_a_far_point_is_out_of_distribution():
    rx, ry = _real()
    a = audit_points([[3, 50]], [0], rx, ry)
    assert a.dcr[0] == pytest.approx(50.0) and a.dcr_pct[0] == 100.0
    assert a.out_of_distribution[0] and not a.near_duplicate[0] and not a.closer_to_other[0]


def test_a_point_closer_to_another_class_is_out_of_distribution():
    rx, ry = _real()
    a = audit_points([[19, 0]], [0], rx, ry)       # 13 from class 0, 1 from class 1
    assert a.closer_to_other[0] and a.out_of_distribution[0]
    assert a.dcr[0] == pytest.approx(1.0) and a.dcr_other[0] == pytest.approx(1.0) and a.dcr_own[0] == pytest.approx(13.0)
    assert a.nearest_idx[0] == 4 == a.nearest_other_idx[0]
    assert a.dcr_pct[0] == 0.0            # as close to a real point as class 0's members are to each other
    assert a.near_duplicate[0]            # ... so it is also a near copy (of a class-1 point)


def test_m_predicting_another_class_disputes_the_label():
    rx, ry = _real()
    x = [[2, 0], [2, 0.5]]
    a = audit_points(x, [0, 0], rx, ry, proba=_onehot([0, 1]))
    assert a.m_pred.tolist() == [0, 1] and a.label_disputed.tolist() == [False, True]
    assert a.m_conf == pytest.approx([0.9 / 1.0, 0.9 / 1.0])
    none = audit_points(x, [0, 0], rx, ry)   # without M nothing is disputed
    assert none.m_pred.tolist() == [-1, -1] and not none.label_disputed.any() and np.isnan(none.m_conf).all()


def test_effective_parents_of_one_hot_and_uniform_weights():
    rx, ry = _real()
    w = np.zeros((2, len(rx)))
    w[0, 1] = 1.0                     # all weight on one member: one parent, a copy of it
    w[1, :4] = 0.25                   # spread evenly over the 4 members of class 0
    x = w @ rx
    a = audit_points(x, [0, 0], rx, ry, weights=w)
    assert a.eff_parents == pytest.approx([1.0, 4.0])
    assert a.parent_idx[0, 0] == 1 and a.parent_w[0, 0] == 1.0
    assert sorted(a.parent_idx[1, :4].tolist()) == [0, 1, 2, 3]
    assert a.dcr[0] == 0.0 and a.near_duplicate[0]
    # the mean (x = 2.5) is 0.5 from x = 3, closer than any two members are: flagged too, though its
    # weight is spread over 4 parents (the percentile is global; dcr_ratio shows it is no copy)
    assert a.dcr[1] == pytest.approx(0.5) and a.dcr_pct[1] == 0.0 and a.near_duplicate[1]
    assert a.dcr_ratio[1] == pytest.approx(0.25) and a.nearest_idx[1] == 2


def test_a_class_with_one_real_member_has_no_percentiles():
    rx = np.array([[0, 0], [1, 0], [10, 0]], np.float32)
    ry = np.array([0, 0, 1])
    a = audit_points([[10, 0], [10, 40]], [1, 1], rx, ry)
    assert np.isnan(a.dcr_pct).all() and np.isnan(a.dcr_ratio).all()
    assert not a.near_duplicate.any() and not a.out_of_distribution.any()   # nothing to compare with
    assert a.dcr[0] == 0.0


def test_per_class_summary_counts_the_flags():
    rx, ry = _real()
    x = [[3, 0], [4.5, 0], [3, 50], [19, 0], [21, 0], [22, 0]]
    y = [0, 0, 0, 0, 1, 1]
    pred = [0, 0, 1, 0, 1, 0]
    a = audit_points(x, y, rx, ry, proba=_onehot(pred), d_score=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    rows = per_class_summary(a)
    assert [r["class"] for r in rows] == [0, 1] and [r["n"] for r in rows] == [4, 2]
    r0, r1 = rows
    assert r0["near_duplicate"] == int(a.near_duplicate[:4].sum()) == 2          # the copy and x = 19
    assert r0["out_of_distribution"] == 2 and r0["closer_to_other"] == 1          # far, and nearer class 1
    assert r0["label_disputed"] == 1 and r0["label_disputed_share"] == 0.25
    assert r0["flagged"] == 3 and r0["flagged_share"] == 0.75
    assert r0["mean_d_score"] == pytest.approx(0.25) and r0["mean_eff_parents"] is None
    # class 1 gaps [1, 2, 2]: the copy (x = 21) is a near duplicate, x = 22 is 1 away (0th pct too)
    assert r1["near_duplicate"] == 2 and r1["label_disputed"] == 1 and r1["median_dcr_pct"] == 0.0
    for r in rows:
        for f in A.FLAGS:
            assert r[f] == int(getattr(a, f)[a.y == r["class"]].sum())
    json.dumps(rows)   # JSON-able


def test_csv_has_one_row_per_sample(tmp_path):
    rx, ry = _real()
    w = np.zeros((3, len(rx)))
    w[:, :2] = 0.5
    a = audit_points(w @ rx, [0, 0, 0], rx, ry, weights=w, proba=_onehot([0, 0, 1]))
    path = to_csv(a, tmp_path / "sub" / "a.csv")
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == a.n == 3
    assert {"dcr", "dcr_pct", "dcr_ratio", "dcr_other", "dcr_other_pct", "eff_parents", "m_pred", "m_conf",
            "d_score", "near_duplicate", "out_of_distribution", "label_disputed", "space", "parent_1", "weight_1"} <= set(rows[0])
    assert [r["label_disputed"] for r in rows] == ["0", "0", "1"]
    assert rows[0]["d_score"] == "" and float(rows[0]["eff_parents"]) == pytest.approx(2.0)
    assert float(rows[0]["dcr"]) == pytest.approx(0.5) and rows[0]["space"] == "input features"


def test_bad_percentiles_and_shapes_are_refused():
    for low, high in [(5, 5), (50, 10), (-1, 95), (5, 101), (float("nan"), 95)]:
        with pytest.raises(ConfigError):
            check_percentiles(low, high)
    check_percentiles(0, 100)
    rx, ry = _real()
    with pytest.raises(ConfigError):
        audit_points([[0, 0]], [0], rx, ry, low_pct=95, high_pct=5)
    with pytest.raises(DataError):
        audit_points([[0, 0, 0]], [0], rx, ry)


def test_chunked_nearest_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=(50, 7)).astype(np.float32), rng.normal(size=(40, 7)).astype(np.float32)
    monkeypatch.setattr(A, "_CHUNK_ELEMENTS", 90)         # chunks of 2 query rows
    d, i = A._nearest(torch.as_tensor(q), torch.as_tensor(r))
    full = np.linalg.norm(q[:, None].astype(np.float64) - r[None], axis=2)
    assert np.array_equal(i, full.argmin(axis=1)) and d == pytest.approx(full.min(axis=1), rel=1e-6)
    d, i = A._nearest(torch.as_tensor(r), torch.as_tensor(r), exclude_self=True)
    full = np.linalg.norm(r[:, None].astype(np.float64) - r[None], axis=2)
    np.fill_diagonal(full, np.inf)
    assert np.array_equal(i, full.argmin(axis=1)) and d == pytest.approx(full.min(axis=1), rel=1e-6)


def test_contact_sheet_writes_a_grid(tmp_path):
    imgs = np.linspace(-1, 1, 5 * 3 * 4 * 4, dtype=np.float32).reshape(5, 3, 4, 4)
    p = contact_sheet(imgs, [f"#{i}\nflag" for i in range(5)], tmp_path / "s.png", tile=16, title="five")
    with Image.open(p) as im:
        assert im.mode == "RGB" and im.width >= 3 * 16 and im.height > 2 * 16
    p = contact_sheet(np.zeros((0, 1, 8, 8)), [], tmp_path / "empty.png", title="none")
    with Image.open(p) as im:
        assert im.width > 0
    with pytest.raises(ValueError):
        contact_sheet(imgs, ["one"], tmp_path / "x.png")


# --------------------------------------------------------------------------------- the engine's methods
def _method(tiny_cfg, name: str, steps: int = 15):
    cfg = tiny_cfg(name, steps=steps)
    m = make_method(cfg, load_dataset(cfg.data), torch.device("cpu"))
    for _ in range(steps):
        m.step()
    return m


def test_convex_samples_are_sample_s_points_with_full_weight_parents(tiny_cfg):
    m = _method(tiny_cfg, "gamo")
    c = m.minority[0]
    s = m.sample({c: 30}, seed=4)
    cs = convex_samples(m, {c: 30}, seed=4)
    assert np.array_equal(cs["x"], s["x"]) and np.array_equal(cs["parent_idx"], s["parent_idx"])
    assert np.all(cs["eff_parents"] >= 1) and np.all(cs["eff_parents"] <= m.counts[c] + 1e-6)
    a = audit_run(m, n_per_class=30, seed=4)
    assert a.n == 30 and a.space == "input features" and a.method == "gamo"
    assert np.array_equal(a.x, s["x"]) and a.eff_parents == pytest.approx(cs["eff_parents"])
    assert a.d_score is not None and np.all((a.d_score >= 0) & (a.d_score <= 1))
    # M's prediction is the method's own
    assert np.array_equal(a.m_pred, m.predict(torch.as_tensor(a.x), features=True).numpy())
    assert np.all(m.y_train.numpy()[a.parent_idx] == c)          # parents of the sample's class
    # default: the set that balances the training set
    assert audit_run(m).n == int(m.counts.max() - m.counts[c])


@pytest.mark.parametrize("name", ["smote", "cg", "cgan"])
def test_audit_run_of_generators_without_parents(tiny_cfg, name):
    m = _method(tiny_cfg, name)
    a = audit_run(m, n_per_class=10, seed=1)
    assert a.n == 10 and a.parent_idx is None and a.eff_parents is None
    assert np.all(np.isfinite(a.dcr)) and np.all(a.nearest_idx >= 0)
    assert (a.d_score is not None) == (name == "cgan")


def test_audit_run_of_a_classifier_only_method_is_refused(tiny_cfg):
    with pytest.raises(DataError, match="generates no samples"):
        audit_run(_method(tiny_cfg, "baseline", steps=2))
    with pytest.raises(ConfigError):
        audit_run(_method(tiny_cfg, "gamo", steps=2), n_per_class=0)


def test_conv_samples_are_audited_in_f_features(tiny_cfg, fake_images, tmp_path):
    data = fake_images((1, 28, 28), [30, 12, 8])
    cfg = tiny_cfg("gamo", steps=4, data=dict(dataset="fashion-mnist", profile="none"), model=dict(family="conv"))
    m = make_method(cfg, data, torch.device("cpu"))
    for _ in range(4):
        m.step()
    a = audit_run(m, n_per_class=5)
    assert a.space == "F's features" and a.x.shape == (10, m.feat_dim) and a.eff_parents is not None
    paths = write_audit(a, tmp_path, real_images=data.x_train)
    with Image.open(paths["png"]) as im:
        assert im.width > 28


# --------------------------------------------------------------------------------- the command line
def run_cli(args, capsys):
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, one_thread):
    """A few steps of GAMO on the 8x8 digits (flattened family: samples are images)."""
    out = tmp_path_factory.mktemp("runs") / "digits-gamo"
    rc = main(["train", "--dataset", "digits", "--profile", "step:ir=10,minority=2", "--method", "gamo",
               "--steps", "20", "--hidden", "16", "--latent", "8", "--batch-size", "16", "--test-per-class", "10",
               "--val-per-class", "0", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def test_cli_audit_writes_the_three_files(digits_run, tmp_path, capsys):
    out = tmp_path / "aud"
    rc, stdout, err = run_cli(["audit", "--run", digits_run, "--per-class", "40", "--out", out], capsys)
    assert rc == 0, err
    rows = list(csv.DictReader(open(out / "audit.csv")))
    summary = json.loads((out / "audit_summary.json").read_text())
    assert summary["method"] == "gamo" and summary["run"] == str(digits_run)
    assert len(rows) == summary["n"] == 80 and summary["space"] == "pixels"
    assert [c["n"] for c in summary["classes"]] == [40, 40]
    assert summary["classes"][0]["mean_eff_parents"] >= 1 and summary["low_pct"] == 5.0
    flagged = sum(r["near_duplicate"] == "1" or r["out_of_distribution"] == "1" or r["label_disputed"] == "1"
                  for r in rows)
    assert summary["flagged"] == flagged == sum(c["flagged"] for c in summary["classes"])
    with Image.open(out / "audit_flagged.png") as im:
        assert im.format == "PNG" and im.width > 0
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 + 2 + 1 and lines[1].startswith("class 8 (n=40)") and "audit.csv" in lines[-1]


def test_cli_audit_of_a_toy_run_defaults_to_the_balancing_set(tmp_path, capsys):
    d = tmp_path / "toy"
    assert run_cli(["train", "--dataset", "toy:moons", "--profile", "step:ir=20", "--method", "smote", "--steps", "10",
                    "--n-per-class", "60", "--test-per-class", "10", "--hidden", "16", "--out", d, "--quiet"], capsys)[0] == 0
    rc, stdout, err = run_cli(["audit", "--run", d, "--low-pct", "10", "--high-pct", "90"], capsys)
    assert rc == 0, err
    summary = json.loads((d / "audit" / "audit_summary.json").read_text())
    assert summary["n"] == 60 - 3 and summary["high_pct"] == 90.0 and summary["space"] == "input features"
    assert (d / "audit" / "audit_flagged.png").stat().st_size > 0        # a map of the plane
    assert len(list(csv.DictReader(open(d / "audit" / "audit.csv")))) == 57


def test_cli_audit_bad_input_exits_2_with_one_line(digits_run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    cases = {
        "missing run": ["--run", tmp_path / "missing"],
        "not a run folder": ["--run", tmp_path / "empty"],
        "low >= high": ["--run", digits_run, "--low-pct", "50", "--high-pct", "50"],
        "out of range": ["--run", digits_run, "--high-pct", "120"],
        "negative": ["--run", digits_run, "--low-pct", "-5"],
        "per-class 0": ["--run", digits_run, "--per-class", "0"],
        "out is a file": ["--run", digits_run, "--per-class", "2", "--out", tmp_path / "file.txt"],
        "no --run": [],
        "not a number": ["--run", digits_run, "--low-pct", "five"],
    }
    for case, args in cases.items():
        rc, _, err = run_cli(["audit", *args], capsys)
        assert rc == 2, case
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0], (case, err)
    assert not (digits_run / "audit").exists()


def test_cli_audit_of_a_baseline_run_exits_2(tmp_path, capsys):
    d = tmp_path / "base"
    assert run_cli(["train", "--dataset", "toy:moons", "--profile", "step:ir=20", "--method", "baseline", "--steps", "3",
                    "--n-per-class", "40", "--test-per-class", "10", "--out", d, "--quiet"], capsys)[0] == 0
    rc, _, err = run_cli(["audit", "--run", d], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "oversampling method" in err
    assert not (d / "audit").exists()


def test_a_real_reference_gives_the_same_audit_and_is_reused(monkeypatch):
    """``real_reference`` prepares the real points once (centred rows, each class's gaps when it
    is first audited): audits with it equal audits without, and a second audit computes no gaps."""
    rng = np.random.default_rng(3)
    ry = np.repeat([0, 1, 2], [60, 25, 1])
    rx = rng.normal(size=(len(ry), 5)).astype(np.float32) + ry[:, None] * 1.5
    x = np.vstack([rx[3], rx[70] + 0.2, rng.normal(size=(4, 5)) + 3.0]).astype(np.float32)
    y = np.array([0, 1, 1, 2, 0, 1])
    want = audit_points(x, y, rx, ry, low_pct=10, high_pct=90)
    ref = A.real_reference(rx, ry)
    calls = []
    real_nearest = A._nearest
    monkeypatch.setattr(A, "_nearest", lambda *a, **k: calls.append(1) or real_nearest(*a, **k))
    for _ in range(2):
        got = audit_points(x, y, rx, ry, low_pct=10, high_pct=90, reference=ref)
        for f in ("dcr", "dcr_own", "dcr_other", "dcr_pct", "dcr_other_pct", "dcr_ratio", "nearest_idx",
                  "nearest_other_idx", "near_duplicate", "out_of_distribution", "closer_to_other"):
            assert np.array_equal(getattr(got, f), getattr(want, f), equal_nan=got.dcr.dtype.kind == "f"
                                  and getattr(want, f).dtype.kind == "f"), f
    assert len(calls) == 3                   # the three classes' gaps, once
    assert got.dcr[0] == 0.0 and got.near_duplicate[0]
