"""A user's own table: CSV (with a header) or NPZ, numeric features plus a label column."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from gamo.data.split import Source
from gamo.errors import DataError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""Largest table file accepted (uploads and ``table:PATH``)."""

MAX_DECOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024
"""Largest table once read: its feature values at 8 bytes each (the float64 working copy) plus
its labels. NPZ arrays are checked against it from their headers, before they are decompressed
(a small compressed file can inflate to gigabytes)."""

TABLE_EXTENSIONS = (".csv", ".npz")

_F32_MAX = float(np.finfo(np.float32).max)
_NPZ_FIX = "save it with numpy.savez(path, x=features, label=labels) (no object arrays)"


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
        # whole numbers become integer labels, unless too large for int64 to hold them exactly
        if np.all(values == np.round(values)) and np.all(np.abs(values) <= 2.0**53):
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


def _check_float32_range(x: np.ndarray, filename: str, columns: list[str]) -> None:
    """Finite values beyond float32's range would become inf when the features are cast."""
    big = np.abs(x) > _F32_MAX
    if big.any():
        cols = [columns[j] for j in np.flatnonzero(big.any(axis=0))]
        shown = ", ".join(cols[:10]) + (f" and {len(cols) - 10} more" if len(cols) > 10 else "")
        raise DataError(
            f"{filename!r}: {int(big.sum())} feature values (up to {float(np.abs(x).max()):.3g}) are beyond "
            f"float32's range (about 3.4e38), in columns {shown}: rescale those columns, e.g. divide "
            f"them by a power of 10"
        )


def _read_csv(raw: bytes, filename: str, label_column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import pandas as pd

    if not raw.strip():
        raise DataError(f"{filename!r} is empty: save the table as comma-separated text with a header "
                        f"row and one row per sample")
    try:
        df = pd.read_csv(io.BytesIO(raw))
        # pandas renames a repeated header (a, a -> a, a.1): the wrong column could become the label
        header = pd.read_csv(io.BytesIO(raw), header=None, nrows=1, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"could not parse {filename!r} as CSV ({first}): save it as comma-separated text "
            f"with a header row"
        ) from None
    names = [str(c).strip() for c in header.iloc[0]] if len(header) else []
    repeated = sorted({c for c in names if c and names.count(c) > 1})
    if repeated:
        raise DataError(
            f"{filename!r}: the header repeats the column name(s) {', '.join(map(repr, repeated))}: "
            f"give every column a different name"
        )
    if len(df) == 0:
        raise DataError(f"{filename!r} has a header but no rows: add one row per sample below the header")
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


def _npz_bad(filename: str, why: str) -> DataError:
    return DataError(f"could not read {filename!r} as NPZ ({why}): {_NPZ_FIX}")


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an .npy member declares, read without decompressing its data."""
    fmt = np.lib.format
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    return tuple(int(n) for n in shape), np.dtype(dtype)


def _read_npz(raw: bytes, filename: str, label_column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if raw[:6] == b"\x93NUMPY":
        raise _npz_bad(filename, "a single .npy array, not an .npz archive")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        heads = {k: _npy_header(zf, i) for k, i in members.items()}
    except zipfile.BadZipFile:
        raise _npz_bad(filename, "not a valid NPZ file: not a zip archive of .npy arrays") from None
    except Exception as e:  # a damaged member or header
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _npz_bad(filename, first) from None
    if not members:
        raise _npz_bad(filename, "not a valid NPZ file: a zip archive without .npy arrays")
    names = sorted(members)
    xkey = "x" if "x" in members else "X" if "X" in members else None
    if xkey is None:
        raise DataError(f"{filename!r} has no feature array 'x' (or 'X'); its arrays are: {', '.join(names)}")
    if label_column in members:
        ykey = label_column
    elif label_column == "label" and "y" in members:
        ykey = "y"
    else:
        extra = " (or 'y')" if label_column == "label" else ""
        raise DataError(
            f"{filename!r} has no label array {label_column!r}{extra}; its arrays are: "
            f"{', '.join(names)}. Choose one of them as the label column"
        )
    (xshape, xdtype), (yshape, ydtype) = heads[xkey], heads[ykey]
    for key, dtype in ((xkey, xdtype), (ykey, ydtype)):
        if dtype.hasobject:
            raise _npz_bad(filename, f"array {key!r} holds pickled (object) data, which is never loaded")
    if xdtype.kind not in "biuf":
        raise DataError(
            f"{filename!r}: feature array {xkey!r} is not numeric (dtype {xdtype}): store numbers"
        )
    if len(xshape) == 0:
        raise DataError(f"{filename!r}: feature array {xkey!r} is a scalar: store one row per sample")
    need = int(np.prod(xshape, dtype=object)) * 8 + int(np.prod(yshape, dtype=object)) * ydtype.itemsize
    if need > MAX_DECOMPRESSED_BYTES:
        raise DataError(
            f"{filename!r} holds {xkey!r} of shape {xshape} ({xdtype}), {_mb(need)} once read, over the "
            f"{_mb(MAX_DECOMPRESSED_BYTES)} limit: subsample the rows or drop columns first"
        )
    try:
        arrays = {}
        for key in (xkey, ykey):
            with zf.open(members[key]) as f:
                arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise _npz_bad(filename, first) from None
    x, labels = arrays[xkey], arrays[ykey].reshape(-1)
    n, d = x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))
    if n == 0:
        raise DataError(f"{filename!r} has no rows (feature array {xkey!r} has shape {x.shape}): add data")
    if d == 0:
        raise DataError(f"{filename!r}: feature array {xkey!r} has no columns (shape {x.shape}): store "
                        f"at least one feature per row")
    x = x.reshape(n, d).astype(np.float64)
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
        For a file over :data:`MAX_UPLOAD_BYTES` (or an NPZ whose arrays would take over
        :data:`MAX_DECOMPRESSED_BYTES` once read), not CSV/NPZ, unparsable, empty or without
        rows, with a repeated CSV column name, without the label column, with non-numeric
        features, NaN/inf features or features beyond float32's range, a single class, or a
        class with fewer than 2 rows. The message says how to fix it.
    """
    _check_size(len(raw), filename)
    ext = _check_kind(filename)
    x, labels, columns = (_read_csv if ext == ".csv" else _read_npz)(raw, filename, label_column)
    if x.shape[0] == 0:
        raise DataError(f"{filename!r} has no rows: add data")
    _check_finite(x, filename, columns)
    _check_float32_range(x, filename, columns)    # before the cast, which would make them inf
    x32 = np.ascontiguousarray(x, dtype=np.float32)
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
