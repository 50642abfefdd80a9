"""Shared fixtures: tiny fake image datasets and tiny run configs (fast on a CPU), the pages'
AppTest sessions (:func:`page_app`), and :func:`wait_until` (``from conftest import wait_until``:
tests/ is on sys.path under pytest)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gamo.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.data.types import Dataset


def _fake_images(shape: tuple[int, int, int], counts: list[int], n_test: int = 5, seed: int = 0) -> Dataset:
    """Uniform-noise images in [-1, 1], train rows ordered by class, a balanced test split."""
    rng = np.random.default_rng(seed)
    k = len(counts)
    y = np.repeat(np.arange(k), counts).astype(np.int64)
    yt = np.repeat(np.arange(k), n_test).astype(np.int64)
    x = rng.uniform(-1, 1, (len(y), *shape)).astype(np.float32)
    xt = rng.uniform(-1, 1, (len(yt), *shape)).astype(np.float32)
    return Dataset(name="fake", kind="image", x_train=x, y_train=y, x_test=xt, y_test=yt,
                   class_names=tuple(f"c{i}" for i in range(k)), train_idx=np.arange(len(y)),
                   test_idx=np.arange(len(yt)), image_shape=shape)


def _tiny_cfg(method: str = "gamo", *, steps: int = 10, seed: int = 0, data: dict | None = None,
              model: dict | None = None, **train) -> RunConfig:
    """A toy:moons run with small nets; ``data`` / ``model`` / ``train`` override fields."""
    d = dict(dataset="toy:moons", profile="step:ir=10", n_per_class=120, n_test_per_class=20, seed=seed)
    d.update(data or {})
    m = dict(hidden=16, latent=8, g_hidden=16, feat_dim=32)
    m.update(model or {})
    t = dict(method=method, steps=steps, batch_size=16, seed=seed, device="cpu", n_fixed=4, grid=8,
             snapshot_every=0)
    t.update(train)
    return RunConfig(data=DataConfig(**d), model=ModelConfig(**m), train=TrainConfig(**t))


@pytest.fixture
def fake_images():
    """Factory: ``fake_images((1, 28, 28), [40, 20, 10])`` -> an image Dataset."""
    return _fake_images


@pytest.fixture
def tiny_cfg():
    """Factory: ``tiny_cfg("gamo", steps=5, data={...}, model={...}, lr_g=...)`` -> RunConfig."""
    return _tiny_cfg


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks train fastest on one torch thread (results do not depend on the count)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture()
def page_app():
    """Factory of a page's AppTest sessions, cleaned up afterwards.

    ``page_app(path, query, runs_key="il_runs", executors=("il_exec_proj",), timeout=60)`` -> an
    AppTest of the page at ``path`` with the URL query parameters ``query`` (not run yet). After
    the test, each session's live runs (``session_state[runs_key]``) are stopped and its
    background executors (``session_state[name]`` for each name) shut down. The labs' test
    modules wrap it in their ``app`` fixture with their page, environment and keys.
    """
    from streamlit.testing.v1 import AppTest

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from app.ui.live_runs import stop_runs

    made: list[tuple[AppTest, str, tuple[str, ...]]] = []

    def make(path, query: dict | None = None, *, runs_key: str, executors: tuple[str, ...] = (),
             timeout: float = 60) -> AppTest:
        at = AppTest.from_file(str(path), default_timeout=timeout)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        made.append((at, runs_key, tuple(executors)))
        return at

    yield make
    for at, runs_key, executors in made:
        try:
            stop_runs(at.session_state[runs_key])
        except KeyError:
            pass
        for name in executors:
            try:
                at.session_state[name].shutdown(wait=True, cancel_futures=True)
            except KeyError:
                pass


def wait_until(pred, timeout: float = 20.0, what: str = "condition", poll: float = 0.02) -> None:
    """Poll ``pred()`` until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def no_exception(at) -> None:
    """An AppTest session shows no exception box (the boxes' texts in the failure)."""
    assert not at.exception, [e.value for e in at.exception]


def live_plot_args(at) -> list[dict]:
    """The arguments of the page's in-place charts (``app.ui.live_plot`` components), in page
    order: ``spec`` (the figure's JSON) and, where given, ``hover``."""
    import json

    return [json.loads(el.proto.json_args) for el in at.get("component_instance")
            if el.proto.component_name.endswith("gamo_live_plot")]
