"""GAMOSampler's bad inputs (issue 15): scikit-learn's conventions, and never a non-finite row."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("imblearn")

from gamo.sampler import GAMOSampler  # noqa: E402


def _xy(n=120):
    rng = np.random.default_rng(0)
    y = (np.arange(n) % 5 == 0).astype(int)                    # 1 in 5 of the minority class
    X = rng.normal(size=(n, 3)) + y[:, None]
    return X, y


@pytest.mark.parametrize("params, match", [
    ({"steps": 0}, "'steps' parameter"),
    ({"steps": -5}, "'steps' parameter"),
    ({"steps": 2.5}, "'steps' parameter"),
    ({"lr": 0.0}, "'lr' parameter"),
    ({"batch_size": 0}, "'batch_size' parameter"),
    ({"hidden": 0}, "'hidden' parameter"),
    ({"loss": "hinge"}, "'loss' parameter"),
    ({"method": "smote"}, "'method' parameter"),
    ({"random_state": "seven"}, "'random_state' parameter"),
])
def test_parameters_are_validated_like_scikit_learn(params, match):
    """steps=0 or -5 used to train one step silently."""
    X, y = _xy()
    with pytest.raises(ValueError, match=match):
        GAMOSampler(**params).fit_resample(X, y)


def test_random_state_takes_a_random_state_instance():
    """scikit-learn accepts ``np.random.RandomState(3)``; it was a TypeError."""
    X, y = _xy()
    a = GAMOSampler(steps=3, random_state=np.random.RandomState(3)).fit_resample(X, y)
    b = GAMOSampler(steps=3, random_state=np.random.RandomState(3)).fit_resample(X, y)
    assert np.array_equal(a[0], b[0]) and len(a[1]) > len(y)
    with pytest.raises(ValueError, match=r"random_state.* \[0, 4294967295\]"):
        GAMOSampler(steps=3, random_state=2**64).fit_resample(X, y)


def test_values_beyond_float32_are_refused_not_returned_as_nan():
    """With 1e300 in X every generated row was NaN (a float32 cast), returned without error."""
    X, y = _xy()
    X[3, 1] = 1e300
    with pytest.raises(ValueError, match=r"X has values up to 1e\+300, beyond float32's range .*rescale X"):
        GAMOSampler(steps=3, random_state=0).fit_resample(X, y)


def test_non_finite_generated_rows_are_never_returned(monkeypatch):
    """Should training diverge, the sampler says so instead of returning NaN rows."""
    from gamo.methods.gamo import Gamo

    X, y = _xy()
    orig = Gamo.sample

    def poisoned(self, *a, **k):
        out = orig(self, *a, **k)
        out["x"][0] = np.nan
        return out

    monkeypatch.setattr(Gamo, "sample", poisoned)
    with pytest.raises(ValueError, match=r"diverged \(1 generated rows are NaN/inf\)"):
        GAMOSampler(steps=3, random_state=0).fit_resample(X, y)
