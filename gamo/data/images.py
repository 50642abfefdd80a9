"""Image datasets: scikit-learn digits, MNIST / Fashion-MNIST (own IDX reader or torchvision),
CIFAR10 and SVHN (torchvision). Loaders return a :class:`~gamo.data.split.Source` holding uint8
images ``(N, C, H, W)``; only the rows that are kept get converted to float32 in [-1, 1].
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from gamo.data.split import Source
from gamo.errors import DataError

FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
"""Where the Debian package ``dataset-fashion-mnist`` puts the IDX files."""

FASHION_MNIST_ENV = "GAMO_FASHION_MNIST_DIR"
"""Environment variable that replaces :data:`FASHION_MNIST_SYSTEM_DIR`."""

DIGIT_NAMES = tuple(str(i) for i in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The four IDX files of MNIST / Fashion-MNIST (each may also be gzip'ed, ``.gz``)."""

# IDX type code -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip'ed.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip is detected from its first bytes, not from the name.

    Returns
    -------
    np.ndarray
        The array with the file's shape, in native byte order (uint8 stays uint8).

    Raises
    ------
    DataError
        When the file cannot be read or is not a valid IDX file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {path}: {e}; replace the file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number): replace the file")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (incomplete IDX header): replace the file")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if len(raw) - header != n * dtype.itemsize:
        raise DataError(
            f"{path} has {len(raw) - header} data bytes but its header says {shape} "
            f"of {dtype.itemsize} byte(s) each: replace the file"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=n, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find_idx_dir(dirs: list[Path]) -> dict[str, Path] | None:
    """The four IDX files from the first folder that has all of them (plain or .gz)."""
    for d in dirs:
        found = {}
        for key, stem in IDX_FILES.items():
            for name in (stem, stem + ".gz"):
                if (d / name).is_file():
                    found[key] = d / name
                    break
        if len(found) == len(IDX_FILES):
            return found
    return None


def _from_idx(files: dict[str, Path], names: tuple[str, ...], source_name: str) -> Source:
    arrays = {k: read_idx(p) for k, p in files.items()}
    xs, ys = [], []
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataError(
                f"{files[split + '_images']}: expected images (N, H, W) and N labels, got "
                f"{x.shape} and {y.shape}: replace the files"
            )
        if y.size and (y.min() < 0 or y.max() >= len(names)):
            raise DataError(f"{files[split + '_labels']}: labels outside 0..{len(names) - 1}: replace the file")
        xs.append(np.ascontiguousarray(x.astype(np.uint8, copy=False)[:, None]))  # (N, 1, H, W)
        ys.append(y.astype(np.int64))
    return Source(
        kind="image", x=xs[0], y=ys[0], x_test=xs[1], y_test=ys[1], class_names=names,
        image_shape=tuple(xs[0].shape[1:]), meta={"files": str(files["train_images"].parent)},
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _torchvision(name: str, root: Path, download: bool):
    """Return (train, test) torchvision datasets; DataError on missing files or network failure."""
    where = {
        "mnist": f"put the IDX files in {root / 'MNIST' / 'raw'}",
        "fashion-mnist": f"put the IDX files in {root / 'FashionMNIST' / 'raw'}",
        "cifar10": f"put the folder cifar-10-batches-py in {root}",
        "svhn": f"put train_32x32.mat and test_32x32.mat in {root}",
    }[name]
    # where torchvision would look; checked first so a plain "not found" needs no torchvision import
    expected = {
        "mnist": root / "MNIST",
        "fashion-mnist": root / "FashionMNIST",
        "cifar10": root / "cifar-10-batches-py",
        "svhn": root / "train_32x32.mat",
    }[name]
    if not download and not expected.exists():
        raise DataError(f"{name} not found in {root}: {where}, or pass --download (needs internet)")
    try:
        import torchvision.datasets as tvd
    except Exception as e:  # pragma: no cover - depends on the install
        raise DataError(f"{name} needs torchvision, which failed to import ({_first_line(e)}): "
                        "install torchvision") from None
    cls = getattr(tvd, {"mnist": "MNIST", "fashion-mnist": "FashionMNIST",
                        "cifar10": "CIFAR10", "svhn": "SVHN"}[name])

    def kw(train: bool) -> dict:
        return {"split": "train" if train else "test"} if name == "svhn" else {"train": train}

    try:
        return tuple(cls(root=str(root), download=download, **kw(train)) for train in (True, False))
    except ImportError as e:  # e.g. SVHN needs scipy
        raise DataError(f"{name} needs a missing package ({_first_line(e)}): install it") from None
    except Exception as e:
        if not download:
            raise DataError(
                f"{name} not found in {root}: {where}, or pass --download (needs internet)"
            ) from None
        raise DataError(
            f"could not download {name} to {root} ({_first_line(e)}): check the internet "
            f"connection, or put the files there yourself"
        ) from None


def load_idx_family(name: str, data_root: str, download: bool) -> Source:
    """Load MNIST or Fashion-MNIST from IDX files when present, else through torchvision.

    Search order: for Fashion-MNIST ``$GAMO_FASHION_MNIST_DIR`` (or
    ``/usr/share/datasets/fashion-mnist``), then ``<root>/FashionMNIST/raw``; for MNIST
    ``<root>/MNIST/raw``. Then torchvision (which downloads when ``download`` is True).

    Parameters
    ----------
    name : str
        ``"mnist"`` or ``"fashion-mnist"``.
    data_root : str
        The torchvision data root (``~`` is expanded).
    download : bool
        Let torchvision download missing files.

    Returns
    -------
    Source
        Official train set as the pool, official test set apart; uint8 images (N, 1, 28, 28).

    Raises
    ------
    DataError
        When the files are missing (and download is off) or unreadable, or the download fails.
    """
    root = Path(os.path.expanduser(data_root))
    if name == "fashion-mnist":
        names = FASHION_NAMES
        dirs = [Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_SYSTEM_DIR),
                root / "FashionMNIST" / "raw"]
    else:
        names = DIGIT_NAMES
        dirs = [root / "MNIST" / "raw"]
    files = _find_idx_dir(dirs)
    if files is not None:
        return _from_idx(files, names, name)
    if name == "fashion-mnist" and not download:
        raise DataError(
            f"fashion-mnist not found in {', '.join(str(d) for d in dirs)}: install the Debian "
            f"package dataset-fashion-mnist, put the IDX files in {root / 'FashionMNIST' / 'raw'}, "
            f"or pass --download (needs internet)"
        )
    train, test = _torchvision(name, root, download)
    x = np.asarray(train.data, dtype=np.uint8)[:, None]
    xt = np.asarray(test.data, dtype=np.uint8)[:, None]
    return Source(
        kind="image", x=x, y=np.asarray(train.targets, dtype=np.int64),
        x_test=xt, y_test=np.asarray(test.targets, dtype=np.int64),
        class_names=names, image_shape=tuple(x.shape[1:]), meta={"files": str(root)},
    )


def load_torchvision_rgb(name: str, data_root: str, download: bool) -> Source:
    """Load CIFAR10 or SVHN through torchvision.

    Parameters
    ----------
    name : str
        ``"cifar10"`` or ``"svhn"``.
    data_root : str
        The torchvision data root (``~`` is expanded).
    download : bool
        Let torchvision download missing files.

    Returns
    -------
    Source
        Official train set as the pool, official test set apart; uint8 images (N, 3, 32, 32).

    Raises
    ------
    DataError
        When the files are missing (and download is off), or the download fails.
    """
    root = Path(os.path.expanduser(data_root))
    train, test = _torchvision(name, root, download)
    if name == "cifar10":
        x = np.ascontiguousarray(np.asarray(train.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        xt = np.ascontiguousarray(np.asarray(test.data, dtype=np.uint8).transpose(0, 3, 1, 2))
        y, yt, names = train.targets, test.targets, CIFAR10_NAMES
    else:  # svhn: data is already (N, 3, 32, 32); torchvision maps label 10 to 0
        x = np.asarray(train.data, dtype=np.uint8)
        xt = np.asarray(test.data, dtype=np.uint8)
        y, yt, names = train.labels, test.labels, DIGIT_NAMES
    return Source(
        kind="image", x=x, y=np.asarray(y, dtype=np.int64), x_test=xt,
        y_test=np.asarray(yt, dtype=np.int64), class_names=names,
        image_shape=tuple(x.shape[1:]), meta={"files": str(root)},
    )


def load_digits_source() -> Source:
    """scikit-learn's 8x8 digits as one pool of float32 images in [-1, 1].

    Returns
    -------
    Source
        ``x`` of shape (1797, 1, 8, 8), labels 0..9, no separate test set.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(8.0) - np.float32(1.0))[:, None]  # 0..16 -> [-1, 1]
    return Source(kind="image", x=x, y=d.target.astype(np.int64), class_names=DIGIT_NAMES,
                  image_shape=(1, 8, 8))
