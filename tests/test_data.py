"""Tests of gamo.data: loaders, profiles, splits and the errors users can cause."""
from __future__ import annotations

import gzip
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import gamo.data as gd
import gamo.data.tables as gtables
from gamo.config import DataConfig
from gamo.data import (
    DATASETS,
    MAX_UPLOAD_BYTES,
    PAPER_COUNTS,
    load_dataset,
    load_table_bytes,
    parse_profile,
    read_idx,
)
from gamo.data.types import Dataset
from gamo.errors import DataError, GamoError

TOYS = [d for d in DATASETS if d.startswith("toy:")]


def toy(profile: str = "none", **kw) -> Dataset:
    base = dict(dataset="toy:blobs", n_classes=10, n_per_class=120, n_test_per_class=10, seed=0)
    base.update(kw)
    return load_dataset(DataConfig(profile=profile, **base))


def check_invariants(d: Dataset, n_test: int) -> None:
    """Properties every Dataset must have."""
    K = d.n_classes
    assert d.x_train.dtype == np.float32 and d.x_test.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    assert d.train_idx.dtype == np.int64 and d.test_idx.dtype == np.int64
    assert len(d.x_train) == len(d.y_train) == len(d.train_idx)
    assert len(d.x_test) == len(d.y_test) == len(d.test_idx)
    # balanced test split
    assert np.bincount(d.y_test, minlength=K).tolist() == [n_test] * K
    # subsampling without replacement
    assert np.unique(d.train_idx).size == d.train_idx.size
    assert np.unique(d.test_idx).size == d.test_idx.size
    # train rows ordered by class, then by index
    assert np.all(np.diff(d.y_train) >= 0)
    for c in range(K):
        assert np.all(np.diff(d.train_idx[d.y_train == c]) > 0)
    assert np.isfinite(d.x_train).all() and np.isfinite(d.x_test).all()
    # balanced validation split (possibly empty), never a training or test row
    assert d.x_val.dtype == np.float32 and d.y_val.dtype == np.int64 and d.val_idx.dtype == np.int64
    assert len(d.x_val) == len(d.y_val) == len(d.val_idx) and d.x_val.shape[1:] == d.x_train.shape[1:]
    assert np.bincount(d.y_val, minlength=K).tolist() == [d.meta["val_per_class"]] * K
    assert np.unique(d.val_idx).size == d.val_idx.size
    assert np.isfinite(d.x_val).all()
    if d.meta["val_from"] == "unused training rows":       # indices into the training pool
        assert not set(d.val_idx) & set(d.train_idx)
        if d.meta["test_from"] == "pool":
            assert not set(d.val_idx) & set(d.test_idx)


# --------------------------------------------------------------------------- toys

@pytest.mark.parametrize("name", TOYS)
def test_toy_shapes(name):
    d = load_dataset(DataConfig(dataset=name, profile="none", n_per_class=50,
                                n_test_per_class=7, n_classes=4, seed=3))
    K = 4 if name in ("toy:blobs", "toy:spirals") else 2
    assert d.kind == "2d" and d.image_shape is None and d.name == name
    assert d.x_train.shape == (50 * K, 2) and d.x_test.shape == (7 * K, 2)
    assert d.class_names == tuple(f"class {i}" for i in range(K))
    assert d.class_counts.tolist() == [50] * K
    assert np.abs(d.x_train).max() < 4.5  # roughly within [-3, 3] for plots
    check_invariants(d, 7)
    # single pool: train and test never share a point
    assert not set(d.train_idx) & set(d.test_idx)


def test_toy_moons_ignores_n_classes_and_noise_scales_jitter():
    quiet = load_dataset(DataConfig(dataset="toy:moons", profile="none", noise=0.0, n_classes=5,
                                    n_per_class=200, n_test_per_class=5))
    loud = load_dataset(DataConfig(dataset="toy:moons", profile="none", noise=0.5, n_classes=5,
                                   n_per_class=200, n_test_per_class=5))
    assert quiet.n_classes == 2
    # noiseless class-0 moon: points lie on a circle of radius 1.5 around (-0.75, -0.375)
    pts = quiet.x_train[quiet.y_train == 0]
    r = np.linalg.norm(pts - np.array([-0.75, -0.375]), axis=1)
    assert np.allclose(r, 1.5, atol=1e-5)
    r_loud = np.linalg.norm(loud.x_train[loud.y_train == 0] - np.array([-0.75, -0.375]), axis=1)
    assert r_loud.std() > 0.2


def test_nonconvex_minority_hull_contains_majority():
    d = load_dataset(DataConfig(dataset="toy:nonconvex", profile="step:ir=10", n_per_class=500,
                                n_test_per_class=10, noise=0.05))
    assert d.class_counts.tolist() == [500, 50]
    maj = d.x_train[d.y_train == 0]
    mino = d.x_train[d.y_train == 1]
    # the minority is an arc of radius ~2 (non-convex) around the majority blob at the origin
    assert np.abs(np.linalg.norm(mino, axis=1) - 2.0).max() < 0.6
    assert np.linalg.norm(maj.mean(0)) < 0.2
    # its convex hull holds majority points: the origin is a convex combination of arc points
    angles = np.arctan2(mino[:, 1], mino[:, 0])
    assert (angles > 2.5).any() and (angles < -2.5).any() and (np.abs(angles) < 1.8).any()


