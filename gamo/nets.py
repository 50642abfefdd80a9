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
        return self.net(x)


class Discriminator(nn.Module):
    """D(x | i): real-vs-generated logit conditioned on the class (one-hot concatenated)."""

    def __init__(self, d: int, n_classes: int, hidden: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = nn.Sequential(
            nn.Linear(d + n_classes, hidden), leaky(), nn.Linear(hidden, hidden), leaky(), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, d), (B,) -> (B,)
        onehot = F_.one_hot(y, self.n_classes).to(x.dtype)
        return self.net(torch.cat([x, onehot], dim=1)).squeeze(1)


class ConvexGenerator(nn.Module):
    """G = cTMU + one IGU per minority class (Section 3.2, eq. 1).

    cTMU maps (z, one-hot class) to t. IGU_i maps t to ``n_i`` softmax weights over the
    members of minority class i. All IGUs are stored as one weight matrix whose row blocks are
    the classes, so the generator runs batched over every minority class at once: the logits of
    a sample outside its class's block are masked to -inf, and the sample is the product of the
    (B, N) weight matrix with the (N, d) matrix of current minority members.
    """

    def __init__(self, latent: int, n_classes: int, hidden: int, block_sizes: list[int],
                 block_classes: list[int]) -> None:
        super().__init__()
        self.latent, self.n_classes = latent, n_classes
        self.ctmu = nn.Sequential(
            nn.Linear(latent + n_classes, hidden), leaky(), nn.Linear(hidden, hidden), leaky()
        )
        n_total = int(sum(block_sizes))
        self.igu = nn.Linear(hidden, n_total)  # row block i = IGU of minority class block_classes[i]
        # block_of[c] = -1 for classes without an IGU (majority)
        block_of = torch.full((n_classes,), -1, dtype=torch.long)
        for b, c in enumerate(block_classes):
            block_of[c] = b
        member_block = torch.repeat_interleave(torch.arange(len(block_sizes)), torch.tensor(block_sizes))
        self.register_buffer("block_of", block_of, persistent=False)
        self.register_buffer("member_block", member_block, persistent=False)  # (N,)

    def weights(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Convex weights (B, N): zero outside class y's block, summing to 1 inside it."""
        onehot = F_.one_hot(y, self.n_classes).to(z.dtype)
        t = self.ctmu(torch.cat([z, onehot], dim=1))                  # (B, hidden)
        logits = self.igu(t)                                           # (B, N)
        own = self.member_block.unsqueeze(0) == self.block_of[y].unsqueeze(1)  # (B, N)
        return torch.softmax(logits.masked_fill(~own, float("-inf")), dim=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor, members: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate ``G(z | y) = sum_j w_j x_j`` (eq. 1). ``members`` is (N, d); returns (B, d), (B, N)."""
        w = self.weights(z, y)
        return w @ members, w
