"""Where a GAMO-phase iteration's time goes (Fashion-MNIST, paper profile, conv family, LS, CPU).

``bench/epoch_time.py`` gives the phase's total (the GAMO phase, 282 iterations, is what decides
whether a GAMO epoch stays within 2x a Baseline CN epoch). This script times

* the engine's own step (on the CPU: :class:`gamo.methods.blocked_kernel.BlockedKernel`), with
  its compiled loops (G's class blocks, forward and backward) timed apart;
* the parts of the same iteration through autograd (``Gamo._step_phase`` without the kernel, as
  one-player teaching steps and the GPU run it) -- noise and labels, G's forward (the blocked
  convex product for both batches), the M/D step, G's loss, G's backward, G's Adam step;
* the floor of the blocked product through torch: the same skinny matrix products on the class
  blocks with no softmax, autograd or bookkeeping (members forward and backward, and the IGUs'
  three products).

Usage::

    python bench/gamo_phase_parts.py --threads 2     # writes bench/results/gamo_phase_parts.md
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import command, git_rev, machine, md_table  # noqa: E402
from gamo.config import DataConfig, RunConfig, TrainConfig  # noqa: E402
from gamo.data import load_dataset  # noqa: E402
from gamo.losses import classifier_loss, discriminator_loss, generator_vs_classifier_loss  # noqa: E402
from gamo.train import Trainer  # noqa: E402

PARTS = ("noise and labels", "G forward (both batches)", "M/D step", "G loss (M, D forward)",
         "G backward", "G Adam step")


def iteration_parts(m, n: int) -> dict[str, float]:
    """ms per part, mean over ``n`` iterations; the same operations as Gamo._step_phase (all
    players) with a clock between them."""
    acc = dict.fromkeys(PARTS, 0.0)
    feats = m.train_features()
    b = m.batch
    for _ in range(n):
        t = [time.perf_counter()]
        members = m._members()
        zs = [torch.randn(b, m.latent, generator=m.gen), torch.randn(b, m.latent, generator=m.gen)]
        ys = [m.minority_t[torch.multinomial(m.p_md, b, replacement=True, generator=m.gen)],
              m.minority_t[torch.randint(len(m.minority), (b,), generator=m.gen)]]
        t.append(time.perf_counter())
        x_all, _ = m.G(torch.cat(zs), torch.cat(ys), members, need_weights=False, frozen=b)
        t.append(time.perf_counter())
        idx = m._real_batch()
        x2, y2 = torch.cat([feats[idx], x_all[:b].detach()]), torch.cat([m.y_train[idx], ys[0]])
        loss = 2.0 * classifier_loss(m.M(x2), y2, m.loss_kind) + \
            2.0 * discriminator_loss(m.D(x2, y2), m._real_fake(b), m.loss_kind)
        m.opt_m.zero_grad(set_to_none=True)
        loss.backward()
        m.opt_m.step()
        t.append(time.perf_counter())
        xg, yg = x_all[-b:], ys[-1]
        loss_g = generator_vs_classifier_loss(m.M(xg), yg, m.loss_kind) + \
            discriminator_loss(m.D(xg, yg), True, m.loss_kind)
        t.append(time.perf_counter())
        m.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(m.G.parameters()))
        t.append(time.perf_counter())
        m.opt_g.step()
        t.append(time.perf_counter())
        for k, (a, z) in zip(PARTS, zip(t, t[1:])):
            acc[k] += z - a
    return {k: v / n * 1000 for k, v in acc.items()}


def product_floor(sizes: list[int], d: int, hidden: int, rows: int, n: int) -> dict[str, float]:
    """ms per iteration of the bare products on the class blocks, ``rows`` rows per class."""
    x = torch.randn(sum(sizes), d)
    starts = [0]
    for s in sizes[:-1]:
        starts.append(starts[-1] + s)
    xb = [x[s:s + k] for s, k in zip(starts, sizes)]
    xt = [v.t().contiguous() for v in xb]
    w = [torch.randn(k, hidden) for k in sizes]
    conv = [torch.rand(rows, k) for k in sizes]
    dl = [torch.randn(k, rows) for k in sizes]
    dx, t = torch.randn(rows, d), torch.randn(rows, hidden)
    jobs = {
        "members, forward (X_b^T w^T)": lambda: [torch.mm(xt[i], conv[i].t()) for i in range(len(sizes))],
        "members, backward (X_b dx^T)": lambda: [torch.mm(xb[i], dx.t()) for i in range(len(sizes))],
        "IGUs: logits, dW, dt": lambda: [(torch.mm(w[i], t.t()), torch.mm(dl[i], t), torch.mm(dl[i].t(), w[i]))
                                          for i in range(len(sizes))],
    }
    out = {}
    for name, f in jobs.items():
        for _ in range(10):
            f()
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        out[name] = (time.perf_counter() - t0) / n * 1000
    return out


class kernel_stage_clock:
    """Times the compiled stages of :class:`gamo.methods.blocked_kernel.BlockedKernel` (wrapping
    the module's functions, about a microsecond a call) while the engine steps."""

    NAMES = ("_logits", "_softmax", "_points", "_dweights", "_softmax_back", "_igu_grads")

    def __init__(self, kernel) -> None:
        self.acc: dict[str, float] = {}
        self.per_repeat: list[dict[str, float]] = []
        nb = kernel.nb
        for name in self.NAMES:
            f = getattr(nb, name)

            def timed(*args, _f=f, _name=name):
                t0 = time.perf_counter()
                out = _f(*args)
                self.acc[_name] = self.acc.get(_name, 0.0) + time.perf_counter() - t0
                return out
            setattr(nb, name, timed)

    def reset(self) -> None:
        self.acc = {}

    def keep(self, iters: int) -> None:
        self.per_repeat.append({k: v / iters * 1000 for k, v in self.acc.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=150, help="iterations per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/gamo_phase_parts")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dc = DataConfig(dataset="fashion-mnist", profile="paper")
    data = load_dataset(dc)
    tr = Trainer(RunConfig(data=dc, train=TrainConfig(method="gamo", loss="ls", steps=0, epochs=2, device="cpu",
                                                      threads=a.threads)), data, with_grid=False)
    m = tr.method
    start = m.schedule()[0][1]                 # the GAMO phase of epoch 0 (F as initialised)
    m.step_count = start
    for _ in range(20):
        tr.step()
    kernel = m._kernel
    stages = kernel_stage_clock(kernel) if kernel is not None else None
    reps, engine = [], []
    for _ in range(a.repeats):       # the autograd parts, then the engine's own step, alternating
        reps.append(iteration_parts(m, a.iters))
        m.step_count = start + 20    # every timed engine step inside the GAMO phase
        if stages is not None:
            stages.reset()
        t0 = time.perf_counter()
        for _ in range(a.iters):
            tr.step()
        engine.append((time.perf_counter() - t0) / a.iters * 1000)
        if stages is not None:
            stages.keep(a.iters)
    sizes = [int(s) for s in m.G.block_sizes]
    rows = round(2 * m.batch / len(sizes))
    floor = product_floor(sizes, m.feat_dim, m.G.igu_w[0].shape[1], rows, 200)

    med = {k: statistics.median(r[k] for r in reps) for k in PARTS}
    rows_tbl = [[k, f"{med[k]:.2f}", " / ".join(f"{r[k]:.2f}" for r in reps)] for k in PARTS]
    total = sum(med.values())
    rows_tbl.append(["**sum**", f"**{total:.2f}**", " / ".join(f"{sum(r.values()):.2f}" for r in reps)])
    lines = [
        "# A GAMO-phase iteration, part by part (fashion-mnist, paper profile, conv family, LS, CPU)", "",
        f"- command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        f"- torch threads: {a.threads}; class blocks (minority members per class): {sizes}; batch {m.batch} "
        f"(M/D) + {m.batch} (G); features {m.feat_dim}-d",
        f"- {a.repeats} repeats of {a.iters} iterations, means per repeat, medians across repeats",
        f"- **the engine's own `Trainer.step`** ({type(kernel).__name__ if kernel is not None else 'autograd path'}), "
        f"after each repeat of the parts below: " + " / ".join(f"{v:.2f}" for v in engine) + " ms", "",
    ]
    if stages is not None and stages.per_repeat:
        names = [n for n in stages.NAMES if any(n in r for r in stages.per_repeat)]
        st_rows = [[n, f"{statistics.median(r.get(n, 0.0) for r in stages.per_repeat):.2f}",
                    " / ".join(f"{r.get(n, 0.0):.2f}" for r in stages.per_repeat)] for n in names]
        comp = [sum(r.values()) for r in stages.per_repeat]
        st_rows.append(["**compiled loops, sum**", f"**{statistics.median(comp):.2f}**",
                        " / ".join(f"{v:.2f}" for v in comp)])
        rest = [e - c for e, c in zip(engine, comp)]
        st_rows.append(["the rest: noise, cTMU, M and D steps, Adam (torch), Python",
                        f"{statistics.median(rest):.2f}", " / ".join(f"{v:.2f}" for v in rest)])
        lines += ["## The engine's step on the CPU: the blocked kernel's compiled loops", "",
                  "`gamo/methods/_blocked_numba.py`, timed inside the engine's steps above (ms per iteration):", "",
                  md_table(["stage", "median ms", "each repeat (ms)"], st_rows), ""]
    lines += [
        "## The autograd path, part by part", "",
        "The same iteration through autograd (`Gamo._step_phase` without the kernel: one-player "
        "teaching steps, and the GPU, run this way):", "",
        md_table(["part", "median ms", "each repeat (ms)"], rows_tbl), "",
        f"## The blocked product's floor: bare matrix products, {rows} rows per class", "",
        md_table(["products over the {} class blocks".format(len(sizes)), "ms per iteration"],
                 [[k, f"{v:.2f}"] for k, v in floor.items()]),
        "", f"Sum of the floor: {sum(floor.values()):.2f} ms, against G's forward + backward "
        f"{med[PARTS[1]] + med[PARTS[4]]:.2f} ms in the autograd iteration.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