# --------------------------------------------------------------------------- profiles

def test_profile_paper_exact_on_toy():
    d = toy("paper", n_per_class=4000)
    assert d.class_counts.tolist() == PAPER_COUNTS["mnist"]
    check_invariants(d, 10)


def test_profile_paper_cifar_family_and_max():
    counts = parse_profile("paper", 10, [5000] * 10, "cifar10")
    assert counts == PAPER_COUNTS["cifar"]
    assert parse_profile("paper", 10, None, "svhn") == PAPER_COUNTS["cifar"]
    # half-up rounding, at least 2 per class, largest = max
    assert parse_profile("paper:max=200", 10, None, "mnist") == [200, 100, 50, 38, 25, 18, 10, 5, 3, 2]
    assert parse_profile("paper:max=45", 10, None, "cifar10") == [45, 20, 10, 8, 6, 5, 4, 3, 2, 2]


def test_profile_paper_max_on_toy_and_digits():
    d = toy("paper:max=100")
    assert d.class_counts.tolist() == [100, 50, 25, 19, 13, 9, 5, 3, 2, 2]
    check_invariants(d, 10)
    dg = load_dataset(DataConfig(dataset="digits", profile="paper:max=70", n_test_per_class=100))
    assert dg.class_counts.tolist() == [70, 35, 18, 13, 9, 6, 4, 2, 2, 2]
    check_invariants(dg, 100)


def test_profile_exp():
    d = toy("exp:ir=10,max=100", n_classes=5)
    assert d.class_counts.tolist() == [100, 56, 32, 18, 10]
    check_invariants(d, 10)
    # default max: the smallest available class count (here 120 each)
    assert toy("exp:ir=4", n_classes=3).class_counts.tolist() == [120, 60, 30]


def test_profile_exp_default_max_on_digits():
    dg = load_dataset(DataConfig(dataset="digits", profile="exp:ir=10", n_test_per_class=100))
    avail = dg.meta["n_available"]
    assert dg.class_counts[0] == min(avail) == 74
    assert dg.class_counts[-1] == 7  # round(74 / 10)
    assert np.all(np.diff(dg.class_counts) <= 0)


def test_profile_step_minority():
    assert toy("step:ir=10,minority=3,max=100", n_classes=5).class_counts.tolist() == [100, 100, 10, 10, 10]
    # default minority: K // 2 last classes
    assert toy("step:ir=4,max=80", n_classes=4).class_counts.tolist() == [80, 80, 20, 20]
    assert toy("step:ir=4,max=80", n_classes=5).class_counts.tolist() == [80, 80, 80, 20, 20]
    dg = load_dataset(DataConfig(dataset="digits", profile="step:ir=5,minority=3,max=70"))
    assert dg.class_counts.tolist() == [70] * 7 + [14] * 3


def test_profile_counts_and_none():
    assert toy("counts:5,6,7,8", n_classes=4).class_counts.tolist() == [5, 6, 7, 8]
    assert toy("none", n_classes=3).class_counts.tolist() == [120, 120, 120]
    dg = load_dataset(DataConfig(dataset="digits", profile="none", n_test_per_class=30))
    from sklearn.datasets import load_digits

    total = np.bincount(load_digits().target)
    assert dg.class_counts.tolist() == (total - 30).tolist()
    check_invariants(dg, 30)
    assert dg.kind == "image" and dg.image_shape == (1, 8, 8)
    assert dg.x_train.shape[1:] == (1, 8, 8)
    assert dg.x_train.min() == -1.0 and dg.x_train.max() == 1.0
    assert dg.class_names == tuple(str(i) for i in range(10))


def test_rows_match_source_pool():
    from sklearn.datasets import load_digits

    raw = load_digits()
    d = load_dataset(DataConfig(dataset="digits", profile="exp:ir=5,max=50", n_test_per_class=20, seed=4))
    assert np.allclose(d.x_train[:, 0], raw.images[d.train_idx] / 8.0 - 1.0)
    assert np.array_equal(d.y_train, raw.target[d.train_idx])
    assert np.array_equal(d.y_test, raw.target[d.test_idx])
    assert not set(d.train_idx) & set(d.test_idx)


@pytest.mark.parametrize("spec", ["exp:ir=10", "step:ir=3,minority=1", "paper", "counts:1,2,3", "none",
                                  "exp:ir=x", "step:minority=2", "exp:ir=10,maxi=3", "banana",
                                  "paper:max", "none:3", "counts:"])
def test_profile_grammar(spec):
    # max defaults to the smallest availability (50); exp: round(50 * 10 ** (-i / 3)), half up
    good = {"exp:ir=10": [50, 23, 11, 5], "step:ir=3,minority=1": [50, 50, 50, 17], "none": None}
    if spec in good:
        assert parse_profile(spec, 4, [50] * 4, "toy:blobs") == good[spec]
        return
    with pytest.raises(DataError) as e:
        parse_profile(spec, 4, [50] * 4, "toy:blobs")
    assert any(s in str(e.value) for s in ("accepted profiles", "10 classes", "at least 2",
                                            "gives 3 counts", "give 4 counts", "is not a"))


