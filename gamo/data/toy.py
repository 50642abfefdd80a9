"""Toy 2D datasets generated with numpy, roughly within [-3, 3] for plotting.

Every generator makes exactly ``n`` points of every class (the caller asks for
``n_per_class + n_test_per_class``) so that the test split and the profile can subsample them.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gamo.errors import DataError

TOYS = ("moons", "circles", "blobs", "spirals", "nonconvex")
"""Names accepted after ``toy:``."""


def _moons(n: int, k: int, noise: float, rng: np.random.Generator) -> list[np.ndarray]:
    t0 = rng.uniform(0.0, np.pi, n)
    t1 = rng.uniform(0.0, np.pi, n)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    scale, centre = 1.5, np.array([0.5, 0.25])
    return [(p + rng.normal(0.0, noise, p.shape) - centre) * scale for p in (upper, lower)]


def _circles(n: int, k: int, noise: float, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for radius in (2.0, 1.0):  # class 0 outer ring, class 1 inner ring
        t = rng.uniform(0.0, 2.0 * np.pi, n)
        p = radius * np.stack([np.cos(t), np.sin(t)], axis=1)
        out.append(p + rng.normal(0.0, 2.0 * noise, p.shape))
    return out


def _blobs(n: int, k: int, noise: float, rng: np.random.Generator) -> list[np.ndarray]:
    std = 0.2 + 2.0 * noise
    out = []
    for c in range(k):
        a = 2.0 * np.pi * c / k
        centre = 2.0 * np.array([np.cos(a), np.sin(a)])
        out.append(centre + rng.normal(0.0, std, (n, 2)))
    return out


def _spirals(n: int, k: int, noise: float, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for c in range(k):
        t = rng.uniform(0.0, 1.0, n)
        r = 0.2 + 2.4 * t
        a = 2.0 * np.pi * c / k + 1.5 * np.pi * t
        p = r[:, None] * np.stack([np.cos(a), np.sin(a)], axis=1)
        out.append(p + rng.normal(0.0, 2.0 * noise, p.shape))
    return out


def _nonconvex(n: int, k: int, noise: float, rng: np.random.Generator) -> list[np.ndarray]:
    # like the paper's Figure 1: a broad majority blob, and a minority "C" (a ring arc around
    # it) whose convex hull holds most of the majority: convex combinations of minority points
    # land in majority territory unless something (D) keeps them on the arc.
    majority = rng.normal(0.0, 0.6, (n, 2))
    t = rng.uniform(0.3 * np.pi, 1.7 * np.pi, n)  # opening towards +x
    r = 2.0 + rng.normal(0.0, 1.5 * noise, n)
    minority = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    minority = minority + rng.normal(0.0, 0.5 * noise, minority.shape)
    return [majority, minority]


def _generators() -> dict[str, tuple[Callable[..., list[np.ndarray]], bool]]:
    # name -> (generator, uses cfg.n_classes)
    return {
        "moons": (_moons, False),
        "circles": (_circles, False),
        "blobs": (_blobs, True),
        "spirals": (_spirals, True),
        "nonconvex": (_nonconvex, False),
    }


def make_toy(
    name: str, n: int, n_classes: int, noise: float, seed: int | np.random.SeedSequence
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Generate a toy 2D dataset with exactly ``n`` points per class.

    Parameters
    ----------
    name : str
        One of :data:`TOYS` (without the ``toy:`` prefix).
    n : int
        Points per class.
    n_classes : int
        Number of classes for ``blobs`` and ``spirals``; the others always have 2.
    noise : float
        Jitter level (0 gives noiseless shapes; blobs keep a small spread).
    seed : int or np.random.SeedSequence
        Seed of the generator.

    Returns
    -------
    x : np.ndarray
        float32, shape ``(n * K, 2)``, class by class.
    y : np.ndarray
        int64 labels, shape ``(n * K,)``.
    class_names : tuple of str
        ``("class 0", "class 1", ...)``.

    Raises
    ------
    DataError
        For an unknown toy name.
    """
    gens = _generators()
    if name not in gens:
        raise DataError(
            f"unknown toy dataset 'toy:{name}': choose one of {', '.join('toy:' + t for t in TOYS)}"
        )
    gen, free_k = gens[name]
    k = n_classes if free_k else 2
    rng = np.random.default_rng(seed)
    parts = gen(n, k, float(noise), rng)
    x = np.concatenate(parts).astype(np.float32)
    y = np.repeat(np.arange(k, dtype=np.int64), n)
    return x, y, tuple(f"class {i}" for i in range(k))
