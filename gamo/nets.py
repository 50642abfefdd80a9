"""The networks: feature extractor F, classifier M, conditional discriminator D, convex generator G.

Shapes: ``B`` batch, ``d`` feature size (what M and D see), ``K`` classes, ``l`` latent size,
``N`` number of minority members (rows of the matrix G combines).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F_


def leaky() -> nn.Module:
    return nn.LeakyReLU(0.1)


def run_mlp(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``seq(x)`` for a stack of Linear and LeakyReLU layers, calling their functions directly.

    The same computation, without nn.Module's per-call machinery (about 10 us a layer on this
    CPU, a tenth of a toy GAMO iteration); module hooks on the layers are therefore not called.
    Other layer types are called as modules.
    """
    for layer in seq:
        kind = type(layer)
        if kind is nn.Linear:
            x = F_.linear(x, layer.weight, layer.bias)
        elif kind is nn.LeakyReLU:
            x = F_.leaky_relu(x, layer.negative_slope)
        else:
            x = layer(x)
    return x


class OneHot(nn.Module):
    """``F.one_hot(y, K).float()`` as a row lookup in a K x K identity (a quarter of the cost on
    the CPU for small batches, and no bounds check that would sync a GPU)."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("eye", torch.eye(n_classes), persistent=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, K)
        return self.eye.index_select(0, y)


class ConvF(nn.Module):
    """The paper's convolutional F: two 5x5 conv-32 + LeakyReLU(0.1) + 2x2 average pooling,
    then dense ``feat_dim`` with tanh. Works for 28x28x1 and 32x32x3 inputs."""

    def __init__(self, image_shape: tuple[int, int, int], feat_dim: int = 512) -> None:
        super().__init__()
        c, h, w = image_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 5), leaky(), nn.AvgPool2d(2),   # (B, 32, (h-4)/2, (w-4)/2)
            nn.Conv2d(32, 32, 5), leaky(), nn.AvgPool2d(2),  # (B, 32, h', w')
            nn.Flatten(),
        )
        hh, ww = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        self.head = nn.Sequential(nn.Linear(32 * hh * ww, feat_dim), nn.Tanh())
        self.out_dim = feat_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, feat_dim)
        return self.head(self.body(x))

    @torch.no_grad()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)`` without autograd, the activations applied in place: the same values,
        bit for bit, with two fewer large tensors written per batch (the features pass over a
        training set took about 30% less time on a 2-core CPU)."""
        h = x
        for layer in (*self.body, *self.head):
            kind = type(layer)
            if kind is nn.LeakyReLU:
                h = F_.leaky_relu_(h, layer.negative_slope)
            elif kind is nn.Tanh:
                h = torch.tanh_(h)
            else:
                h = layer(h)
        return h