def test_profile_errors_messages():
    with pytest.raises(DataError, match="accepted profiles: none, paper, paper:max=N, exp:ir=R"):
        parse_profile("zipf:1", 10, None, "mnist")
    with pytest.raises(DataError, match=r"needs 10 classes .* use exp:ir=R or step:ir=R"):
        parse_profile("paper", 4, None, "toy:blobs")
    with pytest.raises(DataError, match="gives 3 counts but the dataset has 4 classes"):
        parse_profile("counts:3,4,5", 4, None, "toy:blobs")
    with pytest.raises(DataError, match="at least 2"):
        parse_profile("exp:ir=1000,max=50", 4, None, "toy:blobs")
    with pytest.raises(DataError, match="minority=4 must be between 1 and 3"):
        parse_profile("step:ir=2,minority=4", 4, [9] * 4, "toy:blobs")
    with pytest.raises(DataError, match="give max=N"):
        parse_profile("exp:ir=2", 4, None, "toy:blobs")
    assert parse_profile("none", 4, None, "toy:blobs") is None


def test_profile_too_many_points():
    with pytest.raises(DataError) as e:
        toy("paper")  # 4000 asked, 120 available
    msg = str(e.value)
    assert "profile asks 4000 points of class 0 ('class 0') but only 120 are available" in msg
    assert "after the 10-per-class test split" in msg and "reduce --test-per-class" in msg
    assert "'paper:max=120'" in msg
    # the suggested profile works
    assert toy("paper:max=120").class_counts[0] == 120
    with pytest.raises(DataError, match=r"class 2 \('class 2'\) but only 120 are available"):
        toy("counts:5,5,500", n_classes=3)
    with pytest.raises(DataError, match=r"use profile 'exp:ir=2,max=120'"):
        toy("exp:ir=2,max=300", n_classes=3)
    with pytest.raises(DataError, match="'paper:max=78'"):  # class 0 has 78 left; 2 of class 8 fit
        load_dataset(DataConfig(dataset="digits", profile="paper"))
    assert load_dataset(DataConfig(dataset="digits", profile="paper:max=78")).class_counts[0] == 78


def test_test_split_too_large_for_single_pool():
    with pytest.raises(DataError, match=r"lower n_test_per_class \(--test-per-class\)"):
        load_dataset(DataConfig(dataset="digits", profile="none", n_test_per_class=180))


# --------------------------------------------------------------------------- seeding

def test_same_seed_same_arrays_different_seed_different_indices():
    a = load_dataset(DataConfig(dataset="digits", profile="exp:ir=10,max=60", seed=5))
    b = load_dataset(DataConfig(dataset="digits", profile="exp:ir=10,max=60", seed=5))
    c = load_dataset(DataConfig(dataset="digits", profile="exp:ir=10,max=60", seed=6))
    for f in ("x_train", "y_train", "x_test", "y_test", "train_idx", "test_idx"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert not np.array_equal(a.train_idx, c.train_idx)
    assert not np.array_equal(a.test_idx, c.test_idx)
    assert a.class_counts.tolist() == c.class_counts.tolist()
    t1, t2 = toy("exp:ir=5", seed=1), toy("exp:ir=5", seed=1)
    assert np.array_equal(t1.x_train, t2.x_train)
    assert not np.array_equal(t1.x_train, toy("exp:ir=5", seed=2).x_train)


def test_negative_seed_is_a_data_error():
    with pytest.raises(DataError, match="seed must be 0 or more"):
        toy(seed=-1)


def test_test_split_does_not_depend_on_profile():
    a = load_dataset(DataConfig(dataset="digits", profile="none", seed=2, n_test_per_class=50))
    b = load_dataset(DataConfig(dataset="digits", profile="paper:max=60", seed=2, n_test_per_class=50))
    assert np.array_equal(a.test_idx, b.test_idx)
    assert set(b.train_idx) <= set(a.train_idx)


# --------------------------------------------------------------------------- validation split

def test_val_split_disjoint_balanced_deterministic():
    from sklearn.datasets import load_digits

    raw = load_digits()
    cfg = dict(dataset="digits", profile="exp:ir=10,max=50", n_test_per_class=20, n_val_per_class=30)
    a = load_dataset(DataConfig(seed=4, **cfg))
    check_invariants(a, 20)
    assert a.meta["val_from"] == "unused training rows" and a.meta["val_per_class"] == 30
    assert "val_note" not in a.meta
    assert np.bincount(a.y_val, minlength=10).tolist() == [30] * 10
    # rows of the source pool: neither training nor test rows, labels and pixels at val_idx
    assert not set(a.val_idx) & set(a.train_idx) and not set(a.val_idx) & set(a.test_idx)
    assert np.array_equal(a.y_val, raw.target[a.val_idx])
    assert np.allclose(a.x_val[:, 0], raw.images[a.val_idx] / 8.0 - 1.0)
    assert np.all(np.diff(a.y_val) >= 0)                                   # ordered by class
    # the same seed draws the same split, another seed another one
    b = load_dataset(DataConfig(seed=4, **cfg))
    assert np.array_equal(a.val_idx, b.val_idx) and np.array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.val_idx, load_dataset(DataConfig(seed=5, **cfg)).val_idx)
    # its own stream: training and test rows are those of a run without one (old runs resume)
    none = load_dataset(DataConfig(seed=4, **{**cfg, "n_val_per_class": 0}))
    assert np.array_equal(none.train_idx, a.train_idx) and np.array_equal(none.test_idx, a.test_idx)
    assert len(none.y_val) == 0 and none.x_val.shape == (0, 1, 8, 8) and none.meta["val_from"] == "none"
    assert not none.has_val and a.has_val


