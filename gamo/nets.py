"""The networks: feature extractor F, classifier M, conditional discriminator D, convex generator G,
cDCGAN's generator and discriminator, GAMO2pix's decoder.

Shapes: ``B`` batch, ``d`` feature size (what M and D see), ``K`` classes, ``l`` latent size,
``N`` number of minority members (rows of the matrix G combines).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F_


def leaky() -> nn.Module:
    return nn.LeakyReLU(0.1)


def glorot_(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases for every Linear and (transposed) convolution in
    ``module``: Keras's default, which the official code relies on (torch's default init is
    Kaiming-uniform with non-zero biases). Used by every network here, so all methods compare alike."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


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
        elif kind is nn.ReLU:
            x = F_.relu(x)
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
    """The paper's convolutional F (official ``fMnistGamoConvCreate``): two 5x5 conv-32 with
    same padding + LeakyReLU(0.1) + 2x2 average pooling, then dense ``feat_dim`` with tanh.
    Works for 28x28x1 (7x7x32 = 1,568 inputs to the dense layer) and 32x32x3 (8x8x32) inputs."""

    def __init__(self, image_shape: tuple[int, int, int], feat_dim: int = 512) -> None:
        super().__init__()
        c, h, w = image_shape
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 5, padding=2), leaky(), nn.AvgPool2d(2),   # (B, 32, h/2, w/2)
            nn.Conv2d(32, 32, 5, padding=2), leaky(), nn.AvgPool2d(2),  # (B, 32, h/4, w/4)
            nn.Flatten(),
        )
        hh, ww = h // 4, w // 4
        self.head = nn.Sequential(nn.Linear(32 * hh * ww, feat_dim), nn.Tanh())
        self.out_dim = feat_dim
        glorot_(self)

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


def second_width(hidden: int) -> int:
    """M's and D's second hidden layer: half the first (the official 256 then 128)."""
    return max(1, hidden // 2)


class Classifier(nn.Module):
    """M: hidden layers of ``hidden`` and ``hidden // 2`` units with LeakyReLU(0.1) (the official
    256 then 128), K logits (softmax is applied by the losses)."""

    def __init__(self, d: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        h2 = second_width(hidden)
        self.net = nn.Sequential(
            nn.Linear(d, hidden), leaky(), nn.Linear(hidden, h2), leaky(), nn.Linear(h2, n_classes)
        )
        glorot_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d) -> (B, K)
        return run_mlp(self.net, x)


class Discriminator(nn.Module):
    """D(x | i): real-vs-generated logit conditioned on the class (one-hot concatenated); hidden
    layers as M's."""

    def __init__(self, d: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.onehot = OneHot(n_classes)
        h2 = second_width(hidden)
        self.net = nn.Sequential(
            nn.Linear(d + n_classes, hidden), leaky(), nn.Linear(hidden, h2), leaky(), nn.Linear(h2, 1)
        )
        glorot_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, d), (B,) -> (B,)
        return run_mlp(self.net, torch.cat([x, self.onehot(y).to(x.dtype)], dim=1)).squeeze(1)


