"""A run handle's snapshot history with bounded memory: :class:`SnapshotHistory`.

A live run in the app keeps its snapshots in the server for the timeline, the curves and the
trails. A snapshot is 30-60 KiB for a two-class toy run (M's and D's maps on the 60 x 60 grid),
up to ~300 KiB for more classes, and ~300 KiB for a Fashion-MNIST conv run (144 generated points
in F's 512 features); a history of 1,000 of them was up to 300 MiB per run. The history now
keeps

* the newest snapshots dense: the last ``recent`` (64), or fewer where they would take more than
  half of ``max_bytes``;
* older ones thinned by step: of the older snapshots only the first of each block of ``stride``
  steps stays, ``stride`` a power of two doubled whenever the history holds more than
  ``max_count`` snapshots or more than ``max_bytes`` bytes.

Thinning is by step value, not by position, so runs that snapshot the same steps (the Toy Lab's
runs in lockstep) keep the same steps, and a coarser stride keeps a subset of a finer one's; the
first snapshot (step 0) always stays, so the timeline and the curves still span the whole run,
coarser where it is older. ``len``, iteration, ``[-1]`` and ``append`` behave as the ``deque``
this replaces.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gamo.snapshot import Snapshot

__all__ = ["SnapshotHistory", "snapshot_nbytes", "DEFAULT_MAX_BYTES", "RECENT"]

DEFAULT_MAX_BYTES = 16 * 2**20
"""Snapshot bytes a history keeps at most (per run; the arrays, which are nearly all of it)."""
RECENT = 64
"""The newest snapshots kept dense (fewer where they would take more than half the bytes)."""


def snapshot_nbytes(s: Snapshot) -> int:
    """About the memory a snapshot holds: its arrays' bytes plus 2 KiB for the rest."""
    n = 2048
    for part in (s.generated, s.grid):
        if part is None:
            continue
        for v in vars(part).values():
            if isinstance(v, np.ndarray):
                n += v.nbytes
    for m in (s.test, s.train, s.val):
        if m is not None and isinstance(m.confusion, np.ndarray):
            n += m.confusion.nbytes
    return n


class SnapshotHistory:
    """Snapshots in step order, at most ``max_count`` of them and about ``max_bytes`` bytes
    (see the module docstring).

    Parameters
    ----------
    max_count : int
        Most snapshots kept (the handles' ``history``).
    max_bytes : int, optional
        Most bytes kept (:data:`DEFAULT_MAX_BYTES` when None).
    recent : int
        Newest snapshots kept dense.
    """

    def __init__(self, max_count: int, max_bytes: int | None = None, recent: int = RECENT) -> None:
        self.max_count = max(1, int(max_count))
        self.max_bytes = int(DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)
        self.recent = max(1, min(int(recent), self.max_count))
        self.stride = 1
        self._items: list[tuple[Snapshot, int]] = []
        self._bytes = 0

    # the deque's interface -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[Snapshot]:
        return (s for s, _ in list(self._items))

    def __getitem__(self, i: int) -> Snapshot:
        return self._items[i][0]

    @property
    def nbytes(self) -> int:
        return self._bytes

    def append(self, snap: Snapshot) -> None:
        if self.max_count == 1:
            self._items, self._bytes = [], 0
        size = snapshot_nbytes(snap)
        self._items.append((snap, size))
        self._bytes += size
        if self.stride > 1:      # snapshots that left the dense window join the thinned part
            self._filter(len(self._items) - self._recent_count())
        while len(self._items) > self.max_count or self._bytes > self.max_bytes:
            if not self._thin():
                self._bytes -= self._items.pop(0)[1]    # nothing old left to thin: drop the oldest

    # thinning --------------------------------------------------------------------------------
    def _recent_count(self) -> int:
        """How many of the newest snapshots stay dense: ``recent``, fewer where they would take
        more than half the bytes (at least 1)."""
        n, total = 0, 0
        for _, size in reversed(self._items):
            if n >= self.recent or (n and total + size > self.max_bytes // 2):
                break
            n, total = n + 1, total + size
        return max(1, n)

    def _filter(self, old: int) -> int:
        """Keep, of the ``old`` oldest snapshots, the first of each block of ``stride`` steps;
        how many were dropped."""
        kept, seen, removed = [], None, 0
        for item in self._items[:old]:
            b = item[0].step // self.stride
            if b == seen:
                removed += item[1]
                continue
            seen = b
            kept.append(item)
        if len(kept) < old:
            self._items[:old] = kept
            self._bytes -= removed
        return old - len(kept)

    def _thin(self) -> bool:
        """Double the stride (as often as needed) until the older part shrinks; False when it
        cannot (fewer than two older snapshots)."""
        old = len(self._items) - self._recent_count()
        if old < 2:
            return False
        while True:
            self.stride *= 2
            if self._filter(old):
                return True