def test_val_split_shrinks_to_the_unused_rows():
    # paper:max=140 keeps 140 of the ~150 zeros left after the test split: every class gets as
    # many validation rows as the class with the fewest unused rows has
    d = load_dataset(DataConfig(dataset="digits", profile="paper:max=140", n_test_per_class=30))
    unused = [a - c for a, c in zip(d.meta["n_available"], d.meta["counts"])]
    n = min(unused)
    assert 0 < n < 100 and d.meta["val_per_class"] == n
    check_invariants(d, 30)
    c = unused.index(n)
    assert d.meta["val_note"] == (f"{n} validation rows per class instead of 100: class {c} ('{c}') has only "
                                  f"{n} training rows the profile left unused")
    # a profile that keeps every row leaves none: no split, and the note says what to change
    d = load_dataset(DataConfig(dataset="digits", profile="none", n_test_per_class=30))
    assert len(d.y_val) == 0 and d.meta["val_per_class"] == 0 and d.meta["val_from"] == "none"
    assert "no validation split" in d.meta["val_note"] and "n_val_per_class (--val-per-class) to 0" in d.meta["val_note"]
    check_invariants(d, 30)


def test_val_split_of_a_table_and_of_an_official_test_set(tmp_path):
    x, labels = _table_rows(n_per=10)                                      # 10 rows of each of 3 classes
    np.savez(tmp_path / "t.npz", x=x, label=labels)
    d = load_dataset(DataConfig(dataset=f"table:{tmp_path / 't.npz'}", profile="counts:6,4,3",
                                n_test_per_class=2, n_val_per_class=5))
    assert d.meta["val_per_class"] == 2                                     # class 0: 10 - 2 - 6 left
    assert np.allclose(d.x_val, x[d.val_idx].astype(np.float32))
    check_invariants(d, 2)
    # MNIST-style source: the test split comes from its own set, the validation split from the
    # training pool's unused rows
    fake_idx_set(tmp_path / "MNIST" / "raw", compress=False, n_train=8, n_test=5)
    d = load_dataset(DataConfig(dataset="mnist", profile="counts:5,5,4,4,3,3,2,2,2,2", n_test_per_class=5,
                                n_val_per_class=3, data_root=str(tmp_path)))
    assert d.meta["val_per_class"] == 3 and d.meta["val_from"] == "unused training rows"
    check_invariants(d, 5)


def test_val_split_of_toys_is_generated_apart():
    cfg = dict(dataset="toy:blobs", profile="step:ir=4", n_classes=3, n_per_class=80, n_test_per_class=10)
    d = load_dataset(DataConfig(n_val_per_class=25, **cfg))
    assert d.meta["val_from"] == "generated" and d.meta["val_per_class"] == 25
    check_invariants(d, 10)
    assert d.x_val.shape == (75, 2) and d.val_idx.tolist() == list(range(75))
    # the largest class keeps every generated training point, yet has its 25 validation points,
    # none of them a training or test point, from the same distribution (blob 0 near (2, 0))
    assert d.class_counts[0] == 80
    rows = {tuple(r) for r in np.concatenate([d.x_train, d.x_test]).tolist()}
    assert not rows & {tuple(r) for r in d.x_val.tolist()}
    assert np.linalg.norm(d.x_val[d.y_val == 0].mean(0) - [2.0, 0.0]) < 0.3
    # deterministic, and training/test points do not depend on it
    again = load_dataset(DataConfig(n_val_per_class=25, **cfg))
    assert np.array_equal(d.x_val, again.x_val)
    without = load_dataset(DataConfig(n_val_per_class=0, **cfg))
    assert np.array_equal(without.x_train, d.x_train) and np.array_equal(without.x_test, d.x_test)
    assert len(without.y_val) == 0
    check_invariants(without, 10)


def test_val_per_class_is_validated():
    from gamo.config import RunConfig
    from gamo.errors import ConfigError

    with pytest.raises(ConfigError, match=r"n_val_per_class: must be a whole number, 0 \(no validation split\)"):
        DataConfig(n_val_per_class=-1)
    # a stored config.json from before the key existed still loads, with the default
    assert RunConfig.from_dict({"data": {"dataset": "digits"}}).data.n_val_per_class == 100


def test_a_dataset_made_without_a_validation_split_has_an_empty_one(fake_images):
    d = fake_images((1, 8, 8), [6, 4])
    assert d.x_val.shape == (0, 1, 8, 8) and d.x_val.dtype == np.float32
    assert d.y_val.shape == (0,) and d.val_idx.shape == (0,) and not d.has_val


# --------------------------------------------------------------------------- IDX files