class ConvexGenerator(nn.Module):
    """G = cTMU + one IGU per minority class (Section 3.2, eq. 1).

    cTMU maps (z, one-hot class) to t, as the official ``fMnistGamoGenCreate``: Dense(``hidden``)
    ReLU, batch norm, Dense(``t_dim``) ReLU, batch norm (256 and 64 by default; Keras's batch-norm
    momentum 0.9 and epsilon 1e-3). Batch norm makes G's output depend on its mode: G trains in
    training mode and generates for M, D, snapshots and samples in evaluation mode (running
    statistics), as the official code's ``train_on_batch`` and ``predict`` do.

    IGU_i maps t to ``n_i`` softmax weights over the members of minority class i, and the sample
    is ``sum_j w_j x_j`` over the class's current members. Each IGU has its own parameters.
    :meth:`forward_class` generates for one class (G's training updates, one class at a time as
    the official code's per-class models; only that class's IGU gets a gradient);
    :meth:`forward` generates for a batch of mixed classes, in one of two equivalent ways:

    * dense: the (B, N) logits outside each sample's own block are masked to -inf, and the
      samples are one (B, N) @ (N, d) product. Best on a GPU and for small N*d (2D toys).
    * blocked: each class's rows of the batch multiply only that class's (n_i, d) block, which
      skips the zeros of the dense product (about (K-1)x less work). Used on the CPU when N*d is
      large (e.g. 5,000 minority members x 512 features); it reads the class counts of the batch
      on the host, which would be a sync on a GPU.
    """

    BLOCKED_MIN_WORK = 1 << 16   # N * d above which the CPU uses the blocked product

    def __init__(self, latent: int, n_classes: int, hidden: int, block_sizes: list[int],
                 block_classes: list[int], t_dim: int = 64) -> None:
        super().__init__()
        self.latent, self.n_classes = latent, n_classes
        self.onehot = OneHot(n_classes)
        self.ctmu = nn.Sequential(
            nn.Linear(latent + n_classes, hidden), nn.ReLU(), nn.BatchNorm1d(hidden, eps=1e-3, momentum=0.1),
            nn.Linear(hidden, t_dim), nn.ReLU(), nn.BatchNorm1d(t_dim, eps=1e-3, momentum=0.1),
        )
        glorot_(self.ctmu)
        # IGU_i: a linear map t -> n_i logits, one per minority class (separate parameters: each
        # class's G update touches only its own IGU, as the official one model per class does)
        self.igu_w = nn.ParameterList()
        self.igu_b = nn.ParameterList()
        for n in block_sizes:
            lin = glorot_(nn.Linear(t_dim, int(n)))
            self.igu_w.append(lin.weight)   # (n_i, t_dim)
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
        """``members`` transposed and contiguous (d, N), cached for the same tensor: the members
        are then the left, row-major factor of each skinny product, 1.3-2.6x faster on the CPU
        for a few rows per class (``bench/results/blocked_layout.md``)."""
        if self._mt_of is not members:
            self._mt, self._mt_of = members.t().contiguous(), members
        return self._mt

    def _combine(self, w: torch.Tensor, b: int, members: torch.Tensor) -> torch.Tensor:
        """``w @ X_b`` for class block b: (cnt, n_b) weights -> (cnt, d) points."""
        lo, n = self.block_starts[b], self.block_sizes[b]
        if members.device.type == "cpu":
            return torch.mm(self.members_transposed(members)[:, lo:lo + n], w.t()).t()
        return w @ members[lo:lo + n]

    def forward_class(self, z: torch.Tensor, c: int, members: torch.Tensor) -> torch.Tensor:
        """``G(z | c)`` for one minority class c: (B, l) noise -> (B, d) points. Only the cTMU and
        IGU_c take part, so only they get gradients (an optimizer then steps only them)."""
        b = self._block_of[c]
        if b < 0:
            raise ValueError(f"class {c} has no IGU (it is not a minority class)")
        y = torch.full((len(z),), c, dtype=torch.long, device=z.device)
        w = torch.softmax(F_.linear(self._t(z, y), self.igu_w[b], self.igu_b[b]), dim=1)   # (B, n_c)
        return self._combine(w, b, members)

    def forward(self, z: torch.Tensor, y: torch.Tensor, members: torch.Tensor,
                need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate ``G(z | y) = sum_j w_j x_j`` (eq. 1) for a batch of mixed classes.

        ``members`` is (N, d), the current minority members grouped by class block. Returns the
        points (B, d) and, when ``need_weights``, the full convex weights (B, N).
        """
        if not self._use_blocked(members):
            w = self.weights(z, y)
            return w @ members, w
        t = self._t(z, y)                                                   # (B, t_dim)
        order = torch.argsort(y, stable=True)
        counts = torch.bincount(y, minlength=self.n_classes).tolist()
        ts, pieces, spans, start = t[order], [], [], 0
        for c, cnt in enumerate(counts):
            if cnt == 0:
                continue
            b = self._block_of[c]
            if b < 0:
                raise ValueError(f"class {c} has no IGU (it is not a minority class)")
            w = torch.softmax(F_.linear(ts[start:start + cnt], self.igu_w[b], self.igu_b[b]), dim=1)
            pieces.append(self._combine(w, b, members))                     # (cnt, d)
            spans.append((b, start, start + cnt, w))
            start += cnt
        xs = torch.cat(pieces)
        x = torch.empty_like(xs).index_copy(0, order, xs)                  # back to the batch's order
        w_full = None
        if need_weights:
            w_full = torch.zeros(len(y), members.shape[0], dtype=members.dtype, device=members.device)
            for b, s, e, w in spans:
                lo = self.block_starts[b]
                w_full[s:e, lo:lo + self.block_sizes[b]] = w
            w_full = torch.empty_like(w_full).index_copy(0, order, w_full)
        return x, w_full


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
        glorot_(self)

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
        glorot_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), (B,) -> (B,)
        b, _, h, w = x.shape
        maps = self.onehot(y).to(x.dtype)[:, :, None, None].expand(b, self.n_classes, h, w)
        return self.net(torch.cat([x, maps], dim=1)).squeeze(1)


class Gamo2pixDecoder(nn.Module):
    """GAMO2pix's trainable part (Section 5, Figure 5(a); official ``fashion_mnist_gamo2pix_net``):
    the VAE on top of the run's frozen F, one per minority class.

    * encoder head (after F, which is not part of this module): Dense(128) tanh on F's
      ``feat_dim`` features, then two Dense(``latent``) layers, the posterior's mean and log-variance;
    * decoder: Dense(32 x H/4 x W/4) LeakyReLU(0.1), two stride-2 4x4 transposed convolutions
      (32 channels, LeakyReLU(0.1)), a 4x4 convolution to C channels with TensorFlow's "same"
      padding (1 before, 2 after) and tanh: an image in [-1, 1] of the data's shape.
    """

    HEAD, WIDTH = 128, 32

    def __init__(self, feat_dim: int, image_shape: tuple[int, int, int], latent: int = 100) -> None:
        super().__init__()
        c, h, w = image_shape
        self.feat_dim, self.latent, self.image_shape = int(feat_dim), int(latent), (int(c), int(h), int(w))
        self.hh, self.ww = h // 4, w // 4
        self.head = nn.Sequential(nn.Linear(feat_dim, self.HEAD), nn.Tanh())
        self.mu = nn.Linear(self.HEAD, latent)
        self.logvar = nn.Linear(self.HEAD, latent)
        self.fc = nn.Sequential(nn.Linear(latent, self.WIDTH * self.hh * self.ww), leaky())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(self.WIDTH, self.WIDTH, 4, 2, 1), leaky(),      # (B, 32, H/2, W/2)
            nn.ConvTranspose2d(self.WIDTH, self.WIDTH, 4, 2, 1), leaky(),      # (B, 32, H, W)
            nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(self.WIDTH, c, 4), nn.Tanh(),  # (B, C, H, W)
        )
        glorot_(self)

    def encode(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, d) -> 2 x (B, latent)
        t = self.head(f)
        return self.mu(t), self.logvar(t)

    def decode(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent) -> (B, C, H, W)
        return self.up(self.fc(z).reshape(len(z), self.WIDTH, self.hh, self.ww))

    def forward(self, f: torch.Tensor, eps: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images from F's features: ``z = mu + exp(logvar / 2) * eps`` (``eps`` None: z = mu,
        the posterior's mean). Returns (images, mu, logvar)."""
        mu, logvar = self.encode(f)
        z = mu if eps is None else mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar
