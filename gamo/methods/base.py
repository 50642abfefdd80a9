"""The method protocol and the pieces every method shares: data on the device, F and M,
Algorithm 1's schedule, evaluation, and checkpoints.

A method owns its networks and optimizers and advances one iteration at a time with
:meth:`Method.step`. Its schedule is a list of phases per outer epoch:

* ``"fm"``   -- one minibatch update of F on real images, with M (Baseline CN and the other
  classifier-only methods) or with M held fixed (GAMO and its ablations: Alg. 1 line 4, as the
  official code's ``mlp.trainable=False``); conv family only, one epoch (Alg. 1 lines 2-5);
* ``"m"``    -- one minibatch update of M on real data (dense family, Baseline CN);
* ``"gamo"`` -- one iteration of Alg. 1 lines 7-15 on F's (fixed) features.

Each phase lasts ``ceil(n / b)`` iterations (u = v in the paper's implementation).
"""
from __future__ import annotations

import threading
import types

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from gamo.config import RunConfig
from gamo.data.types import Dataset
from gamo.errors import ConfigError
from gamo.losses import classifier_loss
from gamo.metrics import confusion_matrix, metrics_from_confusion
from gamo.nets import Classifier, ConvF, FlattenF
from gamo.snapshot import Generated, Metrics

CONV_SHAPES = ((1, 28, 28), (3, 32, 32))
_FEATURES_LOCK = threading.Lock()   # Method.features changes torch's (process-wide) thread count


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device: CUDA was asked for but none is available; use --device cpu or auto")
    return torch.device(name)


def resolve_family(family: str, data: Dataset) -> str:
    """``auto`` picks the conv family for 28x28x1 and 32x32x3 images, else dense."""
    shape = tuple(data.image_shape) if data.image_shape else None
    if family == "auto":
        return "conv" if shape in CONV_SHAPES else "dense"
    if family == "conv" and shape not in CONV_SHAPES:
        raise ConfigError(
            f"family: the conv family needs 28x28x1 or 32x32x3 images, this data is {shape or data.kind}; use dense"
        )
    return family


class FusedAdam(torch.optim.Adam):
    """torch's fused Adam (``fused=True``) with a lean ``step`` and ``zero_grad`` for small networks.

    ``torch.optim.Adam.step`` spends about 0.3 ms of Python per call gathering its parameter
    groups, more than the fused kernel itself takes on these networks (a 2D GAMO iteration makes
    two calls). This subclass keeps the per-group lists of parameters and state tensors, and calls
    the same kernel (``torch._fused_adam_``) with the same arguments, so the updates, the state and
    ``state_dict`` are exactly those of ``torch.optim.Adam(..., fused=True)``. A group whose
    parameters have no gradient is skipped, as Adam skips them; a group where only some do falls
    back to Adam's own step.
    """

    def __init__(self, params, betas: tuple[float, float]) -> None:
        super().__init__(params, betas=betas, fused=True)
        self._lists: list[tuple[list, list, list, list]] | None = None
        # Optimizer wraps the class's step in a profiler record and step hooks (about 0.3 ms a
        # call here); this instance's step is the plain one. Step hooks are not supported.
        self.step = types.MethodType(FusedAdam._lean_step, self)

    def _build(self) -> None:
        self._lists = []
        for group in self.param_groups:
            params = list(group["params"])
            for q in params:
                st = self.state[q]
                if len(st) == 0:  # as Adam initialises it (the fused kernel keeps step as a float32 tensor)
                    st["step"] = torch.zeros((), dtype=torch.float32, device=q.device)
                    st["exp_avg"] = torch.zeros_like(q, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(q, memory_format=torch.preserve_format)
            sts = [self.state[q] for q in params]
            self._lists.append((params, [t["exp_avg"] for t in sts], [t["exp_avg_sq"] for t in sts],
                                [t["step"] for t in sts]))

    @torch.no_grad()
    def _lean_step(self, closure=None):
        if closure is not None or any(g["amsgrad"] or g["maximize"] or g["capturable"] or g["differentiable"]
                                       for g in self.param_groups):
            return torch.optim.Adam.step(self, closure)
        grads = [[q.grad for q in group["params"]] for group in self.param_groups]
        if any(any(g is None for g in gs) and not all(g is None for g in gs) for gs in grads):
            self._lists = None          # Adam initialises the state of the params it steps
            return torch.optim.Adam.step(self)
        if self._lists is None:
            self._build()
        for group, gs, (params, avgs, sqs, steps) in zip(self.param_groups, grads, self._lists):
            if gs and gs[0] is None:
                continue
            beta1, beta2 = group["betas"]
            torch._foreach_add_(steps, 1)   # the kernel reads the incremented step (as Adam does)
            torch._fused_adam_(params, gs, avgs, sqs, [], steps, amsgrad=False, lr=float(group["lr"]),
                               beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                               maximize=False, grad_scale=None, found_inf=None)
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none=False)
        for group in self.param_groups:
            for q in group["params"]:
                q.grad = None

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._lists = None              # the state tensors were replaced