def write_idx(path: Path, arr: np.ndarray, compress: bool) -> None:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    dt = arr.dtype.newbyteorder(">") if arr.dtype.itemsize > 1 else arr.dtype
    head = bytes([0, 0, codes[np.dtype(dt)], arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    raw = head + arr.astype(dt).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def fake_idx_set(folder: Path, compress: bool, n_train: int = 12, n_test: int = 4) -> dict[str, np.ndarray]:
    """IDX files with 10 classes; pixel [0, 0] of each image encodes its index."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.repeat(np.arange(10, dtype=np.uint8), n)
        x = np.zeros((y.size, 28, 28), np.uint8)
        x[:, 0, 0] = np.arange(y.size) % 256
        x[:, 5, 5] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", x, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", y, compress)
        out[split] = (x, y)
    return out


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    write_idx(tmp_path / "a-idx3", a, compress)
    back = read_idx(tmp_path / ("a-idx3.gz" if compress else "a-idx3"))
    assert back.shape == (2, 3, 4) and np.array_equal(back, a)
    b = np.linspace(0, 1, 6, dtype=np.float32)
    write_idx(tmp_path / "b", b, compress)
    assert np.array_equal(read_idx(tmp_path / ("b.gz" if compress else "b")), b)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04hello")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    a = np.zeros((3, 4), np.uint8)
    write_idx(tmp_path / "t", a, False)
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-2])
    with pytest.raises(DataError, match="header says"):
        read_idx(tmp_path / "t")


def test_fashion_mnist_from_env_dir_gzip(tmp_path, monkeypatch):
    src = fake_idx_set(tmp_path / "fm", compress=True)
    monkeypatch.setenv("GAMO_FASHION_MNIST_DIR", str(tmp_path / "fm"))
    d = load_dataset(DataConfig(dataset="fashion-mnist", profile="counts:12,10,8,6,5,4,3,3,2,2",
                                n_test_per_class=3, data_root=str(tmp_path / "empty"), seed=1))
    assert d.kind == "image" and d.image_shape == (1, 28, 28)
    assert d.x_train.shape == (55, 1, 28, 28) and d.x_test.shape == (30, 1, 28, 28)
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"
    assert d.class_counts.tolist() == [12, 10, 8, 6, 5, 4, 3, 3, 2, 2]
    check_invariants(d, 3)
    # uint8 -> [-1, 1]; rows come from the official train / test sets at the recorded indices
    assert d.x_train.min() == -1.0 and d.x_train.max() == 1.0
    xs, ys = src["train"]
    xt, yt = src["t10k"]
    assert np.allclose(d.x_train[:, 0, 0, 0], xs[d.train_idx, 0, 0] / 127.5 - 1.0)
    assert np.array_equal(d.y_train, ys[d.train_idx])
    assert np.allclose(d.x_test[:, 0, 0, 0], xt[d.test_idx, 0, 0] / 127.5 - 1.0)
    assert np.array_equal(d.y_test, yt[d.test_idx])
    assert d.test_idx.max() < len(yt)
    assert d.meta["n_available"] == [12] * 10


def test_mnist_from_data_root_plain(tmp_path):
    fake_idx_set(tmp_path / "MNIST" / "raw", compress=False, n_train=8, n_test=5)
    d = load_dataset(DataConfig(dataset="mnist", profile="none", n_test_per_class=5,
                                data_root=str(tmp_path)))
    assert d.class_counts.tolist() == [8] * 10
    assert d.class_names == tuple(str(i) for i in range(10))
    assert d.x_train.shape == (80, 1, 28, 28)
    check_invariants(d, 5)
    with pytest.raises(DataError, match=r"test set has only 5 points of class 0"):
        load_dataset(DataConfig(dataset="mnist", profile="none", n_test_per_class=6,
                                data_root=str(tmp_path)))
    with pytest.raises(DataError, match=r"asks 9 points of class 9 \('9'\) but only 8 are available"):
        load_dataset(DataConfig(dataset="mnist", profile="counts:2,2,2,2,2,2,2,2,2,9",
                                n_test_per_class=5, data_root=str(tmp_path)))


def test_fashion_mnist_from_data_root_when_env_dir_empty(tmp_path, monkeypatch):
    fake_idx_set(tmp_path / "root" / "FashionMNIST" / "raw", compress=False, n_train=6, n_test=3)
    monkeypatch.setenv("GAMO_FASHION_MNIST_DIR", str(tmp_path / "nothing-here"))
    d = load_dataset(DataConfig(dataset="fashion-mnist", profile="none", n_test_per_class=2,
                                data_root=str(tmp_path / "root")))
    assert d.class_counts.tolist() == [6] * 10


def test_missing_image_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("GAMO_FASHION_MNIST_DIR", str(tmp_path / "none"))
    with pytest.raises(DataError) as e:
        load_dataset(DataConfig(dataset="fashion-mnist", data_root=str(tmp_path)))
    msg = str(e.value)
    assert msg.startswith("fashion-mnist not found in")
    assert "dataset-fashion-mnist" in msg and "--download" in msg and str(tmp_path / "none") in msg
    for name in ("mnist", "cifar10", "svhn"):
        with pytest.raises(DataError, match=rf"^{name} not found in .*--download"):
            load_dataset(DataConfig(dataset=name, data_root=str(tmp_path)))


def _fake_torchvision(monkeypatch, cifar_cls):
    tv = types.ModuleType("torchvision")
    tvd = types.ModuleType("torchvision.datasets")
    tvd.CIFAR10 = cifar_cls
    tv.datasets = tvd
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", tvd)


def test_download_failure_becomes_data_error(tmp_path, monkeypatch):
    class Offline:
        def __init__(self, root, download, train):
            raise OSError("[Errno -3] Temporary failure in name resolution\nmore lines")

    _fake_torchvision(monkeypatch, Offline)
    with pytest.raises(DataError, match=r"^could not download cifar10 .*name resolution.*internet") as e:
        load_dataset(DataConfig(dataset="cifar10", download=True, data_root=str(tmp_path)))
    assert "\n" not in str(e.value)


def test_cifar10_through_torchvision_layout(tmp_path, monkeypatch):
    class FakeCifar:
        def __init__(self, root, download, train):
            n = 20 if train else 6
            self.targets = list(np.repeat(np.arange(10), n))
            self.data = np.zeros((10 * n, 32, 32, 3), np.uint8)
            self.data[..., 2] = 255  # blue channel
    _fake_torchvision(monkeypatch, FakeCifar)
    (tmp_path / "cifar-10-batches-py").mkdir()
    d = load_dataset(DataConfig(dataset="cifar10", profile="paper:max=20", n_test_per_class=6,
                                data_root=str(tmp_path)))
    assert d.image_shape == (3, 32, 32) and d.x_train.shape[1:] == (3, 32, 32)
    assert np.all(d.x_train[:, 2] == 1.0) and np.all(d.x_train[:, 0] == -1.0)
    assert d.class_names[0] == "airplane" and d.class_names[9] == "truck"
    # cifar family list scaled to a largest class of 20
    assert d.class_counts.tolist() == parse_profile("paper:max=20", 10, None, "cifar10")
    assert d.meta["paper_family"] == "cifar"
    check_invariants(d, 6)


# --------------------------------------------------------------------------- tables

def _table_rows(n_per: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.array(["dog", "cat", "bird"] * n_per)
    x = rng.normal(size=(labels.size, 3)).round(4)
    return x, labels


def test_table_csv_round_trip_string_labels(tmp_path):
    x, labels = _table_rows()
    lines = ["a,species,b,c"] + [f"{r[0]},{lab},{r[1]},{r[2]}" for r, lab in zip(x, labels)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    fx, fy, names = load_table_bytes(path.read_bytes(), "t.csv", "species")
    assert names == ("bird", "cat", "dog")
    assert fx.dtype == np.float32 and fy.dtype == np.int64
    assert np.allclose(fx, x.astype(np.float32))
    assert [names[i] for i in fy] == labels.tolist()

    d = load_dataset(DataConfig(dataset=f"table:{path}", label_column="species", profile="counts:4,3,2",
                                n_test_per_class=2))
    assert d.kind == "table" and d.class_names == ("bird", "cat", "dog")
    assert d.class_counts.tolist() == [4, 3, 2]
    check_invariants(d, 2)
    assert np.allclose(d.x_train, fx[d.train_idx]) and np.array_equal(d.y_train, fy[d.train_idx])
    assert not set(d.train_idx) & set(d.test_idx)


def test_table_npz_round_trip(tmp_path):
    x, labels = _table_rows()
    np.savez(tmp_path / "t.npz", x=x, label=labels)
    fx, fy, names = load_table_bytes((tmp_path / "t.npz").read_bytes(), "t.npz", "label")
    assert names == ("bird", "cat", "dog") and np.allclose(fx, x)
    assert [names[i] for i in fy] == labels.tolist()
    # 'X' + 'y' under the default label column; integer labels keep numeric order
    ints = np.array([10, 2, 2, 10, 7, 7])
    np.savez(tmp_path / "u.npz", X=np.arange(12.0).reshape(6, 2), y=ints)
    fx, fy, names = load_table_bytes((tmp_path / "u.npz").read_bytes(), "u.npz", "label")
    assert names == ("2", "7", "10") and fy.tolist() == [2, 0, 0, 2, 1, 1]
    # a named label array
    np.savez(tmp_path / "v.npz", x=x, target=labels)
    d = load_dataset(DataConfig(dataset=f"table:{tmp_path / 'v.npz'}", label_column="target",
                                profile="none", n_test_per_class=1))
    assert d.class_counts.tolist() == [5, 5, 5]


def _csv(text: str) -> bytes:
    return text.strip().encode() + b"\n"


@pytest.mark.parametrize("raw, filename, match", [
    (_csv("a,b,label\n1,2,x\nnan,3,x\n4,5,y\n6,7,y"), "t.csv", r"NaN/inf .*columns a: fill or drop"),
    (_csv("a,b,label\n1,2,x\ninf,3,x\n4,5,y\n6,7,y"), "t.csv", r"NaN/inf"),
    (_csv("a,b,label\n1,,x\n2,3,x\n4,5,y\n6,7,y"), "t.csv", r"columns b"),
    (_csv("a,color,size,label\n1,red,s,x\n2,blue,m,x\n3,red,l,y\n4,red,s,y"), "t.csv",
     r"must be numeric, but these are not: color, size"),
    (_csv("a,b,cls\n1,2,x\n3,4,y"), "t.csv", r"no label column 'label'; its columns are: a, b, cls"),
    (_csv("a,b,label\n1,2,x\n3,4,x\n5,6,x"), "t.csv", r"single class \('x'\)"),
    (_csv("a,b,label\n1,2,x\n3,4,x\n5,6,y"), "t.csv", r"class 'y' has only 1 row"),
    (_csv("a,b,label\n1,2,x\n3,4,x\n5,6,y\n7,8,y"), "t.xlsx", r"not a CSV or NPZ file"),
    (_csv("a,b,label\n1,2,x"), "noext", r"not a CSV or NPZ file"),
    (b"\x00\x01garbage that is not a zip", "t.npz", r"could not read 't.npz' as NPZ"),
    (b'a,b,label\n"1,2,x\n', "t.csv", r"could not parse 't.csv' as CSV"),
    (_csv("a,label\n1,x\n2,\n3,y\n4,y"), "t.csv", r"label column 'label' has 1 empty"),
])
def test_table_errors(raw, filename, match):
    with pytest.raises(DataError, match=match):
        load_table_bytes(raw, filename, "label")


def test_table_npz_errors(tmp_path):
    np.savez(tmp_path / "a.npz", feats=np.zeros((4, 2)), label=np.array([0, 0, 1, 1]))
    with pytest.raises(DataError, match=r"no feature array 'x' .*its arrays are: feats, label"):
        load_table_bytes((tmp_path / "a.npz").read_bytes(), "a.npz", "label")
    np.savez(tmp_path / "b.npz", x=np.zeros((4, 2)), cls=np.array([0, 0, 1, 1]))
    with pytest.raises(DataError, match=r"no label array 'label' \(or 'y'\); its arrays are: cls, x"):
        load_table_bytes((tmp_path / "b.npz").read_bytes(), "b.npz", "label")
    np.savez(tmp_path / "c.npz", x=np.array([[1.0, np.nan]] * 4), label=np.array([0, 0, 1, 1]))
    with pytest.raises(DataError, match="NaN/inf"):
        load_table_bytes((tmp_path / "c.npz").read_bytes(), "c.npz", "label")
    np.savez(tmp_path / "d.npz", x=np.array([["a", "b"]] * 4), label=np.array([0, 0, 1, 1]))
    with pytest.raises(DataError, match="not numeric"):
        load_table_bytes((tmp_path / "d.npz").read_bytes(), "d.npz", "label")
    np.savez(tmp_path / "e.npz", x=np.zeros((5, 2)), label=np.array([0, 0, 1, 1]))
    with pytest.raises(DataError, match="5 feature rows but 4 labels"):
        load_table_bytes((tmp_path / "e.npz").read_bytes(), "e.npz", "label")


def test_table_size_limit(tmp_path, monkeypatch):
    assert MAX_UPLOAD_BYTES == 200 * 1024 * 1024
    raw = _csv("a,label\n1,x\n2,x\n3,y\n4,y")
    monkeypatch.setattr(gtables, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(DataError, match="over the 0.0 MB limit"):
        load_table_bytes(raw, "t.csv", "label")
    (tmp_path / "t.csv").write_bytes(raw)
    with pytest.raises(DataError, match="over the"):
        load_dataset(DataConfig(dataset=f"table:{tmp_path / 't.csv'}", n_test_per_class=1))


def test_table_file_errors(tmp_path):
    with pytest.raises(DataError, match="table file not found"):
        load_dataset(DataConfig(dataset=f"table:{tmp_path / 'missing.csv'}"))
    (tmp_path / "t.txt").write_text("a,label\n1,x\n")
    with pytest.raises(DataError, match="not a CSV or NPZ file"):
        load_dataset(DataConfig(dataset=f"table:{tmp_path / 't.txt'}"))
    # a class too small for the test split
    (tmp_path / "s.csv").write_bytes(_csv("a,label\n1,x\n2,x\n3,x\n4,y\n5,y"))
    with pytest.raises(DataError, match=r"class 1 \('y'\) has 2 points.*--test-per-class"):
        load_dataset(DataConfig(dataset=f"table:{tmp_path / 's.csv'}", profile="none", n_test_per_class=2))


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("raw, filename, match", [
    # no rows: said so, not "must be numeric" nor a traceback
    (_npz_bytes(x=np.zeros((0, 3)), label=np.zeros(0)), "t.npz", r"'t.npz' has no rows"),
    (_npz_bytes(x=np.zeros((4, 0)), label=np.array([0, 0, 1, 1])), "t.npz", r"feature array 'x' has no columns"),
    (b"", "t.csv", r"'t.csv' is empty"),
    (b" \n\n", "t.csv", r"'t.csv' is empty"),
    (b"a,b,label\n", "t.csv", r"'t.csv' has a header but no rows"),
    (b"a,b,label\n\n\n", "t.csv", r"'t.csv' has a header but no rows"),
    # random bytes named .npz: not "pickled (object) data"
    (bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)), "t.npz",
     r"could not read 't.npz' as NPZ \(not a valid NPZ file"),
    (b"PK\x03\x04 a damaged zip", "t.npz", r"not a valid NPZ file"),
    # a repeated header: pandas would rename it (a, a.1) and the wrong column could be the label
    (_csv("a,a,label\n1,2,x\n3,4,x\n5,6,y\n7,8,y"), "t.csv", r"repeats the column name\(s\) 'a': give every"),
    (_csv("a,label,label\n1,x,2\n3,x,4\n5,y,6\n7,y,8"), "t.csv", r"repeats the column name\(s\) 'label'"),
], ids=["npz-no-rows", "npz-no-columns", "csv-empty", "csv-blank", "csv-header-only", "csv-header-blank-lines",
        "npz-random-bytes", "npz-damaged-zip", "csv-repeated-feature", "csv-repeated-label"])
def test_table_empty_damaged_or_ambiguous(raw, filename, match):
    with pytest.raises(DataError, match=match) as e:
        load_table_bytes(raw, filename, "label")
    assert "pickled" not in str(e.value) and "must be numeric" not in str(e.value)


def test_table_npy_and_object_arrays_are_named(tmp_path):
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"a single .npy array, not an .npz archive"):
        load_table_bytes(buf.getvalue(), "t.npz", "label")
    raw = _npz_bytes(x=np.zeros((4, 2)), label=np.array([0, 0, 1, 1], dtype=object))
    with pytest.raises(DataError, match=r"array 'label' holds pickled \(object\) data"):
        load_table_bytes(raw, "t.npz", "label")


def test_table_npz_decompressed_size_is_capped(monkeypatch):
    """A small compressed NPZ can inflate to gigabytes: the arrays' declared shapes are checked
    against the cap before anything is decompressed."""
    import io
    import zipfile

    raw = _npz_bytes(x=np.zeros((20_000, 8)), label=np.arange(20_000) % 2)    # 1.3 MB once read
    assert len(raw) < 10_000
    assert load_table_bytes(raw, "t.npz", "label")[0].shape == (20_000, 8)
    monkeypatch.setattr(gtables, "MAX_DECOMPRESSED_BYTES", 1024 * 1024)
    with pytest.raises(DataError, match=r"'t.npz' holds 'x' of shape \(20000, 8\) \(float64\), 1.4 MB once "
                                        r"read, over the 1.0 MB limit"):
        load_table_bytes(raw, "t.npz", "label")
    monkeypatch.undo()
    # a header declaring 4.8 GB (300M x 2 float64) over a few bytes: refused from the header alone
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (300_000_000, 2)})
            f.write(bytes(1024))
        lab = io.BytesIO()
        np.save(lab, np.zeros(2))
        zf.writestr("label.npy", lab.getvalue())
    with pytest.raises(DataError, match=r"4577.6 MB once read, over the 2048.0 MB limit: subsample"):
        load_table_bytes(buf.getvalue(), "bomb.npz", "label")


def test_table_values_beyond_float32_are_refused_without_warnings():
    import warnings

    raw = _csv("a,b,label\n1e300,2,x\n3,4,x\n5,-1e39,y\n7,8,y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no RuntimeWarning printed before the error
        with pytest.raises(DataError, match=r"2 feature values \(up to 1e\+300\) are beyond float32's range"
                                            r".*columns a, b: rescale"):
            load_table_bytes(raw, "t.csv", "label")
        raw = _npz_bytes(x=np.array([[1.0], [2.0], [1e300], [4.0]]), label=np.array([0, 0, 1, 1]))
        with pytest.raises(DataError, match=r"beyond float32's range .*columns x\[0\]"):
            load_table_bytes(raw, "t.npz", "label")
        # whole-number labels too large for int64 stay distinct (they were all cast to one value)
        x, y, names = load_table_bytes(_csv("a,label\n1,1e300\n2,1e300\n3,2e300\n4,2e300"), "t.csv", "label")
        assert names == ("1e+300", "2e+300") and y.tolist() == [0, 0, 1, 1]


# --------------------------------------------------------------------------- names

def test_unknown_dataset_lists_valid_names():
    for bad in ("toy:donut", "imagenet"):
        with pytest.raises(DataError) as e:
            load_dataset(DataConfig(dataset=bad))
        msg = str(e.value)
        assert "toy:moons" in msg and "fashion-mnist" in msg and "table:PATH" in msg
        assert isinstance(e.value, GamoError)


def test_public_constants():
    assert DATASETS == ("toy:moons", "toy:circles", "toy:blobs", "toy:spirals", "toy:nonconvex",
                        "digits", "mnist", "fashion-mnist", "cifar10", "svhn")
    assert PAPER_COUNTS["mnist"] == [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]
    assert PAPER_COUNTS["cifar"] == [4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80]
    # the package exports every name it lists, and each advertised profile form parses
    assert all(hasattr(gd, name) for name in gd.__all__)
    examples = {
        "none": ("none", None),
        "paper": ("paper", PAPER_COUNTS["mnist"]),
        "paper:max=N": ("paper:max=400", [400, 200, 100, 75, 50, 35, 20, 10, 6, 4]),
        "exp:ir=R[,max=N]": ("exp:ir=10,max=100", [100, 77, 60, 46, 36, 28, 22, 17, 13, 10]),
        "step:ir=R[,minority=M][,max=N]": ("step:ir=4,minority=2,max=100", [100] * 8 + [25] * 2),
        "counts:n0,n1,...": ("counts:9,8,7,6,5,4,3,3,2,2", [9, 8, 7, 6, 5, 4, 3, 3, 2, 2]),
    }
    assert gd.PROFILE_FORMS == tuple(examples)
    for spec, expected in examples.values():
        assert parse_profile(spec, 10, [5000] * 10, "mnist") == expected, spec
