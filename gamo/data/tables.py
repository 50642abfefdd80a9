"""A user's own table: CSV (with a header) or NPZ, numeric features plus a label column."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from gamo.data.split import Source
from gamo.errors import DataError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""Largest table file accepted (uploads and ``table:PATH``)."""

TABLE_EXTENSIONS = (".csv", ".npz")


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _check_kind(filename: str) -> str:
    ext = Path(filename).suffix.lower()
    if ext not in TABLE_EXTENSIONS:
        raise DataError(
            f"{filename!r} is not a CSV or NPZ file (extension {ext or 'missing'!r}): save the "
            f"table as .csv with a header row, or as .npz with arrays 'x' and 'label'"
        )
    return ext


def _check_size(n_bytes: int, filename: str) -> None:
    if n_bytes > MAX_UPLOAD_BYTES:
        raise DataError(
            f"{filename!r} is {_mb(n_bytes)}, over the {_mb(MAX_UPLOAD_BYTES)} limit: "
            f"subsample the rows or drop columns first"
        )


def _encode_labels(values: np.ndarray, filename: str, label_column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map sorted unique labels to 0..K-1; check there are >= 2 classes of >= 2 members."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(
                f"{filename!r}: label column {label_column!r} has {int(bad.sum())} empty/NaN/inf "
                f"values: fill or drop those rows"
            )
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    elif values.dtype.kind == "O":
        missing = [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise DataError(
                f"{filename!r}: label column {label_column!r} has {len(missing)} empty values "
                f"(first at row {missing[0]}): fill or drop those rows"
            )
        values = values.astype(str)
    uniq, inv = np.unique(values, return_inverse=True)
    names = tuple(str(u) for u in uniq)
    if len(uniq) < 2:
        only = f" ({names[0]!r})" if names else ""
        raise DataError(
            f"{filename!r}: label column {label_column!r} has a single class{only}: a classifier "
            f"needs at least 2 classes; check the label column"
        )
    counts = np.bincount(inv.reshape(-1), minlength=len(uniq))
    for name, c in zip(names, counts):
        if c < 2:
            raise DataError(
                f"{filename!r}: class {name!r} has only {int(c)} row; every class needs at least 2 "
                f"(plus its test split): add rows of that class or drop it"
            )
    return inv.reshape(-1).astype(np.int64), names


def _check_finite(x: np.ndarray, filename: str, columns: list[str]) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        cols = [columns[j] for j in np.flatnonzero(bad.any(axis=0))]
        shown = ", ".join(cols[:10]) + (f" and {len(cols) - 10} more" if len(cols) > 10 else "")
        raise DataError(
            f"{filename!r}: features contain {int(bad.sum())} NaN/inf (or empty, or too large for "
            f"float32) values in {int(bad.any(axis=1).sum())} rows, columns {shown}: fill or drop "
            f"those rows"
        )


def _read_csv(raw: bytes, filename: str, label_column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import pandas as pd

    try:
        df = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"could not parse {filename!r} as CSV ({first}): save it as comma-separated text "
            f"with a header row"
        ) from None
    columns = [str(c) for c in df.columns]
    if label_column not in columns:
        raise DataError(
            f"{filename!r} has no label column {label_column!r}; its columns are: "
            f"{', '.join(columns)}. Choose one of them as the label column"
        )
    df.columns = columns
    labels = df[label_column].to_numpy()
    feats = df.drop(columns=[label_column])
    if feats.shape[1] == 0:
        raise DataError(f"{filename!r}: no feature columns besides the label {label_column!r}: add numeric columns")
    non_numeric = [c for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if non_numeric:
        raise DataError(
            f"{filename!r}: feature columns must be numeric, but these are not: "
            f"{', '.join(non_numeric)}. Encode them as numbers or drop them"
        )
    x = feats.to_numpy(dtype=np.float64)
    return x, labels, list(feats.columns)


def _read_npz(raw: bytes, filename: str, label_column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        z = np.load(io.BytesIO(raw), allow_pickle=False)
        if not hasattr(z, "files"):
            raise ValueError("a single .npy array, not an .npz archive")
        arrays = {k: z[k] for k in z.files}
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"could not read {filename!r} as NPZ ({first}): save it with numpy.savez(path, "
            f"x=features, label=labels) (no object arrays)"
        ) from None
    names = sorted(arrays)
    xkey = "x" if "x" in arrays else "X" if "X" in arrays else None
    if xkey is None:
        raise DataError(f"{filename!r} has no feature array 'x' (or 'X'); its arrays are: {', '.join(names)}")
    if label_column in arrays:
        ykey = label_column
    elif label_column == "label" and "y" in arrays:
        ykey = "y"
    else:
        extra = " (or 'y')" if label_column == "label" else ""
        raise DataError(
            f"{filename!r} has no label array {label_column!r}{extra}; its arrays are: "
            f"{', '.join(names)}. Choose one of them as the label column"
        )
    x, labels = arrays[xkey], arrays[ykey].reshape(-1)
    if x.dtype.kind not in "biuf":
        raise DataError(
            f"{filename!r}: feature array {xkey!r} is not numeric (dtype {x.dtype}): store numbers"
        )
    if x.ndim == 0:
        raise DataError(f"{filename!r}: feature array {xkey!r} is a scalar: store one row per sample")
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if x.shape[0] != labels.shape[0]:
        raise DataError(
            f"{filename!r}: {x.shape[0]} feature rows but {labels.shape[0]} labels: they must match"
        )
    return x, labels, [f"{xkey}[{j}]" for j in range(x.shape[1])]


def load_table_bytes(raw: bytes, filename: str, label_column: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Parse a CSV or NPZ table from bytes (an upload, or a file's contents).

    Parameters
    ----------
    raw : bytes
        The file's contents.
    filename : str
        Its name; the extension (``.csv`` or ``.npz``) picks the parser.
    label_column : str
        CSV: the header of the label column. NPZ: the label array's name (``y`` is also accepted
        when this is ``"label"``). Features are every other column (CSV) or the array ``x``/``X``.

    Returns
    -------
    x : np.ndarray
        float32 features, shape ``(n, d)``.
    y : np.ndarray
        int64 labels in ``0..K-1`` (sorted unique original labels).
    class_names : tuple of str
        ``str`` of the original labels, in label order.

    Raises
    ------
    DataError
        For a file over :data:`MAX_UPLOAD_BYTES`, not CSV/NPZ, unparsable, without the label
        column, with non-numeric features, NaN/inf features, a single class, or a class with
        fewer than 2 rows. The message says how to fix it.
    """
    _check_size(len(raw), filename)
    ext = _check_kind(filename)
    x, labels, columns = (_read_csv if ext == ".csv" else _read_npz)(raw, filename, label_column)
    if x.shape[0] == 0:
        raise DataError(f"{filename!r} has no rows: add data")
    _check_finite(x, filename, columns)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    _check_finite(x32, filename, columns)  # values beyond float32's range become inf
    y, names = _encode_labels(labels, filename, label_column)
    return x32, y, names


def load_table_file(path: str, label_column: str) -> Source:
    """Read ``table:PATH`` into a single-pool :class:`~gamo.data.split.Source`.

    Parameters
    ----------
    path : str
        A ``.csv`` or ``.npz`` file (``~`` is expanded).
    label_column : str
        See :func:`load_table_bytes`.

    Returns
    -------
    Source
        kind ``"table"``, no separate test set.

    Raises
    ------
    DataError
        For a missing file and everything :func:`load_table_bytes` rejects.
    """
    if not path.strip():
        raise DataError("table: give a file path, e.g. 'table:data/my.csv'")
    p = Path(os.path.expanduser(path.strip()))
    if not p.is_file():
        raise DataError(f"table file not found: {str(p)!r}; check the path (relative to {os.getcwd()})")
    _check_size(p.stat().st_size, str(p))
    _check_kind(str(p))
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {str(p)!r}: {e}") from None
    x, y, names = load_table_bytes(raw, str(p), label_column)
    return Source(kind="table", x=x, y=y, class_names=names, meta={"file": str(p)})