def adam(groups: list[tuple[str, list, float]], beta1: float) -> FusedAdam:
    """One Adam over (player, parameters, lr) groups; ``set_lr`` finds groups by player.

    Adam is per-parameter, so one optimizer over two players' parameters updates each exactly as
    two optimizers would, with one call instead of two. The fused kernel runs one kernel per step
    instead of a loop over parameters (much faster for these small networks); see :class:`FusedAdam`.
    """
    params = [{"params": list(ps), "lr": lr, "player": player} for player, ps, lr in groups]
    return FusedAdam(params, betas=(beta1, 0.999))


class Method:
    """Baseline CN and the base of every other method.

    Parameters
    ----------
    cfg : RunConfig
    data : Dataset
    device : torch.device
    """

    name = "baseline"
    players: tuple[str, ...] = ("M",)
    convex = False
    fm_trains_m = True    # the conv family's F phase updates F and M together (GAMO: F only)

    def __init__(self, cfg: RunConfig, data: Dataset, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        tc, mc = cfg.train, cfg.model
        self.loss_kind = tc.loss
        self.family = resolve_family(mc.family, data)
        torch.manual_seed(tc.seed)  # weight init
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(tc.seed)

        # data stays on the device for the whole run
        self.n_classes = data.n_classes
        self.x_train = torch.as_tensor(data.x_train, dtype=torch.float32, device=device)
        self.y_train = torch.as_tensor(data.y_train, dtype=torch.long, device=device)
        self.x_test = torch.as_tensor(data.x_test, dtype=torch.float32, device=device)
        self.y_test = torch.as_tensor(data.y_test, dtype=torch.long, device=device)
        if self.family == "dense":
            self.x_train = self.x_train.reshape(len(self.x_train), -1)
            self.x_test = self.x_test.reshape(len(self.x_test), -1)
        else:  # channels-last convolutions run about 1.5x faster on the CPU (DESIGN.md)
            self.x_train = self.x_train.contiguous(memory_format=torch.channels_last)
            self.x_test = self.x_test.contiguous(memory_format=torch.channels_last)
        self.n = len(self.y_train)
        self.counts = np.bincount(data.y_train, minlength=self.n_classes)
        n_max = int(self.counts.max())
        # minority classes: smaller than the largest (Section 3); in label order
        self.minority = [int(c) for c in range(self.n_classes) if 0 < self.counts[c] < n_max]
        self.batch = tc.batch_size
        # the rows M (and F) fit on real data; oversampling-before-training methods replace them
        self.fit_x, self.fit_y = self.x_train, self.y_train
        self.iters_per_phase = max(1, math.ceil(self.n / self.batch))

        # F and M
        if self.family == "conv":
            self.F: nn.Module = ConvF(tuple(data.image_shape), mc.feat_dim).to(device, memory_format=torch.channels_last)
        else:
            self.F = FlattenF(self.x_train.shape[1]).to(device)
        self.feat_dim = self.F.out_dim
        self.M = Classifier(self.feat_dim, self.n_classes, mc.hidden).to(device)
        self.opt_m = adam([("M", self.M.parameters(), tc.lr_m)], tc.beta1)
        fm_params = list(self.F.parameters()) + (list(self.M.parameters()) if self.fm_trains_m else [])
        self.opt_fm = adam([("M", fm_params, tc.lr_m)], tc.beta1) if self.family == "conv" else None

        self.step_count = 0
        self._perm: torch.Tensor | None = None
        self._feats: torch.Tensor | None = None   # F(x_train), refreshed at each GAMO phase start
        self._feats_step = -1
        self._feats_at = 0                        # the step at which _feats were computed
        self._f_updates = 0                       # counts F updates, to know when features are stale
        self._split_feats: dict[str, tuple[int, torch.Tensor]] = {}   # "test"/"val" -> (F version, F(x))

    # ------------------------------------------------------------------ schedule
    def schedule(self) -> list[tuple[str, int]]:
        """Phases of one outer epoch and their lengths in iterations."""
        if self.family == "conv":
            return [("fm", self.iters_per_phase)] + self._extra_phases()
        return [("m", self.iters_per_phase)] if not self._extra_phases() else self._extra_phases()

    def _extra_phases(self) -> list[tuple[str, int]]:
        return []

    @property
    def steps_per_epoch(self) -> int:
        return sum(n for _, n in self.schedule())

    def phase_at(self, step: int) -> tuple[str, int]:
        """(phase name, position within the phase) of iteration ``step`` (0-based)."""
        pos = step % self.steps_per_epoch
        for name, length in self.schedule():
            if pos < length:
                return name, pos
            pos -= length
        raise AssertionError("unreachable")

    @property
    def phase(self) -> str:
        return self.phase_at(self.step_count)[0]

    @property
    def epoch(self) -> float:
        return self.step_count / self.steps_per_epoch

    # ------------------------------------------------------------------ stepping
    def step(self, players: set[str] | None = None) -> dict[str, torch.Tensor | float]:
        """Advance one iteration; returns the losses: 0-d tensors, not synced to the host.

        ``players`` restricts a GAMO iteration to some of "M", "D", "G" (teaching mode).
        """
        phase, pos = self.phase_at(self.step_count)
        if phase == "fm":
            losses = self._step_fm(pos)
        elif phase == "m":
            losses = self._step_m()
        else:
            losses = self._step_phase(phase, players)
        self.step_count += 1
        return losses

    def _step_phase(self, phase: str, players: set[str] | None) -> dict[str, torch.Tensor]:
        raise ConfigError(f"method {self.name}: unknown phase {phase}")

    def real_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """M's loss on real labelled data (cost-sensitive methods override this)."""
        return classifier_loss(logits, y, self.loss_kind)

    def _real_batch(self) -> torch.Tensor:
        return torch.randint(self.n, (self.batch,), generator=self.gen, device=self.device)

    def _step_m(self) -> dict[str, torch.Tensor]:
        # train classifier on real data (fit_x: the training set, or a set balanced before training)
        idx = torch.randint(len(self.fit_y), (self.batch,), generator=self.gen, device=self.device)
        loss = self.real_loss(self.M(self.fit_x[idx]), self.fit_y[idx])
        self.opt_m.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_m.step()
        return {"M": loss.detach()}

    def _step_fm(self, pos: int) -> dict[str, torch.Tensor]:
        # train the feature extractor (and, unless fm_trains_m is False, the classifier) on real
        # images, one shuffled epoch
        if pos == 0 or self._perm is None:
            self._perm = torch.randperm(len(self.fit_y), generator=self.gen, device=self.device)
        idx = self._perm[pos * self.batch:(pos + 1) * self.batch]
        self.F.train()
        loss = self.real_loss(self.M(self.F(self.fit_x[idx])), self.fit_y[idx])
        self.opt_fm.zero_grad(set_to_none=True)
        loss.backward(inputs=self.opt_fm.param_groups[0]["params"])   # M held fixed where it is not there
        self.opt_fm.step()
        self._f_updates += 1
        return {"M": loss.detach()}

    # ------------------------------------------------------------------ features and evaluation
    @torch.no_grad()
    def features(self, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """F(x) in evaluation mode, in chunks (B, d).

        On a CPU with 2 or more torch threads the chunks are split between two Python threads,
        each running torch with one thread (torch's own threads gain little on F's small
        convolutions, and threads of their own inside the two slowed the GAMO phase after the
        pass), and F runs as ``ConvF.infer`` (activations in place). Fashion-MNIST's training set:
        0.56-0.58 s on 2 cores (``bench/results/epoch_time.md``), against 0.92-1.25 s in one
        thread pool. Every chunk is computed with one torch thread either way, so the features do
        not depend on the thread count.
        """
        if self.family == "dense":
            return x
        self.F.eval()
        f = getattr(self.F, "infer", self.F)      # ConvF: activations in place
        starts = list(range(0, len(x), chunk))
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            def part(ss: list[int]) -> list[torch.Tensor]:
                with torch.no_grad():
                    return [f(x[i:i + chunk]) for i in ss]
            # torch's thread count is process-wide: one pass at a time, so that two runs in
            # threads of one process cannot restore each other's 1 (a pass that finds 1 set
            # takes the one-by-one path below, with the same one-thread results)
            with _FEATURES_LOCK:
                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    if len(starts) > 1:
                        with ThreadPoolExecutor(max_workers=2) as pool:
                            even, odd = pool.map(part, [starts[0::2], starts[1::2]])
                        pieces: list[torch.Tensor] = [None] * len(starts)   # type: ignore[list-item]
                        pieces[0::2], pieces[1::2] = even, odd
                    else:
                        pieces = part(starts)
                finally:
                    torch.set_num_threads(threads)
        else:
            pieces = [f(x[i:i + chunk]) for i in starts]
        out = torch.cat(pieces)
        self.F.train()
        return out

    def train_features(self) -> torch.Tensor:
        """F(x_train) as of the last F update (recomputed lazily: Alg. 1 between the phases)."""
        if self.family == "dense":
            return self.x_train
        if self._feats is None or self._feats_step != self._f_updates:
            self._feats = self.features(self.x_train)
            self._feats_step = self._f_updates
            self._feats_at = self.step_count
        return self._feats

    def last_features(self) -> torch.Tensor:
        """F(x_train) as last computed (at step :attr:`features_step`), without a forward pass
        unless none was made yet; the dense family's rows.

        In the conv family F trains in its own phase while G, M and D wait, and the features are
        recomputed where they are used (:meth:`train_features`: at the next GAMO phase's start).
        These are the features of the last F-frozen phase: what G combined and M and D judged
        there. The app shows the generated points in them (``generated()``), so that a snapshot
        taken while F trains costs no pass over the training set (2.3 s on Fashion-MNIST against
        12 ms an F iteration).
        """
        if self.family == "dense":
            return self.x_train
        if self._feats is None:
            return self.train_features()
        return self._feats

    @property
    def features_step(self) -> int:
        """The step whose F :meth:`last_features` are of (0 for the dense family)."""
        return 0 if self.family == "dense" or self._feats is None else int(self._feats_at)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, chunk: int = 2048, features: bool = False) -> torch.Tensor:
        """M's predicted classes for inputs (or for features when ``features``)."""
        self.M.eval()
        out = []
        for i in range(0, len(x), chunk):
            part = x[i:i + chunk]
            out.append(self.M(part if features else self.features(part)).argmax(dim=1))
        self.M.train()
        return torch.cat(out)

    def set_validation(self, x: np.ndarray, y: np.ndarray) -> None:
        """Hold the validation split on the device (``make_method`` passes ``Dataset.x_val``),
        laid out like the test split; an empty one leaves :attr:`has_val` False."""
        xv = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if self.family == "dense":
            xv = xv.reshape(len(xv), int(np.prod(xv.shape[1:])))   # (0, d) for an empty split too
        elif len(xv):
            xv = xv.contiguous(memory_format=torch.channels_last)
        self.x_val, self.y_val = xv, torch.as_tensor(y, dtype=torch.long, device=self.device)
        self._split_feats.pop("val", None)

    @property
    def has_val(self) -> bool:
        """Whether :meth:`evaluate` can score the ``"val"`` split (a non-empty one was set)."""
        return getattr(self, "y_val", None) is not None and len(self.y_val) > 0

    def _split_features(self, split: str, x: torch.Tensor) -> torch.Tensor:
        """F(x) of a held-out split, kept until F changes: while F is frozen (a GAMO phase) each
        snapshot's scores then cost M alone (F on Fashion-MNIST's 1,000 test images: 0.1 s, most
        of a snapshot). The same chunks as ``predict(x)``, so the same numbers."""
        if self.family == "dense":
            return x
        hit = self._split_feats.get(split)
        if hit is None or hit[0] != self._f_updates or len(hit[1]) != len(x):
            feats = torch.cat([self.features(x[i:i + 2048]) for i in range(0, len(x), 2048)]) if len(x) else \
                self.features(x)
            hit = self._split_feats[split] = (self._f_updates, feats)
        return hit[1]

    def evaluate(self, split: str) -> Metrics:
        """M's scores on ``"train"``, ``"val"`` (the validation split; see :meth:`set_validation`)
        or ``"test"``."""
        if split == "train":
            pred = self.predict(self.train_features(), features=True)
            y = self.y_train
        elif split == "val":
            if not self.has_val:
                raise ValueError("evaluate('val'): this method has no validation split (Dataset.x_val is empty)")
            pred, y = self.predict(self._split_features("val", self.x_val), features=True), self.y_val
        elif split == "test":
            pred, y = self.predict(self._split_features("test", self.x_test), features=True), self.y_test
        else:
            raise ValueError(f"evaluate: split must be 'train', 'val' or 'test' (got {split!r})")
        return metrics_from_confusion(confusion_matrix(y, pred, self.n_classes).cpu().numpy())

    @torch.no_grad()
    def m_proba(self, feats: torch.Tensor) -> torch.Tensor:
        self.M.eval()
        p = torch.softmax(self.M(feats), dim=1)
        self.M.train()
        return p

    def d_real(self, feats: torch.Tensor) -> torch.Tensor | None:
        """D's real score (n, K) of each point for every class; None for methods without D."""
        return None

    def generated(self) -> Generated | None:
        """The fixed-noise batch of generated points (None for methods that generate nothing)."""
        return None

    def balancing_samples(self, seed: int) -> dict[str, np.ndarray] | None:
        """Generated points that would balance the training set: n_c - n_i per minority class."""
        return None

    # ------------------------------------------------------------------ live settings and state
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {"M": self.opt_m}
        if self.opt_fm is not None:
            opts["FM"] = self.opt_fm
        return opts

    def modules(self) -> dict[str, nn.Module]:
        return {"F": self.F, "M": self.M}

    def set_lr(self, player: str, lr: float) -> None:
        """Change a player's learning rate live ("M" also covers F in the conv family's F+M phase)."""
        for opt in self.optimizers().values():
            for group in opt.param_groups:
                if group.get("player") == player:
                    group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume; loadable with ``torch.load(weights_only=True)``."""
        return {
            "step": self.step_count,
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "rng": self.gen.get_state(),
            "perm": self._perm.cpu() if self._perm is not None else torch.zeros(0, dtype=torch.long),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        self.gen.set_state(state["rng"].cpu())
        self.step_count = int(state["step"])
        perm = state.get("perm")
        self._perm = perm.to(self.device) if perm is not None and perm.numel() else None
        self._load_extra_state(state.get("extra", {}))
        self._feats, self._f_updates = None, self._f_updates + 1

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        pass
