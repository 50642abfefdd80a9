"""Imbalance profiles: per-class training counts from a short spec string.

Accepted forms (``K`` classes, class 0 is the largest):

* ``none``: keep every available training point of each class.
* ``paper`` / ``paper:max=N``: the counts of the paper's Section 4 (MNIST family or
  CIFAR10/SVHN), optionally scaled so that the largest class has ``N`` points.
* ``exp:ir=R[,max=N]``: exponential long tail, ``n_i = round(N * R ** (-i / (K - 1)))``.
* ``step:ir=R[,minority=M][,max=N]``: the last ``M`` classes get ``round(N / R)``, the others ``N``.
* ``counts:n0,n1,...``: exactly ``K`` integers.

``N`` defaults to the smallest number of training points available in any class, so that the
default always fits. Rounding is half-up (``37.5 -> 38``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from gamo.errors import DataError

PAPER_COUNTS: dict[str, list[int]] = {
    "mnist": [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40],
    "cifar": [4500, 2000, 1000, 800, 600, 500, 400, 250, 150, 80],
}
"""The paper's per-class training counts (Section 4), in label order. A constant: never mutate
it (this module only ever reads copies of it)."""

PROFILE_FORMS = (
    "none",
    "paper",
    "paper:max=N",
    "exp:ir=R[,max=N]",
    "step:ir=R[,minority=M][,max=N]",
    "counts:n0,n1,...",
)
"""The accepted profile forms, for UIs and CLI help."""

_CIFAR_FAMILY = ("cifar10", "svhn")


def _accepted() -> str:
    return "accepted profiles: " + ", ".join(PROFILE_FORMS)


def _or_join(items: Sequence[str]) -> str:
    """``["a", "b", "c"] -> "a, b, or c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + ", or " + items[-1]


def _round(x: float) -> int:
    """Round half up (``37.5 -> 38``), unlike Python's banker's rounding."""
    return int(math.floor(x + 0.5))


def paper_family(dataset: str) -> str:
    """Which paper count list a dataset uses: ``"cifar"`` for cifar10/svhn, else ``"mnist"``.

    Parameters
    ----------
    dataset : str
        The dataset spec, e.g. ``"svhn"`` or ``"toy:blobs"``.

    Returns
    -------
    str
        A key of :data:`PAPER_COUNTS`.
    """
    return "cifar" if dataset.strip().lower() in _CIFAR_FAMILY else "mnist"