class FlattenF(nn.Module):
    """F for the dense family: the identity on flattened inputs (no parameters)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B, d)
        return x.reshape(x.shape[0], -1)


class Classifier(nn.Module):
    """M: two hidden LeakyReLU layers, K logits (softmax is applied by the losses)."""

    def __init__(self, d: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, hidden), leaky(), nn.Linear(hidden, hidden), leaky(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B, K)
        return run_mlp(self.net, x)


class Discriminator(nn.Module):
    """D(x | i): real-vs-generated logit conditioned on the class (one-hot concatenated)."""

    def __init__(self, d: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.onehot = OneHot(n_classes)
        self.net = nn.Sequential(
            nn.Linear(d + n_classes, hidden), leaky(), nn.Linear(hidden, hidden), leaky(), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, d), (B,) -> (B,)
        return run_mlp(self.net, torch.cat([x, self.onehot(y).to(x.dtype)], dim=1)).squeeze(1)


class ConvexGenerator(nn.Module):
    """G = cTMU + one IGU per minority class (Section 3.2, eq. 1).

    cTMU maps (z, one-hot class) to t. IGU_i maps t to ``n_i`` softmax weights over the
    members of minority class i, and the sample is ``sum_j w_j x_j`` over the class's current
    members. All IGUs are stored as one weight matrix whose row blocks are the classes, and one
    call generates for every minority class at once, in one of two equivalent ways:

    * dense: the (B, N) logits outside each sample's own block are masked to -inf, and the
      samples are one (B, N) @ (N, d) product. Best on a GPU and for small N*d (2D toys).
    * blocked: each class's rows of the batch multiply only that class's (n_i, d) block, which
      skips the zeros of the dense product (about (K-1)x less work). Used on the CPU when N*d is
      large (e.g. 5,000 minority members x 512 features); it reads the class counts of the batch
      on the host, which would be a sync on a GPU.
    """

    BLOCKED_MIN_WORK = 1 << 16   # N * d above which the CPU uses the blocked product

    def __init__(self, latent: int, n_classes: int, hidden: int, block_sizes: list[int],
                 block_classes: list[int]) -> None:
        super().__init__()
        self.latent, self.n_classes = latent, n_classes
        self.onehot = OneHot(n_classes)
        self.ctmu = nn.Sequential(
            nn.Linear(latent + n_classes, hidden), leaky(), nn.Linear(hidden, hidden), leaky()
        )
        # IGU_i: a linear map t -> n_i logits, one per minority class (separate parameters, so the
        # blocked product's backward never materialises gradients for the other classes)
        self.igu_w = nn.ParameterList()
        self.igu_b = nn.ParameterList()
        for n in block_sizes:
            lin = nn.Linear(hidden, int(n))
            self.igu_w.append(lin.weight)   # (n_i, hidden)
            self.igu_b.append(lin.bias)     # (n_i,)
        self.block_sizes = [int(n) for n in block_sizes]
        self.block_classes = [int(c) for c in block_classes]
        self.block_starts = [0]
        for n in self.block_sizes[:-1]:
            self.block_starts.append(self.block_starts[-1] + n)
        # block_of[c] = -1 for classes without an IGU (majority)
        block_of = torch.full((n_classes,), -1, dtype=torch.long)
        for b, c in enumerate(block_classes):
            block_of[c] = b
        member_block = torch.repeat_interleave(torch.arange(len(block_sizes)), torch.tensor(self.block_sizes, dtype=torch.long))
        self.register_buffer("block_of", block_of, persistent=False)
        self._block_of = block_of.tolist()
        self.register_buffer("member_block", member_block, persistent=False)  # (N,)
        self.mode = "auto"   # "auto", "dense" or "blocked"
        self._mt: torch.Tensor | None = None
        self._mt_of: torch.Tensor | None = None

    def _t(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return run_mlp(self.ctmu, torch.cat([z, self.onehot(y).to(z.dtype)], dim=1))          # (B, hidden)

    def weights(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Convex weights (B, N): zero outside class y's block, summing to 1 inside it."""
        if len(self.igu_w) == 1:   # one minority class (e.g. a 2-class toy): nothing to mask
            return torch.softmax(F_.linear(self._t(z, y), self.igu_w[0], self.igu_b[0]), dim=1)
        logits = F_.linear(self._t(z, y), torch.cat(list(self.igu_w)), torch.cat(list(self.igu_b)))  # (B, N)
        own = self.member_block.unsqueeze(0) == self.block_of[y].unsqueeze(1)  # (B, N)
        return torch.softmax(logits.masked_fill(~own, float("-inf")), dim=1)

    def _use_blocked(self, members: torch.Tensor) -> bool:
        if self.mode != "auto":
            return self.mode == "blocked"
        return members.device.type == "cpu" and members.numel() >= self.BLOCKED_MIN_WORK

    def members_transposed(self, members: torch.Tensor) -> torch.Tensor:
        """``members`` transposed and contiguous (d, N), cached for the same tensor (one copy,
        shared by the blocked product's autograd path and :mod:`gamo.methods.blocked_kernel`)."""
        if self._mt_of is not members:
            self._mt, self._mt_of = members.t().contiguous(), members
        return self._mt

    def _members_t(self, members: torch.Tensor) -> list[torch.Tensor]:
        """Each block of the transposed members (d, n_i): column views of :meth:`members_transposed`."""
        mt = self.members_transposed(members)
        return [mt[:, lo:lo + n] for lo, n in zip(self.block_starts, self.block_sizes)]

    def forward(self, z: torch.Tensor, y: torch.Tensor, members: torch.Tensor,
                need_weights: bool = True, frozen: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate ``G(z | y) = sum_j w_j x_j`` (eq. 1).

        ``members`` is (N, d), the current minority members grouped by class block. Returns the
        points (B, d) and, when ``need_weights``, the full convex weights (B, N).

        The first ``frozen`` rows come out detached, as if generated under ``no_grad``: one call
        then serves a batch for another player's step (G fixed) and one for G's own step, with a
        single pass over the members, and the backward only works on the other rows.
        """
        if not self._use_blocked(members):
            w = self.weights(z, y)
            x = w @ members
            if frozen:
                x = torch.cat([x[:frozen].detach(), x[frozen:]])
            return x, w
        t = self._t(z, y)                                                   # (B, hidden)
        # rows grouped by class, and within a class the frozen rows first
        key = y * 2
        key[frozen:] += 1
        counts = torch.bincount(key, minlength=2 * self.n_classes).tolist()
        spans, start = [], 0
        for c in range(self.n_classes):
            n_frozen, n_live = counts[2 * c], counts[2 * c + 1]
            if n_frozen + n_live == 0:
                continue
            b = self._block_of[c]
            if b < 0:
                raise ValueError(f"class {c} has no IGU (it is not a minority class)")
            spans.append((b, start, start + n_frozen, start + n_frozen + n_live))
            start += n_frozen + n_live
        order = torch.argsort(key, stable=True)
        ts = t[order]
        if not need_weights and not members.requires_grad:
            xs = _BlockedCombine.apply(ts, spans, members, self._members_t(members),
                                       self.block_starts, self.block_sizes, *self.igu_w, *self.igu_b)
            w_full = None
        else:
            pieces, w_full = [], torch.zeros(len(y), members.shape[0], dtype=members.dtype, device=members.device)
            for b, s, _, e in spans:
                lo, n = self.block_starts[b], self.block_sizes[b]
                w = torch.softmax(F_.linear(ts[s:e], self.igu_w[b], self.igu_b[b]), dim=1)   # (cnt, n_i)
                pieces.append(w @ members[lo:lo + n])                           # (cnt, d)
                w_full[s:e, lo:lo + n] = w
            xs = torch.cat(pieces)
            w_full = torch.empty_like(w_full).index_copy(0, order, w_full)
        x = torch.empty_like(xs).index_copy(0, order, xs)                  # back to the batch's order
        if frozen:
            x = torch.cat([x[:frozen].detach(), x[frozen:]])
        return x, w_full if need_weights else None


class _BlockedCombine(torch.autograd.Function):
    """The convex combination of :class:`ConvexGenerator`'s blocked product, with a hand-written
    backward: for each class block b over the batch rows [s, e) (the batch grouped by class),
    ``x[s:e] = softmax(t[s:e] W_b^T + c_b) @ X_b``. Rows [s, m) are frozen (the caller detaches
    their output), so the backward skips them and gives them no gradient. Every IGU gets a
    gradient, zero for a class without live rows, as in the dense product.

    The same math as autograd through ``F.linear``, ``softmax`` and ``@``, computed in the
    transposed layout (n_i, rows): the large operands (the IGU's (n_i, hidden) weights and the
    members' (n_i, d) block) are then the left, row-major factor of every product, which runs
    1.3-2.6x faster on the CPU for the 4-16 rows per class of a minibatch
    (``bench/results/blocked_layout.md``). The transposed members are column views of one
    (d, N) copy (:meth:`ConvexGenerator.members_transposed`, shared with the CPU kernel).
    On the CPU this path now runs only for one-player teaching steps (full iterations go through
    :mod:`gamo.methods.blocked_kernel`).
    The members are constants here (F's features, or the data), so no gradient flows to them.
    """

    @staticmethod
    def forward(ctx, t, spans, members, members_t, starts, sizes, *params):
        ws, cs = params[:len(starts)], params[len(starts):]
        xs, conv = [], []
        for b, s, _, e in spans:
            w_b, c_b = ws[b], cs[b]
            lt = torch.addmm(c_b.unsqueeze(1), w_b, t[s:e].t())             # (n_i, cnt) logits
            w = torch.softmax(lt, dim=0).t().contiguous()                   # (cnt, n_i) convex weights
            xs.append(torch.mm(members_t[b], w.t()).t())                    # (cnt, d)
            conv.append(w)
        ctx.spans, ctx.members, ctx.starts, ctx.sizes = spans, members, starts, sizes
        ctx.save_for_backward(t, *ws, *conv)
        return torch.cat(xs)

    @staticmethod
    def backward(ctx, dx):
        nb = len(ctx.starts)
        t, ws, convs = ctx.saved_tensors[0], ctx.saved_tensors[1:1 + nb], ctx.saved_tensors[1 + nb:]
        dt = torch.zeros_like(t)
        dws: list[torch.Tensor | None] = [None] * nb
        dcs: list[torch.Tensor | None] = [None] * nb
        for (b, s, m, e), w in zip(ctx.spans, convs):
            if m == e:
                continue
            lo, n, w_b = ctx.starts[b], ctx.sizes[b], ws[b]
            wt = w[m - s:].t()                                              # (n_i, live)
            dwt = torch.mm(ctx.members[lo:lo + n], dx[m:e].t())             # dL/dweights, (n_i, live)
            dlt = wt * (dwt - (wt * dwt).sum(dim=0, keepdim=True))          # through the softmax
            dws[b] = torch.mm(dlt, t[m:e])                                  # (n_i, hidden)
            dcs[b] = dlt.sum(dim=1)                                         # (n_i,)
            dt[m:e] = torch.mm(dlt.t(), w_b)                                # (live, hidden)
        # a block without live rows in this batch gets a zero gradient, as in the dense product
        dws = [torch.zeros_like(w_b) if g is None else g for g, w_b in zip(dws, ws)]
        dcs = [t.new_zeros(n) if g is None else g for g, n in zip(dcs, ctx.sizes)]
        return (dt, None, None, None, None, None, *dws, *dcs)


class ConvGenerator(nn.Module):
    """cDCGAN's generator (cDCGAN+CN, Section 4): (z, one-hot class) -> dense 64 x H/4 x W/4,
    then two stride-2 transposed 4x4 convolutions (64 -> 32 -> C channels) with batch norm and
    ReLU between, tanh output: an image in [-1, 1] of the data's shape (28x28x1 or 32x32x3).
    The paper gives no sizes for its cDCGAN; these are half the usual DCGAN widths, a quarter of
    the work, so that a paper-length run fits a CPU (with 128/64 channels a GAN step took about
    0.25 s on one core)."""

    WIDTH = 32

    def __init__(self, latent: int, n_classes: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = image_shape
        self.n_classes, self.hh, self.ww = n_classes, h // 4, w // 4
        self.onehot = OneHot(n_classes)
        self.fc = nn.Sequential(nn.Linear(latent + n_classes, self.WIDTH * 2 * self.hh * self.ww),
                                nn.BatchNorm1d(self.WIDTH * 2 * self.hh * self.ww), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(self.WIDTH * 2, self.WIDTH, 4, 2, 1), nn.BatchNorm2d(self.WIDTH), nn.ReLU(),
            nn.ConvTranspose2d(self.WIDTH, c, 4, 2, 1), nn.Tanh(),                 # (B, C, H, W)
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor, members=None, need_weights: bool = False):
        h = self.fc(torch.cat([z, self.onehot(y).to(z.dtype)], dim=1)).reshape(len(z), self.WIDTH * 2, self.hh, self.ww)
        return self.up(h), None


class ConvDiscriminator(nn.Module):
    """cDCGAN's discriminator: the image with the class as K constant one-hot channels, two
    stride-2 4x4 convolutions (32, 64 channels) with LeakyReLU(0.2), then one real-vs-generated
    logit (widths as small as the generator's, see :class:`ConvGenerator`)."""

    def __init__(self, n_classes: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = image_shape
        self.n_classes = n_classes
        self.onehot = OneHot(n_classes)
        self.net = nn.Sequential(
            nn.Conv2d(c + n_classes, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), 1),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), (B,) -> (B,)
        b, _, h, w = x.shape
        maps = self.onehot(y).to(x.dtype)[:, :, None, None].expand(b, self.n_classes, h, w)
        return self.net(torch.cat([x, maps], dim=1)).squeeze(1)
