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
        self.register_buffer("member_block", member_block, persistent=False)  # (N,)
        self.mode = "auto"   # "auto", "dense" or "blocked"

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

    def forward(self, z: torch.Tensor, y: torch.Tensor, members: torch.Tensor,
                need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate ``G(z | y) = sum_j w_j x_j`` (eq. 1).

        ``members`` is (N, d), the current minority members grouped by class block. Returns the
        points (B, d) and, when ``need_weights``, the full convex weights (B, N).
        """
        if not self._use_blocked(members):
            w = self.weights(z, y)
            return w @ members, w
        t = self._t(z, y)                                                   # (B, hidden)
        order = torch.argsort(y, stable=True)
        counts = torch.bincount(y, minlength=self.n_classes).tolist()
        pieces, wpieces, start = [], [], 0
        for c in range(self.n_classes):
            cnt = counts[c]
            if cnt == 0:
                continue
            b = int(self.block_of[c])
            if b < 0:
                raise ValueError(f"class {c} has no IGU (it is not a minority class)")
            rows = order[start:start + cnt]
            lo, n = self.block_starts[b], self.block_sizes[b]
            w = torch.softmax(F_.linear(t[rows], self.igu_w[b], self.igu_b[b]), dim=1)   # (cnt, n_i)
            pieces.append(w @ members[lo:lo + n])                           # (cnt, d)
            if need_weights:
                wpieces.append((rows, lo, w))
            start += cnt
        x = torch.empty(len(y), members.shape[1], dtype=members.dtype, device=members.device)
        x = x.index_copy(0, order, torch.cat(pieces))
        if not need_weights:
            return x, None
        full = torch.zeros(len(y), members.shape[0], dtype=members.dtype, device=members.device)
        for rows, lo, w in wpieces:
            full[rows, lo:lo + w.shape[1]] = w
        return x, full


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
