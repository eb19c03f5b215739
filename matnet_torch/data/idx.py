"""Reading and writing IDX files, the format of the MNIST distribution.

An IDX file is a header followed by a payload, all big-endian:

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4*d bytes   the size of each dimension, uint32
    payload     the elements in C (row-major) order, exactly the product of the sizes of them

The first four bytes read as one uint32 are the magic number, e.g. 0x00000803 for a 3-D uint8 array.
Files may be gzip-compressed; readers recognise gzip by its leading bytes 1f 8b, not by file name.
"""
import gzip
import math
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, os.PathLike]

_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: "i2", 0x0C: "i4", 0x0D: "f4", 0x0E: "f8"}
_CODES = {np.dtype(name): code for code, name in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file that is not a well-formed IDX file; the message names the file and what is wrong."""


def idx_magic(dtype: np.dtype, ndim: int) -> int:
    """The magic number of an IDX file holding an ndim-dimensional array of dtype."""
    dtype = np.dtype(dtype).newbyteorder("=")
    if dtype not in _CODES:
        raise IDXError(f"IDX has no element type for {dtype}; supported: {sorted(map(str, _CODES))}")
    if not 0 <= ndim <= 255:
        raise IDXError(f"IDX holds 0 to 255 dimensions, not {ndim}")
    return (_CODES[dtype] << 8) | ndim


def encode_idx(array: np.ndarray) -> bytes:
    """The uncompressed IDX byte stream (header and payload) of array."""
    array = np.asarray(array)
    if any(size >= 2**32 for size in array.shape):
        raise IDXError(f"IDX dimension sizes are uint32; shape {array.shape} does not fit")
    header = struct.pack(f">I{array.ndim}I", idx_magic(array.dtype, array.ndim), *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">"), copy=False).tobytes()


def read_idx(path: PathLike) -> np.ndarray:
    """The array in the IDX file at path, gzip-compressed or not, as a writable native-endian array."""
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise IDXError(f"{path}: corrupt gzip stream: {err}") from err
    if len(data) < 4:
        raise IDXError(f"{path}: truncated: {len(data)} bytes, too short for the 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _TYPES:
        raise IDXError(
            f"{path}: not an IDX file: magic number 0x{data[:4].hex().upper()}, expected two zero bytes "
            f"then an element type in {', '.join(f'0x{c:02X}' for c in _TYPES)}"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IDXError(
            f"{path}: truncated: a header of {ndim} dimensions needs {header_size} bytes, found {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = np.dtype(">" + _TYPES[code])
    expected = math.prod(shape) * dtype.itemsize  # Python integers: sizes up to (2^32-1)^255 cannot wrap
    found = len(data) - header_size
    if found != expected:
        problem = "truncated" if found < expected else f"{found - expected} trailing bytes"
        raise IDXError(
            f"{path}: {problem}: shape {shape} of {dtype.name} needs {expected} payload bytes, found {found}"
        )
    return np.frombuffer(data, dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: PathLike, array: np.ndarray, compress: bool) -> None:
    """Writes array as an IDX file at path, gzip-compressed if compress.

    The bytes go to a temporary file in the same directory that is then renamed over path, so an
    interrupted write never leaves a partial file at path.
    """
    data = encode_idx(array)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)  # level 9 is ~15x slower for 2% less
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
