"""GAMO2pix (gamo/gamo2pix.py): per-class VAE decoders on a conv run's frozen F."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from gamo import gamo2pix as g2p
from gamo.audit import convex_samples
from gamo.cli import main
from gamo.methods import make_method
from gamo.nets import Gamo2pixDecoder


@pytest.fixture(scope="module")
def conv_gamo(one_thread):
    """A conv GAMO method on fake 28x28 images (classes of 40, 12, 8 members), a few steps."""
    import dataclasses

    from tests.conftest import _fake_images, _tiny_cfg

    def shapes(n, rng):   # a bright rectangle on black, somewhere: images a decoder can learn
        x = -np.ones((n, 1, 28, 28), np.float32)
        for i in range(n):
            r, c, h, w = rng.integers(2, 14), rng.integers(2, 14), rng.integers(5, 12), rng.integers(5, 12)
            x[i, 0, r:r + h, c:c + w] = 1
        return x

    data = _fake_images((1, 28, 28), [40, 12, 8])
    rng = np.random.default_rng(0)
    data = dataclasses.replace(data, x_train=shapes(len(data.y_train), rng), x_test=shapes(len(data.y_test), rng))
    cfg = _tiny_cfg("gamo", steps=3, data=dict(dataset="fashion-mnist", profile="none"), model=dict(family="conv"))
    m = make_method(cfg, data, torch.device("cpu"))
    for _ in range(3):
        m.step()
    return m


def _fresh(m, classes=None, **kw):
    """A Gamo2pix in memory with decoders trained ``min_steps`` minibatches (0: untrained)."""
    g = g2p.Gamo2pix(m)
    kw = {"epochs": 0, "min_steps": 0, **kw}
    g2p.train_decoders(g, classes, **kw)
    return g


def test_decoder_shapes():
    d = Gamo2pixDecoder(512, (3, 32, 32), latent=10)
    x, mu, lv = d(torch.randn(4, 512), torch.randn(4, 10))
    assert x.shape == (4, 3, 32, 32) and mu.shape == lv.shape == (4, 10)
    assert x.abs().max() <= 1


def test_a_few_steps_lower_the_reconstruction_loss(conv_gamo):
    c = 1
    before = g2p.recon_loss(_fresh(conv_gamo, [c]), c)
    g = _fresh(conv_gamo, [c], min_steps=40)
    after = g2p.recon_loss(g, c)
    assert g.decoders[c].step == 40 and len(g.decoders[c].history) == 40
    assert after < 0.7 * before, (before, after)


def test_member_order_of_decoded_samples_is_the_generators(conv_gamo):
    m, c = conv_gamo, 2
    g = _fresh(m, [c])
    feats = m.train_features().numpy()
    d = g2p.decode_generated(g, c, n=6, seed=3)
    block = m.G._block_of[c]
    lo, size = m.G.block_starts[block], m.G.block_sizes[block]
    # the members are the rows G combines for class c, in its order, and they are of class c
    assert np.array_equal(d.members, m.min_rows[lo:lo + size].numpy())
    assert (m.y_train.numpy()[d.members] == c).all()
    # the decoded vectors are G's own points: weights over the members in that order
    assert np.allclose(d.features, d.weights @ feats[d.members], atol=1e-5)
    ref = m.sample({c: 6}, seed=3)
    assert np.allclose(d.features, ref["x"], atol=1e-6)
    cs = convex_samples(m, {c: 6}, seed=3)      # what the audit reports for the same samples
    assert np.array_equal(d.parent_idx, cs["parent_idx"][:, :d.parent_idx.shape[1]])
    assert np.allclose(d.eff_parents, cs["eff_parents"])
    assert np.allclose(d.images, g2p.decode(g, c, ref["x"]))
    # peak IGU_c on member j: every sample is F(x_train[members[j]]), decoded as that member is
    j = 3
    bias = m.G.igu_b[block]
    saved = bias.detach().clone()
    try:
        with torch.no_grad():
            bias[j] += 100.0
        p = g2p.decode_generated(g, c, n=4, seed=5)
    finally:
        with torch.no_grad():
            bias.copy_(saved)
    row = d.members[j]
    assert (p.parent_idx[:, 0] == row).all() and np.allclose(p.parent_w[:, 0], 1.0)
    assert np.allclose(p.features, feats[row], atol=1e-5)
    own = g2p.reconstruct(g, c, rows=[row]).decoded[0]
    assert np.allclose(p.images, own, atol=1e-5)
    # the official script's flaw (G's weights applied to the members in another order) would
    # decode another member's image: the check above tells them apart
    other = g2p.decode(g, c, feats[d.members[(j + 1) % size]][None])[0]
    assert not np.allclose(other, own, atol=1e-3)


def test_interpolation_is_convex_and_hits_both_ends(conv_gamo):
    m, c = conv_gamo, 1
    g = _fresh(m, [c])
    d = g2p.decode_generated(g, c, n=4, seed=0)
    it = g2p.interpolate(g, d, 0, 3, steps=5)
    feats = m.train_features().numpy()
    assert np.allclose(it.features[[0, -1]], d.features[[0, 3]], atol=1e-6)
    assert np.allclose(it.images[[0, -1]], d.images[[0, 3]], atol=1e-5)
    assert np.allclose(it.weights.sum(1), 1, atol=1e-5)
    assert np.allclose(it.features, it.weights @ feats[it.members], atol=1e-5)
    nz = g2p.interpolate(g, d, 0, 3, steps=3, space="noise")
    assert np.allclose(nz.features[[0, -1]], d.features[[0, 3]], atol=1e-5)
    with pytest.raises(g2p.Gamo2pixError, match="not among"):
        g2p.interpolate(g, d, 0, 9)


def test_reconstruct_checks_rows_and_splits(conv_gamo):
    m, c = conv_gamo, 2
    g = _fresh(m, [c])
    r = g2p.reconstruct(g, c, n=0)
    assert len(r.rows) == 8 and r.real.shape == r.decoded.shape == (8, 1, 28, 28)
    t = g2p.reconstruct(g, c, split="test", n=3)
    assert (m.y_test.numpy()[t.rows] == c).all() and len(t.rows) == 3
    with pytest.raises(g2p.Gamo2pixError, match="not of class"):
        g2p.reconstruct(g, c, rows=[0])
    with pytest.raises(g2p.Gamo2pixError, match="no trained decoder"):
        g2p.decode_generated(g2p.Gamo2pix(m), 1)
    with pytest.raises(g2p.Gamo2pixError, match="not a minority class"):
        g2p.reconstruct(g, 0)


def test_stopped_training_resumes_to_the_same_decoder(conv_gamo, tmp_path):
    m, c = conv_gamo, 1          # 12 members: one minibatch of 32 per epoch
    whole = g2p.Gamo2pix(m, tmp_path / "a")
    g2p.train_decoders(whole, [c], epochs=0, min_steps=12)
    part = g2p.Gamo2pix(m, tmp_path / "b")
    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.step >= 5:
            stop.set()
    rep = g2p.train_decoders(part, [c], epochs=0, min_steps=12, stop=stop, progress=progress)
    assert rep.stopped and rep.finished == [] and seen[-1].step == 5
    assert g2p.decoder_status(tmp_path / "b")[c]["step"] == 5
    again = g2p.Gamo2pix(m, tmp_path / "b")          # a new process: read from the run folder
    assert again.decoders[c].step == 5 and not again.decoders[c].done
    rep = g2p.train_decoders(again, [c], epochs=0, min_steps=12)
    assert rep.finished == [c] and rep.per_class[c]["trained"] == 7
    a, b = whole.decoders[c].net.state_dict(), again.decoders[c].net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # stored state dicts load with weights_only=True; a finished class is not trained again
    torch.load(tmp_path / "b" / g2p.FOLDER / f"decoder_c{c}.pt", weights_only=True)
    assert g2p.train_decoders(again, [c], epochs=0, min_steps=12).per_class[c]["trained"] == 0


def test_frechet_table_against_a_stand_in_reference(conv_gamo):
    m = conv_gamo
    g = _fresh(m)

    class Ref:  # the Reference interface frechet_table uses: features, class_stats, floor, info, key
        key, info, class_names = "stand-in", {"architecture": "mean pools"}, []

        def features(self, x):
            x = np.asarray(x).reshape(len(x), 28, 28)
            return x.reshape(len(x), 7, 4, 7, 4).mean((2, 4)).reshape(len(x), -1)

        def class_stats(self, c):
            f = self.features(m.x_test[m.y_test == c].numpy())
            return f.mean(0), np.cov(f, rowvar=False)

        def floor(self, c, n):
            return 0.5 if n == 20 else None

    t = g2p.frechet_table(g, n=20, reference=Ref())
    assert [r["cls"] for r in t["classes"]] == [1, 2]
    assert all(r["frechet"] > 0 and r["floor"] == 0.5 and r["frechet_members"] is not None for r in t["classes"])
    assert t["mean"]["frechet"] == pytest.approx(np.mean([r["frechet"] for r in t["classes"]]))


def test_a_run_without_conv_f_gets_a_clear_message(tiny_cfg, tmp_path, capsys):
    from gamo.train import Trainer

    dense = Trainer(tiny_cfg("gamo", steps=1), with_grid=False).method      # a 2D toy: no F at all
    with pytest.raises(g2p.Gamo2pixError, match="convolutional F"):
        g2p.Gamo2pix(dense)
    run = tmp_path / "dense-run"
    run.mkdir()
    cfg = tiny_cfg("gamo", data=dict(dataset="fashion-mnist", profile="none"), model=dict(family="dense"))
    (run / "config.json").write_text(cfg.to_json())
    rc = main(["gamo2pix", "--run", str(run)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "flattened images" in err and "convolutional F" in err


def test_cli_trains_and_writes_grids(tmp_path, capsys, one_thread):
    run = tmp_path / "conv-run"
    counts = "counts:40,12,10,10,10,10,10,10,10,10"
    assert main(["train", "--dataset", "fashion-mnist", "--family", "conv", "--profile", counts, "--steps", "2",
                 "--hidden", "16", "--latent", "8", "--test-per-class", "5", "--val-per-class", "0",
                 "--out", str(run), "--quiet"]) == 0
    rc = main(["gamo2pix", "--run", str(run), "--epochs", "1", "--min-steps", "2", "--n", "0", "--grid", "4",
               "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "wrote 9 grids" in out
    folder = run / g2p.FOLDER
    report = json.loads((folder / g2p.REPORT_JSON).read_text())
    assert sorted(map(int, report["decoders"])) == list(range(1, 10)) and report["frechet"] is None
    assert all((folder / f"grid_c{c}.png").is_file() for c in range(1, 10))
    st = g2p.decoder_status(run)
    assert st[1]["step"] == st[1]["steps"] == 2


class Ref:   # a stand-in reference classifier: says "class 1" for every image; features: 7x7 mean pools
    key, info = "stand-in", {"test_accuracy": 1.0, "architecture": "mean pools"}

    def predict_proba(self, x):
        p = np.zeros((len(x), 10))
        p[:, 1] = 1
        return p

    def features(self, x):
        return np.asarray(x, np.float64).reshape(len(x), 7, 4, 7, 4).mean((2, 4)).reshape(len(x), -1)

    def class_stats(self, c):
        return np.zeros(49), np.eye(49)

    def floor(self, c, n):
        return None


def test_figure4_measures_a_conv_run_on_its_decodings(tmp_path, one_thread):
    """A conv run's samples are F's features: with every decoder trained, Figure 4's fidelity and
    Fréchet distance are taken on their decodings; without, they are not measured."""
    from gamo import figure4

    run = tmp_path / "conv-run"
    assert main(["train", "--dataset", "fashion-mnist", "--family", "conv", "--profile",
                 "counts:30,10,10,10,10,10,10,10,10,10", "--steps", "2", "--hidden", "16", "--latent", "8", "--test-per-class", "5", "--val-per-class", "0",
                 "--out", str(run), "--quiet"]) == 0

    before = figure4.write_run_files(run, reference=Ref(), n_claims=6)
    assert "GAMO2pix" in before["not_measured"] and all(c["fidelity"] is None for c in before["classes"])
    assert all(c["ood_share"] is not None for c in before["classes"])      # the audit's flags, in F's space
    assert main(["gamo2pix", "--run", str(run), "--epochs", "1", "--min-steps", "2", "--n", "0", "--quiet"]) == 0
    after = figure4.write_run_files(run, reference=Ref(), n_claims=6)
    assert "GAMO2pix" in after["images_from"] and "not_measured" not in after
    fid = {c["cls"]: c["fidelity"] for c in after["classes"]}
    assert fid == {c: float(c == 1) for c in range(1, 10)}
    assert all(c["frechet"] > 0 and c["n"] == 6 for c in after["classes"])
    with np.load(run / figure4.GRID_FILE) as z:
        assert str(z["gen_kind"]) == "decoded" and z["gen"].dtype == np.uint8


def test_figure4_measures_a_cdcgan_run_on_its_images(tmp_path, one_thread):
    """cDCGAN+CN's conv samples are F's features of images it generated: Figure 4 measures and
    shows the images themselves."""
    from gamo import figure4

    run = tmp_path / "cgan-run"
    assert main(["train", "--dataset", "fashion-mnist", "--family", "conv", "--method", "cgan", "--profile",
                 "counts:30,10,10,10,10,10,10,10,10,10", "--steps", "4", "--hidden", "16", "--latent", "8",
                 "--test-per-class", "5", "--val-per-class", "0", "--out", str(run), "--quiet"]) == 0
    claims = figure4.write_run_files(run, reference=Ref(), n_claims=5)
    assert claims["space"] == "F's features" and "generator's images" in claims["images_from"]
    assert {c["cls"]: c["fidelity"] for c in claims["classes"]} == {c: float(c == 1) for c in range(1, 10)}
    with np.load(run / figure4.GRID_FILE) as z:
        assert str(z["gen_kind"]) == "generated" and z["gen"].shape == (45, 784)
