"""The GAMO2pix page (app/pages/5_GAMO2pix.py, AppTest) and its logic (app/ui/gamo2pix.py), on
small stored runs made here: conv runs of a couple of steps on Fashion-MNIST with a tiny profile
(GAMO with decoders trained a few minibatches, GAMO without decoders, cDCGAN of the same data), a
flattened GAMO run and a run whose checkpoint is missing."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui import gamo2pix as gp  # noqa: E402
from app.ui import runs_view as rv  # noqa: E402
from gamo import gamo2pix as g2p  # noqa: E402
from gamo.cli import main  # noqa: E402
from gamo.tables import protocol  # noqa: E402

PAGE = ROOT / "app" / "pages" / "5_GAMO2pix.py"
COUNTS = "counts:40,12,10,10,10,10,10,10,10,10"


def _train(out: Path, method: str = "gamo", seed: int = 0, family: str = "conv") -> Path:
    assert main(["train", "--dataset", "fashion-mnist", "--family", family, "--profile", COUNTS, "--steps", "2",
                 "--method", method, "--seed", str(seed), "--hidden", "16", "--latent", "8", "--test-per-class", "5",
                 "--val-per-class", "0", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory, one_thread):
    """A 'committed' root with a GAMO conv run whose decoders are trained (2 minibatches a
    class) and the cDCGAN run of the same data and seed; the user's root with a GAMO conv run
    without decoders, a flattened GAMO run and a conv run that lost its checkpoint."""
    base = tmp_path_factory.mktemp("gamo2pix")
    user, bench = base / "runs", base / "bench"
    decoded = _train(bench / "fashion-mnist-ls" / "gamo-seed0")
    g2p.train_decoders(decoded, epochs=0, min_steps=2)
    _train(bench / "fashion-mnist-ls" / "cgan-seed0", method="cgan")
    _train(user / "gamo-nodec", seed=1)
    _train(user / "gamo-dense", family="dense")
    lost = user / "gamo-lost"
    lost.mkdir(parents=True)
    for name in ("config.json", "final.json", "status.json"):
        shutil.copy(decoded / name, lost / name)
    return {"user": user, "bench": bench, "decoded": decoded, "nodec": user / "gamo-nodec",
            "dense": user / "gamo-dense", "lost": lost, "cgan": bench / "fashion-mnist-ls" / "cgan-seed0"}


@pytest.fixture()
def env(monkeypatch, store):
    monkeypatch.setenv("GAMO_RUNS_DIR", str(store["user"]))
    monkeypatch.setenv("GAMO_BENCH_RUNS", str(store["bench"]))
    return store


def _label(path: Path) -> str:
    return str(path)            # a run outside the repository is named by its path (as on the Runs page)


def _page(run: Path | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    if run is not None:
        at.query_params["run"] = _label(run)
    return at.run()


def _text(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                    + [w.value for w in at.warning] + [e.value for e in at.error])


def _rows(store) -> list[rv.RunRow]:
    return rv.scan([rv.Root(store["user"], str(store["user"]), False),
                    rv.Root(store["bench"], str(store["bench"]), True)])


# --------------------------------------------------------------------------------------------
# the logic
# --------------------------------------------------------------------------------------------
def test_the_list_keeps_finished_conv_runs_of_convex_methods(store):
    rows = _rows(store)
    ok = gp.choices(rows)
    assert {c.path for c in ok} == {store["decoded"], store["nodec"], store["lost"]}
    assert all(not c.why for c in ok) and not next(c for c in ok if c.path == store["lost"]).has_checkpoint
    every = {c.path: c.why for c in gp.choices(rows, every=True)}
    assert "flattened images" in every[store["dense"]]
    assert "no convex samples" in every[store["cgan"]]


def test_the_cdcgan_run_of_the_same_data_is_found_and_commands_say_how_to_make_one(store):
    rows = _rows(store)
    by = {c.path: c for c in gp.choices(rows)}
    cd = gp.find_cdcgan(by[store["decoded"]], rows)
    assert cd.state == "ready" and cd.path == store["cgan"]
    other = gp.find_cdcgan(by[store["nodec"]], rows)             # seed 1: no cDCGAN run of it
    assert other.state == "missing" and other.path is None
    assert "python -m gamo train" in other.command and "--method cgan" in other.command and "--seed 1" in other.command
    # a table cell (the committed 20-epoch Fashion-MNIST runs): the table command, in the same root
    cfg = protocol("fashion-mnist", "ls", 2, "gamo", epochs=20)
    assert gp.table1_command(cfg, "cgan", "bench/results/runs-ep20") == (
        "python -m gamo bench table1 --dataset fashion-mnist --methods cgan --seeds 2 --epochs 20 "
        "--root bench/results/runs-ep20")
    assert gp.table1_command(by[store["decoded"]].cfg, "gamo", "runs") is None      # not the paper's protocol
    assert gp.image_lab_query(cfg) == {"data": "fashion-mnist", "family": "conv", "method": "gamo", "loss": "ls",
                                       "seed": "2", "profile": "paper"}


def test_trainings_run_one_at_a_time_and_stop_keeps_the_state():
    """A stand-in for train_decoders: one minibatch every few ms until stopped."""
    class G:
        classes = [1, 2]
        decoders: dict = {}

        def class_rows(self, c):
            return list(range(10))

    def fake_train(g, *, epochs, min_steps, progress, stop, threads, restart):
        for c in g.classes:
            for step in range(1, min_steps + 1):
                if stop.is_set():
                    return g2p.TrainReport(g.classes, [], True, 0.0)
                time.sleep(0.005)
                progress(g2p.Progress(c, g.classes.index(c), 2, step, min_steps, 0, 1.0, 1.0, 0, 0, 0.0))
        return g2p.TrainReport(g.classes, g.classes, False, 0.0)

    board = gp.DecoderTrainings(train=fake_train)
    a = board.submit("a", "run a", G(), epochs=0, min_steps=10_000)
    b = board.submit("b", "run b", G(), epochs=0, min_steps=5)
    assert board.submit("a", "run a", G(), epochs=0, min_steps=1) is a          # one active job a run
    deadline = time.monotonic() + 20
    while a.state != "running" or a.per_class[1][0] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert b.state == "queued" and [j.key for j in board.active()] == ["a", "b"]
    assert board.stop("a")
    while b.state != "done":
        assert time.monotonic() < deadline, (a.state, b.state)
        time.sleep(0.01)
    assert a.state == "stopped" and "continue" in a.message and 0 < a.fraction < 1
    assert b.fraction == 1.0 and b.per_class == {1: [5, 5], 2: [5, 5]} and not board.active()
    assert not board.stop("a")
    while board._thread is not None:                 # the thread ends with the queue
        assert time.monotonic() < deadline
        time.sleep(0.01)


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------
def test_page_draws_the_grids_and_the_slider_moves_without_decoding_again(env, monkeypatch):
    calls = []
    real = g2p.decode_generated
    monkeypatch.setattr(g2p, "decode_generated", lambda *a, **k: calls.append(a[1:3]) or real(*a, **k))
    at = _page(env["decoded"])
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert "Class 9 (Ankle boot)" in [h.value for h in at.header]
    text = _text(at)
    assert "Decoded GAMO samples" in text and "Real images of the class" in text
    assert "images of its generator" in text                    # cDCGAN's images, beside
    assert "Sample #0, decoded" in text and "Convex parents" in text and "Nearest real neighbours" in text
    # the sample's picture is its decoding, not the audit's stand-in (its strongest parent)
    assert not any("lives in F's features; shown" in cap for cap in _captions(at))
    assert "Audit live in the Image Lab" in text and "method=gamo" in text
    assert "Reconstructions of real images" in [h.value for h in at.subheader]
    assert len(at.get("image")) >= 6
    n_before = len(calls)
    at.slider(key="gp_i").set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Sample #3" in [h.value for h in at.subheader] and "Sample #3, decoded" in _text(at)
    assert len(calls) == n_before                                    # the samples came from the cache
    at.selectbox(key="gp_cls").set_value(2).run()
    assert "Class 2 (Pullover)" in [h.value for h in at.header] and not at.exception
    at.radio(key="gp_space").set_value("noise").run()
    assert not at.exception and "#0 → #1" in _text(at)


def test_the_frechet_table_has_a_row_per_class_and_cdcgan_beside(env):
    at = _page(env["decoded"])
    at.select_slider(key="gp_fn").set_value(100)
    at.button(key="gp_frechet").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (df,) = [d.value for d in at.dataframe if "GAMO2pix" in d.value.columns]
    assert len(df) == 10 and list(df["class"])[-1] == "mean" and "cDCGAN" in df.columns
    assert df["cDCGAN"].iloc[:9].notna().all() and df["GAMO2pix"].iloc[:9].notna().all()


def test_a_flattened_run_gets_a_clear_message(env):
    at = _page(env["dense"])
    assert not at.exception, [e.value for e in at.exception]
    (err,) = [e.value for e in at.error]
    assert "flattened images" in err and "convolutional F" in err and "\n" not in err.strip()
    assert not at.get("image")


def test_a_run_without_its_checkpoint_says_how_to_train_it(env):
    at = _page(env["lost"])
    assert not at.exception, [e.value for e in at.exception]
    (err,) = [e.value for e in at.error]
    assert "checkpoint is not here" in err and "python -m gamo train" in err


def test_a_run_without_decoders_offers_the_train_button_and_trains_them(env):
    at = _page(env["nodec"])
    assert not at.exception, [e.value for e in at.exception]
    button = at.button(key="gp_train")
    assert button.label == "Train the decoders" and not button.disabled
    assert "has no decoder yet" in _text(at)
    at.number_input(key="gp_epochs").set_value(0)
    at.number_input(key="gp_min_steps").set_value(2)
    at.button(key="gp_train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.monotonic() + 120
    while "Decoded GAMO samples" not in _text(at):
        assert time.monotonic() < deadline, _text(at)
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(g2p.decoder_status(env["nodec"])) == list(range(1, 10))
    assert "9 of 9 decoders trained" in _text(at)


def _captions(at):
    """The captions of the page's st.image elements."""
    return [img.caption for el in at.get("image") for img in el.proto.imgs]