def _parse_kv(spec: str, body: str, allowed: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in body.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise DataError(f"profile {spec!r}: expected key=value, got {part!r}; {_accepted()}")
        key, value = (s.strip() for s in part.split("=", 1))
        key = key.lower()
        if key not in allowed:
            raise DataError(
                f"profile {spec!r}: unknown key {key!r} (this form takes {', '.join(allowed)}); "
                f"{_accepted()}"
            )
        if key in out:
            raise DataError(f"profile {spec!r}: {key!r} given twice; {_accepted()}")
        out[key] = value
    return out


def _number(spec: str, key: str, value: str, kind: type) -> float | int:
    try:
        v = kind(value)
    except ValueError:
        raise DataError(
            f"profile {spec!r}: {key}={value!r} is not a{'n integer' if kind is int else ' number'}; "
            f"{_accepted()}"
        ) from None
    if not math.isfinite(v):
        raise DataError(f"profile {spec!r}: {key} must be finite; {_accepted()}")
    return v


def _parse(spec: str, n_classes: int, dataset: str) -> tuple[str, Callable[[int], list[int]] | None,
                                                              int | None, list[int] | None]:
    """Return (form, build(N) -> counts, N given or None, fixed counts or None)."""
    text = spec.strip()
    form, _, body = text.partition(":")
    form = form.strip().lower()
    K = n_classes

    if form == "none":
        if body.strip():
            raise DataError(f"profile {spec!r}: 'none' takes no parameters; {_accepted()}")
        return form, None, None, None

    if form == "paper":
        if K != 10:
            raise DataError(
                f"profile {spec!r}: 'paper' needs 10 classes but this dataset has {K}: "
                f"use exp:ir=R or step:ir=R instead"
            )
        base = list(PAPER_COUNTS[paper_family(dataset)])
        kv = _parse_kv(spec, body, ("max",))
        if "max" not in kv:
            return form, None, None, base
        n_max = int(_number(spec, "max", kv["max"], int))
        top = base[0]

        def build_paper(n: int) -> list[int]:
            return [max(2, _round(c * n / top)) for c in base]

        return form, build_paper, n_max, None

    if form in ("exp", "step"):
        allowed = ("ir", "max") if form == "exp" else ("ir", "minority", "max")
        kv = _parse_kv(spec, body, allowed)
        if "ir" not in kv:
            example = "exp:ir=10" if form == "exp" else "step:ir=10"
            raise DataError(f"profile {spec!r}: give the imbalance ratio, e.g. {example!r}; {_accepted()}")
        ir = float(_number(spec, "ir", kv["ir"], float))
        if ir < 1:
            raise DataError(f"profile {spec!r}: ir must be at least 1 (largest / smallest class), got {ir:g}")
        n_max = int(_number(spec, "max", kv["max"], int)) if "max" in kv else None
        if form == "exp":
            def build_exp(n: int) -> list[int]:
                return [_round(n * ir ** (-i / (K - 1))) for i in range(K)]

            return form, build_exp, n_max, None
        m = int(_number(spec, "minority", kv["minority"], int)) if "minority" in kv else max(1, K // 2)
        if not 1 <= m <= K - 1:
            raise DataError(
                f"profile {spec!r}: minority={m} must be between 1 and {K - 1} for {K} classes"
            )

        def build_step(n: int) -> list[int]:
            return [n] * (K - m) + [_round(n / ir)] * m

        return form, build_step, n_max, None

    if form == "counts":
        parts = [p.strip() for p in body.split(",") if p.strip()]
        if not parts:
            raise DataError(f"profile {spec!r}: give {K} counts, e.g. 'counts:{','.join(['100'] * K)}'")
        counts = [int(_number(spec, f"count {i}", p, int)) for i, p in enumerate(parts)]
        if len(counts) != K:
            raise DataError(
                f"profile {spec!r}: gives {len(counts)} counts but the dataset has {K} classes; "
                f"give exactly {K} integers in label order"
            )
        return form, None, None, counts

    raise DataError(f"unknown profile {spec!r}; {_accepted()}")


def _largest_fitting(build: Callable[[int], list[int]], avail: Sequence[int], hi: int) -> int | None:
    """Largest N <= hi whose counts all fit (counts grow with N), or None."""
    def fits(n: int) -> bool:
        c = build(n)
        return all(2 <= a <= b for a, b in zip(c, avail))

    lo, top = 1, max(1, hi)
    if not fits(top):
        # binary search the largest fitting N in [1, top)
        best = None
        while lo < top:
            mid = (lo + top) // 2
            if fits(mid):
                best, lo = mid, mid + 1
            else:
                top = mid
        return best
    return top


def parse_profile(
    spec: str,
    n_classes: int,
    n_available: list[int] | None,
    dataset: str,
    *,
    class_names: Sequence[str] | None = None,
    n_test_per_class: int | None = None,
) -> list[int] | None:
    """Turn a profile spec into per-class training counts.

    Parameters
    ----------
    spec : str
        One of the forms in :data:`PROFILE_FORMS` (see the module docstring).
    n_classes : int
        Number of classes ``K``.
    n_available : list of int or None
        Training points available per class (after the test split). When given, every count is
        checked against it and ``max`` defaults to ``min(n_available)``. When None, ``exp`` and
        ``step`` need an explicit ``max=N``.
    dataset : str
        The dataset spec; picks the paper count list (``cifar10``/``svhn`` vs the MNIST list).
    class_names : sequence of str, optional
        Used in error messages only.
    n_test_per_class : int, optional
        Used in error messages only (single-pool datasets, whose test split shrinks the pool).

    Returns
    -------
    list of int or None
        Counts in label order, or None for ``none`` (keep everything available).

    Raises
    ------
    DataError
        For an unparsable spec (the message lists the accepted forms), ``paper`` with a class
        count other than 10, a count below 2, or a count above what a class has available.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"profile: empty; {_accepted()}")
    if n_available is not None and len(n_available) != n_classes:
        raise DataError(f"profile {spec!r}: {len(n_available)} availability counts for {n_classes} classes")
    form, build, n_max, counts = _parse(spec, n_classes, dataset)
    if form == "none":
        return None

    if build is not None:
        if n_max is None:
            if n_available is None:
                raise DataError(f"profile {spec!r}: give max=N (the size of the largest class)")
            n_max = int(min(n_available))
        if n_max < 2:
            raise DataError(f"profile {spec!r}: max must be at least 2, got {n_max}")
        counts = build(n_max)

    assert counts is not None
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    for i, c in enumerate(counts):
        if c < 2:
            hint = "lower ir or raise max" if form in ("exp", "step") else "raise it"
            raise DataError(
                f"profile {spec!r} gives class {i} ({names[i]!r}) only {c} point{'' if c == 1 else 's'}; "
                f"every class needs at least 2: {hint}"
            )
    if n_available is None:
        return counts

    for i, (c, a) in enumerate(zip(counts, n_available)):
        if c <= a:
            continue
        where = (
            f"after the {n_test_per_class}-per-class test split"
            if n_test_per_class is not None else "for training"
        )
        fixes = ["lower the count"]
        if form == "paper":
            best = _largest_fitting(lambda n: [max(2, _round(x * n / counts[0])) for x in counts],
                                    n_available, counts[0])
            if best is not None and best >= 2:
                fixes.append(f"use profile 'paper:max={best}'")
        elif build is not None:
            best = _largest_fitting(build, n_available, n_max)
            if best is not None and best >= 2:
                head = spec.split(":", 1)[0].strip().lower()
                kv = [p.strip() for p in spec.split(":", 1)[1].split(",")
                      if p.strip() and not p.strip().lower().startswith("max")]
                fixes.append(f"use profile '{head}:{','.join(kv + [f'max={best}'])}'")
        if n_test_per_class is not None:
            fixes.append("reduce --test-per-class")
        raise DataError(
            f"profile asks {c} points of class {i} ({names[i]!r}) but only {a} are available "
            f"{where}: {_or_join(fixes)}"
        )
    return counts
