"""Layouts of the blocked convex product's skinny matrix products, timed on this CPU.

In a GAMO iteration on Fashion-MNIST (paper profile) each minority class gets a few rows of the
minibatch (about 64 / 9), and each of its rows combines that class's members: a (rows, n_i) @
(n_i, 512) product forward and a (rows, 512) @ (512, n_i) product backward, with n_i up to 2,000.
The members (4 MB for n_i = 2,000) do not stay in cache between iterations. This script times
both products in the layout autograd uses (``w @ X``, ``dx @ X.T``) and in the one
``gamo.nets._BlockedCombine`` uses (the large matrix as the left, contiguous factor), each over
16 different member matrices in turn so that they come from memory, as in training.

    python bench/blocked_layout.py --threads 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import command, git_rev, machine, md_table  # noqa: E402


def per_call_us(fn, mats: list, repeats: int) -> float:
    """Median over 5 rounds of the mean time of ``fn(mat)`` cycling through ``mats``."""
    for m in mats:
        fn(m)
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(repeats):
            fn(mats[i % len(mats)])
        rounds.append((time.perf_counter() - t0) / repeats * 1e6)
    return statistics.median(rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--members", type=int, default=2000, help="n_i, members of the class block")
    ap.add_argument("--dim", type=int, default=512, help="d, the feature size")
    ap.add_argument("--rows", type=int, nargs="+", default=[2, 4, 8, 16], help="minibatch rows of the class")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--out", default="bench/results/blocked_layout")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(a.members, a.dim, generator=gen) for _ in range(16)]       # X: (n_i, d)
    xts = [x.t().contiguous() for x in xs]                                      # X^T: (d, n_i)
    rows = []
    for r in a.rows:
        w = torch.softmax(torch.randn(r, a.members, generator=gen), dim=1)       # (r, n_i)
        wt = w.t().contiguous().t()                                             # same values, column-major
        dx = torch.randn(r, a.dim, generator=gen)
        f_auto = per_call_us(lambda x: w @ x, xs, a.repeats)
        f_ours = per_call_us(lambda xt: torch.mm(xt, w.t()), xts, a.repeats)
        b_auto = per_call_us(lambda x: dx @ x.t(), xs, a.repeats)
        b_ours = per_call_us(lambda x: torch.mm(x, dx.t()), xs, a.repeats)
        assert torch.allclose(torch.mm(xts[0], wt.t()).t(), w @ xs[0], atol=1e-5)
        rows.append([str(r), f"{f_auto:.0f}", f"{f_ours:.0f}", f"{f_auto / f_ours:.2f}x",
                     f"{b_auto:.0f}", f"{b_ours:.0f}", f"{b_auto / b_ours:.2f}x"])
        print(" ".join(rows[-1]), flush=True)
    md = [
        f"# Blocked convex product: skinny matrix product layouts (n_i = {a.members}, d = {a.dim})", "",
        f"- command: `{command()}` (commit {git_rev()})",
        f"- machine: {machine()}",
        f"- torch threads: {a.threads}; microseconds per product, member matrices cycled from memory",
        "",
        md_table(["rows", "forward w @ X", "forward (X^T @ w^T)^T", "speed-up",
                  "backward dx @ X^T", "backward (X @ dx^T)^T", "speed-up"], rows),
        "",
    ]
    Path(a.out + ".md").write_text("\n".join(md))
    print(f"wrote {a.out}.md")


if __name__ == "__main__":
    main()
